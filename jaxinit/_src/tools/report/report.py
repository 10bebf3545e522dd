"""The model report of ``jaxinit report``: build, initialize, measure, describe.

`run` builds a model abstractly under a ``("data", "model")`` mesh over the chosen devices
(``nnx.eval_shape``), initializes it with a scheme's rules (`jaxinit.flax.reinit`, each
parameter straight into its shard), times that against Flax's own jitted init, measures every
parameter's std (and orthogonality) on device in one jitted reduction, and fingerprints the
values. The command-line side (options, the rich table) is in cli.py.

The work is layered: environment.py (option errors, devices, mesh, model loading) <-
schemes.py (``--scheme``) and measure.py (std, orthogonality, fingerprint,
timings) <- this module (the rows, the `Report`, `run`) <- plot.py (``--plot``). The names
cli.py and the tests use are re-exported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

import jax
import numpy as np

from jaxinit._src.tools.report.environment import (
    DEFAULT_CPU_DEVICES,
    MAX_DEVICES,
    REFERENCE_MODEL,
    REFERENCE_MODEL_BASE,
    ReportError,
    build_abstract,
    check_device_count,
    configure_devices,
    describe_model,
    device_count_error,
    load_factory,
    make_mesh,
    select_devices,
)
from jaxinit._src.tools.report.measure import (
    STD_Z,
    activation_stds,
    fingerprint,
    init_jaxinit,
    matrix_view,
    measure,
    parameters,
    std_tolerance,
    time_flax,
    warm_up,
)
from jaxinit._src.tools.report.schemes import DEFAULT_SCHEME, SCHEMES, get_scheme

#: What cli.py and the tests use: this module's own names and the layers' re-exported.
__all__ = [
    "DEFAULT_CPU_DEVICES", "DEFAULT_SCHEME", "MAX_DEVICES", "REFERENCE_MODEL", "SCHEMES",
    "STD_Z", "Options", "Report", "ReportError", "Row", "Stage", "check_device_count",
    "configure_devices",
    "device_count_error", "get_scheme", "make_rows", "run", "select_devices",
]  # fmt: skip

#: A progress hook: ``with stage("what is happening"): ...``.
Stage = Callable[[str], AbstractContextManager[Any]]


# -- the report ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """One parameter of the report (the JSON row, plus its size)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    sharding: str
    initializer: str
    fan_in: float | None
    fan_out: float | None
    target_std: float | None
    measured_std: float
    orthogonality_error: float | None
    size: int
    label: str = ""

    @property
    def on_target(self) -> bool | None:
        """Whether the measured std is within `std_tolerance` of the target (None: no target)."""
        if self.target_std is None:
            return None
        tol = std_tolerance(self.target_std, self.size)
        return abs(self.measured_std - self.target_std) <= tol


def describe_sharding(sharding: Any) -> str:
    """``P(data, model)``-style text, ``replicated``, or ``one device`` (no sharding)."""
    spec = getattr(sharding, "spec", None)
    if sharding is None or spec is None:
        return "one device"
    if all(entry is None for entry in spec):
        return "replicated"
    return str(spec).replace("'", "")


def describe_init(init: Any) -> str:
    """An initializer's name and the parameters that differ from its defaults, less the axes
    (they are the layer's) and dtype: ``normal(stddev=0.02)``, ``lecun_normal()``."""
    from jaxinit._src.core.base import BaseInitializer

    if init is None:
        return "kept"
    if not isinstance(init, BaseInitializer):
        return getattr(init, "__name__", type(init).__name__)
    shown = []
    for f in dataclasses.fields(cast(Any, init)):
        value = getattr(init, f.name)
        if f.name == "dtype" or f.name.endswith("_axis") or value == f.default:
            continue
        shown.append(f"{f.name}={value:.4g}" if isinstance(value, float) else f"{f.name}={value!r}")
    return f"{init.name}({', '.join(shown)})"


def _natural(path: str) -> list[tuple[int, int | str]]:
    """Sort key: ``blocks/2`` before ``blocks/10``."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in path.split("/")]


def make_rows(
    plan: Sequence[Any], params: Mapping[str, jax.Array], stds: Sequence[float],
    errors: Sequence[float | None],
) -> list[Row]:  # fmt: skip
    """The report's rows from `jaxinit.flax.plan` rows and the measurements, naturally sorted."""
    rows = [
        Row(p.path, tuple(p.shape), np.dtype(p.dtype).name, describe_sharding(
            params[p.path].sharding), describe_init(p.initializer), p.fan_in, p.fan_out, p.std,
            std, err, math.prod(p.shape), p.label)
        for p, std, err in zip(plan, stds, errors, strict=True)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: _natural(r.path))


