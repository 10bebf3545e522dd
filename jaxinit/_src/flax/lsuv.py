"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas 2016), for Flax.

A data-dependent initialization: optionally re-initialize every layer's kernel orthogonally (and
its bias to zero), then walk the layers in the order the forward pass calls them and rescale each
kernel until the layer's output on a batch has the target standard deviation.

Layer outputs are captured during one traced forward pass, so the statistics of every layer come
out of one ``jax.jit``-compiled computation (compiled once per call, whatever the number of
iterations):

* NNX: the forward pass runs on a throwaway copy of the model (``nnx.split``/``nnx.merge``
  inside the jitted function), whose chosen layers get their class swapped for a subclass that
  reports each ``__call__``'s output. The user's model and Flax's classes are never patched, and
  the forward pass's side effects (BatchNorm statistics, RNG counts) are discarded.
* linen (`lsuv_linen`, in lsuv_linen.py, which reuses this module's checks, call records,
  pre-initialization and loop): ``nn.intercept_methods`` reports each layer's ``__call__`` output.

Kernels are rescaled in place of the old ones by one jitted multiply, so every parameter keeps its
sharding; the orthogonal pre-initialization goes through `jaxinit.flax.reinit` (each kernel
generated straight into its sharding, with the fan axes of its layer).
"""

from __future__ import annotations

import contextlib
import contextvars
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
from jaxinit._src.core.validation import check_int, check_real, is_traced
from jaxinit._src.flax import layers as flax_layers
from jaxinit._src.flax import reinit as flax_adapter
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


def _warn_uncalled(paths: Sequence[str]) -> None:
    if paths:
        shown = ", ".join(repr(p) for p in paths)
        warnings.warn(_UNCALLED.format(n=len(paths), paths=shown), UserWarning, stacklevel=3)


# -- arguments -------------------------------------------------------------------------------------
def _check_args(target_std: Any, tol: Any, max_iters: Any, orthogonal: Any, key: Any) -> None:
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


def _compile_patterns(layers: Sequence[str | re.Pattern[str]] | None) -> list[re.Pattern[str]]:
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


def _check_batch(batch: Any) -> None:
    arrays = [x for x in jax.tree_util.tree_leaves(batch) if hasattr(x, "shape")]
    if not arrays:
        raise TypeError(f"`batch` must be an array or a pytree of arrays; got {batch!r}.")
    if any(np.ndim(x) < 1 or np.shape(x)[0] < MIN_BATCH for x in arrays):
        raise ValueError(_BATCH_ERROR.format(min=MIN_BATCH, shapes=_shapes(batch)))


@dataclasses.dataclass
class _Call:
    """What the probe saw of one chosen layer: its output elements (all calls) and the fan
    axes of its kernel (None: unknown layer)."""

    size: int
    axes: dict[str, tuple[int, ...]] | None


def _record(calls: dict[str, _Call], path: str, out: Any, axes: Callable[[], Any]) -> None:
    """Adds one call of layer `path` to `calls`; `axes()` gives its kernel's fan axes."""
    if not hasattr(out, "shape"):
        raise TypeError(_OUTPUT_TYPE_ERROR.format(path=path, type=type(out).__name__))
    if path not in calls:
        calls[path] = _Call(0, axes())
    calls[path].size += math.prod(np.shape(out))


def _check_calls(
    calls: Mapping[str, _Call], patterns: list[re.Pattern[str]], kernels: list[str], batch: Any
) -> None:
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


def _chosen(path: str, is_default: bool, has_kernel: bool, patterns: list[re.Pattern[str]]):
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


def _preinit_rules(calls: Mapping[str, _Call]) -> list[flax_adapter.Rule]:
    """Exact-path rules: each chosen kernel orthogonal along its layer's axes, its bias zero."""
    rules: list[flax_adapter.Rule] = []
    for path, call in calls.items():
        rules.append((f"^{re.escape(path)}/kernel$", _orthogonal_for(call.axes)))
        rules.append((f"^{re.escape(path)}/bias$", constant.Zeros()))
    return rules


# -- statistics and the loop -----------------------------------------------------------------------
def _std(outputs: list[jax.Array]) -> jax.Array:
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


