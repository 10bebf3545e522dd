"""`framework_rules` reproduces each framework's own init, quirks included, on real layers.

Each test builds a layer with the framework's own init (several seeds pooled), re-initializes
the same layer with `jaxinit.flax.framework_rules`, and compares the two samples with each other
and with the law the framework's source gives (stats.assert_same_law: moments within `stats.Z`
standard errors, two-sample KS). The laws are written here from each framework's source, not
from jaxinit: e.g. Flax flattens a LinearGeneral kernel to ``(batch * in, out)`` before calling
its initializer, so batch axes count in fan_in. PyTorch's and Keras's own layers are compared
in tests/test_framework_quirks_torch_keras.py.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import stats
from flax import nnx

import jaxinit.flax as jf

pytestmark = pytest.mark.slow  # statistical, against the frameworks' own init: seconds each

C = stats.TRUNC_STD_2
SEEDS = range(4)


def lecun(fan_in: float):
    """Flax's default kernel law: lecun_normal, truncated at 2 std, variance 1/fan_in."""
    return scipy.stats.truncnorm(-2.0, 2.0, scale=1 / math.sqrt(fan_in) / C)


def sym(bound: float):
    return scipy.stats.uniform(-bound, 2 * bound)


def _param(model: nnx.Module, path: str) -> np.ndarray:
    state = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    key = tuple(int(p) if p.isdigit() else p for p in path.split("/"))
    return np.asarray(state[key].get_value())


