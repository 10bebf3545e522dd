r"""Framework defaults by name, the legacy frameworks: Caffe, MXNet and TF1 (``tf.compat.v1``).

The conventions are presets.py's (JAX layouts, every preset takes ``dtype=None``); the presets
are registered here in `LEGACY`, which presets.py's table ``PRESETS`` includes, so
``jaxinit.get("caffe.msra")`` and ``jaxinit.preset_names()`` see them.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("tf1.variance_scaling", distribution="normal").distribution
  'truncated_normal'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike, RealNumeric
from jaxinit._src.core.validation import check_choice
from jaxinit._src.schemes.constant import Constant
from jaxinit._src.schemes.elementwise import Normal, TruncatedNormal, UniformRange
from jaxinit._src.schemes.frameworks import (
    CaffeGaussian,
    CaffeMSRA,
    CaffeXavier,
    MSRAPrelu,
    MXNetXavier,
    UniformUnitScaling,
)
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.recurrent import LstmForgetBias
from jaxinit._src.schemes.structured import Bilinear, Identity, PositiveUnitball
from jaxinit._src.schemes.variance import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
)

Preset = Callable[..., BaseInitializer]

#: Legacy preset factory by dotted name; presets.py's ``PRESETS`` includes every one.
LEGACY: dict[str, Preset] = {}

_CAFFE_NORMS = ("FAN_IN", "FAN_OUT", "AVERAGE")
_TF1_MODES = ("fan_in", "fan_out", "fan_avg")
#: TF1 ``VarianceScaling`` distribution -> jaxinit's; TF1's deprecated "normal" is truncated.
_TF1_DISTRIBUTIONS = {
    "truncated_normal": "truncated_normal",
    "normal": "truncated_normal",
    "untruncated_normal": "normal",
    "uniform": "uniform",
}


def _preset(*names: str) -> Callable[[Preset], Preset]:
    """Registers a legacy preset factory under `names` in `LEGACY`."""

    def register(fn: Preset) -> Preset:
        LEGACY.update(dict.fromkeys(names, fn))
        return fn

    return register


# -- Caffe -----------------------------------------------------------------------------------------
def _caffe_norm(variance_norm: Any) -> str:
    upper = variance_norm.upper() if isinstance(variance_norm, str) else variance_norm
    return check_choice("variance_norm", upper, _CAFFE_NORMS).lower()


@_preset("caffe.xavier")
def caffe_xavier(
    *, variance_norm: str = "FAN_IN", dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""Caffe ``xavier`` filler: uniform with variance ``1/n`` (LeCun uniform by default).

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \sqrt{3/n}

    Args:
      variance_norm: ``"FAN_IN"`` (n = fan_in), ``"FAN_OUT"`` or ``"AVERAGE"`` (any case).

    Raises:
      ValueError: for another `variance_norm`.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``XavierFiller::Fill``.
    """
    return CaffeXavier(_caffe_norm(variance_norm), dtype=dtype)


