"""Placement: the one path by which every initializer honours ``out_sharding``.

An initializer's computation is a pure function of (key, static config, shape, dtype). It always
runs under ``jax.jit`` -- so eager and jitted calls compile the same program and return the same
bits -- and, when a sharding is asked for, the program's output is constrained to it, so XLA's SPMD
partitioner generates each shard on its own device and never the global array on one device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxinit._src.typing import Array, OutSharding

_SHARDING_ERROR = (
    "`out_sharding` must be a jax.sharding.NamedSharding, a PartitionSpec (under a mesh set with "
    "`jax.set_mesh`/`jax.sharding.use_mesh`) or None; got {value!r}."
)
_NO_MESH_ERROR = (
    "`out_sharding`={value!r} is a PartitionSpec but no mesh is set: enter one with "
    "`jax.set_mesh(mesh)` or pass a NamedSharding."
)


def canonicalize(out_sharding: OutSharding, shape: tuple[int, ...]) -> NamedSharding | None:
    """`out_sharding` as a NamedSharding (None stays None), checked against `shape`."""
    if out_sharding is None:
        return None
    if isinstance(out_sharding, PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty:
            raise ValueError(_NO_MESH_ERROR.format(value=out_sharding))
        concrete = _concrete_mesh()
        sharding = NamedSharding(concrete if concrete is not None else mesh, out_sharding)
    elif isinstance(out_sharding, NamedSharding):
        sharding = out_sharding
    else:
        raise TypeError(_SHARDING_ERROR.format(value=out_sharding))
    if len(sharding.spec) > len(shape):
        raise ValueError(
            f"`out_sharding`={sharding.spec} has {len(sharding.spec)} entries but the shape "
            f"{shape} has rank {len(shape)}."
        )
    return sharding


def _concrete_mesh() -> jax.sharding.Mesh | None:
    get = getattr(jax.sharding, "get_mesh", None)
    if get is None:  # pragma: no cover - older jax
        return None
    try:
        mesh = get()
    except Exception:  # pragma: no cover - no concrete mesh in this context
        return None
    return None if mesh is None or getattr(mesh, "empty", True) else mesh


def _is_tracing() -> bool:
    return not jax.core.trace_state_clean()


@functools.lru_cache(maxsize=None)
def _jitted(fn: Callable[..., Array], sharding: Any, how: str) -> Callable[..., Array]:
    """One cached jit per (program, sharding, placement method): eager calls never retrace."""
    if how == "out_shardings":
        return jax.jit(fn, static_argnums=(0, 3, 4), out_shardings=sharding)
    if how == "constraint":

        def constrained(static, dyn, key, shape, dtype):
            return jax.lax.with_sharding_constraint(fn(static, dyn, key, shape, dtype), sharding)

        return jax.jit(constrained, static_argnums=(0, 3, 4))
    return jax.jit(fn, static_argnums=(0, 3, 4))


def place(
    fn: Callable[..., Array],
    static: Any,
    dyn: Any,
    key: Array,
    shape: tuple[int, ...],
    dtype: Any,
    sharding: NamedSharding | None,
) -> Array:
    """Runs ``fn(static, dyn, key, shape, dtype)`` jitted, its output placed in `sharding`."""
    if sharding is None:
        return _jitted(fn, None, "plain")(static, dyn, key, shape, dtype)
    explicit = tuple(getattr(sharding.mesh, "explicit_axes", ()) or ())
    if explicit:
        # Explicit axes: compute in auto mode over them, type the result with the sharding.
        plain = _jitted(fn, None, "plain")
        run = jax.sharding.auto_axes(
            lambda k: plain(static, dyn, k, shape, dtype), out_sharding=sharding, axes=explicit
        )
        return run(key)
    if _is_tracing() or not isinstance(sharding.mesh, jax.sharding.Mesh):
        return _jitted(fn, sharding, "constraint")(static, dyn, key, shape, dtype)
    return _jitted(fn, sharding, "out_shardings")(static, dyn, key, shape, dtype)
