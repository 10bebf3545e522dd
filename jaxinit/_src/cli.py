"""The ``jaxinit`` command.

``jaxinit report`` prints the catalogue: every initializer by name, its aliases and the formula of
its first docstring line. (The model report of DESIGN.md §9 builds on this command.)
``jaxinit verify`` recomputes the golden digests on the current backend (DESIGN.md §7.3).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxinit._src import golden, registry


def catalogue() -> list[tuple[str, str, str]]:
    """Rows ``(name, aliases, summary)`` for every registered initializer."""
    aliases: dict[str, list[str]] = {}
    for alias, name in registry.ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    rows = []
    for name, factory in sorted(registry.FACTORIES.items()):
        doc = inspect.getdoc(type(factory) if not isinstance(factory, type) else factory) or ""
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


def _report(args: argparse.Namespace) -> int:
    _print_table(catalogue())
    return 0


# -- verify ------------------------------------------------------------------------------------
_TIER_STYLE = {"bitwise": "green", "<=2ulp": "cyan", "<=1e-5": "yellow", "FAIL": "bold red"}


def _fmt_ulp(r: golden.Result) -> str:
    return "" if r.comparison.max_ulp is None else str(r.comparison.max_ulp)


def _fmt_abs(r: golden.Result) -> str:
    return "" if r.comparison.max_abs is None else f"{r.comparison.max_abs:.2e}"


def _header(path: Path, meta: dict[str, Any], env: dict[str, Any], n: int) -> str:
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
    report = sub.add_parser("report", help="print how initializers draw (the catalogue)")
    report.set_defaults(run=_report)
    verify = sub.add_parser(
        "verify",
        help="recompute the golden digests on this backend and report each case's tier",
        description="Recomputes every golden case on the current default backend and reports "
        "its tier: bitwise, <=2ulp, <=1e-5 or FAIL. Exits 1 if any case fails.",
    )
    verify.add_argument(
        "--goldens",
        metavar="PATH",
        help="golden file (default: tests/golden/cpu.json in the current directory)",
    )
    verify.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    verify.set_defaults(run=_verify)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
