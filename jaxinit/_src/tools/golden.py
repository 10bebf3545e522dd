"""Golden digests: recorded outputs of the canonical cases, comparison tiers, ``jaxinit verify``.

The golden files ship inside the package (``jaxinit/_src/tools/goldens/<platform>.json``, read
with `importlib.resources`), so ``jaxinit verify`` works from an installed wheel, in any
directory. A file is written by ``scripts/make_goldens.py`` and never edited by hand: per case
(`jaxinit._src.tools.golden_cases`) it stores the serialized initializer, the SHA-256 and the
raw bytes of the output. `verify` recomputes every case on the current backend and puts each in a
tier: ``bitwise``, ``<=2ulp``, ``<=1e-5``, ``FAIL`` (docs/determinism.md).
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
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.catalog import registry
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.tools.golden_cases import FAMILIES, Case, canonical_cases

#: The tiers, best first.
TIERS: tuple[str, ...] = ("bitwise", "<=2ulp", "<=1e-5", "FAIL")
MAX_ULP = 2
ABS_TOL = 1e-5
#: Bumped when the file layout changes; `load` refuses other formats.
FORMAT = 1
#: Pinned, not jax's configurable default: goldens must not depend on `jax_default_prng_impl`.
KEY_IMPL = "threefry2x32"
#: The golden files are package data: ``<PACKAGE>/<GOLDENS_DIR>/<platform>.json``.
PACKAGE = "jaxinit._src.tools"
GOLDENS_DIR = "goldens"
#: `verify` compares against the CPU recording on every backend (its tiers say how close).
DEFAULT_PLATFORM = "cpu"
REGENERATE = "python scripts/make_goldens.py"
#: Cases are computed in a few threads: compilation dominates and runs without the GIL.
WORKERS = 4
T = TypeVar("T")
R = TypeVar("R")

_NO_GOLDENS = (
    "No golden file at {path} (the current directory is {cwd}). Without `--goldens`, jaxinit "
    "verify uses the golden file shipped in the package."
)
_NOT_SHIPPED = (
    "This jaxinit installation lacks its golden file {path}: reinstall jaxinit (its wheel ships "
    "the goldens), or pass `--goldens PATH` to a golden file."
)
_BAD_FORMAT = (
    "{path} is not a jaxinit golden file of format {format} (got format {got!r}); regenerate it "
    "with `{regenerate}`."
)


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


def packaged(backend: str = DEFAULT_PLATFORM) -> Traversable:
    """The golden file of a backend in the installed package (only ``cpu`` ships by default)."""
    return resources.files(PACKAGE) / GOLDENS_DIR / f"{backend}.json"


def resolve_path(path: str | os.PathLike[str] | None) -> Traversable:
    """`path`, or the package's CPU goldens if `path` is None; raises if it is not a file."""
    if path is None:
        shipped = packaged()
        if not shipped.is_file():
            raise FileNotFoundError(_NOT_SHIPPED.format(path=shipped))
        return shipped
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(_NO_GOLDENS.format(path=p, cwd=Path.cwd()))
    return p


def load(path: str | os.PathLike[str] | Traversable) -> dict[str, Any]:
    """Reads a golden document (a file path or a package resource), refusing other formats."""
    source = Path(path) if isinstance(path, str | os.PathLike) else path
    doc = json.loads(source.read_text(encoding="utf-8"))
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
