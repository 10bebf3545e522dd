"""The Flax adapter: re-initialize a model's parameters by path rules, in one jitted program.

`reinit` reads the target's parameters (targets.py), picks each one's initializer with the
first rule whose pattern ``re.search``-es its path, gives variance schemes the axes of the
parameter's layer (layers.py), derives each parameter's key from its path (`path_key`), and
generates every parameter straight into its sharding in one ``jax.jit``, same-shaped parameters
of one initializer together (generate.py). `plan` reports the same decisions and computes
nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxinit._src.core import keys
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.fans import compute_fans
from jaxinit._src.core.typing import Rule
from jaxinit._src.flax import generate, targets
from jaxinit._src.flax import rules as flax_rules
from jaxinit._src.flax.layers import LayerAxes
from jaxinit._src.schemes.variance import VarianceScheme

#: One rule: a regular expression (searched in the path) and an initializer; None keeps.

_UNMATCHED_ERROR = (
    "{n} parameter(s) match no rule (strict=True): {paths}. Add rules for them, or pass "
    "strict=False to keep their values."
)
_ABSTRACT_KEEP_ERROR = (
    "{n} parameter(s) of an abstract target would be kept ({why}): {paths}. An abstract target "
    "(from nnx.eval_shape / jax.eval_shape) has no values to keep: give every parameter an "
    "initializer."
)


_GUESSED_WARNING = (
    "jaxinit.flax: the layer of {n} parameter(s) is unknown (linen parameters do not say which "
    "layer made them), so their fans come from the initializer's default axes (in_axis=-2, "
    "out_axis=-1, the rest a receptive field), which for a DenseGeneral, attention or Einsum "
    "kernel are not the layer's: {rows}. Pass layers=jaxinit.flax.linen_layers(module, "
    "*inputs) to use each layer's real axes, or give the initializer its axes."
)
#: Path segments of linen layers whose rank-3+ kernels the default axes get wrong: DenseGeneral
#: and Einsum by their automatic names, and the projections of MultiHeadDotProductAttention.
_MULTI_AXIS_LAYER = re.compile(r"(?:^|/)(?:DenseGeneral_\d+|Einsum_\d+|query|key|value|out)/")


def stable_hash(path: str) -> int:
    """The stable 32-bit hash of a parameter path that `path_key` folds into the key.

    The contract: the first 4 bytes of the SHA-256 digest of the UTF-8 encoded path, read as a
    big-endian unsigned integer. It depends on nothing but the path -- not on
    ``PYTHONHASHSEED``, the Python, JAX or Flax version, the process, the device count or the
    other parameters -- and will not change in future versions of jaxinit.

    Args:
      path: the parameter's keys joined by ``/`` (e.g. ``"blocks/3/attn/q/kernel"``).

    Returns:
      An int in ``[0, 2**32)``.

    Examples:
      >>> import jaxinit.flax
      >>> jaxinit.flax.stable_hash("layers/0/kernel")
      91456768
    """
    if not isinstance(path, str):
        raise TypeError(f"`path` must be a str; got {path!r}.")
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:4], "big")


def path_key(key: jax.Array, path: str) -> jax.Array:
    """The key of the parameter at `path`: ``jax.random.fold_in(key, stable_hash(path))``.

    Adding, removing or reordering other parameters never changes it.

    Args:
      key: the root key (typed or legacy ``uint32[2]``).
      path: the parameter's path.

    Returns:
      A key of the same kind as `key`.

    Examples:
      >>> import jax, jaxinit.flax
      >>> k = jaxinit.flax.path_key(jax.random.key(0), "layers/0/kernel")
      >>> bool((jax.random.key_data(k) == jax.random.key_data(jax.random.fold_in(
      ...     jax.random.key(0), jaxinit.flax.stable_hash("layers/0/kernel")))).all())
      True
    """
    return jax.random.fold_in(keys.check_key(key), np.uint32(stable_hash(path)))


@dataclasses.dataclass(frozen=True)
class PlanRow:
    """What `reinit` does to one parameter.

    Attributes:
      path: the parameter's path (keys joined by ``/``).
      shape: its shape.
      dtype: its dtype.
      sharding: its sharding (from the array or its partition metadata), or None.
      initializer: the initializer it gets, with its layer's axes; None when it is kept.
      fan_in: the fan_in the initializer uses (variance schemes), else that of the layer's
        axes (known layers); None otherwise (and for kept parameters).
      fan_out: likewise.
      std: the target standard deviation of its values; None when not defined.
      label: the label of the rule that took it (:func:`labelled`; e.g. the depth recipes'
        ``"residual projection, L=12: ..."``), else ``""``.
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    sharding: jax.sharding.Sharding | None
    initializer: Any
    fan_in: float | None
    fan_out: float | None
    std: float | None
    label: str = ""


