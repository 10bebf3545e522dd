"""Elementwise random initializers with fixed scale: `uniform`, `uniform_range`, `normal`,
`truncated_normal`. Each draws in the compute dtype with jax's samplers, then the base class casts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import samplers
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.units import Unit
from jaxinit._src.core.validation import (
    check_bool,
    check_less,
    check_real,
    compute_limit,
    is_traced,
    normal_max,
)


def _is_zero(x: Any) -> bool:
    return not is_traced(x) and float(x) == 0.0


def normal_magnitudes(
    stddev: Any, mean: Any, dtype: Any, names: tuple[str, str] = ("stddev", "mean")
) -> list[tuple[str, float]]:
    """`BaseInitializer.magnitudes` of N(mean, stddev^2): the extreme draw, |mean| + z * std."""
    spread = float(stddev) * normal_max(dtype)
    return [(names[0], spread), (names[1], abs(float(mean)) + spread)]


@dataclasses.dataclass(frozen=True, repr=False)
class Uniform(BaseInitializer):
    r"""Uniform values on ``[0, scale)`` -- jax's ``uniform``, which is *not* symmetric.

    .. math:: w \sim \mathcal{U}[0, \text{scale})

    For a symmetric or any other range use :func:`uniform_range`.

    Args:
      scale: the upper bound (>= 0).
      dtype: the default dtype (real).

    Raises:
      ValueError: for a negative or non-finite `scale` (when built), or one beyond the output
        dtype's range (when called).

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.uniform(10.0)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= 0), bool(w.max() < 10)
      (True, True)
    """

    name: ClassVar[str] = "uniform"
    complex_hint: ClassVar[str] = "Use variance_scaling(..., 'uniform') for a disk."
    scale: RealNumeric = 1e-2
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("scale", self.scale, nonnegative=True)

    def target_std(self, shape: tuple[int, ...]) -> float:
        return float(self.scale) / math.sqrt(12)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("scale", float(self.scale))]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return samplers.uniform(key, shape, dtype, layout) * jnp.array(self.scale, dtype)

    def unit_scale(self, shape: tuple[int, ...]) -> tuple[Unit, np.float32] | None:
        """U[0, 1) times `scale`."""
        return None if is_traced(self.scale) else (Unit("uniform"), np.float32(self.scale))


@dataclasses.dataclass(frozen=True, repr=False)
class UniformRange(BaseInitializer):
    r"""Uniform values on ``[minval, maxval)`` (Keras ``RandomUniform``, torch ``uniform_``).

    .. math:: w \sim \mathcal{U}[\text{minval}, \text{maxval})

    Args:
      minval: the lower bound (inclusive).
      maxval: the upper bound (exclusive), > `minval`.
      dtype: the default dtype (real).

    Raises:
      ValueError: unless ``minval < maxval``, both finite, with a finite width (when built);
        for bounds beyond the output dtype's range (when called).

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.uniform_range(-0.05, 0.05)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= -0.05), bool(w.max() < 0.05)
      (True, True)
    """

    name: ClassVar[str] = "uniform_range"
    minval: RealNumeric = -0.05
    maxval: RealNumeric = 0.05
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("minval", self.minval)
        check_real("maxval", self.maxval)
        check_less("minval", self.minval, "maxval", self.maxval)
        if not (is_traced(self.minval) or is_traced(self.maxval)):
            # The draw is minval + u * (maxval - minval): the width must be finite too.
            width = float(self.maxval) - float(self.minval)
            limit, name = compute_limit()
            if not width <= limit:
                raise ValueError(
                    f"`maxval` - `minval` = {width:.4g} overflows {name} (largest finite value "
                    f"{limit:.7g}); got minval={self.minval!r}, maxval={self.maxval!r}."
                )

    def target_std(self, shape: tuple[int, ...]) -> float:
        return (float(self.maxval) - float(self.minval)) / math.sqrt(12)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("minval", abs(float(self.minval))), ("maxval", abs(float(self.maxval)))]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return samplers.uniform(key, shape, dtype, layout, self.minval, self.maxval)


@dataclasses.dataclass(frozen=True, repr=False)
class Normal(BaseInitializer):
    r"""Normal values with standard deviation `stddev` (and an optional `mean`).

    .. math:: w \sim \mathcal{N}(\text{mean}, \text{stddev}^2)

    For complex dtypes, :math:`\mathbb{E}|w - \text{mean}|^2 = \text{stddev}^2`.

    Args:
      stddev: the standard deviation (>= 0).
      dtype: the default dtype.
      mean: the mean (keyword-only; jax has none).

    Raises:
      ValueError: for a negative or non-finite `stddev` (when built), or one whose draws
        (``|mean| + 5.5 stddev`` at most) exceed the output dtype's range (when called).

    Examples:
      >>> import jax, jaxinit
      >>> w = jaxinit.normal(0.02)(jax.random.key(0), (512, 512))
      >>> round(float(w.std()), 3)
      0.02
    """

    name: ClassVar[str] = "normal"
    complex_ok: ClassVar[bool] = True
    stddev: RealNumeric = 1e-2
    dtype: DTypeLike | None = None
    _: dataclasses.KW_ONLY
    mean: RealNumeric = 0.0

    def validate(self) -> None:
        check_real("stddev", self.stddev, nonnegative=True)
        check_real("mean", self.mean)

    def target_std(self, shape: tuple[int, ...]) -> float:
        return float(self.stddev)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return normal_magnitudes(self.stddev, self.mean, dtype)

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        x = samplers.normal(key, shape, dtype, layout) * jnp.array(self.stddev, dtype)
        return x if _is_zero(self.mean) else x + jnp.array(self.mean, dtype)

    def unit_scale(self, shape: tuple[int, ...]) -> tuple[Unit, np.float32] | None:
        """N(0, 1) times `stddev` when the mean is 0."""
        if is_traced(self.stddev) or is_traced(self.mean) or not _is_zero(self.mean):
            return None
        return Unit("normal"), np.float32(self.stddev)


@dataclasses.dataclass(frozen=True, repr=False)
class TruncatedNormal(BaseInitializer):
    r"""Truncated normal values; by default exactly jax's ``truncated_normal``.

    By default `stddev` is the std *before* truncation and the bounds are in units of it, so
    values lie in ``(mean + lower*stddev, mean + upper*stddev)`` and their actual std is
    ``stddev * c(lower, upper)`` (c(-2, 2) = 0.8796). Two options cover the other conventions:

    * ``post_truncation=True``: `stddev` is the std *after* truncation (divides by c, computed
      for any bounds).
    * ``absolute_bounds=True``: `lower`/`upper` are values, as torch's ``trunc_normal_(a, b)``.

    .. math::
       c(a, b)^2 = 1 + \frac{a\phi(a) - b\phi(b)}{\Phi(b) - \Phi(a)}
                 - \left(\frac{\phi(a) - \phi(b)}{\Phi(b) - \Phi(a)}\right)^2

    Bounds may lie anywhere: one-sided, 40 std from the mean, narrow or wide, the values follow
    the truncated law and lie in ``[lower, upper]``. jax's sampler inverts ``erf`` in float32,
    which past ~5 std puts every draw on the bound (``lower=10, upper=11`` gives 11.0
    everywhere) and maps a uniform 0 to -3.4e38 for ``lower=-inf``. So each draw keeps jax's
    value only where its rounding error is negligible (``(-2, 2)`` and bounds within ~3.8 std
    keep jax's bits); the others come from the same uniform bits through the inverse CDF in log
    space, on the side of 0 where the tail probability is small (``log_ndtr`` and a log-space
    ``ndtri``), or, for an interval under 0.003 std wide on one side of 0, through the
    exponential law its density follows there. Every path is elementwise, so eager, jitted and
    sharded draws are bitwise equal. `c` and, for ``post_truncation`` with
    ``absolute_bounds``, the pre-truncation std (a bisection: the truncated std grows with it)
    are computed in double precision by quadrature, exact for any bounds.

    Args:
      stddev: the std (>= 0); pre-truncation unless `post_truncation`.
      dtype: the default dtype (real).
      lower: the lower bound; in stddev units unless `absolute_bounds`. May be ``-inf``.
      upper: the upper bound (> lower); may be ``inf``.
      mean: the mean (keyword-only).
      post_truncation: whether `stddev` is the std after truncation (keyword-only).
      absolute_bounds: whether the bounds are values rather than stddev units (keyword-only).

    Raises:
      ValueError: for a negative `stddev`, ``lower >= upper``, or a post-truncation std that
        absolute bounds cannot reach (it must be below ``(upper - lower) / sqrt(12)``).

    Examples:
      >>> import jax, jaxinit
      >>> init = jaxinit.truncated_normal(0.02, post_truncation=True)
      >>> w = init(jax.random.key(0), (512, 512))
      >>> round(float(w.std()), 3), bool(abs(w).max() < 2 * 0.02 / 0.8796)
      (0.02, True)
      >>> torch_like = jaxinit.truncated_normal(1.0, lower=-0.5, upper=0.5, absolute_bounds=True)
      >>> bool(abs(torch_like(jax.random.key(1), (1000,))).max() < 0.5)
      True
      >>> far = jaxinit.truncated_normal(1.0, lower=10, upper=11)(jax.random.key(0), (100_000,))
      >>> round(float(far.mean()), 2), round(float(far.std()), 3)  # scipy: 10.098, 0.0971
      (10.1, 0.097)

    References:
      Burkardt, `The truncated normal distribution
      <https://people.sc.fsu.edu/~jburkardt/presentations/truncated_normal.pdf>`_, 2014.
    """

    name: ClassVar[str] = "truncated_normal"
    complex_hint: ClassVar[str] = "Use variance_scaling for complex truncated normals."
    stddev: RealNumeric = 1e-2
    dtype: DTypeLike | None = None
    lower: RealNumeric = -2.0
    upper: RealNumeric = 2.0
    _: dataclasses.KW_ONLY
    mean: RealNumeric = 0.0
    post_truncation: bool = False
    absolute_bounds: bool = False

    def validate(self) -> None:
        check_real("stddev", self.stddev, nonnegative=True)
        check_real("mean", self.mean)
        for arg in ("lower", "upper"):
            v = getattr(self, arg)
            if not (isinstance(v, float | np.floating) and math.isinf(v)):
                check_real(arg, v)  # traced values pass; arrays and strings are refused
        check_less("lower", self.lower, "upper", self.upper)
        check_bool("post_truncation", self.post_truncation)
        check_bool("absolute_bounds", self.absolute_bounds)
        if self.absolute_bounds:
            check_real("stddev", self.stddev, positive=True)
        if self.post_truncation and self.absolute_bounds:
            self._solve_sigma()  # raises early when unreachable or traced

    def _solve_sigma(self) -> float:
        """Pre-truncation sigma whose truncation to absolute bounds has std `stddev`."""
        values = (self.stddev, self.mean, self.lower, self.upper)
        if any(is_traced(v) for v in values):
            raise ValueError(
                "`post_truncation=True` with `absolute_bounds=True` needs concrete `stddev`, "
                "`mean`, `lower` and `upper` (the pre-truncation std is solved on the host)."
            )
        target, m, lo, hi = (float(v) for v in values)
        if not (math.isinf(lo) or math.isinf(hi) or target < (hi - lo) / math.sqrt(12)):
            raise ValueError(
                f"`stddev`={self.stddev!r} cannot be the post-truncation std within "
                f"({lo}, {hi}): it must be < (upper - lower)/sqrt(12) = "
                f"{(hi - lo) / math.sqrt(12):.6g}."
            )
        return _solve_pre_truncation_std(target, m, lo, hi)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        """The draws' reach: the bounds themselves (absolute, finite), else ``|mean|`` plus the
        scale times the farther finite bound in std units (an infinite side: its near end
        plus the extreme normal draw)."""
        lo, hi, mean = float(self.lower), float(self.upper), float(self.mean)
        if self.absolute_bounds and math.isfinite(lo) and math.isfinite(hi):
            return [("lower", abs(lo)), ("upper", abs(hi))]
        if self.absolute_bounds:
            scale = self._solve_sigma() if self.post_truncation else float(self.stddev)
            lo, hi = ((v - mean) / scale if scale else 0.0 for v in (lo, hi))
        else:
            scale = float(self.stddev)
            if self.post_truncation:
                scale /= float(samplers.truncated_std(self.lower, self.upper, dtype))
        far = max((abs(v) for v in (lo, hi) if math.isfinite(v)), default=0.0)
        if math.isinf(lo) or math.isinf(hi):
            far = max(far, max(lo, -hi, 0.0) + normal_max(dtype))
        return [("stddev", scale * far), ("mean", abs(mean) + scale * far)]

    def target_std(self, shape: tuple[int, ...]) -> float:
        """The std after truncation, in double precision."""
        if self.absolute_bounds:
            sigma = self._solve_sigma() if self.post_truncation else float(self.stddev)
            if sigma == 0.0:
                return 0.0
            a, b = ((float(v) - float(self.mean)) / sigma for v in (self.lower, self.upper))
            return sigma * samplers.truncated_moments(a, b)[1]
        if self.post_truncation:
            return float(self.stddev)
        bounds = float(self.lower), float(self.upper)
        return float(self.stddev) * samplers.truncated_moments(*bounds)[1]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        if self.absolute_bounds:
            sigma = self._solve_sigma() if self.post_truncation else self.stddev
            a = (self.lower - self.mean) / sigma
            b = (self.upper - self.mean) / sigma
            x = samplers.truncated_normal(key, a, b, shape, dtype, layout)
            x = x * jnp.array(sigma, dtype)
            x = x if _is_zero(self.mean) else x + jnp.array(self.mean, dtype)
            # (a, b) are the bounds rounded, and x * sigma + mean rounds again: clip to the
            # values themselves, so that every draw lies in [lower, upper].
            return jnp.clip(x, jnp.array(self.lower, dtype), jnp.array(self.upper, dtype))
        scale = self.stddev
        if self.post_truncation:
            scale = scale / samplers.truncated_std(self.lower, self.upper, dtype)
        x = samplers.truncated_normal(key, self.lower, self.upper, shape, dtype, layout)
        x = x * jnp.array(scale, dtype)
        return x if _is_zero(self.mean) else x + jnp.array(self.mean, dtype)


def _abs_trunc_std(sigma: float, mean: float, lo: float, hi: float) -> float:
    if sigma <= 0:
        return 0.0
    return sigma * samplers.truncated_moments((lo - mean) / sigma, (hi - mean) / sigma)[1]


@functools.lru_cache(maxsize=256)
def _solve_pre_truncation_std(target: float, mean: float, lo: float, hi: float) -> float:
    """The sigma whose N(mean, sigma^2) truncated to the values (lo, hi) has std `target`.

    The truncated std grows with sigma, from 0 to ``(hi - lo)/sqrt(12)`` (or without bound
    when a bound is infinite), and never exceeds sigma (truncating a normal to an interval
    lowers its variance). So ``[target, 2^k target]`` brackets the root, and a bisection in
    log sigma finds it to the last bit; `samplers.truncated_moments` is exact at every step,
    however far out or narrow the standardized interval (``(48, 52)`` std for ``sigma =
    0.03125``, where a closed form has no mass left). Only a target within rounding of the
    upper limit is out of reach.
    """
    s_lo = s_hi = target
    while _abs_trunc_std(s_hi, mean, lo, hi) < target:
        s_lo, s_hi = s_hi, 2.0 * s_hi
        if math.isinf(s_hi):
            raise ValueError(
                f"`stddev`={target!r} cannot be the post-truncation std within ({lo}, {hi}): "
                f"no finite pre-truncation std reaches it (the limit, (upper - lower)/sqrt(12) "
                f"= {(hi - lo) / math.sqrt(12):.17g}, is approached only as it grows)."
            )
    for _ in range(200):
        mid = math.sqrt(s_lo) * math.sqrt(s_hi)
        if not s_lo < mid < s_hi:
            break
        s_lo, s_hi = (mid, s_hi) if _abs_trunc_std(mid, mean, lo, hi) < target else (s_lo, mid)
    return s_hi
