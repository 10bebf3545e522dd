"""Apache MXNet's initializers by name (``mxnet.*``): the conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("mxnet.normal", sigma=0.1) == jaxinit.normal(0.1)
  True
"""

from __future__ import annotations

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike, RealNumeric
from jaxinit._src.schemes.elementwise import Normal, UniformRange
from jaxinit._src.schemes.frameworks import MSRAPrelu, MXNetXavier
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.recurrent import LstmForgetBias


@register("mxnet.xavier")
def mxnet_xavier(
    *,
    rnd_type: str = "uniform",
    factor_type: str = "avg",
    magnitude: RealNumeric = 3.0,
    dtype: DTypeLike | None = None,
) -> BaseInitializer:
    r"""MXNet ``Xavier``: uniform or Gaussian with ``s = sqrt(magnitude / n)``.

    .. math:: w \sim \mathcal{U}[-s, s) \ \text{or}\ \mathcal{N}(0, s^2),\quad
              s = \sqrt{\text{magnitude} / n}

    (The Gaussian has variance ``3/n`` at the default magnitude: three times Glorot normal.)

    Args:
      rnd_type: ``"uniform"`` or ``"gaussian"``.
      factor_type: ``"avg"``, ``"in"`` or ``"out"`` (n = mean fan, fan_in, fan_out).
      magnitude: the scale (> 0).

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Xavier._init_weight``.
    """
    return MXNetXavier(rnd_type, factor_type, magnitude, dtype=dtype)


@register("mxnet.msra_prelu")
def mxnet_msra_prelu(
    *, factor_type: str = "avg", slope: RealNumeric = 0.25, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""MXNet ``MSRAPrelu``: Gaussian ``Xavier`` with magnitude ``2 / (1 + slope^2)``.

    .. math:: w \sim \mathcal{N}\!\left(0, \frac{2}{(1 + \text{slope}^2)\, n}\right)

    Args:
      factor_type: ``"avg"`` (MXNet's default: the mean fan), ``"in"`` or ``"out"``.
      slope: the PReLU slope.

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``MSRAPrelu.__init__``.
    """
    return MSRAPrelu(factor_type, slope, dtype=dtype)


@register("mxnet.lstm_bias")
def mxnet_lstm_bias(
    *, forget_bias: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""MXNet ``LSTMBias``: zeros, the forget gate's quarter set to `forget_bias`.

    MXNet's gate order is ``i, f, c, o``, so for a bias ``(4H,)``:

    .. math:: b_{[H, 2H)} = \text{forget\_bias},\quad b_j = 0 \text{ elsewhere}

    Args:
      forget_bias: the forget gate's bias.

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``LSTMBias._init_weight``.
    """
    return LstmForgetBias(forget_bias, 4, 1, dtype)


@register("mxnet.uniform")
def mxnet_uniform(*, scale: RealNumeric = 0.07, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""MXNet ``Uniform``: symmetric uniform.

    .. math:: w \sim \mathcal{U}[-\text{scale}, \text{scale})

    Args:
      scale: the bound (> 0).

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Uniform._init_weight``.
    """
    return UniformRange(-scale, scale, dtype)


@register("mxnet.normal")
def mxnet_normal(*, sigma: RealNumeric = 0.01, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""MXNet ``Normal``.

    .. math:: w \sim \mathcal{N}(0, \sigma^2)

    Args:
      sigma: the standard deviation.

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Normal._init_weight``.
    """
    return Normal(sigma, dtype)


@register("mxnet.orthogonal")
def mxnet_orthogonal(
    *, scale: RealNumeric = 1.414, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""MXNet ``Orthogonal`` with its default scale 1.414, but Haar-distributed.

    MXNet takes the SVD of *uniform* noise by default, which is not Haar; this preset keeps
    MXNet's scale and semi-orthogonal structure and draws a Haar matrix (the law of MXNet's
    ``rand_type="normal"``).

    .. math:: W^\top W = \text{scale}^2 I \ (\text{or } W W^\top = \text{scale}^2 I)

    Args:
      scale: the multiplier.

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Orthogonal._init_weight``.
    """
    return Orthogonal(scale, dtype=dtype)
