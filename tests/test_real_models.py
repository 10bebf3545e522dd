"""jaxinit on real models: small copies of Flax's Gemma (NNX) and lm1b (linen) examples
(tests/real_models) go through `plan`, strict `reinit`, every framework preset, the GPT-2 recipe
and ``jaxinit report --model``, unsharded and on 8 simulated CPU devices; a linen ResNet18 (the
ImageNet example's layout) and an NNX toy model holding every built-in layer go through every
framework preset and the plan's fans.

The expected fans, shardings and depth-scaled stds are written by hand from the shapes in
tests/real_models; statistical tolerances come from tests/stats.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import stats
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from real_models import gemma, lm1b, resnet, toy

import jaxinit
import jaxinit.flax as jf
import jaxinit.recipes as jr
from jaxinit._src.tools import cli
from jaxinit._src.tools.report import schemes as report_schemes

KEY = jax.random.key(11)
REPO = Path(__file__).resolve().parents[1]
#: The frameworks `framework_rules` accepts (its docstring and its error message list them).
FRAMEWORKS = ("flax", "haiku", "keras", "torch")
#: Every law drawn here (normal, truncated normal, uniform) has kurtosis <= 3: a normal's
#: kurtosis bounds the standard error of every sample std.
KURT = stats.KURTOSIS_NORMAL
#: Layer-aware variance rules for both models: glorot (fan_avg) shows fan_in and fan_out.
LAYER_RULES = [
    ("kernel", jaxinit.glorot_normal()),
    ("embedding", jaxinit.lecun_normal()),
    ("bias", jf.optional(jaxinit.zeros)),
    ("scale", jaxinit.zeros),
]
#: GPT-2's residual std for the 2-layer fixtures: 0.02 / sqrt(2 L).
RESIDUAL_STD = 0.02 / math.sqrt(2 * 2)
LM = "params/decoder"
ATTN = "MultiHeadDotProductAttention_0"


# -- helpers ---------------------------------------------------------------------------------------
def _bits(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}"))


def _assert_bitwise(a: Any, b: Any, what: str = "") -> None:
    np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=what)


def _nnx_params(model: nnx.Module) -> dict[str, Any]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {"/".join(map(str, k)): v.get_value() for k, v in flat}


def _tree_params(tree: Any) -> dict[str, Any]:
    """Path -> array of a linen variables tree, logical boxes unwrapped."""
    is_box = lambda x: isinstance(x, nn.LogicallyPartitioned)
    flat = jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_box)
    return {
        "/".join(k.key for k in kp): x.value if is_box(x) else x  # type: ignore[attr-defined]
        for kp, x in flat
    }


def _gemma(cfg: gemma.Config = gemma.TINY) -> gemma.Transformer:
    return nnx.eval_shape(lambda: gemma.Transformer(cfg, rngs=nnx.Rngs(0)))


def _lm1b(cfg: lm1b.Config = lm1b.TINY) -> tuple[Any, dict[str, jf.LayerAxes]]:
    """The abstract variables of `cfg`'s TransformerLM and its layers."""
    model, tokens = lm1b.TransformerLM(cfg), lm1b.tokens(cfg)
    return jax.eval_shape(model.init, KEY, tokens), jf.linen_layers(model, tokens)


def _check_against_plan(
    rows: list[jf.PlanRow], got: dict[str, Any], before: dict[str, Any]
) -> None:
    """`got` is what the plan says: every parameter rewritten (none keeps the 0.5 of `before`),
    in its shape and dtype, with the planned std (constants: one value); and, for one parameter
    of each random (initializer, shape) group, bitwise the planned initializer called with the
    path key (tests/test_flax.py checks grouped generation against one by one for every
    parameter; each call compiles, so here one a group)."""
    assert {r.path for r in rows} == set(got) == set(before)
    groups = set()
    for row in rows:
        value = got[row.path]
        assert (value.shape, value.dtype) == (before[row.path].shape, before[row.path].dtype)
        assert bool((before[row.path] == 0.5).all()) and not bool((value == 0.5).any()), row.path
        assert row.initializer is not None and row.std is not None, row.path
        if row.std:
            stats.assert_std(value, row.std, KURT, row.path)
        else:
            assert np.ptp(np.asarray(value)) == 0, row.path
        if row.initializer.random and (row.initializer, row.shape) not in groups:
            groups.add((row.initializer, row.shape))
            want = row.initializer(jf.path_key(KEY, row.path), row.shape, row.dtype)
            _assert_bitwise(value, want, row.path)


