"""Depth and width recipes (`jaxinit.recipes`): the documented std of every role, through
`jaxinit.flax.plan` and measured on re-initialized NNX models and linen params; default patterns
on GPT-2, Llama, T5 and fairseq naming; muP's plan, its optax transform, a muP coordinate check
and a depth-scaling check of the residual stream.

Statistical tolerances come from `stats` (Z standard errors of the sample size). The coordinate
and depth checks draw R independent replicas of a model in one `reinit` (the models are built
under `nnx.vmap`, so every parameter has a leading replica axis, which the layer-aware fans
treat as a batch axis) and compare the replica mean of a statistic with the theory's expected
value within Z standard errors of that mean, estimated from the replicas' spread.
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import stats
from flax import nnx

import jaxinit
import jaxinit.flax as jf
import jaxinit.recipes as jr

KEY = jax.random.key(0)
#: optax's Adam computes `decay**count` (float ** int32), which strict promotion refuses.
OPTAX_PROMOTION = jax.numpy_dtype_promotion("standard")
NORMAL, UNIFORM = stats.KURTOSIS_NORMAL, stats.KURTOSIS_UNIFORM
D, FF, VOCAB = 64, 128, 128


def _params(model) -> dict[str, np.ndarray]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in flat}


def _flat(tree) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in kp): np.asarray(x) for kp, x in leaves}


def _xavier(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def _check(rows, values, expected) -> None:
    """`expected(path, shape)` -> (std, kurtosis) or ("zeros"/"ones", None) for every parameter:
    the plan says that std, and the re-initialized values (pooled per expected std) have it."""
    pools: dict[tuple[float, float], list[np.ndarray]] = {}
    for row in rows:
        std, kurt = expected(row.path, row.shape)
        if std in ("zeros", "ones"):
            assert row.std == 0.0, row.path
            np.testing.assert_array_equal(values[row.path], 0.0 if std == "zeros" else 1.0)
            continue
        assert row.std == pytest.approx(std, rel=1e-6), row.path
        pools.setdefault((std, kurt), []).append(values[row.path].ravel())
    for (std, kurt), arrays in pools.items():
        stats.assert_std(np.concatenate(arrays), std, kurt, what=f"std {std:.5g}")


# -- models with common naming --------------------------------------------------------------------
class GPT2Block(nnx.Module):
    """GPT-2 naming: ln_1, attn/c_attn (fused qkv), attn/c_proj, ln_2, mlp/c_fc, mlp/c_proj."""

    def __init__(self, rngs: nnx.Rngs):
        self.ln_1 = nnx.LayerNorm(D, rngs=rngs)
        self.attn = nnx.Dict(
            c_attn=nnx.Linear(D, 3 * D, rngs=rngs), c_proj=nnx.Linear(D, D, rngs=rngs)
        )
        self.ln_2 = nnx.LayerNorm(D, rngs=rngs)
        self.mlp = nnx.Dict(
            c_fc=nnx.Linear(D, 4 * D, rngs=rngs), c_proj=nnx.Linear(4 * D, D, rngs=rngs)
        )


class GPT2(nnx.Module):
    def __init__(self, n_layers: int, rngs: nnx.Rngs):
        self.wte = nnx.Embed(VOCAB, D, rngs=rngs)
        self.wpe = nnx.Embed(32, D, rngs=rngs)
        self.h = nnx.List([GPT2Block(rngs) for _ in range(n_layers)])
        self.ln_f = nnx.LayerNorm(D, rngs=rngs)


class LlamaLayer(nnx.Module):
    """Llama naming: self_attn/{q,k,v,o}_proj, mlp/{gate,up,down}_proj, RMSNorm, no biases."""

    def __init__(self, d: int, rngs: nnx.Rngs):
        lin = functools.partial(nnx.Linear, use_bias=False, rngs=rngs)
        self.input_layernorm = nnx.RMSNorm(d, rngs=rngs)
        self.self_attn = nnx.Dict(
            q_proj=lin(d, d), k_proj=lin(d, d), v_proj=lin(d, d), o_proj=lin(d, d)
        )
        self.post_attention_layernorm = nnx.RMSNorm(d, rngs=rngs)
        self.mlp = nnx.Dict(gate_proj=lin(d, 2 * d), up_proj=lin(d, 2 * d), down_proj=lin(2 * d, d))


class Llama(nnx.Module):
    def __init__(self, n_layers: int, rngs: nnx.Rngs, d: int = D):
        self.embed_tokens = nnx.Embed(VOCAB, d, rngs=rngs)
        self.layers = nnx.List([LlamaLayer(d, rngs) for _ in range(n_layers)])
        self.norm = nnx.RMSNorm(d, rngs=rngs)
        self.lm_head = nnx.Linear(d, VOCAB, use_bias=False, rngs=rngs)


def _fairseq_attn(rngs: nnx.Rngs) -> nnx.Dict:
    return nnx.Dict(
        **{n: nnx.Linear(D, D, rngs=rngs) for n in ("q_proj", "k_proj", "v_proj", "out_proj")}
    )


class FairseqLayer(nnx.Module):
    """fairseq naming: self_attn (and encoder_attn in the decoder), fc1, fc2, layer norms."""

    def __init__(self, cross: bool, rngs: nnx.Rngs):
        self.self_attn = _fairseq_attn(rngs)
        if cross:
            self.encoder_attn = _fairseq_attn(rngs)
        self.self_attn_layer_norm = nnx.LayerNorm(D, rngs=rngs)
        self.fc1 = nnx.Linear(D, FF, rngs=rngs)
        self.fc2 = nnx.Linear(FF, D, rngs=rngs)
        self.final_layer_norm = nnx.LayerNorm(D, rngs=rngs)


class FairseqStack(nnx.Module):
    def __init__(self, n_layers: int, cross: bool, rngs: nnx.Rngs):
        self.embed_tokens = nnx.Embed(VOCAB, D, rngs=rngs)
        self.layers = nnx.List([FairseqLayer(cross, rngs) for _ in range(n_layers)])
        if cross:
            self.output_projection = nnx.Linear(D, VOCAB, use_bias=False, rngs=rngs)


class EncoderDecoder(nnx.Module):
    def __init__(self, n_enc: int, n_dec: int, rngs: nnx.Rngs):
        self.encoder = FairseqStack(n_enc, False, rngs)
        self.decoder = FairseqStack(n_dec, True, rngs)


def _abstract(make):
    return nnx.eval_shape(make)


def _fairseq_role(path: str) -> str:
    """The T-Fixup / DeepNet role of a fairseq parameter, written out by hand."""
    if path.endswith(("bias", "scale")):
        return path.rsplit("/", 1)[1]
    if "embed_tokens" in path:
        return "embedding"
    if re.search(r"(q_proj|k_proj)/kernel$", path):
        return "qk"
    if re.search(r"(v_proj|out_proj|fc1|fc2)/kernel$", path):
        return "branch"
    return "other"


_CONSTANT = {"bias": ("zeros", None), "scale": ("ones", None)}


# -- GPT-2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("naming", ["gpt2", "llama"])
def test_gpt2_stds_on_common_naming(naming):
    n_layers = 2
    if naming == "gpt2":
        model = _abstract(lambda: GPT2(n_layers, nnx.Rngs(0)))
        residual = r"h/\d+/(attn|mlp)/c_proj/kernel$"
    else:
        model = _abstract(lambda: Llama(n_layers, nnx.Rngs(0)))
        residual = r"(o_proj|down_proj)/kernel$"
    rules = jr.gpt2(n_layers, position_std=0.01)

    def expected(path, shape):
        if path.endswith(("bias", "scale")):
            return _CONSTANT[path.rsplit("/", 1)[1]]
        if re.search(residual, path):
            return 0.02 / math.sqrt(2 * n_layers), NORMAL
        return (0.01 if path.startswith("wpe/") else 0.02), NORMAL

    rows = jf.plan(model, rules)
    if naming == "gpt2":
        _check(rows, _params(jf.reinit(model, KEY, rules)), expected)
    else:  # the plan alone: the same initializers are measured on GPT-2 naming
        for row in rows:
            std = expected(row.path, row.shape)[0]
            assert row.std == (0.0 if isinstance(std, str) else pytest.approx(std)), row.path


def test_depth_recipes_label_what_they_scale_and_the_depth():
    """`plan` rows say which parameters a depth recipe treated as residual, and with which L."""
    model = _abstract(lambda: GPT2(2, nnx.Rngs(0)))
    labels = {r.path: r.label for r in jf.plan(model, jr.gpt2(2))}
    residual = sorted(p for p, label in labels.items() if label)
    assert residual == [f"h/{i}/{b}/c_proj/kernel" for i in (0, 1) for b in ("attn", "mlp")]
    assert {labels[p] for p in residual} == {"residual projection, L=2: std 0.02/sqrt(2L)"}
    (branch,) = {r.label for r in jf.plan(model, jr.deepnet(2)) if r.label}
    assert branch == f"branch v/out/MLP, depth-scaled: gain beta={jr.deepnet_beta(2):.4g}"


def test_position_tables_named_pos_embedding_are_found():
    """Flax's lm1b/WMT/ViT keep a learned position table as a ``pos_embedding`` parameter."""
    s = jax.ShapeDtypeStruct((1, 16, 48), jnp.float32)
    params = {"posembed_output": {"pos_embedding": s}, "vit": {"position_embedding": s}}
    rows = jf.plan(params, jr.gpt2(2, position_std=0.01))
    assert [r.std for r in rows] == [pytest.approx(0.01)] * 2
    assert [r.std for r in jf.plan(params, jr.gpt2(2))] == [pytest.approx(0.02)] * 2


