"""Variance scaling and its named schemes (Glorot/Xavier, LeCun, He/Kaiming), plus torch's gains.

Every scheme draws with variance ``scale / n`` where ``n`` is a fan chosen by `mode` (fans.py).
The arithmetic follows jax op for op -- the variance is rounded to the compute dtype before the
square root -- so float32 results are bit-identical to :mod:`jax.nn.initializers`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, cast

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import samplers
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.dtypes import compute_dtype, real_dtype
from jaxinit._src.core.fans import Fans, check_groups, compute_fans
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import (
    DISTRIBUTIONS,
    MODES,
    NONLINEARITIES,
    Array,
    Axes,
    DTypeLike,
    KeyArray,
    RealNumeric,
)
from jaxinit._src.core.units import Unit
from jaxinit._src.core.validation import (
    check_choice,
    check_fits,
    check_real,
    freeze_axes,
    is_traced,
    normal_max,
)

_GAINS = {
    "linear": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "conv_transpose1d": 1.0,
    "conv_transpose2d": 1.0,
    "conv_transpose3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4,  # torch's empirical value; use "linear" for self-normalizing nets
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a nonlinearity, with torch's table.

    ============================  ======================================
    nonlinearity                  gain
    ============================  ======================================
    linear, conv*, sigmoid        1
    tanh                          5/3
    relu                          :math:`\sqrt{2}`
    leaky_relu                    :math:`\sqrt{2 / (1 + \text{slope}^2)}` (slope 0.01 by default)
    selu                          3/4
    ============================  ======================================

    A gain ``g`` is a std multiplier: the matching ``variance_scaling`` scale is ``g**2``.

    Args:
      nonlinearity: one of the names above.
      param: the negative slope of ``leaky_relu`` (only for it), finite with a finite square.

    Returns:
      The gain, a Python float (a traced `param` gives a traced gain).

    Raises:
      ValueError: for an unknown nonlinearity, `param` given for another nonlinearity, or a
        non-finite `param` or one whose square overflows.
      TypeError: for a non-numeric (or boolean) `param`.

    Examples:
      >>> import jaxinit
      >>> round(jaxinit.calculate_gain("tanh"), 4), round(jaxinit.calculate_gain("relu"), 4)
      (1.6667, 1.4142)
      >>> round(jaxinit.calculate_gain("leaky_relu", 0.2), 4)
      1.3868

    References:
      PyTorch, ``torch.nn.init.calculate_gain``.
    """
    check_choice("nonlinearity", nonlinearity, (*NONLINEARITIES,))
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else check_slope("param", param)
        if is_traced(slope):
            return jnp.sqrt(2.0 / (1 + slope**2))  # type: ignore[return-value]
        return math.sqrt(2.0 / (1 + float(slope) ** 2))
    if param is not None:
        raise ValueError(
            f"`param`={param!r} is only used with nonlinearity='leaky_relu'; "
            f"got nonlinearity={nonlinearity!r}."
        )
    return _GAINS[nonlinearity]


#: The largest |slope| whose square is finite in float32: a slope is a float32 parameter (a
#: traced one is squared on the device in float32), and its gain sqrt(2 / (1 + slope^2)) must
#: not vanish there.
_MAX_SLOPE = 1.8e19


def check_slope(arg: str, value: Any) -> Any:
    """A leaky-ReLU/PReLU slope: a real scalar whose square is finite (traced ones pass)."""
    check_real(arg, value)
    if not is_traced(value) and abs(float(value)) > _MAX_SLOPE:
        raise ValueError(
            f"`{arg}`={value!r} is too large: the gain uses its square, which must be finite "
            f"(|{arg}| <= {_MAX_SLOPE:g})."
        )
    return value