# -- layer axes ----------------------------------------------------------------------------------
def with_layer_axes(init: Any, axes: Mapping[str, tuple[int, ...]] | None) -> Any:
    """`init` given its parameter's layer axes (`BaseInitializer.for_layer`): variance schemes
    take all three, `orthogonal` the batch axes; foreign callables are returned as they are."""
    if axes is None or not isinstance(init, BaseInitializer):
        return init
    return init.for_layer(axes)


# -- the plan ------------------------------------------------------------------------------------
def _row(leaf: targets.Leaf, init: Any, label: str) -> PlanRow:
    """The plan row of `leaf` under `init` (already given its layer axes); raises what
    generating it would raise, naming the parameter."""
    if init is None:
        return PlanRow(
            leaf.path, leaf.shape, leaf.dtype, leaf.sharding, None, None, None, None, label
        )
    axes = leaf.layer.for_shape(leaf.shape) if leaf.layer is not None else None
    ours = isinstance(init, BaseInitializer)
    try:
        if ours:
            init.check_call(leaf.shape, leaf.dtype)
        concrete = ours and init.concrete and math.prod(leaf.shape) > 0
        if concrete and isinstance(init, VarianceScheme):
            fans = init.fans(leaf.shape)
        else:
            fans = compute_fans(leaf.shape, **axes) if axes else None
        std = init.target_std(leaf.shape) if concrete else None
    except (ValueError, TypeError) as e:
        raise generate.at_parameter(leaf.path, leaf.shape, e) from e
    fan_in, fan_out = (fans.fan_in, fans.fan_out) if fans is not None else (None, None)
    return PlanRow(
        leaf.path, leaf.shape, leaf.dtype, leaf.sharding, init, fan_in, fan_out, std, label
    )


def _decide(
    target: Any,
    rules: Sequence[Rule],
    strict: bool,
    layers: Mapping[str, LayerAxes] | None,
    layer_axes: bool,
    mesh: Any,
    required: bool,
) -> tuple[list[targets.Leaf], list[Any], list[str], targets.Writer]:
    """Each parameter with its initializer (None: kept) and its rule's label, checked against
    `strict`."""
    compiled = flax_rules.compile_rules(rules)
    leaves, write = targets.collect(target, layers, mesh, required)
    inits, labels, unmatched = [], [], []
    for leaf in leaves:
        found, rule = flax_rules.match(compiled, leaf.path, leaf.dtype)
        if not found:
            unmatched.append(leaf.path)
        init = rule.init if rule is not None else None
        labels.append(rule.label if rule is not None else "")
        if layer_axes and leaf.layer is not None and not (rule is not None and rule.own_axes):
            init = with_layer_axes(init, leaf.layer.for_shape(leaf.shape))
        inits.append(init)
    if layer_axes:
        _warn_guessed(leaves, inits)
    if strict and unmatched:
        paths = ", ".join(repr(p) for p in unmatched)
        raise ValueError(_UNMATCHED_ERROR.format(n=len(unmatched), paths=paths))
    if strict:
        flax_rules.check_used(compiled, [leaf.path for leaf in leaves])
    return leaves, inits, labels, write


