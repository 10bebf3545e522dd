"""Golden digests: a canonical case set, its recorded outputs, comparison tiers.

The case set lives here, in the package, so ``jaxinit verify`` works from an installed wheel: every
registered initializer, with explicit parameters, on a few small shapes, in float32, bfloat16 and
(where supported) complex64, each with a fixed key derived from a SHA-256 of its id. A golden file
(``tests/golden/cpu.json``, written by ``scripts/make_goldens.py``) stores per case the
serialized initializer, the SHA-256 and the raw bytes of the output; `verify` recomputes every
case on the current backend and puts each in a tier: ``bitwise``, ``<=2ulp``, ``<=1e-5``, ``FAIL``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.catalog import registry
from jaxinit._src.core.base import BaseInitializer

#: The tiers, best first.
TIERS: tuple[str, ...] = ("bitwise", "<=2ulp", "<=1e-5", "FAIL")
MAX_ULP = 2
ABS_TOL = 1e-5
#: Bumped when the file layout changes; `load` refuses other formats.
FORMAT = 1
#: Pinned, not jax's configurable default: goldens must not depend on `jax_default_prng_impl`.
KEY_IMPL = "threefry2x32"
DEFAULT_PATH = Path("tests/golden/cpu.json")
REGENERATE = "python scripts/make_goldens.py"
#: Cases are computed in a few threads: compilation dominates and runs without the GIL.
WORKERS = 4
T = TypeVar("T")
R = TypeVar("R")

_NO_GOLDENS = (
    "No golden file at {path} (relative to the current directory {cwd}). The goldens live in "
    "jaxinit's source tree, not in the installed package: run from a checkout of the repository, "
    "or pass `--goldens PATH/TO/tests/golden/cpu.json`."
)
_BAD_FORMAT = (
    "{path} is not a jaxinit golden file of format {format} (got format {got!r}); regenerate it "
    "with `{regenerate}`."
)


@dataclasses.dataclass(frozen=True)
class Family:
    """What an initializer family can promise across backends, and why."""

    expected: str
    note: str


FAMILIES: dict[str, Family] = {
    "constant": Family("bitwise", "no randomness; exact integer and float arithmetic"),
    "uniform": Family(
        "bitwise",
        "threefry bits -> [0, 1) by the exponent trick, then an exact or once-rounded scale",
    ),
    "normal": Family(
        "<=2ulp",
        "aim bitwise; the erf_inv/erf polynomial after the bits may be FMA-contracted differently "
        "per backend",
    ),
    "reduction": Family(
        "<=1e-5",
        "divided by a per-unit sum: the backend's reduction and division set the last bits",
    ),
    "complex": Family(
        "<=1e-5", "radius and angle go through the backend's own exp, log, sin and cos"
    ),
    "orthogonal": Family(
        "<=1e-5", "QR is the backend's linear algebra: a tolerance tier across backends (§7)"
    ),
}

DENSE = (16, 24)
CONV = (3, 3, 4, 8)
STACKED = (4, 8, 16)
#: Where the rank matters (fans, batch axes, matrix axes): a stacked shape too.
GENERAL = (DENSE, CONV, STACKED)
#: Elementwise draws are shape-agnostic (drawn flat); two shapes keep the set quick to compile.
FLAT = (DENSE, CONV)
#: One-line specializations of a scheme covered above on every shape: the dense shape is enough.
ONE = (DENSE,)
CONV_ONLY = (CONV, (3, 4, 8))
REAL_DTYPES = ("float32", "bfloat16")
COMPLEX_DTYPE = "complex64"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One initializer with explicit parameters, the shapes it is checked on, its family."""

    name: str
    factory: str
    params: Mapping[str, Any]
    family: str
    shapes: tuple[tuple[int, ...], ...]
    complex_ok: bool

    def build(self) -> BaseInitializer:
        return registry.get(self.factory, **self.params)


