"""Multi-process initialization: 2 JAX processes on localhost, 4 CPU devices each.

`_multiprocess_worker.py` is started twice; the processes join one JAX cluster
(``jax.distributed.initialize`` with a loopback coordinator, gloo CPU collectives), initialize a
parameter tree sharded over the 8 *global* devices and write the shards they hold. This process
(8 simulated devices, from the repository conftest) computes the same tree single-process; every
shard a worker wrote must equal the corresponding slice of it, bit for bit (orthogonal sharded
along a matrix axis: bitwise is the aim, max abs difference <= 2e-6 is required).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _multiprocess_worker as worker
import jax
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # spawns processes: left out of the fast lane

NUM_PROCESSES = 2
LOCAL_DEVICES = 4
TIMEOUT_S = 120  # wall-clock bound for the whole cluster run; processes are killed past it
ORTHOGONAL_ATOL = 2e-6

WORKER = Path(worker.__file__).resolve()
REPO_ROOT = Path(__file__).resolve().parents[1]
LEAVES = [c[0] for c in worker.cases()]
MODES = ["eager", "jit"]


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_CPU_DEVICES", "JAX_LOCAL_DEVICE_IDS"):
        env.pop(var, None)
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={LOCAL_DEVICES}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _logs(out: Path) -> str:
    parts = []
    for i in range(NUM_PROCESSES):
        log = out / f"log_{i}.txt"
        text = log.read_text(errors="replace") if log.exists() else "<no log>"
        parts.append(f"--- process {i} (last 4000 chars) ---\n{text[-4000:]}")
    return "\n".join(parts)


def _run_cluster(out: Path) -> tuple[list[int | None], float]:
    """Starts the workers and waits for all of them (at most TIMEOUT_S); kills them on failure.

    Returns the exit codes (None: killed, at the deadline or after a peer failed) and the
    elapsed seconds.
    """
    port = _free_loopback_port()
    env = _worker_env()
    procs: list[subprocess.Popen] = []
    logs = []
    start = time.monotonic()
    try:
        for i in range(NUM_PROCESSES):
            log = open(out / f"log_{i}.txt", "wb")  # noqa: SIM115 - closed in `finally`
            logs.append(log)
            cmd = [sys.executable, str(WORKER), str(port), str(NUM_PROCESSES), str(i), str(out)]
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out)
            )
        # Poll rather than wait on one process: a worker that fails early must not leave the
        # other waiting for its peer until the distributed runtime's own timeouts.
        while time.monotonic() - start < TIMEOUT_S:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        for log in logs:
            log.close()
    codes = [
        p.returncode if p.returncode is not None and p.returncode >= 0 else None for p in procs
    ]
    return codes, time.monotonic() - start


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs the 2-process cluster once; returns each process's metadata and shards."""
    out = tmp_path_factory.mktemp("multiprocess")
    codes, elapsed = _run_cluster(out)
    if codes != [0] * NUM_PROCESSES:
        pytest.fail(
            f"multi-process workers failed (exit codes {codes}; None = killed, at the "
            f"{TIMEOUT_S} s deadline or after a peer failed; {elapsed:.1f} s elapsed):\n"
            f"{_logs(out)}",
            pytrace=False,
        )
    metas, shards = [], []
    for i in range(NUM_PROCESSES):
        metas.append(json.loads((out / f"meta_{i}.json").read_text()))
        with np.load(out / f"shards_{i}.npz") as z:
            shards.append({k: z[k] for k in z.files})
    return {"metas": metas, "shards": shards, "elapsed": elapsed}


@functools.cache
def _reference() -> dict[str, np.ndarray]:
    """The tree computed in this (single) process, over the same meshes of 8 local devices."""
    assert jax.process_count() == 1 and jax.device_count() == 8, "needs the 8-device conftest"
    tree = worker.init_eager(jax.random.key(worker.SEED), worker.make_meshes())
    return {name: np.asarray(x) for name, x in tree.items()}


def _shards_of(cluster: dict[str, Any], mode: str, leaf: str) -> list[tuple[int, dict, Any]]:
    found = []
    for pid, (meta, arrays) in enumerate(zip(cluster["metas"], cluster["shards"], strict=True)):
        for s in meta["shards"]:
            if s["mode"] == mode and s["leaf"] == leaf:
                found.append((pid, s, arrays[s["file_key"]]))
    return found


def test_workers_saw_global_devices(cluster):
    metas = cluster["metas"]
    assert [m["process_index"] for m in metas] == list(range(NUM_PROCESSES))
    for m in metas:
        assert m["process_count"] == NUM_PROCESSES
        assert m["device_count"] == NUM_PROCESSES * LOCAL_DEVICES
        assert m["local_device_count"] == LOCAL_DEVICES
        assert m["collectives"] == "gloo"
    local = [set(m["local_devices"]) for m in metas]
    assert not local[0] & local[1], "the processes must hold disjoint devices"
    assert len(local[0] | local[1]) == NUM_PROCESSES * LOCAL_DEVICES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("leaf", LEAVES)
def test_shards_equal_single_process(cluster, leaf, mode, record_property):
    ref = _reference()[leaf]
    shards = _shards_of(cluster, mode, leaf)
    metas = cluster["metas"]
    # Every process holds exactly its local devices' shards, and together they cover the array.
    for pid, meta in enumerate(metas):
        held = sorted(s["device"] for p, s, _ in shards if p == pid)
        assert held == sorted(meta["local_devices"]), (pid, held)
    covered = np.zeros(ref.shape, bool)
    orthogonal = leaf.startswith("orthogonal")
    worst = 0.0
    for pid, s, bits in shards:
        index = tuple(slice(a, b) for a, b in s["index"])
        want = np.ascontiguousarray(ref[index])
        covered[index] = True
        assert bits.shape == want.shape, (pid, s)
        got = bits.view(want.dtype)
        if orthogonal:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = max(worst, float(diff.max(initial=0.0)))
        else:
            assert np.array_equal(bits, worker.as_bits(want)), (
                f"{mode}/{leaf}: process {pid}, device {s['device']}, index {s['index']} "
                f"differs from the single-process result"
            )
    assert covered.all(), f"{mode}/{leaf}: the shards of both processes do not cover the array"
    if orthogonal:
        record_property("max_abs_difference", worst)  # 0.0 when bitwise (the aim)
        assert worst <= ORTHOGONAL_ATOL, f"{mode}/{leaf}: max abs difference {worst:.3g}"
        # Batch axes only: the determinism contract (docs/determinism.md, tier 1) requires bitwise.
        spec = next(c[5] for c in worker.cases() if c[0] == leaf)
        if all(p is None for p in tuple(spec)[-2:]):
            assert worst == 0.0, f"{mode}/{leaf}: sharded on batch axes only, must be bitwise"


@pytest.mark.parametrize("leaf", LEAVES)
def test_gathered_equal_single_process(cluster, leaf):
    """`process_allgather` (a gloo collective between the processes) returns the same tree."""
    ref = _reference()[leaf]
    for pid, arrays in enumerate(cluster["shards"]):
        got = arrays[f"gathered__{leaf}"]
        assert np.array_equal(got, worker.as_bits(ref)), f"process {pid}: gathered {leaf} differs"
