"""What `jaxinit.flax.reinit` initializes: the parameters of an NNX module or of a pytree.

A target is read into a flat list of `Leaf`s -- path, shape, dtype, sharding, owning layer --
and written back from a dict ``path -> new array``: an NNX module is updated in place (its
``nnx.Param`` variables, metadata kept), a pytree (linen ``params``, possibly with
``nn.Partitioned``/``nn.LogicallyPartitioned`` boxes, or the ``jax.ShapeDtypeStruct``s of
``jax.eval_shape``) is rebuilt, the input untouched.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxinit._src.core import sharding as sharding_lib
from jaxinit._src.core.paths import join_path
from jaxinit._src.flax import layers as flax_layers
from jaxinit._src.flax.layers import LayerAxes

_NO_MESH_ERROR = (
    "parameter {path!r} is annotated with {spec} but no concrete mesh {why}: call under "
    "`jax.set_mesh(mesh)` or pass `mesh=` to reinit."
)

_UNRULED_WARNING = (
    "{n} logically partitioned parameter(s) are replicated on the mesh because no logical axis "
    "rules are set: {paths}. Call under `flax.linen.logical_axis_rules(rules)` (or give the "
    "boxes `rules=`) to shard them."
)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One parameter of a target.

    Attributes:
      path: its keys joined by ``/``.
      shape: its shape.
      dtype: its dtype.
      sharding: where it lives (concrete arrays), or where its metadata says it should live
        (abstract ones); a NamedSharding may still be over an abstract mesh. None: nowhere said.
      concrete: whether it holds values (a ``jax.Array``) rather than a shape.
      layer: the fan axes of its layer, when the layer is known.
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    sharding: jax.sharding.Sharding | None
    concrete: bool
    layer: LayerAxes | None = None


Writer = Callable[[Mapping[str, jax.Array]], Any]


def _initializable(value: Any) -> bool:
    """An array or shape that an initializer could fill: not None, not a PRNG key array (no
    initializer makes keys, so they are always kept as they are)."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return False  # e.g. a Param holding None: nothing to initialize
    return not jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _concrete(value: Any) -> bool:
    """Whether `value` holds values (a jax or NumPy array) rather than a shape."""
    return isinstance(value, jax.Array | np.ndarray | np.generic)


def concrete_mesh(mesh: Any, user_mesh: jax.sharding.Mesh | None) -> jax.sharding.Mesh | None:
    """A concrete mesh for `mesh` (concrete, abstract or None): itself, or the user's or the
    context's mesh when it matches (an abstract one) or when none was given."""
    if isinstance(mesh, jax.sharding.Mesh):
        return mesh
    for candidate in (user_mesh, sharding_lib.concrete_mesh()):
        if candidate is not None and (mesh is None or candidate.abstract_mesh == mesh):
            return candidate
    return None


def _named(path: str, spec: PartitionSpec, mesh: Any, user_mesh: Any, required: bool) -> Any:
    """The sharding partition metadata asks for. With no mesh anywhere -- none in the metadata,
    none given, none set -- the parameter is unsharded, as in Flax's own init."""
    concrete = concrete_mesh(mesh, user_mesh)
    if concrete is not None:
        return NamedSharding(concrete, spec)
    if mesh is None:
        return None
    if not required:
        return NamedSharding(mesh, spec)  # an abstract mesh: fine for a plan
    why = f"matches its abstract mesh {mesh}"
    raise ValueError(_NO_MESH_ERROR.format(path=path, spec=spec, why=why))


def _value_sharding(path: str, value: Any, user_mesh: Any, required: bool) -> Any:
    s = getattr(value, "sharding", None)
    if isinstance(s, NamedSharding):
        return _named(path, s.spec, s.mesh, user_mesh, required)
    return s


