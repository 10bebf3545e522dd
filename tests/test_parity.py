"""Parity with PyTorch's ``torch.nn.init`` and layer defaults, and with Keras 3's initializers
and layer defaults on the JAX backend.

For every scheme jaxinit shares with torch or Keras, both draw a large sample (torch seeded with
``torch.manual_seed``, Keras with an int seed or ``keras.utils.set_random_seed``, jaxinit with a
fixed key), torch's layouts are converted to JAX's (Linear ``(out, in)`` -> ``(in, out)``, conv
OIHW -> HWIO), and the two samples are compared three ways:

* **Moments.** ``|mean_a - mean_b| <= Z * sigma * sqrt(1/n_a + 1/n_b)`` and
  ``|std_a - std_b| <= Z * sigma * sqrt((kurtosis - 1)/4 * (1/n_a + 1/n_b))``: `stats.Z` = 6
  standard errors of the *difference*, with sigma and kurtosis those of the exact law (read from
  the framework's formula). A false failure is a ~2e-9 event per check.
* **Bounds.** Every value of both samples lies in the law's exact support (up to float32
  rounding), and uniform samples come within ``25/n`` of both ends, so neither bound is smaller
  than it should be (the chance of missing is below e^-25).
* **Two-sample Kolmogorov-Smirnov** (``scipy.stats.ks_2samp``), required ``p > 1e-4``
  (`stats.KS_MIN_PVALUE`). The p-value is the probability, were both samples drawn from one law,
  of a KS distance at least as large as the one observed. The seeds are fixed, so it is a fixed
  number: a test always passes or always fails; a correct pair of samplers fails at a given seed
  with probability 1e-4. With about 2^17 values a side the test detects a CDF difference of
  about 0.009 -- e.g. a ~4% error in a normal's std; the moment checks catch ~1.5%.

Where no sampling is involved (eye, dirac, constant, Keras Identity, LSTM biases), the arrays
must be equal. Keras is imported with ``KERAS_BACKEND=jax``; if it was already imported with
another backend, this module fails at import with a message saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import scipy.stats
import stats
import torch

import jaxinit

pytestmark = pytest.mark.slow  # torch and keras in the same process: left out of the fast lane

KEY = jax.random.key(2024)
C = stats.TRUNC_STD_2
DENSE_T = (512, 256)  # torch Linear weight (out, in): fan_in 256, fan_out 512
CONV_T = (64, 32, 3, 3)  # torch Conv2d weight OIHW: fan_in 288, fan_out 576
DENSE = (256, 512)  # the same, in JAX layout
CONV = (3, 3, 32, 64)


def _keras_on_jax() -> Any:
    """Keras 3 on the JAX backend, or a clear error if it was imported with another one."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = "jax"  # read once, when keras is first imported
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(
            f"tests/test_parity.py needs Keras on the JAX backend, but keras was already "
            f"imported with backend {backend!r}: set KERAS_BACKEND=jax before anything imports "
            "keras, or run this module in its own process."
        )
    return keras


keras = _keras_on_jax()


# -- laws and checks -------------------------------------------------------------------------------
def sym(bound: float) -> Any:
    return scipy.stats.uniform(-bound, 2 * bound)


def norm(std: float, mean: float = 0.0) -> Any:
    return scipy.stats.norm(mean, std)


def tnorm(sigma: float, lo: float = -2.0, hi: float = 2.0, mean: float = 0.0) -> Any:
    """N(mean, sigma^2) truncated to mean + (lo, hi) * sigma."""
    return scipy.stats.truncnorm(lo, hi, loc=mean, scale=sigma)


# -- PyTorch ---------------------------------------------------------------------------------------
def to_jax(w: torch.Tensor) -> np.ndarray:
    """A torch weight in JAX layout: (out, in) -> (in, out); (out, in, *k) -> (*k, in, out)."""
    w = w.detach()
    return w.permute(*range(2, w.ndim), 1, 0).numpy()


def _torch(fn: Callable[..., Any], shape: tuple[int, ...], seed: int = 0, **kw: Any) -> np.ndarray:
    torch.manual_seed(seed)
    w = torch.empty(shape)
    fn(w, **kw)
    return to_jax(w)


def _gain(nonlinearity: str, param: float | None = None) -> float:
    return torch.nn.init.calculate_gain(nonlinearity, param)


