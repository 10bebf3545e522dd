"""Orthogonal nxn float32: jaxinit vs jax.nn.initializers (jitted) vs torch.nn.init.orthogonal_.

Also measures how orthogonal each result is, max|Q^T Q - I|, computed in float64.
Target (docs/design.md), 4096^2 f32 CPU: jaxinit <= 0.35x jax, <= 0.45x torch, error <= 1e-5.

    python -m benchmarks.bench_orthogonal                 # 512 1024 2048 4096
    python -m benchmarks.bench_orthogonal --sizes 8192    # e.g. on a GPU
    python -m benchmarks.bench_orthogonal --sizes 4096 --revisions b58a2ed

``--revisions`` adds, to the same interleaved rounds, the single-device construction
(``householder.tall``) of earlier git revisions, loaded from their
``jaxinit/_src/schemes/householder.py`` against today's package and compiled with the XLA
options today's initializer compiles with (`compile_options`). Ratios between peers move with
the machine's state; a same-run row of the program that a target was set on says whether the
construction or the machine changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxinit

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_orthogonal.py
    import _harness as h  # type: ignore[no-redef]

SIZES = (512, 1024, 2048, 4096)
QUICK_SIZES = (256, 512)
TARGET_N = 4096
TARGETS = {"jaxinit/jax": 0.35, "jaxinit/torch": 0.45, "error": 1e-5}


def default_repeats(n: int) -> int:
    return 15 if n <= 1024 else 7 if n <= 2048 else 5


def orthogonality_error(q) -> float:
    """max|Q^T Q - I| (Q Q^T for wide Q) in float64, on q's device."""
    with jax.enable_x64(True):

        @jax.jit
        def err(q):
            q = q.astype(jnp.float64)
            g = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
            return jnp.max(jnp.abs(g - jnp.eye(g.shape[0], dtype=g.dtype)))

        return float(err(jnp.asarray(q)))


def _array(x):
    return x.numpy() if type(x).__module__.startswith("torch") else x


def contenders(n: int, torch, revisions: tuple[str, ...] = ()) -> dict:
    key = jax.random.key(0)
    shape = (n, n)
    ours = jaxinit.orthogonal()
    theirs = jax.jit(jax.nn.initializers.orthogonal(), static_argnums=(1, 2))
    out = {
        "jaxinit": lambda: ours(key, shape, jnp.float32),
        "jax": lambda: theirs(key, shape, jnp.float32),
    }
    if torch is not None:
        out["torch"] = lambda: torch.nn.init.orthogonal_(torch.empty(n, n))
    options = ours.compile_options(np.dtype(np.float32))
    for rev in revisions:
        module = _householder_at(rev)
        lowered = jax.jit(lambda k, m=module: m.tall(k, n, n, jnp.float32)).lower(key)
        tall = lowered.compile(compiler_options=options)
        out[f"jaxinit@{rev}"] = lambda tall=tall: tall(key)
    return out


def _householder_at(rev: str):
    """``jaxinit/_src/schemes/householder.py`` as it was at git revision `rev`."""
    root = Path(__file__).resolve().parent.parent
    path = "jaxinit/_src/schemes/householder.py"
    source = subprocess.check_output(["git", "show", f"{rev}:{path}"], cwd=root, text=True)
    spec = importlib.util.spec_from_loader(f"householder_{rev}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def run(sizes, repeats: int | None, revisions: tuple[str, ...] = ()) -> list[h.Section]:
    torch = h.import_torch()
    rows, checks, past = [], [], []
    for n in sizes:
        reps = repeats or default_repeats(n)
        t = h.compare(contenders(n, torch, revisions), reps, keep_output=True)
        err = {k: orthogonality_error(_array(v.output)) for k, v in t.items()}
        med = {k: v.median for k, v in t.items()}
        r_jax = h.ratio(med["jaxinit"], med["jax"])
        r_torch = h.ratio(med["jaxinit"], med.get("torch"))
        rows.append([
            n, reps,
            med["jaxinit"], t["jaxinit"].min, med["jax"], med.get("torch"),
            r_jax, r_torch,
            t["jaxinit"].first, t["jax"].first,
            err["jaxinit"], err["jax"], err.get("torch"),
        ])  # fmt: skip
        print(
            f"n={n}: jaxinit {med['jaxinit']:.4f}s  jax {med['jax']:.4f}s  "
            f"torch {h.fmt(med.get('torch'))}s  err {err['jaxinit']:.2e}",
            flush=True,
        )
        for rev in revisions:
            m = med[f"jaxinit@{rev}"]
            past.append([n, rev, m, med["jaxinit"], h.ratio(m, med["jax"]),
                         h.ratio(m, med.get("torch")), h.ratio(med["jaxinit"], m)])  # fmt: skip
        if n == TARGET_N:
            checks.append(_check("jaxinit/jax", r_jax, TARGETS["jaxinit/jax"]))
            checks.append(_check("jaxinit/torch", r_torch, TARGETS["jaxinit/torch"]))
        checks.append(_check(f"n={n} max|Q^T Q-I|", err["jaxinit"], TARGETS["error"]))
    headers = [
        "n", "reps",
        "jaxinit s", "jaxinit min s", "jax s", "torch s",
        "jaxinit/jax", "jaxinit/torch",
        "jaxinit 1st call s", "jax 1st call s",
        "err jaxinit", "err jax", "err torch",
    ]  # fmt: skip
    body = h.table(headers, rows) + "\n\n"
    body += (
        "Medians of `reps` interleaved calls (float32, key 0); '1st call' is trace + compile + "
        "run. err = max|Q^T Q-I| in float64. jax is `jax.jit(jax.nn.initializers.orthogonal())`; "
        "torch is `orthogonal_(torch.empty(n, n))` (CPU, default threads).\n\n"
    )
    body += "Targets (docs/design.md): " + "; ".join(checks) + "\n"
    if past:
        past_headers = ["n", "revision", "its s", "jaxinit s"]
        past_headers += ["its/jax", "its/torch", "jaxinit/its"]
        body += (
            "\nEarlier constructions in the same rounds (`--revisions`: their "
            "`householder.tall`, jitted, with the initializer's compiler options):\n\n"
            + h.table(past_headers, past)
            + "\n"
        )
    return [h.Section(f"orthogonal nxn float32 ({jax.default_backend()})", body)]


def _check(what: str, value: float | None, limit: float) -> str:
    if value is None:
        return f"{what} n/a"
    mark = "ok" if value <= limit else "MISSED"
    return f"{what} = {h.fmt(value)} (<= {limit:g}: {mark})"


def main(argv=None) -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"default {SIZES}")
    p.add_argument(
        "--revisions", nargs="+", default=(), help="git revisions whose householder.tall to add"
    )
    args = p.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    repeats = args.repeats or (3 if args.quick else None)
    if args.json is None:
        h.print_machine()
    h.finish(args, "orthogonal", run(sizes, repeats, tuple(args.revisions)))


if __name__ == "__main__":
    main()
