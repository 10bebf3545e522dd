"""`with_partitioning`: Flax's ``kernel_init`` path, born sharded.

Flax calls ``kernel_init(key, shape, dtype)`` with no sharding and shards the result afterwards
(``nnx.with_partitioning``, linen's ``nn.with_partitioning``), so under ``jax.jit`` every device
may form the whole array first. This wrapper takes the same arguments, resolves the sharding as
Flax would (logical names through the context's logical axis rules, the mesh from the argument
or ``jax.set_mesh``) and hands it to a jaxinit initializer as ``out_sharding``: each device
draws only its shard. It returns what the Flax wrapper returns -- an NNX ``VariableMetadata``,
or a linen ``nn.Partitioned`` box inside a linen module -- so Flax's own handling is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxinit._src.core import sharding as sharding_lib
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.flax.rules import RuleInit

_SHARDING_ERROR = (
    "`sharding` must be a tuple of mesh axis names or logical names (str, None or tuples of "
    "str), one per array axis, as for nnx.with_partitioning; got {value!r}."
)
_MESH_ERROR = "`mesh` must be a jax.sharding.Mesh or None; got {value!r}."


def _check_sharding(sharding: Any) -> tuple[Any, ...]:
    if isinstance(sharding, PartitionSpec):
        return tuple(sharding)
    if isinstance(sharding, str) or not isinstance(sharding, Sequence):
        raise TypeError(_SHARDING_ERROR.format(value=sharding))
    for name in sharding:
        ok = (
            name is None
            or isinstance(name, str)
            or (isinstance(name, tuple) and all(isinstance(n, str) for n in name))
        )
        if not ok:
            raise TypeError(_SHARDING_ERROR.format(value=sharding))
    return tuple(sharding)


def _in_linen() -> bool:
    """Whether a linen module is being initialized (its ``self.param`` calls us)."""
    try:
        from flax.linen import module as linen_module
    except ImportError:  # pragma: no cover - flax is an optional dependency
        return False
    stack = getattr(linen_module._context, "module_stack", [None])
    return bool(stack) and stack[-1] is not None


def _spec(names: tuple[Any, ...]) -> PartitionSpec:
    """The mesh spec of `names`, through the context's logical axis rules as Flax resolves
    them (names that no rule maps are mesh axis names)."""
    from flax.core import spmd as core_spmd

    rules = core_spmd.get_logical_axis_rules()
    if rules:
        return PartitionSpec(*core_spmd.from_sharding_rules(names, rules))
    return PartitionSpec(*names)


def _out_sharding(names: tuple[Any, ...], mesh: jax.sharding.Mesh | None) -> Any:
    """The NamedSharding to draw into, or None where no mesh is known (unsharded, as Flax)."""
    mesh = mesh if mesh is not None else sharding_lib.concrete_mesh()
    if mesh is None:
        abstract = jax.sharding.get_abstract_mesh()
        return None if abstract.empty else _spec(names)  # a PartitionSpec on the context mesh
    return NamedSharding(mesh, _spec(names))


def with_partitioning(
    init: Callable[..., Any],
    sharding: Sequence[Any],
    mesh: jax.sharding.Mesh | None = None,
    **metadata: Any,
) -> Callable[..., Any]:
    """A drop-in for ``nnx.with_partitioning`` and linen's ``nn.with_partitioning`` that draws
    each device's shard directly.

    Flax calls ``kernel_init(key, shape, dtype)`` without a sharding and shards the result
    afterwards, so under ``jax.jit`` every device may build the whole array (per-device
    temporaries of 32 shards for ``he_normal`` on a 2048² kernel over 8 devices, 48 for
    ``orthogonal``). With this wrapper a jaxinit initializer is called with
    ``out_sharding=`` the sharding Flax would apply, and the result carries the same metadata
    (NNX) or box (linen ``nn.Partitioned``), so the model is born sharded through the ordinary
    ``kernel_init`` path, with the values of the unsharded call (``orthogonal`` to 2e-6).
    Initializers that are not jaxinit's are called as Flax calls them.

    Args:
      init: the initializer (a jaxinit one gets ``out_sharding``; any other is called as is).
      sharding: one entry per array axis: a mesh axis name, a logical name (resolved by the
        context's ``nn.logical_axis_rules``, as Flax resolves them), a tuple of names, or None.
      mesh: the mesh (default: the one set by ``jax.set_mesh``). With no mesh anywhere the
        array is drawn unsharded, as Flax does.
      **metadata: more NNX variable metadata, as for ``nnx.with_partitioning``.

    Returns:
      An initializer ``(key, shape, dtype=None) -> VariableMetadata`` (NNX) or
      ``nn.Partitioned`` (inside a linen module).

    Raises:
      TypeError: for a bad `sharding` or `mesh` (when built).

    Examples:
      >>> import jax, jaxinit, jaxinit.flax
      >>> from flax import nnx
      >>> mesh = jax.make_mesh((1,), ("model",))
      >>> init = jaxinit.flax.with_partitioning(jaxinit.orthogonal(), (None, "model"))
      >>> with jax.set_mesh(mesh):
      ...     layer = nnx.Linear(64, 64, kernel_init=init, rngs=nnx.Rngs(0))
      >>> layer.kernel.get_metadata()["out_sharding"], layer.kernel[...].sharding.spec
      ((None, 'model'), P(None, 'model'))
    """
    names = _check_sharding(sharding)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(_MESH_ERROR.format(value=mesh))
    inner = init.init if isinstance(init, RuleInit) else init
    ours = isinstance(inner, BaseInitializer)

    @functools.wraps(init)
    def wrapper(key: Any, shape: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        out = _out_sharding(names, mesh) if ours else None
        if out is not None:
            value = inner(key, shape, dtype, out_sharding=out)
        elif dtype is None and not args and not kwargs:
            value = init(key, shape)
        else:
            value = init(key, shape, dtype, *args, **kwargs)
        if _in_linen():
            import flax.linen as nn

            return nn.Partitioned(value, names, mesh=mesh)
        from flax import nnx

        return nnx.with_partitioning(lambda *_: value, names, mesh, **metadata)()

    return wrapper