# -- T5 (linen params) ----------------------------------------------------------------------------
HEADS, HEAD_DIM = 4, 16


class T5Attention(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = functools.partial(nn.DenseGeneral, features=(HEADS, HEAD_DIM), use_bias=False)
        q, k, v = dense(name="query")(x), dense(name="key")(x), dense(name="value")(x)
        w = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k))
        o = jnp.einsum("bhqk,bkhd->bqhd", w, v)
        return nn.DenseGeneral(D, axis=(-2, -1), use_bias=False, name="out")(o)


class T5Layer(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, D, name="token_embedder")(tokens)
        x = x + T5Attention(name="attention")(nn.RMSNorm(name="pre_attention_layer_norm")(x))
        h = nn.RMSNorm(name="pre_mlp_layer_norm")(x)
        h = nn.Dense(4 * D, use_bias=False, name="wi")(h)
        return x + nn.Dense(D, use_bias=False, name="wo")(jax.nn.relu(h))


def test_t5_on_linen_params():
    module, tokens = T5Layer(), jnp.zeros((2, 8), jnp.int32)
    variables = jax.eval_shape(lambda: module.init(KEY, tokens))
    layers = jf.linen_layers(module, tokens)  # the multi-head kernels' real fans
    rules = jr.t5(HEAD_DIM)
    std = {
        "query": 1 / math.sqrt(D * HEAD_DIM),  # 1/sqrt(head_dim) folded into the query
        "key": 1 / math.sqrt(D),
        "value": 1 / math.sqrt(D),
        "out": 1 / math.sqrt(HEADS * HEAD_DIM),
        "wi": 1 / math.sqrt(D),
        "wo": 1 / math.sqrt(4 * D),
        "token_embedder": 1.0,
    }

    def expected(path, shape):
        if path.endswith("scale"):
            return "ones", None
        return std[path.split("/")[-2]], NORMAL

    rows = jf.plan(variables, rules, layers=layers)
    _check(rows, _flat(jf.reinit(variables, KEY, rules, layers=layers)), expected)