# Parameter paths of one block, by hand from tests/real_models.
GEMMA_BLOCK = {
    "attn/_key_norm/scale",
    "attn/_query_norm/scale",
    "attn/attn_vec_einsum/kernel",
    "attn/kv_einsum/kernel",
    "attn/q_einsum/kernel",
    "mlp/down_proj/kernel",
    "mlp/gate_proj/kernel",
    "mlp/up_proj/kernel",
    "post_attention_norm/scale",
    "post_ffw_norm/scale",
    "pre_attention_norm/scale",
    "pre_ffw_norm/scale",
}
LM1B_BLOCK = {
    "LayerNorm_0/bias",
    "LayerNorm_0/scale",
    "LayerNorm_1/bias",
    "LayerNorm_1/scale",
    "MlpBlock_0/Dense_0/bias",
    "MlpBlock_0/Dense_0/kernel",
    "MlpBlock_0/Dense_1/bias",
    "MlpBlock_0/Dense_1/kernel",
    f"{ATTN}/key/kernel",
    f"{ATTN}/out/kernel",
    f"{ATTN}/query/kernel",
    f"{ATTN}/value/kernel",
}
GEMMA_PATHS = {"embedder/embedding", "final_norm/scale"} | {
    f"layers/{i}/{p}" for i in range(2) for p in GEMMA_BLOCK
}
LM1B_PATHS = {
    f"{LM}/{p}"
    for p in (
        "Embed_0/embedding",
        "encoderdecoder_norm/bias",
        "encoderdecoder_norm/scale",
        "logitdense/bias",
        "logitdense/kernel",
    )
} | {f"{LM}/encoderdecoderblock_{i}/{p}" for i in range(2) for p in LM1B_BLOCK}


# -- plan and reinit -------------------------------------------------------------------------------
def test_plan_gives_the_gemma_kernels_their_layers_fans():
    """Einsum fans from the spec (D=48, N=4 heads of H=8, K=2 kv heads, F=64, V=128)."""
    fans = {
        r.path: (r.shape, r.fan_in, r.fan_out)
        for r in jf.plan(_gemma(), LAYER_RULES)
        if r.path.startswith("layers/1/") or r.path.startswith("embedder")
    }
    assert fans["embedder/embedding"] == ((128, 48), 48, 128)
    assert fans["layers/1/attn/q_einsum/kernel"] == ((4, 48, 8), 48, 4 * 8)  # BTD,NDH->BTNH
    assert fans["layers/1/attn/kv_einsum/kernel"] == ((2, 2, 48, 8), 48, 2 * 2 * 8)  # CKDH
    assert fans["layers/1/attn/attn_vec_einsum/kernel"] == ((4, 8, 48), 4 * 8, 48)  # NHD
    assert fans["layers/1/mlp/gate_proj/kernel"] == ((48, 64), 48, 64)
    assert fans["layers/1/mlp/down_proj/kernel"] == ((64, 48), 64, 48)
    (qkv,) = [
        r
        for r in jf.plan(_gemma(gemma.TINY_MHA), LAYER_RULES)
        if r.path == "layers/0/attn/qkv_einsum/kernel"
    ]
    # BTD,SNDH->SBTNH: the S (q, k, v) axis is an output axis of the fused projection.
    assert (qkv.shape, qkv.fan_in, qkv.fan_out) == ((3, 4, 48, 8), 48, 3 * 4 * 8)
    assert qkv.std == pytest.approx(math.sqrt(2 / (48 + 96)))


