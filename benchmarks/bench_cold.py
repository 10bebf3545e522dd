"""Cold calls of every catalogue initializer: jaxinit vs jax.nn.initializers vs torch.nn.init.

An initializer is called once per parameter shape, so what a user pays is its *first* call:
trace + compile + run. Every scheme of the catalogue (the registry's canonical names, in its
order) is called at nxn -- conv-only schemes at ``(3, 3, n, n)`` -- plus extra orthogonal
shapes: tall ``(2n, n/2)``, wide ``(n/2, 2n)``, stacked ``(12, n, n)`` with ``batch_axis=0``
(n <= 1024 only) and ``gated_orthogonal(4)`` at ``(n/4, n)`` (an LSTM with hidden size n/4).

Contenders, float32, key 0: jaxinit called eagerly; the ``jax.nn.initializers`` scheme of the
same name with jax's defaults, called eagerly as users do (``jax.nn.initializers.X()(key, shape,
jnp.float32)``, no jit); the ``torch.nn.init`` equivalent where one is obvious, on a fresh
``torch.empty`` in torch's layout (CPU, default threads; torch has no compile, so its cold call
is its warm call). Each cold sample is ``jax.clear_caches()`` (persistent compilation cache off)
then one call up to ``jax.block_until_ready``; samples go round-robin over the contenders, the
order rotated each round. Warm medians (jaxinit eager, its own cached jit; jax as
``jax.jit(init, static_argnums=(1, 2))``) come after, as in `_harness.compare`.
Each row's first size starts with one untimed call of every contender at n=16 (lazy imports,
first dispatch). A row stops taking cold samples once they pass ``--max-seconds`` (then 1 warm
call). Targets: cold orthogonal, delta_orthogonal and gated_orthogonal <= 1.0x jax at every size
(gated_orthogonal against jax's orthogonal of the same shape); elementwise schemes: reported only.

Run it on an idle machine. On an idle 2-core CPU the default run takes about 12-15 minutes
(256: ~2.5, 1024: ~3, 4096: ~7); contention makes it longer and the ratios meaningless.

    python -m benchmarks.bench_cold                      # 256, 1024, 4096; 3 cold samples each
    python -m benchmarks.bench_cold --quick --no-append  # 256 only: ~2.5 min
    python -m benchmarks.bench_cold --only orthogonal --sizes 1024 2048
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import jaxinit
from jaxinit._src.catalog.registry import FACTORIES

try:
    from benchmarks import _harness as h
except ImportError:  # run as a file: python benchmarks/bench_cold.py
    import _harness as h  # type: ignore[no-redef]

SIZES = (256, 1024, 4096)
QUICK_SIZES = (256,)
REPEATS = 3
WARM_REPEATS = 5
MAX_SECONDS = 90.0
#: Schemes that need a conv kernel (rank 3..5): called at (3, 3, n, n).
CONV = frozenset({"delta_orthogonal", "dirac", "bilinear"})
#: The schemes whose cold call is held to <= TARGET x jax's.
TARGETED = frozenset({"orthogonal", "delta_orthogonal", "gated_orthogonal"})
TARGET = 1.0
#: Parameters of the schemes that have required ones (jax's peer gets the same).
REQUIRED: dict[str, dict[str, Any]] = {
    "constant": {"value": 0.5},
    "variance_scaling": {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
    "sparse": {"sparsity": 0.1},
}
STACK = 12  # matrices of the stacked orthogonal row
TINY = 16  # n of the untimed warm-up call of each row (lazy imports, first dispatch)

Shape = tuple[int, ...]
TorchFn = Callable[[Any, Any], Any]  # (torch.nn.init, tensor) -> tensor, in place


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmarked initializer at one kind of shape, with its peers."""

    label: str  # what the table shows
    scheme: str  # canonical catalogue name (for --only and the targets)
    shape: Callable[[int], Shape]  # n -> the jax shape
    ours: Any  # the jaxinit initializer
    jax_peer: Any = None  # (key, shape, dtype) -> array, called eagerly; None: no peer
    jax_name: str = "-"
    torch_fn: TorchFn | None = None
    torch_name: str = "-"
    torch_shape: Callable[[Shape], Shape] | None = None  # jax shape -> torch's layout
    max_n: int | None = None  # sizes above it are skipped

    @property
    def targeted(self) -> bool:
        return self.scheme in TARGETED and self.jax_peer is not None


# -- the rows --------------------------------------------------------------------------------------
def _square(n: int) -> Shape:
    return (n, n)


