"""Every framework's zeros and ones presets by name (``torch.layer_norm.bias``, ``tf1.ones``...).

One table, `_CONSTANTS`, of ``(value, what, source, names)``: each row registers (presets.py's
`dtype_preset`) a preset ``(*, dtype=None)`` returning zeros (value 0) or ones (1), documented
by the framework's layer and source like every preset.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("keras.layer_norm.gamma") == jaxinit.get("tf1.ones") == jaxinit.ones
  True
"""

from __future__ import annotations

from jaxinit._src.catalog.presets import dtype_preset
from jaxinit._src.schemes.constant import Ones, Zeros

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
    (0, "PyTorch ``nn.MultiheadAttention`` biases (``in_proj_bias``, ``out_proj.bias``)",
     "PyTorch, ``torch/nn/modules/activation.py``, ``MultiheadAttention._reset_parameters``",
     ("torch.multihead_attention.bias",)),
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
    (0, "LoRA's up-projection ``(rank, out)``: Flax ``nnx.LoRA`` ``lora_b``, PEFT ``lora_B``, "
        "Keras ``Dense.enable_lora`` ``lora_kernel_b``",
     "Flax, ``flax/nnx/nn/lora.py``, ``default_b_initializer``; PEFT, "
        "``peft/tuners/lora/layer.py``, ``reset_lora_parameters``",
     ("flax.lora.lora_b", "torch.lora.lora_b", "keras.dense.lora_kernel_b")),
    (0, "TF1 ``zeros_initializer``", "TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Zeros``",
     ("tf1.zeros",)),
    (1, "TF1 ``ones_initializer``", "TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Ones``",
     ("tf1.ones",)),
)  # fmt: skip
for _value, _what, _source, _names in _CONSTANTS:
    dtype_preset(
        _names,
        Ones if _value else Zeros,
        f"""{_what}: {"ones" if _value else "zeros"}.

    .. math:: w = {_value}

    References:
      Source: {_source}.
    """,
    )