def _warn_guessed(leaves: Sequence[targets.Leaf], inits: Sequence[Any]) -> None:
    """One warning naming the parameters of multi-axis linen layers (by their names) whose
    variance scheme computes its fans from its default axes because the layer is unknown."""
    rows = []
    for leaf, init in zip(leaves, inits, strict=True):
        if (
            leaf.layer is None
            and len(leaf.shape) >= 3
            and isinstance(init, VarianceScheme)
            and _MULTI_AXIS_LAYER.search(leaf.path)
            and init.fans(leaf.shape) == compute_fans(leaf.shape)  # the default axes
        ):
            fans = compute_fans(leaf.shape)
            rows.append(f"{leaf.path!r} {leaf.shape} fan_in={fans.fan_in:g}")
    if rows:
        warnings.warn(_GUESSED_WARNING.format(n=len(rows), rows="; ".join(rows)), stacklevel=4)


def plan(
    target: Any,
    rules: Sequence[Rule],
    *,
    layers: Mapping[str, LayerAxes] | None = None,
    layer_axes: bool = True,
    mesh: jax.sharding.Mesh | None = None,
) -> list[PlanRow]:
    """The per-parameter plan of :func:`reinit`, computing nothing.

    Works on concrete and abstract targets alike. Parameters that no rule matches (or that a
    rule maps to None) appear with ``initializer=None``; `plan` never raises for them.

    Args:
      target: an ``nnx.Module`` or a pytree of arrays or ``jax.ShapeDtypeStruct``s.
      rules: ``(pattern, initializer)`` pairs, as for :func:`reinit`.
      layers: extra parameter-path -> :class:`LayerAxes` entries (see :func:`linen_layers`).
      layer_axes: whether variance schemes get the axes of the parameter's layer.
      mesh: the concrete mesh for partition metadata (default: the context's mesh).

    Returns:
      A list of :class:`PlanRow`, in the target's parameter order.

    Examples:
      >>> from flax import nnx
      >>> import jaxinit, jaxinit.flax
      >>> layer = nnx.eval_shape(lambda: nnx.LinearGeneral(64, (8, 32), rngs=nnx.Rngs(0)))
      >>> rows = jaxinit.flax.plan(layer, [("kernel", jaxinit.lecun_normal()), ("bias", None)])
      >>> [(r.path, r.shape, r.fan_in, round(r.std, 4)) for r in rows if r.std]
      [('kernel', (64, 8, 32), 64, 0.125)]
    """
    leaves, inits, labels, _ = _decide(target, rules, False, layers, layer_axes, mesh, False)
    return [_row(*row) for row in zip(leaves, inits, labels, strict=True)]