@dataclasses.dataclass(frozen=True)
class Options:
    """What to report: the options of ``jaxinit report``."""

    model: str = REFERENCE_MODEL
    scheme: str = DEFAULT_SCHEME
    devices: int | None = None
    seed: int = 0
    compare: bool = True
    signal: bool = False


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``jaxinit report`` prints, writes as JSON and plots."""

    model: str
    scheme: str
    summary: str
    bitwise: bool
    platform: str
    devices: int
    mesh: dict[str, int]
    seed: int
    fingerprint: str
    timings: dict[str, float | None]
    rows: list[Row]
    activation_stds: list[float] | None

    def total(self) -> dict[str, int]:
        """Parameter count, arrays, bytes, and how many measured stds are on target."""
        checked = [r.on_target for r in self.rows if r.on_target is not None]
        nbytes = sum(r.size * np.dtype(r.dtype).itemsize for r in self.rows)
        return {
            "parameters": sum(r.size for r in self.rows), "arrays": len(self.rows),
            "bytes": nbytes, "std_checked": len(checked), "std_on_target": sum(checked),
        }  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """The JSON document of ``--json``."""
        rows = [{**dataclasses.asdict(r), "shape": list(r.shape)} for r in self.rows]
        return {
            "model": self.model, "scheme": self.scheme, "platform": self.platform,
            "devices": self.devices, "mesh": self.mesh, "seed": self.seed,
            "fingerprint": self.fingerprint, "fingerprint_bitwise": self.bitwise,
            "timings": self.timings, "total": self.total(), "rows": rows,
            "activation_stds": self.activation_stds,
        }  # fmt: skip


def _no_stage(what: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def run(options: Options, stage: Stage = _no_stage, configured: bool = True) -> Report:
    """Builds, initializes, times and measures the model of `options` (see the module doc).

    Args:
      options: what to report.
      stage: progress hook, entered around each long step.
      configured: whether `configure_devices` took effect (for the device-count error).

    Raises:
      ReportError: for a bad option or a model the scheme does not cover.
    """
    import jaxinit.flax

    t0 = time.perf_counter()
    scheme = get_scheme(options.scheme, options.model)
    factory = load_factory(options.model)
    mesh = make_mesh(select_devices(options.devices, configured))
    with stage("building the model abstractly"):
        abstract = build_abstract(factory, options.model, mesh, options.seed)
        base = None
        if scheme.needs_base:
            base = build_abstract(load_factory(REFERENCE_MODEL_BASE), REFERENCE_MODEL_BASE, mesh, 0)
        try:
            rules = scheme.rules(abstract, base)
            plan = jaxinit.flax.plan(abstract, rules, mesh=mesh)
        except ValueError as e:
            raise ReportError(f"`--scheme {options.scheme}` on this model: {e}") from e
        uncovered = [p.path for p in plan if p.initializer is None]
        if uncovered:
            raise ReportError(
                f"`--scheme {options.scheme}` has no rule for {len(uncovered)} parameter(s) of "
                f"`--model {options.model}`: {', '.join(uncovered)}."
            )
    if options.compare:  # one-time costs must land on neither contender
        with stage("warming up"):
            warm_up(mesh)
    with stage(f"initializing with jaxinit ({options.scheme})"):
        model, t_jaxinit = init_jaxinit(factory, rules, mesh, options.seed)
    t_flax = None
    if options.compare:
        with stage("initializing with Flax's own init (timing only)"):
            t_flax = time_flax(factory, mesh, options.seed)
    with stage("measuring std and orthogonality on device"):
        t = time.perf_counter()
        params = parameters(model)
        arrays = [params[p.path] for p in plan]
        stds, errors = measure(arrays, [matrix_view(p.initializer, p.shape) for p in plan])
        t_measure = time.perf_counter() - t
    with stage("fingerprinting"):
        t = time.perf_counter()
        digest = fingerprint(params)
        t_fingerprint = time.perf_counter() - t
    acts = None
    if options.signal:
        with stage("signal propagation on a random batch"):
            acts = activation_stds(model, mesh, options.seed)
    timings = {
        "jaxinit_s": t_jaxinit, "flax_s": t_flax,
        "ratio": t_jaxinit / t_flax if t_flax else None,
        "measure_s": t_measure, "fingerprint_s": t_fingerprint,
        "total_s": time.perf_counter() - t0,
    }  # fmt: skip
    return Report(
        model=describe_model(options.model, abstract), scheme=options.scheme,
        summary=scheme.summary, bitwise=scheme.bitwise, platform=mesh.devices.flat[0].platform,
        devices=mesh.devices.size, mesh=dict(mesh.shape), seed=options.seed,
        fingerprint=digest, timings=timings,
        rows=make_rows(plan, params, stds, errors), activation_stds=acts,
    )  # fmt: skip
