"""`framework_rules("torch" | "keras")` reproduces PyTorch's and Keras 3's own init, layer by layer.

For every built-in layer listed below, the real ``torch.nn`` / ``keras.layers`` layer is built
once per seed of `SEEDS` and its parameters are read in JAX layout; the equivalent NNX layer is
re-initialized by `jaxinit.flax.framework_rules`. jaxinit's seeds are pooled the same way
cheaply: one abstract model holds a copy of every NNX layer per seed and one ``reinit`` fills it,
each copy under its own path, hence its own key. The two pooled samples are compared with each
other and with the law read from the framework's source (`stats.assert_same_law`: moments
within `stats.Z` standard errors of their difference, support, two-sample KS; `stats.assert_ks`
of the framework's sample against the law). Constant parameters must be equal.

The laws here are written from torch's and Keras's source, not from jaxinit:

* torch ``Linear``/``Conv*``: ``kaiming_uniform_(a=sqrt(5))`` is U(+-1/sqrt(fan_in)) with
  ``fan_in = in / groups * prod(kernel)`` of the ``(out, in / groups, *k)`` weight, and the bias
  takes the same bound (``_ConvNd.reset_parameters``); a ``ConvTranspose`` weight is
  ``(in, out / groups, *k)``, so its fan_in counts the outputs.
* Keras ``compute_fans``: a conv kernel ``(*k, in / groups, out)`` has fan_in
  ``prod(k) * in / groups`` and fan_out ``prod(k) * out`` (not divided by groups); since
  Keras 3.15 an ``EinsumDense`` passes its einsum's input and output axes, where a weight axis
  that is also an output axis (a batch label) counts as an output axis.
* The orthogonal kernels of Keras's ``LSTM``/``GRU``: each row of a Haar ``(h, g h)`` matrix with
  orthonormal rows is uniform on the unit sphere of R^(g h), so an entry ``x`` has
  ``(x + 1) / 2 ~ Beta((n - 1) / 2, (n - 1) / 2)`` with ``n = g h``.
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
from flax import nnx

import jaxinit.flax as jf

pytestmark = pytest.mark.slow  # statistical, against torch's and Keras's own init

SEEDS = range(8)


def _keras_on_jax() -> Any:
    """Keras 3 on the JAX backend, or a clear error if it was imported with another one."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "jax"  # read once, when keras is first imported
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError("this module needs keras imported with KERAS_BACKEND=jax")
    return keras


keras = _keras_on_jax()
#: jaxinit reproduces the EinsumDense fans of Keras 3.15 and later (einsum axes, not the raw shape).


def sym(bound: float) -> Any:
    return scipy.stats.uniform(-bound, 2 * bound)


def sphere(n: int) -> Any:
    """The law of one coordinate of a uniform unit vector of R^n (an orthogonal row's entry)."""
    a = (n - 1) / 2
    return scipy.stats.beta(a, a, loc=-1.0, scale=2.0)


def glorot(fan_in: int, fan_out: int) -> Any:
    return sym(math.sqrt(6 / (fan_in + fan_out)))


@dataclasses.dataclass(frozen=True)
class Case:
    """The framework's parameter (`layer`, `name`, `view` to JAX layout), jaxinit's (`path` in
    the NNX model of `NNX_LAYERS`) and the law both follow (None: a constant, equal)."""

    id: str
    layer: str
    name: str
    path: str
    law: Any
    view: Callable[[np.ndarray], np.ndarray] = lambda w: w


# -- PyTorch ---------------------------------------------------------------------------------
def _hwio(w: np.ndarray) -> np.ndarray:
    """torch's (out, in, *k) -> JAX's (*k, in, out); a transposed conv's (in, out, *k) -> (*k,
    in, out) too."""
    return np.moveaxis(w, (0, 1), (-1, -2)) if w.ndim > 2 else w.T


def _transposed(w: np.ndarray) -> np.ndarray:
    return np.moveaxis(w, (0, 1), (-2, -1))


E, HEADS, H, IN = 64, 4, 64, 32  # attention width and heads; recurrent hidden and input sizes
TORCH_LAYERS: dict[str, Callable[[], torch.nn.Module]] = {
    "linear": lambda: torch.nn.Linear(128, 512),
    "conv1d": lambda: torch.nn.Conv1d(16, 128, 5, groups=4),
    "conv2d": lambda: torch.nn.Conv2d(16, 128, 3, groups=4),
    "conv3d": lambda: torch.nn.Conv3d(16, 64, 3, groups=2),
    "conv_transpose": lambda: torch.nn.ConvTranspose2d(16, 32, 3),
    "embedding": lambda: torch.nn.Embedding(512, 64),
    "lstm": lambda: torch.nn.LSTM(IN, H),
    "gru": lambda: torch.nn.GRU(IN, H),
    "attention": lambda: torch.nn.MultiheadAttention(E, HEADS),
    "layer_norm": lambda: torch.nn.LayerNorm(64),
    "batch_norm": lambda: torch.nn.BatchNorm1d(64),
}


