"""The embedded reference model of ``jaxinit report``: a small Llama-style NNX transformer.

Token embedding, `Config.layers` pre-norm blocks -- RMSNorm, causal multi-head attention with
rotary position embeddings (``attn/q``, ``k``, ``v``, ``o``), RMSNorm, a SwiGLU MLP
(``mlp/gate``, ``up``, ``down``) -- a final RMSNorm and an untied ``lm_head``; no biases. The
default `Config` has about 28M parameters (110 MiB in float32), small enough to initialize,
measure and run on a 2-core CPU in seconds.

Every matrix carries partition metadata over the mesh axes ``("data", "model")`` (Megatron
style: q/k/v/gate/up split their outputs over ``model``, o/down their inputs), so the model
built by ``nnx.eval_shape`` under ``jax.set_mesh`` has shardings and `jaxinit.flax.reinit`
creates each parameter in its shard. A mesh axis that is missing, or that does not divide the
dimension, is dropped from that dimension's spec: any device count works.

`Llama.activation_stds` runs the model on a random token batch and returns the std of the
residual stream after the embedding and after every block: the signal propagation of the
report's plot. A user model can offer the same method.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxinit._src.tools.report.environment import MESH_AXES

#: The mesh axes the model's partition metadata names: those of the report's mesh.
DATA, MODEL = MESH_AXES


@dataclasses.dataclass(frozen=True)
class Config:
    """The reference model's size.

    Attributes:
      vocab: the number of tokens.
      dim: the width of the residual stream.
      layers: the number of blocks.
      heads: attention heads (``dim`` must be a multiple; head_dim = dim / heads, even).
      hidden: the SwiGLU MLP's hidden width (about 8/3 dim, rounded to a multiple of 64).
      batch: sequences in the random batch of `Llama.activation_stds`.
      seq: tokens per sequence in that batch.
    """

    vocab: int = 8192
    dim: int = 512
    layers: int = 6
    heads: int = 8
    hidden: int = 1408
    batch: int = 4
    seq: int = 128

    def __post_init__(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(
                f"`dim` ({self.dim}) must be a multiple of `heads` ({self.heads}) with an even "
                "head_dim (rotary embeddings rotate pairs)."
            )

    def narrow(self, factor: int) -> Config:
        """The same model `factor` times narrower (dim and hidden): a muP base model."""
        return dataclasses.replace(self, dim=self.dim // factor, hidden=self.hidden // factor)


def _metadata(shape: tuple[int, ...], names: tuple[str | None, ...]) -> dict[str, Any]:
    """Partition metadata naming, per dimension, a mesh axis of the context mesh that divides
    it (else None); no metadata outside a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return {}
    sizes = dict(mesh.shape)
    spec = tuple(
        n if n is not None and n in sizes and dim % sizes[n] == 0 else None
        for dim, n in zip(shape, names, strict=True)
    )
    return {"out_sharding": spec}


def _linear(d_in: int, d_out: int, names: tuple[str, str], rngs: nnx.Rngs) -> nnx.Linear:
    meta = _metadata((d_in, d_out), names)
    return nnx.Linear(d_in, d_out, use_bias=False, kernel_metadata=meta, rngs=rngs)


def _rope(x: jax.Array) -> jax.Array:
    """Rotary position embeddings (half-split pairs, base 10000) on ``(batch, seq, heads, hd)``."""
    seq, hd = x.shape[1], x.shape[-1]
    freqs = 1.0 / (10000.0 ** (jnp.arange(0, hd, 2, dtype=jnp.float32) / hd))
    angles = jnp.arange(seq, dtype=jnp.float32)[:, None] * freqs[None, :]
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class Attention(nnx.Module):
    """Causal multi-head self-attention with rotary embeddings; q/k/v/o are (dim, dim)."""

    def __init__(self, cfg: Config, rngs: nnx.Rngs):
        self.heads = cfg.heads
        self.q = _linear(cfg.dim, cfg.dim, (DATA, MODEL), rngs)
        self.k = _linear(cfg.dim, cfg.dim, (DATA, MODEL), rngs)
        self.v = _linear(cfg.dim, cfg.dim, (DATA, MODEL), rngs)
        self.o = _linear(cfg.dim, cfg.dim, (MODEL, DATA), rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        split = lambda y: y.reshape(b, t, self.heads, d // self.heads)
        q, k, v = _rope(split(self.q(x))), _rope(split(self.k(x))), split(self.v(x))
        return self.o(jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, d))


class Mlp(nnx.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, cfg: Config, rngs: nnx.Rngs):
        self.gate = _linear(cfg.dim, cfg.hidden, (DATA, MODEL), rngs)
        self.up = _linear(cfg.dim, cfg.hidden, (DATA, MODEL), rngs)
        self.down = _linear(cfg.hidden, cfg.dim, (MODEL, DATA), rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class Block(nnx.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, cfg: Config, rngs: nnx.Rngs):
        self.attn_norm = nnx.RMSNorm(cfg.dim, rngs=rngs)
        self.attn = Attention(cfg, rngs)
        self.mlp_norm = nnx.RMSNorm(cfg.dim, rngs=rngs)
        self.mlp = Mlp(cfg, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Llama(nnx.Module):
    """The reference model: embedding, blocks, final RMSNorm, untied readout ``lm_head``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = nnx.eval_shape(lambda: Llama(Config(), nnx.Rngs(0)))  # abstract: no memory
      >>> sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
      27662848
      >>> nnx.eval_shape(lambda m: m(jnp.zeros((2, 16), jnp.int32)), model).shape
      (2, 16, 8192)
      >>> nnx.eval_shape(lambda m: m.activation_stds(jax.random.key(0)), model).shape
      (7,)
    """

    def __init__(self, cfg: Config, rngs: nnx.Rngs):
        self.cfg = cfg
        meta = _metadata((cfg.vocab, cfg.dim), (MODEL, DATA))
        self.embed = nnx.Embed(cfg.vocab, cfg.dim, embedding_metadata=meta, rngs=rngs)
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.layers)])
        self.norm = nnx.RMSNorm(cfg.dim, rngs=rngs)
        self.lm_head = _linear(cfg.dim, cfg.vocab, (DATA, MODEL), rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Logits ``(batch, seq, vocab)`` of integer `tokens` ``(batch, seq)``."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))

    def activation_stds(self, key: jax.Array) -> jax.Array:
        """The std of the residual stream after the embedding and after each block, on a
        random batch of ``(cfg.batch, cfg.seq)`` tokens drawn from `key`: shape ``(layers+1,)``."""
        tokens = jax.random.randint(key, (self.cfg.batch, self.cfg.seq), 0, self.cfg.vocab)
        x = self.embed(tokens)
        stds = [jnp.std(x)]
        for block in self.blocks:
            x = block(x)
            stds.append(jnp.std(x))
        return jnp.stack(stds)


def reference(rngs: nnx.Rngs) -> Llama:
    """The embedded reference model (the default `Config`): a ``--model`` factory."""
    return Llama(Config(), rngs)


def reference_base(rngs: nnx.Rngs) -> Llama:
    """The reference model 4x narrower: the base width of the ``mup`` scheme."""
    return Llama(Config().narrow(4), rngs)