# -- DeepNet --------------------------------------------------------------------------------------
def test_deepnet_constants_are_the_papers():
    # Wang et al. 2022, Table 1: single stack alpha (2N)^(1/4), beta (8N)^(-1/4); encoder-decoder
    # encoder 0.81 (N^4 M)^(1/16) / 0.87 (N^4 M)^(-1/16), decoder (3M)^(1/4) / (12M)^(-1/4).
    assert jr.deepnet_alpha(18) == pytest.approx(36**0.25)
    assert jr.deepnet_beta(18) == pytest.approx(144**-0.25)
    n, m = 12, 6
    assert jr.deepnet_alpha(encoder_layers=n, decoder_layers=m) == pytest.approx(
        (0.81 * (n**4 * m) ** (1 / 16), (3 * m) ** 0.25)
    )
    assert jr.deepnet_beta(encoder_layers=n, decoder_layers=m) == pytest.approx(
        (0.87 * (n**4 * m) ** (-1 / 16), (12 * m) ** -0.25)
    )


def test_deepnet_decoder_only_on_llama_naming():
    n_layers = 3
    model = _abstract(lambda: Llama(n_layers, nnx.Rngs(0)))
    rules = jr.deepnet(n_layers)
    beta = (8 * n_layers) ** -0.25

    def expected(path, shape):
        if path.endswith("scale"):
            return "ones", None
        if path.startswith("embed_tokens"):
            return 1 / math.sqrt(D), NORMAL  # N(0, 1/d), fairseq / torchscale
        gain = beta if re.search(r"(v_proj|o_proj|gate_proj|up_proj|down_proj)/", path) else 1.0
        return _xavier(*shape, gain), NORMAL

    rows = jf.plan(model, rules)
    _check(rows, _params(jf.reinit(model, KEY, rules)), expected)


def test_deepnet_encoder_decoder_scopes():
    n, m = 4, 2
    model = _abstract(lambda: EncoderDecoder(n, m, nnx.Rngs(0)))
    beta_enc, beta_dec = jr.deepnet_beta(encoder_layers=n, decoder_layers=m)
    rows = jf.plan(model, jr.deepnet(encoder_layers=n, decoder_layers=m))
    for row in rows:
        role = _fairseq_role(row.path)
        if role in ("bias", "scale"):
            assert row.std == 0.0
            continue
        if role == "embedding":
            assert row.std == pytest.approx(1 / math.sqrt(D))
            continue
        beta = beta_dec if row.path.startswith("decoder/") else beta_enc  # encoder_attn: decoder's
        gain = beta if role == "branch" else 1.0
        assert row.std == pytest.approx(_xavier(*row.shape, gain)), row.path


# -- T-Fixup and Fixup ----------------------------------------------------------------------------
def test_t_fixup_encoder_decoder():
    n, m = 1, 2
    model = _abstract(lambda: EncoderDecoder(n, m, nnx.Rngs(0)))
    rules = jr.t_fixup(encoder_layers=n, decoder_layers=m)

    def expected(path, shape):
        role, decoder = _fairseq_role(path), path.startswith("decoder/")
        if role in _CONSTANT:
            return _CONSTANT[role]
        if role == "embedding":  # N(0, 1/d) * (9 N_stack)^(-1/4)
            return (9 * (m if decoder else n)) ** -0.25 / math.sqrt(D), NORMAL
        gain = {"qk": 2**-0.5, "other": 1.0}.get(role)
        if gain is None:  # v, out, fc1, fc2 (self and cross attention)
            gain = (9 * m) ** -0.25 if decoder else 0.67 * n**-0.25
        return _xavier(*shape, gain), UNIFORM

    rows = jf.plan(model, rules)
    _check(rows, _params(jf.reinit(model, KEY, rules)), expected)