@dataclasses.dataclass(frozen=True)
class Pair:
    """Their sampler (JAX layout), our initializer on `shape`, and the law both follow."""

    id: str
    theirs: Callable[[], Any]
    ours: Any
    shape: tuple[int, ...]
    law: Any


_T = torch.nn.init
TORCH_PAIRS = [
    Pair("xavier_uniform", lambda: _torch(_T.xavier_uniform_, DENSE_T),
         jaxinit.glorot_uniform(), DENSE, sym(math.sqrt(6 / 768))),
    Pair("xavier_uniform_tanh_conv",
         lambda: _torch(_T.xavier_uniform_, CONV_T, gain=_gain("tanh")),
         jaxinit.variance_scaling(_gain("tanh") ** 2, "fan_avg", "uniform"), CONV,
         sym(5 / 3 * math.sqrt(6 / 864))),
    Pair("xavier_normal", lambda: _torch(_T.xavier_normal_, DENSE_T),
         jaxinit.variance_scaling(1.0, "fan_avg", "normal"), DENSE, norm(math.sqrt(2 / 768))),
    Pair("xavier_normal_gain2_conv", lambda: _torch(_T.xavier_normal_, CONV_T, gain=2.0),
         jaxinit.variance_scaling(4.0, "fan_avg", "normal"), CONV, norm(2 * math.sqrt(2 / 864))),
    Pair("kaiming_uniform", lambda: _torch(_T.kaiming_uniform_, DENSE_T),
         jaxinit.he_uniform(), DENSE, sym(math.sqrt(6 / 256))),
    Pair("kaiming_uniform_leaky_fan_in_conv",
         lambda: _torch(_T.kaiming_uniform_, CONV_T, a=0.2),
         jaxinit.he_uniform(nonlinearity="leaky_relu", negative_slope=0.2), CONV,
         sym(math.sqrt(3 * 2 / (1 + 0.04) / 288))),
    Pair("kaiming_uniform_leaky_fan_out_conv",
         lambda: _torch(_T.kaiming_uniform_, CONV_T, a=0.2, mode="fan_out"),
         jaxinit.variance_scaling(_gain("leaky_relu", 0.2) ** 2, "fan_out", "uniform"), CONV,
         sym(math.sqrt(3 * 2 / (1 + 0.04) / 576))),
    Pair("kaiming_uniform_sqrt5_is_torch_linear",
         lambda: _torch(_T.kaiming_uniform_, DENSE_T, a=math.sqrt(5)),
         jaxinit.get("torch.linear.kernel"), DENSE, sym(1 / 16)),
    Pair("kaiming_normal_relu", lambda: _torch(_T.kaiming_normal_, DENSE_T, nonlinearity="relu"),
         jaxinit.variance_scaling(2.0, "fan_in", "normal"), DENSE, norm(math.sqrt(2 / 256))),
    Pair("kaiming_normal_leaky_fan_out_conv",
         lambda: _torch(_T.kaiming_normal_, CONV_T, a=0.1, mode="fan_out"),
         jaxinit.variance_scaling(_gain("leaky_relu", 0.1) ** 2, "fan_out", "normal"), CONV,
         norm(math.sqrt(2 / (1 + 0.01) / 576))),
    Pair("trunc_normal", lambda: _torch(_T.trunc_normal_, DENSE_T),
         jaxinit.truncated_normal(1.0), DENSE, tnorm(1.0)),
    Pair("trunc_normal_absolute_bounds",
         lambda: _torch(_T.trunc_normal_, DENSE_T, mean=0.5, std=0.2, a=0.2, b=1.5),
         jaxinit.truncated_normal(0.2, lower=0.2, upper=1.5, mean=0.5, absolute_bounds=True),
         DENSE, tnorm(0.2, (0.2 - 0.5) / 0.2, (1.5 - 0.5) / 0.2, mean=0.5)),
    Pair("trunc_normal_small_std_is_untruncated",  # torch's bounds are values: +-2 is 100 std
         lambda: _torch(_T.trunc_normal_, DENSE_T, std=0.02),
         jaxinit.truncated_normal(0.02, lower=-2.0, upper=2.0, absolute_bounds=True), DENSE,
         tnorm(0.02, -100.0, 100.0)),
    Pair("uniform", lambda: _torch(_T.uniform_, DENSE_T, a=-0.3, b=0.7),
         jaxinit.uniform_range(-0.3, 0.7), DENSE, scipy.stats.uniform(-0.3, 1.0)),
    Pair("normal", lambda: _torch(_T.normal_, DENSE_T, mean=0.5, std=2.0),
         jaxinit.normal(2.0, mean=0.5), DENSE, norm(2.0, 0.5)),
    Pair("orthogonal_entries", lambda: _torch(_T.orthogonal_, DENSE_T),
         jaxinit.orthogonal(), DENSE, norm(1 / math.sqrt(512))),  # entries ~ N(0, 1/512)
]  # fmt: skip