def _v(
    name: str,
    family: str,
    shapes: tuple[tuple[int, ...], ...] = FLAT,
    *,
    factory: str | None = None,
    complex_ok: bool = False,
    **params: Any,
) -> Variant:
    return Variant(name, factory or name, params, family, shapes, complex_ok)


VS = "variance_scaling"
#: Every registered initializer at least once (a test checks it), with explicit parameters.
VARIANTS: tuple[Variant, ...] = (
    _v("zeros", "constant", GENERAL, complex_ok=True),
    _v("ones", "constant", GENERAL, complex_ok=True),
    _v("constant", "constant", GENERAL, value=0.5, complex_ok=True),
    _v("uniform", "uniform", scale=0.1),
    _v("uniform_range", "uniform", minval=-0.2, maxval=0.3),
    _v("normal", "normal", stddev=0.02, complex_ok=True),
    _v("normal_mean", "normal", factory="normal", stddev=0.5, mean=1.0),
    _v("truncated_normal", "normal", stddev=0.5),
    _v("truncated_normal_post", "normal", factory="truncated_normal", post_truncation=True),
    _v(
        "truncated_normal_abs",
        "normal",
        factory="truncated_normal",
        stddev=0.5,
        lower=-0.3,
        upper=0.6,
        absolute_bounds=True,
    ),
    _v(
        "vs_truncated_normal",
        "normal",
        GENERAL,
        factory=VS,
        scale=0.5,
        mode="fan_avg",
        distribution="truncated_normal",
        complex_ok=True,
    ),
    _v(
        "vs_normal",
        "normal",
        GENERAL,
        factory=VS,
        scale=2.0,
        mode="fan_in",
        distribution="normal",
        complex_ok=True,
    ),
    _v(
        "vs_uniform",
        "uniform",
        GENERAL,
        factory=VS,
        scale=1.0,
        mode="fan_out",
        distribution="uniform",
        complex_ok=True,
    ),
    _v(
        "vs_geo_normal",
        "normal",
        ONE,
        factory=VS,
        scale=1.0,
        mode="fan_geo_avg",
        distribution="normal",
    ),
    _v("glorot_uniform", "uniform", ONE, complex_ok=True),
    _v("glorot_normal", "normal", ONE, complex_ok=True),
    _v("lecun_uniform", "uniform", ONE, complex_ok=True),
    _v("lecun_normal", "normal", ONE, complex_ok=True),
    _v("he_uniform", "uniform", ONE, complex_ok=True),
    _v("he_normal", "normal", ONE, complex_ok=True),
    _v(
        "he_normal_leaky",
        "normal",
        ONE,
        factory="he_normal",
        nonlinearity="leaky_relu",
        negative_slope=0.2,
    ),
    _v("he_normal_batch", "normal", (STACKED, (2, 3, 4, 8)), factory="he_normal", batch_axis=0),
    _v("orthogonal", "orthogonal", GENERAL, complex_ok=True),
    _v("gated_orthogonal", "orthogonal", GENERAL, gates=2),
    _v("lstm_forget_bias", "constant", GENERAL),
    _v("orthogonal_col0", "orthogonal", factory="orthogonal", scale=2.0, column_axis=0),
    _v("delta_orthogonal", "orthogonal", CONV_ONLY, complex_ok=True),
    _v("uniform_unit_scaling", "uniform", factor=1.43),
    _v("mxnet_xavier", "uniform", ONE),
    _v(
        "mxnet_xavier_gaussian",
        "normal",
        ONE,
        factory="mxnet_xavier",
        rnd_type="gaussian",
        factor_type="in",
        magnitude=2.0,
    ),
    _v("msra_prelu", "normal", ONE),
    _v("caffe_xavier", "uniform", ONE, variance_norm="average"),
    _v("caffe_msra", "normal", ONE, variance_norm="fan_out"),
    _v("caffe_gaussian", "normal", ONE, std=0.01, sparse=3),
    _v("identity", "constant", GENERAL, scale=2.0, complex_ok=True),
    _v("dirac", "constant", CONV_ONLY, groups=2),
    _v("bilinear", "constant", CONV_ONLY),
    _v("positive_unitball", "reduction"),
    _v("sparse", "normal", sparsity=0.5),
    _v("sparse_k", "normal", ONE, factory="sparse", sparsity=None, stddev=1.0, nonzeros=2),
)


