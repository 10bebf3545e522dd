"""Generating many parameters in one jitted computation, each straight into its sharding.

Parameters with the same (initializer, shape, dtype, sharding) are generated together by one
``jax.vmap`` over their stacked path keys, so a deep model compiles about as fast as a shallow
one; vmapping a jaxinit initializer over keys gives the bits of calling it key by key. Groups
are cut at `GROUP_BYTES` per device: generating them at once costs temporaries proportional to
the group (jax's threefry keeps two uint32 words per element), and the cut bounds that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from jaxinit._src.base import BaseInitializer
from jaxinit._src.orthogonal import DeltaOrthogonal, Orthogonal

#: Default bound on the bytes per device of parameters generated together by one vmap.
GROUP_BYTES = 16 * 2**20

#: Initializers whose construction depends on the layout (orthogonal forms each device's block
#: under shard_map): sharded, they are generated one by one (a vmap over shard_map deadlocks).
_LAYOUT_BUILT = (Orthogonal, DeltaOrthogonal)

_MESHES_ERROR = (
    "the parameters live on {n} different meshes ({meshes}); reinit generates them in one "
    "computation over one mesh. Re-initialize each mesh's parameters separately."
)


@dataclasses.dataclass(frozen=True)
class Job:
    """One parameter to generate: its path hash, initializer, shape, dtype, target sharding."""

    path: str
    hash: np.uint32
    init: Any
    shape: tuple[int, ...]
    dtype: np.dtype
    sharding: jax.sharding.Sharding | None


def _mesh(jobs: Sequence[Job]) -> Mesh:
    """The one mesh of the sharded parameters, or a mesh over the unsharded ones' device(s)."""
    meshes = {j.sharding.mesh for j in jobs if isinstance(j.sharding, NamedSharding)}
    meshes = {m for m in meshes if isinstance(m, Mesh)}  # `flax_targets` made them concrete
    if len(meshes) > 1:
        raise ValueError(_MESHES_ERROR.format(n=len(meshes), meshes=meshes))
    if meshes:
        return meshes.pop()
    devices: set[Any] = set()
    for j in jobs:
        devices |= set(j.sharding.device_set) if j.sharding is not None else {jax.devices()[0]}
    return Mesh(np.array(sorted(devices, key=lambda d: d.id)), ("jaxinit_replica",))


def _placement(job: Job, mesh: Mesh) -> tuple[NamedSharding, Any]:
    """The sharding to generate `job` in, and the one to move it to afterwards (or None)."""
    if isinstance(job.sharding, NamedSharding):
        return job.sharding, None
    replicated = NamedSharding(mesh, PartitionSpec())
    if job.sharding is None and mesh.size == 1:
        return replicated, SingleDeviceSharding(mesh.devices.flat[0])
    return replicated, job.sharding  # e.g. single-device parameters of a sharded model


def _device_bytes(job: Job, sharding: NamedSharding) -> float:
    parts = 1
    for entry in sharding.spec:
        names = () if entry is None else (entry,) if isinstance(entry, str) else entry
        parts *= math.prod(sharding.mesh.shape[n] for n in names)
    return math.prod(job.shape) * job.dtype.itemsize / parts


def _vmappable(job: Job, sharding: NamedSharding) -> bool:
    if not isinstance(job.init, BaseInitializer):
        return False  # a foreign callable: no promise that vmap keeps its bits
    sharded = any(e is not None for e in sharding.spec)
    return not (sharded and isinstance(job.init, _LAYOUT_BUILT))


