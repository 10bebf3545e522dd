"""One process of the 2-process JAX cluster started by ``tests/test_multiprocess.py``.

Usage: ``python _multiprocess_worker.py PORT NUM_PROCESSES PROCESS_ID OUT_DIR``, run with
``JAX_PLATFORMS=cpu`` and ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.

The worker joins a JAX cluster whose coordinator listens on ``127.0.0.1:PORT`` (CPU collectives
over gloo), builds meshes over the *global* devices, initializes the parameter tree of `cases`
with ``out_sharding`` -- once leaf by leaf (eager calls) and once as a whole tree under one
``jax.jit`` -- and writes the shards this process holds (its addressable shards) to ``OUT_DIR``:
``shards_<pid>.npz`` (the bits of each shard, as unsigned integers, and of the whole tree gathered
to every process with a gloo collective) and ``meta_<pid>.json`` (the devices seen, and per shard
its leaf, index and device).

Importing this module has no side effects: the test imports `cases` and `make_meshes` from it to
compute the same tree single-process.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

#: Bounded waits for the distributed runtime (seconds): a lost peer fails, never hangs.
INIT_TIMEOUT_S = 60
HEARTBEAT_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 30

SEED = 20240607

#: Meshes, by name: (axis sizes, axis names, axis type name).
MESHES: dict[str, tuple[tuple[int, ...], tuple[str, ...], str]] = {
    "x8": ((8,), ("x",), "Explicit"),
    "ab": ((2, 4), ("a", "b"), "Explicit"),
    "ab_auto": ((2, 4), ("a", "b"), "Auto"),
}


def make_meshes() -> dict[str, Any]:
    """The meshes of `MESHES` over all (global) devices."""
    import jax
    from jax.sharding import AxisType

    return {
        name: jax.make_mesh(sizes, names, axis_types=(getattr(AxisType, kind),) * len(names))
        for name, (sizes, names, kind) in MESHES.items()
    }


def cases() -> list[tuple[str, Any, tuple[int, ...], Any, str, Any]]:
    """The parameter tree: (leaf name, initializer, shape, dtype, mesh name, PartitionSpec)."""
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    import jaxinit

    return [
        ("normal_rows", jaxinit.normal(0.02), (64, 24), jnp.float32, "x8", P("x", None)),
        ("normal_bf16", jaxinit.normal(1.0), (16, 40), jnp.bfloat16, "x8", P(None, "x")),
        ("he_normal_2d", jaxinit.he_normal(), (32, 48), jnp.float32, "ab", P("a", "b")),
        (
            "he_normal_conv",
            jaxinit.he_normal(),
            (3, 3, 8, 16),
            jnp.float32,
            "ab",
            P(None, None, "a", "b"),
        ),
        (
            "glorot_uniform_cols",
            jaxinit.glorot_uniform(),
            (40, 64),
            jnp.float32,
            "x8",
            P(None, "x"),
        ),
        (
            "glorot_uniform_auto",
            jaxinit.glorot_uniform(),
            (24, 32),
            jnp.float32,
            "ab_auto",
            P("a", "b"),
        ),
        (
            "truncated_normal",
            jaxinit.truncated_normal(0.5),
            (16, 32),
            jnp.float32,
            "ab",
            P("b", "a"),
        ),
        (
            "truncated_normal_repl",
            jaxinit.truncated_normal(1.0),
            (8, 12),
            jnp.float32,
            "ab",
            P("a"),
        ),
        ("constant", jaxinit.constant(0.125), (16, 8), jnp.float32, "x8", P("x")),
        ("identity", jaxinit.identity(), (32, 32), jnp.float32, "ab", P("a", "b")),
        ("orthogonal_rows", jaxinit.orthogonal(), (64, 32), jnp.float32, "x8", P("x", None)),
        ("orthogonal_2d", jaxinit.orthogonal(), (32, 32), jnp.float32, "ab_auto", P("a", "b")),
        (
            "orthogonal_batch",
            jaxinit.orthogonal(),
            (4, 3, 8, 8),
            jnp.float32,
            "ab",
            P("a", None, None, None),
        ),
    ]


def leaf_keys(key: Any, n: int) -> list[Any]:
    """One key per leaf: ``fold_in(key, i)``, the same on every process."""
    import jax

    return [jax.random.fold_in(key, i) for i in range(n)]


def init_eager(key: Any, meshes: dict[str, Any]) -> dict[str, Any]:
    """The tree, one eager initializer call per leaf, each with its ``out_sharding``."""
    from jax.sharding import NamedSharding

    tree = {}
    specs = cases()
    for k, (name, init, shape, dtype, mesh, spec) in zip(
        leaf_keys(key, len(specs)), specs, strict=True
    ):
        tree[name] = init(k, shape, dtype, out_sharding=NamedSharding(meshes[mesh], spec))
    return tree


def init_jit(key: Any, meshes: dict[str, Any]) -> dict[str, Any]:
    """The same tree from one ``jax.jit`` whose ``out_shardings`` is the tree of shardings."""
    import jax
    from jax.sharding import NamedSharding

    specs = cases()
    shardings = {name: NamedSharding(meshes[mesh], spec) for name, *_, mesh, spec in specs}

    @jax.jit
    def init_tree(key):
        keys = leaf_keys(key, len(specs))
        return {
            name: init(k, shape, dtype, out_sharding=shardings[name])
            for k, (name, init, shape, dtype, _, _) in zip(keys, specs, strict=True)
        }

    return init_tree(key)


def as_bits(x: Any) -> Any:
    """`x` (array-like) as a NumPy array of unsigned ints with the same bits."""
    import numpy as np

    a = np.ascontiguousarray(np.asarray(x))
    return a.view(f"u{a.dtype.itemsize}")


def normalize_index(index: tuple[slice, ...], shape: tuple[int, ...]) -> list[list[int]]:
    """A shard's index as ``[[start, stop], ...]``, one pair per axis."""
    out = [[0, d] for d in shape]
    for axis, s in enumerate(index):
        start, stop, step = s.indices(shape[axis])
        assert step == 1, index
        out[axis] = [start, stop]
    return out