def test_plan_gives_the_lm1b_kernels_their_layers_fans():
    """DenseGeneral fans of linen attention (d=48, 4 heads of 8), found by `linen_layers`."""
    shapes, layers = _lm1b()
    rows = {r.path: r for r in jf.plan(shapes, LAYER_RULES, layers=layers)}
    assert set(rows) == LM1B_PATHS
    block = f"{LM}/encoderdecoderblock_1"
    fans = lambda p: (rows[p].shape, rows[p].fan_in, rows[p].fan_out)
    for name in ("query", "key", "value"):
        assert fans(f"{block}/{ATTN}/{name}/kernel") == ((48, 4, 8), 48, 32)
    assert fans(f"{block}/{ATTN}/out/kernel") == ((4, 8, 48), 32, 48)
    assert fans(f"{block}/MlpBlock_0/Dense_0/kernel") == ((48, 64), 48, 64)
    assert fans(f"{block}/MlpBlock_0/Dense_1/kernel") == ((64, 48), 64, 48)
    assert fans(f"{LM}/Embed_0/embedding") == ((128, 48), 48, 128)
    assert fans(f"{LM}/logitdense/kernel") == ((48, 128), 48, 128)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_gemma_flax_defaults_strict_reinit_agrees_with_its_plan():
    """A concrete model, updated in place (all 0.5, as if restored: Flax's eager init of the
    whole model takes seconds)."""
    graphdef, state = nnx.split(_gemma())
    model = nnx.merge(graphdef, jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), state))
    before = _nnx_params(model)
    rules = jf.framework_rules("flax", model)
    rows = jf.plan(model, rules)
    assert {r.path for r in rows} == GEMMA_PATHS
    by_path = {r.path: r for r in rows}
    # Flax's own Einsum init sees the raw kernel: lecun_normal over axes (-2, -1) of
    # (N, D, H) = (4, 48, 8) counts fan_in = D * N = 192. The preset reproduces that law.
    q = by_path["layers/0/attn/q_einsum/kernel"]
    flax_std = 1 / math.sqrt(192)
    assert (q.fan_in, q.std) == (48 * 4, pytest.approx(flax_std))
    flax_q = nnx.Einsum("BTD,NDH->BTNH", (4, 48, 8), rngs=nnx.Rngs(0)).kernel[...]
    stats.assert_std(flax_q, flax_std, KURT, "Flax's own q_einsum init")
    assert by_path["embedder/embedding"].std == pytest.approx(1 / math.sqrt(48))
    assert jf.reinit(model, KEY, rules) is model
    _check_against_plan(rows, _nnx_params(model), before)
    logits = nnx.eval_shape(lambda m: m(jnp.zeros((2, 8), jnp.int32)), model)  # traced only
    assert logits.shape == (2, 8, 128)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_lm1b_flax_defaults_strict_reinit_agrees_with_its_plan():
    """Concrete linen variables (all 0.5, as if restored: Flax's eager init takes seconds)."""
    shapes, layers = _lm1b()
    variables = jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), shapes)  # boxes kept
    rules = jf.framework_rules("flax", variables, layers=layers)
    rows = jf.plan(variables, rules, layers=layers)
    out = jf.reinit(variables, KEY, rules, layers=layers)
    assert jax.tree.structure(out) == jax.tree.structure(variables)  # boxes kept
    before, got = _tree_params(variables), _tree_params(out)
    _check_against_plan(rows, got, before)  # the input is untouched: still 0.5
    tokens = lm1b.tokens(lm1b.TINY)
    logits = jax.eval_shape(lm1b.TransformerLM(lm1b.TINY).apply, out, tokens)  # traced only
    assert logits.shape == (2, lm1b.TINY.max_len, 128)


# -- every framework preset ------------------------------------------------------------------------
TARGETS = {"gemma": lambda: (_gemma(), None), "lm1b": _lm1b}


@functools.cache
def _preset(target: str, framework: str) -> tuple[Any, list[jf.PlanRow], dict[str, Any]]:
    """The abstract `target` strictly re-initialized with `framework_rules(framework)`: its
    rules, plan and values (cached: the sharded tests compare with them)."""
    abstract, layers = TARGETS[target]()
    rules = jf.framework_rules(framework, abstract, layers=layers)
    rows = jf.plan(abstract, rules, layers=layers)
    out = jf.reinit(abstract, KEY, rules, layers=layers)
    return rules, rows, _nnx_params(out) if layers is None else _tree_params(out)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
@pytest.mark.parametrize("target", list(TARGETS))
def test_every_framework_preset_reinitializes_strictly(target):
    """Each preset covers every parameter of both examples; the values have the planned std."""
    for framework in FRAMEWORKS:
        _, rows, got = _preset(target, framework)
        assert all(r.initializer is not None for r in rows), framework
        assert set(got) == {r.path for r in rows}
        for row in rows:
            value = got[row.path]
            assert isinstance(value, jax.Array) and value.shape == row.shape, row.path
            if row.std:
                stats.assert_std(value, row.std, KURT, f"{framework}: {row.path}")


