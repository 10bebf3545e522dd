"""Per-device temporary memory of sharded initialization, on 8 (simulated) devices.

For each initializer, output sharding and way of asking for it, the compiled program's
``memory_analysis().temp_size_in_bytes`` (per device) is divided by the bytes of one output
shard. Target (docs/design.md): <= 4x for every initializer; jax's orthogonal under
``jax.jit(init, out_shardings=...)`` is ~32x (it builds the global matrix on every device).

Ways of asking ("methods"):

* ``explicit``: ``init(key, shape, out_sharding=NamedSharding(mesh, spec))`` inside ``jax.jit``,
  on an Explicit mesh (set with ``jax.set_mesh``);
* ``arg``: the same on an Auto mesh;
* ``jit``: ``jax.jit(lambda k: init(k, shape), out_shardings=NamedSharding(mesh, spec))``, Auto;
* ``jax``: jax's own initializer (where there is one) the ``jit`` way, for comparison.

Nothing is executed by default (jax's sharded orthogonal takes minutes on simulated devices);
``--execute`` also runs each jaxinit initializer eagerly and checks the array's sharding.

    python -m benchmarks.bench_sharded_memory              # 2048x2048 float32
    python -m benchmarks.bench_sharded_memory --size 4096 --only orthogonal
"""

from __future__ import annotations

import os
import sys

# Simulated devices must be asked for before jax is imported (they only affect the CPU backend).
if "jax" in sys.modules:  # pragma: no cover - e.g. imported from a process that uses jax
    print("warning: jax already imported; --xla_force_host_platform_device_count may not apply")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    os.environ["XLA_FLAGS"] = flags.strip()

import contextlib
import dataclasses
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_sharded_memory.py
    import _harness as h  # type: ignore[no-redef]

TARGET = 4.0
METHODS = ("explicit", "arg", "jit")
#: (mesh shape, axis names, spec of the last two axes): rows, columns, both on a 2-D mesh.
LAYOUTS = (
    ((8,), ("x",), ("x", None)),
    ((8,), ("x",), (None, "x")),
    ((2, 4), ("x", "y"), ("x", "y")),
)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    init: Any
    jax_init: Any = None  # the jax.nn.initializers equivalent, if any
    conv: bool = False  # takes an HWIO kernel (3, 3, c, c) rather than an (n, n) matrix


def cases() -> list[Case]:
    ji = jax.nn.initializers
    return [
        Case("zeros", jaxinit.zeros, ji.zeros),
        Case("ones", jaxinit.ones, ji.ones),
        Case("constant(-0.5)", jaxinit.constant(-0.5), ji.constant(-0.5)),
        Case("uniform(0.1)", jaxinit.uniform(0.1), ji.uniform(0.1)),
        Case("uniform_range(-0.2, 0.3)", jaxinit.uniform_range(-0.2, 0.3)),
        Case("normal(0.02)", jaxinit.normal(0.02), ji.normal(0.02)),
        Case("truncated_normal(0.5)", jaxinit.truncated_normal(0.5), ji.truncated_normal(0.5)),
        Case("truncated_normal(post)", jaxinit.truncated_normal(0.5, post_truncation=True)),
        Case("glorot_uniform", jaxinit.glorot_uniform(), ji.glorot_uniform()),
        Case("glorot_normal", jaxinit.glorot_normal(), ji.glorot_normal()),
        Case("lecun_uniform", jaxinit.lecun_uniform(), ji.lecun_uniform()),
        Case("lecun_normal", jaxinit.lecun_normal(), ji.lecun_normal()),
        Case("he_uniform", jaxinit.he_uniform(), ji.he_uniform()),
        Case("he_normal", jaxinit.he_normal(), ji.he_normal()),
        Case("orthogonal", jaxinit.orthogonal(), ji.orthogonal()),
        Case("orthogonal(column_axis=0)", jaxinit.orthogonal(column_axis=0),
             ji.orthogonal(column_axis=0)),
        Case("uniform_unit_scaling", jaxinit.uniform_unit_scaling(1.43)),
        Case("mxnet_xavier", jaxinit.mxnet_xavier("gaussian", "in", 2.0)),
        Case("msra_prelu", jaxinit.msra_prelu()),
        Case("caffe_xavier", jaxinit.caffe_xavier("average")),
        Case("caffe_msra", jaxinit.caffe_msra("fan_out")),
        Case("caffe_gaussian(sparse=3)", jaxinit.caffe_gaussian(0.01, sparse=3)),
        Case("identity", jaxinit.identity(2.0)),
        Case("positive_unitball", jaxinit.positive_unitball()),
        Case("sparse(0.25)", jaxinit.sparse(0.25)),
        Case("gated_orthogonal(4)", jaxinit.gated_orthogonal(4)),
        Case("delta_orthogonal", jaxinit.delta_orthogonal(), ji.delta_orthogonal(), conv=True),
        Case("dirac", jaxinit.dirac(), conv=True),
        Case("bilinear", jaxinit.bilinear(), conv=True),
    ]  # fmt: skip