def main(argv: list[str]) -> int:
    port, num_processes, process_id, out_dir = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]

    import jax
    import numpy as np

    # CPU collectives between processes: gloo over TCP, coordinated through the loopback port.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        coordinator_bind_address=f"127.0.0.1:{port}",  # loopback only, not every interface
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=INIT_TIMEOUT_S,
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S,
    )

    meshes = make_meshes()
    key = jax.random.key(SEED)  # the same key on every process
    trees = {"eager": init_eager(key, meshes), "jit": init_jit(key, meshes)}

    specs = {name: (shape, dtype, mesh, spec) for name, _, shape, dtype, mesh, spec in cases()}
    arrays: dict[str, Any] = {}
    shards: list[dict[str, Any]] = []
    for mode, tree in trees.items():
        for name, x in tree.items():
            shape, dtype, mesh, spec = specs[name]
            want = jax.sharding.NamedSharding(meshes[mesh], spec)
            for i, shard in enumerate(x.addressable_shards):
                file_key = f"{mode}__{name}__{i}"
                arrays[file_key] = as_bits(shard.data)
                shards.append(
                    {
                        "mode": mode,
                        "leaf": name,
                        "file_key": file_key,
                        "index": normalize_index(shard.index, shape),
                        "device": shard.device.id,
                        "replica_id": shard.replica_id,
                    }
                )
            # Checked here, where the global array lives; the parent checks the values.
            if tuple(x.shape) != shape or x.dtype != np.dtype(dtype):
                raise AssertionError(f"{mode}/{name}: {x.shape} {x.dtype}, want {shape} {dtype}")
            if not x.sharding.is_equivalent_to(want, len(shape)):
                raise AssertionError(f"{mode}/{name}: sharding {x.sharding}, want {want}")
            if x.is_fully_addressable:
                raise AssertionError(f"{mode}/{name}: a global array should span both processes")

    # A cross-process collective over gloo: every process gathers the whole (small) tree.
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(trees["jit"], tiled=True)
    for name, x in gathered.items():
        arrays[f"gathered__{name}"] = as_bits(x)

    meta = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "local_devices": [d.id for d in jax.local_devices()],
        "collectives": jax.config.jax_cpu_collectives_implementation,
        "shards": shards,
    }
    np.savez(os.path.join(out_dir, f"shards_{process_id}.npz"), **arrays)
    with open(os.path.join(out_dir, f"meta_{process_id}.json"), "w") as f:
        json.dump(meta, f)

    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