# -- NNX ----------------------------------------------------------------------------------------
def _nnx_sharding(path: str, var: Any, value: Any, user_mesh: Any, required: bool) -> Any:
    from flax.nnx import spmd

    s = _value_sharding(path, value, user_mesh, required)
    if s is not None:
        return s
    metadata = var.get_metadata()
    if not metadata.get("out_sharding"):
        return None
    spec = spmd.get_var_pspec(var) or PartitionSpec()  # logical axis rules applied, as Flax does
    return _named(path, spec, metadata.get("mesh"), user_mesh, required)


_ABSTRACT_STATE_ERROR = (
    "{n} non-parameter variable(s) of an abstract NNX model have no values and jaxinit does "
    "not know their initial value: {paths}. Build the model concretely, or build it with "
    "jaxinit.flax.abstract(factory), which keeps every non-parameter variable concrete."
)

#: A value for an abstract non-parameter variable: ``fill(root_key) -> array``.
Fill = Callable[[jax.Array], jax.Array]


def _batch_norms(model: Any) -> set[str]:
    """The paths of the ``nnx.BatchNorm`` layers of `model` (their statistics have a known
    start: mean 0, variance 1)."""
    from flax import nnx

    return {join_path(path) for path, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)}


def state_fills(model: Any, path_key: Callable[[jax.Array, str], jax.Array]) -> dict[str, Fill]:
    """Values for the abstract non-parameter variables of an NNX `model` (``nnx.eval_shape``
    leaves them shapes), so that the re-initialized model is a normal module: RNG stream keys
    ``path_key(key, path)`` (split to the variable's shape) with counts 0, and ``BatchNorm``
    statistics 0 (mean) and 1 (variance). Any other abstract variable is a ValueError."""
    from flax import nnx

    flat = list(nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.Param))))
    abstract = [
        (join_path(k), v) for k, v in flat if isinstance(v.get_value(), jax.ShapeDtypeStruct)
    ]
    if not abstract:
        return {}
    norms = _batch_norms(model)
    fills: dict[str, Fill] = {}
    unknown = []
    for path, var in abstract:
        shape, dtype = var.get_value().shape, var.get_value().dtype
        parent, _, name = path.rpartition("/")
        if isinstance(var, nnx.RngKey):
            fills[path] = lambda k, p=path, s=shape: _keys(path_key(k, p), s)
        elif isinstance(var, nnx.RngCount):
            fills[path] = lambda k, s=shape, d=dtype: jax.numpy.zeros(s, d)
        elif isinstance(var, nnx.BatchStat) and parent in norms and name in ("mean", "var"):
            value = 0.0 if name == "mean" else 1.0
            fills[path] = lambda k, s=shape, d=dtype, v=value: jax.numpy.full(s, v, d)
        else:
            unknown.append(path)
    if unknown:
        paths = ", ".join(repr(p) for p in unknown)
        raise ValueError(_ABSTRACT_STATE_ERROR.format(n=len(unknown), paths=paths))
    return fills