def devices() -> list:
    """8 devices of the default backend, else 8 simulated CPU devices."""
    devs = jax.devices()
    if len(devs) < 8:
        devs = jax.devices("cpu")
    if len(devs) < 8:
        raise SystemExit(
            f"need 8 devices, found {len(devs)}: run in a fresh process (XLA_FLAGS is set "
            "before jax is imported) or set XLA_FLAGS=--xla_force_host_platform_device_count=8"
        )
    return devs[:8]


@dataclasses.dataclass
class Measure:
    temp: int | None = None
    output: int | None = None
    sharding_ok: bool | None = None
    seconds: float = 0.0
    error: str | None = None


def jitted(method: str, init, shape, dtype, sharding: NamedSharding):
    """``init`` at `shape` as a jitted function of the key, placed the `method` way."""
    if method == "jit":
        return jax.jit(lambda k: init(k, shape, dtype), out_shardings=sharding)
    return jax.jit(lambda k: init(k, shape, dtype, out_sharding=sharding))


def measure(fn, key, want: NamedSharding, shard_bytes: int, ndim: int, mesh=None) -> Measure:
    """Lowers and compiles `fn` (jitted, of the key) -- under `mesh` if given -- and reads its
    per-device memory."""
    t0 = time.perf_counter()
    try:
        with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
            compiled = fn.lower(key).compile()
    except Exception as e:
        return Measure(error=f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
    seconds = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    got = compiled.output_shardings
    ok = got.is_equivalent_to(want, ndim) and mem.output_size_in_bytes == shard_bytes
    return Measure(mem.temp_size_in_bytes, mem.output_size_in_bytes, ok, seconds)


def execute(init, key, shape, dtype, want: NamedSharding, explicit_mesh) -> str | None:
    """Runs `init` eagerly on the Explicit mesh; an error text if the sharding is not `want`."""
    with jax.set_mesh(explicit_mesh):
        out = jax.block_until_ready(init(key, shape, dtype, out_sharding=want.spec))
    if not out.sharding.is_equivalent_to(want, len(shape)):
        return f"eager result sharded {out.sharding.spec}, asked {want.spec}"
    return None


def run(n: int, methods, only, run_eagerly: bool) -> list[h.Section]:
    devs = devices()
    key = jax.random.key(0)
    dtype = jnp.float32
    dense, conv = (n, n), (3, 3, n // 4, n // 4)
    rows, missed, errors = [], [], []
    picked = [c for c in cases() if not only or any(o in c.name for o in only)]
    for mesh_shape, names, spec2 in LAYOUTS:
        auto = jax.make_mesh(mesh_shape, names, (AxisType.Auto,) * len(names), devices=devs)
        expl = jax.make_mesh(mesh_shape, names, (AxisType.Explicit,) * len(names), devices=devs)
        for case in picked:
            shape = conv if case.conv else dense
            spec = P(*(None,) * (len(shape) - 2), *spec2)
            want = NamedSharding(auto, spec)
            shard_bytes = math.prod(want.shard_shape(shape)) * np.dtype(dtype).itemsize
            results = {}
            for m in methods:
                target = NamedSharding(expl if m == "explicit" else auto, spec)
                fn = jitted(m, case.init, shape, dtype, target)
                mesh = expl if m == "explicit" else None
                results[m] = measure(fn, key, target, shard_bytes, len(shape), mesh)
            if case.jax_init is not None:
                fn = jitted("jit", case.jax_init, shape, dtype, want)
                results["jax"] = measure(fn, key, want, shard_bytes, len(shape))
            layout = f"{'x'.join(map(str, mesh_shape))} {_spec_text(spec)}"
            ratios = {}
            for m, r in results.items():
                if r.error:
                    errors.append(f"{case.name} {layout} {m}: {r.error}")
                    ratios[m] = "error"
                else:
                    ratios[m] = r.temp / shard_bytes
            ours = [results[m] for m in methods]
            ok = all(r.sharding_ok for r in ours)
            if run_eagerly and ok:
                problem = _try(
                    execute, case.init, key, shape, dtype, NamedSharding(expl, spec), expl
                )
                if problem:
                    errors.append(f"{case.name} {layout} eager: {problem}")
                    ok = False
            worst = max((ratios[m] for m in methods if ratios[m] != "error"), default=None)
            if worst is None or worst > TARGET or any(ratios[m] == "error" for m in methods):
                missed.append(f"{case.name} {layout} ({h.fmt(worst)})")
            rows.append([
                case.name, "x".join(map(str, shape)), layout, shard_bytes / 2**20,
                *(ratios[m] for m in methods), ratios.get("jax"),
                ok, sum(r.seconds for r in ours),
            ])  # fmt: skip
            print(
                f"{case.name:28s} {layout:16s} "
                + " ".join(f"{m}={h.fmt(ratios[m])}" for m in (*methods, "jax") if m in ratios),
                flush=True,
            )
    headers = [
        "init", "shape", "mesh spec", "shard MiB",
        *(f"{m} temp/shard" for m in methods), "jax temp/shard",
        "sharding ok", "compile s",
    ]  # fmt: skip
    body = h.table(headers, rows) + "\n\n"
    body += (
        f"float32 on {len(devs)} {devs[0].platform} devices. temp/shard = compiled "
        "`memory_analysis().temp_size_in_bytes` (per device) / bytes of one output shard. "
        "'sharding ok': every method's compiled output sharding is the one asked for and its "
        "per-device output is one shard"
        + (", and the eager call's array is sharded so" if run_eagerly else "")
        + ". Methods: explicit = `out_sharding=` on an Explicit mesh; arg = `out_sharding=` on "
        "an Auto mesh; jit = `jax.jit(..., out_shardings=)`; jax = jax.nn.initializers' own "
        "under `jax.jit(..., out_shardings=)`. 'compile s' sums jaxinit's methods.\n\n"
    )
    body += f"Target temp/shard <= {TARGET:g}: " + (
        "met by all." if not missed else "MISSED by " + "; ".join(missed) + "."
    )
    if errors:
        body += "\n\nErrors:\n" + "\n".join(f"- {e}" for e in errors)
    return [h.Section(f"sharded init: per-device temporary memory ({n}x{n})", body + "\n")]


def _spec_text(spec: P) -> str:
    return "P(" + ", ".join(repr(s) if s is not None else "None" for s in spec) + ")"


def _try(fn, *args) -> str | None:
    try:
        return fn(*args)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"


def main(argv=None) -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=None, help="n of the nxn matrix (default 2048)")
    p.add_argument("--methods", nargs="+", default=None, choices=METHODS, help="default: all")
    p.add_argument("--only", nargs="+", default=None, help="initializers whose name contains")
    p.add_argument("--execute", action="store_true", help="also run jaxinit eagerly, check")
    args = p.parse_args(argv)
    n = args.size or (256 if args.quick else 2048)
    if args.json is None:
        h.print_machine()
    methods = args.methods or (("explicit", "jit") if args.quick else METHODS)
    sections = run(n, methods, args.only, args.execute)
    h.finish(args, "sharded memory", sections)


if __name__ == "__main__":
    main()
