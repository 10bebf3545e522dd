"""Real models, cold: nnx/jax.eval_shape + jaxinit.flax.reinit vs each model's own Flax init.

The models are the test fixtures in tests/real_models (small copies of Flax's examples'
parameter layouts, and a toy NNX model with every built-in layer): Gemma (NNX) tiny and
6-layer, lm1b (linen) tiny and 6-layer, ResNet18 (linen, 1x224x224x3) and the toy. Two
contenders build each model's parameters from nothing, with Flax's default laws:

* jaxinit, NNX: ``abstract = nnx.eval_shape(lambda: factory(nnx.Rngs(0)))``, then
  ``reinit(abstract, key, framework_rules("flax", abstract))``; linen:
  ``shapes = jax.eval_shape(model.init, key, inputs)`` and
  ``layers = jaxinit.flax.linen_layers(model, inputs)``, then
  ``reinit(shapes, key, framework_rules("flax", shapes, layers=layers), layers=layers)``
  (ResNet18's ``batch_stats`` get two rules more: mean 0, var 1);
* flax, NNX: ``jax.jit(lambda: nnx.state(factory(nnx.Rngs(0))))()``; linen:
  ``jax.jit(model.init)(key, inputs)``.

Every call runs in a fresh Python process (``--child MODEL CONTENDER``, which prints one JSON
line), so it is cold: imports, the inputs and one tiny unrelated jit that starts the backend
are outside the clock; trace, compile and run of everything above are inside it, up to
``jax.block_until_ready``. The persistent compilation cache is off. The processes go
round-robin over the models and contenders, order rotated each round; medians are reported.
Target: jaxinit <= 0.5x flax on every model over 5M parameters.

    python -m benchmarks.bench_real_models                       # 3 processes per contender
    python -m benchmarks.bench_real_models --quick --no-append   # 1 process each (smoke test)
    python -m benchmarks.bench_real_models --models resnet18 gemma_6 --repeats 5
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_real_models.py
    import _harness as h  # type: ignore[no-redef]

TITLE = "Real models, cold: jaxinit (eval_shape + reinit) vs each model's own Flax init"
ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5
#: Models with more parameters than this must meet `TARGET`.
TARGET_MIN_PARAMS = 5_000_000
CONTENDERS = ("jaxinit", "flax")
#: jaxinit's steps, timed apart in the child (they add up to its total).
STEPS = ("abstract", "rules", "reinit")


@dataclasses.dataclass(frozen=True)
class Model:
    """A fixture: its module and factory in tests/real_models, and whether it is linen."""

    label: str
    module: str
    factory: str
    linen: bool = False


MODELS = {
    "gemma_tiny": Model("Gemma tiny (NNX)", "gemma", "tiny"),
    "gemma_6": Model("Gemma 6 layers (NNX)", "gemma", "six_layers"),
    "lm1b_tiny": Model("lm1b tiny (linen)", "lm1b", "TINY", linen=True),
    "lm1b_6": Model("lm1b 6 layers (linen)", "lm1b", "SIX_LAYERS", linen=True),
    "resnet18": Model("ResNet18 (linen, 1x224x224x3)", "resnet", "make", linen=True),
    "toy": Model("toy: every NNX layer", "toy", "toy"),
}


# -- the child: one cold call in this process ------------------------------------------------
#: A contender ready to run: () -> (the parameters made, seconds of jaxinit's `STEPS`).
Call = Callable[[], tuple[Any, dict[str, float]]]


def _module(model: Model) -> Any:
    import importlib

    return importlib.import_module(f"tests.real_models.{model.module}")


def _linen(model: Model) -> tuple[Any, Any]:
    """The linen module and its ``init`` input (a ShapeDtypeStruct)."""
    mod = _module(model)
    if model.module == "lm1b":
        cfg = getattr(mod, model.factory)
        return mod.TransformerLM(cfg), mod.tokens(cfg)
    return getattr(mod, model.factory)(), mod.inputs()


def _steps(t: list[float]) -> dict[str, float]:
    return dict(zip(STEPS, (b - a for a, b in itertools.pairwise(t)), strict=True))


def _contender(model: Model, contender: str) -> Call:
    """`contender`'s init of `model`, with its inputs made (outside the clock)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import jaxinit
    import jaxinit.flax

    key = jax.random.key(0)
    clock = time.perf_counter
    if model.linen:
        module, spec = _linen(model)
        data = jnp.zeros(spec.shape, spec.dtype)  # flax's jit needs a concrete input

        def flax_linen():
            return jax.block_until_ready(jax.jit(module.init)(key, data))["params"], {}

        def jaxinit_linen():
            t = [clock()]
            shapes = jax.eval_shape(module.init, key, spec)
            layers = jaxinit.flax.linen_layers(module, spec)
            t.append(clock())
            rules = jaxinit.flax.framework_rules("flax", shapes, layers=layers)
            if "batch_stats" in shapes:  # not parameters: BatchNorm's running statistics
                rules += [(r"^batch_stats/.*/mean$", jaxinit.zeros),
                          (r"^batch_stats/.*/var$", jaxinit.ones)]  # fmt: skip
            t.append(clock())
            out = jax.block_until_ready(jaxinit.flax.reinit(shapes, key, rules, layers=layers))
            t.append(clock())
            return out["params"], _steps(t)

        return jaxinit_linen if contender == "jaxinit" else flax_linen
    factory = getattr(_module(model), model.factory)

    def flax_nnx():
        state = jax.block_until_ready(jax.jit(lambda: nnx.state(factory(nnx.Rngs(0))))())
        return nnx.state(state, nnx.Param), {}

    def jaxinit_nnx():
        t = [clock()]
        abstract = nnx.eval_shape(lambda: factory(nnx.Rngs(0)))
        t.append(clock())
        rules = jaxinit.flax.framework_rules("flax", abstract)
        t.append(clock())
        out = jaxinit.flax.reinit(abstract, key, rules)
        params = jax.block_until_ready(nnx.state(out, nnx.Param))
        t.append(clock())
        return params, _steps(t)

    return jaxinit_nnx if contender == "jaxinit" else flax_nnx