def variance_sample(
    key: KeyArray,
    shape: tuple[int, ...],
    dtype: Any,
    layout: Layout,
    scale: Any,
    n: float,
    distribution: str,
) -> Array:
    """Draws with variance ``scale / n`` from `distribution`, in the compute `dtype`."""
    rd = real_dtype(dtype)
    variance = jnp.array(scale / n, dtype=rd)  # rounded to the dtype before sqrt, as jax does
    complex_ = samplers.is_complex(dtype)
    if distribution == "truncated_normal":
        if complex_:
            c = samplers.complex_truncated_std(2.0)
            stddev = jnp.sqrt(variance) / jnp.array(c, rd)
            x = samplers.complex_truncated_normal(key, 2.0, shape, dtype, layout)
            return x * stddev.astype(dtype)
        stddev = jnp.sqrt(variance) / jnp.array(samplers.TRUNC_STD_2, dtype)
        return samplers.truncated_normal(key, -2, 2, shape, dtype, layout) * stddev
    if distribution == "normal":
        return samplers.normal(key, shape, dtype, layout) * jnp.sqrt(variance).astype(dtype)
    if complex_:
        return samplers.complex_disk(key, shape, dtype, layout) * jnp.sqrt(variance).astype(dtype)
    return samplers.uniform(key, shape, dtype, layout, -1) * jnp.sqrt(3 * variance)


class VarianceScheme(BaseInitializer):
    """Shared behaviour of variance-scaling schemes; subclasses define `scheme()`.

    Subclasses are dataclasses whose fields include ``in_axis``, ``out_axis``, ``batch_axis``
    and ``dtype``; they take complex dtypes (``E|w|^2`` is the real case's variance).
    """

    complex_ok: ClassVar[bool] = True
    #: The parameter the scheme's scale comes from, named when it overflows the dtype (None:
    #: a fixed scale that cannot).
    scale_arg: ClassVar[str | None] = None
    in_axis: Axes
    out_axis: Axes
    batch_axis: Axes
    groups: int

    def scheme(self) -> tuple[Any, str, str]:
        """``(scale, mode, distribution)``."""
        raise NotImplementedError

    def validate(self) -> None:
        for arg in ("in_axis", "out_axis", "batch_axis"):
            object.__setattr__(self, arg, freeze_axes(arg, getattr(self, arg)))
        object.__setattr__(self, "groups", check_groups(self.groups))

    def fans(self, shape: tuple[int, ...]) -> Fans:
        """The fans this scheme uses for `shape`."""
        return compute_fans(shape, self.in_axis, self.out_axis, self.batch_axis, self.groups)

    def target_std(self, shape: tuple[int, ...]) -> float:
        """``sqrt(scale / n)`` with ``n`` the fan of `mode` (concrete parameters only)."""
        scale, mode, _ = self.scheme()
        n = self.fans(shape).denominator(mode)
        return math.sqrt(float(scale) / n) if n else 0.0

    def for_layer(self, axes: Mapping[str, tuple[int, ...]]) -> VarianceScheme:
        """This scheme with the layer's ``in_axis``, ``out_axis`` and ``batch_axis`` (and
        ``groups``, for a grouped convolution)."""
        return dataclasses.replace(cast(Any, self), **axes)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.fans(shape)
        scale, mode, _ = self.scheme()
        n = self.fans(shape).denominator(mode)
        if self.scale_arg is not None and self.concrete and n > 0:
            # The variance scale / n is rounded to the compute dtype before the square root.
            arg = self.scale_arg
            check_fits(arg, getattr(self, arg), float(scale) / n, compute_dtype(dtype))

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        """The extreme draw: ``sqrt(scale / n)`` times the distribution's largest unit draw."""
        scale, mode, distribution = self.scheme()
        n = self.fans(shape).denominator(mode)
        if self.scale_arg is None or not n > 0:
            return []
        std = math.sqrt(float(scale) / n)
        unit = {"normal": normal_max(dtype), "uniform": math.sqrt(3.0)}.get(distribution)
        if unit is None:  # truncated at 2 std (complex: the modulus, with its own constant)
            c = samplers.complex_truncated_std(2.0) if samplers.is_complex(dtype) else None
            unit = 2.0 / (c or samplers.TRUNC_STD_2)
        return [(self.scale_arg, std * unit)]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        scale, mode, distribution = self.scheme()
        n = self.fans(shape).denominator(mode)
        return variance_sample(key, shape, dtype, layout, scale, n, distribution)

    def unit_scale(self, shape: tuple[int, ...]) -> tuple[Unit, np.float32] | None:
        """A unit draw times the float32 std `variance_sample` computes (real dtypes)."""
        scale, mode, distribution = self.scheme()
        n = self.fans(shape).denominator(mode)
        if is_traced(scale) or not n > 0:
            return None
        variance = np.float32(scale / n)  # rounded before the sqrt, as in variance_sample
        if distribution == "truncated_normal":
            return Unit("truncated_normal"), np.sqrt(variance) / np.float32(samplers.TRUNC_STD_2)
        if distribution == "normal":
            return Unit("normal"), np.sqrt(variance)
        return Unit("symmetric_uniform"), np.sqrt(np.float32(3) * variance)


