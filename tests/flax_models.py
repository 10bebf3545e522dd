"""Small NNX and linen models shared by tests/test_flax.py."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

D = 32


class Named(nnx.Module):
    """`nnx.Linear(d, d)` layers under the given attribute names, created in that order."""

    def __init__(self, names: tuple[str, ...], rngs: nnx.Rngs, d: int = D):
        for name in names:
            setattr(self, name, nnx.Linear(d, d, rngs=rngs))


class Block(nnx.Module):
    """A pre-norm transformer block: attention (LinearGeneral q/k/v/out) and an MLP."""

    def __init__(self, rngs: nnx.Rngs, d: int = D, heads: int = 4):
        self.norm = nnx.LayerNorm(d, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, d, decode=False, rngs=rngs)
        self.up = nnx.Linear(d, 4 * d, rngs=rngs)
        self.down = nnx.Linear(4 * d, d, rngs=rngs)


class Tower(nnx.Module):
    """An embedding, `depth` blocks and a final norm."""

    def __init__(self, depth: int, rngs: nnx.Rngs, d: int = D, vocab: int = 64):
        self.embed = nnx.Embed(vocab, d, rngs=rngs)
        self.blocks = nnx.List([Block(rngs, d) for _ in range(depth)])
        self.norm = nnx.LayerNorm(d, rngs=rngs)


class ShardedMLP(nnx.Module):
    """Kernels annotated three ways: constructor metadata, `with_partitioning`, none."""

    def __init__(self, rngs: nnx.Rngs, d: int = 64):
        self.up = nnx.Linear(
            d, 4 * d, kernel_metadata={"out_sharding": ("data", "model")}, rngs=rngs
        )
        init = nnx.with_partitioning(nnx.initializers.lecun_normal(), ("model", "data"))
        self.down = nnx.Linear(4 * d, d, kernel_init=init, rngs=rngs)
        self.norm = nnx.LayerNorm(d, rngs=rngs)


def stacked_linear(n: int, d_in: int, d_out: int) -> nnx.Linear:
    """`n` Linear layers stacked by `nnx.vmap`: kernel (n, d_in, d_out)."""

    @nnx.vmap(in_axes=0, out_axes=0)
    def make(key):
        return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))

    return make(jax.random.split(jax.random.key(0), n))


class LinenLayer(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return nn.Dense(x.shape[-1], name="fc")(x), None


class LinenNet(nn.Module):
    """DenseGeneral with batch dims, Einsum, Embed, Conv and an `nn.scan` stack."""

    @nn.compact
    def __call__(self, x):  # x: (16, 4, 64)
        h = nn.DenseGeneral(32, batch_dims=(0,), name="batched")(x)  # kernel (16, 64, 32)
        h = h.reshape(4, -1)  # (4, 512)
        h = nn.Einsum((512, 4, 16), "bd,dhk->bhk", name="heads")(h).reshape(4, 64)
        h = h + nn.Embed(50, 64, name="embed")(jnp.arange(4))
        stack = nn.scan(
            LinenLayer, variable_axes={"params": 0}, split_rngs={"params": True}, length=3
        )
        h, _ = stack(name="stack")(h, None)
        return nn.Conv(8, (3, 3), name="conv")(h.reshape(1, 16, 16, 1))


class LinenLogical(nn.Module):
    """A Dense layer whose kernel and bias carry logical partitioning."""

    @nn.compact
    def __call__(self, x):
        kernel = nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
        bias = nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",))
        return nn.Dense(256, kernel_init=kernel, bias_init=bias, name="fc")(x)