def test_unknown_framework_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="must be one of 'flax', 'haiku', 'keras', 'torch'"):
        jf.framework_rules("jax", _gemma())


# -- a recipe: GPT-2 depth scaling -----------------------------------------------------------------
RESIDUAL = {
    "gemma": {
        f"layers/{i}/{p}"
        for i in range(2)
        for p in ("attn/attn_vec_einsum/kernel", "mlp/down_proj/kernel")
    },
    "lm1b": {
        f"{LM}/encoderdecoderblock_{i}/{p}"
        for i in range(2)
        for p in (f"{ATTN}/out/kernel", "MlpBlock_0/Dense_1/kernel")
    },
}


@pytest.mark.parametrize("target", ["gemma", "lm1b"])
def test_gpt2_scales_exactly_the_residual_projections(target):
    abstract, layers = TARGETS[target]()
    n_layers = report_schemes.depth(abstract)  # how `jaxinit report` counts L
    assert n_layers == 2
    rules = jr.gpt2(n_layers)
    rows = jf.plan(abstract, rules, layers=layers)
    scaled = {r.path for r in rows if r.std == pytest.approx(RESIDUAL_STD)}
    assert scaled == RESIDUAL[target]
    weights = [r for r in rows if r.path.endswith(("kernel", "embedding"))]
    assert {r.std for r in weights if r.path not in scaled} == {0.02}
    out = jf.reinit(abstract, KEY, rules, layers=layers)
    got = _nnx_params(out) if layers is None else _tree_params(out)
    residual = np.concatenate([np.ravel(got[p]) for p in sorted(scaled)])
    stats.assert_std(residual, RESIDUAL_STD, stats.KURTOSIS_NORMAL, "residual projections")
    stats.assert_mean(residual, 0.0, RESIDUAL_STD, "residual projections")


def test_gemma_norms_keep_zero_scales_with_a_rule_in_front():
    """Gemma's RMSNorm multiplies by ``1 + scale``: the recipes' and presets' catch-all (norm
    scales one) doubles its gain, so a Gemma user puts a zeros rule first."""
    abstract = _gemma()
    rows = jf.plan(abstract, [(r"norm/scale$", jaxinit.zeros), *jr.gpt2(2)])
    norms = [r for r in rows if r.path.endswith("norm/scale")]
    assert len(norms) == 2 * 6 + 1 and all(r.initializer == jaxinit.zeros for r in norms)


def test_gpt2_finds_lm1b_learned_position_embeddings():
    """The learned position table of Flax's lm1b/WMT examples, 'posembed_output/pos_embedding',
    is a position embedding to the recipes (a strict reinit takes it)."""
    cfg = dataclasses.replace(lm1b.TINY, learned_positions=True)
    shapes, layers = _lm1b(cfg)
    rows = {r.path: r for r in jf.plan(shapes, jr.gpt2(2, position_std=0.01), layers=layers)}
    assert rows[f"{LM}/posembed_output/pos_embedding"].std == 0.01
    jf.reinit(shapes, KEY, jr.gpt2(2), layers=layers)


def test_six_layer_configs_are_planned_abstractly():
    rows = jf.plan(_gemma(gemma.SIX_LAYERS), jr.gpt2(6))
    assert len(rows) == 2 + 6 * 10  # no QK norm: 10 parameters a block
    assert sum(math.prod(r.shape) for r in rows) == 57_684_480
    shapes, layers = _lm1b(lm1b.SIX_LAYERS)
    assert report_schemes.depth(shapes) == 6
    assert len(jf.plan(shapes, jr.gpt2(6), layers=layers)) == 5 + 6 * len(LM1B_BLOCK)


# -- sharded and not -------------------------------------------------------------------------------
#: tests/real_models/gemma.py's `ShardingConfig.fsdp_tp()`, by hand: name -> spec.
GEMMA_SPECS = {
    "embedder/embedding": P("tp", "fsdp"),
    "attn/q_einsum/kernel": P("tp", "fsdp", None),
    "attn/kv_einsum/kernel": P(None, "tp", "fsdp", None),
    "attn/attn_vec_einsum/kernel": P("tp", None, "fsdp"),
    "mlp/gate_proj/kernel": P("fsdp", "tp"),
    "mlp/up_proj/kernel": P("fsdp", "tp"),
    "mlp/down_proj/kernel": P("tp", "fsdp"),
    "_query_norm/scale": P(),  # the example gives QK norms no metadata
    "_key_norm/scale": P(),
    "norm/scale": P("tp"),
}