def case_id(variant: str, shape: tuple[int, ...], dtype: str) -> str:
    return f"{variant}/{'x'.join(map(str, shape))}/{dtype}"


def case_seed(cid: str) -> int:
    """A seed from the case id, stable across processes and Python versions (not `hash`)."""
    return int.from_bytes(hashlib.sha256(cid.encode()).digest()[:4], "little") & 0x7FFFFFFF


def family_of(variant: Variant, dtype: str) -> str:
    """Complex outputs of random initializers go through transcendental functions."""
    if dtype == COMPLEX_DTYPE and variant.family not in ("constant", "orthogonal"):
        return "complex"
    return variant.family


@dataclasses.dataclass(frozen=True)
class Case:
    """One canonical case: an initializer, a shape, a dtype and the key derived from the id."""

    id: str
    variant: str
    init: BaseInitializer
    shape: tuple[int, ...]
    dtype: str
    family: str

    @property
    def seed(self) -> int:
        return case_seed(self.id)


def canonical_cases() -> list[Case]:
    """The canonical case set, sorted by id."""
    cases = []
    for v in VARIANTS:
        init = v.build()
        dtypes = (*REAL_DTYPES, COMPLEX_DTYPE) if v.complex_ok else REAL_DTYPES
        for shape in v.shapes:
            for dt in dtypes:
                cid = case_id(v.name, shape, dt)
                cases.append(Case(cid, v.name, init, shape, dt, family_of(v, dt)))
    return sorted(cases, key=lambda c: c.id)


def compute(init: BaseInitializer, shape: Iterable[int], dtype: str, seed: int) -> np.ndarray:
    """The output of one case on the default backend, as a C-ordered NumPy array."""
    key = jax.random.key(seed, impl=KEY_IMPL)
    return np.ascontiguousarray(np.asarray(init(key, tuple(shape), jnp.dtype(dtype))))


def digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def _components(x: np.ndarray) -> np.ndarray:
    """Real values as float64; complex ones as their real and imaginary parts, side by side."""
    if np.iscomplexobj(x):
        return np.concatenate([np.real(x).ravel(), np.imag(x).ravel()]).astype(np.float64)
    return x.astype(np.float64).ravel()


def stats(x: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max in float64 (over real and imaginary parts for complex outputs)."""
    c = _components(x)
    if c.size == 0:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
    return {
        k: float(f(c))
        for k, f in [("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)]
    }


def environment() -> dict[str, Any]:
    """Versions, backend and device of this process (the golden file's metadata)."""
    import jaxlib

    from jaxinit import __version__

    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "jaxinit": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),  # type: ignore[attr-defined]
    }


def record(case: Case, x: np.ndarray) -> dict[str, Any]:
    """The golden record of a case with output `x`: what verify needs, plus readable context."""
    fam = FAMILIES[case.family]
    return {
        "id": case.id,
        "initializer": repr(case.init),
        "config": registry.serialize(case.init),
        "shape": list(case.shape),
        "dtype": case.dtype,
        "seed": case.seed,
        "sha256": digest(x),
        "stats": stats(x),
        "values": base64.b64encode(x.tobytes()).decode("ascii"),
        "family": case.family,
        "expected": fam.expected,
        "note": fam.note,
    }


def _map(fn: Callable[[T], R], items: Sequence[T], on_done: Callable[[R], None] | None) -> list[R]:
    """`fn` over `items` in a few threads (XLA compiles without the GIL), results in order."""

    def run(item: T) -> R:
        out = fn(item)
        if on_done is not None:
            on_done(out)
        return out

    workers = min(WORKERS, os.cpu_count() or 1, len(items)) or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, items))


