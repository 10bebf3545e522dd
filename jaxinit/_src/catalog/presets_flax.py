"""Flax's defaults by name (``flax.*``, linen and NNX alike): the conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("flax.dense.kernel") == jaxinit.lecun_normal()
  True
"""

from __future__ import annotations

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.variance import HeUniform, LecunNormal, VarianceScaling


@register("flax.dense.kernel", "flax.conv.kernel")
def flax_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax ``Dense``/``Linear``/``Conv`` kernel: ``lecun_normal()`` (truncated, corrected).

    .. math:: \operatorname{std}(w) = 1/\sqrt{\text{fan\_in}}

    References:
      Source: Flax, ``flax/linen/linear.py`` and ``flax/nnx/nn/linear.py``,
      ``default_kernel_init``.
    """
    return LecunNormal(dtype=dtype)


@register("flax.embed.embedding")
def flax_embed(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax ``Embed`` embedding: ``variance_scaling(1.0, "fan_in", "normal", out_axis=0)``.

    In and out axes overlap on ``(vocab, features)``, so fan_in is ``features`` (untruncated):

    .. math:: w \sim \mathcal{N}(0, 1/\text{features})

    References:
      Source: Flax, ``flax/linen/linear.py`` and ``flax/nnx/nn/linear.py``,
      ``default_embed_init``.
    """
    return VarianceScaling(1.0, "fan_in", "normal", out_axis=0, dtype=dtype)


@register("flax.lstm.recurrent_kernel")
def flax_recurrent_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax recurrent cells' recurrent kernel: ``orthogonal()``.

    .. math:: W^\top W = I \ (\text{or } W W^\top = I \text{ for a wide kernel})

    References:
      Source: Flax, ``flax/linen/recurrent.py`` and ``flax/nnx/nn/recurrent.py``,
      ``recurrent_kernel_init``.
    """
    return Orthogonal(dtype=dtype)


@register("flax.lora.lora_a", "keras.dense.lora_kernel_a")
def flax_lora_a(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""LoRA's down-projection ``(in, rank)``: ``he_uniform()`` in Flax (``nnx.LoRA``,
    ``LoRALinear``: ``lora_a``) and Keras (``Dense.enable_lora``: ``lora_kernel_a``).

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{6 / \text{in}}

    The up-projection (``lora_b``, ``lora_kernel_b``) is zeros.

    References:
      Source: Flax, ``flax/nnx/nn/lora.py``, ``default_a_initializer``; Keras 3,
      ``keras/src/layers/core/dense.py``, ``Dense.enable_lora``.
    """
    return HeUniform(dtype=dtype)
