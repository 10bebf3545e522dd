"""Runs every benchmark and appends one entry with all their tables to RESULTS.md.

    python -m benchmarks                 # full run (a few minutes each on a 2-core CPU)
    python -m benchmarks --quick --no-append

Each benchmark runs in its own process: the sharded-memory one needs 8 simulated CPU devices,
which must be configured before jax is imported and would skew the timings of the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import _harness as h

SCRIPTS = {
    "orthogonal": "benchmarks.bench_orthogonal",
    "elementwise": "benchmarks.bench_elementwise",
    "sharded": "benchmarks.bench_sharded_memory",
    "flax_model": "benchmarks.bench_flax_model",
    "real_models": "benchmarks.bench_real_models",
    "depth": "benchmarks.bench_depth",
    "cold": "benchmarks.bench_cold",
}


def summary(sections: list[h.Section]) -> str:
    """Every benchmark's target lines (ratio and memory checks, ok / MISSED), under its title."""
    lines = ["", "## Summary: targets"]
    for s in sections:
        targets = [ln for ln in s.body.splitlines() if ln.startswith("Target")]
        if targets:
            lines += ["", f"### {s.title}", *targets]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--skip", nargs="+", default=[], choices=list(SCRIPTS), help="leave out")
    args = p.parse_args(argv)
    h.print_machine()
    sections: list[h.Section] = []
    failed = []
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in SCRIPTS.items():
            if name in args.skip:
                continue
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, "-m", module, "--no-append", "--json", str(out)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--repeats", str(args.repeats)] if args.repeats else []
            print(f"\n== {' '.join(cmd[1:3])} ==", flush=True)
            if subprocess.run(cmd, cwd=root, check=False).returncode or not out.exists():
                failed.append(name)
                continue
            sections += [h.Section(**s) for s in json.loads(out.read_text())]
    print(summary(sections))
    if sections and not args.no_append:
        command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
        h.append_results(args.results, "all benchmarks", sections, command.rstrip(), h.machine())
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
