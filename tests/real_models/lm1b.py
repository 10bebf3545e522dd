"""A small linen decoder with the parameter layout of Flax's lm1b example (examples/lm1b).

Written for these tests; it contains no Flax code (Flax is Apache-2.0). It mirrors the
parameters the example's ``TransformerLM`` creates -- names, paths, shapes, layer types and
logical partitioning -- so that jaxinit meets what a user of the example meets. Under
``params/decoder``:

* ``Embed_0/embedding`` ``(vocab, emb)``, logical axes ``('vocab', 'embed')``;
* with learned positions only (``learned_positions=True``; the example's default is a fixed
  sinusoidal table, no parameter): ``posembed_output/pos_embedding`` ``(1, max_len, emb)``;
* ``encoderdecoderblock_<i>``: ``LayerNorm_0`` and ``LayerNorm_1`` (``scale``, ``bias``,
  ``('embed',)``), ``MultiHeadDotProductAttention_0`` with bias-free DenseGeneral ``query``,
  ``key``, ``value`` ``(emb, heads, qkv / heads)`` and ``out`` ``(heads, qkv / heads, emb)``
  kernels whose logical axes are ``('embed', 'kv')`` (two names for 3-D kernels, as in the
  example), and ``MlpBlock_0`` with ``Dense_0`` ``(emb, mlp)`` and ``Dense_1`` ``(mlp, emb)``;
* ``encoderdecoder_norm`` and the ``logitdense`` readout ``(emb, vocab)``.

`LOGICAL_AXIS_RULES` and `MESH_AXES` are the example's default parallelism. `TINY` is tested;
`SIX_LAYERS` (the example's default sizes) is for benchmarks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

#: The mesh axes and logical axis rules of the example's default configuration.
MESH_AXES = ("data", "fsdp", "tensor")
LOGICAL_AXIS_RULES = (
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
)


#: The example's default initializers of Dense kernels and biases.
XAVIER_UNIFORM = nn.initializers.xavier_uniform()
TINY_NORMAL = nn.initializers.normal(stddev=1e-6)


@dataclasses.dataclass(frozen=True)
class Config:
    """The model's hyperparameters (the example's ``TransformerConfig``, decoder-only)."""

    vocab_size: int
    emb_dim: int
    num_heads: int
    num_layers: int
    qkv_dim: int
    mlp_dim: int
    max_len: int
    learned_positions: bool = False
    kernel_init: Callable[..., Any] = XAVIER_UNIFORM
    bias_init: Callable[..., Any] = TINY_NORMAL


#: 2 blocks, d = 48, 4 heads of 8.
TINY = Config(
    vocab_size=128, emb_dim=48, num_heads=4, num_layers=2, qkv_dim=32, mlp_dim=64, max_len=16
)
#: The example's default sizes (6 blocks, d = 512, 8 heads, MLP 2048, 30k vocabulary).
SIX_LAYERS = Config(
    vocab_size=30_000,
    emb_dim=512,
    num_heads=8,
    num_layers=6,
    qkv_dim=512,
    mlp_dim=2048,
    max_len=512,
)


def logical(init: Callable[..., Any], *names: str) -> Callable[..., Any]:
    return nn.with_logical_partitioning(init, names)


def sinusoids(length: int, dim: int) -> jax.Array:
    """A fixed ``(1, length, dim)`` table: sines, then cosines, of geometric frequencies."""
    half = dim // 2
    freq = np.exp(-np.log(1e4) * np.arange(half) / max(half - 1, 1))
    angle = np.arange(length)[:, None] * freq[None, :]
    table = np.concatenate([np.sin(angle), np.cos(angle)], axis=-1)
    return jnp.asarray(table[None, :, : 2 * half], jnp.float32)


class AddPositionEmbs(nn.Module):
    """Adds learned (``pos_embedding``) or fixed sinusoidal position embeddings."""

    cfg: Config

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (1, self.cfg.max_len, x.shape[-1])
        if self.cfg.learned_positions:
            table = self.param("pos_embedding", nn.initializers.normal(stddev=0.02), shape)
        else:
            table = sinusoids(*shape[1:])
        return x + table[:, : x.shape[1]]


class MlpBlock(nn.Module):
    """Dense -> ReLU -> Dense, with biases."""

    cfg: Config

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.cfg
        h = nn.Dense(
            c.mlp_dim,
            kernel_init=logical(c.kernel_init, "embed", "mlp"),
            bias_init=logical(c.bias_init, "mlp"),
        )(x)
        return nn.Dense(
            x.shape[-1],
            kernel_init=logical(c.kernel_init, "mlp", "embed"),
            bias_init=logical(c.bias_init, "embed"),
        )(nn.relu(h))


def layer_norm(name: str | None = None) -> nn.LayerNorm:
    return nn.LayerNorm(
        scale_init=logical(nn.initializers.ones, "embed"),
        bias_init=logical(nn.initializers.zeros, "embed"),
        name=name,
    )


class DecoderBlock(nn.Module):
    """Pre-norm causal self-attention and MLP, each added to the residual stream."""

    cfg: Config

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        c = self.cfg
        attn = nn.MultiHeadDotProductAttention(
            num_heads=c.num_heads,
            qkv_features=c.qkv_dim,
            use_bias=False,
            kernel_init=logical(c.kernel_init, "embed", "kv"),
            bias_init=logical(c.bias_init, "embed"),
            deterministic=True,
        )
        x = x + attn(layer_norm()(x), mask=mask)
        return x + MlpBlock(c)(layer_norm()(x))


class TransformerLM(nn.Module):
    """Token embedding, positions, ``num_layers`` blocks, final norm and a Dense readout."""

    cfg: Config

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        return Decoder(self.cfg, name="decoder")(tokens)


class Decoder(nn.Module):
    cfg: Config

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        c = self.cfg
        embed = nn.Embed(
            c.vocab_size,
            c.emb_dim,
            embedding_init=logical(nn.initializers.normal(1.0), "vocab", "embed"),
        )
        y = AddPositionEmbs(c, name="posembed_output")(embed(tokens))
        mask = nn.make_causal_mask(tokens)
        for i in range(c.num_layers):
            y = DecoderBlock(c, name=f"encoderdecoderblock_{i}")(y, mask)
        y = layer_norm("encoderdecoder_norm")(y)
        return nn.Dense(
            c.vocab_size,
            kernel_init=logical(c.kernel_init, "embed", "vocab"),
            bias_init=logical(c.bias_init, "vocab"),
            name="logitdense",
        )(y)


def tokens(cfg: Config, batch: int = 2) -> jax.ShapeDtypeStruct:
    """The shape of a batch of token ids for ``init``."""
    return jax.ShapeDtypeStruct((batch, cfg.max_len), jnp.int32)


def tiny() -> TransformerLM:
    """`TINY`, for ``jaxinit report --model`` (which supports NNX modules only)."""
    return TransformerLM(TINY)
