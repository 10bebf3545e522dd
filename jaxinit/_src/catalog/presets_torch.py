"""PyTorch's defaults by name (``torch.*``): the presets' conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("torch.rnn.bias", hidden_size=25)
  uniform_range(minval=-0.2, maxval=0.2, dtype=None)
"""

from __future__ import annotations

import math
from typing import Any

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike
from jaxinit._src.core.validation import check_int
from jaxinit._src.schemes.constant import Zeros
from jaxinit._src.schemes.elementwise import Normal, UniformRange
from jaxinit._src.schemes.variance import HeUniform, VarianceScaling


def _symmetric(bound: float, dtype: DTypeLike | None) -> BaseInitializer:
    """U(-bound, bound); a zero bound gives zeros (torch's ``uniform_(-0, 0)``)."""
    return UniformRange(-bound, bound, dtype) if bound > 0 else Zeros(dtype)


def _inv_sqrt(arg: str, n: Any, minimum: int) -> float:
    n = check_int(arg, n, minimum=minimum)
    return 1.0 / math.sqrt(n) if n > 0 else 0.0


@register("torch.linear.kernel", "torch.conv.kernel", "torch.lora.lora_a")
def torch_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Linear`` / ``nn.Conv*`` weight: ``kaiming_uniform_(w, a=sqrt(5))``.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{\tfrac{2}{1 + 5}}\sqrt{\tfrac{3}
              {\text{fan\_in}}} = \frac{1}{\sqrt{\text{fan\_in}}}

    fan_in is ``in`` for a dense ``(in, out)`` kernel and ``kh*kw*in/groups`` for an HWIO conv
    kernel: torch's fan_in of its ``(out, in/groups, kh, kw)`` weight. torch's ConvTranspose
    weight is ``(in, out/groups, kh, kw)``, so its fan_in is ``kh*kw*out/groups``:
    :func:`jaxinit.flax.framework_rules` gives such kernels those axes. PEFT's LoRA ``lora_A``
    (``(in, rank)`` here) is initialized the same way (``torch.lora.lora_a``).

    Quirks reproduced (by :func:`jaxinit.flax.framework_rules`, each tested against torch's
    own layers):

    * ``a=sqrt(5)``: the bound is ``1/sqrt(fan_in)``, variance ``1/(3 fan_in)``, a sixth of He's.
    * ``Conv1d``/``Conv2d``/``Conv3d`` with ``groups``: fan_in is ``prod(k) * in / groups``.
    * ``ConvTranspose``: the weight is ``(in, out / groups, *k)``, so fan_in is
      ``prod(k) * out / groups``.
    * ``MultiheadAttention``'s ``out_proj`` is a Linear: this law with fan_in ``E``.

    References:
      Source: PyTorch, ``torch/nn/modules/linear.py`` and ``torch/nn/modules/conv.py``,
      ``Linear.reset_parameters`` / ``_ConvNd.reset_parameters``; PEFT, ``peft/tuners/lora/
      layer.py``, ``reset_lora_parameters``.
    """
    return HeUniform(dtype=dtype, nonlinearity="leaky_relu", negative_slope=math.sqrt(5.0))


@register("torch.linear.bias", "torch.conv.bias")
def torch_bias(*, fan_in: int, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Linear`` / ``nn.Conv*`` bias: uniform with the weight's fan_in.

    .. math:: b \sim \mathcal{U}[-c, c),\quad c = 1/\sqrt{\text{fan\_in}}\ \
              (c = 0 \text{ when fan\_in} = 0)

    Quirk reproduced (:func:`jaxinit.flax.framework_rules`): the bound is the weight's, from
    the fan_in torch counts for it (grouped and transposed convolutions included), not from
    the bias's own shape.

    Args:
      fan_in: the fan_in of the layer's weight (required: a bias's shape does not carry it).

    Raises:
      TypeError: for a non-integer `fan_in`.
      ValueError: for a negative `fan_in`.

    References:
      Source: PyTorch, ``torch/nn/modules/linear.py``, ``Linear.reset_parameters``
      (``bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0``).
    """
    return _symmetric(_inv_sqrt("fan_in", fan_in, 0), dtype)


@register("torch.embedding.embedding")
def torch_embedding(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Embedding`` weight: ``normal_(w)``.

    .. math:: w \sim \mathcal{N}(0, 1)

    Unscaled: the variance does not depend on the embedding's width (Flax's is ``1/features``).

    References:
      Source: PyTorch, ``torch/nn/modules/sparse.py``, ``Embedding.reset_parameters``.
    """
    return Normal(1.0, dtype)


@register("torch.rnn.kernel", "torch.rnn.recurrent_kernel", "torch.rnn.bias")
def torch_rnn(*, hidden_size: int, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``: every weight and bias is uniform.

    .. math:: w \sim \mathcal{U}[-c, c),\quad c = 1/\sqrt{\text{hidden\_size}}

    The same law for the input kernel (``weight_ih``), the recurrent kernel (``weight_hh``) and
    both biases, fused gates included: the fans play no part (reproduced for ``nn.LSTM`` and
    ``nn.GRU`` by :func:`jaxinit.flax.framework_rules` on every NNX cell).

    Not reproduced: ``nn.LSTM`` adds two biases, ``b_ih + b_hh`` (their sum is triangular on
    ``+-2/sqrt(hidden_size)``), where an NNX cell has one bias (given one uniform); the
    ``b_hn`` part of ``nn.GRU``'s ``bias_hh`` is multiplied by the reset gate and
    ``nnx.GRUCell`` has no recurrent bias, so it has no counterpart.

    Args:
      hidden_size: the cell's hidden size (>= 1).

    Raises:
      TypeError: for a non-integer `hidden_size`.
      ValueError: for ``hidden_size < 1``.

    References:
      Source: PyTorch, ``torch/nn/modules/rnn.py``, ``RNNBase.reset_parameters``.
    """
    return _symmetric(_inv_sqrt("hidden_size", hidden_size, 1), dtype)


@register("torch.multihead_attention.in_proj")
def torch_attention_in_proj(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.MultiheadAttention`` query, key and value weights: ``xavier_uniform_`` on
    the packed ``(3E, E)`` ``in_proj_weight``, so fan_out is ``3E``: per ``(E, E)`` projection,

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{6 / (E + 3E)},\quad
              \operatorname{Var}(w) = 1 / (2E) = 0.5 / \text{fan\_in}

    (the output projection is an ``nn.Linear`` weight, every bias zeros.) Quirk reproduced
    (:func:`jaxinit.flax.framework_rules`, on ``nnx.MultiHeadAttention``): fan_out is the
    packed ``3E``, so each projection's variance is half of Glorot's for ``(E, E)``.

    References:
      Source: PyTorch, ``torch/nn/modules/activation.py``, ``MultiheadAttention._reset_parameters``.
    """
    return VarianceScaling(0.5, "fan_in", "uniform", dtype=dtype)