# -- NNX -------------------------------------------------------------------------------------------
#: The reporter of the layer calls being traced now (a layer, its output), or None.
_REPORT: contextvars.ContextVar[Callable[[Any, Any], None] | None] = contextvars.ContextVar(
    "jaxinit_lsuv_report", default=None
)
_SPIES: dict[type, type] = {}


def _spy_class(cls: type) -> type:
    """A subclass of the NNX layer class `cls` whose ``__call__`` reports its output (cached:
    each new NNX class registers itself as a graph node type)."""
    spy = _SPIES.get(cls)
    if spy is None:

        def call(self, *args, **kwargs):
            out = cls.__call__(self, *args, **kwargs)  # type: ignore[operator]
            report = _REPORT.get()
            if report is not None:
                report(self, out)
            return out

        namespace = {"__call__": call, "__module__": cls.__module__}
        flags = {"pytree": cls._pytree__is_pytree} if hasattr(cls, "_pytree__is_pytree") else {}
        spy = _SPIES[cls] = type(cls)(cls.__name__, (cls,), namespace, **flags)
    return spy


@contextlib.contextmanager
def _spying(model: Any, chosen: Callable[[str, Any], bool], report: Callable[[str, Any], None]):
    """Within the block, every chosen layer of `model` (a throwaway copy) reports its output
    as ``report(path, output)``."""
    from flax import nnx

    paths: dict[int, str] = {}
    for keys_, module in nnx.iter_modules(model):
        path = "/".join(map(str, keys_))
        if id(module) not in paths and chosen(path, module):
            paths[id(module)] = path
            module.__class__ = _spy_class(type(module))
    token = _REPORT.set(lambda module, out: report(paths[id(module)], out))
    try:
        yield
    finally:
        _REPORT.reset(token)


def _nnx_default(module: Any) -> bool:
    from flax import nnx

    return isinstance(
        module, nnx.Linear | nnx.LinearGeneral | nnx.Conv | nnx.ConvTranspose | nnx.Einsum
    )


def _nnx_has_kernel(module: Any) -> bool:
    from flax import nnx

    return isinstance(getattr(module, "kernel", None), nnx.Param)


