"""NNX transformer init end to end: nnx.eval_shape + jaxinit.flax.reinit vs Flax's jitted init.

The model: an ``nnx.Embed(vocab, d)`` and `layers` blocks (an ``nnx.List``), each with
``nnx.Linear`` q, k, v, o (d, d), up (d, 4d), down (4d, d) and two ``nnx.LayerNorm``s. Two
contenders build its parameters from nothing:

* jaxinit: ``nnx.eval_shape(lambda: Model(nnx.Rngs(0)))``, then
  ``jaxinit.flax.reinit(abstract, jax.random.key(0), RULES, strict=True)``;
* flax: ``jax.jit(lambda: nnx.state(Model(nnx.Rngs(0))))()``, the model's own initializers.

``jax.clear_caches()`` runs before every call, so each one is timed end to end -- trace, lower,
compile and run -- as when a program starts (the persistent compilation cache is turned off).
The calls go round-robin, order rotated each round; medians are reported. A "staged" run of
each does the same work in timed steps: for flax ``.lower()``, ``.compile()`` and the call; for
jaxinit ``nnx.eval_shape``, the per-parameter decisions, ``.lower()``, ``.compile()`` and the
call plus the write-back, through jaxinit's private ``prepare`` and ``flax_generate.program``
(``reinit`` itself exposes no lowering hook). Its result is checked bit for bit against
``reinit``'s. Target (docs/design.md), 24 layers, d=512, vocab 32000, on the 2-core CPU:
jaxinit <= 0.3x flax.

    python -m benchmarks.bench_flax_model                          # 24 layers, d=512
    python -m benchmarks.bench_flax_model --layers 48 --dim 1024   # e.g. on a GPU
"""

from __future__ import annotations

import gc
import math
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

import jaxinit
import jaxinit.flax

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_flax_model.py
    import _harness as h  # type: ignore[no-redef]

try:  # only for the staged jaxinit run; the headline numbers use the public `reinit`
    from jaxinit._src.flax import generate as _generate
    from jaxinit._src.flax import reinit as _adapter
except ImportError:  # pragma: no cover - internals moved
    _adapter = _generate = None  # type: ignore[assignment]

#: (layers, d, vocab): the model of the target (docs/design.md), and the --quick one.
FULL = (24, 512, 32000)
QUICK = (2, 128, 1000)
#: A tiny model run once per contender before timing: process-wide one-time costs (backend
#: start-up, lazy imports) are not compile caches and would land on the first timed call.
WARMUP = (1, 16, 32)
TARGET = 0.3
STAGES = ("eval_shape", "prepare", "trace+lower", "compile", "run")


