"""Generating many parameters in one jitted computation, each straight into its sharding.

Compile time, not run time, is what a cold ``reinit`` pays on CPU: XLA compiles every distinct
threefry draw (about 0.1-0.25 s each), so the program is built to hold as few as it can:

* unsharded unit draws times a scale (``normal(0.02)``, ``he_uniform``, ``lecun_normal``, ...)
  of one unit and dtype are drawn by one loop of equal blocks, whatever their shapes
  (`Blocks`: jax's partitionable threefry draws element ``j`` from the key and the counter
  ``j`` alone, so any parameter is a run of blocks) -- one threefry for all of a ResNet's
  convolutions;
* other random parameters with the same initializer, shape, dtype and sharding are generated
  together by one ``lax.map`` over their path keys (the loop body is one member's own
  computation, compiled once, so the bits are those of calling the initializer key by key);
* small fills (zeros, ones, scalar constants) are not in the loops at all: one element of
  each is computed by its initializer and the rest is filled on the host and placed in a
  batch, so a deep model's biases and norm scales cost no kernel each.

The loops write their members into one stacked array that is then split by small jitted
takers (one per member shape). Groups are cut at `GROUP_BYTES` per device, which bounds the
extra memory of the stacked copy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from jaxinit._src.core import dtypes, streams, units
from jaxinit._src.core import sharding as sharding_lib
from jaxinit._src.core.base import BaseInitializer

#: Default bound on the bytes per device of parameters generated together by one lax.map.
GROUP_BYTES = 256 * 2**20


_MESHES_ERROR = (
    "the parameters live on {n} different meshes ({meshes}); reinit generates them in one "
    "computation over one mesh. Re-initialize each mesh's parameters separately."
)


#: The axis of the mesh `reinit` makes when no parameter and no context names one.
_REPLICA = "jaxinit_replica"


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
    """The one mesh of the sharded parameters; else the context's mesh (``jax.set_mesh``), which
    a computation under it must use; else a mesh over the unsharded parameters' device(s)."""
    meshes = {j.sharding.mesh for j in jobs if isinstance(j.sharding, NamedSharding)}
    meshes = {m for m in meshes if isinstance(m, Mesh)}  # `flax_targets` made them concrete
    if len(meshes) > 1:
        raise ValueError(_MESHES_ERROR.format(n=len(meshes), meshes=meshes))
    if meshes:
        return meshes.pop()
    context = sharding_lib.concrete_mesh()
    if context is not None:
        return context
    devices: set[Any] = set()
    for j in jobs:
        devices |= set(j.sharding.device_set) if j.sharding is not None else {jax.devices()[0]}
    return Mesh(np.array(sorted(devices, key=lambda d: d.id)), (_REPLICA,))


def _placement(job: Job, mesh: Mesh) -> tuple[NamedSharding, Any]:
    """The sharding to generate `job` in, and the one to move it to afterwards (or None)."""
    if isinstance(job.sharding, NamedSharding):
        return job.sharding, None
    replicated = NamedSharding(mesh, PartitionSpec())
    if job.sharding is None and mesh.axis_names == (_REPLICA,) and mesh.size == 1:
        return replicated, SingleDeviceSharding(mesh.devices.flat[0])
    # A parameter that says nowhere where it lives: replicated on the mesh. One on a device
    # (e.g. single-device parameters of a sharded model): generated replicated, moved there.
    return replicated, job.sharding


def _device_bytes(job: Job, sharding: NamedSharding) -> float:
    parts = math.prod(sharding_lib.shard_count(entry, sharding.mesh) for entry in sharding.spec)
    return math.prod(job.shape) * job.dtype.itemsize / parts


def _groupable(job: Job) -> bool:
    """A random jaxinit initializer: a foreign callable makes no promise about its bits under
    a loop, and a constant is cheaper alone."""
    return isinstance(job.init, BaseInitializer) and job.init.random


#: Fills (zeros, ones, scalar constants) up to this many bytes are built on the host.
FILL_HOST_BYTES = 4 * 2**20


