"""Framework presets (``jaxinit.get("torch.linear.bias", fan_in=...)``) and
`jaxinit.flax.framework_rules`.

Every preset is checked against the law its framework documents, written here independently of
the implementation (bounds, stds, truncation points from each framework's source), by moments
with tolerances of `stats.Z` standard errors, the exact support, and a one-sample
Kolmogorov-Smirnov test (p > `stats.KS_MIN_PVALUE`) at fixed keys; see tests/stats.py. The
framework rules are checked by porting small PyTorch models to Flax and comparing every
parameter's law with torch's own.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import flax_models as fm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import stats
import torch
from flax import nnx

import jaxinit
import jaxinit.flax as jf
from jaxinit._src.catalog import registry

KEY = jax.random.key(7)
C = stats.TRUNC_STD_2  # std of norm(0, 1) truncated to (-2, 2), from scipy
DENSE = (256, 512)  # fan_in 256, fan_out 512
CONV = (3, 3, 64, 128)  # fan_in 576, fan_out 1152
VEC = (4096,)


# -- the laws --------------------------------------------------------------------------------------
def unif(lo: float, hi: float) -> Any:
    return scipy.stats.uniform(lo, hi - lo)


def sym(bound: float) -> Any:
    return unif(-bound, bound)


def norm(std: float, mean: float = 0.0) -> Any:
    return scipy.stats.norm(mean, std)


def tnorm(sigma: float, mean: float = 0.0) -> Any:
    """Truncated at 2 std, `sigma` the std before truncation."""
    return scipy.stats.truncnorm(-2.0, 2.0, loc=mean, scale=sigma)


def const(value: float) -> Any:
    return ("const", value)


def ortho(gain: float) -> Any:
    return ("ortho", gain)


def exact(array: Any) -> Any:
    return ("exact", np.asarray(array, np.float32))


def forget_bias(h: int, value: float) -> Any:
    return exact([0.0] * h + [value] * h + [0.0] * 2 * h)


# (preset, kwargs, shape, law), every law from the framework's own formula.
LAWS: list[tuple[str, dict[str, Any], tuple[int, ...], Any]] = [
    ("torch.linear.kernel", {}, DENSE, sym(1 / 16)),  # 1/sqrt(256)
    ("torch.conv.kernel", {}, CONV, sym(1 / 24)),  # 1/sqrt(3*3*64)
    ("torch.linear.bias", {"fan_in": 256}, VEC, sym(1 / 16)),
    ("torch.conv.bias", {"fan_in": 576}, VEC, sym(1 / 24)),
    ("torch.linear.bias", {"fan_in": 0}, VEC, const(0.0)),
    ("torch.embedding.embedding", {}, DENSE, norm(1.0)),
    ("torch.rnn.kernel", {"hidden_size": 64}, (32, 256), sym(1 / 8)),
    ("torch.rnn.recurrent_kernel", {"hidden_size": 64}, (64, 256), sym(1 / 8)),
    ("torch.rnn.bias", {"hidden_size": 64}, VEC, sym(1 / 8)),
    ("torch.lora.lora_a", {}, (256, 8), sym(1 / 16)),  # PEFT lora_A: Linear's, fan_in 256
    ("torch.lora.lora_b", {}, (8, 256), const(0.0)),
    # nn.MultiheadAttention: xavier_uniform on the packed (3 * 256, 256) in_proj_weight.
    ("torch.multihead_attention.in_proj", {}, (256, 256), sym(math.sqrt(6 / (256 + 768)))),
    ("torch.multihead_attention.bias", {}, VEC, const(0.0)),
    ("torch.layer_norm.scale", {}, VEC, const(1.0)),
    ("torch.layer_norm.bias", {}, VEC, const(0.0)),
    ("keras.dense.kernel", {}, DENSE, sym(math.sqrt(6 / 768))),
    ("keras.conv.kernel", {}, CONV, sym(math.sqrt(6 / (576 + 1152)))),
    ("keras.lstm.kernel", {}, (64, 256), sym(math.sqrt(6 / 320))),
    ("keras.dense.bias", {}, VEC, const(0.0)),
    ("keras.conv.bias", {}, VEC, const(0.0)),
    ("keras.layer_norm.beta", {}, VEC, const(0.0)),
    ("keras.layer_norm.gamma", {}, VEC, const(1.0)),
    ("keras.embedding.embeddings", {}, DENSE, sym(0.05)),
    ("keras.dense.lora_kernel_a", {}, (256, 8), sym(math.sqrt(6 / 256))),  # he_uniform
    ("keras.dense.lora_kernel_b", {}, (8, 256), const(0.0)),
    ("keras.lstm.recurrent_kernel", {}, (32, 128), ortho(1.0)),
    ("keras.lstm.bias", {}, (64,), forget_bias(16, 1.0)),
    ("keras.lstm.bias", {"unit_forget_bias": False}, (64,), const(0.0)),
    ("haiku.linear.w", {}, DENSE, tnorm(1 / 16)),  # pre-truncation std 1/sqrt(fan_in)
    ("haiku.conv.w", {}, CONV, tnorm(1 / 24)),
    ("haiku.linear.b", {}, VEC, const(0.0)),
    ("haiku.conv.b", {}, VEC, const(0.0)),
    ("haiku.layer_norm.offset", {}, VEC, const(0.0)),
    ("haiku.layer_norm.scale", {}, VEC, const(1.0)),
    ("haiku.embed.embeddings", {}, DENSE, tnorm(1.0)),
    ("flax.dense.kernel", {}, DENSE, tnorm(1 / 16 / C)),  # lecun_normal: corrected
    ("flax.conv.kernel", {}, CONV, tnorm(1 / 24 / C)),
    ("flax.dense.bias", {}, VEC, const(0.0)),
    ("flax.conv.bias", {}, VEC, const(0.0)),
    ("flax.layer_norm.bias", {}, VEC, const(0.0)),
    ("flax.layer_norm.scale", {}, VEC, const(1.0)),
    ("flax.embed.embedding", {}, (512, 256), norm(1 / 16)),  # 1/sqrt(features)
    ("flax.lstm.recurrent_kernel", {}, (32, 32), ortho(1.0)),
    ("flax.lora.lora_a", {}, (256, 8), sym(math.sqrt(6 / 256))),  # he_uniform
    ("flax.lora.lora_b", {}, (8, 256), const(0.0)),
    ("caffe.xavier", {}, DENSE, sym(math.sqrt(3 / 256))),
    ("caffe.xavier", {"variance_norm": "FAN_OUT"}, DENSE, sym(math.sqrt(3 / 512))),
    ("caffe.xavier", {"variance_norm": "average"}, DENSE, sym(math.sqrt(3 / 384))),
    ("caffe.msra", {}, DENSE, norm(math.sqrt(2 / 256))),
    ("caffe.msra", {"variance_norm": "AVERAGE"}, DENSE, norm(math.sqrt(2 / 384))),
    ("caffe.gaussian", {}, DENSE, norm(1.0)),
    ("caffe.gaussian", {"mean": 0.5, "std": 0.1}, DENSE, norm(0.1, 0.5)),
    ("caffe.gaussian", {"sparse": 64}, DENSE, ("sparse", 64 / 512, norm(1.0))),
    ("caffe.uniform", {}, DENSE, unif(0.0, 1.0)),
    ("caffe.uniform", {"min": -2.0, "max": 3.0}, DENSE, unif(-2.0, 3.0)),
    ("caffe.positive_unitball", {}, DENSE, ("simplex", 256)),
    ("caffe.bilinear", {}, (4, 4, 1, 3), ("bilinear", [0.25, 0.75, 0.75, 0.25])),
    ("caffe.constant", {}, VEC, const(0.0)),
    ("caffe.constant", {"value": 0.25}, VEC, const(0.25)),
    ("mxnet.xavier", {}, DENSE, sym(math.sqrt(3 / 384))),
    ("mxnet.xavier", {"rnd_type": "gaussian"}, DENSE, norm(math.sqrt(3 / 384))),
    ("mxnet.xavier", {"rnd_type": "gaussian", "factor_type": "in", "magnitude": 2.0}, DENSE,
     norm(math.sqrt(2 / 256))),
    ("mxnet.msra_prelu", {}, DENSE, norm(math.sqrt(2 / (1 + 0.25**2) / 384))),
    ("mxnet.msra_prelu", {"factor_type": "out", "slope": 0.0}, DENSE, norm(math.sqrt(2 / 512))),
    ("mxnet.lstm_bias", {}, (64,), forget_bias(16, 1.0)),
    ("mxnet.lstm_bias", {"forget_bias": 2.5}, (64,), forget_bias(16, 2.5)),
    ("mxnet.uniform", {}, DENSE, sym(0.07)),
    ("mxnet.normal", {}, DENSE, norm(0.01)),
    ("mxnet.orthogonal", {}, (64, 128), ortho(1.414)),
    ("tf1.zeros", {}, VEC, const(0.0)),
    ("tf1.ones", {}, VEC, const(1.0)),
    ("tf1.constant", {"value": -3.0}, VEC, const(-3.0)),
    ("tf1.random_uniform", {}, DENSE, unif(0.0, 1.0)),
    ("tf1.random_normal", {}, DENSE, norm(1.0)),
    ("tf1.random_normal", {"mean": 1.0, "stddev": 0.5}, DENSE, norm(0.5, 1.0)),
    ("tf1.truncated_normal", {}, DENSE, tnorm(1.0)),  # no correction
    ("tf1.truncated_normal", {"mean": 1.0, "stddev": 0.5}, DENSE, tnorm(0.5, 1.0)),
    ("tf1.uniform_unit_scaling", {}, DENSE, sym(math.sqrt(3 / 256))),
    ("tf1.uniform_unit_scaling", {"factor": 1.43}, CONV, sym(1.43 * math.sqrt(3 / 576))),
    ("tf1.variance_scaling", {}, DENSE, tnorm(math.sqrt(1 / 256) / C)),
    ("tf1.variance_scaling", {"distribution": "normal"}, DENSE, tnorm(math.sqrt(1 / 256) / C)),
    ("tf1.variance_scaling", {"distribution": "untruncated_normal"}, DENSE, norm(1 / 16)),
    ("tf1.variance_scaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}, DENSE,
     sym(math.sqrt(3 * 2 / 384))),
    ("tf1.orthogonal", {"gain": 2.0}, (128, 64), ortho(2.0)),
    ("tf1.identity", {"gain": 3.0}, (64, 96), exact(3 * np.eye(64, 96))),
    ("tf1.glorot_uniform", {}, DENSE, sym(math.sqrt(6 / 768))),
    ("tf1.glorot_normal", {}, DENSE, tnorm(math.sqrt(2 / 768) / C)),
    ("tf1.lecun_uniform", {}, DENSE, sym(math.sqrt(3 / 256))),
    ("tf1.lecun_normal", {}, DENSE, tnorm(math.sqrt(1 / 256) / C)),
    ("tf1.he_uniform", {}, DENSE, sym(math.sqrt(6 / 256))),
    ("tf1.he_normal", {}, DENSE, tnorm(math.sqrt(2 / 256) / C)),
]  # fmt: skip


def _law_id(case: tuple) -> str:
    name, kwargs, _, _ = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items())


def check_law(x: Any, law: Any) -> None:
    """Moments (Z standard errors), support, extremes reached, and a KS test against `law`."""
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    mean, std = float(law.mean()), float(law.std())
    k = stats.kurtosis(law)
    assert abs(x.mean() - mean) <= stats.Z * std / math.sqrt(n)
    assert abs(x.std() - std) <= stats.Z * std * math.sqrt((k - 1) / (4 * n))
    lo, hi = law.support()
    eps = 4 * np.finfo(np.float32).eps * max(abs(lo), abs(hi), 1.0)
    assert x.min() >= lo - eps and x.max() <= hi + eps
    # P(min > lo + t (hi - lo)) = (1 - t)^n < e^-25 for a uniform: the bound itself is right.
    if law.dist.name == "uniform":
        t = 25 / n * (hi - lo)
        assert x.min() <= lo + t and x.max() >= hi - t
    assert scipy.stats.kstest(x, law.cdf).pvalue > stats.KS_MIN_PVALUE


def check(x: Any, law: Any) -> None:
    """`check_law`, or the structural law of a deterministic or structured preset."""
    x = np.asarray(x, np.float64)
    kind = law[0] if isinstance(law, tuple) else "dist"
    if kind == "dist":
        check_law(x, law)
    elif kind == "const":
        np.testing.assert_array_equal(x, np.full(x.shape, law[1]))
    elif kind == "exact":
        np.testing.assert_array_equal(x, law[1])
    elif kind == "ortho":
        w = x if x.shape[0] <= x.shape[1] else x.T  # rows orthonormal
        np.testing.assert_allclose(w @ w.T, law[1] ** 2 * np.eye(w.shape[0]), atol=2e-5)
    elif kind == "sparse":
        p, values = law[1], law[2]
        kept = x != 0
        se = math.sqrt(p * (1 - p) / x.size)
        assert abs(kept.mean() - p) <= stats.Z * se
        check_law(x[kept], values)
    elif kind == "simplex":  # each column a point of the probability simplex, mean 1/fan
        assert (x >= 0).all() and x.shape[0] == law[1]
        np.testing.assert_allclose(x.sum(axis=0), 1.0, rtol=1e-5)
    elif kind == "bilinear":
        f = np.asarray(law[1])
        np.testing.assert_array_equal(x, np.broadcast_to(np.outer(f, f)[..., None, None], x.shape))
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(law)


# -- every preset by name --------------------------------------------------------------------------
def test_every_preset_has_a_law():
    assert {case[0] for case in LAWS} == set(jaxinit.preset_names())


@pytest.mark.parametrize("case", LAWS, ids=_law_id)
def test_preset_follows_its_framework_law(case):
    name, kwargs, shape, law = case
    init = jaxinit.get(name, **kwargs)
    assert isinstance(init, jaxinit.BaseInitializer)
    check(init(jax.random.fold_in(KEY, len(name)), shape), law)


@pytest.mark.parametrize("case", LAWS, ids=_law_id)
def test_preset_takes_a_dtype_and_serializes_as_its_scheme(case):
    name, kwargs, shape, _ = case
    init = jaxinit.get(name, dtype=jnp.bfloat16, **kwargs)
    assert jax.eval_shape(lambda k: init(k, shape), KEY).dtype == jnp.bfloat16
    blob = jaxinit.serialize(init)
    assert "." not in blob["name"] and blob["name"] in registry.FACTORIES
    assert jaxinit.get(blob) == init


@pytest.mark.parametrize("name", jaxinit.preset_names())
def test_preset_docstring_gives_formula_and_source(name):
    doc = registry.lookup(name).__doc__ or ""
    assert ".. math::" in doc
    source = doc.split("Source:", 1)[1] if "Source:" in doc else ""
    assert "``" in source and "," in source  # library, ``file``, ``function``


def test_presets_are_exact_specializations():
    """The constants that make each framework what it is, compared as values."""
    c2 = 0.87962566103423978**2
    expected = {
        "torch.linear.kernel": jaxinit.he_uniform(
            nonlinearity="leaky_relu", negative_slope=math.sqrt(5)
        ),
        "torch.embedding.embedding": jaxinit.normal(1.0),
        "haiku.linear.w": jaxinit.variance_scaling(c2, "fan_in", "truncated_normal"),
        "haiku.embed.embeddings": jaxinit.truncated_normal(1.0),
        "flax.dense.kernel": jaxinit.lecun_normal(),
        "flax.embed.embedding": jaxinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
        "keras.dense.kernel": jaxinit.glorot_uniform(),
        "keras.embedding.embeddings": jaxinit.uniform_range(-0.05, 0.05),
        "keras.lstm.bias": jaxinit.lstm_forget_bias(1.0, gates=4, forget_gate=1),
        "mxnet.lstm_bias": jaxinit.lstm_forget_bias(1.0, gates=4, forget_gate=1),
        "mxnet.xavier": jaxinit.mxnet_xavier("uniform", "avg", 3.0),
        "tf1.variance_scaling": jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal"),
        "tf1.he_normal": jaxinit.he_normal(),
        "caffe.xavier": jaxinit.caffe_xavier("fan_in"),
    }
    for name, init in expected.items():
        assert jaxinit.get(name) == init, name
    assert jaxinit.get("torch.conv.kernel") == jaxinit.get("torch.linear.kernel")
    assert jaxinit.get("torch.linear.bias", fan_in=100) == jaxinit.uniform_range(-0.1, 0.1)
    assert jaxinit.get("torch.rnn.bias", hidden_size=25) == jaxinit.uniform_range(-0.2, 0.2)
    assert jaxinit.get("torch.linear.bias", fan_in=0) == jaxinit.zeros
    # torch's std 1/sqrt(3 fan_in), as the plan reports it, for the real fans of a conv kernel.
    kernel = jaxinit.get("torch.conv.kernel")
    assert isinstance(kernel, jaxinit.he_uniform)
    assert kernel.target_std((3, 3, 16, 32)) == pytest.approx(1 / math.sqrt(3 * 144), rel=1e-12)


def test_dicts_name_presets_too():
    blob = {"name": "torch.linear.bias", "config": {"fan_in": 4}}
    assert jaxinit.get(blob, dtype="bfloat16") == jaxinit.uniform_range(-0.5, 0.5, "bfloat16")


def test_preset_names_are_apart_from_the_registry():
    names = jaxinit.preset_names()
    assert names == sorted(names) and "torch.linear.bias" in names
    assert not set(names) & set(jaxinit.registry_names())
    assert all("." not in n for n in jaxinit.registry_names())


# -- errors ----------------------------------------------------------------------------------------
def test_missing_required_argument_is_named():
    with pytest.raises(TypeError, match=r"torch\.linear\.bias\(\) is missing .*`fan_in`"):
        jaxinit.get("torch.linear.bias")
    with pytest.raises(TypeError, match="`hidden_size`; valid parameters: hidden_size, dtype"):
        jaxinit.get("torch.rnn.kernel")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(TypeError) as e:
        jaxinit.get("torch.linear.bias", fan_in=3, x=1)
    assert str(e.value) == (
        "torch.linear.bias() got unknown parameter(s) 'x'; valid parameters: fan_in, dtype."
    )
    with pytest.raises(TypeError, match=r"'scale'; valid parameters: dtype\."):
        jaxinit.get("keras.dense.kernel", scale=2.0)


def test_unknown_preset_suggests_close_matches():
    with pytest.raises(ValueError, match=r"'torch\.linear\.kernal'.*'torch\.linear\.kernel'"):
        jaxinit.get("torch.linear.kernal")
    with pytest.raises(ValueError, match=r"unknown preset name 'jax\.x'.*preset_names"):
        jaxinit.get("jax.x")


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("torch.linear.bias", {"fan_in": -1}, ValueError, "`fan_in` must be >= 0; got -1"),
        ("torch.linear.bias", {"fan_in": 2.5}, TypeError, "`fan_in` must be an integer"),
        ("torch.rnn.bias", {"hidden_size": 0}, ValueError, "`hidden_size` must be >= 1"),
        ("caffe.xavier", {"variance_norm": "fan"}, ValueError, "'FAN_IN', 'FAN_OUT', 'AVERAGE'"),
        ("tf1.variance_scaling", {"distribution": "gaussian"}, ValueError, "'untruncated_normal'"),
        ("tf1.variance_scaling", {"mode": "fan_geo_avg"}, ValueError, "`mode` must be one of"),
        ("keras.lstm.bias", {"unit_forget_bias": 1}, TypeError, "`unit_forget_bias`"),
        ("mxnet.xavier", {"rnd_type": "normal"}, ValueError, "`rnd_type` must be one of"),
        ("tf1.random_uniform", {"minval": 1.0, "maxval": 1.0}, ValueError, "`minval` must be <"),
    ],
)
def test_bad_values_are_refused(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxinit.get(name, **kwargs)


# -- framework_rules: a Flax port initialized exactly like the PyTorch original --------------------
class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(512, 64)
        self.fc = torch.nn.Linear(64, 1024)
        self.conv = torch.nn.Conv2d(16, 128, 3)
        self.norm = torch.nn.LayerNorm(1024)


class NnxNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.embed = nnx.Embed(512, 64, rngs=rngs)
        self.fc = nnx.Linear(64, 1024, rngs=rngs)
        self.conv = nnx.Conv(16, 128, (3, 3), rngs=rngs)
        self.norm = nnx.LayerNorm(1024, rngs=rngs)


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, tokens, image):
        h = nn.Dense(1024, name="fc")(nn.Embed(512, 64, name="embed")(tokens))
        return nn.LayerNorm(name="norm")(h), nn.Conv(128, (3, 3), name="conv")(image)


LINEN_INPUTS = (jnp.zeros((2,), jnp.int32), jnp.zeros((1, 8, 8, 16)))

#: Flax path -> (torch parameter, torch layout -> JAX layout).
TORCH_PORT = {
    "embed/embedding": ("embed.weight", lambda w: w),
    "fc/kernel": ("fc.weight", lambda w: w.T),
    "fc/bias": ("fc.bias", lambda w: w),
    "conv/kernel": ("conv.weight", lambda w: w.permute(2, 3, 1, 0)),  # OIHW -> HWIO
    "conv/bias": ("conv.bias", lambda w: w),
    "norm/scale": ("norm.weight", lambda w: w),
    "norm/bias": ("norm.bias", lambda w: w),
}


def _torch_laws(net: torch.nn.Module) -> dict[str, Any]:
    """Each parameter's law as torch defines it, its bounds from torch's own fan function."""
    fan_in = {
        m: torch.nn.init._calculate_fan_in_and_fan_out(getattr(net, m).weight)[0]
        for m in ("fc", "conv")
    }
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    return {
        "embed.weight": norm(1.0),
        "fc.weight": sym(gain * math.sqrt(3 / fan_in["fc"])),
        "fc.bias": sym(1 / math.sqrt(fan_in["fc"])),
        "conv.weight": sym(gain * math.sqrt(3 / fan_in["conv"])),
        "conv.bias": sym(1 / math.sqrt(fan_in["conv"])),
        "norm.weight": const(1.0),
        "norm.bias": const(0.0),
    }


def _check_port(values: dict[str, Any], rows: list[jf.PlanRow]) -> None:
    torch.manual_seed(0)
    net = TorchNet()
    laws = _torch_laws(net)
    stds = {r.path.removeprefix("params/"): r.std for r in rows}
    assert set(stds) == set(TORCH_PORT)
    for path, (name, to_jax) in TORCH_PORT.items():
        theirs = to_jax(net.get_parameter(name).detach()).numpy()
        ours = np.asarray(values[path])
        assert ours.shape == theirs.shape, path
        law = laws[name]
        if isinstance(law, tuple):  # constants: the same values
            np.testing.assert_array_equal(ours, theirs)
            assert stds[path] == 0.0
            continue
        assert stds[path] == pytest.approx(float(law.std()), rel=1e-6), path
        check_law(theirs, law)  # torch follows the law we read from it
        check_law(ours, law)
        stats.assert_same_law(ours, theirs, law)


def _nnx_values(model: nnx.Module) -> dict[str, Any]:
    return {
        "/".join(map(str, k)): v.get_value()
        for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))
    }


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_nnx_port_gets_torch_defaults():
    model = NnxNet(nnx.Rngs(0))
    rules = jf.framework_rules("torch", model)
    rows = jf.plan(model, rules)
    model = jf.reinit(model, jax.random.key(1), rules)
    _check_port(_nnx_values(model), rows)


def test_abstract_nnx_port_gets_torch_defaults():
    model = nnx.eval_shape(lambda: NnxNet(nnx.Rngs(0)))
    rules = jf.framework_rules("torch", model)
    model = jf.reinit(model, jax.random.key(2), rules)
    _check_port(_nnx_values(model), jf.plan(model, rules))


def test_linen_port_gets_torch_defaults():
    module = LinenNet()
    params = module.init(jax.random.key(0), *LINEN_INPUTS)
    layers = jf.linen_layers(module, *LINEN_INPUTS)
    rules = jf.framework_rules("torch", params, layers=layers)
    rows = jf.plan(params, rules, layers=layers)
    new = jf.reinit(params, jax.random.key(3), rules, layers=layers)
    flat = {"/".join(map(str, (getattr(k, "key", k) for k in kp))): v
            for kp, v in jax.tree_util.tree_flatten_with_path(new)[0]}  # fmt: skip
    _check_port({p.removeprefix("params/"): v for p, v in flat.items()}, rows)


def test_torch_bias_uses_the_real_fan_in_of_general_and_stacked_kernels():
    class Model(nnx.Module):
        def __init__(self):
            self.heads = nnx.LinearGeneral(64, (4, 8), rngs=nnx.Rngs(0))  # kernel (64, 4, 8)
            self.stack = fm.stacked_linear(3, 16, 32)  # kernel (3, 16, 32), bias (3, 32)

    rules = dict(jf.framework_rules("torch", nnx.eval_shape(Model)))
    assert rules["^heads/bias$"] == jaxinit.uniform_range(-1 / 8, 1 / 8)
    assert rules["^stack/bias$"] == jaxinit.uniform_range(-1 / 4, 1 / 4)


def test_torch_rules_leave_an_unknown_bias_to_strict_reinit():
    class Odd(nnx.Module):
        def __init__(self):
            self.bias = nnx.Param(jnp.zeros((4,)))

    rules = jf.framework_rules("torch", Odd())
    with pytest.raises(ValueError, match=r"match no rule.*'bias'"):
        jf.reinit(Odd(), KEY, rules)


def test_torch_rules_for_nnx_recurrent_cells():
    hidden = 64
    cell = nnx.OptimizedLSTMCell(32, hidden, rngs=nnx.Rngs(0))
    cell = jf.reinit(cell, KEY, jf.framework_rules("torch", cell))
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(32, hidden)
    law = sym(1 / math.sqrt(hidden))
    ours = _nnx_values(cell)
    assert set(ours) == {"dense_i/kernel", "dense_h/kernel", "dense_h/bias"}
    pairs = {"dense_i/kernel": "weight_ih_l0", "dense_h/kernel": "weight_hh_l0"}
    for path, name in pairs.items():
        theirs = lstm.get_parameter(name).detach().numpy().T
        assert ours[path].shape == theirs.shape
        check_law(ours[path], law)
        stats.assert_same_law(ours[path], theirs, law)
    check_law(ours["dense_h/bias"], law)


class Cells(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.cell = nnx.LSTMCell(8, 16, rngs=rngs)  # per-gate sublayers hi, hf, hg, ho
        self.fused = nnx.OptimizedLSTMCell(8, 16, rngs=rngs)  # dense_h: (16, 4 * 16)


@pytest.mark.parametrize("framework", ["keras", "flax"])
def test_recurrent_kernels_are_orthogonal_for_keras_and_flax(framework):
    model = nnx.eval_shape(lambda: Cells(nnx.Rngs(0)))
    values = _nnx_values(jf.reinit(model, KEY, jf.framework_rules(framework, model)))
    # Keras's one (h, 4h) orthogonal kernel has entries of variance 1/(4h): halved per gate.
    gain = 0.5 if framework == "keras" else 1.0
    for gate in ("hi", "hf", "hg", "ho"):
        check(values[f"cell/{gate}/kernel"], ortho(gain))
        bias = 1.0 if framework == "keras" and gate == "hf" else 0.0  # Keras unit_forget_bias
        check(values[f"cell/{gate}/bias"], const(bias))
    check(values["fused/dense_h/kernel"], ortho(1.0))
    check(values["fused/dense_h/bias"], forget_bias(16, 1.0 if framework == "keras" else 0.0))


#: framework -> the std of a kernel, of an embedding (vocab, features) and of scale/bias.
STDS = {
    "torch": (lambda fi, fo: 1 / math.sqrt(3 * fi), lambda f: 1.0),
    "keras": (lambda fi, fo: math.sqrt(2 / (fi + fo)), lambda f: 0.1 / math.sqrt(12)),
    "haiku": (lambda fi, fo: C / math.sqrt(fi), lambda f: C),
    "flax": (lambda fi, fo: 1 / math.sqrt(fi), lambda f: 1 / math.sqrt(f)),
}


@pytest.mark.parametrize("framework", list(STDS))
def test_every_transformer_parameter_gets_its_framework_std(framework):
    model = nnx.eval_shape(lambda: fm.Tower(2, nnx.Rngs(0)))
    rows = jf.plan(model, jf.framework_rules(framework, model))
    kernel_std, embed_std = STDS[framework]
    fan_in = {
        r.path.rsplit("/", 1)[0]: r.fan_in
        for r in rows
        if r.path.endswith("/kernel") and r.fan_in is not None
    }
    for row in rows:
        parent, name = row.path.rsplit("/", 1)
        assert row.initializer is not None, row.path
        # torch's nn.MultiheadAttention: xavier_uniform over the packed (3E, E) q/k/v weight
        # (variance 1 / (2E)), zero biases; its output projection is a Linear.
        torch_qkv = framework == "torch" and parent.rsplit("/", 1)[-1] in ("query", "key", "value")
        torch_attention = framework == "torch" and "/attn/" in row.path
        if name == "kernel" and torch_qkv:
            assert row.fan_in is not None
            assert row.std == pytest.approx(math.sqrt(0.5 / row.fan_in), rel=1e-6)
        elif name == "kernel":
            assert row.fan_in is not None and row.fan_out is not None
            assert row.std == pytest.approx(kernel_std(row.fan_in, row.fan_out), rel=1e-6)
        elif name == "embedding":
            assert row.std == pytest.approx(embed_std(row.shape[-1]), rel=1e-6)
        elif torch_attention and name == "bias":
            assert row.std == 0.0, row.path
        elif framework == "torch" and name == "bias" and parent in fan_in:
            assert row.std == pytest.approx(1 / math.sqrt(3 * fan_in[parent]), rel=1e-6)
        else:  # norm scales and biases, and every other framework's biases: constants
            assert name in ("scale", "bias") and row.std == 0.0, row.path
    reinit = jf.reinit(model, KEY, jf.framework_rules(framework, model))
    assert all(np.isfinite(np.asarray(v)).all() for v in _nnx_values(reinit).values())


def test_flax_rules_reproduce_flax_own_defaults():
    """A Flax model re-initialized with Flax's rules has the law Flax's own init gives it."""
    model = NnxNet(nnx.Rngs(0))
    own = _nnx_values(model)
    new = _nnx_values(jf.reinit(model, KEY, jf.framework_rules("flax", model)))
    laws = {
        "embed/embedding": norm(1 / 8),
        "fc/kernel": tnorm(1 / 8 / C),
        "conv/kernel": tnorm(1 / 12 / C),
    }
    for path, law in laws.items():
        check_law(own[path], law)
        stats.assert_same_law(new[path], own[path], law)
    for path in ("fc/bias", "conv/bias", "norm/scale", "norm/bias"):
        np.testing.assert_array_equal(np.asarray(new[path]), np.asarray(own[path]))


class GemmaNames(nnx.Module):
    """The parameter names of Flax's Gemma example: its own Einsum holds ``w`` (heads, d,
    head_dim), its Embedder ``input_embedding`` (vocab, d), its RMSNorm ``scale``."""

    def __init__(self):
        self.q_einsum = nnx.Dict(w=nnx.Param(jnp.zeros((4, 32, 8))))
        self.embedder = nnx.Dict(input_embedding=nnx.Param(jnp.zeros((64, 32))))
        self.final_norm = nnx.Dict(scale=nnx.Param(jnp.ones((32,))))


@pytest.mark.parametrize("framework", list(STDS))
def test_framework_rules_know_the_gemma_example_names(framework):
    model = GemmaNames()
    rules = jf.framework_rules(framework, model)
    rows = {r.path: r for r in jf.plan(model, rules)}
    kernel_std, embed_std = STDS[framework]
    w = rows["q_einsum/w"]  # an unknown layer: the default axes, fan_in 32 * 4, fan_out 8 * 4
    assert (w.fan_in, w.fan_out) == (128, 32)
    assert w.std == pytest.approx(kernel_std(128, 32), rel=1e-6)
    assert rows["embedder/input_embedding"].std == pytest.approx(embed_std(32), rel=1e-6)
    assert jf.reinit(model, KEY, rules) is model  # strict: every parameter has a rule


def test_unknown_framework_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'flax', 'haiku', 'keras', 'torch'; got 'mxnet'"):
        jf.framework_rules("mxnet", NnxNet(nnx.Rngs(0)))
