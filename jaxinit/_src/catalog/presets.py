r"""Framework defaults by name: ``jaxinit.get("torch.linear.bias", fan_in=256)``.

A preset is a small factory named ``<framework>.<layer>.<parameter>`` (or
``<framework>.<scheme>`` for a framework's stand-alone initializers) that returns an ordinary
jaxinit initializer reproducing that framework's default in JAX layouts: dense kernels
``(in, out)``, conv kernels HWIO ``(*spatial, in, out)``, embeddings ``(vocab, features)``. The
result is built from the existing schemes, so ``jaxinit.serialize`` gives the underlying scheme
(``torch.linear.kernel`` serializes as ``he_uniform(... negative_slope=sqrt(5))``).

Presets live in their own table, `PRESETS`, not in the registry's ``FACTORIES``: a dotted name
passed to ``jaxinit.get`` is looked up here. Every preset takes ``dtype=None`` (the default
dtype; not repeated in each docstring); a few need a number the weight's shape does not carry
(``fan_in`` for a torch bias, ``hidden_size`` for a torch RNN). This module defines the PyTorch,
Keras, Haiku and Flax presets (and every framework's zeros and ones); presets_caffe_mxnet_tf1.py
defines the Caffe, MXNet and TF1 ones, which `PRESETS` includes.

Examples:
  >>> import jax, jaxinit
  >>> jaxinit.get("torch.linear.bias", fan_in=256)
  uniform_range(minval=-0.0625, maxval=0.0625, dtype=None)
  >>> w = jaxinit.get("keras.embedding.embeddings")(jax.random.key(0), (1000, 64))
  >>> bool(abs(w).max() <= 0.05)
  True
  >>> "torch.rnn.recurrent_kernel" in jaxinit.preset_names()
  True
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from jaxinit._src.catalog.presets_caffe_mxnet_tf1 import LEGACY, Preset
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.samplers import TRUNC_STD_2
from jaxinit._src.core.typing import DTypeLike
from jaxinit._src.core.validation import check_int
from jaxinit._src.schemes.constant import Ones, Zeros
from jaxinit._src.schemes.elementwise import Normal, TruncatedNormal, UniformRange
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.recurrent import LstmForgetBias
from jaxinit._src.schemes.variance import GlorotUniform, HeUniform, LecunNormal, VarianceScaling

#: Preset factory by dotted name (the Caffe, MXNet and TF1 ones from presets_caffe_mxnet_tf1.py).
PRESETS: dict[str, Preset] = dict(LEGACY)

_UNKNOWN_ERROR = (
    "`identifier`: unknown preset name {name!r}.{hint} Valid names: `jaxinit.preset_names()`."
)


def _preset(*names: str) -> Callable[[Preset], Preset]:
    """Registers a preset factory under `names` (aliases share one docstring)."""

    def register(fn: Preset) -> Preset:
        for name in names:
            PRESETS[name] = fn
        return fn

    return register


def names() -> list[str]:
    """Every framework preset name `jaxinit.get` accepts, sorted.

    Returns:
      The dotted names, e.g. ``"torch.linear.kernel"``.

    Examples:
      >>> import jaxinit
      >>> [n for n in jaxinit.preset_names() if n.startswith("haiku.")]
      ['haiku.conv.b', 'haiku.conv.w', 'haiku.embed.embeddings', 'haiku.layer_norm.offset', \
'haiku.layer_norm.scale', 'haiku.linear.b', 'haiku.linear.w']
    """
    return sorted(PRESETS)


def lookup(name: str) -> Preset:
    """The preset factory named `name`; a ``ValueError`` with close matches otherwise."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name.lower(), names(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(_UNKNOWN_ERROR.format(name=name, hint=hint))
    return PRESETS[name]


def build(name: str, kwargs: Mapping[str, Any]) -> BaseInitializer:
    """Builds the preset `name` with `kwargs`, checking their names first.

    Raises:
      ValueError: for an unknown name (with close matches) or a bad value.
      TypeError: for an unknown parameter, or a missing required one (both named).
    """
    factory = lookup(name)
    params = inspect.signature(factory).parameters
    valid = ", ".join(params)
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(
            f"{name}() got unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"valid parameters: {valid}."
        )
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise TypeError(
            f"{name}() is missing the required parameter(s) "
            f"{', '.join(f'`{m}`' for m in missing)}; valid parameters: {valid}."
        )
    return factory(**kwargs)


