"""The rendered docs (scripts/make_docs.py) are current, and every formula is there to render."""

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run python scripts/make_docs.py"


@pytest.fixture(scope="module")
def make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(make_docs, tmp_path_factory):
    """The docs rendered in-process into a temporary folder."""
    out = tmp_path_factory.mktemp("docs")
    assert make_docs.main(["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", ["api.md", "presets.md", "index.md"])
def test_committed_docs_are_current(fresh, name):
    committed = ROOT / "docs" / name
    assert committed.exists(), f"docs/{name} is missing: {REGENERATE}"
    new = (fresh / name).read_text(encoding="utf-8")
    assert committed.read_text(encoding="utf-8") == new, f"docs/{name} is stale: {REGENERATE}"


def test_render_is_deterministic(make_docs, fresh):
    assert make_docs.render()["api.md"] == (fresh / "api.md").read_text(encoding="utf-8")
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(fresh.iterdir()))
    assert " at 0x" not in text
    assert str(ROOT) not in text


def _resolve(qualname):
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_public_initializer_has_a_formula(make_docs, fresh):
    names = make_docs.public_initializers()
    assert len(names) > 30
    api = (fresh / "api.md").read_text(encoding="utf-8")
    missing = [n for n in names if f"`{n}`" not in api]
    assert not missing, f"public initializers missing from docs/api.md: {missing}"
    no_formula = [n for n in names if not make_docs.has_formula(make_docs.docstring(_resolve(n)))]
    assert not no_formula, (
        "public initializers whose docstring has no formula (a `.. math::` block, a :math: "
        f"role or a `w = ...` line): {no_formula}"
    )


def test_every_preset_has_a_formula_and_its_source(make_docs, fresh):
    import jaxinit

    groups = make_docs.preset_groups()
    assert sorted(n for names, _ in groups for n in names) == sorted(jaxinit.preset_names())
    presets = (fresh / "presets.md").read_text(encoding="utf-8")
    bad = []
    for names, factory in groups:
        doc = make_docs.docstring(factory)
        if not make_docs.preset_formula(doc):
            bad.append(f"{names[0]}: no formula")
        if not make_docs.preset_source(doc):
            bad.append(f"{names[0]}: no 'Source:' reference")
        bad += [f"{n}: not in docs/presets.md" for n in names if f"[`{n}`](#" not in presets]
    assert not bad, f"presets: {bad}"
