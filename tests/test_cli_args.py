"""The `jaxinit` command refuses bad arguments fast: one line on stderr naming the option, exit
status 2, before any model is built or any golden case recomputed (in process: argparse errors
come before JAX is asked for anything)."""

from __future__ import annotations

import os
import textwrap

import jax
import pytest

from jaxinit._src.tools import cli
from jaxinit._src.tools.report import report as report_lib


def _refused(capsys, *argv: str) -> str:
    """The stderr of a command line argparse refuses (exit 2), checked to be one error line."""
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("value", ["99999", str(report_lib.MAX_DEVICES + 1), "0"])
def test_device_count_is_bounded(value, capsys):
    err = _refused(capsys, "report", "--devices", value)
    assert "--devices" in err and f"<= {report_lib.MAX_DEVICES}" in err and repr(value) in err


def test_device_count_bound_is_accepted():
    assert cli._device_count(str(report_lib.MAX_DEVICES)) == report_lib.MAX_DEVICES


@pytest.mark.parametrize("command", ["report", "verify"])
def test_json_into_a_missing_directory_is_refused_before_any_work(command, tmp_path, capsys):
    path = str(tmp_path / "no" / "such" / "x.json")
    err = _refused(capsys, command, "--json", path)
    assert "--json" in err and repr(path) in err and "no directory" in err


def test_plot_into_a_directory_is_refused(tmp_path, capsys):
    err = _refused(capsys, "report", "--plot", str(tmp_path))
    assert "--plot" in err and "is a directory" in err


def test_output_into_a_read_only_directory_is_refused(tmp_path, capsys, monkeypatch):
    # The directory is read-only to this process as os.access reports it (chmod alone would
    # not do for root, who may write anywhere, so the answer is patched for every user).
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else
                        real_access(p, mode))  # fmt: skip
    err = _refused(capsys, "report", "--json", str(tmp_path / "x.json"))
    assert "--json" in err and "permission denied" in err


def test_output_paths_that_can_be_written_are_accepted(tmp_path):
    path = str(tmp_path / "x.json")
    assert cli._output_file(path) == path


@pytest.mark.parametrize("seed", ["1180591620717411303424", str(2**63), "-1.5", "seven"])
def test_seed_out_of_range_is_named(seed, capsys):
    err = _refused(capsys, "report", "--seed", seed)
    assert "--seed" in err and repr(seed) in err and "2**63" in err


def test_seed_range_is_what_jax_accepts():
    lo, hi = cli.SEED_RANGE
    assert cli._seed(str(hi)) == hi and cli._seed(str(lo)) == lo
    assert jax.random.key(hi).shape == jax.random.key(lo).shape == ()  # both accepted by jax
    with pytest.raises(OverflowError):
        jax.random.key(hi + 1)


EXITING = textwrap.dedent(
    """
    import sys

    def exits():
        sys.exit(3)

    def returns_none():
        return None
    """
)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("sys:exit", "exited (SystemExit(None))"),
        ("exiting_models:exits", "exited (SystemExit(3))"),
        ("exiting_models:returns_none", "returned a NoneType, not an nnx.Module"),
    ],
)
def test_a_model_factory_that_exits_or_returns_no_module_is_an_error(
    model, message, tmp_path, monkeypatch, capsys
):
    jax.devices()  # JAX started: --devices cannot reconfigure it, the report uses what exists
    (tmp_path / "exiting_models.py").write_text(EXITING)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--model", model, "--no-compare", "--devices", "1"]) == 2
    err = capsys.readouterr().err
    assert f"`--model {model}`" in err and message in err and "Traceback" not in err
