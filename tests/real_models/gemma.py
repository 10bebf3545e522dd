"""A small NNX transformer with the parameter layout of Flax's Gemma example (examples/gemma).

Written for these tests; it contains no Flax code (Flax is Apache-2.0). It mirrors what the
example's ``Transformer`` (Flax 0.12.7 and later) creates -- names, paths, shapes, layer types
and partition metadata -- so that jaxinit meets what a user of the example meets:

* ``embedder/embedding`` ``(num_embed, embed_dim)``: an ``nnx.Embed`` subclass;
* ``layers/<i>/attn``: ``nnx.Einsum`` kernels ``qkv_einsum`` ``(3, N, D, H)`` when
  ``num_heads == num_kv_heads``, else ``q_einsum`` ``(N, D, H)`` and ``kv_einsum``
  ``(2, K, D, H)``; ``attn_vec_einsum`` ``(N, H, D)``; optional ``_query_norm``/``_key_norm``;
* ``layers/<i>/mlp``: bias-free ``nnx.Linear`` ``gate_proj``/``up_proj`` ``(D, F)`` and
  ``down_proj`` ``(F, D)``;
* RMSNorm ``scale`` params (zeros at init: the norm multiplies by ``1 + scale``):
  ``pre_attention_norm``, ``post_attention_norm``, ``pre_ffw_norm``, ``post_ffw_norm`` and
  ``final_norm``;
* partition metadata ``{"out_sharding": PartitionSpec}`` from a `ShardingConfig` with an FSDP
  and a tensor-parallel axis, as the example's ``ShardingConfig.fsdp_tp_sharding``.

The forward pass is enough to run the model (causal attention, no RoPE, no cache); only the
parameters are meant to match. `tiny`, `tiny_mha` and `tiny_sharded` (mesh axes ``data`` and
``model``, those of ``jaxinit report``) are ``--model`` factories; `SIX_LAYERS` is for
benchmarks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import PartitionSpec as P

Spec = P | None


@dataclasses.dataclass(frozen=True)
class ShardingConfig:
    """The partition spec of each kind of weight (None: unsharded), named as in the example."""

    emb_vd: Spec = None
    q_weight_ndh: Spec = None
    kv_weight_cndh: Spec = None
    qkv_weight_cndh: Spec = None
    o_weight_nhd: Spec = None
    ffw_weight_df: Spec = None
    ffw_weight_fd: Spec = None
    rms_norm_weight: Spec = None
    fsdp_axis_name: str = "fsdp"

    @classmethod
    def fsdp_tp(cls, fsdp: str = "fsdp", tp: str = "tp") -> ShardingConfig:
        """Weights sharded over an FSDP axis and a tensor-parallel axis."""
        return cls(
            emb_vd=P(tp, fsdp),
            q_weight_ndh=P(tp, fsdp, None),
            kv_weight_cndh=P(None, tp, fsdp, None),
            qkv_weight_cndh=P(None, tp, fsdp, None),
            o_weight_nhd=P(tp, None, fsdp),
            ffw_weight_df=P(fsdp, tp),
            ffw_weight_fd=P(tp, fsdp),
            rms_norm_weight=P(tp),
            fsdp_axis_name=fsdp,
        )


@dataclasses.dataclass(frozen=True)
class Config:
    """The model's sizes (the example's ``TransformerConfig``, less what only the forward uses)."""

    num_layers: int
    num_embed: int
    embed_dim: int
    hidden_dim: int
    num_heads: int
    head_dim: int
    num_kv_heads: int
    use_post_attn_norm: bool = True
    use_post_ffw_norm: bool = True
    use_qk_norm: bool = False
    weight_dtype: Any = jnp.float32
    shd: ShardingConfig = ShardingConfig()


#: 2 layers, grouped-query attention (q_einsum + kv_einsum), QK norm.
TINY = Config(
    num_layers=2,
    num_embed=128,
    embed_dim=48,
    hidden_dim=64,
    num_heads=4,
    head_dim=8,
    num_kv_heads=2,
    use_qk_norm=True,
)
#: 2 layers, multi-head attention (one fused qkv_einsum), no post norms.
TINY_MHA = dataclasses.replace(
    TINY, num_kv_heads=4, use_qk_norm=False, use_post_attn_norm=False, use_post_ffw_norm=False
)
#: 6 layers of a Gemma-2B-like shape, scaled down (about 58M parameters): for benchmarks.
SIX_LAYERS = Config(
    num_layers=6,
    num_embed=32_000,
    embed_dim=512,
    hidden_dim=4096,
    num_heads=8,
    head_dim=64,
    num_kv_heads=1,
)


def _meta(spec: Spec) -> dict[str, Any]:
    return {"out_sharding": spec}


class RMSNorm(nnx.Module):
    """RMS normalization times ``1 + scale``; ``scale`` starts at zero."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs, spec: Spec = None, dtype: Any = jnp.float32):
        del rngs  # zeros need no key
        self.scale = nnx.Param(jnp.zeros((dim,), dtype), **_meta(spec))

    def __call__(self, x: jax.Array) -> jax.Array:
        ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        return x * jax.lax.rsqrt(ms + 1e-6) * (1.0 + self.scale[...])