def _fill_of(job: Job) -> Any:
    """The key of a small fill's value -- ``(initializer, dtype)`` -- or None: a `zeros`,
    `ones` or scalar `constant` of at most `FILL_HOST_BYTES`, which `Program` builds on the
    host from one element computed by the initializer itself (so the bits are its own)."""
    from jaxinit._src.schemes import constant  # the schemes import core, not flax

    init = job.init
    if not isinstance(init, (constant.Zeros, constant.Ones, constant.Constant)) or init.random:
        return None
    if isinstance(init, constant.Constant) and (np.ndim(init._value()) or not init.concrete):
        return None
    size = math.prod(job.shape)
    if not size or size * job.dtype.itemsize > FILL_HOST_BYTES:
        return None
    try:
        hash(init)
    except TypeError:
        return None
    return (init, job.dtype)


def unit_of(job: Job) -> tuple[units.Unit, np.float32] | None:
    """The job's (unit draw, float32 scale), when its initializer is such a product."""
    if not _groupable(job) or not math.prod(job.shape):
        return None
    try:
        return units.unit_scale(job.init, job.shape, job.dtype)
    except (ValueError, TypeError):  # e.g. no fans for the shape: the call says so, with the path
        return None


def _replicated(gen: NamedSharding) -> bool:
    return all(e is None for e in gen.spec)


def _blockable(job: Job, gen: NamedSharding, threefry: bool) -> bool:
    """Whether `job` is drawn in blocks (see `Blocks`): an unsharded unit draw times a scale,
    from a threefry key under partitionable threefry, with counters that fit 32 bits."""
    return (
        threefry
        and _replicated(gen)
        and unit_of(job) is not None
        and math.prod(job.shape) < 2**32
        and bool(jax.config.jax_threefry_partitionable)  # type: ignore[attr-defined]
    )


def _group_key(job: Job, gen: NamedSharding, threefry: bool = False) -> Any:
    """Jobs with equal keys run in one loop: one unit draw at any size (blocks, see
    `Blocks`), else one unit draw at one size (any shape, unsharded) or one shape (sharded: the
    layout fixes the draw), or else one initializer and shape."""
    if not _groupable(job):
        return None
    unit = unit_of(job)
    if unit is None:
        return (job.init, job.shape, job.dtype, gen)
    if _blockable(job, gen, threefry):
        return ("blocks", unit[0], job.dtype, gen)
    size = math.prod(job.shape) if _replicated(gen) else job.shape
    return (unit[0], size, job.dtype, gen)