def _conv(n: int) -> Shape:
    return (3, 3, n, n)


def _torch_layout(shape: Shape) -> Shape:
    """(in, out) -> (out, in); (*spatial, in, out) -> (out, in, *spatial)."""
    if len(shape) == 2:
        return (shape[1], shape[0])
    return (shape[-1], shape[-2], *shape[:-2])


def _build(name: str) -> Any:
    return jaxinit.get(name, **REQUIRED.get(name, {}))


def _jax_peer(name: str) -> tuple[Any, str]:
    """jax's scheme of the same name with jax's defaults (and the required parameters)."""
    obj = getattr(jax.nn.initializers, name, None)
    if obj is None or name == "Initializer":
        return None, "-"
    if "key" in inspect.signature(obj).parameters:  # zeros, ones: initializers themselves
        return obj, name
    kwargs = REQUIRED.get(name, {})
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return obj(**kwargs), f"{name}({args})"


def _torch_peers() -> dict[str, tuple[str, TorchFn]]:
    """torch.nn.init equivalents by scheme name, with jaxinit's default parameters."""
    return {
        "zeros": ("zeros_", lambda ti, x: ti.zeros_(x)),
        "ones": ("ones_", lambda ti, x: ti.ones_(x)),
        "constant": ("constant_(0.5)", lambda ti, x: ti.constant_(x, 0.5)),
        "uniform": ("uniform_(0, 0.01)", lambda ti, x: ti.uniform_(x, 0.0, 0.01)),
        "uniform_range": ("uniform_(-0.05, 0.05)", lambda ti, x: ti.uniform_(x, -0.05, 0.05)),
        "normal": ("normal_(0, 0.01)", lambda ti, x: ti.normal_(x, 0.0, 0.01)),
        "truncated_normal": (
            "trunc_normal_(0, 0.01, +/-0.02)",
            lambda ti, x: ti.trunc_normal_(x, 0.0, 0.01, -0.02, 0.02),
        ),
        "glorot_uniform": ("xavier_uniform_", lambda ti, x: ti.xavier_uniform_(x)),
        "glorot_normal": ("xavier_normal_", lambda ti, x: ti.xavier_normal_(x)),
        "he_uniform": (
            "kaiming_uniform_(relu)",
            lambda ti, x: ti.kaiming_uniform_(x, nonlinearity="relu"),
        ),
        "he_normal": (
            "kaiming_normal_(relu)",
            lambda ti, x: ti.kaiming_normal_(x, nonlinearity="relu"),
        ),
        "orthogonal": ("orthogonal_", lambda ti, x: ti.orthogonal_(x)),
        "identity": ("eye_", lambda ti, x: ti.eye_(x)),
        "dirac": ("dirac_", lambda ti, x: ti.dirac_(x)),
        "sparse": ("sparse_(0.1, std=0.01)", lambda ti, x: ti.sparse_(x, 0.1, 0.01)),
    }


def _stacked_jax(key, shape: Shape, dtype) -> jax.Array:
    """jax's stacked orthogonal: `jax.vmap` of its orthogonal over split keys."""
    ortho = jax.nn.initializers.orthogonal()
    keys = jax.random.split(key, shape[0])
    return jax.vmap(lambda k: ortho(k, shape[1:], dtype))(keys)


def _stacked_torch(ti, x):
    for m in x:
        ti.orthogonal_(m)
    return x