class ScaledEmbed(nnx.Embed):
    """Token embedding multiplied by ``sqrt(embed_dim)``; `attend` gives the logits."""

    def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
        x = super().__call__(inputs, out_sharding)
        return x * jnp.sqrt(jnp.float32(x.shape[-1]))


class Attention(nnx.Module):
    """Einsum projections: fused ``qkv_einsum`` (MHA) or ``q_einsum`` + ``kv_einsum`` (GQA)."""

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        n, k, d, h, s = cfg.num_heads, cfg.num_kv_heads, cfg.embed_dim, cfg.head_dim, cfg.shd
        dt = cfg.weight_dtype
        self.attn_vec_einsum = nnx.Einsum(
            "BTNH,NHD->BTD",
            (n, h, d),
            param_dtype=dt,
            kernel_metadata=_meta(s.o_weight_nhd),
            rngs=rngs,
        )
        if n == k:
            self.qkv_einsum = nnx.Einsum(
                "BTD,SNDH->SBTNH",
                (3, n, d, h),
                param_dtype=dt,
                kernel_metadata=_meta(s.qkv_weight_cndh),
                rngs=rngs,
            )
        else:
            if n % k:
                raise ValueError(f"num_heads={n} must be a multiple of num_kv_heads={k}.")
            kv_spec = s.kv_weight_cndh
            if kv_spec is not None and k == 1:  # one kv head: shard D only, as the example does
                kv_spec = P(None, None, s.fsdp_axis_name, None)
            self.q_einsum = nnx.Einsum(
                "BTD,NDH->BTNH",
                (n, d, h),
                param_dtype=dt,
                kernel_metadata=_meta(s.q_weight_ndh),
                rngs=rngs,
            )
            self.kv_einsum = nnx.Einsum(
                "BTD,CKDH->CBTKH",
                (2, k, d, h),
                param_dtype=dt,
                kernel_metadata=_meta(kv_spec),
                rngs=rngs,
            )
        self.use_qk_norm = cfg.use_qk_norm
        if cfg.use_qk_norm:
            self._query_norm = RMSNorm(h, rngs=rngs, dtype=dt)
            self._key_norm = RMSNorm(h, rngs=rngs, dtype=dt)
        self.groups = n // k

    def __call__(self, x: jax.Array) -> jax.Array:
        if hasattr(self, "qkv_einsum"):
            q, k, v = self.qkv_einsum(x)
        else:
            q = self.q_einsum(x)
            k, v = self.kv_einsum(x)
        if self.use_qk_norm:
            q, k = self._query_norm(q), self._key_norm(k)
        k, v = jnp.repeat(k, self.groups, axis=2), jnp.repeat(v, self.groups, axis=2)
        logits = jnp.einsum("BTNH,BSNH->BNTS", q * q.shape[-1] ** -0.5, k)
        t = x.shape[1]
        causal = jnp.tril(jnp.ones((t, t), bool))
        probs = jax.nn.softmax(jnp.where(causal, logits, jnp.finfo(logits.dtype).min), axis=-1)
        return self.attn_vec_einsum(jnp.einsum("BNTS,BSNH->BTNH", probs, v))


