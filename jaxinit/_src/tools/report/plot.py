"""The figure of ``jaxinit report --plot``: per-parameter target vs measured std, and the
signal propagation (residual-stream std through depth). Needs matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jaxinit._src.core.paths import join_path
from jaxinit._src.tools.report.measure import STD_Z

if TYPE_CHECKING:
    from jaxinit._src.tools.report.report import Report, Row


def _group(path: str) -> str:
    """The layer a parameter belongs to: up to its block index (``blocks/3``), else its first
    component (``embed``)."""
    parts = path.split("/")
    cut = next((i for i, p in enumerate(parts) if p.isdigit()), 0)
    return join_path(parts[: cut + 1])


def _kind(path: str) -> str:
    """The parameter's module within its layer (``q``, ``down``, ``embed``...)."""
    parts = path.split("/")
    return parts[-2] if len(parts) >= 2 else parts[-1]


def _plot_stds(ax: Any, rows: Sequence[Row]) -> None:
    """Per-parameter target (black bar) and measured (coloured dot) std, log scale, by layer."""
    shown = [r for r in rows if r.measured_std > 0 or (r.target_std or 0) > 0]
    kinds = list(dict.fromkeys(_kind(r.path) for r in shown))
    colors = {k: f"C{i % 10}" for i, k in enumerate(kinds)}
    for kind in kinds:
        xs = [i for i, r in enumerate(shown) if _kind(r.path) == kind]
        ax.scatter(xs, [shown[i].measured_std for i in xs], s=22, color=colors[kind], label=kind,
                   zorder=3)  # fmt: skip
    targets = [(i, r.target_std) for i, r in enumerate(shown) if r.target_std]
    ax.scatter([i for i, _ in targets], [t for _, t in targets], marker="_", s=160, color="k",
               linewidths=1.5, label="target (plan)", zorder=2)  # fmt: skip
    groups = [_group(r.path) for r in shown]
    starts = [i for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
    for i in starts[1:]:
        ax.axvline(i - 0.5, color="0.85", linewidth=0.8, zorder=1)
    ends = [*starts[1:], len(shown)]
    ax.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)])
    ax.set_xticklabels([groups[i] for i in starts], rotation=45, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("std of the parameter's values")
    constant = len(rows) - len(shown)
    note = f" ({constant} constant parameters, e.g. norm scales = 1, not shown)" if constant else ""
    ok = sum(bool(r.on_target) for r in rows)
    checked = sum(r.on_target is not None for r in rows)
    ax.set_title(
        f"Per-parameter std: target (bar) vs measured (dot); {ok}/{checked} within {STD_Z:g} "
        f"standard errors{note}",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=2, loc="best")
    ax.grid(axis="y", which="both", color="0.93")


def _plot_signal(ax: Any, stds: Sequence[float] | None) -> None:
    """Residual-stream std after the embedding and each block."""
    if not stds:
        ax.text(0.5, 0.5, "signal propagation not measured:\nthe model has no\n"
                "`activation_stds(key)` method", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return
    depth_ = range(len(stds))
    ax.plot(depth_, stds, marker="o", color="C3")
    for x in (0, len(stds) - 1):
        ax.annotate(f"{stds[x]:.3g}", (x, stds[x]), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)  # fmt: skip
    ax.set_xticks(list(depth_))
    ax.set_xticklabels(["embed", *map(str, depth_[1:])], fontsize=8)
    ax.set_xlabel("after block")
    ax.set_ylabel("std of the residual stream")
    ax.set_ylim(0, max(stds) * 1.15)
    ax.set_title("Signal propagation on a random token batch", fontsize=10)
    ax.grid(color="0.93")


def plot(report: Report, path: str) -> None:
    """Writes the report's figure to `path` (PNG): per-parameter target vs measured std, and
    the signal propagation (residual-stream std through depth). Needs matplotlib."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(15, 6), layout="constrained")
    ax_std, ax_signal = fig.subplots(1, 2, width_ratios=[2.3, 1])
    _plot_stds(ax_std, report.rows)
    _plot_signal(ax_signal, report.activation_stds)
    mesh = " x ".join(f"{k}={v}" for k, v in report.mesh.items())
    fig.suptitle(
        f"jaxinit report: {report.model}\nscheme '{report.scheme}': {report.summary}; "
        f"{report.devices} {report.platform} device(s), mesh {mesh}, seed {report.seed}, "
        f"fingerprint {report.fingerprint[:16]}",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
