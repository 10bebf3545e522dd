"""Public factories have real signatures: IDEs, `inspect` and pyright see their parameters."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import subprocess
import sys
import textwrap

import pytest

import jaxinit
from jaxinit._src.catalog import registry

SCHEMES = list(
    dict.fromkeys(  # aliases name the same class once
        factory
        for name in jaxinit.registry_names()
        if inspect.isclass(factory := registry.lookup(name))
    )
)


@pytest.mark.parametrize("cls", SCHEMES, ids=lambda c: c.name)
def test_factory_signature_lists_every_parameter_with_its_default(cls):
    """Each factory class is written out (no `make_dataclass`): its source exists and its
    signature is its dataclass fields, in order, with their defaults."""
    assert inspect.getsource(cls)  # raises for a class made at run time
    params = inspect.signature(cls).parameters
    fields = [f for f in dataclasses.fields(cls) if f.init]
    assert list(params) == [f.name for f in fields]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            assert params[f.name].default == f.default


def test_he_normal_signature_matches_jax_order():
    sig = inspect.signature(jaxinit.he_normal)
    assert list(sig.parameters)[:4] == ["in_axis", "out_axis", "batch_axis", "dtype"]
    assert sig.parameters["in_axis"].default == -2
    assert sig.parameters["nonlinearity"].kind is inspect.Parameter.KEYWORD_ONLY


def _pyright() -> list[str] | None:
    if shutil.which("pyright"):
        return ["pyright"]
    try:
        import pyright  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "pyright"]


@pytest.mark.slow
def test_pyright_flags_a_misspelled_keyword(tmp_path):
    """A user's ``jaxinit.he_normal(scal=2.0)`` is a type error, and a correct call is not."""
    command = _pyright()
    assert command is not None, "pyright is in the test extras: pip install -e '.[test]'"
    (tmp_path / "user.py").write_text(
        textwrap.dedent(
            """
            import jaxinit

            ok = jaxinit.he_normal(in_axis=0, nonlinearity="relu")
            bad = jaxinit.he_normal(scal=2.0)
            also_bad = jaxinit.glorot_uniform(in_axs=0)
            """
        )
    )
    run = subprocess.run(
        [*command, "--pythonpath", sys.executable, "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = run.stdout
    assert 'No parameter named "scal"' in out, out
    assert 'No parameter named "in_axs"' in out, out
    assert "2 errors" in out, out