def reinit(
    target: Any,
    key: jax.Array,
    rules: Sequence[Rule],
    *,
    strict: bool = True,
    layers: Mapping[str, LayerAxes] | None = None,
    layer_axes: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    group_bytes: int = generate.GROUP_BYTES,
) -> Any:
    """Re-initializes the parameters of `target` by path rules, in one jitted computation.

    Each parameter's path is its keys joined by ``/`` (``blocks/3/attn/q/kernel``); the first
    rule whose pattern ``re.search``-es it gives its initializer. Its key is
    ``path_key(key, path)``, so adding, removing or reordering other parameters changes
    nothing else. When the parameter's layer is known -- any NNX module; linen through
    ``layers=linen_layers(...)`` -- a variance scheme gets the layer's real axes: the heads of
    ``LinearGeneral``/``DenseGeneral``, the kernel axes of an ``Einsum`` spec, stacked
    (``vmap``/``scan``) leading axes and batch dims as batch axes, ``Embed``'s feature axis as
    fan_in. Every parameter is generated directly into its sharding (``out_sharding``), taken
    from the array or from its partition metadata (``nnx.with_partitioning``,
    ``kernel_metadata={"out_sharding": ...}``, ``nn.with_logical_partitioning`` with logical
    axis rules), so an abstract sharded model is materialized without full arrays.

    Args:
      target: an ``nnx.Module`` (updated in place and returned), a pytree of arrays such as
        linen ``params`` (a new pytree is returned, the input untouched; ``nn.Partitioned``
        boxes stay boxed), or an abstract one (``nnx.eval_shape`` / ``jax.eval_shape``), which
        gets materialized.
      key: the root key.
      rules: ``(pattern, initializer)`` pairs; first match wins. An initializer may be a name
        or dict for :func:`jaxinit.get`, or None to keep the parameter as it is.
      strict: raise a ``ValueError`` naming every parameter that no rule matches; with
        ``strict=False`` they keep their exact values (impossible for an abstract target: that
        raises too).
      layers: extra parameter-path -> :class:`LayerAxes` entries (see :func:`linen_layers`);
        they override the NNX layers found automatically.
      layer_axes: set False to keep every initializer's own axes.
      mesh: the concrete mesh for partition metadata over an abstract mesh (default: the
        context's, from ``jax.set_mesh``).
      group_bytes: same-shaped parameters of one random initializer are generated together
        (one ``lax.map``, so compile time stays flat with depth) up to this many bytes per
        device, which is also the most extra memory the grouping costs.

    Returns:
      The re-initialized target.

    Raises:
      ValueError: for unmatched parameters (strict), kept parameters of an abstract target, or a
        parameter an initializer cannot take (the message names it).
      TypeError: for malformed rules or key.

    Examples:
      >>> import jax, jaxinit, jaxinit.flax
      >>> from flax import nnx
      >>> model = nnx.Sequential(nnx.Linear(256, 512, rngs=nnx.Rngs(0)), nnx.relu,
      ...                        nnx.Linear(512, 10, rngs=nnx.Rngs(0)))
      >>> rules = [(r"layers/2/kernel", jaxinit.zeros), ("kernel", jaxinit.he_normal()),
      ...          ("bias", jaxinit.zeros)]
      >>> model = jaxinit.flax.reinit(model, jax.random.key(0), rules)
      >>> round(float(model.layers[0].kernel[...].std() * 256**0.5), 1)
      1.4
      >>> float(abs(model.layers[2].kernel[...]).max())
      0.0
    """
    root = keys.check_key(key)
    jobs, write = prepare(target, rules, strict, layers, layer_axes, mesh)
    fills = targets.state_fills(target, path_key) if targets.is_nnx_module(target) else {}
    values = generate.generate(jobs, root, group_bytes)
    new = dict(zip((job.path for job in jobs), values, strict=True))
    return write(new | {path: fill(root) for path, fill in fills.items()})


def prepare(
    target: Any,
    rules: Sequence[Rule],
    strict: bool = True,
    layers: Mapping[str, LayerAxes] | None = None,
    layer_axes: bool = True,
    mesh: Any = None,
) -> tuple[list[generate.Job], targets.Writer]:
    """The parameters `reinit` generates, as jobs, and the writer of the target."""
    leaves, inits, _, write = _decide(target, rules, strict, layers, layer_axes, mesh, True)
    kept = [leaf for leaf, init in zip(leaves, inits, strict=True) if init is None]
    abstract = [leaf.path for leaf in kept if not leaf.concrete]
    if abstract:
        why = "no rule matches them (strict=False)" if not strict else "a rule maps them to None"
        paths = ", ".join(repr(p) for p in abstract)
        raise ValueError(_ABSTRACT_KEEP_ERROR.format(n=len(abstract), why=why, paths=paths))
    jobs = [
        generate.Job(leaf.path, np.uint32(stable_hash(leaf.path)), init, leaf.shape,
                          leaf.dtype, leaf.sharding)
        for leaf, init in zip(leaves, inits, strict=True)
        if init is not None
    ]  # fmt: skip
    return jobs, write
