"""What both forms of LSUV share (`lsuv` for NNX in lsuv.py, `lsuv_linen` in lsuv_linen.py).

Each form captures its layers' outputs in its own way; the rest is here: the argument checks,
the record of each chosen layer's calls (`LayerCall`), which layers are chosen, the orthogonal
pre-initialization rules (each kernel along its layer's fan axes, its bias zero), the output
statistics, the in-sharding rescaling of a kernel (`scaled`) and the rescaling loop
(`calibrate`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import keys
from jaxinit._src.core.typing import Rule
from jaxinit._src.core.validation import check_int, check_real, is_traced
from jaxinit._src.schemes import constant
from jaxinit._src.schemes.orthogonal import Orthogonal

#: Fewest leading-axis entries (examples) of every array in `batch`.
MIN_BATCH = 2
#: Fewest output elements per layer: the relative standard error of a sample std is about
#: 1/sqrt(2 n), 12.5% at n = 32 -- already above the default `tol` of 0.1 (LSUV-keras skips
#: such layers; refusing them is clearer).
MIN_ELEMENTS = 32
#: Below this output std a layer is dead (e.g. a zero kernel): no rescaling can revive it.
_DEAD_STD = 1e-7

_BATCH_ERROR = (
    "`batch` is too small to estimate a standard deviation: every array in it needs at least "
    "{min} examples along its leading axis; got shape(s) {shapes}."
)
_OUTPUT_ERROR = (
    "`batch` (shape(s) {shapes}) is too small to estimate a standard deviation: layer {path!r} "
    "outputs {n} element(s) on it, LSUV needs at least {min} per layer. Pass a larger batch."
)
_KEY_ERROR = (
    "`key` is required for the orthogonal pre-initialization (orthogonal=True): pass e.g. "
    "key=jax.random.key(0), or orthogonal=False to keep the current kernels."
)
_NO_LAYER_ERROR = (
    "`layers` pattern(s) {patterns} select no layer with a `kernel` that the forward pass calls; "
    "the layers with a kernel: {called}."
)
_NOT_FINITE_ERROR = (
    "layer {path!r} has a non-finite output std ({std}) on `batch`: check the model and batch."
)
_NO_CONVERGENCE = (
    "LSUV: layer {path!r} did not converge in max_iters={iters}: its output std is {std:.4g}, "
    "target {target} +- {tol}."
)
_DEAD_LAYER = "LSUV: layer {path!r} outputs a constant (std {std:.3g}) on `batch`; left as is."
_OUTPUT_TYPE_ERROR = "layer {path!r} returns a {type}, not an array: LSUV needs its output."
_UNCALLED = (
    "LSUV: {n} layer(s) with a kernel were never called by the forward pass on `batch` and keep "
    "their values: {paths}."
)


def warn_uncalled(paths: Sequence[str]) -> None:
    """Warns, naming them, about chosen layers the forward pass never called (none: silent)."""
    if paths:
        shown = ", ".join(repr(p) for p in paths)
        warnings.warn(_UNCALLED.format(n=len(paths), paths=shown), UserWarning, stacklevel=3)


# -- arguments -------------------------------------------------------------------------------------
def check_args(target_std: Any, tol: Any, max_iters: Any, orthogonal: Any, key: Any) -> None:
    """Checks the arguments both forms share (a `key` only when `orthogonal`)."""
    for name, value in (("target_std", target_std), ("tol", tol)):
        if is_traced(value):
            raise TypeError(f"`{name}` must be a concrete number, not a traced value.")
        check_real(name, value, positive=True)
    check_int("max_iters", max_iters, minimum=1)
    if not isinstance(orthogonal, bool):
        raise TypeError(f"`orthogonal` must be a bool; got {orthogonal!r}.")
    if orthogonal:
        if key is None:
            raise ValueError(_KEY_ERROR)
        keys.check_key(key)


def compile_patterns(layers: Sequence[str | re.Pattern[str]] | None) -> list[re.Pattern[str]]:
    """The `layers` argument compiled (None: no patterns, the default layers)."""
    if layers is None:
        return []
    if isinstance(layers, str | re.Pattern) or not isinstance(layers, Sequence):
        raise TypeError(
            f"`layers` must be None or a sequence of regular expressions; got {layers!r}."
        )
    for p in layers:
        if not isinstance(p, str | re.Pattern):
            raise TypeError(f"`layers` entries must be str or re.Pattern; got {p!r}.")
    return [re.compile(p) if isinstance(p, str) else p for p in layers]


def _shapes(batch: Any) -> Any:
    return jax.tree.map(lambda x: tuple(np.shape(x)), batch)


def check_batch(batch: Any) -> None:
    """Checks that `batch` holds arrays with at least `MIN_BATCH` examples each."""
    arrays = [x for x in jax.tree_util.tree_leaves(batch) if hasattr(x, "shape")]
    if not arrays:
        raise TypeError(f"`batch` must be an array or a pytree of arrays; got {batch!r}.")
    if any(np.ndim(x) < 1 or np.shape(x)[0] < MIN_BATCH for x in arrays):
        raise ValueError(_BATCH_ERROR.format(min=MIN_BATCH, shapes=_shapes(batch)))


@dataclasses.dataclass
class LayerCall:
    """What the probe saw of one chosen layer: its output elements (all calls) and the fan
    axes of its kernel (None: unknown layer)."""

    size: int
    axes: dict[str, tuple[int, ...]] | None


def record_call(calls: dict[str, LayerCall], path: str, out: Any, axes: Callable[[], Any]) -> None:
    """Adds one call of layer `path` to `calls`; `axes()` gives its kernel's fan axes."""
    if not hasattr(out, "shape"):
        raise TypeError(_OUTPUT_TYPE_ERROR.format(path=path, type=type(out).__name__))
    if path not in calls:
        calls[path] = LayerCall(0, axes())
    calls[path].size += math.prod(np.shape(out))