@dataclasses.dataclass(frozen=True, repr=False)
class AxesFields:
    """The fields every variance scheme ends with, in jax's positional order. A scheme lists
    this base *first* -- ``class S(AxesFields, SParams)`` -- because dataclass fields are
    collected from the last base to the first, so its own parameters come before these."""

    in_axis: Axes = -2
    out_axis: Axes = -1
    batch_axis: Axes = ()
    dtype: DTypeLike | None = None
    _: dataclasses.KW_ONLY
    groups: int = 1


#: The docstring lines of the axes and dtype fields, shared by every scheme's Args section.
AXES_ARGS = """in_axis: axis or axes of the inputs.
      out_axis: axis or axes of the outputs.
      batch_axis: axes that do not count (stacked layers, experts).
      dtype: the default dtype.
      groups: feature groups of a grouped or depthwise convolution (keyword-only): fan_out
        counts one group's outputs, see :func:`compute_fans`."""


_Class = TypeVar("_Class", bound=type)


def documented(template: str, **fields: Any) -> Callable[[_Class], _Class]:
    """Sets a class's docstring from a shared `template`: each ``{field}`` replaced by its
    value, ``{axes}`` by `AXES_ARGS` (LaTeX braces elsewhere are left alone)."""

    def decorate(cls: _Class) -> _Class:
        doc = template
        for k, v in {"axes": AXES_ARGS, **fields}.items():
            doc = doc.replace("{" + k + "}", str(v))
        cls.__doc__ = doc
        return cls

    return decorate


_VARIANCE_SCALING_DOC = r"""Scales its distribution to the shape of the weight.

    Samples have mean 0 and variance :math:`\text{scale} / n` (after truncation), where ``n`` is
    fan_in, fan_out, their mean (``fan_avg``) or their geometric mean (``fan_geo_avg``); the fans
    are :func:`compute_fans` of the shape and the axes. Distributions:

    * ``truncated_normal``: :math:`\mathcal{N}` truncated at 2 std, std
      :math:`\sqrt{\text{scale}/n} / 0.8796`. For complex dtypes the modulus is truncated, with
      the exact constant (jax's is 1.8% off in variance).
    * ``normal``: :math:`\mathcal{N}(0, \text{scale}/n)` (complex: :math:`E|w|^2 = \text{scale}/n`).
    * ``uniform``: :math:`\mathcal{U}[-b, b)` with :math:`b = \sqrt{3\,\text{scale}/n}`;
      complex: uniform on a disk with :math:`E|w|^2 = \text{scale}/n`.

    Args:
      scale: the variance multiplier (>= 0); a gain ``g`` is ``scale = g**2``.
      mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
      {axes}

    Raises:
      ValueError: for an unknown `mode` or `distribution` or a bad `scale` (when built), and for
        axes out of range, a rank <= 1 shape with default axes or a `scale` whose values exceed
        the output dtype's range (when called).

    Examples:
      >>> import jax, jaxinit
      >>> init = jaxinit.variance_scaling(2.0, "fan_in", "normal")
      >>> w = init(jax.random.key(0), (1024, 256))
      >>> round(float(w.std() * 1024**0.5), 2)
      1.41
      >>> moe = jaxinit.variance_scaling(1.0, "fan_in", "normal", batch_axis=0)
      >>> round(float(moe(jax.random.key(0), (8, 256, 512)).std() * 16), 2)
      1.0
    """


