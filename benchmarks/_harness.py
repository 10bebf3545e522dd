"""Shared helpers of the benchmarks: timing, the machine description, tables and RESULTS.md.

Timing rules (every script follows them):

* a contender is a no-argument callable returning its result (a jax array or a torch tensor);
* its first call -- trace, compile and run for jax -- is timed on its own and reported apart;
* after `warmup` more calls, the `repeats` timed calls go round-robin over the contenders (the
  order rotated each round), so drift of the machine hits every contender alike;
* a jax result is waited for with ``jax.block_until_ready``; torch on CPU is synchronous;
* torch runs with its default thread count (never ``torch.set_num_threads``), seeded by
  ``torch.manual_seed``.

`median` is the number the ratios use; `min` is shown beside it as a noise check.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
#: Load average when the benchmarks started (later ones include the benchmark itself).
LOAD_AT_START = os.getloadavg()


# -- optional torch -----------------------------------------------------------------------------
def import_torch(seed: int = 0) -> Any | None:
    """torch, seeded with `seed`, or None when it is not installed (e.g. on a GPU box)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    return torch


# -- timing -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Timing:
    """Seconds of one contender: its first call and the steady-state calls."""

    name: str
    first: float
    times: list[float]
    output: Any = None  # the first call's result, when asked to keep it

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)


def block(x: Any) -> Any:
    """Waits for a jax result (any pytree); torch tensors and other values pass through."""
    if type(x).__module__.startswith("torch"):
        return x
    import jax

    return jax.block_until_ready(x)


def compare(
    contenders: dict[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: int = 1,
    keep_output: bool = False,
    pause: float = 0.01,
) -> dict[str, Timing]:
    """Times every contender: first call apart, then `repeats` interleaved calls each.

    `pause` seconds of sleep before each timed call let the previous contender's thread pool
    (torch's OpenMP, XLA's Eigen pool) stop spinning, so it does not steal the next one's cores.
    """
    out: dict[str, Timing] = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        result = block(fn())
        first = time.perf_counter() - t0
        out[name] = Timing(name, first, [], result if keep_output else None)
        del result
        for _ in range(warmup):
            block(fn())
    names = list(contenders)
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = contenders[name]
            time.sleep(pause)
            t0 = time.perf_counter()
            block(fn())
            out[name].times.append(time.perf_counter() - t0)
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# -- machine description ------------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "?"


def _cpus() -> str:
    total = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = total
    text = f"{usable} usable of {total}"
    quota = _read("/sys/fs/cgroup/cpu.max").split()
    if len(quota) == 2 and quota[0] != "max":
        text += f" (cgroup quota {int(quota[0]) / int(quota[1]):g} CPUs)"
    return text


def _git() -> str:
    try:
        run = lambda *a: subprocess.run(
            ["git", *a], cwd=HERE, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        head = run("rev-parse", "--short", "HEAD")
        dirty = run("status", "--porcelain", "--", "jaxinit")
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head + (" + uncommitted changes in jaxinit/" if dirty else "")


def machine() -> dict[str, str]:
    """What the numbers were measured on: CPU, RAM, OS, versions, jax backend and devices."""
    import jax
    import jaxlib

    info = {
        "CPU": f"{_cpu_model()}, {_cpus()} cores",
        "RAM": _ram(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "jax / jaxlib": f"{jax.__version__} / {jaxlib.__version__}",
    }
    torch = import_torch()
    info["torch"] = torch.__version__ if torch is not None else "not installed"
    devices = jax.devices()
    kind = devices[0].device_kind
    desc = f"{jax.default_backend()}: {len(devices)} x {kind}"
    try:
        stats = devices[0].memory_stats() or {}
    except Exception:
        stats = {}
    if "bytes_limit" in stats:
        desc += f" ({stats['bytes_limit'] / 2**30:.0f} GiB usable each)"
    info["jax devices"] = desc
    load = LOAD_AT_START
    info["load average at start"] = f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)"
    if os.environ.get("XLA_FLAGS"):
        info["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    info["jaxinit commit"] = _git()
    return info


def machine_markdown(info: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


# -- tables -------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    """A cell: None is a dash, floats get `digits` significant digits, the rest str()."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 10 ** (digits + 2) or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; numeric columns right-aligned, padded to read as plain text."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(items: Sequence[str]) -> str:
        padded = [
            s.rjust(w) if num else s.ljust(w)
            for s, w, num in zip(items, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric, strict=True)
    ]
    return "\n".join([line(headers), line(rule), *(line(r) for r in cells)])


@dataclasses.dataclass
class Section:
    """One titled result: a markdown table and notes under it."""

    title: str
    body: str

    def markdown(self) -> str:
        return f"### {self.title}\n\n{self.body.rstrip()}\n"


# -- command line and RESULTS.md ----------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    """The flags every script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per contender")
    p.add_argument("--no-append", action="store_true", help=f"do not append to {RESULTS.name}")
    p.add_argument("--results", type=Path, default=RESULTS, help="the file to append to")
    p.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)  # for __main__
    return p


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    module = Path(sys.argv[0]).stem
    return f"python -m benchmarks.{module} {args}".rstrip()


def append_results(
    path: Path, title: str, sections: Sequence[Section], command: str, info: dict[str, str]
) -> None:
    """Appends a dated entry -- command, machine, sections -- to `path`."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"\n## {stamp} - {title}\n",
        f"`{command}`\n",
        machine_markdown(info) + "\n",
        *(s.markdown() for s in sections),
    ]
    with path.open("a") as f:
        f.write("\n".join(parts))
    print(f"\nappended to {path}")


def finish(args: argparse.Namespace, title: str, sections: Sequence[Section]) -> None:
    """Prints the sections; writes them for `python -m benchmarks` or appends to RESULTS.md."""
    for s in sections:
        print()
        print(s.markdown())
    if args.json is not None:
        args.json.write_text(json.dumps([dataclasses.asdict(s) for s in sections]))
        return
    if not args.no_append:
        append_results(args.results, title, sections, command_line(), machine())


def print_machine() -> None:
    print(machine_markdown(machine()), flush=True)
    busy_warning()


def busy_warning() -> None:
    """Warns when other work was running: the timings then measure the contention."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    if LOAD_AT_START[0] > 0.5 * usable:
        print(
            f"WARNING: load average {LOAD_AT_START[0]:.1f} on {usable} cores at start: the "
            "machine is busy and timings (and so ratios) are unreliable.",
            flush=True,
        )