# -- the model ------------------------------------------------------------------------------------
class Block(nnx.Module):
    """Attention projections q, k, v, o (d, d), an MLP up (d, 4d) / down (4d, d), two norms."""

    def __init__(self, d: int, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(d, rngs=rngs)
        self.q = nnx.Linear(d, d, rngs=rngs)
        self.k = nnx.Linear(d, d, rngs=rngs)
        self.v = nnx.Linear(d, d, rngs=rngs)
        self.o = nnx.Linear(d, d, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d, rngs=rngs)
        self.up = nnx.Linear(d, 4 * d, rngs=rngs)
        self.down = nnx.Linear(4 * d, d, rngs=rngs)


class Model(nnx.Module):
    """An embedding (vocab, d) and `layers` blocks."""

    def __init__(self, layers: int, d: int, vocab: int, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab, d, rngs=rngs)
        self.blocks = nnx.List([Block(d, rngs) for _ in range(layers)])


def rules(layers: int) -> list[tuple[str, Any]]:
    """GPT-2 style: N(0, 0.02) kernels and embedding, residual outputs (o, down) scaled by
    1/sqrt(2 layers), zero biases, LayerNorm scale 1 and bias 0. Covers every parameter."""
    return [
        (r"norm\d/scale$", jaxinit.ones),
        (r"bias$", jaxinit.zeros),
        (r"/(o|down)/kernel$", jaxinit.normal(0.02 / math.sqrt(2 * layers))),
        (r"(kernel|embedding)$", jaxinit.normal(0.02)),
    ]


# -- the contenders -------------------------------------------------------------------------------
#: A contender: config -> (result pytree, seconds of each stage; empty when not staged).
Contender = Callable[[tuple[int, int, int]], tuple[Any, dict[str, float]]]


def _make(cfg: tuple[int, int, int]) -> Callable[[], Model]:
    return lambda: Model(*cfg, rngs=nnx.Rngs(0))


def run_jaxinit(cfg):
    abstract = nnx.eval_shape(_make(cfg))
    model = jaxinit.flax.reinit(abstract, jax.random.key(0), rules(cfg[0]), strict=True)
    return h.block(nnx.state(model)), {}


def run_flax(cfg):
    make = _make(cfg)
    return h.block(jax.jit(lambda: nnx.state(make()))()), {}


def run_jaxinit_staged(cfg):
    """What `reinit` does, step by step (mirrors flax_adapter.reinit and flax_generate)."""
    t = [time.perf_counter()]
    abstract = nnx.eval_shape(_make(cfg))
    t.append(time.perf_counter())
    key = jax.random.key(0)
    jobs, write = _adapter.prepare(abstract, rules(cfg[0]), True)
    prog = _generate.program(jobs, _generate.GROUP_BYTES)
    t.append(time.perf_counter())
    lowered = prog.lower(key)
    t.append(time.perf_counter())
    compiled = lowered.compile()
    t.append(time.perf_counter())
    with prog._context():
        outs = prog.split(list(compiled(prog._root(key))))
    model = write(dict(zip((job.path for job in jobs), outs, strict=True)))
    state = h.block(nnx.state(model))
    t.append(time.perf_counter())
    return state, dict(zip(STAGES, np.diff(t).tolist(), strict=True))


def run_flax_staged(cfg):
    make = _make(cfg)
    fn = jax.jit(lambda: nnx.state(make()))
    t = [time.perf_counter()]
    lowered = fn.lower()
    t.append(time.perf_counter())
    compiled = lowered.compile()
    t.append(time.perf_counter())
    state = h.block(compiled())
    t.append(time.perf_counter())
    return state, dict(zip(STAGES[2:], np.diff(t).tolist(), strict=True))


CONTENDERS: dict[str, Contender] = {
    "jaxinit": run_jaxinit,
    "flax": run_flax,
    "jaxinit staged": run_jaxinit_staged,
    "flax staged": run_flax_staged,
}
LABELS = {
    "jaxinit": "jaxinit: `nnx.eval_shape` + `reinit`",
    "flax": "flax: `jax.jit(lambda: nnx.state(Model(...)))()`",
    "jaxinit staged": "jaxinit, staged",
    "flax staged": "flax, staged",
}


def _cold(fn: Contender, cfg, pause: float = 0.05) -> tuple[Any, float, dict[str, float]]:
    """One call of `fn` with jax's caches cleared first: (result, total seconds, stages)."""
    gc.collect()
    jax.clear_caches()
    time.sleep(pause)  # let the previous call's thread pool stop spinning
    t0 = time.perf_counter()
    out, stages = fn(cfg)
    return out, time.perf_counter() - t0, stages


# -- checks and the parameter table ---------------------------------------------------------------
def _flat(state: Any) -> dict[str, jax.Array]:
    """Path (as `reinit` writes it) -> array; a Variable's own '.value' entry is left out."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    part = lambda k: getattr(k, "key", getattr(k, "idx", None))
    return {"/".join(str(part(k)) for k in path if part(k) is not None): x for path, x in leaves}


def _same_bits(a: dict[str, jax.Array], b: dict[str, jax.Array]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def _shapes(flat: dict[str, jax.Array]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(x.shape), str(x.dtype)) for k, x in flat.items()}


def parameter_table(cfg, flat: dict[str, jax.Array]) -> tuple[str, int, int, int]:
    """Markdown table of the parameters (block index folded into '*'), with the std each
    should have (from `jaxinit.flax.plan`) and the one measured; (table, arrays, elements,
    bytes)."""
    abstract = nnx.eval_shape(_make(cfg))
    groups: dict[tuple[str, tuple[int, ...]], dict[str, Any]] = {}
    for row in jaxinit.flax.plan(abstract, rules(cfg[0])):
        name = re.sub(r"(^|/)\d+(/|$)", r"\1*\2", row.path)
        g = groups.setdefault((name, row.shape), {"n": 0, "init": row.initializer, "std": []})
        g["itemsize"] = np.dtype(row.dtype).itemsize
        g["n"] += 1
        g["want"] = row.std
        g["std"].append(float(np.std(np.asarray(flat[row.path], np.float64))))
    rows, arrays, elements, nbytes = [], 0, 0, 0
    for (name, shape), g in groups.items():
        size = math.prod(shape)
        arrays += g["n"]
        elements += g["n"] * size
        nbytes += g["n"] * size * g["itemsize"]
        rows.append([name, "x".join(map(str, shape)), g["n"], g["n"] * size, repr(g["init"]),
                     g["want"], statistics.fmean(g["std"])])  # fmt: skip
    headers = ["parameter", "shape", "arrays", "elements", "jaxinit rule", "std", "measured std"]
    return h.table(headers, rows), arrays, elements, nbytes


# -- the benchmark --------------------------------------------------------------------------------
def run(cfg: tuple[int, int, int], repeats: int) -> list[h.Section]:
    jax.config.update("jax_enable_compilation_cache", False)
    names = list(CONTENDERS)
    if _adapter is None or not hasattr(_adapter, "prepare") or not hasattr(_generate, "program"):
        print("jaxinit internals not found: skipping the staged jaxinit run", flush=True)
        names.remove("jaxinit staged")
    for name in names:
        _cold(CONTENDERS[name], WARMUP)
    totals: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    kept: dict[str, dict[str, jax.Array]] = {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out, total, st = _cold(CONTENDERS[name], cfg)
            totals[name].append(total)
            for s, v in st.items():
                stages[name].setdefault(s, []).append(v)
            if r == 0 and name in ("jaxinit", "jaxinit staged"):
                kept[name] = _flat(out)
            elif r == 0 and name == "flax":
                kept[name] = {
                    path: jax.ShapeDtypeStruct(x.shape, x.dtype) for path, x in _flat(out).items()
                }
            del out
            extra = "  ".join(f"{s} {v:.3f}" for s, v in st.items())
            print(f"round {r + 1}/{repeats} {name:15s} {total:8.3f} s  {extra}", flush=True)
    med = {n: statistics.median(v) for n, v in totals.items()}
    ratio = h.ratio(med["jaxinit"], med["flax"])

    rows = []
    for name in names:
        st = {s: statistics.median(v) for s, v in stages[name].items()}
        rows.append([LABELS[name], len(totals[name]), med[name], min(totals[name]),
                     h.ratio(med[name], med["flax staged" if "staged" in name else "flax"]),
                     *(st.get(s) for s in STAGES)])  # fmt: skip
    headers = ["contender", "reps", "median s", "min s", "/flax", *(f"{s} s" for s in STAGES)]

    same_shapes = _shapes(kept["jaxinit"]) == _shapes(kept["flax"])
    same_bits = (
        _same_bits(kept["jaxinit"], kept["jaxinit staged"]) if "jaxinit staged" in kept else None
    )
    params, arrays, elements, nbytes = parameter_table(cfg, kept["jaxinit"])
    kept.clear()

    layers, d, vocab = cfg
    desc = f"{layers} layers, d={d}, vocab {vocab}"
    if cfg == FULL:
        mark = "-" if ratio is None else "ok" if ratio <= TARGET else "MISSED"
        check = f"jaxinit/flax = {h.fmt(ratio)} (<= {TARGET:g}: {mark})"
    else:
        check = f"jaxinit/flax = {h.fmt(ratio)} (target <= {TARGET:g} is for {FULL[0]} layers, "
        check += f"d={FULL[1]}, vocab {FULL[2]}: n/a here)"
    body = h.table(headers, rows) + "\n\n"
    body += (
        f"{desc}: {arrays} parameter arrays, {elements:,} parameters ({nbytes / 2**20:.1f} MiB). "
        "Every call runs after `jax.clear_caches()` (persistent compilation cache "
        "off): trace + compile + run. Medians of `reps` interleaved calls; '/flax' divides by "
        "the flax row of the same kind. Staged stages: jaxinit `eval_shape` is "
        "`nnx.eval_shape`, `prepare` the rule matching and program set-up, `run` the call plus "
        "the write-back into the module; flax's `trace+lower` is `.lower()` (tracing the model "
        f"constructor). Checks: shapes and dtypes match flax's: {h.fmt(same_shapes)}; staged "
        f"jaxinit bits == `reinit`'s: {h.fmt(same_bits)}.\n\n"
    )
    body += f"Target (docs/design.md): {check}\n"
    sections = [h.Section(f"NNX transformer init end to end, {desc} ({jax.default_backend()})",
                          body)]  # fmt: skip
    note = (
        "Block index folded into `*`. 'std': what the rule should give (`jaxinit.flax.plan`); "
        "'measured std': mean over the arrays of the std of jaxinit's values.\n"
    )
    sections.append(h.Section(f"NNX transformer parameters, {desc}", params + "\n\n" + note))
    return sections


def main(argv=None) -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=None, help=f"blocks (default {FULL[0]})")
    p.add_argument("--dim", type=int, default=None, help=f"model width d (default {FULL[1]})")
    p.add_argument("--vocab", type=int, default=None, help=f"embedding rows (default {FULL[2]})")
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    cfg = tuple(
        v if v is not None else b
        for v, b in zip((args.layers, args.dim, args.vocab), base, strict=True)
    )
    repeats = args.repeats or 3
    if args.json is None:
        h.print_machine()
    h.finish(args, "flax model init", run(cfg, repeats))


if __name__ == "__main__":
    main()