@dataclasses.dataclass(frozen=True, repr=False)
class _VarianceScalingParams(VarianceScheme):
    scale: RealNumeric
    mode: str
    distribution: str


@documented(_VARIANCE_SCALING_DOC)
@dataclasses.dataclass(frozen=True, repr=False)
class VarianceScaling(AxesFields, _VarianceScalingParams):
    name: ClassVar[str] = "variance_scaling"
    scale_arg: ClassVar[str | None] = "scale"

    def validate(self) -> None:
        VarianceScheme.validate(self)
        check_real("scale", self.scale, nonnegative=True)
        check_choice("mode", self.mode, MODES)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)

    def scheme(self) -> tuple[Any, str, str]:
        return self.scale, self.mode, self.distribution


_GLOROT = (
    "Glorot & Bengio, `Understanding the difficulty of training deep feedforward neural "
    "networks <https://proceedings.mlr.press/v9/glorot10a.html>`_, 2010."
)
_LECUN = "LeCun, Bottou, Orr & Mueller, `Efficient BackProp`, 1998."
_HE = (
    "He, Zhang, Ren & Sun, `Delving Deep into Rectifiers <https://arxiv.org/abs/1502.01852>`_, "
    "2015."
)
#: The fixed-scale families: family -> (title, scale, mode, reference).
_FAMILIES = {
    "glorot": ("Glorot (Xavier)", 1.0, "fan_avg", _GLOROT),
    "lecun": ("LeCun", 1.0, "fan_in", _LECUN),
}

_NAMED_DOC = r"""{title}: ``variance_scaling({scale}, "{mode}", "{distribution}")``.

    .. math:: {math}

    Args:
      {axes}

    Raises:
      ValueError: when called, for axes out of range or a rank <= 1 shape with default axes.

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.{name}()(jax.random.key(0), (1024, 512))
      >>> round(float(w.std()), 4) == round({std}, 4)
      True

    References:
      {ref}
    """


