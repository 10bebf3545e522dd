"""A small NNX model holding one of every built-in layer that jaxinit knows, and stacked layers.

Written for these tests to mirror the parameter layout of Flax's examples and built-in layers
(Apache-2.0); contains no Flax code. It is not a network (there is no forward pass): it is the
set of parameter layouts a user of ``flax.nnx`` meets, small enough to trace in a fraction of a
second:

* ``linear`` (``Linear``), ``general`` (``LinearGeneral`` over two input axes into two output
  axes, kernel ``(4, 6, 3, 5)``), ``general_batch`` (``LinearGeneral`` with ``batch_axis``,
  kernel ``(3, 6, 2, 5)``), ``einsum`` (``Einsum`` with a bias);
* ``conv_grouped`` (``Conv`` 3x3, 8 -> 12 features in 4 groups: kernel ``(3, 3, 2, 12)``),
  ``conv_transpose`` (``ConvTranspose`` 3x3, 6 -> 10, kernel ``(3, 3, 6, 10)``) and
  ``conv_transpose_t`` (the same with ``transpose_kernel=True``: kernel ``(3, 3, 10, 6)``);
* ``embed`` (``Embed`` 50 x 16), ``attention`` (``MultiHeadAttention``, 4 heads, 16 features);
* ``lstm`` (``LSTMCell``), ``lstm_fused`` (``OptimizedLSTMCell``), ``gru`` (``GRUCell``);
* ``layer_norm``, ``batch_norm``, ``lora`` (``LoRA``), ``lora_linear`` (``LoRALinear``);
* ``vmapped``: 3 ``Linear(8, 16)`` made by ``nnx.vmap`` over split rngs (kernel
  ``(3, 8, 16)``), and ``scanned``: 2 ``Linear(16, 16)`` made by ``nnx.scan`` (kernel
  ``(2, 16, 16)``): the leading axis is the layer axis.

`toy` is the factory (``jaxinit report --model tests.real_models.toy:toy``).
"""

from __future__ import annotations

from flax import nnx

#: The stacked layers: how many, and their sizes.
VMAP_LAYERS, VMAP_IN, VMAP_OUT = 3, 8, 16
SCAN_LAYERS, SCAN_DIM = 2, 16
#: The grouped convolution: 3x3, 8 -> 12 features in 4 groups.
CONV_IN, CONV_OUT, CONV_GROUPS = 8, 12, 4


def _vmapped(rngs: nnx.Rngs) -> nnx.Linear:
    """`VMAP_LAYERS` Linear layers stacked on a leading axis by ``nnx.vmap``."""

    @nnx.split_rngs(splits=VMAP_LAYERS)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def build(r: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(VMAP_IN, VMAP_OUT, rngs=r)

    return build(rngs)


def _scanned(rngs: nnx.Rngs) -> nnx.Linear:
    """`SCAN_LAYERS` Linear layers stacked on a leading axis by ``nnx.scan``."""

    @nnx.split_rngs(splits=SCAN_LAYERS)
    @nnx.scan(in_axes=(0,), out_axes=0)
    def build(r: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(SCAN_DIM, SCAN_DIM, rngs=r)

    return build(rngs)


class Toy(nnx.Module):
    """Every built-in layer once (twice for ``LinearGeneral`` and ``ConvTranspose``)."""

    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(16, 24, rngs=rngs)
        self.general = nnx.LinearGeneral((4, 6), (3, 5), axis=(-2, -1), rngs=rngs)
        self.general_batch = nnx.LinearGeneral(6, (2, 5), axis=-1, batch_axis={0: 3}, rngs=rngs)
        self.einsum = nnx.Einsum("bd,dhk->bhk", (16, 4, 8), (4, 8), rngs=rngs)
        self.conv_grouped = nnx.Conv(
            CONV_IN, CONV_OUT, (3, 3), feature_group_count=CONV_GROUPS, rngs=rngs
        )
        self.conv_transpose = nnx.ConvTranspose(6, 10, (3, 3), rngs=rngs)
        self.conv_transpose_t = nnx.ConvTranspose(6, 10, (3, 3), transpose_kernel=True, rngs=rngs)
        self.embed = nnx.Embed(50, 16, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(4, 16, decode=False, rngs=rngs)
        self.lstm = nnx.LSTMCell(16, 8, rngs=rngs)
        self.lstm_fused = nnx.OptimizedLSTMCell(16, 8, rngs=rngs)
        self.gru = nnx.GRUCell(16, 8, rngs=rngs)
        self.layer_norm = nnx.LayerNorm(16, rngs=rngs)
        self.batch_norm = nnx.BatchNorm(12, rngs=rngs)
        self.lora = nnx.LoRA(16, 2, 24, rngs=rngs)
        self.lora_linear = nnx.LoRALinear(16, 24, lora_rank=2, rngs=rngs)
        self.vmapped = _vmapped(rngs)
        self.scanned = _scanned(rngs)


def toy(rngs: nnx.Rngs) -> Toy:
    """The toy model."""
    return Toy(rngs)
