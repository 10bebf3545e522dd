"""Schemes of other frameworks, in JAX layouts: TF1, MXNet and Caffe.

Kernels are JAX-shaped -- dense ``(in, out)``, conv ``(*spatial, in, out)`` -- and fans follow
fans.py, which for these layouts equal each framework's own fans of its transposed layout.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import samplers, streams
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import (
    MXNET_FACTOR_TYPES,
    MXNET_RND_TYPES,
    Array,
    DTypeLike,
    KeyArray,
    RealNumeric,
)
from jaxinit._src.core.validation import check_choice, check_int, check_real, is_traced
from jaxinit._src.schemes.elementwise import Normal, normal_magnitudes
from jaxinit._src.schemes.variance import AxesFields, VarianceScheme, check_slope, documented

_MXNET_MODES = {"avg": "fan_avg", "in": "fan_in", "out": "fan_out"}
CAFFE_NORMS = {"fan_in": "fan_in", "fan_out": "fan_out", "average": "fan_avg"}


@dataclasses.dataclass(frozen=True, repr=False)
class UniformUnitScaling(BaseInitializer):
    r"""TF1 ``uniform_unit_scaling_initializer``: keeps the input scale of a linear layer.

    .. math:: w \sim \mathcal{U}[-b, b),\quad b = \text{factor}\sqrt{3 / \textstyle\prod
              \text{shape}[:-1]}

    (``prod(shape[:-1])`` is 1 for rank <= 1.)

    Args:
      factor: the multiplier (>= 0); TF1 suggests 1.43 for ReLU, 1.15 for tanh.
      dtype: the default dtype (real).

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.uniform_unit_scaling()(jax.random.key(0), (3, 3, 64, 32))
      >>> bool(abs(w).max() < (3 / 576) ** 0.5), round(float(w.std() * 576**0.5), 2)
      (True, 1.0)

    References:
      Sussillo & Abbott, `Random Walk Initialization for Training Very Deep Feedforward
      Networks <https://arxiv.org/abs/1412.6558>`_, 2014; TensorFlow 1 ``init_ops``.
    """

    name: ClassVar[str] = "uniform_unit_scaling"
    factor: RealNumeric = 1.0
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("factor", self.factor, nonnegative=True)

    def target_std(self, shape: tuple[int, ...]) -> float:
        return float(self.factor) / math.sqrt(math.prod(shape[:-1]))

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("factor", float(self.factor) * math.sqrt(3.0 / math.prod(shape[:-1])))]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        bound = self.factor * math.sqrt(3.0 / math.prod(shape[:-1]))
        return samplers.uniform(key, shape, dtype, layout, -1) * jnp.array(bound, dtype)


_MXNET_XAVIER_DOC = r"""MXNet ``Xavier(rnd_type, factor_type, magnitude)``.

    With :math:`s = \sqrt{\text{magnitude} / n}` (``n`` = mean fan, fan_in or fan_out):
    ``uniform`` gives :math:`\mathcal{U}[-s, s)` (Glorot uniform at the defaults) and
    ``gaussian`` gives :math:`\mathcal{N}(0, s^2)` -- variance ``3/n`` at the defaults, three
    times Glorot normal, as MXNet does.

    Args:
      rnd_type: ``"uniform"`` or ``"gaussian"``.
      factor_type: ``"avg"``, ``"in"`` or ``"out"``.
      magnitude: the scale (> 0).
      {axes}

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.mxnet_xavier("gaussian", "in")(jax.random.key(0), (1024, 512))
      >>> round(float(w.std() * 1024**0.5), 2)
      1.73

    References:
      Apache MXNet, ``mxnet.initializer.Xavier``.
    """


@dataclasses.dataclass(frozen=True, repr=False)
class _MXNetXavierParams(VarianceScheme):
    rnd_type: str = "uniform"
    factor_type: str = "avg"
    magnitude: RealNumeric = 3.0

    def validate(self) -> None:
        VarianceScheme.validate(self)
        check_choice("rnd_type", self.rnd_type, MXNET_RND_TYPES)
        check_choice("factor_type", self.factor_type, MXNET_FACTOR_TYPES)
        check_real("magnitude", self.magnitude, positive=True)


@documented(_MXNET_XAVIER_DOC)
@dataclasses.dataclass(frozen=True, repr=False)
class MXNetXavier(AxesFields, _MXNetXavierParams):
    name: ClassVar[str] = "mxnet_xavier"
    scale_arg: ClassVar[str | None] = "magnitude"

    def scheme(self) -> tuple[Any, str, str]:
        mode = _MXNET_MODES[self.factor_type]
        if self.rnd_type == "uniform":
            return self.magnitude / 3, mode, "uniform"  # bound sqrt(3 * scale / n)
        return self.magnitude, mode, "normal"


_MSRA_DOC = r"""MXNet ``MSRAPrelu(factor_type, slope)``: Gaussian of magnitude ``2/(1+slope^2)``.

    .. math:: w \sim \mathcal{N}\!\left(0, \frac{2}{(1 + \text{slope}^2)\, n}\right)

    Note MXNet's default divides by the *average* fan, not fan_in.

    Args:
      factor_type: ``"avg"``, ``"in"`` or ``"out"``.
      slope: the PReLU negative slope.
      {axes}

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.msra_prelu("in", 0.0)(jax.random.key(0), (1024, 512))
      >>> round(float(w.std() * 1024**0.5), 2)
      1.41

    References:
      He et al. 2015; Apache MXNet, ``mxnet.initializer.MSRAPrelu``.
    """


@dataclasses.dataclass(frozen=True, repr=False)
class _MSRAPreluParams(VarianceScheme):
    factor_type: str = "avg"
    slope: RealNumeric = 0.25

    def validate(self) -> None:
        VarianceScheme.validate(self)
        check_choice("factor_type", self.factor_type, MXNET_FACTOR_TYPES)
        check_slope("slope", self.slope)


@documented(_MSRA_DOC)
@dataclasses.dataclass(frozen=True, repr=False)
class MSRAPrelu(AxesFields, _MSRAPreluParams):
    name: ClassVar[str] = "msra_prelu"

    def scheme(self) -> tuple[Any, str, str]:
        return 2.0 / (1 + self.slope**2), _MXNET_MODES[self.factor_type], "normal"


@dataclasses.dataclass(frozen=True, repr=False)
class _CaffeParams(VarianceScheme):
    variance_norm: str = "fan_in"


_CAFFE_DOC = r"""Caffe's ``{filler}`` filler: {math}.

    {note}

    Args:
      variance_norm: ``"fan_in"``, ``"fan_out"`` or ``"average"``.
      {axes}

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.caffe_{filler}()(jax.random.key(0), (1024, 512))
      >>> round(float(w.std() * 1024**0.5), 2)
      {std}

    References:
      BVLC Caffe, ``include/caffe/filler.hpp`` (``{source}``).
    """

#: Caffe's variance fillers: filler -> (scale, distribution, math, note, source class).
_CAFFE_FILLERS = {
    "xavier": (
        1.0, "uniform", r":math:`\mathcal{U}[-b, b)`, :math:`b = \sqrt{3/n}`",
        'With the default ``variance_norm="fan_in"`` this is LeCun uniform, not Glorot.',
        "XavierFiller",
    ),
    "msra": (
        2.0, "normal", r":math:`\mathcal{N}(0, 2/n)`, untruncated",
        'With the default ``variance_norm="fan_in"`` this is He normal without truncation.',
        "MSRAFiller",
    ),
}  # fmt: skip


@dataclasses.dataclass(frozen=True, repr=False)
class _CaffeVariance(AxesFields, _CaffeParams):
    """Caffe's variance fillers: a fixed scale and distribution, the fan by `variance_norm`.

    A subclass names its filler, ``class CaffeXavier(_CaffeVariance, filler="xavier")``; its
    scale, distribution and docstring come from `_CAFFE_FILLERS` and `_CAFFE_DOC`.
    """

    caffe_scheme: ClassVar[tuple[float, str]]

    def __init_subclass__(cls, *, filler: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        scale, distribution, math_, note, source = _CAFFE_FILLERS[filler]
        cls.name = f"caffe_{filler}"
        cls.caffe_scheme = (scale, distribution)
        std = round(scale**0.5, 2)
        documented(_CAFFE_DOC, filler=filler, math=math_, note=note, std=std, source=source)(cls)

    def validate(self) -> None:
        VarianceScheme.validate(self)
        check_choice("variance_norm", self.variance_norm, CAFFE_NORMS)

    def scheme(self) -> tuple[Any, str, str]:
        scale, distribution = self.caffe_scheme
        return scale, CAFFE_NORMS[self.variance_norm], distribution


class CaffeXavier(_CaffeVariance, filler="xavier"): ...


class CaffeMSRA(_CaffeVariance, filler="msra"): ...


@dataclasses.dataclass(frozen=True, repr=False)
class CaffeGaussian(BaseInitializer):
    r"""Caffe's ``gaussian`` filler: :math:`\mathcal{N}(\text{mean}, \text{std}^2)`, optionally
    sparse.

    With ``sparse = k >= 0`` each weight is kept with probability ``k / num_outputs``
    (``num_outputs = shape[-1]`` in JAX layout) and zeroed otherwise, without rescaling, so each
    input connects to ``k`` outputs on average. ``sparse=-1`` (the default) means dense.

    Args:
      std: the standard deviation (>= 0).
      mean: the mean.
      sparse: ``-1`` (dense) or the expected number of non-zero outputs per input.
      dtype: the default dtype (real).

    Raises:
      ValueError: for ``sparse < -1`` (when built) or ``sparse > shape[-1]`` (when called).

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.caffe_gaussian(0.01, sparse=16)(jax.random.key(0), (512, 256))
      >>> round(float((w != 0).mean()), 2)
      0.06

    References:
      BVLC Caffe, ``include/caffe/filler.hpp`` (``GaussianFiller``).
    """

    name: ClassVar[str] = "caffe_gaussian"
    std: RealNumeric = 1.0
    mean: RealNumeric = 0.0
    sparse: int = -1
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("std", self.std, nonnegative=True)
        check_real("mean", self.mean)
        check_int("sparse", self.sparse, minimum=-1)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if len(shape) < 1:
            raise ValueError(f"{self.name} needs a `shape` of rank >= 1; got {shape}.")
        if self.sparse > shape[-1]:
            raise ValueError(
                f"`sparse`={self.sparse} exceeds the number of outputs shape[-1]={shape[-1]} "
                f"of `shape` {shape}."
            )

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return normal_magnitudes(self.std, self.mean, dtype, names=("std", "mean"))

    def target_std(self, shape: tuple[int, ...]) -> float:
        """The std of the (sparse) values: a kept fraction p of N(mean, std^2), zeros else."""
        std, mean = float(self.std), float(self.mean)
        if self.sparse < 0:
            return std
        p = self.sparse / shape[-1]
        return math.sqrt(p * (std**2 + mean**2) - (p * mean) ** 2)

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        if self.sparse >= 0 and streams.has_lanes(key, shape, dtype):
            # One threefry pass: the values from jax's bits, the mask from the other half
            # (a second draw would cost two more arrays of sharded temporaries on CPU).
            bits, other = streams.threefry_lanes(key, shape, layout)
            w = streams.normal_from_bits(bits, dtype) * jnp.array(self.std, dtype)
            if is_traced(self.mean) or float(self.mean) != 0:
                w = w + jnp.array(self.mean, dtype)
            # P(keep) = floor(2**32 sparse / n) / 2**32: sparse / n to within 2**-32.
            if self.sparse >= shape[-1]:
                return w
            keep = other < np.uint32((self.sparse << 32) // shape[-1])
            return jnp.where(keep, w, jnp.zeros((), dtype))
        k_w, k_mask = jax.random.split(key)
        w = Normal(self.std, mean=self.mean).sample(k_w, shape, dtype, layout)
        if self.sparse < 0:
            return w
        keep = jax.random.bernoulli(k_mask, self.sparse / shape[-1], shape)
        return jnp.where(keep, w, jnp.zeros((), dtype))
