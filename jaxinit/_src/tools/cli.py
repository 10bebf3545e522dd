"""The ``jaxinit`` command.

``jaxinit report`` builds a model (the embedded Llama-style reference, or ``--model
module:factory``), initializes it sharded across the local devices with a scheme, and prints the
per-parameter table, timings against Flax's own init and a mesh-independent fingerprint (the
work is in the report subpackage). ``jaxinit catalogue`` prints every initializer and framework
preset by name, its aliases and the formula of its first docstring line. ``jaxinit verify``
recomputes the golden digests on the current backend (docs/determinism.md).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxinit._src.catalog import registry
from jaxinit._src.tools import golden

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from jaxinit._src.tools.report import report as report_lib


def catalogue() -> list[tuple[str, str, str]]:
    """Rows ``(name, aliases, summary)`` for every entry of the registry: schemes and presets."""
    aliases: dict[str, list[str]] = {}
    for alias, name in registry.ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    rows = []
    for name, factory in sorted(registry.TABLE.items()):
        doc = inspect.getdoc(factory) or ""  # a class's, an instance's class's or a function's
        rows.append((name, ", ".join(sorted(aliases.get(name, []))), doc.splitlines()[0]))
    return rows


def _print_table(rows: list[tuple[str, str, str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # the `cli` extra is not installed: plain text
        width = max(len(r[0]) for r in rows)
        for name, alias, summary in rows:
            print(f"{name:<{width}}  {summary}" + (f"  (aliases: {alias})" if alias else ""))
        return
    table = Table(title=f"jaxinit catalogue: {len(rows)} initializers")
    table.add_column("name", style="bold")
    table.add_column("aliases")
    table.add_column("what it draws")
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


def _catalogue(args: argparse.Namespace) -> int:
    _print_table(catalogue())
    return 0


# -- report ------------------------------------------------------------------------------------
_REPORT_DESCRIPTION = (
    "Builds a model abstractly under a ('data', 'model') mesh over the local devices, initializes "
    "it with a scheme (jaxinit.flax.reinit: each parameter straight into its shard), and prints "
    "every parameter's path, shape, dtype, sharding, initializer, fans, target and measured std "
    "(orthogonality error for orthogonal kernels), the init time against Flax's own jitted init, "
    "and a fingerprint of all parameter bytes that is the same for every --devices value. Exits "
    "2 on a bad option."
)


def _device_count(text: str) -> int:
    """argparse type of ``--devices``: an int in 1..MAX_DEVICES."""
    from jaxinit._src.tools.report import report as report_lib

    try:
        return report_lib.check_device_count(text)
    except report_lib.ReportError as e:
        limit = report_lib.MAX_DEVICES
        raise argparse.ArgumentTypeError(
            f"must be a positive integer <= {limit}; got {text!r}"
        ) from e


#: The seeds `jax.random.key` takes: a signed 64-bit integer.
SEED_RANGE = (-(2**63), 2**63 - 1)


def _seed(text: str) -> int:
    """argparse type of ``--seed``: an int `jax.random.key` accepts (64-bit)."""
    lo, hi = SEED_RANGE
    try:
        seed = int(text, 10)
    except ValueError:
        seed = None
    if seed is None or not lo <= seed <= hi:
        raise argparse.ArgumentTypeError(f"must be an integer in [-2**63, 2**63 - 1]; got {text!r}")
    return seed


def _output_file(text: str) -> str:
    """argparse type of an output path (``--json``, ``--plot``): checked before any work is done,
    so a long run never ends in a FileNotFoundError."""
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file path")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: no directory {str(folder)!r}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    return text


@contextlib.contextmanager
def _stages(total: int) -> Iterator[report_lib.Stage]:
    """A rich progress bar over the report's stages on a terminal (stderr); nothing otherwise."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        yield lambda what: contextlib.nullcontext()
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda what: contextlib.nullcontext()
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("jaxinit report", total=total)

        @contextlib.contextmanager
        def stage(what: str) -> Iterator[None]:
            bar.update(task, description=what)
            yield
            bar.advance(task)

        yield stage


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "" if x is None else format(x, fmt)


def _fan(x: float | None) -> str:
    return "" if x is None else str(int(x)) if float(x).is_integer() else f"{x:.4g}"


def _cells(row: report_lib.Row, orth: bool) -> list[str]:
    cells = [row.path, "x".join(map(str, row.shape)), row.dtype, row.sharding, row.initializer,
             _fan(row.fan_in), _fan(row.fan_out), _num(row.target_std),
             _num(row.measured_std)]  # fmt: skip
    return [*cells, _num(row.orthogonality_error, ".1e")] if orth else cells