class FixupBlock(nnx.Module):
    def __init__(self, c: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(c, c, (3, 3), use_bias=False, rngs=rngs)
        self.conv2 = nnx.Conv(c, c, (3, 3), use_bias=False, rngs=rngs)
        for name in ("bias1a", "bias1b", "bias2a", "bias2b"):  # Fixup's scalar biases
            setattr(self, name, nnx.Param(jnp.ones(())))
        self.scale = nnx.Param(jnp.zeros(()))  # Fixup's scalar multiplier


class FixupNet(nnx.Module):
    def __init__(self, n_blocks: int, rngs: nnx.Rngs, c: int = 32):
        self.stem = nnx.Conv(3, c, (3, 3), rngs=rngs)
        self.blocks = nnx.List([FixupBlock(c, rngs) for _ in range(n_blocks)])
        self.fc = nnx.Linear(c, 10, rngs=rngs)


def test_fixup_resnet():
    n_blocks = 4
    model = _abstract(lambda: FixupNet(n_blocks, nnx.Rngs(0)))
    rules = jr.fixup(n_blocks)

    def expected(path, shape):
        name = path.split("/")[-2] if path.endswith("kernel") else path.rsplit("/", 1)[1]
        if name.startswith("bias") or name in ("conv2", "fc"):
            return "zeros", None  # last layer of each branch and the classifier: zero
        if name == "scale":
            return "ones", None
        he = math.sqrt(2 / math.prod(shape[:-1]))  # HWIO: fan_in = kh * kw * in
        return (he * n_blocks**-0.5 if name == "conv1" else he), NORMAL  # L^(-1/(2m-2)), m=2

    rows = jf.plan(model, rules)
    _check(rows, _params(jf.reinit(model, KEY, rules)), expected)
    # m = 3 (bottleneck): conv1 and conv2 scaled by L^(-1/4), conv3 zero.
    rules3 = jr.fixup(n_blocks, 3)
    std = {r.path: r.std for r in jf.plan(model, rules3)}
    assert std["blocks/0/conv1/kernel"] == pytest.approx(math.sqrt(2 / 288) * n_blocks**-0.25)
    assert std["blocks/0/conv2/kernel"] == pytest.approx(math.sqrt(2 / 288) * n_blocks**-0.25)


# -- default patterns -----------------------------------------------------------------------------
PATTERN_CASES = {
    "residual": (
        ["h/0/attn/c_proj/kernel", "h/11/mlp/c_proj/kernel", "layers/0/self_attn/o_proj/kernel",
         "layers/0/mlp/down_proj/kernel", "blocks/3/attn/out/kernel", "blocks/0/down/kernel",
         "decoder/layers/0/encoder_attn/out_proj/kernel", "encoder/layers_0/mlp/wo/kernel",
         "block/0/layer/0/SelfAttention/o/weight", "block/0/layer/1/DenseReluDense/wo/weight",
         "layers/0/feed_forward/w2/kernel", "layers/0/attention/wo/kernel", "layers/0/fc2/kernel",
         # Flax's Gemma example (NNX) and lm1b (linen) examples
         "layers/0/attn/attn_vec_einsum/w", "layers/5/mlp/down_proj/kernel",
         "decoder/encoderdecoderblock_0/MultiHeadDotProductAttention_0/out/kernel",
         "decoder/encoderdecoderblock_1/MlpBlock_0/Dense_1/kernel"],
        ["h/0/attn/c_attn/kernel", "h/0/mlp/c_fc/kernel", "out/kernel", "lm_head/kernel",
         "h/0/attn/c_proj/bias", "layers/0/self_attn/q_proj/kernel", "layers/0/attn/q_einsum/w",
         "layers/0/attn/kv_einsum/w", "decoder/encoderdecoderblock_0/MlpBlock_0/Dense_0/kernel",
         "decoder/logitdense/kernel"],
    ),
    "query": (
        ["attn/query/kernel", "self_attn/q_proj/kernel", "SelfAttention/q/weight",
         "attn/wq/kernel"],
        ["attn/qkv/kernel", "attn/key/kernel", "q_proj/bias", "seq/kernel"],
    ),
    "readout": (
        ["lm_head/kernel", "head/kernel", "classifier/kernel", "decoder/logits_dense/kernel"],
        ["attn/out/kernel", "blocks/0/mlp/fc2/kernel", "lm_head/bias"],
    ),
    "bias": (["fc/bias", "bias1a", "ln/beta"], ["relative_attention_bias/embedding", "fc/kernel"]),
    "norm_scale": (["ln_1/scale", "norm/scale"], ["fc/kernel", "attn/scale_proj/kernel"]),
    "position": (["wpe/embedding", "pos_embed/embedding"], ["wte/embedding", "embed/embedding"]),
    "embedding": (["wte/embedding", "embedder/input_embedding"],
                  ["wpe/embedding_proj/kernel", "input_embedding/kernel"]),
}  # fmt: skip


@pytest.mark.parametrize("role", sorted(PATTERN_CASES))
def test_default_patterns(role):
    pattern = re.compile(jr.PATTERNS[role])
    yes, no = PATTERN_CASES[role]
    assert [p for p in yes if not pattern.search(p)] == []
    assert [p for p in no if pattern.search(p)] == []


# -- muP: the plan --------------------------------------------------------------------------------
def test_mup_plan_roles_and_multipliers():
    base = _abstract(lambda: Llama(2, nnx.Rngs(0), d=32))
    target = _abstract(lambda: Llama(2, nnx.Rngs(0), d=128))
    rows = {r.path: r for r in jr.mup_plan(target, base)}
    m, s0 = 4.0, 32**-0.5  # width multiplier; base std of every d-by-d matrix (default init)
    q = rows["layers/0/self_attn/q_proj/kernel"]
    assert (q.role, q.width_mult, q.std, q.adam_lr_mult, q.sgd_lr_mult) == (
        "query", m, pytest.approx(s0 / m**0.5), 1 / m, 1.0)  # fmt: skip
    for name in ("self_attn/k_proj", "self_attn/o_proj", "mlp/up_proj", "mlp/down_proj"):
        r = rows[f"layers/1/{name}/kernel"]
        base_fan_in = 64 if "down" in name else 32
        assert (r.role, r.width_mult, r.adam_lr_mult, r.sgd_lr_mult) == ("hidden", m, 1 / m, 1.0)
        assert r.std == pytest.approx(base_fan_in**-0.5 / m**0.5)
    head = rows["lm_head/kernel"]  # (d, vocab): one width dimension, fan_in
    assert (head.role, head.width_mult, head.std, head.adam_lr_mult, head.sgd_lr_mult) == (
        "readout", m, pytest.approx(s0 / m), 1 / m, 1 / m)  # fmt: skip
    emb = rows["embed_tokens/embedding"]  # input: std fixed (1/sqrt(d_base)), SGD lr * fan_out
    assert (emb.role, emb.width_mult, emb.std, emb.adam_lr_mult, emb.sgd_lr_mult) == (
        "input", m, pytest.approx(s0), 1.0, m)  # fmt: skip
    norm = rows["norm/scale"]
    assert (norm.role, norm.std, norm.initializer) == ("input", 0.0, jaxinit.ones)
    zeroed = {r.path: r for r in jr.mup_plan(target, base, zero_readout=True, zero_query=True)}
    assert zeroed["lm_head/kernel"].initializer == jaxinit.zeros
    assert zeroed["layers/1/self_attn/q_proj/kernel"].initializer == jaxinit.zeros
    assert (
        zeroed["layers/1/self_attn/k_proj/kernel"].std
        == rows["layers/1/self_attn/k_proj/kernel"].std
    )

    model = jf.reinit(target, KEY, jr.mup(target, base))
    values = _params(model)
    for role in ("hidden", "readout", "input"):
        pool = [r for r in rows.values() if r.role == role and r.std]
        for std in {r.std for r in pool}:
            x = np.concatenate([values[r.path].ravel() for r in pool if r.std == std])
            stats.assert_std(x, std, NORMAL, what=role)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_mup_gives_a_width_to_fixed_matrix_the_output_role():
    """A matrix from width to a fixed size (a projection to 16 features, a Gemma-style einsum
    kernel (d, heads, head_dim) with d the width) is output-type: std s0 / m, Adam lr / m. So
    the std of x @ W, with x of unit coordinates, shrinks like m**-1/2 instead of growing like
    m**1/2 (as it did with the input role: 1.03, 1.98, 3.98, 8.03 at widths 64..4096)."""
    base_w = 64

    class Heads(nnx.Module):
        def __init__(self, w: int):
            self.proj = nnx.Linear(w, 16, use_bias=False, rngs=nnx.Rngs(0))
            self.q_einsum = nnx.Einsum("BTD,DNH->BTNH", (w, 4, 8), rngs=nnx.Rngs(0))

    model = lambda w: _abstract(lambda: Heads(w))
    for w in (256, 1024, 4096):
        m = w / base_w
        rows = {
            r.path: r for r in jr.mup_plan(model(w), model(base_w), [("", jaxinit.lecun_normal())])
        }
        for path in ("proj/kernel", "q_einsum/kernel"):
            r = rows[path]
            assert (r.role, r.width_mult, r.adam_lr_mult) == ("readout", m, 1 / m), path
            assert r.std == pytest.approx(base_w**-0.5 / m)
        x = jax.random.normal(jax.random.fold_in(KEY, w), (256, w))
        weight = rows["proj/kernel"].initializer(jax.random.fold_in(KEY, 1), (w, 16))
        out = np.asarray(x @ weight)  # std sqrt(w) * s0 / m = m**-1/2 (E over x and W)
        stats.assert_std(out, m**-0.5, NORMAL, what=f"x @ W at width {w}")


class LinenMLP(nn.Module):
    width: int

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, self.width, name="embed")(tokens)
        x = nn.relu(nn.Dense(self.width, name="hidden")(x))
        return nn.Dense(VOCAB, name="lm_head")(x)