def child(name: str, contender: str) -> dict[str, Any]:
    """Times one cold init of model `name` by `contender`, in this (fresh) process."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_compilation_cache", False)
    call = _contender(MODELS[name], contender)
    # Start the backend with a jit that shares nothing with either contender.
    jax.block_until_ready(jax.jit(lambda x: x * 2)(jnp.arange(3)))
    t0 = time.perf_counter()
    params, steps = call()
    seconds = time.perf_counter() - t0
    leaves = jax.tree.leaves(params)
    return {"model": name, "contender": contender, "seconds": seconds, "steps": steps,
            "arrays": len(leaves), "params": sum(math.prod(x.shape) for x in leaves),
            "backend": jax.default_backend()}  # fmt: skip


def spawn(name: str, contender: str) -> dict[str, Any]:
    """Runs `child` in a fresh process from the repository root; its JSON line."""
    cmd = [sys.executable, "-m", "benchmarks.bench_real_models", "--child", name, contender]
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the parent: rounds of fresh processes, the table -------------------------------------------
def run(names: list[str], repeats: int) -> list[h.Section]:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    pairs = [(m, c) for m in names for c in CONTENDERS]
    for r in range(repeats):
        for name in names:
            order = CONTENDERS[r % 2 :] + CONTENDERS[: r % 2]  # alternate who goes first
            for contender in order:
                time.sleep(0.2)  # let the previous process's threads and memory go
                res = spawn(name, contender)
                runs.setdefault((name, contender), []).append(res)
                extra = "  ".join(f"{s} {v:.3f}" for s, v in res["steps"].items())
                print(f"round {r + 1}/{repeats} {name:10s} {contender:8s} "
                      f"{res['seconds']:8.3f} s  {extra}", flush=True)  # fmt: skip
    rows, misses, checked = [], [], 0
    for name in names:
        med = {c: statistics.median(x["seconds"] for x in runs[name, c]) for c in CONTENDERS}
        jx, fx = runs[name, "jaxinit"], runs[name, "flax"]
        n_params, n_arrays = fx[0]["params"], fx[0]["arrays"]
        same = all((x["params"], x["arrays"]) == (n_params, n_arrays) for x in jx + fx)
        ratio = h.ratio(med["jaxinit"], med["flax"])
        if n_params > TARGET_MIN_PARAMS:
            checked += 1
            ok = ratio is not None and ratio <= TARGET
            mark = "ok" if ok else "MISSED"
            if not ok:
                misses.append(name)
        else:
            mark = "n/a"
        steps = [statistics.median(x["steps"][s] for x in jx) for s in STEPS]
        rows.append([MODELS[name].label, n_params, n_arrays, len(jx), med["jaxinit"],
                     min(x["seconds"] for x in jx), med["flax"],
                     min(x["seconds"] for x in fx), ratio, mark, *steps, same])  # fmt: skip
    headers = ["model", "params", "arrays", "procs", "jaxinit s", "jaxinit min s", "flax s",
               "flax min s", "jaxinit/flax", "<= 0.5", *(f"{s} s" for s in STEPS),
               "same count"]  # fmt: skip
    backend = runs[pairs[0]][0]["backend"]
    body = h.table(headers, rows) + "\n\n"
    body += (
        "Each call is one fresh Python process (imports, inputs and a tiny unrelated jit that "
        "starts the backend are not timed; trace + compile + run are, persistent compilation "
        "cache off); medians over `procs` processes per contender, alternating which goes "
        "first. jaxinit: `nnx.eval_shape` (NNX) or `jax.eval_shape(model.init)` + "
        '`linen_layers` (linen) is `abstract`, `framework_rules("flax", ...)` is `rules`, '
        "`reinit` up to `block_until_ready` is `reinit`. flax: `jax.jit` of the model's own "
        "init. 'params' and 'arrays' count the parameters (ResNet18's `batch_stats` are made "
        "by both but not counted; the toy's BatchNorm statistics are not parameters, so "
        "`reinit` leaves them abstract); 'same count': jaxinit made the same number of "
        "parameter arrays and elements as flax.\n\n"
    )
    summary = "ok" if not misses else f"MISSED on {', '.join(misses)}"
    body += (
        f"Target: jaxinit/flax <= {TARGET:g} on every model over {TARGET_MIN_PARAMS // 10**6}M "
        f"parameters ({checked} here): {summary if checked else 'n/a'}\n"
    )
    return [h.Section(f"Real models, cold init: jaxinit vs Flax ({backend})", body)]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        if len(argv) != 3 or argv[1] not in MODELS or argv[2] not in CONTENDERS:
            raise SystemExit(f"usage: --child {{{','.join(MODELS)}}} {{{','.join(CONTENDERS)}}}")
        print(json.dumps(child(argv[1], argv[2])), flush=True)
        return
    p = h.parser(TITLE)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                   help="the models to time (default: all)")  # fmt: skip
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.json is None:
        h.print_machine()
    h.finish(args, "real models init", run(args.models, repeats))


if __name__ == "__main__":
    main()
