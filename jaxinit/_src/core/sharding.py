"""Placement: the one path by which every initializer honours ``out_sharding``.

An initializer's computation is a pure function of (key, static config, shape, dtype). It always
runs under ``jax.jit`` -- so eager and jitted calls compile the same program and return the same
bits -- and, when a sharding is asked for, the program's output is constrained to it, so XLA's SPMD
partitioner generates each shard on its own device and never the global array on one device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.core import Tracer
from jax.sharding import NamedSharding, PartitionSpec

from jaxinit._src.core.typing import Array, OutSharding

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
        concrete = concrete_mesh()
        check_spec(out_sharding, mesh)
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


def check_spec(spec: PartitionSpec, mesh: Any) -> None:
    """Raises a ValueError naming `out_sharding` for a spec that names a mesh axis twice or an
    axis the mesh does not have (jax raises a bare `Exception` subclass for the first)."""
    entries = [entry for entry in spec if isinstance(entry, str | tuple | list)]
    names = [name for entry in entries for name in axis_names(entry)]  # not UNCONSTRAINED
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"`out_sharding`={spec} names the mesh axis {', '.join(map(repr, repeated))} more "
            "than once: each mesh axis may shard at most one array axis."
        )
    unknown = [n for n in names if n not in mesh.axis_names]
    if unknown:
        raise ValueError(
            f"`out_sharding`={spec} names {', '.join(map(repr, unknown))}, not an axis of the "
            f"mesh; valid axes: {', '.join(map(repr, mesh.axis_names))}."
        )


_UNSHARDED_TRACE_WARNING = (
    "{name} traced for a {shape} array under a mesh of {n} devices without `out_sharding=`: "
    "XLA cannot carry an output sharding back through its Householder loop, so a device may "
    "form the whole matrix. Pass out_sharding= (the result's sharding), or as a Flax "
    "kernel_init use jaxinit.flax.with_partitioning(init, sharding)."
)


def warn_unsharded_trace(name: str, shape: tuple[int, ...]) -> None:
    """Warns that `name` is traced without `out_sharding` under a mesh of several devices."""
    mesh = jax.sharding.get_abstract_mesh()
    if not mesh.empty and mesh.size > 1 and math.prod(shape) > 0:
        message = _UNSHARDED_TRACE_WARNING.format(name=name, shape=shape, n=mesh.size)
        warnings.warn(message, UserWarning, stacklevel=3)


def concrete_mesh() -> jax.sharding.Mesh | None:
    """The concrete mesh set by ``jax.set_mesh`` in this context, if any."""
    get = getattr(jax.sharding, "get_mesh", None)
    if get is None:  # pragma: no cover - older jax
        return None
    try:
        mesh = get()
    except Exception:  # pragma: no cover - no concrete mesh in this context
        return None
    return None if mesh is None or getattr(mesh, "empty", True) else mesh


def context_mesh(fallback: Any) -> Any:
    """The context's (abstract) mesh -- inside ``auto_axes`` or ``shard_map``, the one with the
    current axis types -- or `fallback` when no mesh is set."""
    context = jax.sharding.get_abstract_mesh()
    return fallback if context.empty else context


def axis_names(entry: Any) -> tuple[str, ...]:
    """The mesh axis names of one PartitionSpec entry (None, a name, or a tuple of names)."""
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


def shard_count(entry: Any, mesh: Any) -> int:
    """Into how many blocks a PartitionSpec entry splits its array axis on `mesh`."""
    return math.prod(mesh.shape[name] for name in axis_names(entry))


def explicit_axes(mesh: Any) -> tuple[str, ...]:
    """The mesh's Explicit axes (its sharding is then part of the array's type)."""
    return tuple(getattr(mesh, "explicit_axes", ()) or ())


def entering(mesh: Any) -> Any:
    """A context that sets `mesh` when it has Explicit axes and no mesh is set: Explicit-mesh
    shardings need the mesh in context, also when a NamedSharding was given outside one."""
    no_context = jax.sharding.get_abstract_mesh().empty
    if explicit_axes(mesh) and no_context and isinstance(mesh, jax.sharding.Mesh):
        return jax.set_mesh(mesh)
    return contextlib.nullcontext()


def _is_tracing(key: Array) -> bool:
    """Whether the call is being traced (by jit, vmap, eval_shape...): its key is a tracer."""
    return isinstance(key, Tracer)


@functools.cache
def _jitted(
    fn: Callable[..., Array], sharding: Any, how: str, options: tuple = ()
) -> Callable[..., Array]:
    """One cached jit per (program, sharding, placement method, compiler options): eager calls
    never retrace."""
    static_argnums = (0, 3, 4, 5)
    jit = functools.partial(jax.jit, compiler_options=dict(options)) if options else jax.jit
    if how == "out_shardings":
        return jit(fn, static_argnums=static_argnums, out_shardings=sharding)
    if how == "constraint":

        def constrained(static, dyn, key, shape, dtype, layout):
            out = fn(static, dyn, key, shape, dtype, layout)
            return jax.lax.with_sharding_constraint(out, sharding)

        return jit(constrained, static_argnums=static_argnums)
    if how == "auto_axes":
        axes = explicit_axes(sharding.mesh)

        def typed(static, dyn, key, shape, dtype, layout):
            # Explicit axes: compute in auto mode over them, type the result with the sharding.
            run = jax.sharding.auto_axes(
                lambda k: fn(static, dyn, k, shape, dtype, layout), out_sharding=sharding, axes=axes
            )
            return run(key)

        return jit(typed, static_argnums=static_argnums)
    return jit(fn, static_argnums=static_argnums)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where an initializer's output will live, known while its program is traced.

    Attributes:
      sharded: per output axis, whether it is sharded; None when unknown (a traced call on
        several devices with no `out_sharding`: an enclosing jit may shard the result).
      sharding: the requested NamedSharding, if any.
    """

    sharded: tuple[bool, ...] | None
    sharding: NamedSharding | None = None

    def spec(self, ndim: int) -> tuple[Any, ...]:
        """The PartitionSpec entries, padded to `ndim`."""
        spec = tuple(self.sharding.spec) if self.sharding is not None else ()
        return spec + (None,) * (ndim - len(spec))

    def sub_sharding(self, start: int) -> NamedSharding:
        """The sharding of the trailing axes ``start:`` (e.g. a conv kernel's (in, out))."""
        assert self.sharding is not None and self.sharded is not None
        spec = self.spec(len(self.sharded))[start:]
        return NamedSharding(self.sharding.mesh, PartitionSpec(*spec))