def lsuv(
    model: Any,
    batch: Any,
    *,
    key: jax.Array | None = None,
    orthogonal: bool = True,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 10,
    layers: Sequence[str | re.Pattern[str]] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
) -> Any:
    r"""LSUV-initializes an NNX model in place: each layer's output on `batch` gets `target_std`.

    Optionally (``orthogonal=True``) every chosen layer's kernel is first re-initialized with an
    orthogonal matrix over its layer's (fan_in, fan_out) view -- conv, ``LinearGeneral`` and
    ``Einsum`` kernels along their real fan axes -- and its bias set to zero. Then, for each
    layer :math:`l` in the order the forward pass first calls it, with :math:`\sigma_l` the
    standard deviation of all elements of its output on `batch` (pooled over its calls):

    .. math:: W_l \leftarrow W_l \, \frac{\sigma^*}{\sigma_l}
              \quad \text{until} \quad |\sigma_l - \sigma^*| \le \text{tol}
              \ \text{or max\_iters rescalings,}

    with :math:`\sigma^*` = `target_std`. Without a bias one rescaling is exact; a bias makes it
    iterate. Biases are otherwise left alone (LSUV-pytorch also shifts them to center the
    output; the paper does not). The statistics of all layers come from one ``jax.jit``
    -compiled forward pass on a throwaway copy of the model, whose side effects (BatchNorm
    statistics, RNG counts) are discarded. Every parameter keeps its sharding.

    Layers called inside an NNX transform within the forward pass (``nnx.scan``, ``nnx.vmap``,
    ``nnx.remat``) are not supported: their outputs live in the transform's trace.

    Args:
      model: the ``nnx.Module``; updated in place and returned.
      batch: the input: an array, or any pytree of arrays that `forward` takes. Every array
        needs at least ``MIN_BATCH = 2`` examples along its leading axis, and every layer at
        least ``MIN_ELEMENTS = 32`` output elements on it.
      key: the key of the orthogonal pre-initialization (required when `orthogonal`); kernel
        ``p`` gets ``jaxinit.flax.path_key(key, p)``.
      orthogonal: whether to pre-initialize orthogonally (kernels) and with zeros (biases).
      target_std: the target output std :math:`\sigma^*` (> 0).
      tol: the accepted :math:`|\sigma_l - \sigma^*|` (> 0).
      max_iters: the most rescalings per layer (>= 1).
      layers: regular expressions ``re.search``-ed in module paths (``"blocks/0/up"``): LSUV
        takes the modules with an ``nnx.Param`` ``kernel`` whose path matches one. Default:
        every ``Linear``, ``LinearGeneral``, ``Conv``, ``ConvTranspose`` and ``Einsum``.
        Chosen layers the forward pass never calls are left as they are.
      forward: ``forward(model, batch) -> output``; default ``model(batch)``.

    Returns:
      `model`.

    Raises:
      ValueError: for a bad `target_std`, `tol` or `max_iters`, a missing `key`, a `batch`
        too small, `layers` that select nothing, or a non-finite layer output.
      TypeError: for arguments of the wrong type.

    Warns:
      UserWarning: naming each layer that did not converge in `max_iters`, whose output is
        constant (it cannot be rescaled), or that is chosen but never called by the forward
        pass (it keeps its values).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.flax
      >>> from flax import nnx
      >>> model = nnx.Sequential(nnx.Linear(64, 128, use_bias=False, rngs=nnx.Rngs(0)),
      ...                        nnx.relu, nnx.Linear(128, 10, use_bias=False, rngs=nnx.Rngs(1)))
      >>> x = jax.random.normal(jax.random.key(1), (256, 64))
      >>> model = jaxinit.flax.lsuv(model, x, key=jax.random.key(0))
      >>> h = model.layers[0](x)
      >>> round(float(h.std()), 4), round(float(model.layers[2](nnx.relu(h)).std()), 4)
      (1.0, 1.0)

    References:
      Mishkin & Matas, `All you need is a good init <https://arxiv.org/abs/1511.06422>`_,
      ICLR 2016.
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be an nnx.Module; got {type(model).__name__}.")
    _check_args(target_std, tol, max_iters, orthogonal, key)
    if forward is not None and not callable(forward):
        raise TypeError(f"`forward` must be callable(model, batch); got {forward!r}.")
    run = forward if forward is not None else (lambda m, b: m(b))
    patterns = _compile_patterns(layers)
    _check_batch(batch)
    modules: dict[str, Any] = {"/".join(map(str, p)): m for p, m in nnx.iter_modules(model)}

    def chosen(path: str, module: Any) -> bool:
        return _chosen(path, _nnx_default(module), _nnx_has_kernel(module), patterns)

    graphdef, state = nnx.split(model)
    calls: dict[str, _Call] = {}

    def probe(path: str, out: Any) -> None:
        def axes() -> Any:
            layer = flax_layers.nnx_axes(modules[path]).get("kernel")
            shape = modules[path].kernel.get_value().shape
            return layer.for_shape(shape) if layer is not None else None

        _record(calls, path, out, axes)

    def traced(report: Callable[[str, Any], None]) -> Callable[[Any, Any], None]:
        def go(state: Any, batch: Any) -> None:
            copy = nnx.merge(graphdef, state)
            with _spying(copy, chosen, report):
                run(copy, batch)

        return go

    jax.eval_shape(traced(probe), state, batch)
    kernels = [p for p, m in modules.items() if _nnx_has_kernel(m)]
    _check_calls(calls, patterns, kernels, batch)
    _warn_uncalled([p for p, m in modules.items() if chosen(p, m) and p not in calls])
    paths = list(calls)
    if orthogonal:
        rules = _preinit_rules(calls)
        flax_adapter.reinit(model, keys.check_key(key), rules, strict=False, layer_axes=False)

    def stats(state: Any, batch: Any) -> jax.Array:
        outputs: dict[str, list[jax.Array]] = {p: [] for p in paths}
        traced(lambda path, out: outputs[path].append(out))(state, batch)
        return jnp.stack([_std(outputs[p]) for p in paths])

    jitted = jax.jit(stats)

    def scale(path: str, factor: float) -> None:
        kernel = modules[path].kernel
        kernel.set_value(scaled(kernel.get_value(), factor))

    measure = lambda: np.asarray(jitted(nnx.state(model), batch))
    calibrate(paths, measure, scale, float(target_std), float(tol), int(max_iters))
    return model