def _keys(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """`key` as a typed key (``nnx.Rngs`` holds typed keys), split to `shape` if not scalar."""
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    return jax.random.split(key, shape) if shape else key


def nnx_leaves(
    model: Any, layers: Mapping[str, LayerAxes], user_mesh: Any, required: bool
) -> tuple[list[Leaf], Writer]:
    """The ``nnx.Param``s of an NNX module, and a writer that updates it in place (any of its
    variables, by path)."""
    from flax import nnx

    every = list(nnx.to_flat_state(nnx.state(model)))  # one traversal: the variables ...
    paths = [join_path(keys) for keys, _ in every]  # ... and their paths, computed once
    found = flax_layers.nnx_layers(model)
    leaves = []
    for path, (_, var) in zip(paths, every, strict=True):
        if not isinstance(var, nnx.Param):
            continue
        value = var.get_value()
        if not _initializable(value):
            continue
        s = _nnx_sharding(path, var, value, user_mesh, required)
        concrete = _concrete(value)
        layer = flax_layers.lookup(layers, path) or found.get(path)
        leaves.append(Leaf(path, tuple(value.shape), np.dtype(value.dtype), s, concrete, layer))

    def write(new: Mapping[str, jax.Array]) -> Any:
        updates = [
            (keys, var.replace(new[path]))
            for path, (keys, var) in zip(paths, every, strict=True)
            if path in new
        ]
        nnx.update(model, nnx.from_flat_state(updates))
        return model

    return leaves, write


# -- pytrees (linen params, eval_shape outputs) ---------------------------------------------------
def is_box(x: Any) -> bool:
    from flax.core import meta

    return isinstance(x, meta.AxisMetadata)


def _box_sharding(path: str, box: Any, user_mesh: Any, required: bool, unruled: list[str]) -> Any:
    import flax.linen as nn
    from flax.core import meta

    s = _value_sharding(path, box.value, user_mesh, required)
    if s is not None or not isinstance(box, meta.Partitioned):
        return s
    if isinstance(box, nn.LogicallyPartitioned):
        spec = nn.logical_to_mesh_axes(box.names, box.rules)  # box or context rules
        if not box.rules and not nn.get_logical_axis_rules() and any(box.names):
            unruled.append(path)  # every logical name maps to None: replicated
    else:
        spec = box.get_partition_spec()
    return _named(path, PartitionSpec(*(spec or ())), box.mesh, user_mesh, required)


def _warn_unruled(leaves: list[Leaf]) -> None:
    """One warning naming the logically partitioned parameters left replicated on a mesh
    because no logical axis rules are set."""
    replicated = [leaf.path for leaf in leaves if isinstance(leaf.sharding, NamedSharding)]
    if replicated:
        warnings.warn(_UNRULED_WARNING.format(n=len(replicated), paths=", ".join(replicated)),
                      UserWarning, stacklevel=6)  # fmt: skip


def tree_leaves(
    tree: Any, layers: Mapping[str, LayerAxes], user_mesh: Any, required: bool
) -> tuple[list[Leaf], Writer]:
    """The array leaves of a pytree (boxes unwrapped), and a writer that rebuilds it."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    leaves, index, unruled = [], {}, []
    for i, (kp, x) in enumerate(flat):
        box = x if is_box(x) else None
        value = box.unbox(apply_constraint=False) if box is not None else x
        if not _initializable(value):
            continue
        path = join_path(kp)
        if box is not None:
            s = _box_sharding(path, box, user_mesh, required, unruled)
        else:
            s = _value_sharding(path, value, user_mesh, required)
        concrete = _concrete(value)
        layer = flax_layers.lookup(layers, path)
        leaves.append(Leaf(path, tuple(value.shape), np.dtype(value.dtype), s, concrete, layer))
        index[path] = i
    _warn_unruled([leaf for leaf in leaves if leaf.path in unruled])

    def write(new: Mapping[str, jax.Array]) -> Any:
        out = [x for _, x in flat]
        for path, arr in new.items():
            i = index[path]
            out[i] = out[i].replace_boxed(arr) if is_box(out[i]) else arr
        return jax.tree_util.tree_unflatten(treedef, out)

    return leaves, write


def is_nnx_module(target: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is an optional dependency
        return False
    return isinstance(target, nnx.Module)


def collect(
    target: Any, layers: Mapping[str, LayerAxes] | None, user_mesh: Any, required: bool
) -> tuple[list[Leaf], Writer]:
    """The parameters of `target` and its writer; `layers` adds or overrides layer axes."""
    layers = dict(layers or {})
    for path, axes in layers.items():
        if not isinstance(axes, LayerAxes):
            raise TypeError(
                f"`layers` maps parameter paths to jaxinit.flax.LayerAxes; got {axes!r} for "
                f"{path!r}."
            )
    if is_nnx_module(target):
        return nnx_leaves(target, layers, user_mesh, required)
    return tree_leaves(target, layers, user_mesh, required)