def layout(sharding: NamedSharding | None, ndim: int, traced: bool) -> Layout:
    """The output's layout; axes unknown when traced on several devices without a sharding."""
    if sharding is None:
        if traced and jax.device_count() > 1:
            return Layout(None)  # an enclosing jit may shard the result: keep every axis
        return Layout((False,) * ndim)
    spec = tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))
    return Layout(tuple(s is not None for s in spec), sharding)


#: Compiler options XLA does not know (a jax upgrade may remove one): never passed again.
_UNKNOWN_OPTIONS: set[str] = set()
#: What jax says of compiler options given to a jit traced inside another transformation.
_TOP_LEVEL_ONLY = "can only be passed to top-level"


def _options(options: Any, sharding: NamedSharding | None, traced: bool) -> tuple:
    """`options` (a mapping of XLA:CPU compiler options) as a hashable tuple, for an eager call
    that runs on CPU; empty otherwise (a traced call is compiled by the caller's jit)."""
    if not options or traced:
        return ()
    mesh = sharding.mesh if sharding is not None else None
    device = mesh.devices.flat[0] if isinstance(mesh, jax.sharding.Mesh) else jax.devices()[0]
    if device.platform != "cpu":
        return ()
    return tuple(sorted((k, v) for k, v in options.items() if k not in _UNKNOWN_OPTIONS))


def _unknown_option(error: Exception, options: tuple) -> str | None:
    """The option of `options` that XLA refused as unknown, if that is what `error` says."""
    text = str(error)
    if "No such compile option" not in text:
        return None
    return next((k for k, _ in options if k in text), None)


def _run(fn: Callable[..., Array], sharding: Any, how: str, opts: tuple, args: tuple) -> Array:
    """``_jitted(fn, sharding, how, opts)(*args)``; without the compiler options where jax or
    XLA refuses them: under a trace after all (a traced parameter, a key closed over), or an
    option this XLA does not have (never passed again)."""
    try:
        return _jitted(fn, sharding, how, opts)(*args)
    except Exception as error:
        if not opts:
            raise
        if _TOP_LEVEL_ONLY in str(error):
            return _jitted(fn, sharding, how, ())(*args)
        name = _unknown_option(error, opts)
        if name is None:
            raise
        _UNKNOWN_OPTIONS.add(name)
        return _run(fn, sharding, how, tuple(o for o in opts if o[0] != name), args)


def place(
    fn: Callable[..., Array],
    static: Any,
    dyn: Any,
    key: Array,
    shape: tuple[int, ...],
    dtype: Any,
    sharding: NamedSharding | None,
    options: Any = None,
) -> Array:
    """Runs ``fn(static, dyn, key, shape, dtype, layout)`` jitted, placed in `sharding`, with
    XLA:CPU compiler `options` (a mapping) for an eager call on CPU."""
    opts = _options(options, sharding, _is_tracing(key))
    args = (static, dyn, key, shape, dtype, layout(sharding, len(shape), _is_tracing(key)))
    if sharding is None:
        return _run(fn, None, "plain", opts, args)
    if (
        not math.prod(shape)
        and not _is_tracing(key)
        and isinstance(sharding.mesh, jax.sharding.Mesh)
    ):
        # An empty array, placed from the host: jax's jit(out_shardings=...) gives a zero-size
        # output shards of the global shape ((0, 2) where device_put gives (0, 1)).
        return jax.device_put(np.zeros(shape, dtype), sharding)
    if explicit_axes(sharding.mesh):
        if _is_tracing(key):
            return _run(fn, sharding, "auto_axes", opts, args)
        with entering(sharding.mesh):  # a NamedSharding given outside any mesh context
            return _run(fn, sharding, "auto_axes", opts, args)
    if _is_tracing(key) or not isinstance(sharding.mesh, jax.sharding.Mesh):
        return _run(fn, sharding, "constraint", opts, args)
    return _run(fn, sharding, "out_shardings", opts, args)
