"""Elementwise initializers at nxn: jaxinit vs the raw jitted jax.random sampler, jax, torch.

"raw" is the same math written directly with ``jax.random`` (draw in float32, scale, cast) and
jitted: the floor jaxinit is held to. "jax" is the ``jax.nn.initializers`` equivalent, jitted;
"torch" the ``torch.nn.init`` equivalent on a fresh ``torch.empty`` (CPU). jaxinit is timed as
users call it (eager: its own cached jit) and inside a user's ``jax.jit``.
Target (docs/design.md): jaxinit/raw <= 1.05; on a GPU, >= 70% of HBM write bandwidth.

    python -m benchmarks.bench_elementwise                     # 4096^2, float32 and bfloat16
    python -m benchmarks.bench_elementwise --size 16384        # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxinit

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_elementwise.py
    import _harness as h  # type: ignore[no-redef]

DTYPES = ("float32", "bfloat16")
TARGET = 1.05
#: std of N(0, 1) truncated to (-2, 2): jax's truncated variance-scaling correction.
TRUNC_STD_2 = 0.87962566103423978


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    ours: Any  # the jaxinit initializer
    raw: Callable[..., Any]  # (key, shape, dtype) -> array: the same math, jax.random directly
    jax_nn: Any  # the jax.nn.initializers equivalent
    torch_name: str  # what the torch column runs
    torch: Callable[[Any], Any]  # tensor -> tensor (in place)


def _normal(std: float):
    return lambda k, s, d: (jax.random.normal(k, s, jnp.float32) * std).astype(d)


def _truncated(std: float):
    return lambda k, s, d: (jax.random.truncated_normal(k, -2.0, 2.0, s, jnp.float32) * std).astype(
        d
    )


def _uniform(lo: float, hi: float, mul: float):
    return lambda k, s, d: (jax.random.uniform(k, s, jnp.float32, lo, hi) * mul).astype(d)


def specs(shape: tuple[int, int], torch) -> list[Spec]:
    """The benchmarked schemes; shape is (fan_in, fan_out), jax's layout (torch's is square)."""
    fan_in, fan_out = shape
    he = math.sqrt(2 / fan_in) / TRUNC_STD_2
    lecun = math.sqrt(1 / fan_in) / TRUNC_STD_2
    glorot = math.sqrt(3 / ((fan_in + fan_out) / 2))
    ji = jax.nn.initializers
    ti = torch.nn.init if torch is not None else None
    t = lambda f: (lambda x: f(ti, x)) if ti is not None else None
    return [
        Spec("normal(0.02)", jaxinit.normal(0.02), _normal(0.02), ji.normal(0.02),
             "normal_(0, 0.02)", t(lambda ti, x: ti.normal_(x, 0.0, 0.02))),
        Spec("uniform(0.1)", jaxinit.uniform(0.1), _uniform(0.0, 1.0, 0.1), ji.uniform(0.1),
             "uniform_(0, 0.1)", t(lambda ti, x: ti.uniform_(x, 0.0, 0.1))),
        Spec("truncated_normal(0.02)", jaxinit.truncated_normal(0.02), _truncated(0.02),
             ji.truncated_normal(0.02), "trunc_normal_(0, 0.02, +/-0.04)",
             t(lambda ti, x: ti.trunc_normal_(x, 0.0, 0.02, -0.04, 0.04))),
        Spec("he_normal", jaxinit.he_normal(), _truncated(he), ji.he_normal(),
             "kaiming_normal_ (not truncated)",
             t(lambda ti, x: ti.kaiming_normal_(x, nonlinearity="relu"))),
        Spec("glorot_uniform", jaxinit.glorot_uniform(), _uniform(-1.0, 1.0, glorot),
             ji.glorot_uniform(), "xavier_uniform_", t(lambda ti, x: ti.xavier_uniform_(x))),
        Spec("lecun_normal", jaxinit.lecun_normal(), _truncated(lecun), ji.lecun_normal(),
             "trunc_normal_(same sigma, +/-2sigma)",
             t(lambda ti, x: ti.trunc_normal_(x, 0.0, lecun, -2 * lecun, 2 * lecun))),
    ]  # fmt: skip


def contenders(spec: Spec, shape, dtype, torch) -> dict[str, Callable[[], Any]]:
    key = jax.random.key(0)
    ours = spec.ours
    ours_jit = jax.jit(lambda k: ours(k, shape, dtype))
    raw = jax.jit(spec.raw, static_argnums=(1, 2))
    theirs = jax.jit(spec.jax_nn, static_argnums=(1, 2))
    out = {
        "jaxinit": lambda: ours(key, shape, dtype),
        "jaxinit in jit": lambda: ours_jit(key),
        "raw": lambda: raw(key, shape, dtype),
        "jax": lambda: theirs(key, shape, dtype),
    }
    if torch is not None and spec.torch is not None:
        tdt = getattr(torch, np.dtype(dtype).name)
        out["torch"] = lambda: spec.torch(torch.empty(shape, dtype=tdt))
    return out


def run(n: int, dtypes, repeats: int, bandwidth: bool) -> list[h.Section]:
    torch = h.import_torch()
    shape = (n, n)
    rows, missed = [], []
    for dtype_name in dtypes:
        dtype = jnp.dtype(dtype_name)
        nbytes = n * n * dtype.itemsize
        for spec in specs(shape, torch):
            t = h.compare(contenders(spec, shape, dtype, torch), repeats)
            med = {k: v.median * 1e3 for k, v in t.items()}  # ms
            r_raw = h.ratio(med["jaxinit"], med["raw"])
            r_jit = h.ratio(med["jaxinit in jit"], med["raw"])
            r_min = h.ratio(t["jaxinit"].min, t["raw"].min)
            row = [
                spec.name, dtype_name,
                med["jaxinit"], med["jaxinit in jit"], med["raw"], med["jax"], med.get("torch"),
                r_raw, r_jit, r_min,
                h.ratio(med["jaxinit"], med["jax"]), h.ratio(med["jaxinit"], med.get("torch")),
                t["jaxinit"].first,
            ]  # fmt: skip
            if bandwidth:
                row += [nbytes / t["jaxinit"].median / 1e9, nbytes / t["raw"].median / 1e9]
            rows.append(row)
            if r_raw is not None and r_raw > TARGET:
                missed.append(f"{spec.name} {dtype_name} ({r_raw:.3f})")
            print(
                f"{spec.name} {dtype_name}: jaxinit {med['jaxinit']:.2f}ms raw {med['raw']:.2f}ms"
                f" jax {med['jax']:.2f}ms torch {h.fmt(med.get('torch'))}ms",
                flush=True,
            )
    headers = [
        "init", "dtype",
        "jaxinit ms", "in-jit ms", "raw ms", "jax ms", "torch ms",
        "jaxinit/raw", "in-jit/raw", "jaxinit/raw (mins)", "jaxinit/jax", "jaxinit/torch",
        "jaxinit 1st call s",
    ]  # fmt: skip
    if bandwidth:
        headers += ["jaxinit GB/s", "raw GB/s"]
    body = h.table(headers, rows) + "\n\n"
    body += (
        f"Medians of {repeats} interleaved calls, ms; 'in-jit' is jaxinit called inside the "
        "user's `jax.jit`; '1st call' is trace + compile + run. torch runs: "
        + "; ".join(f"{s.name}: `{s.torch_name}`" for s in specs(shape, None))
        + ".\n\n"
    )
    if bandwidth:
        body += "GB/s = bytes of the output / median time (compare with the HBM bandwidth).\n\n"
    body += f"Target jaxinit/raw <= {TARGET}: " + (
        "met by all." if not missed else "MISSED by " + ", ".join(missed) + "."
    )
    title = f"elementwise {n}x{n} ({jax.default_backend()})"
    return [h.Section(title, body + "\n")]


def main(argv=None) -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=None, help="n of the nxn matrix (default 4096)")
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=["float32", "bfloat16"])
    p.add_argument(
        "--bandwidth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="GB/s columns (default: on GPU)",
    )
    args = p.parse_args(argv)
    n = args.size or (1024 if args.quick else 4096)
    repeats = args.repeats or (3 if args.quick else 5)
    bandwidth = args.bandwidth if args.bandwidth is not None else jax.default_backend() != "cpu"
    if args.json is None:
        h.print_machine()
    h.finish(args, "elementwise", run(n, args.dtypes, repeats, bandwidth))


if __name__ == "__main__":
    main()
