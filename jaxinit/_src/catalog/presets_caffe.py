"""BVLC Caffe's fillers by name (``caffe.*``): the presets' conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("caffe.msra", variance_norm="AVERAGE").variance_norm
  'average'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike, RealNumeric
from jaxinit._src.core.validation import check_choice
from jaxinit._src.schemes.constant import Constant
from jaxinit._src.schemes.elementwise import UniformRange
from jaxinit._src.schemes.frameworks import CAFFE_NORMS, CaffeGaussian, CaffeMSRA, CaffeXavier
from jaxinit._src.schemes.structured import Bilinear, PositiveUnitball

#: Caffe's ``variance_norm`` spellings (any case is accepted).
_VARIANCE_NORMS = tuple(norm.upper() for norm in CAFFE_NORMS)


def _caffe_norm(variance_norm: Any) -> str:
    upper = variance_norm.upper() if isinstance(variance_norm, str) else variance_norm
    return check_choice("variance_norm", upper, _VARIANCE_NORMS).lower()


def _variance_filler(filler: str, cls: Callable[..., Any], summary: str, math_: str) -> None:
    """Registers ``caffe.<filler>``: `cls` with Caffe's upper-case ``variance_norm`` spellings."""

    def preset(*, variance_norm: str = "FAN_IN", dtype: DTypeLike | None = None) -> BaseInitializer:
        return cls(_caffe_norm(variance_norm), dtype=dtype)

    preset.__name__ = preset.__qualname__ = f"caffe_{filler}"
    source = cls.__name__.removeprefix("Caffe")  # CaffeMSRA -> MSRA, as Caffe's MSRAFiller
    preset.__doc__ = rf"""Caffe ``{filler}`` filler: {summary}.

    .. math:: {math_}

    Args:
      variance_norm: ``"FAN_IN"`` (n = fan_in), ``"FAN_OUT"`` or ``"AVERAGE"`` (any case).

    Raises:
      ValueError: for another `variance_norm`.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``{source}Filler::Fill``.
    """
    register(f"caffe.{filler}")(preset)


_variance_filler(
    "xavier", CaffeXavier, "uniform with variance ``1/n`` (LeCun uniform by default)",
    r"w \sim \mathcal{U}[-b, b),\quad b = \sqrt{3/n}",
)  # fmt: skip
_variance_filler(
    "msra", CaffeMSRA, "an untruncated normal with variance ``2/n``",
    r"w \sim \mathcal{N}(0, 2/n)",
)  # fmt: skip


@register("caffe.gaussian")
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


@register("caffe.uniform")
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


@register("caffe.positive_unitball")
def caffe_positive_unitball(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``positive_unitball`` filler: U[0, 1) normalized to sum 1 per output unit.

    .. math:: W_{\ldots, o} = U_{\ldots, o} / \textstyle\sum U_{\ldots, o}

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``PositiveUnitballFiller::Fill``.
    """
    return PositiveUnitball(dtype)


@register("caffe.bilinear")
def caffe_bilinear(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``bilinear`` filler: upsampling kernels (HWIO ``(K, K, 1, C)`` for group=C).

    .. math:: w(x, y) = (1 - |x/f - c|)(1 - |y/f - c|),\quad f = \lceil K/2 \rceil,\
              c = (K - 1)/(2f)

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``BilinearFiller::Fill``.
    """
    return Bilinear(dtype)


@register("caffe.constant")
def caffe_constant(*, value: Any = 0.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Caffe ``constant`` filler (Caffe's default filler, value 0).

    .. math:: w = \text{value}

    Args:
      value: the value.

    References:
      Source: BVLC Caffe, ``include/caffe/filler.hpp``, ``ConstantFiller::Fill``.
    """
    return Constant(value, dtype)
