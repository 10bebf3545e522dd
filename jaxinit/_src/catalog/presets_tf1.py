"""TF1's (``tf.compat.v1``) initializers by name (``tf1.*``): the conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("tf1.variance_scaling", distribution="normal").distribution
  'truncated_normal'
"""

from __future__ import annotations

from typing import Any

from jaxinit._src.catalog.presets import dtype_preset
from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike, RealNumeric
from jaxinit._src.core.validation import check_choice
from jaxinit._src.schemes.constant import Constant
from jaxinit._src.schemes.elementwise import Normal, TruncatedNormal, UniformRange
from jaxinit._src.schemes.frameworks import UniformUnitScaling
from jaxinit._src.schemes.orthogonal import Orthogonal
from jaxinit._src.schemes.structured import Identity
from jaxinit._src.schemes.variance import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
)

_TF1_MODES = ("fan_in", "fan_out", "fan_avg")
#: TF1 ``VarianceScaling`` distribution -> jaxinit's; TF1's deprecated "normal" is truncated.
_TF1_DISTRIBUTIONS = {
    "truncated_normal": "truncated_normal",
    "normal": "truncated_normal",
    "untruncated_normal": "normal",
    "uniform": "uniform",
}


@register("tf1.constant")
def tf1_constant(*, value: Any = 0.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``constant_initializer``: `value`, a scalar or an array that broadcasts to the shape.

    .. math:: w = \text{value}

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Constant``.
    """
    return Constant(value, dtype)


@register("tf1.random_uniform")
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


def _normal(name: str, cls: Any, summary: str, math_: str, stddev: str, source: str) -> None:
    """Registers ``tf1.<name>``: `cls` (a normal) from TF1's ``mean`` and ``stddev``."""

    def preset(
        *, mean: RealNumeric = 0.0, stddev: RealNumeric = 1.0, dtype: DTypeLike | None = None
    ) -> BaseInitializer:
        return cls(stddev, dtype, mean=mean)

    preset.__name__ = preset.__qualname__ = f"tf1_{name}"
    preset.__doc__ = rf"""TF1 ``{name}_initializer``{summary}.

    .. math:: {math_}

    Args:
      mean: the mean.
      stddev: {stddev}.

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``{source}``.
    """
    register(f"tf1.{name}")(preset)


_normal(
    "random_normal", Normal, "", r"w \sim \mathcal{N}(\text{mean}, \text{stddev}^2)",
    "the standard deviation", "RandomNormal",
)  # fmt: skip
_normal(
    "truncated_normal", TruncatedNormal, ": redrawn beyond 2 std, *no* variance correction",
    r"""w \sim \mathcal{N}(\text{mean}, \text{stddev}^2) \text{ truncated to }
              \text{mean} \pm 2\,\text{stddev},\quad
              \operatorname{std}(w) = 0.8796\,\text{stddev}""",
    "the std before truncation", "TruncatedNormal",
)  # fmt: skip


@register("tf1.uniform_unit_scaling")
def tf1_uniform_unit_scaling(
    *, factor: RealNumeric = 1.0, dtype: DTypeLike | None = None
) -> BaseInitializer:
    r"""TF1 ``uniform_unit_scaling_initializer``: a uniform scaled by the multiplier `factor`.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \text{factor}\sqrt{3 / \textstyle\prod
              \text{shape}[:-1]}

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``UniformUnitScaling``.
    """
    return UniformUnitScaling(factor, dtype)


@register("tf1.variance_scaling")
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


@register("tf1.orthogonal")
def tf1_orthogonal(*, gain: RealNumeric = 1.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``orthogonal_initializer``: Haar over ``(prod(shape[:-1]), shape[-1])``, times `gain`.

    .. math:: W^\top W = \text{gain}^2 I \ (\text{or } W W^\top = \text{gain}^2 I)

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Orthogonal``.
    """
    return Orthogonal(gain, dtype=dtype)


@register("tf1.identity")
def tf1_identity(*, gain: RealNumeric = 1.0, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""TF1 ``identity_initializer``: `gain` times the identity (TF1 takes 2-D shapes only;
    leading axes batch here).

    .. math:: W = \text{gain} \cdot I

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``Identity``.
    """
    return Identity(gain, dtype)


def _named(name: str, factory: Any, math_: str) -> None:
    """Registers the TF1 named specialization `name` of ``VarianceScaling``."""
    scale, mode, distribution = factory().scheme()
    summary = (
        f'TF1 ``{name}_initializer``: ``VarianceScaling({scale}, "{mode}", "{distribution}")``.'
    )
    doc = rf"""{summary}

    .. math:: {math_}

    References:
      Source: TensorFlow, ``tensorflow/python/ops/init_ops.py``, ``{name}_initializer``.
    """
    dtype_preset((f"tf1.{name}",), lambda dtype: factory(dtype=dtype), doc)


_TRUNC = r"\text{, truncated at 2 std (corrected by 0.8796)}"
for _name, _factory, _math in (
    ("glorot_uniform", GlorotUniform, r"b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}"),
    ("glorot_normal", GlorotNormal, r"\sigma = \sqrt{2 / (\text{fan\_in} + \text{fan\_out})}"),
    ("lecun_uniform", LecunUniform, r"b = \sqrt{3 / \text{fan\_in}}"),
    ("lecun_normal", LecunNormal, r"\sigma = \sqrt{1 / \text{fan\_in}}"),
    ("he_uniform", HeUniform, r"b = \sqrt{6 / \text{fan\_in}}"),
    ("he_normal", HeNormal, r"\sigma = \sqrt{2 / \text{fan\_in}}"),
):
    _named(_name, _factory, _math + (_TRUNC if "normal" in _name else r",\ \mathcal{U}[-b, b)"))