def _gemma_spec(path: str) -> P:
    return next(spec for suffix, spec in GEMMA_SPECS.items() if path.endswith(suffix))


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_sharded_gemma_is_born_in_its_shardings_with_the_unsharded_bits():
    mesh = jax.make_mesh((4, 2), ("fsdp", "tp"))  # Explicit axes, jax's default
    cfg = dataclasses.replace(gemma.TINY, shd=gemma.ShardingConfig.fsdp_tp())
    rules, _, unsharded = _preset("gemma", "torch")
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: gemma.Transformer(cfg, rngs=nnx.Rngs(0)))
        by_flax = {p: v.sharding.spec for p, v in _nnx_params(abstract).items()}  # Flax's own
        sharded = _nnx_params(jf.reinit(abstract, KEY, rules))
    assert set(sharded) == set(unsharded) == GEMMA_PATHS
    for path, value in sharded.items():
        want = NamedSharding(mesh, _gemma_spec(path))
        assert value.sharding.is_equivalent_to(want, value.ndim), (path, value.sharding)
        assert want.is_equivalent_to(NamedSharding(mesh, by_flax[path]), value.ndim), path
        _assert_bitwise(value, unsharded[path], path)
    assert sharded["layers/0/attn/q_einsum/kernel"].addressable_shards[0].data.shape == (2, 12, 8)


def _lm1b_spec(path: str) -> P:
    """lm1b's logical names through its rules (mlp, vocab -> tensor; embed -> fsdp; kv and
    heads unused), by hand."""
    if path.endswith("embedding"):
        return P("tensor", "fsdp")
    if f"{ATTN}/" in path:  # ('embed', 'kv') on every attention kernel, `out` (N, H, D) too
        return P("fsdp", None)
    if path.endswith("Dense_0/kernel"):
        return P("fsdp", "tensor")
    if path.endswith("Dense_1/kernel"):
        return P("tensor", "fsdp")
    if path.endswith("logitdense/kernel"):
        return P("fsdp", "tensor")
    if path.endswith(("Dense_0/bias", "logitdense/bias")):
        return P("tensor")
    return P("fsdp")  # LayerNorm scale/bias and Dense_1/bias: ('embed',)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_sharded_lm1b_gets_its_logical_shardings_with_the_unsharded_bits():
    mesh = jax.make_mesh((2, 2, 2), lm1b.MESH_AXES, axis_types=(AxisType.Auto,) * 3)
    _, layers = _lm1b()
    rules, _, unsharded = _preset("lm1b", "flax")
    model = lm1b.TransformerLM(lm1b.TINY)
    with jax.set_mesh(mesh), nn.logical_axis_rules(lm1b.LOGICAL_AXIS_RULES):
        shapes = jax.eval_shape(model.init, KEY, lm1b.tokens(lm1b.TINY))
        out = jf.reinit(shapes, KEY, rules, layers=layers)
    # What the example's own set-up computes for its jitted init.
    flax_shardings = nn.logical_to_mesh_sharding(
        nn.get_partition_spec(shapes), mesh, lm1b.LOGICAL_AXIS_RULES
    )
    want_by_flax = {
        "/".join(k.key for k in kp): s
        for kp, s in jax.tree_util.tree_leaves_with_path(flax_shardings)
    }
    sharded = _tree_params(out)
    assert set(sharded) == set(unsharded) == set(want_by_flax) == LM1B_PATHS
    for path, value in sharded.items():
        want = NamedSharding(mesh, _lm1b_spec(path))
        assert value.sharding.is_equivalent_to(want, value.ndim), (path, value.sharding)
        assert value.sharding.is_equivalent_to(want_by_flax[path], value.ndim), path
        _assert_bitwise(value, unsharded[path], path)


