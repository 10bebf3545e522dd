"""Golden digests and ``jaxinit verify`` (docs/determinism.md, tier 3)."""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinit._src.catalog import registry
from jaxinit._src.tools import cli, golden, golden_cases

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = golden.packaged("cpu")
BF16 = jnp.dtype("bfloat16")


@pytest.fixture(scope="module")
def doc():
    return golden.load(GOLDENS)


def run_verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["verify", *args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One end-to-end `jaxinit verify` over every golden case (shared: it compiles ~180 cases)."""
    out = tmp_path_factory.mktemp("verify") / "report.json"
    rc, stdout, _ = run_verify("--goldens", str(GOLDENS), "--json", str(out))
    return rc, stdout, json.loads(out.read_text())


def write_subset(doc, path: Path, ids, edit=None) -> Path:
    """A golden file holding the cases `ids` of `doc`, after `edit(doc)`."""
    sub = copy.deepcopy(doc)
    sub["cases"] = [rec for rec in sub["cases"] if rec["id"] in ids]
    assert len(sub["cases"]) == len(ids)
    if edit is not None:
        edit(sub)
    golden.write(sub, path)
    return path


def perturb(rec, fn) -> None:
    """Applies `fn` to the golden values of a case record (in place), keeping the sha256."""
    x = golden.values(rec).copy()
    fn(x.reshape(-1))
    rec["values"] = base64.b64encode(x.tobytes()).decode("ascii")


def flip_bit(v, bit: int = 0) -> None:
    """Flips a mantissa bit of the first non-zero value: 2**bit ulp."""
    i = int(np.argmax(np.abs(v) > 0))
    bits = v.view(np.dtype(f"u{v.dtype.itemsize}"))
    bits[i] ^= 1 << bit


def add(v, delta) -> None:
    """Adds `delta` to the largest value (so that 4e-6 is more than 2 ulp)."""
    i = int(np.argmax(np.abs(v)))
    v[i] = v[i] + np.asarray(delta).astype(v.dtype)


# -- the case set --------------------------------------------------------------------------------
def test_every_registered_initializer_has_a_case():
    assert {v.factory for v in golden_cases.VARIANTS} == set(registry.FACTORIES)


def test_case_table_agrees_with_the_initializer_classes():
    """Complex cases come from `complex_ok`, the constant family from `random`: no redeclaring."""
    for c in golden_cases.canonical_cases():
        cls = type(c.init)
        assert c.dtype != "complex64" or cls.complex_ok
        assert (c.family == "constant") == (not cls.random)
    with pytest.raises(ValueError, match="real_only is redundant"):
        golden_cases._v("uniform", "uniform", scale=0.1, real_only=True).dtypes()
    with pytest.raises(ValueError, match="constant family"):
        golden_cases._v("normal", "constant", stddev=0.02).dtypes()
    with pytest.raises(ValueError, match="constant family"):
        golden_cases._v("ones", "uniform").dtypes()


def test_case_set_size_ids_and_stable_seeds():
    cases = golden_cases.canonical_cases()
    assert 100 <= len(cases) <= 400
    assert len({c.id for c in cases}) == len(cases)
    assert {c.dtype for c in cases} == {"float32", "bfloat16", "complex64"}
    # sha256-derived: the same in every process and Python version (pinned).
    assert golden_cases.case_seed("he_normal/16x24/float32") == 1457760913
    assert golden_cases.case_seed("zeros/3x3x4x8/bfloat16") == 1542034574
    for c in cases:
        assert c.family in golden_cases.FAMILIES


@pytest.mark.parametrize("variant", golden_cases.VARIANTS, ids=lambda v: v.name)
def test_variants_serialize_round_trip(variant):
    init = variant.build()
    assert registry.get(json.loads(json.dumps(registry.serialize(init)))) == init


def test_golden_file_is_current(doc):
    """The file holds exactly the canonical cases; if not, rerun scripts/make_goldens.py."""
    assert golden.missing(doc) == []
    cases = {c.id: c for c in golden_cases.canonical_cases()}
    assert [rec["id"] for rec in doc["cases"]] == sorted(cases)
    for rec in doc["cases"]:
        case = cases[rec["id"]]
        assert rec["config"] == registry.serialize(case.init)
        assert (tuple(rec["shape"]), rec["dtype"], rec["seed"]) == (
            case.shape,
            case.dtype,
            case.seed,
        )
        assert rec["expected"] == golden_cases.FAMILIES[rec["family"]].expected


def test_golden_records_are_self_consistent(doc):
    meta = doc["meta"]
    for key in ("jax", "jaxlib", "jaxinit", "backend", "device_kind", "date", "key_impl"):
        assert meta[key]
    for rec in doc["cases"]:
        x = golden.values(rec)
        assert x.shape == tuple(rec["shape"]) and x.dtype == jnp.dtype(rec["dtype"])
        assert golden.digest(x) == rec["sha256"]
        assert rec["stats"] == pytest.approx(golden.stats(x))
        assert np.isfinite(x).all()


# -- verify on CPU -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the goldens are recorded on CPU")
def test_cpu_every_case_bitwise(full_run, doc):
    rc, _, report = full_run
    tiers = {r["id"]: r["tier"] for r in report["results"]}
    assert len(tiers) == len(doc["cases"])
    # Orthogonal cases run XLA's CPU matmul kernels, which the CPU's vector ISA selects (AVX2
    # and AVX-512 machines sum in different orders): on another CPU model they meet their
    # family's tier, not bitwise. Every other family is bitwise on any CPU.
    family = {rec["id"]: rec["family"] for rec in doc["cases"]}
    not_bitwise = {k: v for k, v in tiers.items() if v != "bitwise" and family[k] != "orthogonal"}
    assert not_bitwise == {}
    assert rc == 0 and report["ok"]


@pytest.mark.slow
def test_verify_cli_end_to_end(full_run, doc):
    rc, stdout, report = full_run
    assert rc == 0
    assert f"jaxinit verify: {len(doc['cases'])} cases" in stdout
    assert "bitwise" in stdout and "expected tier per family" in stdout
    assert f"backend {jax.default_backend()}" in stdout
    assert stdout.rstrip().endswith("OK")
    orthogonal = sum(rec["family"] == "orthogonal" for rec in doc["cases"])
    assert report["summary"]["bitwise"] >= len(doc["cases"]) - orthogonal  # see above
    assert report["running"]["backend"] == jax.default_backend()
    # The per-family expectation is stored per case and shown.
    assert "Householder reflections run on the backend" in stdout


def test_verify_perturbed_goldens_are_classified(doc, tmp_path):
    ids = {
        "uniform/16x24/float32": flip_bit,  # 1 ulp
        "normal/16x24/float32": lambda v: add(v, 1e-3),
        "vs_normal/16x24/float32": lambda v: add(v, 4e-6),  # > 2 ulp for |v| ~ 1, < 1e-5
        "he_normal/16x24/bfloat16": flip_bit,
        "vs_uniform/16x24/complex64": lambda v: add(v, 1e-3j),
    }

    def edit(sub):
        for rec in sub["cases"]:
            perturb(rec, ids[rec["id"]])

    path = write_subset(doc, tmp_path / "perturbed.json", ids, edit)
    rc, stdout, _ = run_verify("--goldens", str(path), "--json", str(tmp_path / "out.json"))
    report = json.loads((tmp_path / "out.json").read_text())
    tiers = {r["id"]: r["tier"] for r in report["results"]}
    assert tiers == {
        "uniform/16x24/float32": "<=2ulp",
        "normal/16x24/float32": "FAIL",
        "vs_normal/16x24/float32": "<=1e-5",
        "he_normal/16x24/bfloat16": "<=2ulp",
        "vs_uniform/16x24/complex64": "FAIL",
    }
    assert rc == 1 and not report["ok"]
    assert "FAIL" in stdout and "<=2ulp" in stdout and stdout.rstrip().endswith("FAILED")
    assert report["summary"] == {"bitwise": 0, "<=2ulp": 2, "<=1e-5": 1, "FAIL": 2}


def test_verify_version_mismatch_note(doc, tmp_path):
    ids = ["zeros/16x24/float32", "uniform/16x24/bfloat16"]

    def edit(sub):
        sub["meta"]["jax"] = "0.0.1"
        sub["meta"]["jaxlib"] = "0.0.1"

    path = write_subset(doc, tmp_path / "old.json", ids, edit)
    rc, stdout, _ = run_verify("--goldens", str(path))
    assert rc == 0  # still reported, not failed
    assert "VERSION MISMATCH" in stdout and "jax 0.0.1 -> " in stdout
    assert stdout.count("bitwise") >= 2
    # Stale goldens (fewer cases than the canonical set) say how to regenerate.
    assert golden.REGENERATE in stdout


def test_verify_plain_text_without_rich(doc, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich.console", None)  # `import rich.console` fails
    ids = ["ones/16x24/float32", "normal/16x24/float32"]

    def edit(sub):
        perturb(sub["cases"][1], lambda v: flip_bit(v, bit=1))  # 2 ulp

    path = write_subset(doc, tmp_path / "g.json", ids, edit)
    rc, stdout, _ = run_verify("--goldens", str(path))
    assert rc == 0
    assert "╇" not in stdout  # no rich box drawing
    lines = {line.split()[0]: line for line in stdout.splitlines() if "/16x24/" in line}
    assert "bitwise" in lines["ones/16x24/float32"]
    assert "<=2ulp" in lines["normal/16x24/float32"]


def test_verify_broken_case_fails_alone(doc, tmp_path):
    ids = ["ones/16x24/float32", "zeros/16x24/float32"]

    def edit(sub):
        sub["cases"][0]["config"] = {"name": "no_such_initializer", "config": {}}

    path = write_subset(doc, tmp_path / "g.json", ids, edit)
    rc, stdout, _ = run_verify("--goldens", str(path))
    assert rc == 1
    assert "no_such_initializer" in stdout and "bitwise" in stdout


def test_default_goldens_ship_in_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not read from the current directory
    path = golden.resolve_path(None)
    assert path == GOLDENS and path.is_file()
    assert Path(str(path)).is_relative_to(Path(golden.__file__).parent / "goldens")
    assert golden.load(path)["meta"]["backend"] == "cpu"


def test_verify_without_goldens_says_where_to_point(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, stderr = run_verify("--goldens", "no/such/cpu.json")
    assert rc == 2
    assert "no/such/cpu.json" in stderr and "--goldens" in stderr
    # An installation that lost its package data says so (the wheel ships it).
    monkeypatch.setattr(golden, "packaged", lambda backend="cpu": tmp_path / "absent.json")
    rc, _, stderr = run_verify()
    assert rc == 2
    assert "absent.json" in stderr and "reinstall jaxinit" in stderr and "--goldens" in stderr


def _run(*cmd: str | Path, **kwargs) -> str:
    """Runs a command that must succeed; its stdout."""
    done = subprocess.run(
        [str(c) for c in cmd], check=True, capture_output=True, text=True, **kwargs
    )
    return done.stdout.strip()


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the goldens are recorded on CPU")
def test_installed_wheel_verifies_outside_the_source_tree(tmp_path):
    """`jaxinit verify` from a wheel installed without the checkout: the goldens ship in it."""
    pip = (sys.executable, "-m", "pip")
    # The wheel of this source tree, built offline with the installed hatchling (test extras).
    dist = tmp_path / "dist"
    _run(*pip, "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", dist, ROOT)
    (wheel,) = dist.glob("jaxinit-*.whl")
    env_dir = (tmp_path / "venv").resolve()
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # Installed while the new environment sees nothing else: pip finds no other jaxinit.
    _run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)
    # jax, numpy, rich from this environment's site-packages, as plain path lines: the .pth
    # files there (the editable install of the checkout) are not processed.
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
    (purelib / "_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = Path(_run(python, "-c", "import jaxinit; print(jaxinit.__file__)", cwd=work, env=env))
    assert where.resolve().is_relative_to(purelib.resolve())
    assert not where.resolve().is_relative_to(ROOT)
    out = tmp_path / "report.json"
    verify = subprocess.run(
        [env_dir / "bin" / "jaxinit", "verify", "--json", out],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and report["missing"] == []
    assert Path(report["goldens"]).resolve().is_relative_to(where.resolve().parent)


def test_verify_rejects_other_formats(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"meta": {"format": 0}, "cases": []}))
    rc, _, stderr = run_verify("--goldens", str(path))
    assert rc == 2 and "make_goldens" in stderr


# -- ulp distance and tiers ----------------------------------------------------------------------
def f32(*v):
    return np.array(v, np.float32)


def test_ulp_distance_neighbours_and_sign():
    one = np.float32(1)
    up, down = np.nextafter(one, np.float32(2)), np.nextafter(one, np.float32(0))
    assert golden.ulp_distance(f32(1, 1, 1), f32(1, up, down)).tolist() == [0, 1, 1]
    assert golden.ulp_distance(f32(-1), np.negative(f32(up))).tolist() == [1]
    assert golden.ulp_distance(f32(-1, -2), f32(-2, -1)).tolist() == [2**23, 2**23]
    # 1 and -1 are 2 * (bits of 1.0) apart through zero.
    assert golden.ulp_distance(f32(-1), f32(1)).tolist() == [2 * 0x3F800000]


def test_ulp_distance_across_zero():
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    assert golden.ulp_distance(f32(-0.0), f32(0.0)).tolist() == [0]
    assert golden.ulp_distance(f32(0.0), f32(tiny)).tolist() == [1]
    assert golden.ulp_distance(f32(-tiny), f32(tiny)).tolist() == [2]
    assert golden.ulp_distance(f32(-tiny), f32(-0.0)).tolist() == [1]


def test_ulp_distance_is_monotone():
    x = np.sort(np.random.default_rng(0).normal(size=1000).astype(np.float32))
    x = np.concatenate([x, -x, f32(0, np.inf, -np.inf)])
    x.sort()
    # distance to the smallest value grows with the value
    d = golden.ulp_distance(np.full_like(x, x[0]), x)
    assert (np.diff(d) >= 0).all() and d[-1] > 0
    assert golden.ulp_distance(x[:-1], x[1:]).min() >= 1


def test_ulp_distance_bfloat16():
    one, nxt = np.array([1.0], BF16), np.array([1.0078125], BF16)  # 1 + 2**-7
    assert golden.ulp_distance(one, nxt).tolist() == [1]
    assert golden.ulp_distance(-one, -nxt).tolist() == [1]
    assert golden.ulp_distance(np.array([-0.0], BF16), np.array([0.0], BF16)).tolist() == [0]
    bits = np.array([0x0001, 0x8001, 0x3F80, 0xBF80], np.uint16).view(BF16)
    assert golden.ulp_distance(bits[:1], bits[1:2]).tolist() == [2]  # +-smallest subnormal
    assert golden.ulp_distance(bits[2:3], bits[3:4]).tolist() == [2 * 0x3F80]


def test_ulp_distance_complex_parts_separately():
    a = np.array([1 + 1j], np.complex64)
    re = np.nextafter(np.float32(1), np.float32(2))
    im = np.nextafter(re, np.float32(2))
    b = np.array([complex(re, im)], np.complex64)
    assert golden.ulp_distance(a, b).tolist() == [2]
    assert golden.ulp_distance(a, np.conj(a)).tolist() == [2 * 0x3F800000]


def test_ulp_distance_other_widths_and_errors():
    h = np.array([1.0], np.float16)
    assert golden.ulp_distance(h, np.nextafter(h, np.float16(2))).tolist() == [1]
    d = np.array([-1.0, np.inf])
    assert golden.ulp_distance(d, np.nextafter(d, 0)).tolist() == [1, 1]
    assert golden.ulp_distance(np.array([-np.inf]), np.array([np.inf])).item() > 0
    with pytest.raises(ValueError, match="cannot compare"):
        golden.ulp_distance(f32(1), np.array([1.0]))


@pytest.mark.parametrize(
    ("actual", "tier"),
    [
        (f32(0.5, -0.25, 3.0), "bitwise"),
        (f32(0.5, -0.25, np.nextafter(np.float32(3), np.float32(4))), "<=2ulp"),
        (f32(0.5, -0.25 - 2**-25, 3.0), "<=2ulp"),
        (f32(0.5, -0.25, 3.0 + 2**-20), "<=1e-5"),
        (f32(0.5 + 9e-6, -0.25, 3.0), "<=1e-5"),
        (f32(0.5, -0.25, 3.0 + 2e-5), "FAIL"),
        (f32(0.5, np.nan, 3.0), "FAIL"),
        (f32(0.5, -0.25), "FAIL"),
        (np.array([0.5, -0.25, 3.0]), "FAIL"),
    ],
)
def test_classify_float32(actual, tier):
    assert golden.classify(f32(0.5, -0.25, 3.0), actual).tier == tier


def test_classify_bfloat16_uses_ulps_only():
    bits = np.array([0x3580, 0x3581, 0x3582, 0x3583], np.uint16).view(BF16)  # ~1e-6
    assert float(np.abs(bits[3].astype(np.float32) - bits[0].astype(np.float32))) < 1e-5
    got = [golden.classify(bits[:1], bits[i : i + 1]) for i in range(4)]
    assert [c.tier for c in got] == ["bitwise", "<=2ulp", "<=2ulp", "FAIL"]
    assert got[3].max_ulp == 3


def test_classify_complex():
    a = np.array([0.5 + 0.25j, -1j], np.complex64)
    assert golden.classify(a, a.copy()).tier == "bitwise"
    assert golden.classify(a, a + np.complex64(1e-6j)).tier == "<=1e-5"
    assert golden.classify(a, a + np.complex64(1e-4)).tier == "FAIL"


def test_notes_only_for_real_differences():
    env = golden.environment()
    assert golden.notes(env, env) == []
    old = {**env, "jaxlib": "0.0.1"}
    (note,) = golden.notes(old, env)
    assert note.startswith("VERSION MISMATCH") and "jaxlib 0.0.1 -> " in note