def _symmetric(bound: float, dtype: DTypeLike | None) -> BaseInitializer:
    """U(-bound, bound); a zero bound gives zeros (torch's ``uniform_(-0, 0)``)."""
    return UniformRange(-bound, bound, dtype) if bound > 0 else Zeros(dtype)


def _inv_sqrt(arg: str, n: Any, minimum: int) -> float:
    n = check_int(arg, n, minimum=minimum)
    return 1.0 / math.sqrt(n) if n > 0 else 0.0


# -- PyTorch ---------------------------------------------------------------------------------------
@_preset("torch.linear.kernel", "torch.conv.kernel")
def torch_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Linear`` / ``nn.Conv*`` weight: ``kaiming_uniform_(w, a=sqrt(5))``.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{\tfrac{2}{1 + 5}}\sqrt{\tfrac{3}
              {\text{fan\_in}}} = \frac{1}{\sqrt{\text{fan\_in}}}

    fan_in is ``in`` for a dense ``(in, out)`` kernel and ``kh*kw*in/groups`` for an HWIO conv
    kernel: torch's fan_in of its ``(out, in/groups, kh, kw)`` weight. (torch's ConvTranspose
    fan, ``out/groups*k``, is not this one.)

    References:
      Source: PyTorch, ``torch/nn/modules/linear.py`` and ``torch/nn/modules/conv.py``,
      ``Linear.reset_parameters`` / ``_ConvNd.reset_parameters``.
    """
    return HeUniform(dtype=dtype, nonlinearity="leaky_relu", negative_slope=math.sqrt(5.0))


@_preset("torch.linear.bias", "torch.conv.bias")
def torch_bias(*, fan_in: int, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Linear`` / ``nn.Conv*`` bias: uniform with the weight's fan_in.

    .. math:: b \sim \mathcal{U}[-c, c),\quad c = 1/\sqrt{\text{fan\_in}}\ \
              (c = 0 \text{ when fan\_in} = 0)

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


@_preset("torch.embedding.embedding")
def torch_embedding(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.Embedding`` weight: ``normal_(w)``.

    .. math:: w \sim \mathcal{N}(0, 1)

    References:
      Source: PyTorch, ``torch/nn/modules/sparse.py``, ``Embedding.reset_parameters``.
    """
    return Normal(1.0, dtype)