class FeedForward(nnx.Module):
    """Gated GELU MLP of three bias-free Linear layers."""

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        d, f, s = cfg.embed_dim, cfg.hidden_dim, cfg.shd
        init = nnx.initializers.normal()  # the example's FeedForward default
        linear = lambda i, o, spec: nnx.Linear(
            i,
            o,
            use_bias=False,
            kernel_init=init,
            param_dtype=cfg.weight_dtype,
            kernel_metadata=_meta(spec),
            rngs=rngs,
        )
        self.gate_proj = linear(d, f, s.ffw_weight_df)
        self.up_proj = linear(d, f, s.ffw_weight_df)
        self.down_proj = linear(f, d, s.ffw_weight_fd)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down_proj(nnx.gelu(self.gate_proj(x)) * self.up_proj(x))


class Block(nnx.Module):
    """Pre-norm attention and MLP, each optionally post-normed, added to the residual stream."""

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        norm = lambda: RMSNorm(
            cfg.embed_dim, spec=cfg.shd.rms_norm_weight, dtype=cfg.weight_dtype, rngs=rngs
        )
        self.pre_attention_norm = norm()
        self.attn = Attention(cfg, rngs=rngs)
        self.post_attention_norm = norm() if cfg.use_post_attn_norm else None
        self.pre_ffw_norm = norm()
        self.mlp = FeedForward(cfg, rngs=rngs)
        self.post_ffw_norm = norm() if cfg.use_post_ffw_norm else None

    def __call__(self, x: jax.Array) -> jax.Array:
        a = self.attn(self.pre_attention_norm(x))
        x = x + (a if self.post_attention_norm is None else self.post_attention_norm(a))
        m = self.mlp(self.pre_ffw_norm(x))
        return x + (m if self.post_ffw_norm is None else self.post_ffw_norm(m))


class Transformer(nnx.Module):
    """Embedder, ``layers`` (an ``nnx.List`` of blocks), final norm; logits tied to the
    embedding."""

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        self.embedder = ScaledEmbed(
            cfg.num_embed,
            cfg.embed_dim,
            param_dtype=cfg.weight_dtype,
            embedding_metadata=_meta(cfg.shd.emb_vd),
            rngs=rngs,
        )
        self.layers = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.num_layers)])
        self.final_norm = RMSNorm(
            cfg.embed_dim, spec=cfg.shd.rms_norm_weight, dtype=cfg.weight_dtype, rngs=rngs
        )
        self.cfg = cfg

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.embedder(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.embedder.attend(self.final_norm(x))


# -- factories (`jaxinit report --model tests.real_models.gemma:<name>`) --------------------------
def tiny(rngs: nnx.Rngs) -> Transformer:
    """`TINY`, unsharded."""
    return Transformer(TINY, rngs=rngs)


def tiny_mha(rngs: nnx.Rngs) -> Transformer:
    """`TINY_MHA`, unsharded."""
    return Transformer(TINY_MHA, rngs=rngs)


def tiny_sharded(rngs: nnx.Rngs) -> Transformer:
    """`TINY` sharded over the report's mesh axes: FSDP on ``data``, tensor parallel on
    ``model``."""
    shd = ShardingConfig.fsdp_tp(fsdp="data", tp="model")
    return Transformer(dataclasses.replace(TINY, shd=shd), rngs=rngs)


def six_layers(rngs: nnx.Rngs) -> Transformer:
    """`SIX_LAYERS`, unsharded (benchmarks)."""
    return Transformer(SIX_LAYERS, rngs=rngs)