def check_calls(
    calls: Mapping[str, LayerCall], patterns: list[re.Pattern[str]], kernels: list[str], batch: Any
) -> None:
    """Checks the traced calls: `patterns` chose some layer (`kernels`: the paths with a kernel,
    for the message), and every chosen layer output at least `MIN_ELEMENTS` elements."""
    if patterns and not calls:
        shown = [p.pattern for p in patterns]
        some = kernels[:8] + ["..."] * (len(kernels) > 8)
        raise ValueError(_NO_LAYER_ERROR.format(patterns=shown, called=some))
    for path, call in calls.items():
        if call.size < MIN_ELEMENTS:
            raise ValueError(
                _OUTPUT_ERROR.format(
                    shapes=_shapes(batch), path=path, n=call.size, min=MIN_ELEMENTS
                )
            )


def is_chosen(
    path: str, is_default: bool, has_kernel: bool, patterns: list[re.Pattern[str]]
) -> bool:
    """Whether LSUV takes the layer at `path`: a default layer type when there are no
    `patterns`, else a layer with a kernel whose path one of them matches."""
    if not patterns:
        return is_default
    return has_kernel and any(p.search(path) for p in patterns)


# -- the pre-initialization ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _FanOrthogonal:
    """Orthogonal over the layer's (fan_in, fan_out) matrix view, for kernels with several
    output axes (``LinearGeneral(d, (heads, head_dim))``), which `Orthogonal`'s single
    ``column_axis`` cannot express: one Haar matrix ``(prod(in), prod(out))`` per batch index."""

    out_axis: tuple[int, ...]
    batch_axis: tuple[int, ...]

    def __call__(self, key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32):
        rest = tuple(a for a in range(len(shape)) if a not in self.out_axis + self.batch_axis)
        perm = self.batch_axis + rest + self.out_axis
        sizes = [math.prod(shape[a] for a in axes) for axes in (self.batch_axis, rest)]
        matrix = (*sizes, math.prod(shape[a] for a in self.out_axis))
        q = Orthogonal(batch_axis=0)(key, matrix, dtype)
        inverse = tuple(int(a) for a in np.argsort(perm))
        return jnp.transpose(q.reshape([shape[a] for a in perm]), inverse)


def _orthogonal_for(axes: dict[str, tuple[int, ...]] | None) -> Any:
    if axes is None:
        return Orthogonal()
    if len(axes["out_axis"]) == 1:
        return Orthogonal(column_axis=axes["out_axis"][0], batch_axis=axes["batch_axis"])
    return _FanOrthogonal(axes["out_axis"], axes["batch_axis"])


def preinit_rules(calls: Mapping[str, LayerCall]) -> list[Rule]:
    """Exact-path rules: each chosen kernel orthogonal along its layer's axes, its bias zero."""
    rules: list[Rule] = []
    for path, call in calls.items():
        rules.append((f"^{re.escape(path)}/kernel$", _orthogonal_for(call.axes)))
        rules.append((f"^{re.escape(path)}/bias$", constant.Zeros()))
    return rules


# -- statistics and the loop -----------------------------------------------------------------------
def output_std(outputs: list[jax.Array]) -> jax.Array:
    """The std of every element of every call's output, in float32."""
    return jnp.std(jnp.concatenate([jnp.ravel(o).astype(jnp.float32) for o in outputs]))


@jax.jit
def _rescale(w: jax.Array, factor: jax.Array) -> jax.Array:
    wide = w.dtype if jnp.dtype(w.dtype).itemsize >= 4 else jnp.dtype(jnp.float32)
    return (w.astype(wide) * factor.astype(wide)).astype(w.dtype)


def scaled(w: jax.Array, factor: float) -> jax.Array:
    """`w` times `factor` (computed in at least float32, rounded once), in `w`'s sharding."""
    out = _rescale(w, np.float32(factor))
    if not out.sharding.is_equivalent_to(w.sharding, w.ndim):
        out = jax.device_put(out, w.sharding)
    return out


def calibrate(
    paths: Sequence[str],
    measure: Callable[[], np.ndarray],
    scale: Callable[[str, float], None],
    target_std: float,
    tol: float,
    max_iters: int,
) -> None:
    """The LSUV loop: for each layer in order, ``W <- W * target / std`` until its output std
    is within `tol` of `target_std` or `max_iters` rescalings were made (then a warning).

    `measure` returns every layer's current output std; one measurement after a layer's last
    rescaling also gives the next layer's starting std (earlier layers no longer change).
    """
    stds = measure()
    for i, path in enumerate(paths):
        std, n = float(stds[i]), 0
        if not math.isfinite(std):
            raise ValueError(_NOT_FINITE_ERROR.format(path=path, std=std))
        if std < _DEAD_STD:
            warnings.warn(_DEAD_LAYER.format(path=path, std=std), UserWarning, stacklevel=3)
            continue
        while abs(std - target_std) > tol and n < max_iters:
            scale(path, target_std / std)
            stds, n = measure(), n + 1
            std = float(stds[i])
        if not abs(std - target_std) <= tol:
            msg = _NO_CONVERGENCE.format(path=path, iters=max_iters, std=std, target=target_std,
                                         tol=tol)  # fmt: skip
            warnings.warn(msg, UserWarning, stacklevel=3)