def _torch_module(make: Callable[[], torch.nn.Module], name: str) -> np.ndarray:
    torch.manual_seed(0)
    return make().get_parameter(name).detach()


def _layer(make: Callable[[], torch.nn.Module], name: str) -> Callable[[], np.ndarray]:
    """A torch layer's default-initialized parameter `name`, in JAX layout."""

    def draw() -> np.ndarray:
        w = _torch_module(make, name)
        return to_jax(w) if w.ndim > 1 else w.numpy()

    return draw


_LINEAR = lambda: torch.nn.Linear(128, 4096)  # weight 524288 values, bias 4096
_CONV = lambda: torch.nn.Conv2d(32, 256, 3)  # fan_in 288
_LSTM = lambda: torch.nn.LSTM(64, 256)  # every weight and bias U(+-1/16)
TORCH_LAYER_PAIRS = [
    Pair("Linear.weight", _layer(_LINEAR, "weight"), jaxinit.get("torch.linear.kernel"),
         (128, 4096), sym(1 / math.sqrt(128))),
    Pair("Linear.bias", _layer(_LINEAR, "bias"), jaxinit.get("torch.linear.bias", fan_in=128),
         (4096,), sym(1 / math.sqrt(128))),
    Pair("Conv2d.weight", _layer(_CONV, "weight"), jaxinit.get("torch.conv.kernel"),
         (3, 3, 32, 256), sym(1 / math.sqrt(288))),
    Pair("Conv2d.bias", _layer(_CONV, "bias"), jaxinit.get("torch.conv.bias", fan_in=288),
         (256,), sym(1 / math.sqrt(288))),
    Pair("Embedding.weight", lambda: _torch_module(lambda: torch.nn.Embedding(1024, 256),
                                                   "weight").numpy(),
         jaxinit.get("torch.embedding.embedding"), (1024, 256), norm(1.0)),
    Pair("LSTM.weight_ih", _layer(_LSTM, "weight_ih_l0"),
         jaxinit.get("torch.rnn.kernel", hidden_size=256), (64, 1024), sym(1 / 16)),
    Pair("LSTM.weight_hh", _layer(_LSTM, "weight_hh_l0"),
         jaxinit.get("torch.rnn.recurrent_kernel", hidden_size=256), (256, 1024), sym(1 / 16)),
    Pair("LSTM.bias_ih", _layer(_LSTM, "bias_ih_l0"),
         jaxinit.get("torch.rnn.bias", hidden_size=256), (1024,), sym(1 / 16)),
    Pair("LSTM.bias_hh", _layer(_LSTM, "bias_hh_l0"),
         jaxinit.get("torch.rnn.bias", hidden_size=256), (1024,), sym(1 / 16)),
]  # fmt: skip


# -- Keras 3 ---------------------------------------------------------------------------------------
def _keras(cls: Any, shape: tuple[int, ...], **kw: Any) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(cls(seed=1, **kw)(shape=shape))