def _torch_nnx(r: nnx.Rngs) -> dict[str, nnx.Module]:
    return {
        "linear": nnx.Linear(128, 512, rngs=r),
        "conv1d": nnx.Conv(16, 128, (5,), feature_group_count=4, rngs=r),
        "conv2d": nnx.Conv(16, 128, (3, 3), feature_group_count=4, rngs=r),
        "conv3d": nnx.Conv(16, 64, (3, 3, 3), feature_group_count=2, rngs=r),
        "conv_transpose": nnx.ConvTranspose(16, 32, (3, 3), rngs=r),
        "embedding": nnx.Embed(512, 64, rngs=r),
        "lstm": nnx.LSTMCell(IN, H, rngs=r),
        "lstm_fused": nnx.OptimizedLSTMCell(IN, H, rngs=r),
        "gru": nnx.GRUCell(IN, H, rngs=r),
        "attention": nnx.MultiHeadAttention(HEADS, E, decode=False, rngs=r),
        "layer_norm": nnx.LayerNorm(64, rngs=r),
        "batch_norm": nnx.BatchNorm(64, rngs=r),
    }


def _heads(w: np.ndarray) -> np.ndarray:
    return w.reshape(w.shape[0], HEADS, -1)


_RNN = sym(1 / math.sqrt(H))  # every weight and bias of nn.LSTM / nn.GRU
TORCH_CASES = [
    Case("Linear.weight", "linear", "weight", "linear/kernel", sym(1 / math.sqrt(128)), _hwio),
    Case("Linear.bias", "linear", "bias", "linear/bias", sym(1 / math.sqrt(128))),
    # groups=4: fan_in = 16 / 4 * 5.
    Case("Conv1d_groups.weight", "conv1d", "weight", "conv1d/kernel", sym(1 / math.sqrt(20)),
         _hwio),
    Case("Conv1d_groups.bias", "conv1d", "bias", "conv1d/bias", sym(1 / math.sqrt(20))),
    Case("Conv2d_groups.weight", "conv2d", "weight", "conv2d/kernel", sym(1 / 6), _hwio),
    Case("Conv2d_groups.bias", "conv2d", "bias", "conv2d/bias", sym(1 / 6)),
    Case("Conv3d_groups.weight", "conv3d", "weight", "conv3d/kernel", sym(1 / math.sqrt(216)),
         _hwio),
    Case("Conv3d_groups.bias", "conv3d", "bias", "conv3d/bias", sym(1 / math.sqrt(216))),
    # ConvTranspose2d(16, 32, 3): weight (in=16, out=32, 3, 3), fan_in = 32 * 9.
    Case("ConvTranspose2d.weight", "conv_transpose", "weight", "conv_transpose/kernel",
         sym(1 / math.sqrt(288)), _transposed),
    Case("ConvTranspose2d.bias", "conv_transpose", "bias", "conv_transpose/bias",
         sym(1 / math.sqrt(288))),
    Case("Embedding.weight", "embedding", "weight", "embedding/embedding", scipy.stats.norm()),
    # nn.LSTM's gates are stacked i, f, g, o along the rows; nnx.LSTMCell has one Linear per
    # gate (ii, ...: input, no bias; hi, ...: recurrent, with the bias), OptimizedLSTMCell
    # the fused (in, 4h) and (h, 4h) kernels.
    Case("LSTM.weight_ih_gate", "lstm", "weight_ih_l0", "lstm/if_/kernel", _RNN,
         lambda w: w[H : 2 * H].T),
    Case("LSTM.weight_hh_gate", "lstm", "weight_hh_l0", "lstm/hg/kernel", _RNN,
         lambda w: w[2 * H : 3 * H].T),
    Case("LSTM.bias_hh_gate", "lstm", "bias_hh_l0", "lstm/ho/bias", _RNN, lambda b: b[3 * H :]),
    Case("LSTM.weight_ih", "lstm", "weight_ih_l0", "lstm_fused/dense_i/kernel", _RNN, _hwio),
    Case("LSTM.weight_hh", "lstm", "weight_hh_l0", "lstm_fused/dense_h/kernel", _RNN, _hwio),
    Case("LSTM.bias_ih", "lstm", "bias_ih_l0", "lstm_fused/dense_h/bias", _RNN),
    Case("LSTM.bias_hh", "lstm", "bias_hh_l0", "lstm_fused/dense_h/bias", _RNN),
    # nn.GRU's gates r, z, n, as nnx.GRUCell's fused kernels; its one bias is the input's.
    Case("GRU.weight_ih", "gru", "weight_ih_l0", "gru/dense_i/kernel", _RNN, _hwio),
    Case("GRU.weight_hh", "gru", "weight_hh_l0", "gru/dense_h/kernel", _RNN, _hwio),
    Case("GRU.bias_ih", "gru", "bias_ih_l0", "gru/dense_i/bias", _RNN),
    # xavier_uniform on the packed (3E, E) in_proj_weight: bound sqrt(6 / (E + 3E)); the output
    # projection is a Linear(E, E); every bias is zeros.
    *(Case(f"MultiheadAttention.in_proj_{sub}", "attention", "in_proj_weight",
           f"attention/{sub}/kernel", sym(math.sqrt(6 / (4 * E))),
           lambda w, i=i: _heads(w[i * E : (i + 1) * E].T))
      for i, sub in enumerate(("query", "key", "value"))),
    Case("MultiheadAttention.out_proj", "attention", "out_proj.weight", "attention/out/kernel",
         sym(1 / math.sqrt(E)), lambda w: w.T.reshape(HEADS, -1, E)),
    Case("MultiheadAttention.in_proj_bias", "attention", "in_proj_bias", "attention/key/bias",
         None, lambda b: b[E : 2 * E].reshape(HEADS, -1)),
    Case("MultiheadAttention.out_proj_bias", "attention", "out_proj.bias", "attention/out/bias",
         None),
    Case("LayerNorm.weight", "layer_norm", "weight", "layer_norm/scale", None),
    Case("LayerNorm.bias", "layer_norm", "bias", "layer_norm/bias", None),
    Case("BatchNorm1d.weight", "batch_norm", "weight", "batch_norm/scale", None),
    Case("BatchNorm1d.bias", "batch_norm", "bias", "batch_norm/bias", None),
]  # fmt: skip