# -- jaxinit report --model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gemma_reports(tmp_path_factory):
    """`jaxinit report` on the tiny Gemma from the repository root: unsharded on 1 device (in
    process, JAX is running with 8) and sharded on 8 (the command, in a subprocess)."""
    out = tmp_path_factory.mktemp("report")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxinit",
            "report",
            "--model",
            "tests.real_models.gemma:tiny_sharded",
            "--devices",
            "8",
            "--no-compare",
            "--json",
            str(out / "sharded.json"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    args = [
        "report",
        "--model",
        "tests.real_models.gemma:tiny",
        "--devices",
        "1",
        "--no-compare",
        "--json",
        str(out / "plain.json"),
    ]
    with contextlib.chdir(REPO):
        assert cli.main(args) == 0
    load = lambda name: json.loads((out / name).read_text())
    return {"sharded": (proc.stdout, load("sharded.json")), "plain": load("plain.json")}


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_report_on_gemma_sharded_and_not(gemma_reports):
    text, sharded = gemma_reports["sharded"]
    plain = gemma_reports["plain"]
    assert (sharded["devices"], sharded["mesh"]) == (8, {"data": 4, "model": 2})
    assert (plain["devices"], plain["mesh"]) == (1, {"data": 1, "model": 1})
    assert sharded["fingerprint"] == plain["fingerprint"]  # sharding changes no bit
    for doc in (sharded, plain):
        rows = {r["path"]: r for r in doc["rows"]}
        assert set(rows) == GEMMA_PATHS
        assert doc["total"]["std_on_target"] == doc["total"]["std_checked"] == len(rows)
        q, o = rows["layers/1/attn/q_einsum/kernel"], rows["layers/1/attn/attn_vec_einsum/kernel"]
        assert (q["fan_in"], q["fan_out"], q["target_std"]) == (48, 32, 0.02)
        assert (o["fan_in"], o["fan_out"]) == (32, 48)
        for path in RESIDUAL["gemma"]:
            assert rows[path]["target_std"] == pytest.approx(RESIDUAL_STD)
    rows = {r["path"]: r for r in sharded["rows"]}
    assert rows["layers/1/attn/q_einsum/kernel"]["sharding"] == "P(model, data, None)"
    assert rows["embedder/embedding"]["sharding"] == "P(model, data)"
    assert rows["layers/0/attn/_query_norm/scale"]["sharding"] == "replicated"
    assert {r["sharding"] for r in plain["rows"]} == {"replicated"}
    assert "model tests.real_models.gemma:tiny_sharded" in text
    assert "layers/1/attn/kv_einsum/kernel" in text and "P(None, model, data, None)" in text
    assert f"{len(rows)}/{len(rows)} parameters" in text


def test_report_refuses_the_linen_lm1b_naming_the_limit(capsys):
    jax.devices()  # JAX is started: the error must come from the model, not the devices
    with contextlib.chdir(REPO):
        code = cli.main(["report", "--model", "tests.real_models.lm1b:tiny", "--no-compare"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tests.real_models.lm1b:tiny" in err and "not an nnx.Module" in err


# -- ResNet18 (linen) and the toy model of every NNX layer ----------------------------------------
#: Haiku has no LoRA, so its preset gives `lora_a`/`lora_b` no rule (framework_rules says so);
#: a user adds them, as here: LoRA's usual init, he_uniform A and zero B.
LORA_RULES = [(r"lora_a$", jaxinit.he_uniform()), (r"lora_b$", jaxinit.zeros)]
TOY_LORA = {"lora/lora_a", "lora/lora_b", "lora_linear/lora/lora_a", "lora_linear/lora/lora_b"}


def _toy() -> toy.Toy:
    return nnx.eval_shape(lambda: toy.toy(nnx.Rngs(0)))


def _resnet() -> tuple[Any, dict[str, jf.LayerAxes]]:
    """The abstract ``params`` of ResNet18 (1000 classes, one 224x224 image) and its layers."""
    model, images = resnet.make(), resnet.inputs()
    return jax.eval_shape(model.init, KEY, images)["params"], jf.linen_layers(model, images)


def _check_rewritten(rows: list[jf.PlanRow], got: dict[str, Any], what: str) -> None:
    """Every planned parameter is a new array of its shape, with the planned std."""
    assert set(got) == {r.path for r in rows}, what
    for row in rows:
        value = got[row.path]
        assert isinstance(value, jax.Array) and value.shape == row.shape, (what, row.path)
        if row.std:
            stats.assert_std(value, row.std, KURT, f"{what}: {row.path}")


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_framework_preset_reinitializes_the_toy_model_strictly(framework):
    abstract = _toy()
    rules = jf.framework_rules(framework, abstract)
    if framework == "haiku":
        with pytest.raises(ValueError, match=r"4 parameter\(s\) match no rule") as err:
            jf.reinit(abstract, KEY, rules)
        assert all(repr(p) in str(err.value) for p in TOY_LORA)
        rules = [*rules, *LORA_RULES]
    rows = jf.plan(abstract, rules)
    assert all(r.initializer is not None for r in rows), framework
    out = jf.reinit(abstract, KEY, rules)
    _check_rewritten(rows, _nnx_params(out), framework)
    assert len(rows) == 55 and {r.path for r in rows} >= TOY_LORA  # BatchNorm stats: no Params


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_framework_preset_reinitializes_resnet18_strictly(framework):
    params, layers = _resnet()
    rules = jf.framework_rules(framework, params, layers=layers)
    rows = jf.plan(params, rules, layers=layers)
    assert all(r.initializer is not None for r in rows), framework
    out = jf.reinit(params, KEY, rules, layers=layers)
    assert jax.tree.structure(out) == jax.tree.structure(params)
    _check_rewritten(rows, _tree_params(out), framework)


def test_plan_gives_the_toy_model_its_layers_fans():
    """By hand from tests/real_models/toy.py; glorot (fan_avg) shows fan_in and fan_out."""
    rules = [(r"kernel|embedding|lora_a", jaxinit.glorot_normal()), (".*", jaxinit.zeros)]
    rows = {r.path: r for r in jf.plan(_toy(), rules)}
    fans = lambda p: (rows[p].shape, rows[p].fan_in, rows[p].fan_out)
    # 3x3, 8 -> 12 in 4 groups: each input feeds one group's 3 outputs, so fan_out is
    # 3 * 3 * 12 / 4 = 27 (Flax's own count, from the raw shape, would be 108).
    assert fans("conv_grouped/kernel") == ((3, 3, 2, 12), 3 * 3 * 2, 27)
    assert rows["conv_grouped/kernel"].std == pytest.approx(math.sqrt(2 / (18 + 27)))
    # nnx.vmap / nnx.scan stacks: the leading layer axis is a batch axis, not a receptive field.
    assert fans("vmapped/kernel") == ((3, 8, 16), 8, 16)
    assert rows["vmapped/kernel"].std == pytest.approx(math.sqrt(2 / (8 + 16)))
    assert fans("scanned/kernel") == ((2, 16, 16), 16, 16)
    # LinearGeneral: two input axes (4, 6) into (3, 5); a batch axis of 3 counts nowhere.
    assert fans("general/kernel") == ((4, 6, 3, 5), 24, 15)
    assert fans("general_batch/kernel") == ((3, 6, 2, 5), 6, 10)
    assert fans("einsum/kernel") == ((16, 4, 8), 16, 32)  # bd,dhk->bhk
    # ConvTranspose 6 -> 10: fans agree with and without transpose_kernel (axes swapped).
    assert fans("conv_transpose/kernel") == ((3, 3, 6, 10), 54, 90)
    assert fans("conv_transpose_t/kernel") == ((3, 3, 10, 6), 54, 90)
    assert fans("embed/embedding") == ((50, 16), 16, 50)
    assert fans("attention/out/kernel") == ((4, 4, 16), 16, 16)


def test_plan_gives_resnet18_its_layers_fans():
    params, layers = _resnet()
    rules = [("kernel", jaxinit.he_normal()), (".*", jaxinit.zeros)]
    rows = {r.path: r for r in jf.plan(params, rules, layers=layers)}
    assert sum(math.prod(r.shape) for r in rows.values()) == 11_689_512
    assert len(rows) == 3 + 2 + 8 * 6 + 3 * 3  # stem, head, blocks, three projections
    fans = lambda p: (rows[p].shape, rows[p].fan_in, rows[p].fan_out)
    assert fans("conv_init/kernel") == ((7, 7, 3, 64), 7 * 7 * 3, 7 * 7 * 64)
    assert fans("ResNetBlock_2/Conv_0/kernel") == ((3, 3, 64, 128), 576, 1152)
    assert fans("ResNetBlock_2/conv_proj/kernel") == ((1, 1, 64, 128), 64, 128)
    assert fans("Dense_0/kernel") == ((512, 1000), 512, 1000)
    assert rows["conv_init/kernel"].std == pytest.approx(math.sqrt(2 / 147))