def test_mup_base_as_model_shapes_or_linen_params():
    base = _abstract(lambda: Llama(1, nnx.Rngs(0), d=32))
    target = _abstract(lambda: Llama(1, nnx.Rngs(0), d=64))
    shapes = {r.path: r.shape for r in jf.plan(base, [("", None)])}
    key = lambda rows: [(r.path, r.role, r.width_mult, r.std, r.sgd_lr_mult) for r in rows]
    assert key(jr.mup_plan(target, base)) == key(jr.mup_plan(target, shapes))

    tokens = jnp.zeros((2, 4), jnp.int32)
    variables = {w: jax.eval_shape(lambda w=w: LinenMLP(w).init(KEY, tokens)) for w in (32, 128)}
    layers = jf.linen_layers(LinenMLP(128), tokens)
    rows = {r.path: r for r in jr.mup_plan(variables[128], variables[32], layers=layers)}
    assert rows["params/hidden/kernel"].std == pytest.approx(32**-0.5 / 2)
    assert rows["params/lm_head/kernel"].std == pytest.approx(32**-0.5 / 4)
    assert rows["params/embed/embedding"].std == pytest.approx(32**-0.5)  # features = fan_in
    assert rows["params/hidden/bias"].role == "input"


def test_mup_errors():
    base = {"a": {"kernel": (8, 8)}, "b": {"kernel": (8, 8)}}
    with pytest.raises(ValueError, match="'b/kernel' of the target is not in `base`"):
        jr.mup_plan({**base, "b": {"kernel": (16, 16)}}, {"a": {"kernel": (8, 8)}})
    with pytest.raises(ValueError, match="`base` has parameters the target lacks"):
        jr.mup_plan({"a": {"kernel": (16, 16)}}, base)
    with pytest.raises(ValueError, match="same rank"):
        jr.mup_plan({"a": {"kernel": (16, 16)}}, {"a": {"kernel": (2, 8, 8)}})
    with pytest.raises(ValueError, match="needs a matrix"):
        jr.mup_plan({"v": (16,)}, {"v": (8,)}, [("", jaxinit.normal(1.0))], hidden="v")
    with pytest.raises(ValueError, match="std of its base initializer"):
        jr.mup_plan({"w": (16, 16)}, {"w": (8, 8)}, [("", jaxinit.identity())])
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        jr.mup_plan({"w": (16, 16)}, {"w": (8, 8)}, distribution="cauchy")


