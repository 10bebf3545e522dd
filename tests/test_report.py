"""`jaxinit report`: the command end to end (subprocesses: --devices must act before JAX starts)
and its errors (in process: they are raised before any device work)."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

from jaxinit._src.tools import cli
from jaxinit._src.tools.report import report as report_lib

pytestmark = pytest.mark.slow  # runs the report command end to end: left out of the fast lane

#: Factories for --model, importable from the directory the command runs in.
MODELS = textwrap.dedent(
    """
    from jaxinit._src.tools.report.reference_model import Config, Llama

    def tiny(rngs):
        return Llama(Config(vocab=512, dim=64, layers=2, heads=4, hidden=192, batch=2, seq=16),
                     rngs)

    NOT_A_FACTORY = 3

    def not_a_module():
        return {"w": 1.0}
    """
)
FIELDS = {"path", "shape", "dtype", "sharding", "initializer", "fan_in", "fan_out",
          "target_std", "measured_std", "orthogonality_error"}  # fmt: skip
TIMEOUT = 240


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    (path / "report_models.py").write_text(MODELS)
    return path


def _command(entry: str) -> list[str]:
    """`python -m jaxinit`, or the `jaxinit` console script installed beside this Python."""
    script = Path(sys.executable).parent / "jaxinit"
    return [str(script)] if entry == "script" and script.exists() else [sys.executable, "-m",
                                                                       "jaxinit"]  # fmt: skip


def _run(cwd: Path, entry: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([*_command(entry), "report", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def tiny_runs(models_dir):
    """The tiny model on 1 and 8 devices: {devices: (stdout, json document)}; 8 also plots."""
    out = {}
    runs = ((1, "module", ("--no-compare",)), (8, "script", ("--plot", "report.png")))
    for n, entry, extra in runs:
        json_path = f"report{n}.json"
        proc = _run(models_dir, entry, "--model", "report_models:tiny", "--devices", str(n),
                    "--json", json_path, *extra)  # fmt: skip
        out[n] = (proc.stdout, json.loads((models_dir / json_path).read_text()))
    return out


def test_fingerprint_is_the_same_on_1_and_8_devices(tiny_runs):
    (out1, doc1), (out8, doc8) = tiny_runs[1], tiny_runs[8]
    assert (doc1["devices"], doc1["mesh"]) == (1, {"data": 1, "model": 1})
    assert (doc8["devices"], doc8["mesh"]) == (8, {"data": 4, "model": 2})
    assert len(doc1["fingerprint"]) == 64 and doc1["fingerprint_bitwise"]
    assert doc1["fingerprint"] == doc8["fingerprint"]
    assert (
        f"fingerprint: {doc8['fingerprint']}" in out1
        and f"fingerprint: {doc8['fingerprint']}" in out8
    )


def test_json_rows_are_complete_and_on_target(tiny_runs):
    out, doc = tiny_runs[8]
    rows = doc["rows"]
    assert len(rows) == 2 * 9 + 3  # 2 blocks of 9 parameters, embedding, final norm, lm_head
    assert {r["path"] for r in rows} >= {"embed/embedding", "lm_head/kernel", "norm/scale"}
    for row in rows:
        assert row.keys() >= FIELDS, row
        assert row["path"] in out
        target, size = row["target_std"], math.prod(row["shape"])
        tol = 6 * target / math.sqrt(2 * size) + 1e-7  # 6 standard errors of a sample std
        assert abs(row["measured_std"] - target) <= tol, row
        assert row["orthogonality_error"] is None  # gpt2 draws no orthogonal matrices
    q = next(r for r in rows if r["path"] == "blocks/1/attn/q/kernel")
    assert (q["shape"], q["sharding"], q["fan_in"], q["initializer"]) == (
        [64, 64], "P(data, model)", 64, "normal(stddev=0.02)")  # fmt: skip
    down = next(r for r in rows if r["path"] == "blocks/0/mlp/down/kernel")
    assert down["target_std"] == pytest.approx(0.02 / math.sqrt(2 * 2))  # 0.02 / sqrt(2L)
    # The depth and the parameters treated as residual, in the rows and in the text.
    label = "residual projection, L=2: std 0.02/sqrt(2L)"
    residual = [r["path"] for r in rows if r["label"] == label]
    assert residual == [f"blocks/{i}/{p}/kernel" for i in (0, 1) for p in ("attn/o", "mlp/down")]
    assert f"{label}: 4 parameter(s): {', '.join(residual)}" in out
    total = doc["total"]
    assert total["parameters"] == sum(math.prod(r["shape"]) for r in rows)
    assert total["std_on_target"] == total["std_checked"] == len(rows)
    assert doc["timings"]["jaxinit_s"] > 0 and doc["timings"]["flax_s"] > 0
    assert len(doc["activation_stds"]) == 3  # --plot: embedding + 2 blocks


def test_plot_writes_a_png(tiny_runs, models_dir):
    png = (models_dir / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    assert "plot written to report.png" in tiny_runs[8][0]


def test_the_embedded_model_reports(models_dir):
    proc = _run(models_dir, "module", "--devices", "2", "--no-compare")
    assert "reference Llama (6 blocks, d=512" in proc.stdout
    assert "57/57 parameters" in proc.stdout  # every measured std on target
    assert "P(data, model)" in proc.stdout and "fingerprint: " in proc.stdout


# -- errors (in process, before any device work) ---------------------------------------------------
@pytest.fixture
def jax_started():
    jax.devices()  # the error paths must not be the first to start JAX in this process


def _fails(capsys, *args: str) -> str:
    assert cli.main(["report", *args]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
        ("report_models", "must be MODULE:FACTORY"),
        ("report_models:missing", "has no attribute 'missing'"),
        ("report_models:NOT_A_FACTORY", "is not a factory"),
        ("report_models:not_a_module", "returned a dict, not an nnx.Module"),
    ],
)
def test_bad_model(model, message, models_dir, monkeypatch, capsys, jax_started):
    monkeypatch.chdir(models_dir)
    err = _fails(capsys, "--model", model, "--no-compare")
    assert "`--model" in err and model in err and message in err


def test_unknown_scheme_lists_the_schemes(capsys, jax_started):
    err = _fails(capsys, "--scheme", "xavier")
    assert "`--scheme` must be one of" in err and "'xavier'" in err
    assert all(f"'{name}'" in err for name in report_lib.SCHEMES)


def test_mup_needs_the_reference_model(capsys, jax_started):
    err = _fails(capsys, "--scheme", "mup", "--model", "report_models:tiny")
    assert "`--scheme mup` needs a base-width model" in err


@pytest.mark.parametrize("value", ["0", "-2", "eight", "1.5"])
def test_bad_device_count(value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--devices", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--devices" in err and "must be a positive integer" in err and repr(value) in err


def test_more_devices_than_jax_has(jax_started):
    n = jax.local_device_count()
    with pytest.raises(report_lib.ReportError, match=rf"started .* with {n} CPU device"):
        report_lib.select_devices(n + 1, configured=False)
    error = report_lib.device_count_error(4, 2, "gpu", configured=True)
    assert error is not None and "`--devices 4`" in error and "2 gpu device(s)" in error
    assert "1..2" in error
    assert report_lib.device_count_error(2, 2, "gpu", configured=True) is None