def _label_lines(rows: list[report_lib.Row], shown: int = 6) -> list[str]:
    """One line per rule label (what a recipe scaled, e.g. the residual projections and L),
    with the parameters it took."""
    by_label: dict[str, list[str]] = {}
    for row in rows:
        if row.label:
            by_label.setdefault(row.label, []).append(row.path)
    lines = []
    for label, paths in by_label.items():
        more = f", ... ({len(paths) - shown} more)" if len(paths) > shown else ""
        lines.append(f"  {label}: {len(paths)} parameter(s): {', '.join(paths[:shown])}{more}")
    return lines


def _report_text(r: report_lib.Report) -> tuple[list[str], list[str]]:
    """The lines before and after the table."""
    from jaxinit._src.tools.report.report import STD_Z

    total = r.total()
    mesh = " x ".join(f"{k}={v}" for k, v in r.mesh.items())
    head = [
        f"jaxinit report: model {r.model}: {total['parameters']:,} parameters in "
        f"{total['arrays']} arrays ({total['bytes'] / 2**20:.1f} MiB)",
        f"  scheme {r.scheme}: {r.summary}",
        f"  {r.devices} {r.platform} device(s), mesh {mesh}, seed {r.seed}",
        *_label_lines(r.rows),
    ]
    t = r.timings
    init = [f"  jaxinit {t['jaxinit_s']:6.2f} s  nnx.eval_shape + jaxinit.flax.reinit"]
    if t["flax_s"] is not None:
        init += [
            f"  Flax    {t['flax_s']:6.2f} s  jax.jit(lambda: nnx.state(Model(rngs)))()",
            f"  jaxinit / Flax = {t['ratio']:.2f}",
        ]
    tier = (
        "the same bits for every --devices value and mesh"
        if r.bitwise
        else "orthogonal sharded along a matrix axis agrees across meshes only to <= 2e-6, "
        "so this fingerprint can differ between --devices values"
    )
    foot = [
        f"measured std within {STD_Z:g} standard errors of the target: "
        f"{total['std_on_target']}/{total['std_checked']} parameters",
        "init time, cold (trace + compile + run, caches cleared):",
        *init,
        f"measuring on device {t['measure_s']:.2f} s, fingerprint {t['fingerprint_s']:.2f} s, "
        f"whole report {t['total_s']:.1f} s",
        f"fingerprint: {r.fingerprint}",
        f"  (SHA-256 of every parameter's path, shape, dtype and bytes in path order: {tier})",
    ]
    return head, foot


_COLUMNS = ("path", "shape", "dtype", "sharding", "initializer", "fan_in", "fan_out",
            "target std", "measured std", "orth. error")  # fmt: skip