def chunks(
    jobs: Sequence[Job], gens: Sequence[NamedSharding], group_bytes: int, threefry: bool = False
) -> list[list[int]]:
    """Indices of jobs to generate together (see `_group_key`), cut at `group_bytes` per
    device; every other job alone. In first-occurrence order."""
    groups: dict[Any, list[int]] = {}
    for i, (job, gen) in enumerate(zip(jobs, gens, strict=True)):
        try:
            key: Any = _group_key(job, gen, threefry)
            hash(key)
        except TypeError:  # an unhashable initializer
            key = None
        groups.setdefault(i if key is None else key, []).append(i)
    out: list[list[int]] = []
    for key, members in groups.items():
        if isinstance(key, tuple) and key[0] == "blocks":  # members of any size
            out += _cut(members, [_device_bytes(jobs[i], gens[i]) for i in members], group_bytes)
            continue
        size = _device_bytes(jobs[members[0]], gens[members[0]])
        per_chunk = max(1, int(group_bytes // size) if size else len(members))
        out += [members[s : s + per_chunk] for s in range(0, len(members), per_chunk)]
    return out


def _cut(members: list[int], sizes: list[float], limit: int) -> list[list[int]]:
    """`members` in runs of at most `limit` bytes (a larger member alone)."""
    runs: list[list[int]] = [[]]
    total = 0.0
    for i, size in zip(members, sizes, strict=True):
        if runs[-1] and total + size > limit:
            runs.append([])
            total = 0.0
        runs[-1].append(i)
        total += size
    return runs


#: Loop iterations cost about as much as drawing this many elements (2-core CPU, measured).
_ITERATION_ELEMENTS = 2048


@dataclasses.dataclass(frozen=True)
class Blocks:
    """How a chunk of unit draws of any sizes is drawn by one loop of equal blocks.

    jax's partitionable threefry draws element ``j`` of a parameter from its key and the
    counter ``j`` alone, so a parameter of ``n`` elements is ``ceil(n / size)`` blocks of
    ``size`` counters (the last one cut short), each drawn with its parameter's key and first
    counter. One compiled loop body -- one threefry, one transform, one scale -- serves every
    parameter of the chunk, whatever its shape, and the bits are those of its own call.

    Attributes:
      size: elements per block (a power of two).
      member: per block, the index of its parameter within the chunk.
      offset: per block, its first counter.
      start: per parameter, its first block.
    """

    size: int
    member: np.ndarray
    offset: np.ndarray
    start: tuple[int, ...]

    @classmethod
    def of(cls, sizes: Sequence[int]) -> Blocks:
        """The block size that draws `sizes` at least cost (padding plus loop iterations)."""

        def cost(b: int) -> int:
            blocks = sum(-(-n // b) for n in sizes)
            return blocks * (b + _ITERATION_ELEMENTS)

        size = min((2**e for e in range(8, 21)), key=cost)
        counts = [-(-n // size) for n in sizes]
        member = np.repeat(np.arange(len(sizes), dtype=np.int32), counts)
        offset = np.concatenate([np.arange(c, dtype=np.uint32) * np.uint32(size) for c in counts])
        start = tuple(int(x) for x in np.cumsum([0, *counts[:-1]]))
        return cls(size, member, offset, start)


def _foreign(job: Job, sharding: NamedSharding, key: jax.Array) -> jax.Array:
    """A callable that is not a jaxinit initializer (e.g. jax's own), placed in `sharding`."""

    def run(k: jax.Array) -> jax.Array:
        x = job.init(k, job.shape, job.dtype)
        return jnp.asarray(getattr(x, "raw_value", x))  # unwrap Flax's VariableMetadata

    explicit = sharding_lib.explicit_axes(sharding.mesh)
    if explicit:  # compute in auto mode over the explicit axes, typed with the sharding
        typed: Any = jax.sharding.auto_axes(run, out_sharding=sharding, axes=explicit)
        return typed(key)
    return jax.lax.with_sharding_constraint(run(key), sharding)


def at_parameter(path: str, shape: tuple[int, ...], error: Exception) -> Exception:
    """`error` (a ValueError or TypeError) prefixed with the parameter it is about: `plan` and
    `reinit` raise the same message for the same parameter."""
    return type(error)(f"parameter {path!r} of shape {shape}: {error}")


def _call(job: Job, sharding: NamedSharding, key: jax.Array) -> jax.Array:
    try:
        if isinstance(job.init, BaseInitializer):
            return job.init(key, job.shape, job.dtype, out_sharding=sharding)
        return _foreign(job, sharding, key)
    except (ValueError, TypeError) as e:
        raise at_parameter(job.path, job.shape, e) from e


def _stacked(sharding: NamedSharding) -> NamedSharding:
    """The sharding of a group's stacked array: its members' sharding behind a leading axis."""
    return NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))


@functools.cache
def _taker(sharding: NamedSharding, shape: tuple[int, ...]) -> Any:
    """A jitted ``x[i].reshape(shape)`` with `i` traced: one compiled program per group and
    member shape, whatever the group's size."""
    take = lambda x, i: jax.lax.dynamic_index_in_dim(x, i, 0, keepdims=False).reshape(shape)
    return jax.jit(take, out_shardings=sharding)


@functools.cache
def _block_taker(sharding: NamedSharding, shape: tuple[int, ...], blocks: int) -> Any:
    """A jitted ``x[i : i + blocks].ravel()[:prod(shape)].reshape(shape)``, `i` traced: one
    compiled program per member shape, whatever the chunk."""

    def take(x: jax.Array, i: jax.Array) -> jax.Array:
        run = jax.lax.dynamic_slice_in_dim(x, i, blocks, 0).reshape(-1)
        return run[: math.prod(shape)].reshape(shape)

    return jax.jit(take, out_shardings=sharding)


def _draw_blocks(root: jax.Array, members: Sequence[Job], blocks: Blocks) -> jax.Array:
    """The members' draws in blocks (see `Blocks`): an array (number of blocks, block size)."""
    drawn = [unit_of(job) for job in members]
    unit = drawn[0][0]  # type: ignore[index]
    scales = np.array([d[1] for d in drawn if d is not None], np.float32)
    hashes = np.array([job.hash for job in members], np.uint32)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root, hashes)
    data = jax.random.key_data(keys)[blocks.member]  # (blocks, 2): each block's key
    dtype = members[0].dtype

    def block(args: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        key_data, first, scale = args  # the same float32 product as `units.Scaled`
        x = unit.from_bits(streams.bits_at(key_data, first, blocks.size), np.float32) * scale
        return dtypes.cast_out(x, dtype)

    return jax.lax.map(block, (data, blocks.offset, scales[blocks.member]))


@dataclasses.dataclass(frozen=True)
class Program:
    """The one jitted computation of a list of jobs, and how its outputs become the arrays.

    `fn` returns one array per chunk of `chunks`: a single job's array, or a group's members
    stacked along a new leading axis, which `__call__` splits (one small program per group:
    slicing a group into its members inside `fn` would compile one kernel per member).
    """

    fn: Any
    mesh: Mesh
    plan: tuple[tuple[int, ...], ...]
    gens: tuple[NamedSharding, ...]
    shapes: tuple[tuple[int, ...], ...]
    finals: tuple[Any, ...]
    blocks: tuple[Blocks | None, ...] = ()
    fills: tuple[tuple[int, int], ...] = ()
    host: bool = True

    def _context(self) -> Any:
        return sharding_lib.entering(self.mesh)  # Explicit-mesh shardings need the mesh set

    def _root(self, key: jax.Array) -> jax.Array:
        return jax.device_put(key, NamedSharding(self.mesh, PartitionSpec()))

    def lower(self, key: jax.Array) -> Any:
        """The lowered computation (for memory and cost analysis)."""
        with self._context():
            return self.fn.lower(self._root(key))

    def _via_host(self, i: int) -> bool:
        """Whether job `i` is cut from its group on the host: a replicated parameter on CPU,
        where the group's array is host memory already (`np.asarray` is a view) and one
        batched ``device_put`` of the members beats a jitted take per member."""
        cpu = self.mesh.devices.flat[0].platform == "cpu"
        return self.host and cpu and _replicated(self.gens[i])

    def split(self, outs: list[Any]) -> list[jax.Array]:
        """Every job's array from `fn`'s outputs (`outs`, which this empties so that each
        stacked group is freed once split), each in its final sharding."""
        arrays: list[Any] = [None] * len(self.finals)
        with self._context():
            for k, chunk in enumerate(self.plan):
                out, outs[k] = outs[k], None
                blocks = self.blocks[k] if self.blocks else None
                if len(chunk) == 1 and blocks is None:
                    arrays[chunk[0]] = out
                elif self._via_host(chunk[0]):
                    host = np.asarray(out)
                    for pos, i in enumerate(chunk):
                        n = math.prod(self.shapes[i])
                        row = (
                            host.reshape(-1)[blocks.start[pos] * blocks.size :][:n]
                            if blocks
                            else host[pos]
                        )
                        arrays[i] = row.reshape(self.shapes[i])
                elif blocks is not None:
                    for pos, i in enumerate(chunk):
                        n = -(-math.prod(self.shapes[i]) // blocks.size)
                        take = _block_taker(self.gens[i], self.shapes[i], n)
                        arrays[i] = take(out, np.int32(blocks.start[pos]))
                else:
                    for pos, i in enumerate(chunk):
                        arrays[i] = _taker(self.gens[i], self.shapes[i])(out, np.int32(pos))
                del out
        if self.fills:  # built on the host from their one computed element
            values = [np.asarray(t).reshape(-1)[0] for t in outs[len(self.plan) :]]
            for i, t in self.fills:
                arrays[i] = np.full(self.shapes[i], values[t], values[t].dtype)
        # One batched placement: host arrays (fills, members cut on the host) into their
        # sharding, device arrays made elsewhere than where they live (`_placement`) moved.
        moves = [
            i for i, x in enumerate(arrays)
            if isinstance(x, np.ndarray) or self.finals[i] is not None
        ]  # fmt: skip
        placed = jax.device_put(
            [arrays[i] for i in moves], [self.finals[i] or self.gens[i] for i in moves]
        )
        for i, x in zip(moves, placed, strict=True):
            arrays[i] = x
        return arrays

    def __call__(self, key: jax.Array) -> list[jax.Array]:
        with self._context():
            outs = list(self.fn(self._root(key)))
        return self.split(outs)


def program(
    jobs: Sequence[Job], group_bytes: int, *, threefry: bool = True, host: bool = True
) -> Program:
    """The computation generating every job from ``fold_in(key, job.hash)``.

    Unsharded unit draws times a scale (``normal(0.02)``, ``he_uniform``, ``lecun_normal``,
    ...) are drawn by one loop of equal blocks per unit draw and dtype, whatever their shapes
    (see `Blocks`; `threefry` says the key allows it). Other groups are generated by
    ``lax.map`` over their members' keys: the loop body is the member's own computation (so
    the bits are those of calling it alone), compiled once, and it runs as fast as separate
    calls (a ``vmap`` over keys runs jax's threefry 2-3x slower on CPU).
    """
    if not isinstance(group_bytes, int) or group_bytes < 0:
        raise ValueError(f"`group_bytes` must be a non-negative int; got {group_bytes!r}.")
    mesh = _mesh(jobs)
    placements = [_placement(job, mesh) for job in jobs]
    gens = [g for g, _ in placements]
    fill_keys = [_fill_of(job) if host else None for job in jobs]
    templates = list(dict.fromkeys(k for k in fill_keys if k is not None))
    fills = tuple((i, templates.index(k)) for i, k in enumerate(fill_keys) if k is not None)
    rest = [i for i, k in enumerate(fill_keys) if k is None]
    cut = chunks([jobs[i] for i in rest], [gens[i] for i in rest], group_bytes, threefry)
    plan = tuple(tuple(rest[j] for j in c) for c in cut)
    replicated = NamedSharding(mesh, PartitionSpec())
    layouts = tuple(
        Blocks.of([math.prod(jobs[i].shape) for i in c])
        if len(c) > 1 and _blockable(jobs[c[0]], gens[c[0]], threefry)
        else None
        for c in plan
    )

    def body(root: jax.Array) -> tuple[jax.Array, ...]:
        outs: list[Any] = []
        for chunk, blocks in zip(plan, layouts, strict=True):
            first, gen = jobs[chunk[0]], gens[chunk[0]]
            if blocks is not None:
                outs.append(_draw_blocks(root, [jobs[i] for i in chunk], blocks))
                continue
            if len(chunk) == 1:
                outs.append(_call(first, gen, jax.random.fold_in(root, first.hash)))
                continue
            hashes = np.array([jobs[i].hash for i in chunk], np.uint32)
            ks = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root, hashes)
            drawn = [unit_of(jobs[i]) for i in chunk]
            if drawn[0] is None:
                outs.append(jax.lax.map(lambda k, job=first, gen=gen: _call(job, gen, k), ks))
                continue
            scales = np.array([u[1] for u in drawn if u is not None], np.float32)

            def member(k_scale, unit=drawn[0][0], job=first, gen=gen):
                k, scale = k_scale  # one unit draw, each member's own scale (and shape: split)
                return _call(dataclasses.replace(job, init=units.Scaled(unit, scale)), gen, k)

            outs.append(jax.lax.map(member, (ks, scales)))
        for init, dtype in templates:  # one element of each fill, by its initializer
            outs.append(_call(Job("", np.uint32(0), init, (1,), dtype, None), replicated, root))
        return tuple(outs)

    out_shardings = tuple(gens[c[0]] if len(c) == 1 else _stacked(gens[c[0]]) for c in plan)
    fn = jax.jit(body, out_shardings=out_shardings + (replicated,) * len(templates))
    shapes = tuple(job.shape for job in jobs)
    finals = tuple(f for _, f in placements)
    return Program(fn, mesh, plan, tuple(gens), shapes, finals, layouts, fills, host)


def generate(jobs: Sequence[Job], key: jax.Array, group_bytes: int) -> list[jax.Array]:
    """Every job's array, from ``fold_in(key, job.hash)``, in one jitted computation."""
    if not jobs:
        return []
    # Traced (reinit inside the caller's jit): nothing can go through the host.
    host = not isinstance(key, Tracer)
    return program(jobs, group_bytes, threefry=streams.is_threefry(key), host=host)(key)