@functools.cache
def _torch_param(layer: str, name: str, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    return TORCH_LAYERS[layer]().get_parameter(name).detach().numpy()


# -- Keras 3 ---------------------------------------------------------------------------------
L = keras.layers
KERAS_LAYERS: dict[str, tuple[Callable[[], Any], tuple[tuple[int | None, ...], ...]]] = {
    "dense": (lambda: L.Dense(512), ((None, 128),)),
    "einsum": (lambda: L.EinsumDense("abc,cde->abde", (None, 4, 16), bias_axes="de"),
               ((None, 10, 64),)),
    # 'b' is in the input, the kernel and the output: Keras counts it as an output axis.
    "einsum_batch": (lambda: L.EinsumDense("abc,bcd->abd", (8, 16)), ((None, 8, 32),)),
    "conv1d": (lambda: L.Conv1D(128, 5, groups=4), ((None, 20, 16),)),
    "conv3d": (lambda: L.Conv3D(64, 3, groups=2), ((None, 6, 6, 6, 16),)),
    "embedding": (lambda: L.Embedding(512, 64), ((None,),)),
    "lstm": (lambda: L.LSTM(H), ((None, 5, IN),)),
    "gru": (lambda: L.GRU(H), ((None, 5, IN),)),
    "attention": (lambda: L.MultiHeadAttention(HEADS, E // HEADS), ((None, 10, E),) * 2),
    "layer_norm": (lambda: L.LayerNormalization(), ((None, 64),)),
    "batch_norm": (lambda: L.BatchNormalization(), ((None, 64),)),
}  # fmt: skip


def _keras_nnx(r: nnx.Rngs) -> dict[str, nnx.Module]:
    return {
        "dense": nnx.Linear(128, 512, rngs=r),
        "einsum": nnx.Einsum("btd,dnh->btnh", (64, 4, 16), (4, 16), rngs=r),
        "einsum_batch": nnx.Einsum("abc,bcd->abd", (8, 32, 16), rngs=r),
        "conv1d": nnx.Conv(16, 128, (5,), feature_group_count=4, rngs=r),
        "conv3d": nnx.Conv(16, 64, (3, 3, 3), feature_group_count=2, rngs=r),
        "embedding": nnx.Embed(512, 64, rngs=r),
        "lstm": nnx.LSTMCell(IN, H, rngs=r),
        "lstm_fused": nnx.OptimizedLSTMCell(IN, H, rngs=r),
        "gru": nnx.GRUCell(IN, H, rngs=r),
        "attention": nnx.MultiHeadAttention(HEADS, E, decode=False, rngs=r),
        "layer_norm": nnx.LayerNorm(64, rngs=r),
        "batch_norm": nnx.BatchNorm(64, rngs=r),
    }


KERAS_CASES = [
    Case("Dense.kernel", "dense", "kernel", "dense/kernel", glorot(128, 512)),
    Case("Dense.bias", "dense", "bias", "dense/bias", None),
    # kernel (64, 4, 16) of "abc,cde->abde": fan_in 64, fan_out 4 * 16.
    Case("EinsumDense.kernel", "einsum", "kernel", "einsum/kernel", glorot(64, 64)),
    Case("EinsumDense.bias", "einsum", "bias", "einsum/bias", None),
    # kernel (8, 32, 16) of "abc,bcd->abd": fan_in 32, fan_out 8 * 16.
    Case("EinsumDense_batch.kernel", "einsum_batch", "kernel", "einsum_batch/kernel",
         glorot(32, 128)),
    # kernel (5, 4, 128): fan_in 5 * 4, fan_out 5 * 128 (groups do not divide it).
    Case("Conv1D_groups.kernel", "conv1d", "kernel", "conv1d/kernel", glorot(20, 640)),
    Case("Conv1D_groups.bias", "conv1d", "bias", "conv1d/bias", None),
    Case("Conv3D_groups.kernel", "conv3d", "kernel", "conv3d/kernel", glorot(216, 27 * 64)),
    Case("Embedding.embeddings", "embedding", "embeddings", "embedding/embedding", sym(0.05)),
    # LSTM: kernel (in, 4h) glorot, recurrent kernel (h, 4h) orthogonal, bias [0, 1, 0, 0] * h
    # (unit_forget_bias), gates i, f, c, o as OptimizedLSTMCell's i, f, g, o.
    Case("LSTM.kernel", "lstm", "lstm_cell/kernel", "lstm_fused/dense_i/kernel",
         glorot(IN, 4 * H)),
    Case("LSTM.recurrent_kernel", "lstm", "lstm_cell/recurrent_kernel",
         "lstm_fused/dense_h/kernel", sphere(4 * H)),
    Case("LSTM.bias", "lstm", "lstm_cell/bias", "lstm_fused/dense_h/bias", None),
    # An unfused nnx.LSTMCell gate: a block of the fused kernels (its forget bias: ones).
    Case("LSTM.kernel_gate", "lstm", "lstm_cell/kernel", "lstm/ig/kernel", glorot(IN, 4 * H),
         lambda w: w[:, 2 * H : 3 * H]),
    Case("LSTM.bias_forget_gate", "lstm", "lstm_cell/bias", "lstm/hf/bias", None,
         lambda b: b[H : 2 * H]),
    Case("LSTM.bias_input_gate", "lstm", "lstm_cell/bias", "lstm/hi/bias", None,
         lambda b: b[:H]),
    # GRU: kernel (in, 3h) glorot, recurrent kernel (h, 3h) orthogonal, biases (2, 3h) zeros.
    Case("GRU.kernel", "gru", "gru_cell/kernel", "gru/dense_i/kernel", glorot(IN, 3 * H)),
    Case("GRU.recurrent_kernel", "gru", "gru_cell/recurrent_kernel", "gru/dense_h/kernel",
         sphere(3 * H)),
    Case("GRU.bias", "gru", "gru_cell/bias", "gru/dense_i/bias", None, lambda b: b[0]),
    # Each EinsumDense of MultiHeadAttention: (64, 4, 16) "abc,cde->abde" and output
    # (4, 16, 64) "abcd,cde->abe": fan_in 64 and fan_out 64 both.
    *(Case(f"MultiHeadAttention.{sub}", "attention", f"{sub}/kernel",
           f"attention/{ours}/kernel", glorot(E, E))
      for sub, ours in (("query", "query"), ("key", "key"), ("value", "value"),
                        ("attention_output", "out"))),
    Case("MultiHeadAttention.key_bias", "attention", "key/bias", "attention/key/bias", None),
    Case("MultiHeadAttention.output_bias", "attention", "attention_output/bias",
         "attention/out/bias", None),
    Case("LayerNormalization.gamma", "layer_norm", "gamma", "layer_norm/scale", None),
    Case("LayerNormalization.beta", "layer_norm", "beta", "layer_norm/bias", None),
    Case("BatchNormalization.gamma", "batch_norm", "gamma", "batch_norm/scale", None),
    Case("BatchNormalization.beta", "batch_norm", "beta", "batch_norm/bias", None),
]  # fmt: skip


@functools.cache
def _keras_params(layer: str, seed: int) -> dict[str, np.ndarray]:
    """The default-initialized weights of a Keras layer, by path below the layer's name."""
    make, shapes = KERAS_LAYERS[layer]
    keras.utils.set_random_seed(seed)
    built = make()
    built.build(*shapes)
    return {v.path.split("/", 1)[1]: np.asarray(v.value) for v in built.weights}


# -- jaxinit ---------------------------------------------------------------------------------
class _Layers(nnx.Module):
    def __init__(self, layers: dict[str, nnx.Module]):
        for name, layer in layers.items():
            setattr(self, name, layer)


NNX_LAYERS = {"torch": _torch_nnx, "keras": _keras_nnx}


@functools.cache
def _ours(framework: str) -> nnx.Module:
    """One copy of the framework's NNX layers per seed, re-initialized by its rules."""
    make = NNX_LAYERS[framework]
    model = nnx.eval_shape(lambda: nnx.List([_Layers(make(nnx.Rngs(0))) for _ in SEEDS]))
    return jf.reinit(model, jax.random.key(0), jf.framework_rules(framework, model))


def _param(model: nnx.Module, path: str) -> np.ndarray:
    state = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    key = tuple(int(p) if p.isdigit() else p for p in path.split("/"))
    return np.asarray(state[key].get_value())


def _samples(framework: str, case: Case) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(the framework's parameter per seed in JAX layout, jaxinit's per copy)."""
    if framework == "torch":
        theirs = [case.view(_torch_param(case.layer, case.name, s)) for s in SEEDS]
    else:
        theirs = [case.view(_keras_params(case.layer, s)[case.name]) for s in SEEDS]
    ours = [_param(_ours(framework), f"{i}/{case.path}") for i in SEEDS]
    return theirs, ours


def _check(framework: str, case: Case) -> None:
    theirs, ours = _samples(framework, case)
    assert theirs[0].shape == ours[0].shape, (theirs[0].shape, ours[0].shape)
    if case.law is None:  # a constant: the same array for every seed and copy
        for a, b in zip(theirs, ours, strict=True):
            np.testing.assert_array_equal(a, b)
        return
    theirs_all, ours_all = np.concatenate(theirs, None), np.concatenate(ours, None)
    stats.assert_ks(theirs_all, case.law, "the framework's")  # the law read from its source
    stats.assert_same_law(ours_all, theirs_all, case.law, support=True)


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_torch_rules_reproduce_torchs_own_init(case):
    _check("torch", case)


@pytest.mark.parametrize("case", KERAS_CASES, ids=lambda c: c.id)
def test_keras_rules_reproduce_keras_own_init(case):
    _check("keras", case)  # the `test` extra requires keras>=3.15, whose fans the rules follow


def _gram_error(w: np.ndarray) -> float:
    """max |W W^T - I| for a wide W (rows orthonormal)."""
    w = np.asarray(w, np.float64)
    return float(np.abs(w @ w.T - np.eye(w.shape[0])).max())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keras_recurrent_kernels_are_orthogonal_over_the_fused_gates(cell):
    path = {"lstm": "lstm_fused/dense_h/kernel", "gru": "gru/dense_h/kernel"}[cell]
    theirs = _keras_params(cell, 0)[f"{cell}_cell/recurrent_kernel"]
    assert _gram_error(theirs) < 4e-5
    assert _gram_error(_param(_ours("keras"), f"0/{path}")) < 4e-5


def test_keras_unfused_lstm_recurrent_gate_has_the_fused_variance_only():
    """Not reproduced: Keras's (h, 4h) orthogonal recurrent kernel couples the four gates; an
    unfused cell's gates are drawn apart, each orthogonal ``(h, h)`` / 2 -- the entries'
    variance ``1/(4h)`` is Keras's, their law is not (kurtosis ``3n/(n+2)`` with ``n = h``,
    not ``4h``)."""
    law = sphere(4 * H)
    theirs = np.concatenate([_keras_params("lstm", s)["lstm_cell/recurrent_kernel"] for s in SEEDS])
    ours = np.concatenate([_param(_ours("keras"), f"{i}/lstm/hf/kernel") for i in SEEDS])
    for x in (theirs[:, H : 2 * H], ours):
        stats.assert_mean(x, 0.0, float(law.std()))
        stats.assert_std(x, float(law.std()), stats.kurtosis(law))
    block = _param(_ours("keras"), "0/lstm/hf/kernel")
    np.testing.assert_allclose(block @ block.T, np.eye(H) / 4, atol=1e-5)