def rows() -> list[Row]:
    """The catalogue, one row per scheme, then the extra orthogonal shapes."""
    torch_peers = _torch_peers()
    jax_ortho = jax.nn.initializers.orthogonal()
    out = []
    for name in FACTORIES:  # the catalogue's schemes, canonical names, in its order
        peer, jax_name = _jax_peer(name)
        if name == "gated_orthogonal":
            peer, jax_name = jax_ortho, "orthogonal() (same shape)"
        t_name, t_fn = torch_peers.get(name, ("-", None))
        out.append(Row(name, name, _conv if name in CONV else _square, _build(name), peer,
                       jax_name, t_fn, t_name, _torch_layout))  # fmt: skip
    t_name, t_fn = torch_peers["orthogonal"]
    ortho = jaxinit.orthogonal()
    out += [
        Row("orthogonal tall", "orthogonal", lambda n: (2 * n, n // 2), ortho, jax_ortho,
            "orthogonal()", t_fn, t_name, _torch_layout),
        Row("orthogonal wide", "orthogonal", lambda n: (n // 2, 2 * n), ortho, jax_ortho,
            "orthogonal()", t_fn, t_name, _torch_layout),
        Row("orthogonal stacked", "orthogonal", lambda n: (STACK, n, n),
            jaxinit.orthogonal(batch_axis=0), _stacked_jax,
            f"vmap(orthogonal) over {STACK} split keys", _stacked_torch,
            f"orthogonal_ on each of {STACK}", lambda s: s, max_n=1024),
        Row("gated_orthogonal(4) lstm", "gated_orthogonal", lambda n: (n // 4, n),
            jaxinit.gated_orthogonal(4), jax_ortho, "orthogonal() (same shape)"),
    ]  # fmt: skip
    return out


def select(all_rows: list[Row], only: str | None) -> list[Row]:
    """The rows `only` names: comma-separated names or aliases, or substrings of the labels."""
    if not only:
        return all_rows
    picked: list[Row] = []
    for token in (t.strip() for t in only.split(",") if t.strip()):
        try:
            canonical = jaxinit.serialize(_build(token))["name"]
        except (ValueError, TypeError):
            canonical = None
        hits = [r for r in all_rows if r.scheme == canonical or token in r.label]
        if not hits:
            raise SystemExit(f"--only: {token!r} names no row; rows: {[r.label for r in all_rows]}")
        picked += [r for r in hits if r not in picked]
    return [r for r in all_rows if r in picked]


# -- timing ----------------------------------------------------------------------------------------
def contenders(row: Row, shape: Shape, torch) -> dict[str, Callable[[], Any]]:
    key = jax.random.key(0)
    ours, peer = row.ours, row.jax_peer
    out: dict[str, Callable[[], Any]] = {"jaxinit": lambda: ours(key, shape, jnp.float32)}
    if peer is not None:
        out["jax"] = lambda: peer(key, shape, jnp.float32)
    if torch is not None and row.torch_fn is not None and row.torch_shape is not None:
        fn, ti, t_shape = row.torch_fn, torch.nn.init, row.torch_shape(shape)
        out["torch"] = lambda: fn(ti, torch.empty(t_shape))
    return out


def cold_call(fn: Callable[[], Any], pause: float = 0.05) -> float:
    """Seconds of one call of `fn` with jax's caches cleared first: trace + compile + run."""
    gc.collect()
    jax.clear_caches()
    time.sleep(pause)  # let the previous call's thread pool stop spinning
    t0 = time.perf_counter()
    h.block(fn())
    return time.perf_counter() - t0


def cold(calls: dict[str, Callable[[], Any]], repeats: int, max_s: float) -> dict[str, list[float]]:
    """Round-robin cold samples, the order rotated each round; stops after `max_s` seconds (at
    least one round)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    start = time.perf_counter()
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(cold_call(calls[name]))
        if time.perf_counter() - start > max_s:
            break
    return times


def measure(row: Row, n: int, torch, args, warm_up: bool) -> list[Any]:
    """One table row: cold medians and mins, ratios, warm medians."""
    shape = row.shape(n)
    if warm_up:  # untimed, at a tiny size: lazy imports and first dispatch of this code path
        for fn in contenders(row, row.shape(TINY), torch).values():
            h.block(fn())
    start = time.perf_counter()
    t = cold(contenders(row, shape, torch), args.repeats, args.max_seconds)
    t = {k: [s * 1e3 for s in v] for k, v in t.items()}  # ms
    med = {k: statistics.median(v) for k, v in t.items()}
    # Warm: jaxinit eager (its cached jit), jax jitted; a row already over budget gets 1 call.
    warm_reps = args.warm_repeats if time.perf_counter() - start <= args.max_seconds else 1
    warm_calls = {"jaxinit": contenders(row, shape, None)["jaxinit"]}
    if row.jax_peer is not None:
        jitted = jax.jit(row.jax_peer, static_argnums=(1, 2))
        key = jax.random.key(0)
        warm_calls["jax"] = lambda: jitted(key, shape, jnp.float32)
    w = {k: v.median * 1e3 for k, v in h.compare(warm_calls, warm_reps).items()}  # ms
    return [
        row.label, "x".join(map(str, shape)), f"{len(t['jaxinit'])}/{warm_reps}",
        med["jaxinit"], min(t["jaxinit"]), med.get("jax"), min(t["jax"]) if "jax" in t else None,
        med.get("torch"),
        h.ratio(med["jaxinit"], med.get("jax")), h.ratio(med["jaxinit"], med.get("torch")),
        w["jaxinit"], w.get("jax"), h.ratio(w["jaxinit"], w.get("jax")),
    ]  # fmt: skip


HEADERS = [
    "initializer", "shape", "reps cold/warm",
    "jaxinit cold ms", "jaxinit cold min ms", "jax cold ms", "jax cold min ms", "torch cold ms",
    "jaxinit/jax cold", "jaxinit/torch cold",
    "jaxinit warm ms", "jax warm ms", "jaxinit/jax warm",
]  # fmt: skip
COLD_RATIO = HEADERS.index("jaxinit/jax cold")


def run(sizes, only: str | None, args) -> list[h.Section]:
    jax.config.update("jax_enable_compilation_cache", False)
    torch = h.import_torch()
    picked = select(rows(), only)
    sections, warmed = [], set()
    checks: dict[str, list[str]] = {}
    errors: list[str] = []
    for n in sizes:
        table_rows = []
        for row in picked:
            if row.max_n is not None and n > row.max_n:
                continue
            cells: list[Any]
            try:
                cells = measure(row, n, torch, args, warm_up=row.label not in warmed)
            except Exception as e:  # keep going: one broken scheme must not lose a long run
                msg = f"{row.label} at n={n}: {type(e).__name__}: {e}".splitlines()[0]
                print(f"ERROR {msg}", flush=True)
                errors.append(msg)
                cells = [row.label, "x".join(map(str, row.shape(n))), "error"]
                cells += [None] * (len(HEADERS) - len(cells))
            warmed.add(row.label)
            table_rows.append(cells)
            print(
                f"n={n} {row.label}: cold jaxinit {h.fmt(cells[3])}ms jax {h.fmt(cells[5])}ms "
                f"torch {h.fmt(cells[7])}ms; warm jaxinit {h.fmt(cells[10])}ms "
                f"jax {h.fmt(cells[11])}ms",
                flush=True,
            )
            if row.targeted:
                r = cells[COLD_RATIO]
                mark = "error" if r is None else "ok" if r <= TARGET else "MISSED"
                checks.setdefault(row.label, []).append(f"{n}: {h.fmt(r)} ({mark})")
        if table_rows:
            body = h.table(HEADERS, table_rows) + "\n"
            sections.append(h.Section(f"cold calls, n={n} float32 ({jax.default_backend()})", body))
    sections.append(h.Section("cold calls: peers and targets", _notes(picked, checks, errors)))
    return sections


def _notes(picked: list[Row], checks: dict[str, list[str]], errors: list[str]) -> str:
    peers = [[r.label, r.jax_name, r.torch_name] for r in picked]
    body = h.table(["initializer", "jax peer", "torch peer"], peers) + "\n\n"
    body += (
        "Times in ms. Cold: `jax.clear_caches()` (persistent compilation cache off), then one "
        "call up to `jax.block_until_ready` -- trace + compile + run; medians (and mins) of "
        "round-robin samples, the order rotated each round. jaxinit and jax are called eagerly "
        "as users call them (jax's peer with jax's defaults). torch fills a fresh `torch.empty` "
        "in its own layout ((out, in), (out, in, kh, kw)); it has no compile. Warm: medians of "
        "interleaved calls after the cold ones -- jaxinit eager (its own cached jit), jax as "
        "`jax.jit(init, static_argnums=(1, 2))`. 'reps cold/warm': samples per contender; a row "
        "past `--max-seconds` stops early.\n\n"
    )
    for label, marks in checks.items():
        body += f"Target cold {label} <= {TARGET:.1f}x jax: " + "; ".join(marks) + "\n\n"
    if errors:
        body += "Errors: " + "; ".join(errors) + "\n"
    return body


def main(argv=None) -> None:
    p = h.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"default {SIZES}")
    p.add_argument("--only", default=None, help="NAME[,NAME]: scheme names or label substrings")
    p.add_argument("--warm-repeats", type=int, default=None, help=f"default {WARM_REPEATS}")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=MAX_SECONDS,
        help=f"a row stops taking cold samples after this many seconds (default {MAX_SECONDS:g})",
    )
    args = p.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    args.repeats = args.repeats or REPEATS
    args.warm_repeats = args.warm_repeats or (3 if args.quick else WARM_REPEATS)
    if args.json is None:
        h.print_machine()
    h.finish(args, "cold calls", run(sizes, args.only, args))


if __name__ == "__main__":
    main()