def chunks(jobs: Sequence[Job], gens: Sequence[NamedSharding], group_bytes: int) -> list[list[int]]:
    """Indices of jobs to generate together: same (init, shape, dtype, sharding), cut at
    `group_bytes` per device; every other job alone. In first-occurrence order."""
    groups: dict[Any, list[int]] = {}
    for i, (job, gen) in enumerate(zip(jobs, gens, strict=True)):
        try:
            key: Any = (job.init, job.shape, job.dtype, gen) if _vmappable(job, gen) else i
            hash(key)
        except TypeError:  # an unhashable initializer
            key = i
        groups.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        size = _device_bytes(jobs[members[0]], gens[members[0]])
        per_chunk = max(1, int(group_bytes // size) if size else len(members))
        out += [members[s : s + per_chunk] for s in range(0, len(members), per_chunk)]
    return out


def _foreign(job: Job, sharding: NamedSharding, key: jax.Array) -> jax.Array:
    """A callable that is not a jaxinit initializer (e.g. jax's own), placed in `sharding`."""

    def run(k: jax.Array) -> jax.Array:
        x = job.init(k, job.shape, job.dtype)
        return jnp.asarray(getattr(x, "raw_value", x))  # unwrap Flax's VariableMetadata

    explicit = tuple(getattr(sharding.mesh, "explicit_axes", ()) or ())
    if explicit:  # compute in auto mode over the explicit axes, typed with the sharding
        typed: Any = jax.sharding.auto_axes(run, out_sharding=sharding, axes=explicit)
        return typed(key)
    return jax.lax.with_sharding_constraint(run(key), sharding)


def _call(job: Job, sharding: NamedSharding, key: jax.Array) -> jax.Array:
    try:
        if isinstance(job.init, BaseInitializer):
            return job.init(key, job.shape, job.dtype, out_sharding=sharding)
        return _foreign(job, sharding, key)
    except (ValueError, TypeError) as e:
        raise type(e)(f"parameter {job.path!r} of shape {job.shape}: {e}") from e


@dataclasses.dataclass(frozen=True)
class Program:
    """The one jitted computation of a list of jobs, and where its outputs go afterwards."""

    fn: Any
    mesh: Mesh
    finals: tuple[Any, ...]

    def _context(self) -> Any:
        explicit = tuple(getattr(self.mesh, "explicit_axes", ()) or ())
        if explicit and jax.sharding.get_abstract_mesh().empty:
            return jax.set_mesh(self.mesh)  # Explicit-mesh shardings need the mesh set
        return contextlib.nullcontext()

    def _root(self, key: jax.Array) -> jax.Array:
        return jax.device_put(key, NamedSharding(self.mesh, PartitionSpec()))

    def lower(self, key: jax.Array) -> Any:
        """The lowered computation (for memory and cost analysis)."""
        with self._context():
            return self.fn.lower(self._root(key))

    def __call__(self, key: jax.Array) -> list[jax.Array]:
        with self._context():
            outs = self.fn(self._root(key))
        pairs = zip(outs, self.finals, strict=True)
        return [x if final is None else jax.device_put(x, final) for x, final in pairs]


def program(jobs: Sequence[Job], group_bytes: int) -> Program:
    """The computation generating every job from ``fold_in(key, job.hash)``."""
    if not isinstance(group_bytes, int) or group_bytes < 0:
        raise ValueError(f"`group_bytes` must be a non-negative int; got {group_bytes!r}.")
    mesh = _mesh(jobs)
    placements = [_placement(job, mesh) for job in jobs]
    gens = [g for g, _ in placements]
    plan = chunks(jobs, gens, group_bytes)

    def body(root: jax.Array) -> tuple[jax.Array, ...]:
        outs: list[Any] = [None] * len(jobs)
        for chunk in plan:
            if len(chunk) == 1:
                i = chunk[0]
                outs[i] = _call(jobs[i], gens[i], jax.random.fold_in(root, jobs[i].hash))
                continue
            first, gen = jobs[chunk[0]], gens[chunk[0]]
            hashes = np.array([jobs[i].hash for i in chunk], np.uint32)
            ks = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root, hashes)
            stacked = jax.vmap(lambda k, job=first, gen=gen: _call(job, gen, k))(ks)
            for pos, i in enumerate(chunk):
                outs[i] = stacked[pos]
        return tuple(outs)

    fn = jax.jit(body, out_shardings=tuple(gens))
    return Program(fn, mesh, tuple(f for _, f in placements))


def generate(jobs: Sequence[Job], key: jax.Array, group_bytes: int) -> list[jax.Array]:
    """Every job's array, from ``fold_in(key, job.hash)``, in one jitted computation."""
    return program(jobs, group_bytes)(key) if jobs else []
