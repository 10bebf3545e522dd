"""Layer-aware fan axes of Flax parameters (linen and NNX), for `jaxinit.flax.reinit`/`plan`.

Flax hands initializers a flattened 2-D shape for ``DenseGeneral``/``LinearGeneral`` (so batch
dimensions fold into fan_in) and the raw shape for ``Einsum`` (so the default axes guess). Here
each known layer says which axes of its parameter's *natural* shape are in, out and batch axes;
`LayerAxes.for_shape` then maps them onto the parameter's real shape, where any extra leading
axes are stacked layers (``nnx.vmap``/``nnx.scan``/``nn.scan``) and count as batch axes. The
fans themselves are computed by `fans.compute_fans`, nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from jaxinit._src.core.fans import einsum_axes
from jaxinit._src.core.paths import join_path

#: Parameter name -> axes, for one layer.
ParamAxes = dict[str, "LayerAxes"]


@dataclasses.dataclass(frozen=True)
class LayerAxes:
    """The fan axes of a layer's parameter in its natural (unstacked) shape of rank `rank`.

    Attributes:
      rank: the rank of the parameter as the layer creates it.
      in_axis: the input axes (non-negative, below `rank`).
      out_axis: the output axes.
      batch_axis: axes that never count (DenseGeneral ``batch_dims``, einsum batch labels).
      layer: the layer's class name, for reports.
      kind: the layer's family, for frameworks whose own init has quirks
        (:func:`framework_rules`): ``"general"`` (Dense, DenseGeneral, Linear, LinearGeneral),
        ``"einsum"``, ``"conv"``, ``"conv_transpose"``, ``"conv_local"``, ``"embed"``; ``""``
        when unknown.
      groups: a convolution's ``feature_group_count``: each input feeds one group's outputs,
        so fan_out is divided by it (`compute_fans`).
    """

    rank: int
    in_axis: tuple[int, ...]
    out_axis: tuple[int, ...]
    batch_axis: tuple[int, ...] = ()
    layer: str = ""
    kind: str = ""
    groups: int = 1

    def for_shape(self, shape: Sequence[int]) -> dict[str, Any] | None:
        """The axes for a parameter of `shape` (plus ``groups`` for a grouped convolution);
        leading extra axes are stacked-layer batch axes. None when `shape` has a lower rank
        than the layer's (not this layer's shape)."""
        lead = len(shape) - self.rank
        if lead < 0:
            return None
        shift = lambda axes: tuple(a + lead for a in axes)
        axes: dict[str, Any] = {
            "in_axis": shift(self.in_axis),
            "out_axis": shift(self.out_axis),
            "batch_axis": tuple(range(lead)) + shift(self.batch_axis),
        }
        return {**axes, "groups": self.groups} if self.groups != 1 else axes


def _general(n_batch: int, n_in: int, n_out: int, layer: str) -> LayerAxes:
    """``(*batch, *in, *out)``: the kernel layout of Dense, DenseGeneral and LinearGeneral."""
    ins = tuple(range(n_batch, n_batch + n_in))
    outs = tuple(range(n_batch + n_in, n_batch + n_in + n_out))
    return LayerAxes(n_batch + n_in + n_out, ins, outs, tuple(range(n_batch)), layer, "general")


def _einsum(spec: str, layer: str) -> LayerAxes:
    axes = einsum_axes(spec)
    rank = len(spec.replace(" ", "").split("->")[0].split(",")[1])
    return LayerAxes(rank, axes["in_axis"], axes["out_axis"], axes["batch_axis"], layer, "einsum")


def _conv(
    n_spatial: int, transposed: bool, layer: str, kind: str = "conv", groups: int = 1
) -> LayerAxes:
    """HWIO ``(*spatial, in / groups, out)``; ``transpose_kernel=True`` swaps the last two
    axes."""
    i, o = (n_spatial + 1, n_spatial) if transposed else (n_spatial, n_spatial + 1)
    return LayerAxes(n_spatial + 2, (i,), (o,), (), layer, kind, int(groups))


def _conv_local(n_spatial: int, layer: str) -> LayerAxes:
    """linen ``ConvLocal``: ``(*out_spatial, prod(kernel_size) * in, out)``, one kernel per
    output position. The position axes are batch axes, so fan_in is one position's
    ``prod(kernel_size) * in`` (not that times the number of positions) and fan_out its
    ``out`` features."""
    positions = tuple(range(n_spatial))
    return LayerAxes(n_spatial + 2, (n_spatial,), (n_spatial + 1,), positions, layer, "conv_local")


def _embed(layer: str) -> LayerAxes:
    # (num_embeddings, features): fan_in is the feature axis, so fan_in-scaled schemes give
    # std ~ 1/sqrt(features) -- what Flax's `variance_scaling(1, "fan_in", out_axis=0)` means.
    return LayerAxes(2, (1,), (0,), (), layer, "embed")


def _count(x: Any) -> int:
    return len(x) if isinstance(x, Sequence | Mapping) else 1


def nnx_axes(module: Any) -> ParamAxes:
    """The axes of an NNX layer's parameters, by parameter name (empty for unknown layers)."""
    from flax import nnx

    name = f"nnx.{type(module).__name__}"
    # First matching class wins (subclasses before their bases): parameter -> axes builder.
    table: tuple[tuple[type, str, Any], ...] = (
        (nnx.LinearGeneral, "kernel", lambda m: _general(
            len(m.batch_axis), len(m.in_features), len(m.out_features), name)),
        (nnx.Linear, "kernel", lambda m: _general(0, 1, 1, name)),
        (nnx.Einsum, "kernel", lambda m: _einsum(m.einsum_str, name)),
        (nnx.ConvTranspose, "kernel", lambda m: _conv(
            len(m.kernel_shape) - 2, bool(m.transpose_kernel), name, "conv_transpose")),
        (nnx.Conv, "kernel", lambda m: _conv(
            len(m.kernel_shape) - 2, False, name, groups=m.feature_group_count)),
        (nnx.Embed, "embedding", lambda m: _embed(name)),
    )  # fmt: skip
    for cls, param, build in table:
        if isinstance(module, cls):
            return {param: build(module)}
    return {}


