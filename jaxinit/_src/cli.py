"""The ``jaxinit`` command.

``jaxinit report`` prints the catalogue: every initializer by name, its aliases and the formula of
its first docstring line. (The model report of DESIGN.md §9 builds on this command.)
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence

from jaxinit._src import registry


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jaxinit`` and ``python -m jaxinit``."""
    parser = argparse.ArgumentParser(prog="jaxinit", description="The jaxinit command.")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="print how initializers draw (the catalogue)")
    report.set_defaults(run=_report)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