def generate(
    cases: Sequence[Case] | None = None, on_case: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """The golden document of `cases` (default: the canonical set) on the default backend."""
    cases = canonical_cases() if cases is None else cases
    records = _map(lambda c: record(c, compute(c.init, c.shape, c.dtype, c.seed)), cases, on_case)
    meta = {
        **environment(),
        "format": FORMAT,
        "key_impl": KEY_IMPL,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "regenerate": REGENERATE,
        "count": len(records),
        "tiers": {
            "bitwise": "identical bytes",
            "<=2ulp": f"max distance <= {MAX_ULP} units in the last place of the output dtype",
            "<=1e-5": f"max abs difference <= {ABS_TOL} (32/64-bit floats only)",
            "FAIL": "anything else",
        },
    }
    return {"meta": meta, "cases": records}


_NUMERIC_LIST = re.compile(r"\[\s+([-+.eE\d,\s]+?)\s+\]")


def write(doc: Mapping[str, Any], path: str | Path) -> None:
    """Writes a golden document as JSON with sorted keys and indentation (readable diffs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, sort_keys=True, indent=1)
    # Numeric lists (shapes) on one line: the diff of a regenerated file stays readable.
    text = _NUMERIC_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    path.write_text(text + "\n")


def resolve_path(path: str | Path | None) -> Path:
    """`path`, or the default ``tests/golden/cpu.json`` of the current directory if present."""
    p = Path(path) if path is not None else DEFAULT_PATH
    if not p.is_file():
        raise FileNotFoundError(_NO_GOLDENS.format(path=p, cwd=Path.cwd()))
    return p


def load(path: str | Path) -> dict[str, Any]:
    """Reads a golden document, refusing other formats."""
    doc = json.loads(Path(path).read_text())
    got = doc.get("meta", {}).get("format") if isinstance(doc, dict) else None
    if got != FORMAT or not isinstance(doc.get("cases"), list):
        raise ValueError(
            _BAD_FORMAT.format(path=path, format=FORMAT, got=got, regenerate=REGENERATE)
        )
    return doc


def values(rec: Mapping[str, Any]) -> np.ndarray:
    """The golden output of a case record."""
    raw = base64.b64decode(rec["values"])
    return np.frombuffer(raw, dtype=jnp.dtype(rec["dtype"])).reshape(rec["shape"])


# -- comparison ---------------------------------------------------------------------------------
def _ordered(x: np.ndarray) -> np.ndarray:
    """Float bit patterns as integers ordered like the floats (+0 and -0 both map to 0)."""
    bits = x.view(np.dtype(f"i{x.dtype.itemsize}")).astype(np.int64)
    magnitude = bits & ((1 << (8 * x.dtype.itemsize - 1)) - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise distance in units in the last place of the (common) dtype of `a` and `b`.

    Complex arrays compare real and imaginary parts separately and give the larger distance.

    Examples:
      >>> import numpy as np
      >>> one = np.float32(1.0)
      >>> ulp_distance(np.array([one]), np.array([np.nextafter(one, np.float32(2))])).tolist()
      [1]
      >>> ulp_distance(np.array([-0.0], np.float32), np.array([0.0], np.float32)).tolist()
      [0]
    """
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(f"cannot compare {a.dtype}{a.shape} with {b.dtype}{b.shape}.")
    if np.iscomplexobj(a):
        return np.maximum(
            ulp_distance(np.real(a), np.real(b)), ulp_distance(np.imag(a), np.imag(b))
        )
    oa, ob = _ordered(a), _ordered(b)
    if a.dtype.itemsize == 8:  # int64 differences could overflow: exact Python ints, saturated
        diff = np.abs(oa.astype(object) - ob.astype(object))
        return np.minimum(diff, np.iinfo(np.int64).max).astype(np.int64)
    return np.abs(oa - ob)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A tier, with the largest ulp and absolute differences, or the error that failed a case."""

    tier: str
    max_ulp: int | None = None
    max_abs: float | None = None
    error: str | None = None


def classify(expected: np.ndarray, actual: np.ndarray) -> Comparison:
    """The best tier that `actual` reaches against `expected`."""
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return Comparison(
            "FAIL",
            error=f"got {actual.dtype}{actual.shape}, expected {expected.dtype}{expected.shape}",
        )
    expected, actual = np.ascontiguousarray(expected), np.ascontiguousarray(actual)
    if expected.tobytes() == actual.tobytes():
        return Comparison("bitwise", 0, 0.0)
    if expected.size == 0:
        return Comparison("FAIL", error="empty arrays with different bytes")
    ulp = int(ulp_distance(expected, actual).max())
    diff = _components(expected) - _components(actual)
    max_abs = float(np.max(np.abs(diff)))
    real = np.real(expected)
    if ulp <= MAX_ULP:
        return Comparison("<=2ulp", ulp, max_abs)
    # 16- and 8-bit floats: the relative ulp rule only (1e-5 is below their resolution).
    if real.dtype.itemsize >= 4 and max_abs <= ABS_TOL:  # NaN compares False: FAIL
        return Comparison("<=1e-5", ulp, max_abs)
    return Comparison("FAIL", ulp, max_abs)


def worse(tier: str, than: str) -> bool:
    return TIERS.index(tier) > TIERS.index(than)


@dataclasses.dataclass
class Result:
    """The verdict on one golden case."""

    id: str
    dtype: str
    family: str
    expected: str
    comparison: Comparison

    @property
    def tier(self) -> str:
        return self.comparison.tier

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dtype": self.dtype,
            "family": self.family,
            "expected": self.expected,
            "worse_than_expected": worse(self.tier, self.expected),
            **dataclasses.asdict(self.comparison),
        }


def check(rec: Mapping[str, Any]) -> Result:
    """Recomputes one golden record on the current backend and classifies it."""
    try:
        init = registry.get(rec["config"])
        actual = compute(init, rec["shape"], rec["dtype"], rec["seed"])
        comparison = classify(values(rec), actual)
        if comparison.tier == "bitwise" and digest(actual) != rec["sha256"]:
            comparison = Comparison("FAIL", error="values match but the stored sha256 does not")
    except Exception as e:  # a case that cannot even run is a failure, reported per case
        comparison = Comparison("FAIL", error=f"{type(e).__name__}: {e}")
    return Result(rec["id"], rec["dtype"], rec["family"], rec["expected"], comparison)


def notes(meta: Mapping[str, Any], env: Mapping[str, Any]) -> list[str]:
    """Why tiers may legitimately differ from the recording: other versions or PRNG settings."""
    out = []
    changed = [f"{k} {meta.get(k)} -> {env[k]}" for k in ("jax", "jaxlib") if meta.get(k) != env[k]]
    if changed:
        out.append(
            "VERSION MISMATCH: the goldens were generated with a different JAX ("
            + ", ".join(changed)
            + "). XLA's code generation may legitimately change results, so tiers can differ; "
            f"to re-record, run `{REGENERATE}`."
        )
    if meta.get("jaxinit") != env["jaxinit"]:
        out.append(
            f"jaxinit version differs: goldens {meta.get('jaxinit')}, running {env['jaxinit']}."
        )
    if meta.get("threefry_partitionable") != env["threefry_partitionable"]:
        out.append(
            "jax_threefry_partitionable differs from the recording: random bits differ by design."
        )
    return out


def missing(doc: Mapping[str, Any]) -> list[str]:
    """Canonical case ids that the golden document lacks (it predates new cases)."""
    have = {rec["id"] for rec in doc["cases"]}
    return [c.id for c in canonical_cases() if c.id not in have]


def verify(doc: Mapping[str, Any], on_case: Callable[[Result], None] | None = None) -> list[Result]:
    """Recomputes every case of a golden document on the current backend, in file order."""
    return _map(check, doc["cases"], on_case)


def summary(results: Iterable[Result]) -> dict[str, int]:
    """How many results fall in each tier."""
    counts: dict[str, int] = dict.fromkeys(TIERS, 0)
    for r in results:
        counts[r.tier] += 1
    return counts