_K = keras.initializers
KERAS_PAIRS = [
    Pair("GlorotUniform", _keras(_K.GlorotUniform, DENSE), jaxinit.glorot_uniform(), DENSE,
         sym(math.sqrt(6 / 768))),
    Pair("GlorotNormal", _keras(_K.GlorotNormal, DENSE), jaxinit.glorot_normal(), DENSE,
         tnorm(math.sqrt(2 / 768) / C)),
    Pair("HeUniform_conv", _keras(_K.HeUniform, CONV), jaxinit.he_uniform(), CONV,
         sym(math.sqrt(6 / 288))),
    Pair("HeNormal_conv", _keras(_K.HeNormal, CONV), jaxinit.he_normal(), CONV,
         tnorm(math.sqrt(2 / 288) / C)),
    Pair("LecunUniform", _keras(_K.LecunUniform, DENSE), jaxinit.lecun_uniform(), DENSE,
         sym(math.sqrt(3 / 256))),
    Pair("LecunNormal", _keras(_K.LecunNormal, DENSE), jaxinit.lecun_normal(), DENSE,
         tnorm(math.sqrt(1 / 256) / C)),
    Pair("VarianceScaling_fan_out_truncated",
         _keras(_K.VarianceScaling, DENSE, scale=2.0, mode="fan_out",
                distribution="truncated_normal"),
         jaxinit.variance_scaling(2.0, "fan_out", "truncated_normal"), DENSE,
         tnorm(math.sqrt(2 / 512) / C)),
    Pair("VarianceScaling_normal_means_truncated",
         _keras(_K.VarianceScaling, CONV, distribution="normal"),
         jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal"), CONV,
         tnorm(math.sqrt(1 / 288) / C)),
    Pair("VarianceScaling_untruncated",
         _keras(_K.VarianceScaling, DENSE, scale=1.5, distribution="untruncated_normal"),
         jaxinit.variance_scaling(1.5, "fan_in", "normal"), DENSE, norm(math.sqrt(1.5 / 256))),
    Pair("VarianceScaling_fan_avg_uniform",
         _keras(_K.VarianceScaling, CONV, scale=0.5, mode="fan_avg", distribution="uniform"),
         jaxinit.variance_scaling(0.5, "fan_avg", "uniform"), CONV, sym(math.sqrt(1.5 / 432))),
    Pair("RandomNormal", _keras(_K.RandomNormal, DENSE, mean=0.1, stddev=0.05),
         jaxinit.normal(0.05, mean=0.1), DENSE, norm(0.05, 0.1)),
    Pair("RandomUniform", _keras(_K.RandomUniform, DENSE), jaxinit.uniform_range(-0.05, 0.05),
         DENSE, sym(0.05)),
    Pair("TruncatedNormal", _keras(_K.TruncatedNormal, DENSE, stddev=0.05),
         jaxinit.truncated_normal(0.05), DENSE, tnorm(0.05)),
    Pair("Orthogonal_entries", _keras(_K.Orthogonal, (256, 128), gain=2.0),
         jaxinit.orthogonal(2.0), (256, 128), norm(2 / math.sqrt(256))),
]  # fmt: skip


@functools.cache
def _keras_weights(make: Callable[[], Any], input_shape: tuple) -> dict[str, np.ndarray]:
    """The default-initialized weights of a Keras layer built once, by their last path part."""
    keras.utils.set_random_seed(3)
    layer = make()
    layer.build(input_shape)
    return {v.path.rsplit("/", 1)[-1]: np.asarray(v.value) for v in layer.weights}


def _keras_layer(make: Callable[[], Any], input_shape: tuple, name: str) -> Callable[[], Any]:
    return lambda: _keras_weights(make, input_shape)[name]


_DENSE_K = (lambda: keras.layers.Dense(512), (None, 256))
_EMBED_K = (lambda: keras.layers.Embedding(1024, 128), (None,))
_LSTM_K = (lambda: keras.layers.LSTM(64), (None, 5, 64))
KERAS_LAYER_PAIRS = [
    Pair("Dense.kernel", _keras_layer(*_DENSE_K, "kernel"), jaxinit.get("keras.dense.kernel"),
         DENSE, sym(math.sqrt(6 / 768))),
    Pair("Embedding.embeddings", _keras_layer(*_EMBED_K, "embeddings"),
         jaxinit.get("keras.embedding.embeddings"), (1024, 128), sym(0.05)),
    Pair("LSTM.kernel", _keras_layer(*_LSTM_K, "kernel"), jaxinit.get("keras.lstm.kernel"),
         (64, 256), sym(math.sqrt(6 / 320))),
    Pair("LSTM.recurrent_kernel_entries", _keras_layer(*_LSTM_K, "recurrent_kernel"),
         jaxinit.get("keras.lstm.recurrent_kernel"), (64, 256), norm(1 / math.sqrt(256))),
]  # fmt: skip

PAIRS = TORCH_PAIRS + TORCH_LAYER_PAIRS + KERAS_PAIRS + KERAS_LAYER_PAIRS


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.id)
def test_same_law(pair):
    theirs = np.asarray(pair.theirs())
    ours = np.asarray(pair.ours(KEY, pair.shape))
    assert theirs.shape == ours.shape == pair.shape
    stats.assert_same_law(ours, theirs, pair.law, support=True)