@_preset("caffe.msra")
def caffe_msra(*, variance_norm: str = "FAN_IN", dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``msra`` filler: an untruncated normal with variance ``2/n``.

    .. math:: w \sim \mathcal{N}(0, 2/n)

    Args:
      variance_norm: ``"FAN_IN"`` (n = fan_in), ``"FAN_OUT"`` or ``"AVERAGE"`` (any case).

    Raises:
      ValueError: for another `variance_norm`.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``MSRAFiller::Fill``.
    """
    return CaffeMSRA(_caffe_norm(variance_norm), dtype=dtype)


@_preset("caffe.gaussian")
def caffe_gaussian(
    *,
    mean: RealNumeric = 0.0,
    std: RealNumeric = 1.0,
    sparse: int = -1,
    dtype: DTypeLike | None = None,
) -> BaseInitializer:
    r"""Caffe ``gaussian`` filler, optionally sparse (Bernoulli mask, no rescaling).

    .. math:: w = m \cdot z,\quad z \sim \mathcal{N}(\text{mean}, \text{std}^2),\quad
              m \sim \text{Bernoulli}(\text{sparse} / \text{num\_outputs})

    (``m = 1`` for the default ``sparse=-1``; ``num_outputs = shape[-1]`` in JAX layout.)

    Args:
      mean: the mean.
      std: the standard deviation.
      sparse: ``-1`` (dense) or the expected number of non-zero outputs per input.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``GaussianFiller::Fill``.
    """
    return CaffeGaussian(std, mean, sparse, dtype)


@_preset("caffe.uniform")
def caffe_uniform(
    *, min: RealNumeric = 0.0, max: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""Caffe ``uniform`` filler.

    .. math:: w \sim \mathcal{U}[\text{min}, \text{max})

    Args:
      min: the lower bound (Caffe's ``FillerParameter.min``).
      max: the upper bound (> `min`).

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``UniformFiller::Fill``.
    """
    return UniformRange(min, max, dtype)


@_preset("caffe.positive_unitball")
def caffe_positive_unitball(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``positive_unitball`` filler: U[0, 1) normalized to sum 1 per output unit.

    .. math:: W_{\ldots, o} = U_{\ldots, o} / \textstyle\sum U_{\ldots, o}

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``PositiveUnitballFiller::Fill``.
    """
    return PositiveUnitball(dtype)


@_preset("caffe.bilinear")
def caffe_bilinear(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``bilinear`` filler: upsampling kernels (HWIO ``(K, K, 1, C)`` for group=C).

    .. math:: w(x, y) = (1 - |x/f - c|)(1 - |y/f - c|),\quad f = \lceil K/2 \rceil,\
              c = (K - 1)/(2f)

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``BilinearFiller::Fill``.
    """
    return Bilinear(dtype)


@_preset("caffe.constant")
def caffe_constant(*, value: Any = 0.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``constant`` filler (Caffe's default filler, value 0).

    .. math:: w = \text{value}

    Args:
      value: the value.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``ConstantFiller::Fill``.
    """
    return Constant(value, dtype)


# -- MXNet -----------------------------------------------------------------------------------------
@_preset("mxnet.xavier")
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


@_preset("mxnet.msra_prelu")
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


@_preset("mxnet.lstm_bias")
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


@_preset("mxnet.uniform")
def mxnet_uniform(*, scale: RealNumeric = 0.07, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""MXNet ``Uniform``: symmetric uniform.

    .. math:: w \sim \mathcal{U}[-\text{scale}, \text{scale})

    Args:
      scale: the bound (> 0).

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Uniform._init_weight``.
    """
    return UniformRange(-scale, scale, dtype)


@_preset("mxnet.normal")
def mxnet_normal(*, sigma: RealNumeric = 0.01, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""MXNet ``Normal``.

    .. math:: w \sim \mathcal{N}(0, \sigma^2)

    Args:
      sigma: the standard deviation.

    References:
      Source: Apache MXNet, ``python/mxnet/initializer.py``, ``Normal._init_weight``.
    """
    return Normal(sigma, dtype)


@_preset("mxnet.orthogonal")
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


# -- TensorFlow 1 (tf.compat.v1 init_ops) ----------------------------------------------------------


@_preset("tf1.constant")
def tf1_constant(*, value: Any = 0.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``constant_initializer`` (a scalar or an array that broadcasts to the shape).

    .. math:: w = \text{value}

    Args:
      value: the value.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Constant``.
    """
    return Constant(value, dtype)


@_preset("tf1.random_uniform")
def tf1_random_uniform(
    *, minval: RealNumeric = 0.0, maxval: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""TF1 ``random_uniform_initializer`` (``maxval=None`` means 1 for floats).

    .. math:: w \sim \mathcal{U}[\text{minval}, \text{maxval})

    Args:
      minval: the lower bound.
      maxval: the upper bound (> `minval`).

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``RandomUniform``.
    """
    return UniformRange(minval, maxval, dtype)


@_preset("tf1.random_normal")
def tf1_random_normal(
    *, mean: RealNumeric = 0.0, stddev: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""TF1 ``random_normal_initializer``.

    .. math:: w \sim \mathcal{N}(\text{mean}, \text{stddev}^2)

    Args:
      mean: the mean.
      stddev: the standard deviation.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``RandomNormal``.
    """
    return Normal(stddev, dtype, mean=mean)


@_preset("tf1.truncated_normal")
def tf1_truncated_normal(
    *, mean: RealNumeric = 0.0, stddev: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""TF1 ``truncated_normal_initializer``: redrawn beyond 2 std, *no* variance correction.

    .. math:: w \sim \mathcal{N}(\text{mean}, \text{stddev}^2) \text{ truncated to }
              \text{mean} \pm 2\,\text{stddev},\quad \operatorname{std}(w) = 0.8796\,\text{stddev}

    Args:
      mean: the mean.
      stddev: the std before truncation.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``TruncatedNormal``.
    """
    return TruncatedNormal(stddev, dtype, mean=mean)


@_preset("tf1.uniform_unit_scaling")
def tf1_uniform_unit_scaling(
    *, factor: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""TF1 ``uniform_unit_scaling_initializer``.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \text{factor}\sqrt{3 / \textstyle\prod
              \text{shape}[:-1]}

    Args:
      factor: the multiplier.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``UniformUnitScaling``.
    """
    return UniformUnitScaling(factor, dtype)


@_preset("tf1.variance_scaling")
def tf1_variance_scaling(
    *,
    scale: RealNumeric = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    dtype: DTypeLike | None = None,
) -> BaseInitializer:
    r"""TF1 ``variance_scaling_initializer`` with TF1's distribution names.

    ``"truncated_normal"`` and TF1's deprecated ``"normal"`` are both the truncated normal with
    the 0.8796 correction; ``"untruncated_normal"`` is the plain normal:

    .. math:: \operatorname{Var}(w) = \text{scale} / n,\quad n \in \{\text{fan\_in},
              \text{fan\_out}, (\text{fan\_in} + \text{fan\_out})/2\}

    TF1 gives a 1-D shape the fans ``(n, n)``; here rank >= 2 is needed (or explicit axes).

    Args:
      scale: the variance multiplier.
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"``, ``"untruncated_normal"`` or
        ``"uniform"``.

    Raises:
      ValueError: for another `mode` or `distribution`.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``VarianceScaling``.
    """
    check_choice("mode", mode, _TF1_MODES)
    check_choice("distribution", distribution, _TF1_DISTRIBUTIONS)
    return VarianceScaling(scale, mode, _TF1_DISTRIBUTIONS[distribution], dtype=dtype)


@_preset("tf1.orthogonal")
def tf1_orthogonal(*, gain: RealNumeric = 1.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``orthogonal_initializer``: Haar over ``(prod(shape[:-1]), shape[-1])``.

    .. math:: W^\top W = \text{gain}^2 I \ (\text{or } W W^\top = \text{gain}^2 I)

    Args:
      gain: the multiplier.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Orthogonal``.
    """
    return Orthogonal(gain, dtype=dtype)


@_preset("tf1.identity")
def tf1_identity(*, gain: RealNumeric = 1.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``identity_initializer`` (TF1 takes 2-D shapes only; leading axes batch here).

    .. math:: W = \text{gain} \cdot I

    Args:
      gain: the multiplier.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Identity``.
    """
    return Identity(gain, dtype)


def _tf1_named(name: str, factory: Any, math_: str) -> None:
    """Registers the TF1 named specialization `name` of ``VarianceScaling``."""

    def preset(*, dtype: DTypeLike | None = None) -> BaseInitializer:
        return factory(dtype=dtype)

    scale, mode, distribution = factory().scheme()
    preset.__name__ = preset.__qualname__ = f"tf1_{name}"
    summary = (
        f'TF1 ``{name}_initializer``: ``VarianceScaling({scale}, "{mode}", "{distribution}")``.'
    )
    preset.__doc__ = rf"""{summary}

    .. math:: {math_}

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``{name}_initializer``.
    """
    _preset(f"tf1.{name}")(preset)


_TRUNC = r"\text{, truncated at 2 std (corrected by 0.8796)}"
for _name, _factory, _math in (
    ("glorot_uniform", GlorotUniform, r"b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}"),
    ("glorot_normal", GlorotNormal, r"\sigma = \sqrt{2 / (\text{fan\_in} + \text{fan\_out})}"),
    ("lecun_uniform", LecunUniform, r"b = \sqrt{3 / \text{fan\_in}}"),
    ("lecun_normal", LecunNormal, r"\sigma = \sqrt{1 / \text{fan\_in}}"),
    ("he_uniform", HeUniform, r"b = \sqrt{6 / \text{fan\_in}}"),
    ("he_normal", HeNormal, r"\sigma = \sqrt{2 / \text{fan\_in}}"),
):
    _tf1_named(_name, _factory, _math + (_TRUNC if "normal" in _name else r",\ \mathcal{U}[-b, b)"))
