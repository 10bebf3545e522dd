"""Deep unrolled NNX models, cold: `jaxinit.flax.abstract` + `reinit` vs Flax's jitted init.

The model: `layers` blocks in an ``nnx.List``, each 8 ``nnx.Linear(256, 256)`` and 2
``nnx.LayerNorm(256)`` -- unrolled, as a Python loop builds it (stacked ``nnx.vmap`` layers do
not have the problem measured here). Three contenders build its parameters from nothing:

* abstract: ``jaxinit.flax.abstract(lambda rngs: Deep(layers, rngs))``, then
  ``jaxinit.flax.reinit(abstract, key, RULES)``;
* eval_shape: the same with ``nnx.eval_shape(lambda: Deep(layers, nnx.Rngs(0)))``, whose cost
  grows with the square of the depth (every ``rngs.params()`` under the trace reads a traced
  count's ``sharding``, and jax builds that error message by walking every equation traced so
  far);
* flax: ``jax.jit(lambda: nnx.state(Deep(layers, nnx.Rngs(0))))()``.

Every call runs in a fresh Python process (``--child LAYERS CONTENDER`` prints one JSON line):
imports and a tiny unrelated jit that starts the backend are outside the clock; trace, compile
and run are inside it, up to ``jax.block_until_ready``; the persistent compilation cache is off.
Medians over the processes. Targets: abstract + reinit <= 0.1x flax at 96 layers, and its time
at 96 layers <= 3x its time at 12.

    python -m benchmarks.bench_depth                          # 12, 48, 96 layers, 3 processes
    python -m benchmarks.bench_depth --quick --no-append      # 12 layers, 1 process each
    python -m benchmarks.bench_depth --layers 12 96 --skip flax
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_depth.py
    import _harness as h  # type: ignore[no-redef]

TITLE = "Deep unrolled NNX models, cold: abstract + reinit vs Flax's jitted init"
ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("abstract", "eval_shape", "flax")
LAYERS: tuple[int, ...] = (12, 48, 96)
QUICK_LAYERS: tuple[int, ...] = (12,)
WIDTH = 256
TARGET_RATIO = 0.1  # abstract + reinit vs flax, at the deepest model
TARGET_GROWTH = 3.0  # abstract + reinit at the deepest vs the shallowest


def _model(layers: int) -> Any:
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.norm1 = nnx.LayerNorm(WIDTH, rngs=rngs)
            self.norm2 = nnx.LayerNorm(WIDTH, rngs=rngs)
            self.linears = nnx.List([nnx.Linear(WIDTH, WIDTH, rngs=rngs) for _ in range(8)])

    class Deep(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.blocks = nnx.List([Block(rngs) for _ in range(layers)])

    return Deep


def child(layers: int, contender: str) -> dict[str, Any]:
    """Times one cold build of the `layers`-deep model by `contender`, in this process."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import jaxinit
    import jaxinit.flax

    jax.config.update("jax_enable_compilation_cache", False)
    deep = _model(layers)
    rules = [("kernel", jaxinit.lecun_normal()), ("bias", jaxinit.zeros),
             ("scale", jaxinit.ones)]  # fmt: skip
    key = jax.random.key(0)
    jax.block_until_ready(jax.jit(lambda x: x * 2)(jnp.arange(3)))
    t = [time.perf_counter()]
    if contender == "flax":
        state = jax.jit(lambda: nnx.state(deep(nnx.Rngs(0))))()
        t.append(time.perf_counter())
    else:
        if contender == "abstract":
            model = jaxinit.flax.abstract(deep)
        else:
            model = nnx.eval_shape(lambda: deep(nnx.Rngs(0)))
        t.append(time.perf_counter())
        state = nnx.state(jaxinit.flax.reinit(model, key, rules))
    jax.block_until_ready(state)
    t.append(time.perf_counter())
    steps = {"build": t[1] - t[0]} if contender != "flax" else {}
    return {"layers": layers, "contender": contender, "seconds": t[-1] - t[0], "steps": steps}


def spawn(layers: int, contender: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_depth", "--child", str(layers), contender]
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(depths: list[int], contenders: list[str], repeats: int) -> list[h.Section]:
    runs: dict[tuple[int, str], list[float]] = {}
    builds: dict[tuple[int, str], list[float]] = {}
    for r in range(repeats):
        for layers in depths:
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for contender in order:
                res = spawn(layers, contender)
                runs.setdefault((layers, contender), []).append(res["seconds"])
                builds.setdefault((layers, contender), []).append(res["steps"].get("build", 0))
                print(f"round {r + 1}/{repeats} {layers:3d} layers {contender:10s} "
                      f"{res['seconds']:8.2f} s", flush=True)  # fmt: skip
    med = {k: statistics.median(v) for k, v in runs.items()}
    rows = []
    for layers in depths:
        row: list[Any] = [layers]
        for c in contenders:
            row += [med.get((layers, c))]
            if c != "flax":
                row += [statistics.median(builds[layers, c])]
        row += [h.ratio(med.get((layers, "abstract")), med.get((layers, "flax")))]
        rows.append(row)
    headers = ["layers"]
    for c in contenders:
        headers += [f"{c} s"] + ([f"{c}: build s"] if c != "flax" else [])
    headers += ["abstract/flax"]
    body = h.table(headers, rows) + "\n\n"
    body += (
        f"Model: `layers` blocks of 8 `nnx.Linear({WIDTH}, {WIDTH})` and 2 `nnx.LayerNorm`, "
        "unrolled. Each call is one fresh process (trace + compile + run, persistent "
        "compilation cache off); medians. 'build s' is the abstract model alone (`abstract` "
        "or `nnx.eval_shape`); the rest of each jaxinit time is `reinit`.\n\n"
    )
    deep, shallow = max(depths), min(depths)
    if "abstract" in contenders and "flax" in contenders and (deep, "flax") in med:
        ratio = med[deep, "abstract"] / med[deep, "flax"]
        body += f"Target: abstract + reinit <= {TARGET_RATIO:g}x flax at {deep} layers: "
        body += f"{ratio:.3f} ({'ok' if ratio <= TARGET_RATIO else 'MISSED'})\n"
    if "abstract" in contenders and deep != shallow:
        growth = med[deep, "abstract"] / med[shallow, "abstract"]
        body += f"Target: abstract + reinit at {deep} layers <= {TARGET_GROWTH:g}x at {shallow}: "
        body += f"{growth:.2f}x ({'ok' if growth <= TARGET_GROWTH else 'MISSED'})\n"
    return [h.Section(TITLE, body)]


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3])))
        return
    p = h.parser(__doc__.splitlines()[0] if __doc__ else TITLE)
    p.add_argument("--layers", type=int, nargs="+", default=None, help="depths to time")
    p.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS, help="contenders to skip")
    args = p.parse_args(argv)
    depths = args.layers or list(QUICK_LAYERS if args.quick else LAYERS)
    repeats = args.repeats or (1 if args.quick else 3)
    h.print_machine()
    contenders = [c for c in CONTENDERS if c not in args.skip]
    h.finish(args, TITLE, run(depths, contenders, repeats))


if __name__ == "__main__":
    main()