def nnx_layers(model: Any) -> dict[str, LayerAxes]:
    """Parameter path -> axes, for every known layer inside an NNX `model`."""
    from flax import nnx

    out: dict[str, LayerAxes] = {}
    for path, module in nnx.iter_modules(model):
        for param, axes in nnx_axes(module).items():
            out[join_path((*path, param))] = axes
    return out


def linen_axes(module: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> ParamAxes:
    """The axes of a linen layer's parameters, from its attributes (and its call's
    ``einsum_str`` for `nn.Einsum`); empty for unknown layers."""
    import flax.linen as nn

    name = f"nn.{type(module).__name__}"
    if isinstance(module, nn.Einsum):  # the spec may come with the call
        spec = kwargs.get("einsum_str") or (args[1] if len(args) > 1 else None)
        spec = spec or module.einsum_str
        return {"kernel": _einsum(spec, name)} if spec else {}
    if isinstance(module, nn.DenseGeneral):
        n_batch, n_in = _count(module.batch_dims), _count(module.axis)
        return {"kernel": _general(n_batch, n_in, _count(module.features), name)}
    if isinstance(module, nn.Dense):
        return {"kernel": _general(0, 1, 1, name)}
    if isinstance(module, nn.ConvTranspose):
        n = _count(module.kernel_size)
        return {"kernel": _conv(n, bool(module.transpose_kernel), name, "conv_transpose")}
    if isinstance(module, nn.ConvLocal):
        return {"kernel": _conv_local(_count(module.kernel_size), name)}
    if isinstance(module, nn.Conv):
        n = _count(module.kernel_size)
        return {"kernel": _conv(n, False, name, groups=module.feature_group_count)}
    if isinstance(module, nn.Embed):
        return {"embedding": _embed(name)}
    return {}


def linen_layers(
    module: Any, *args: Any, rngs: Any = None, method: Any = None, **kwargs: Any
) -> dict[str, LayerAxes]:
    """Parameter path -> layer axes of a linen `module`, found by tracing its ``init``.

    Linen parameters are plain dicts that do not say which layer made them, so this traces
    ``module.init(rngs, *args, method=method, **kwargs)`` abstractly (`jax.eval_shape`: nothing
    is computed) and records every known layer it meets. Pass the result as ``layers=`` to
    :func:`reinit` or :func:`plan`. Paths have no ``params/`` prefix; they match a parameter
    path that equals them or ends with ``/`` + them.

    Args:
      module: the linen module.
      *args: its ``init`` inputs (arrays or ``jax.ShapeDtypeStruct``s).
      rngs: the ``init`` rngs (default: a key for the ``params`` stream).
      method: the method ``init`` calls.
      **kwargs: more ``init`` keyword inputs.

    Returns:
      A dict from parameter path (e.g. ``"DenseGeneral_0/kernel"``) to :class:`LayerAxes`.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jaxinit.flax
      >>> layers = jaxinit.flax.linen_layers(nn.DenseGeneral((4, 8)), jnp.ones((2, 16)))
      >>> layers["kernel"].in_axis, layers["kernel"].out_axis
      ((0,), (1, 2))
    """
    import flax.linen as nn

    records: dict[str, LayerAxes] = {}

    def interceptor(next_fun, call_args, call_kwargs, context):
        if context.method_name == "__call__":
            m = context.module
            for param, axes in linen_axes(m, call_args, call_kwargs).items():
                records[join_path((*m.path, param))] = axes
        return next_fun(*call_args, **call_kwargs)

    rngs = jax.random.key(0) if rngs is None else rngs
    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda *a: module.init(rngs, *a, method=method, **kwargs), *args)
    return records


def lookup(layers: Mapping[str, LayerAxes], path: str) -> LayerAxes | None:
    """The entry of `layers` for `path`: an exact key, else the longest key that is a
    ``/``-suffix of it (linen's ``params/`` prefix, or a submodule's path)."""
    parts = path.split("/")
    for i in range(len(parts)):  # the longest suffix first
        axes = layers.get(join_path(parts[i:]))
        if axes is not None:
            return axes
    return None
