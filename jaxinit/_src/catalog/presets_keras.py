"""Keras 3's defaults by name (``keras.*``): the presets' conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("keras.dense.kernel") == jaxinit.glorot_uniform()
  True
"""

from __future__ import annotations

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike
from jaxinit._src.schemes.constant import Zeros
from jaxinit._src.schemes.elementwise import UniformRange
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.recurrent import LstmForgetBias
from jaxinit._src.schemes.variance import GlorotUniform


@register("keras.dense.kernel", "keras.conv.kernel", "keras.lstm.kernel")
def keras_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``Dense``, ``Conv*`` and ``LSTM`` (input) kernel: ``"glorot_uniform"``.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}

    Keras's conv fans use the receptive field ``prod(shape[:-2])``, as here for HWIO kernels.

    Quirks reproduced (by :func:`jaxinit.flax.framework_rules`, each tested against Keras's own
    layers):

    * ``Conv1D``/``Conv2D``/``Conv3D`` with ``groups``: the kernel is ``(*k, in / groups, out)``
      and fan_out is ``prod(k) * out``, not divided by the groups.
    * ``EinsumDense`` and ``MultiHeadAttention`` (Keras 3.15 and later): fans from the einsum's
      input and output axes, a kernel axis that is also an output axis (an einsum batch label)
      counting in fan_out. Not reproduced: Keras before 3.15, which took the raw shape's fans.
    * ``LSTM``/``GRU``: glorot over the fused ``(in, gates * units)`` kernel, so an unfused
      ``nnx.LSTMCell`` gate gets its block's law, U(+-sqrt(6 / (in + 4 units))).

    References:
      Source: Keras 3, ``keras/src/layers/core/dense.py`` (``Dense.__init__``),
      ``keras/src/layers/convolutional/base_conv.py``, ``keras/src/layers/rnn/lstm.py``.
    """
    return GlorotUniform(dtype=dtype)


@register("keras.embedding.embeddings")
def keras_embedding(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``Embedding`` embeddings: ``"uniform"``, i.e. ``RandomUniform(-0.05, 0.05)``.

    .. math:: w \sim \mathcal{U}[-0.05, 0.05)

    A fixed range: the embedding's shape plays no part.

    References:
      Source: Keras 3, ``keras/src/layers/core/embedding.py`` (``Embedding.__init__``) and
      ``keras/src/initializers/random_initializers.py`` (``RandomUniform``).
    """
    return UniformRange(-0.05, 0.05, dtype)


@register("keras.lstm.recurrent_kernel")
def keras_recurrent_kernel(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Keras ``LSTM``/``GRU`` recurrent kernel: ``"orthogonal"`` over the fused matrix.

    One Haar matrix over the whole ``(units, gates * units)`` kernel (rows orthonormal):

    .. math:: W W^\top = I

    Reproduced exactly on the fused kernels of ``nnx.OptimizedLSTMCell`` and ``nnx.GRUCell``
    (the gate order does not matter to a Haar matrix). Not reproduced: an unfused
    ``nnx.LSTMCell``'s four ``(units, units)`` gate kernels are drawn apart, so
    :func:`jaxinit.flax.framework_rules` gives each ``orthogonal`` halved: the entries' variance
    ``1 / (4 units)`` is Keras's, their joint law is not.

    References:
      Source: Keras 3, ``keras/src/layers/rnn/lstm.py`` (``LSTMCell.__init__``) and
      ``keras/src/initializers/random_initializers.py`` (``Orthogonal``).
    """
    return Orthogonal(dtype=dtype)


@register("keras.lstm.bias")
def keras_lstm_bias(
    *, unit_forget_bias: bool = True, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""Keras ``LSTM`` bias: zeros, with ``unit_forget_bias`` ones in the forget gate's block.

    Keras's gate order is ``i, f, c, o``, so for a bias ``(4 * units,)``:

    .. math:: b_{[u, 2u)} = 1,\quad b_j = 0 \text{ elsewhere}

    Quirk reproduced (:func:`jaxinit.flax.framework_rules`): the forget gate's bias is one, on
    ``nnx.OptimizedLSTMCell``'s fused bias (same gate order) and on ``nnx.LSTMCell``'s ``hf``.

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