# -- orthogonality, sparsity and the deterministic initializers -----------------------------------
def _gram_error(w: Any, gain: float) -> float:
    """max |W W^T - gain^2 I| (rows orthonormal) or |W^T W - gain^2 I| (columns)."""
    w = np.asarray(w, np.float64)
    w = w if w.shape[0] <= w.shape[1] else w.T
    return float(np.abs(w @ w.T - gain**2 * np.eye(w.shape[0])).max())


def test_orthogonal_is_orthogonal_in_both():
    assert _gram_error(_torch(_T.orthogonal_, DENSE_T), 1.0) < 1e-5
    assert _gram_error(jaxinit.orthogonal()(KEY, DENSE), 1.0) < 1e-5
    for pair in (KERAS_PAIRS[-1], KERAS_LAYER_PAIRS[-1]):  # Orthogonal(gain=2), LSTM recurrent
        gain = 2.0 if pair is KERAS_PAIRS[-1] else 1.0
        assert _gram_error(pair.theirs(), gain) < 4e-5
        assert _gram_error(pair.ours(KEY, pair.shape), gain) < 4e-5


def test_sparse_zeros_per_input_unit_and_values():
    # torch's (out, in) weight: ceil(s * out) zeros in each input column. The same layer's
    # (in, out) kernel here: the same count in each input row.
    (fan_in, fan_out), sparsity, std = (400, 512), 0.25, 0.05  # 0.25 * 512 = 128 exactly
    torch.manual_seed(0)
    w = torch.empty(fan_out, fan_in)
    _T.sparse_(w, sparsity, std)
    theirs = to_jax(w)  # (in, out)
    ours = np.asarray(jaxinit.sparse(sparsity, std)(KEY, (fan_in, fan_out)))
    for x in (theirs, ours):
        assert x.shape == (fan_in, fan_out)
        assert ((x == 0).sum(axis=1) == 128).all()
    stats.assert_same_law(ours[ours != 0], theirs[theirs != 0], norm(std), support=True)


def test_eye_is_identity():
    w = torch.empty(300, 200)
    _T.eye_(w)
    np.testing.assert_array_equal(to_jax(w), np.asarray(jaxinit.identity()(KEY, (200, 300))))
    keras_eye = np.asarray(_K.Identity(gain=3.0)(shape=(200, 300)))
    np.testing.assert_array_equal(keras_eye, np.asarray(jaxinit.identity(3.0)(KEY, (200, 300))))


@pytest.mark.parametrize(
    ("shape", "groups"), [((8, 4, 3, 3), 2), ((6, 6, 5), 1), ((4, 2, 3, 3, 3), 4)]
)
def test_dirac_matches_for_odd_kernels(shape, groups):
    w = torch.empty(shape)
    _T.dirac_(w, groups)
    ours = jaxinit.dirac(groups=groups)(KEY, to_jax(w).shape)
    np.testing.assert_array_equal(to_jax(w), np.asarray(ours))


def test_dirac_centre_differs_for_even_kernels_by_one_tap():
    """torch puts the tap at k//2, jaxinit at (k-1)//2 (XLA 'SAME''s identity tap)."""
    w = torch.empty(4, 4, 4, 4)
    _T.dirac_(w)
    ours = np.asarray(jaxinit.dirac()(KEY, (4, 4, 4, 4)))
    np.testing.assert_array_equal(to_jax(w), np.roll(ours, (1, 1), axis=(0, 1)))


def test_constant_is_exact():
    w = torch.empty(64, 32)
    _T.constant_(w, 0.3)
    np.testing.assert_array_equal(to_jax(w), np.asarray(jaxinit.constant(0.3)(KEY, (32, 64))))


def test_keras_layer_biases_are_exact():
    dense_bias = _keras_layer(*_DENSE_K, "bias")()
    np.testing.assert_array_equal(
        dense_bias, np.asarray(jaxinit.get("keras.dense.bias")(KEY, (512,)))
    )
    lstm_bias = _keras_layer(*_LSTM_K, "bias")()  # unit_forget_bias: [0, 1, 0, 0] * 64
    np.testing.assert_array_equal(
        lstm_bias, np.asarray(jaxinit.get("keras.lstm.bias")(KEY, (256,)))
    )
    assert lstm_bias[64:128].min() == 1.0 and lstm_bias.sum() == 64.0