@dataclasses.dataclass(frozen=True, repr=False)
class _FixedScheme(AxesFields, VarianceScheme):
    """A named scheme: a `variance_scaling` specialization with its own name, repr and docs.

    A subclass names its family and distribution, ``class GlorotUniform(_FixedScheme,
    family="glorot", distribution="uniform")``; its scale and mode come from `_FAMILIES` and its
    docstring from `_NAMED_DOC`. (It inherits the dataclass, so it needs no decorator.)
    """

    fixed: ClassVar[tuple[float, str, str]]

    def __init_subclass__(cls, *, family: str, distribution: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        title, scale, mode, ref = _FAMILIES[family]
        sampler = "truncated_normal" if distribution == "normal" else distribution
        cls.name = f"{family}_{distribution}"
        cls.fixed = (scale, mode, sampler)
        # The variance is scale / n: as a fraction, and for the doctest's (1024, 512) shape.
        numerator = f"{2 * scale:g}" if mode == "fan_avg" else f"{scale:g}"
        n_tex = r"(\text{fan\_in} + \text{fan\_out})" if mode == "fan_avg" else r"\text{fan\_in}"
        if sampler == "uniform":
            bound = f"{3 * float(numerator):g} / {n_tex}"
            math_ = rf"w \sim \mathcal{{U}}[-b, b),\ b = \sqrt{{{bound}}}"
        else:
            math_ = rf"\operatorname{{std}}(w) = \sqrt{{{numerator} / {n_tex}}}"
        n = 1536 if mode == "fan_avg" else 1024
        kind = "normal, truncated" if sampler == "truncated_normal" else distribution
        documented(
            _NAMED_DOC, name=cls.name, title=f"{title} {kind}", scale=scale, mode=mode,
            distribution=sampler, std=f"({numerator} / {n}) ** 0.5", ref=ref, math=math_,
        )(cls)  # fmt: skip

    def scheme(self) -> tuple[Any, str, str]:
        return self.fixed


class GlorotUniform(_FixedScheme, family="glorot", distribution="uniform"): ...


class GlorotNormal(_FixedScheme, family="glorot", distribution="normal"): ...


class LecunUniform(_FixedScheme, family="lecun", distribution="uniform"): ...


class LecunNormal(_FixedScheme, family="lecun", distribution="normal"): ...


@dataclasses.dataclass(frozen=True, repr=False)
class _He(AxesFields, VarianceScheme):
    """He/Kaiming: scale 2 (ReLU), or torch's ``calculate_gain(nonlinearity, slope)**2``."""

    distribution: ClassVar[str]
    _: dataclasses.KW_ONLY
    nonlinearity: str | None = None
    negative_slope: RealNumeric | None = None

    def validate(self) -> None:
        VarianceScheme.validate(self)
        if self.nonlinearity is not None:
            check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        if self.negative_slope is not None:
            if self.nonlinearity != "leaky_relu":
                raise ValueError(
                    f"`negative_slope`={self.negative_slope!r} needs "
                    f"nonlinearity='leaky_relu'; got nonlinearity={self.nonlinearity!r}."
                )
            check_slope("negative_slope", self.negative_slope)

    def scheme(self) -> tuple[Any, str, str]:
        if self.nonlinearity is None:
            return 2.0, "fan_in", self.distribution
        # torch's kaiming_* default is a=0, so leaky_relu without a slope is ReLU's gain.
        slope = 0.0 if self.negative_slope is None else self.negative_slope
        param = slope if self.nonlinearity == "leaky_relu" else None
        return calculate_gain(self.nonlinearity, param) ** 2, "fan_in", self.distribution


_HE_DOC = r"""He (Kaiming) {kind}: ``variance_scaling(2.0, "fan_in", "{distribution}")``.

    .. math:: {math}

    With torch's keyword options the scale becomes ``calculate_gain(nonlinearity, slope)**2``
    (``leaky_relu`` without a slope means slope 0, as torch's ``kaiming_*`` default ``a=0``).
    The normal variant is truncated, as in jax (torch's ``kaiming_normal_`` is not).

    Args:
      {axes}
      nonlinearity: optional torch nonlinearity name (keyword-only).
      negative_slope: the leaky_relu slope (keyword-only); it may be traced.

    Raises:
      ValueError: for an unknown nonlinearity or a slope without ``leaky_relu``.

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.{name}()(jax.random.key(0), (2048, 256))
      >>> round(float(w.std() * 2048**0.5), 2)
      1.41
      >>> tanh = jaxinit.{name}(nonlinearity="tanh")
      >>> round(float(tanh(jax.random.key(0), (2048, 256)).std() * 2048**0.5), 2)
      1.67

    References:
      {ref}
    """


@documented(
    _HE_DOC, name="he_uniform", kind="uniform", distribution="uniform", ref=_HE,
    math=r"w \sim \mathcal{U}[-b, b),\ b = \sqrt{6 / \text{fan\_in}}",
)  # fmt: skip
@dataclasses.dataclass(frozen=True, repr=False)
class HeUniform(_He):
    name: ClassVar[str] = "he_uniform"
    distribution: ClassVar[str] = "uniform"


@documented(
    _HE_DOC, name="he_normal", kind="normal, truncated", distribution="truncated_normal",
    ref=_HE, math=r"\operatorname{std}(w) = \sqrt{2 / \text{fan\_in}}",
)  # fmt: skip
@dataclasses.dataclass(frozen=True, repr=False)
class HeNormal(_He):
    name: ClassVar[str] = "he_normal"
    distribution: ClassVar[str] = "truncated_normal"