# -- muP: the optax transform ---------------------------------------------------------------------
def test_scale_by_mup_on_nnx_optimizer_state():
    base = _abstract(lambda: Llama(1, nnx.Rngs(0), d=16))
    model = _abstract(lambda: Llama(1, nnx.Rngs(0), d=32))
    rows = jr.mup_plan(model, base)
    model = jf.reinit(model, KEY, jr.mup(model, base))
    before = _params(model)
    opt = nnx.Optimizer(
        model, optax.chain(optax.sgd(1.0), jr.scale_by_mup(rows, "sgd")), wrt=nnx.Param
    )
    opt.update(model, jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    after = _params(model)
    for r in rows:  # a unit gradient moves each parameter by -lr * its SGD multiplier
        np.testing.assert_allclose(before[r.path] - after[r.path], r.sgd_lr_mult, rtol=1e-6)
    assert {r.sgd_lr_mult for r in rows} == {0.5, 1.0, 2.0}  # readout, hidden, input


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_scale_by_mup_on_linen_params_jit_and_errors():
    tokens = jnp.zeros((2, 4), jnp.int32)
    variables = jax.jit(LinenMLP(64).init)(KEY, tokens)
    base = jax.eval_shape(lambda: LinenMLP(16).init(KEY, tokens))
    rows = jr.mup_plan(variables, base, layers=jf.linen_layers(LinenMLP(64), tokens))
    tx = jr.scale_by_mup(rows, "adam")
    params = variables["params"]  # the plan's paths carry `params/`; the optimizer's do not
    ones = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(tx.update)(ones, tx.init(params))
    want = {r.path.removeprefix("params/"): r.adam_lr_mult for r in rows}
    got = _flat(updates)
    assert sorted(got) == sorted(want)
    for path, u in got.items():
        np.testing.assert_allclose(u, want[path], rtol=1e-6, err_msg=path)
    assert want["hidden/kernel"] == want["lm_head/kernel"] == 0.25 and want["embed/embedding"] == 1
    with pytest.raises(ValueError, match="in the muP plan: \\['extra'\\]"):
        tx.init({**params, "extra": jnp.ones(3)})
    with pytest.raises(ValueError, match="`optimizer` must be one of 'adam', 'sgd'"):
        jr.scale_by_mup(rows, "adagrad")
    adam = jr.mup_adam(rows, 1e-3)
    with OPTAX_PROMOTION:
        updates, _ = adam.update(ones, adam.init(params), params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)


# -- muP coordinate check -------------------------------------------------------------------------
R = 32  # independent replicas per model
K = 8  # one-example training problems per replica
WIDTHS = (64, 128, 256)  # base width first
D_IN, D_OUT = 32, 64


class CoordNet(nnx.Module):
    """Input layer (fan_in fixed), two hidden layers, readout (fan_out fixed); ReLU."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.inp = nnx.Linear(D_IN, width, rngs=rngs)
        self.hid1 = nnx.Linear(width, width, rngs=rngs)
        self.hid2 = nnx.Linear(width, width, rngs=rngs)
        self.readout = nnx.Linear(width, D_OUT, rngs=rngs)

    def __call__(self, x):
        h1 = jax.nn.relu(self.inp(x))
        h2 = jax.nn.relu(self.hid1(h1))
        h3 = jax.nn.relu(self.hid2(h2))
        return h1, h2, h3, self.readout(h3)


def _replicas(cls, *args):
    """R independent copies of `cls(*args)`, abstract, every parameter with a leading axis R."""

    @nnx.vmap(in_axes=0, out_axes=0)
    def make(key):
        return cls(*args, nnx.Rngs(key))

    return nnx.eval_shape(lambda: make(jax.random.split(KEY, R)))


def _close(samples: np.ndarray, expected: float, what: str) -> None:
    """The mean over replicas equals `expected` within Z standard errors (from the spread)."""
    tol = stats.mean_tolerance(float(samples.std(ddof=1)), samples.size)
    assert abs(samples.mean() - expected) <= tol, f"{what}: {samples.mean()} vs {expected} ± {tol}"


#: The standard parametrization: He for the input and hidden layers, LeCun for the readout.
SP_RULES = [
    ("readout/kernel", jaxinit.variance_scaling(1.0, "fan_in", "normal")),
    ("kernel", jaxinit.variance_scaling(2.0, "fan_in", "normal")),
    ("bias", jaxinit.zeros),
]


def _coordinates(width: int, base) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per replica, for muP and SP: the mean square of each layer's output at init on a batch,
    and the mean square change of each layer's output after one Adam step on one example
    (averaged over K such problems)."""
    model = _replicas(CoordNet, width)
    rows = jr.mup_plan(model, base, SP_RULES)
    model = jf.reinit(model, KEY, [(f"^{re.escape(r.path)}$", r.initializer) for r in rows])
    m = width / WIDTHS[0]
    readout = {r.path: r.std for r in rows}["readout/kernel"]
    # SP differs from muP at init only in the readout std: 1/sqrt(width) = sqrt(m) * (muP's).
    assert readout * math.sqrt(m) == pytest.approx(width**-0.5)
    graph, params = nnx.split(model)
    x = jax.random.normal(jax.random.key(1), (64, D_IN))
    # K one-example problems (each step sees one example: its update is coherent with it).
    x1 = jax.random.normal(jax.random.key(2), (K, 1, D_IN))
    y1 = jax.random.normal(KEY, (K, 1, D_OUT))
    lr = 1e-3
    txs = {"mup": optax.chain(optax.adam(lr), jr.scale_by_mup(rows)), "sp": optax.adam(lr)}

    def to_sp(p):  # the readout kernel times sqrt(m): SP's 1/sqrt(width) from muP's s0/m
        scale = lambda kp, v: (
            v * math.sqrt(m) if jax.tree_util.keystr(kp).startswith("['readout']['kernel']") else v
        )
        return jax.tree_util.tree_map_with_path(scale, p)

    acts = lambda q, x: nnx.merge(graph, q)(x)

    def change(q, tx, x1, y1):  # mean square change of each layer on x1 after one step on it
        grad = jax.grad(lambda q: jnp.mean((acts(q, x1)[-1] - y1) ** 2))(q)
        updates, _ = tx.update(grad, tx.init(q), q)
        pairs = zip(acts(q, x1), acts(optax.apply_updates(q, updates), x1), strict=True)
        return jnp.stack([jnp.mean((b - a) ** 2) for a, b in pairs])

    def run(p):
        out = {}
        for name, q in (("mup", p), ("sp", to_sp(p))):
            init_ms = jnp.stack([jnp.mean(a**2) for a in acts(q, x)])
            steps = jax.vmap(change, in_axes=(None, None, 0, 0))(q, txs[name], x1, y1)
            out[name] = (init_ms, steps.mean(0))
        return out

    with OPTAX_PROMOTION:
        return jax.tree.map(np.asarray, jax.jit(jax.vmap(run))(params))


def _width_exponent(mean_squares) -> float:
    """The exponent a of RMS ~ width**a, least-squares over `WIDTHS` (log-log)."""
    return float(np.polyfit(np.log(WIDTHS), 0.5 * np.log(mean_squares), 1)[0])


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_mup_coordinate_check():
    """Tensor Programs V's coordinate check, at init and after one Adam step.

    At init the theory gives exact expectations over the weights, for a fixed batch x, so they
    are checked within Z standard errors: He layers keep E[mean h^2] = mean(x^2) at every width
    in both parametrizations; the readout gives E[mean z^2] = mean(x^2) in SP (std 1/sqrt(w))
    and mean(x^2) / m in muP (std s0/m) -- muP's logits at init shrink like 1/sqrt(m), they are
    not flat.

    After one Adam step (lr 1e-3 on one example, so each update is coherent with the input it
    is measured on) the theory is asymptotic: as w -> infinity the RMS change of every hidden
    layer scales like w**0 under muP and like w**1 under SP (Adam moves all w inputs of a unit
    by lr, coherently), with O(w**-1/2) corrections at finite width (about -0.03 and -0.07 on
    the fitted exponent of the two hidden layers here). So the check fits the exponent over
    w = 64..256 and asserts it is nearer its own prediction than the other's by a margin:
    |a| <= 1/4 for muP's hidden layers (an RMS ratio within [1/sqrt 2, sqrt 2] over 4x the
    width), a <= 1/4 for muP's logits (their W_out dh term decays like 1/sqrt(m), so they
    shrink), and a >= 1/2 for SP's hidden layers and logits.
    """
    base = _replicas(CoordNet, WIDTHS[0])
    res = {w: _coordinates(w, base) for w in WIDTHS}
    x2 = float(jnp.mean(jax.random.normal(jax.random.key(1), (64, D_IN)) ** 2))
    for w in WIDTHS:
        m = w / WIDTHS[0]
        for name in ("mup", "sp"):
            for layer in range(3):
                _close(res[w][name][0][:, layer], x2, f"{name} width {w} layer {layer} at init")
        _close(res[w]["sp"][0][:, 3], x2, f"SP logits at init, width {w}")
        _close(res[w]["mup"][0][:, 3] * m, x2, f"muP logits * m at init, width {w}")

    exponent = {
        (name, layer): _width_exponent([res[w][name][1][:, layer].mean() for w in WIDTHS])
        for name in ("mup", "sp")
        for layer in (1, 2, 3)
    }
    assert abs(exponent["mup", 1]) <= 0.25 and abs(exponent["mup", 2]) <= 0.25, exponent
    assert exponent["mup", 3] <= 0.25, exponent
    assert min(exponent["sp", layer] for layer in (1, 2, 3)) >= 0.5, exponent


# -- depth scaling --------------------------------------------------------------------------------
SIGMA, D_DEPTH = 0.02, 64


class PreLNBlock(nnx.Module):
    """A pre-LN GPT block with ReLU (GELU's second moment has no closed form) and attention over
    one position (softmax of one logit is 1), so its branches are exactly out(v(LN x)) and
    c_proj(relu(c_fc(LN x))). LayerNorm's epsilon is negligible: ||LN(x)||^2 = d."""

    def __init__(self, rngs: nnx.Rngs):
        d = D_DEPTH
        self.ln_1 = nnx.LayerNorm(d, epsilon=1e-12, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(4, d, decode=False, rngs=rngs)
        self.ln_2 = nnx.LayerNorm(d, epsilon=1e-12, rngs=rngs)
        self.mlp = nnx.Dict(
            c_fc=nnx.Linear(d, 4 * d, rngs=rngs), c_proj=nnx.Linear(4 * d, d, rngs=rngs)
        )

    def __call__(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp["c_proj"](jax.nn.relu(self.mlp["c_fc"](self.ln_2(x))))


class PreLNStack(nnx.Module):
    def __init__(self, n_layers: int, rngs: nnx.Rngs):
        self.h = nnx.List([PreLNBlock(rngs) for _ in range(n_layers)])

    def __call__(self, x):
        for block in self.h:
            x = block(x)
        return x


@pytest.mark.parametrize(("n_layers", "scaled"), [(1, True), (4, True), (4, False)])
def test_gpt2_depth_scaling_of_the_residual_stream(n_layers, scaled):
    """E[mean x_L^2] = mean(x_0^2) + L * 3 d^2 sigma^2 sigma_out^2, exactly: each branch adds a
    term uncorrelated with the stream (zero-mean weights drawn independently of it), of second
    moment d^2 sigma^2 sigma_out^2 (attention: v then out, each over d inputs) plus
    4d sigma_out^2 * d sigma^2 / 2 (MLP: relu halves the second moment). GPT-2's residual std
    sigma_out = sigma / sqrt(2L) makes it mean(x_0^2) + 1.5 d^2 sigma^4 at every depth; without
    it (sigma_out = sigma) it grows linearly with L."""
    plain = [("kernel", jaxinit.normal(SIGMA)), ("bias", jaxinit.zeros), ("scale", jaxinit.ones)]
    rules = jr.gpt2(n_layers) if scaled else plain
    model = jf.reinit(_replicas(PreLNStack, n_layers), KEY, rules)
    graph, params = nnx.split(model)
    x0 = SIGMA * jax.random.normal(jax.random.key(1), (32, 1, D_DEPTH))
    final = jax.jit(jax.vmap(lambda p: jnp.mean(nnx.merge(graph, p)(x0) ** 2)))(params)
    sigma_out = SIGMA / math.sqrt(2 * n_layers) if scaled else SIGMA
    expected = float(jnp.mean(x0**2)) + n_layers * 3 * D_DEPTH**2 * SIGMA**2 * sigma_out**2
    _close(np.asarray(final), expected, f"mean x_L^2, L={n_layers}")
    if scaled:  # independent of L
        assert expected == pytest.approx(float(jnp.mean(x0**2)) + 1.5 * D_DEPTH**2 * SIGMA**4)


# -- argument checks and independence from Flax ---------------------------------------------------
BAD_CALLS = [
    (lambda: jr.gpt2(0), ValueError, "`n_layers` must be >= 1; got 0"),
    (lambda: jr.gpt2(2.5), TypeError, "`n_layers` must be an integer; got 2.5"),
    (lambda: jr.gpt2(True), TypeError, "`n_layers` must be an integer; got True"),
    (lambda: jr.gpt2(2, std=-0.02), ValueError, "`std` must be > 0; got -0.02"),
    (lambda: jr.gpt2(2, residual="("), ValueError, "`residual` is not a valid regular expr"),
    (lambda: jr.gpt2(2, residual=re.compile("p", re.I)), ValueError, "write them inline"),
    (lambda: jr.gpt2(2, catch_all=1), TypeError, "`catch_all` must be True or False; got 1"),
    (lambda: jr.t5(0), ValueError, "`head_dim` must be >= 1; got 0"),
    (lambda: jr.t5(64, distribution="gaussian"), ValueError,
     "`distribution` must be one of 'truncated_normal', 'normal', 'uniform'; got 'gaussian'"),
    (lambda: jr.t5(64, query=3), TypeError, "`query` must be a regex string or compiled"),
    (lambda: jr.deepnet(), ValueError, "got n_layers=None, encoder_layers=None, decoder_l"),
    (lambda: jr.deepnet(6, encoder_layers=6), ValueError, "or both `encoder_layers` and"),
    (lambda: jr.deepnet_alpha(encoder_layers=6), ValueError, "decoder_layers=None"),
    (lambda: jr.deepnet(encoder_layers=6, decoder_layers=0), ValueError,
     "`decoder_layers` must be >= 1; got 0"),
    (lambda: jr.fixup(8, 1), ValueError, "`layers_per_branch` must be >= 2; got 1"),
    (lambda: jr.fixup(8, mode="fan_avg"), ValueError,
     "`mode` must be one of 'fan_in', 'fan_out'; got 'fan_avg'"),
    (lambda: jr.t_fixup(), ValueError, "pass `encoder_layers`, `decoder_layers` or both"),
    (lambda: jr.t_fixup(encoder_layers=6, qk_gain=0), ValueError, "`qk_gain` must be > 0; got 0"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_recipes_are_built_without_flax():
    code = (
        "import sys, jaxinit.recipes as r\n"
        "rules = [*r.gpt2(12), *r.t5(64), *r.deepnet(6), *r.deepnet(encoder_layers=6, "
        "decoder_layers=6), *r.fixup(8), *r.t_fixup(encoder_layers=6, decoder_layers=6)]\n"
        "assert all(callable(init) for _, init in rules)\n"
        "assert not any(m == 'flax' or m.startswith('flax.') for m in sys.modules), 'flax'\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