def _print_report(r: report_lib.Report) -> None:
    """The report as a rich table (plain text without the `cli` extra)."""
    orth = any(row.orthogonality_error is not None for row in r.rows)
    columns = _COLUMNS if orth else _COLUMNS[:-1]
    head, foot = _report_text(r)
    total = r.total()
    total_cells = [f"total ({total['arrays']} arrays)", f"{total['parameters']:,}", "", "", "",
                   "", "", "", f"{total['std_on_target']}/{total['std_checked']} ok"]  # fmt: skip
    total_cells += [""] if orth else []
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:  # the `cli` extra is not installed: plain text
        rows = [_cells(row, orth) for row in r.rows] + [total_cells]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
        print("\n".join(head))
        for cells in [list(columns), *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        print("\n".join(foot))
        return
    console = Console(width=max(Console().width, 160))
    console.print(Text("\n".join(head)), soft_wrap=True)
    table = Table(show_footer=True)
    for i, col in enumerate(columns):
        right = col.startswith(("fan", "target", "measured", "orth"))
        table.add_column(col, footer=total_cells[i], justify="right" if right else "left")
    for row in r.rows:
        cells: list[Any] = [Text(c) for c in _cells(row, orth)]
        style = {True: "green", False: "bold red", None: ""}[row.on_target]
        cells[8] = Text(cells[8].plain, style=style)
        table.add_row(*cells)
    console.print(table)
    console.print(Text("\n".join(foot)))


def _report(args: argparse.Namespace) -> int:
    from jaxinit._src.tools.report import report as report_lib

    options = report_lib.Options(
        model=args.model, scheme=args.scheme, devices=args.devices, seed=args.seed,
        compare=not args.no_compare, signal=args.plot is not None,
    )  # fmt: skip
    try:
        report_lib.get_scheme(options.scheme, options.model)  # fail fast, before JAX starts
        if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
            raise report_lib.ReportError("`--plot` needs matplotlib: pip install 'jaxinit[plot]'.")
        configured = report_lib.configure_devices(options.devices)
        with _stages(4 + 2 * options.compare + options.signal) as stage:
            result = report_lib.run(options, stage, configured)
    except report_lib.ReportError as e:
        print(f"jaxinit report: error: {e}", file=sys.stderr)
        return 2
    _print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_json(), indent=1) + "\n")
        print(f"JSON written to {args.json}")
    if args.plot:
        from jaxinit._src.tools.report import plot as report_plot

        report_plot.plot(result, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _add_report(sub: Any) -> None:
    from jaxinit._src.tools.report import report as report_lib

    p = sub.add_parser(
        "report",
        help="initialize a model sharded across the devices and report every parameter",
        description=_REPORT_DESCRIPTION,
    )
    p.add_argument(
        "--model",
        metavar="MODULE:FACTORY",
        default=report_lib.REFERENCE_MODEL,
        help="a callable returning an nnx.Module, called with rngs=nnx.Rngs(seed) if it takes "
        "`rngs` (default: the embedded Llama-style reference model, 28M parameters); its "
        "partition metadata may name the mesh axes 'data' and 'model'",
    )
    schemes = "; ".join(f"{name}: {s.summary}" for name, s in report_lib.SCHEMES.items())
    p.add_argument(
        "--scheme",
        default=report_lib.DEFAULT_SCHEME,
        help=f"the initialization scheme (default {report_lib.DEFAULT_SCHEME}). {schemes}",
    )
    p.add_argument(
        "--devices",
        metavar="N",
        type=_device_count,
        help=f"use N devices, 1..{report_lib.MAX_DEVICES}; on CPU they are simulated (default "
        f"{report_lib.DEFAULT_CPU_DEVICES} on CPU, all local devices elsewhere)",
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help="the root key's seed, a 64-bit int (default 0)"
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        type=_output_file,
        help="draw per-parameter target vs measured std and the signal propagation",
    )
    p.add_argument(
        "--json", metavar="FILE", type=_output_file, help="also write the report as JSON to FILE"
    )
    p.add_argument("--no-compare", action="store_true", help="skip timing Flax's own init")
    p.set_defaults(run=_report)


# -- verify ------------------------------------------------------------------------------------
_TIER_STYLE = {"bitwise": "green", "<=2ulp": "cyan", "<=1e-5": "yellow", "FAIL": "bold red"}


def _fmt_ulp(r: golden.Result) -> str:
    return "" if r.comparison.max_ulp is None else str(r.comparison.max_ulp)


def _fmt_abs(r: golden.Result) -> str:
    return "" if r.comparison.max_abs is None else f"{r.comparison.max_abs:.2e}"


def _header(path: Traversable, meta: dict[str, Any], env: dict[str, Any], n: int) -> str:
    return (
        f"jaxinit verify: {n} cases from {path}\n"
        f"  recorded on {meta.get('backend')} ({meta.get('device_kind')}), jax {meta.get('jax')}, "
        f"jaxlib {meta.get('jaxlib')}, jaxinit {meta.get('jaxinit')}, {meta.get('date')}\n"
        f"  running on  {env['backend']} ({env['device_kind']}), jax {env['jax']}, "
        f"jaxlib {env['jaxlib']}, jaxinit {env['jaxinit']}"
    )


def _progress(total: int) -> tuple[Callable[[Any], None] | None, Callable[[], None]]:
    """A rich progress bar on a terminal; nothing otherwise (logs, pipes, tests)."""
    try:
        from rich.progress import Progress
    except ImportError:
        return None, lambda: None
    if not sys.stdout.isatty():
        return None, lambda: None
    bar = Progress(transient=True)
    task = bar.add_task("recomputing cases", total=total)
    bar.start()
    return (lambda _: bar.advance(task)), bar.stop


def _print_verify(
    header: str,
    results: list[golden.Result],
    families: dict[str, tuple[str, str]],
    notes: list[str],
    footer: list[str],
) -> None:
    try:
        from rich.console import Console
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text
    except ImportError:  # the `cli` extra is not installed: plain text
        print(header)
        for note in notes:
            print(f"\n!!! NOTE: {note}\n")
        width = max(len(r.id) for r in results) if results else 10
        print(
            f"{'case':<{width}}  {'expected':<8}  {'tier':<8}  {'max ulp':>10}  {'max |diff|':>10}"
        )
        for r in results:
            mark = " *" if golden.worse(r.tier, r.expected) else ""
            err = f"  {r.comparison.error}" if r.comparison.error else ""
            print(
                f"{r.id:<{width}}  {r.expected:<8}  {r.tier + mark:<8}  {_fmt_ulp(r):>10}  "
                f"{_fmt_abs(r):>10}{err}"
            )
        print("\n(* worse than the family's expected tier)")
        for fam, (expected, note) in families.items():
            print(f"  {fam:<10} expected {expected:<8} {note}")
        for note in notes:
            print(f"\n!!! NOTE: {note}")
        print("\n".join(footer))
        return
    console = Console(width=160)
    console.print(Text(header))
    for note in notes:
        console.print(Panel(Text(note), title="NOTE", border_style="bold yellow"))
    table = Table(title=f"golden cases: {len(results)}")
    for col in ("case", "family", "expected", "tier", "max ulp", "max |diff|", "error"):
        table.add_column(col, justify="right" if col.startswith("max") else "left")
    for r in results:
        mark = " *" if golden.worse(r.tier, r.expected) else ""
        table.add_row(
            Text(r.id),
            r.family,
            Text(r.expected),
            Text(r.tier + mark, style=_TIER_STYLE[r.tier]),
            _fmt_ulp(r),
            _fmt_abs(r),
            Text(r.comparison.error or ""),
        )
    console.print(table)
    legend = Table(title="expected tier per family (* in the table: worse than expected)")
    for col in ("family", "expected", "why"):
        legend.add_column(col)
    for fam, (expected, note) in families.items():
        legend.add_row(fam, Text(expected), note)
    console.print(legend)
    for note in notes:
        console.print(Panel(Text(note), title="NOTE", border_style="bold yellow"))
    console.print(Text("\n".join(footer)))


def _verify(args: argparse.Namespace) -> int:
    try:
        path = golden.resolve_path(args.goldens)
        doc = golden.load(path)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaxinit verify: {e}", file=sys.stderr)
        return 2
    env = golden.environment()
    meta = doc["meta"]
    notes = golden.notes(meta, env)
    advance, stop = _progress(len(doc["cases"]))
    try:
        results = golden.verify(doc, on_case=advance)
    finally:
        stop()
    counts = golden.summary(results)
    n_worse = sum(golden.worse(r.tier, r.expected) and r.tier != "FAIL" for r in results)
    missing = golden.missing(doc)
    footer = [
        f"backend {env['backend']} ({env['device_kind']}): "
        + ", ".join(f"{tier} {count}" for tier, count in counts.items()),
    ]
    if n_worse:
        footer.append(f"{n_worse} cases passed below their family's expected tier (not a failure).")
    if missing:
        footer.append(
            f"{len(missing)} canonical cases are not in the golden file; regenerate it with "
            f"`{golden.REGENERATE}`."
        )
    footer.append("FAILED" if counts["FAIL"] else "OK")
    families: dict[str, tuple[str, str]] = {}
    for rec in doc["cases"]:
        families.setdefault(rec["family"], (rec["expected"], rec["note"]))
    _print_verify(_header(path, meta, env, len(results)), results, families, notes, footer)
    if args.json:
        report = {
            "goldens": str(path),
            "recorded": meta,
            "running": env,
            "notes": notes,
            "summary": counts,
            "missing": missing,
            "ok": not counts["FAIL"],
            "results": [r.as_dict() for r in results],
        }
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 1 if counts["FAIL"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jaxinit`` and ``python -m jaxinit``."""
    parser = argparse.ArgumentParser(prog="jaxinit", description="The jaxinit command.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_report(sub)
    catalogue_ = sub.add_parser("catalogue", help="print every initializer and what it draws")
    catalogue_.set_defaults(run=_catalogue)
    verify = sub.add_parser(
        "verify",
        help="recompute the golden digests on this backend and report each case's tier",
        description="Recomputes every golden case on the current default backend and reports "
        "its tier: bitwise, <=2ulp, <=1e-5 or FAIL. Exits 1 if any case fails.",
    )
    verify.add_argument(
        "--goldens",
        metavar="PATH",
        help="golden file (default: the CPU goldens shipped in the package)",
    )
    verify.add_argument(
        "--json", metavar="OUT", type=_output_file, help="also write the results as JSON to OUT"
    )
    verify.set_defaults(run=_verify)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