@_preset("torch.rnn.kernel", "torch.rnn.recurrent_kernel", "torch.rnn.bias")
def torch_rnn(*, hidden_size: int, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``: every weight and bias is uniform.

    .. math:: w \sim \mathcal{U}[-c, c),\quad c = 1/\sqrt{\text{hidden\_size}}

    The same law for the input kernel (``weight_ih``), the recurrent kernel (``weight_hh``) and
    both biases, fused gates included.

    Args:
      hidden_size: the cell's hidden size (>= 1).

    Raises:
      TypeError: for a non-integer `hidden_size`.
      ValueError: for ``hidden_size < 1``.

    References:
      Source: PyTorch, ``torch/nn/modules/rnn.py``, ``RNNBase.reset_parameters``.
    """
    return _symmetric(_inv_sqrt("hidden_size", hidden_size, 1), dtype)


# -- Keras 3 ---------------------------------------------------------------------------------------
@_preset("keras.dense.kernel", "keras.conv.kernel", "keras.lstm.kernel")
def keras_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``Dense``, ``Conv*`` and ``LSTM`` (input) kernel: ``"glorot_uniform"``.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}

    Keras's conv fans use the receptive field ``prod(shape[:-2])``, as here for HWIO kernels.

    References:
      Source: Keras 3, ``keras/src/layers/core/dense.py`` (``Dense.__init__``),
      ``keras/src/layers/convolutional/base_conv.py``, ``keras/src/layers/rnn/lstm.py``.
    """
    return GlorotUniform(dtype=dtype)


@_preset("keras.embedding.embeddings")
def keras_embedding(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``Embedding`` embeddings: ``"uniform"``, i.e. ``RandomUniform(-0.05, 0.05)``.

    .. math:: w \sim \mathcal{U}[-0.05, 0.05)

    References:
      Source: Keras 3, ``keras/src/layers/core/embedding.py`` (``Embedding.__init__``) and
      ``keras/src/initializers/random_initializers.py`` (``RandomUniform``).
    """
    return UniformRange(-0.05, 0.05, dtype)


@_preset("keras.lstm.recurrent_kernel")
def keras_recurrent_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``LSTM``/``GRU`` recurrent kernel: ``"orthogonal"`` over the fused matrix.

    One Haar matrix over the whole ``(units, gates * units)`` kernel (rows orthonormal):

    .. math:: W W^\top = I

    References:
      Source: Keras 3, ``keras/src/layers/rnn/lstm.py`` (``LSTMCell.__init__``) and
      ``keras/src/initializers/random_initializers.py`` (``Orthogonal``).
    """
    return Orthogonal(dtype=dtype)


@_preset("keras.lstm.bias")
def keras_lstm_bias(
    *, unit_forget_bias: bool = True, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""Keras ``LSTM`` bias: zeros, with ``unit_forget_bias`` ones in the forget gate's block.

    Keras's gate order is ``i, f, c, o``, so for a bias ``(4 * units,)``:

    .. math:: b_{[u, 2u)} = 1,\quad b_j = 0 \text{ elsewhere}

    Args:
      unit_forget_bias: Keras's flag (default True); False gives zeros.

    Raises:
      TypeError: for a non-boolean `unit_forget_bias`.

    References:
      Source: Keras 3, ``keras/src/layers/rnn/lstm.py``, ``LSTMCell.build``
      (``concat(bias_init(units), ones(units), bias_init(2 * units))``).
    """
    if not isinstance(unit_forget_bias, bool):
        raise TypeError(f"`unit_forget_bias` must be True or False; got {unit_forget_bias!r}.")
    return LstmForgetBias(1.0, 4, 1, dtype) if unit_forget_bias else Zeros(dtype)


# -- Haiku -----------------------------------------------------------------------------------------
@_preset("haiku.linear.w", "haiku.conv.w")
def haiku_w(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Haiku ``Linear`` / ``ConvND`` weight: ``TruncatedNormal(1 / sqrt(fan_in))``.

    Haiku's ``stddev`` is the std *before* truncation at 2 std and it does not correct for the
    truncation, so the actual std is ``0.8796 / sqrt(fan_in)``. As a variance scheme (so that it
    takes a layer's fans) that is ``variance_scaling(0.8796**2, "fan_in", "truncated_normal")``,
    whose correction by 0.8796 cancels:

    .. math:: w = \frac{z}{\sqrt{\text{fan\_in}}},\quad z \sim \mathcal{N}(0, 1)
              \text{ truncated to } (-2, 2)

    fan_in is ``in`` for a dense kernel and ``prod(w_shape[:-1])`` for a conv kernel.

    References:
      Source: Haiku, ``haiku/_src/basic.py`` (``Linear.__call__``) and ``haiku/_src/conv.py``
      (``ConvND.__call__``).
    """
    return VarianceScaling(TRUNC_STD_2**2, "fan_in", "truncated_normal", dtype=dtype)


@_preset("haiku.embed.embeddings")
def haiku_embed(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Haiku ``Embed`` embeddings: ``TruncatedNormal()`` (stddev 1 before truncation).

    .. math:: w \sim \mathcal{N}(0, 1) \text{ truncated to } (-2, 2),\quad
              \operatorname{std}(w) = 0.8796

    References:
      Source: Haiku, ``haiku/_src/embed.py``, ``Embed.__init__``.
    """
    return TruncatedNormal(1.0, dtype)


# -- Flax ------------------------------------------------------------------------------------------
@_preset("flax.dense.kernel", "flax.conv.kernel")
def flax_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax ``Dense``/``Linear``/``Conv`` kernel: ``lecun_normal()`` (truncated, corrected).

    .. math:: \operatorname{std}(w) = 1/\sqrt{\text{fan\_in}}

    References:
      Source: Flax, ``flax/linen/linear.py`` and ``flax/nnx/nn/linear.py``,
      ``default_kernel_init``.
    """
    return LecunNormal(dtype=dtype)


@_preset("flax.embed.embedding")
def flax_embed(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax ``Embed`` embedding: ``variance_scaling(1.0, "fan_in", "normal", out_axis=0)``.

    In and out axes overlap on ``(vocab, features)``, so fan_in is ``features`` (untruncated):

    .. math:: w \sim \mathcal{N}(0, 1/\text{features})

    References:
      Source: Flax, ``flax/linen/linear.py`` and ``flax/nnx/nn/linear.py``,
      ``default_embed_init``.
    """
    return VarianceScaling(1.0, "fan_in", "normal", out_axis=0, dtype=dtype)


@_preset("flax.lstm.recurrent_kernel")
def flax_recurrent_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Flax recurrent cells' recurrent kernel: ``orthogonal()``.

    .. math:: W^\top W = I \ (\text{or } W W^\top = I \text{ for a wide kernel})

    References:
      Source: Flax, ``flax/linen/recurrent.py`` and ``flax/nnx/nn/recurrent.py``,
      ``recurrent_kernel_init``.
    """
    return Orthogonal(dtype=dtype)


# -- zeros and ones --------------------------------------------------------------------------------
def _constant(value: int, what: str, source: str, names: tuple[str, ...]) -> None:
    """Registers the zeros (`value` 0) or ones (1) preset of `what` under `names`."""
    cls = Ones if value else Zeros

    def preset(*, dtype: DTypeLike | None = None) -> BaseInitializer:
        return cls(dtype)

    preset.__name__ = preset.__qualname__ = names[0].replace(".", "_")
    preset.__doc__ = f"""{what}: {"ones" if value else "zeros"}.

    .. math:: w = {value}

    References:
      Source: {source}.
    """
    _preset(*names)(preset)


_TORCH_NORM = "PyTorch, ``torch/nn/modules/normalization.py``, ``LayerNorm.reset_parameters``"
_KERAS_NORM = "Keras 3, ``keras/src/layers/normalization/layer_normalization.py``, ``__init__``"
_HAIKU_NORM = "Haiku, ``haiku/_src/layer_norm.py``, ``LayerNorm.__call__``"
_FLAX_NORM = "Flax, ``flax/linen/normalization.py``, ``LayerNorm`` (``scale_init``, ``bias_init``)"
#: (value, what, source, names) of each zeros (0) or ones (1) preset.
_CONSTANTS: tuple[tuple[int, str, str, tuple[str, ...]], ...] = (
    (1, "PyTorch ``nn.LayerNorm`` (and ``BatchNorm``, ``GroupNorm``) weight", _TORCH_NORM,
     ("torch.layer_norm.scale",)),
    (0, "PyTorch ``nn.LayerNorm`` (and ``BatchNorm``, ``GroupNorm``) bias", _TORCH_NORM,
     ("torch.layer_norm.bias",)),
    (0, "Keras ``Dense`` / ``Conv*`` bias (``bias_initializer='zeros'``)",
     "Keras 3, ``keras/src/layers/core/dense.py``, ``Dense.__init__``",
     ("keras.dense.bias", "keras.conv.bias")),
    (1, "Keras ``LayerNormalization`` gamma", _KERAS_NORM, ("keras.layer_norm.gamma",)),
    (0, "Keras ``LayerNormalization`` beta", _KERAS_NORM, ("keras.layer_norm.beta",)),
    (0, "Haiku ``Linear`` / ``ConvND`` bias (``b_init``)",
     "Haiku, ``haiku/_src/basic.py``, ``Linear.__call__``", ("haiku.linear.b", "haiku.conv.b")),
    (1, "Haiku ``LayerNorm`` scale", _HAIKU_NORM, ("haiku.layer_norm.scale",)),
    (0, "Haiku ``LayerNorm`` offset", _HAIKU_NORM, ("haiku.layer_norm.offset",)),
    (0, "Flax ``Dense``/``Linear``/``Conv`` bias (``zeros_init()``)",
     "Flax, ``flax/linen/linear.py`` and ``flax/nnx/nn/linear.py``, ``default_bias_init``",
     ("flax.dense.bias", "flax.conv.bias")),
    (1, "Flax ``LayerNorm``/``RMSNorm`` scale", _FLAX_NORM, ("flax.layer_norm.scale",)),
    (0, "Flax ``LayerNorm`` bias", _FLAX_NORM, ("flax.layer_norm.bias",)),
    (0, "TF1 ``zeros_initializer``", "TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Zeros``",
     ("tf1.zeros",)),
    (1, "TF1 ``ones_initializer``", "TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Ones``",
     ("tf1.ones",)),
)  # fmt: skip
for _value, _what, _source, _names in _CONSTANTS:
    _constant(_value, _what, _source, _names)