def _pooled(factory, framework: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(the framework's own values, jaxinit's) of `path`, pooled over `SEEDS`."""
    own, ours = [], []
    for seed in SEEDS:
        model = factory(nnx.Rngs(seed))
        own.append(_param(model, path).ravel())
        rules = jf.framework_rules(framework, model)
        ours.append(_param(jf.reinit(model, jax.random.key(seed), rules), path).ravel())
    return np.concatenate(own), np.concatenate(ours)


#: (id, NNX layer factory, parameter, Flax's own law of it)
FLAX_LAYERS = [
    # Einsum: the raw kernel shape (64, 4, 16) with the default axes: fan_in = 4 * 64.
    ("einsum", lambda r: nnx.Einsum("btd,dnh->btnh", (64, 4, 16), rngs=r), "kernel", lecun(256)),
    # LinearGeneral with a batch axis of 5: kernel (5, 8, 16); Flax draws (5 * 8, 16), so
    # fan_in = 40.
    ("linear_general_batch", lambda r: nnx.LinearGeneral(8, 16, batch_axis={0: 5}, rngs=r),
     "kernel", lecun(40)),
    # LinearGeneral to two output axes: Flax draws (64, 4 * 8): fan_in = 64.
    ("linear_general_heads", lambda r: nnx.LinearGeneral(64, (4, 8), rngs=r), "kernel",
     lecun(64)),
    # ConvTranspose(transpose_kernel=True): kernel (3, 3, out=32, in=16): fan_in = 9 * 32.
    ("conv_transpose_t", lambda r: nnx.ConvTranspose(
        16, 32, (3, 3), transpose_kernel=True, rngs=r), "kernel", lecun(288)),
    ("conv_transpose", lambda r: nnx.ConvTranspose(16, 32, (3, 3), rngs=r), "kernel", lecun(144)),
    # Grouped conv: kernel (3, 3, 16 / 4, 32): fan_in = 9 * 4.
    ("conv_groups", lambda r: nnx.Conv(16, 32, (3, 3), feature_group_count=4, rngs=r), "kernel",
     lecun(36)),
    ("attention_query", lambda r: nnx.MultiHeadAttention(
        4, 64, decode=False, rngs=r), "query/kernel", lecun(64)),
    ("attention_out", lambda r: nnx.MultiHeadAttention(
        4, 64, decode=False, rngs=r), "out/kernel", lecun(64)),
    # LoRA: lora_a (64, 4) he_uniform: U(+-sqrt(6 / 64)).
    ("lora_a", lambda r: nnx.LoRA(64, 4, 32, rngs=r), "lora_a", sym(math.sqrt(6 / 64))),
    ("lora_linear_a", lambda r: nnx.LoRALinear(64, 32, lora_rank=4, rngs=r), "lora/lora_a",
     sym(math.sqrt(6 / 64))),
]  # fmt: skip


@pytest.mark.parametrize("factory, path, law", [c[1:] for c in FLAX_LAYERS],
                         ids=[c[0] for c in FLAX_LAYERS])  # fmt: skip
def test_flax_rules_reproduce_flax_own_init(factory, path, law):
    own, ours = _pooled(factory, "flax", path)
    stats.assert_ks(own, law)  # Flax follows the law read from its source
    stats.assert_same_law(ours, own, law)


def test_lora_b_is_zeros_for_every_framework_with_lora():
    for framework in ("flax", "torch", "keras"):
        model = nnx.LoRA(64, 4, 32, rngs=nnx.Rngs(0))
        model.lora_b.set_value(model.lora_b.get_value() + 1.0)
        model = jf.reinit(model, jax.random.key(0), jf.framework_rules(framework, model))
        assert not np.asarray(model.lora_b.get_value()).any(), framework


#: (id, linen module, its init input shape, parameter path, Flax's own law of it). Linen
#: parameters do not say which layer made them, so the rules get `layers=linen_layers(...)`.
LINEN_LAYERS = [
    # DenseGeneral with batch_dims=(0,): kernel (5, 8, 16); Flax draws (5 * 8, 16): fan_in 40.
    ("dense_general_batch", lambda: nn.DenseGeneral(16, axis=-1, batch_dims=(0,)), (5, 3, 8),
     "kernel", lecun(40)),
    # DenseGeneral to heads: kernel (64, 4, 8), drawn as (64, 32): fan_in 64.
    ("dense_general_heads", lambda: nn.DenseGeneral((4, 8)), (2, 64), "kernel", lecun(64)),
    # Einsum: the raw kernel (64, 4, 16) with the default axes: fan_in 4 * 64.
    ("einsum", lambda: nn.Einsum((64, 4, 16), "btd,dnh->btnh"), (2, 3, 64), "kernel",
     lecun(256)),
    ("conv_groups", lambda: nn.Conv(32, (3, 3), feature_group_count=4), (1, 8, 8, 16), "kernel",
     lecun(36)),
    # ConvTranspose(transpose_kernel=True): raw kernel (3, 3, 32, 16): fan_in 9 * 32.
    ("conv_transpose_t", lambda: nn.ConvTranspose(32, (3, 3), transpose_kernel=True),
     (1, 8, 8, 16), "kernel", lecun(288)),
    # ConvLocal: raw kernel (8, 8, 9 * 4, 8): Flax's fan_in counts the positions, 64 * 36.
    ("conv_local", lambda: nn.ConvLocal(8, (3, 3), padding="SAME"), (1, 8, 8, 4), "kernel",
     lecun(64 * 36)),
    ("attention_query", lambda: nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=64),
     (1, 5, 64), "query/kernel", lecun(64)),
    ("attention_out", lambda: nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=64),
     (1, 5, 64), "out/kernel", lecun(64)),
    # Embed: variance_scaling(1, "fan_in", "normal", out_axis=0): N(0, 1 / features).
    ("embed", lambda: nn.Embed(1000, 64), None, "embedding",
     scipy.stats.norm(scale=1 / math.sqrt(64))),
]  # fmt: skip


@pytest.mark.parametrize("make, shape, path, law", [c[1:] for c in LINEN_LAYERS],
                         ids=[c[0] for c in LINEN_LAYERS])  # fmt: skip
def test_flax_rules_reproduce_linen_own_init(make, shape, path, law):
    module = make()
    x = jnp.zeros(shape) if shape is not None else jnp.zeros((2, 3), jnp.int32)
    layers = jf.linen_layers(module, x)
    own, ours = [], []
    for seed in SEEDS:
        params = module.init(jax.random.key(seed), x)
        rules = jf.framework_rules("flax", params, layers=layers)
        new = jf.reinit(params, jax.random.key(seed), rules, layers=layers)
        for tree, out in ((params, own), (new, ours)):
            leaf = tree["params"]
            for k in path.split("/"):
                leaf = leaf[k]
            out.append(np.asarray(leaf).ravel())
    own, ours = np.concatenate(own), np.concatenate(ours)
    stats.assert_ks(own, law)  # Flax follows the law read from its source
    stats.assert_same_law(ours, own, law)
