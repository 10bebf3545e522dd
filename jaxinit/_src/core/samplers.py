"""Samplers, in the compute dtype (float32/float64, complex64/complex128).

Real samplers are jax's own, called exactly as :mod:`jax.nn.initializers` calls them, so float32
results are bit-identical to jax -- except the truncated normal's draws that jax's float32 erf
inversion gets wrong (far tails, infinite bounds, narrow intervals off 0), which are drawn in
log space instead (see `truncated_normal`). Complex samplers have unit second moment,
``E|z|^2 = 1``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import sharding
from jaxinit._src.core.dtypes import real_dtype
from jaxinit._src.core.typing import Array, KeyArray
from jaxinit._src.core.validation import is_traced

#: std of N(0, 1) truncated to (-2, 2): sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
TRUNC_STD_2 = 0.87962566103423978


def is_complex(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


def draw_shape(shape: tuple[int, ...], layout: sharding.Layout | None) -> tuple[int, ...]:
    """The shape to draw at for an output laid out as `layout`: runs of unsharded axes merged
    into the axis before them.

    Partitionable threefry gives the same bits for a shape and any reshape of it (the counter is
    the row-major index), so this draws the same values, far cheaper to compile (XLA takes
    ~1.3 s for a 4-D threefry, 0.15 s for a 1-D one), while each sharded axis still starts its
    own dimension, so shards are generated locally. With no layout (None), or one whose axes are
    unknown (a traced call that an enclosing jit may shard), the shape is kept.
    """
    sharded = None if layout is None else layout.sharded
    if sharded is None or len(sharded) != len(shape):
        return shape
    out: list[int] = []
    for size, is_sharded in zip(shape, sharded, strict=True):
        if is_sharded or not out:
            out.append(size)
        else:
            out[-1] *= size
    return tuple(out)


def _drawn(sampler, key: KeyArray, shape: tuple[int, ...], layout, *args: Any) -> Array:
    return sampler(key, draw_shape(shape, layout), *args).reshape(shape)


def uniform(
    key: KeyArray,
    shape: tuple[int, ...],
    dtype: Any,
    layout: sharding.Layout | None,
    minval=0.0,
    maxval=1.0,
) -> Array:
    """U[minval, maxval) in a real dtype (jax's sampler), drawn for `layout`."""
    return _drawn(jax.random.uniform, key, shape, layout, dtype, minval, maxval)


def normal(
    key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: sharding.Layout | None
) -> Array:
    """N(0, 1); for complex dtypes real and imaginary parts are N(0, 1/2), so E|z|^2 = 1."""
    return _drawn(jax.random.normal, key, shape, layout, dtype)


#: A draw of jax's erf-space sampler is kept where its error bound (see `_erf_ok`) is at most
#: this fraction of the interval's scale (see `_interval_scale`); elsewhere the log-space sampler
#: is used. 2^-12: far below what a moment test of 10^6 draws resolves (10^-3), and wide enough
#: that bounds up to ~3.8 std (jax's parity cases, ``(-2, 2)`` above all) keep jax's bits.
ERF_TOLERANCE = 2.0**-12
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
#: Intervals on one side of 0 at most this wide (in std) are drawn by `_exponential`.
NARROW_WIDTH = math.sqrt(8.0 * 2.0**-20)


def _erf_ok(x, eps: float, budget, xp: Any = math):
    """Whether jax's ``sqrt(2) erfinv(u)`` is within `budget` of the exact value at `x`.

    Its error bound: a rounding of ``u = erf(x / sqrt 2)`` (at most ``eps |u|``, with ``|u| <=
    min(1, sqrt(2/pi) |x|)``) moves x by it over ``du/dx = 2 phi(x)``. That is an ulp near 0
    and grows like ``e^{x^2/2}``: 2e-6 at 3 std, 4e-4 at 4, 0.04 at 5 (float32)."""
    ax = abs(x)
    u = xp.minimum(1.0, _SQRT_2_OVER_PI * ax) if xp is not math else min(1.0, _SQRT_2_OVER_PI * ax)
    two_phi = 2.0 * xp.exp(-0.5 * ax * ax) / math.sqrt(2.0 * math.pi)
    return eps * u <= budget * two_phi


def _interval_scale(a, b, xp: Any = math):
    """A lower bound on the order of the std of N(0, 1) truncated to (a, b):
    ``min(b - a, 1 / (1 + d))`` with `d` the distance from 0 to the interval."""
    if xp is math:
        d = max(a, -b, 0.0)
        return min(b - a, 1.0 / (1.0 + d))
    d = xp.maximum(xp.maximum(a, -b), 0.0)
    return xp.minimum(b - a, 1.0 / (1.0 + d))


def truncated_normal_method(lower: float, upper: float, dtype: Any) -> str:
    """Which sampler `truncated_normal` runs for concrete bounds: ``"erf"`` (jax's),
    ``"log"`` (`_log_space`), ``"exponential"`` (`_exponential`), each for every draw, or
    ``"mixed"``, chosen per draw as `_tail_safe` does."""
    eps = float(jnp.finfo(dtype).eps)
    a, b = float(lower), float(upper)
    budget = ERF_TOLERANCE * _interval_scale(a, b)
    far = max(abs(a), abs(b))  # the erf error grows with |x|: worst at the far end ...
    near = max(a, -b, 0.0)  # ... best at the point nearest 0
    if not math.isinf(far) and _erf_ok(far, eps, budget):
        return "erf"
    if _erf_ok(near, eps, budget):
        return "mixed"
    return "exponential" if _narrow_one_sided(a, b) else "log"


def _log1mexp(t: Array) -> Array:
    """``log(1 - e^t)`` for ``t <= 0``, accurate for t near 0 and very negative t."""
    near = t > -math.log(2.0)
    return jnp.where(near, jnp.log(-jnp.expm1(jnp.where(near, t, -1.0))), jnp.log1p(-jnp.exp(t)))


def _ndtri_exp(y: Array) -> Array:
    """``x <= 0`` with ``log Phi(x) = y`` for ``y <= log(1/2)``, to ~1 ulp of x for any y.

    jax's ``ndtri(exp(y))`` while ``exp(y)`` is a normal float; below that the asymptotic
    ``x^2 = t - log(t - log t - log 2pi) - log 2pi`` with ``t = -2y``. Then two Newton steps on
    ``log_ndtr`` (whose slope is ``phi/Phi``), which is accurate in float32 to ~3e-7 relative."""
    log_tiny = math.log(float(jnp.finfo(y.dtype).tiny)) + 10.0
    small = y <= log_tiny
    t = -2.0 * jnp.minimum(y, log_tiny)
    x_asym = -jnp.sqrt(t - jnp.log(t - jnp.log(t) - _LOG_2PI) - _LOG_2PI)
    x = jnp.where(small, x_asym, jax.scipy.special.ndtri(jnp.exp(jnp.maximum(y, log_tiny))))
    for _ in range(2):
        log_cdf = jax.scipy.special.log_ndtr(x)
        log_pdf = -0.5 * x * x - 0.5 * _LOG_2PI
        x = x - (log_cdf - y) * jnp.exp(log_cdf - log_pdf)
    return x


def _log_mass(a: Array, b: Array) -> tuple[Array, Array, Array]:
    """``(log Phi(a), log Phi(-b), log P(a < Z < b))``, each without cancellation: the mass is
    taken on the side of 0 that holds the interval, or as ``1 - Phi(a) - Phi(-b)`` across it."""
    ln = jax.scipy.special.log_ndtr
    la, lb, ra, rb = ln(a), ln(b), ln(-a), ln(-b)
    left = lb + _log1mexp(jnp.minimum(la - lb, 0.0))
    right = ra + _log1mexp(jnp.minimum(rb - ra, 0.0))
    across = _log1mexp(jnp.logaddexp(la, rb))
    return la, rb, jnp.where(b <= 0, left, jnp.where(a >= 0, right, across))


def _log_space(u: Array, a: Array, b: Array) -> Array:
    """The truncated normal's inverse CDF at `u` in (0, 1), in log space on the small side.

    With ``q = Phi(a) + u Z`` and ``1 - q = Phi(-b) + (1 - u) Z`` (sums of positive terms,
    taken as log-sum-exps), ``x = Phi^-1(q)`` is found from whichever of ``log q`` and ``log(1
    - q)`` is smaller, by `_ndtri_exp` (reflected for the upper side): no tail probability is
    ever rounded against 1, and none underflows, 40 std out or 10^4."""
    la, rb, log_z = _log_mass(a, b)
    log_q = jnp.logaddexp(la, jnp.log(u) + log_z)
    log_p = jnp.logaddexp(rb, jnp.log1p(-u) + log_z)
    lower_side = log_q <= log_p
    x = _ndtri_exp(jnp.minimum(log_q, log_p))
    return jnp.where(lower_side, x, -x)


def _narrow_one_sided(a, b, xp: Any = math):
    """Whether (a, b) lies on one side of 0 and is so narrow (``(b - a)^2 / 8 <= 2^-20``) that
    the density on it is an exponential to within a factor ``1 + 2^-20``: see `_exponential`."""
    narrow = (b - a) <= NARROW_WIDTH
    return (narrow and (a >= 0 or b <= 0)) if xp is math else narrow & ((a >= 0) | (b <= 0))


def _exponential(u: Array, a: Array, b: Array) -> Array:
    """The inverse CDF at `u` of the exponential law that a narrow one-sided interval's density
    ``e^{-x^2/2}`` follows to within ``e^{w^2/8}``: from the end ``s`` nearest 0, ``x = s + t``
    with density ``e^{-(s + w/2) t}`` on ``[0, w]`` (the chord of ``s t + t^2/2``), inverted with
    ``log1p``/``expm1``. Exact to an ulp of x whatever the width, where any log CDF, rounded at
    ``ulp(x^2 / 2)``, would blur an interval 1e-4 wide at 6 std (400 float32 values)."""
    flip = b <= 0
    near = jnp.where(flip, -b, a)
    width = b - a
    rate = near + 0.5 * width
    t = -jnp.log1p(u * jnp.expm1(-rate * width)) / rate
    return jnp.where(flip, -(near + t), near + t)


def _clip_open(x: Array, a: Array, b: Array) -> Array:
    """`x` clipped to the open interval (a, b), as jax's sampler does."""
    inf = jnp.array(jnp.inf, x.dtype)
    return jnp.clip(x, jnp.nextafter(a, inf), jnp.nextafter(b, -inf))


def _tail_safe(key: KeyArray, shape: tuple[int, ...], dtype: Any, lower, upper, method: str):
    """The draws of `truncated_normal` for `method` other than ``"erf"``: per draw, jax's
    value where `_erf_ok`, else `_exponential` for a narrow one-sided interval, else
    `_log_space`; a `method` other than ``"mixed"`` computes only the one that applies."""
    a = jnp.asarray(lower).astype(dtype)
    b = jnp.asarray(upper).astype(dtype)
    eps = float(jnp.finfo(dtype).eps)
    # jax's uniform bits, moved to the middle of their cell: in (0, 1), never 0 (which makes
    # jax's sampler return the lower bound, or -3.4e38 for lower = -inf) and never 1.
    u = jax.random.uniform(key, shape, dtype) + jnp.array(eps / 2, dtype)
    if method == "exponential":
        return _clip_open(_exponential(u, a, b), a, b)
    x = _log_space(u, a, b)
    if method == "log":
        return _clip_open(x, a, b)
    x = _clip_open(jnp.where(_narrow_one_sided(a, b, jnp), _exponential(u, a, b), x), a, b)
    x_erf = jax.random.truncated_normal(key, lower, upper, shape, dtype)
    budget = ERF_TOLERANCE * _interval_scale(a, b, jnp)
    return jnp.where(_erf_ok(x_erf, eps, budget, jnp), x_erf, x)


def truncated_normal(
    key: KeyArray, lower, upper, shape: tuple[int, ...], dtype: Any, layout: sharding.Layout | None
) -> Array:
    """N(0, 1) truncated to the open interval (lower, upper), in a real dtype, accurate for any
    bounds: jax's sampler where it is exact enough, a log-space inverse CDF elsewhere.

    jax's sampler inverts ``u = erf(x / sqrt 2)``, drawn uniform between the bounds' images.
    Near 0 that is as exact as float32 allows, but ``u`` is rounded next to +-1 with an
    absolute error ``eps``, which moves ``x`` by ``eps / (2 phi(x))`` (`_erf_ok`): 2e-6 at 3
    std, 0.04 at 5, everything beyond ~5.4 std collapses onto the bound (``lower=10,
    upper=11`` gives 11.0 for every draw), and ``u = +-1`` gives +-3.4e38 for an infinite
    bound. So each draw keeps jax's value where that error is at most `ERF_TOLERANCE` of the
    interval's scale; elsewhere it is the inverse CDF computed in log space from the same
    uniform bits (`_log_space`): on the side of 0 where the tail probability is small, with
    ``log_ndtr`` and a log-space ``ndtri``, so it is accurate to about an ulp of x at any
    distance from the mean and any width. Both are fixed-shape elementwise maps of the uniform
    bits, so eager, jitted and sharded draws are bitwise equal. With concrete bounds the
    choice is made once (`truncated_normal_method`): ordinary bounds (``(-2, 2)``, and any
    within ~3.8 std unless very narrow) run jax's sampler alone, with jax's bits.
    """
    traced = is_traced(lower) or is_traced(upper)
    method = "mixed" if traced else truncated_normal_method(lower, upper, dtype)
    if method == "erf":
        return _drawn(_jax_truncated_normal, key, shape, layout, dtype, lower, upper)
    return _drawn(_tail_safe, key, shape, layout, dtype, lower, upper, method)


def _jax_truncated_normal(key: KeyArray, shape: tuple[int, ...], dtype: Any, lower, upper):
    return jax.random.truncated_normal(key, lower, upper, shape, dtype)


def complex_disk(
    key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: sharding.Layout | None
) -> Array:
    """Uniform on the disk of radius sqrt(2): E|z|^2 = 1."""
    k_r, k_t = jax.random.split(key)
    rd = real_dtype(dtype)
    r = jnp.sqrt(2 * uniform(k_r, shape, rd, layout)).astype(dtype)
    theta = 2 * np.pi * uniform(k_t, shape, rd, layout).astype(dtype)
    return r * jnp.exp(1j * theta)


def complex_truncated_normal(
    key: KeyArray, upper: float, shape: tuple[int, ...], dtype, layout: sharding.Layout | None
) -> Array:
    """Standard complex normal (E|z|^2 = 1 before truncation) with modulus truncated to `upper`.

    |z|^2 is Exp(1), so it is drawn by inverting the CDF restricted to [0, upper^2).
    """
    k_r, k_t = jax.random.split(key)
    rd = real_dtype(dtype)
    t = (1 - jnp.exp(jnp.array(-(upper**2), rd))) * uniform(k_r, shape, rd, layout)
    r = jnp.sqrt(-jnp.log1p(-t)).astype(dtype)
    theta = 2 * np.pi * uniform(k_t, shape, rd, layout).astype(dtype)
    return r * jnp.exp(1j * theta)


def complex_truncated_std(upper: float) -> float:
    """sqrt(E|z|^2) of `complex_truncated_normal`: (1 - (1+u^2) e^{-u^2}) / (1 - e^{-u^2}).

    For u = 2 this is 0.96196182800821; jax uses sqrt(1 - 5 e^{-4}) = 0.95311, forgetting to
    divide by P(|z| < 2), which makes its complex truncated-normal variance 1.8% too large.
    """
    e = math.exp(-(upper**2))
    return math.sqrt((1 - (1 + upper**2) * e) / (1 - e))


#: Gauss-Legendre rule of `truncated_moments`: exact for polynomials of degree < 256.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(128)
#: Mass where the density is below e^-92 (1e-40) of its peak is left out of `truncated_moments`.
_LOG_DENSITY_RANGE = 92.0


def _weighted_moments(t: np.ndarray, log_density: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    g = w * np.exp(log_density)
    g = g / g.sum()
    mean = float(g @ t)
    return mean, math.sqrt(float(g @ (t - mean) ** 2))


def truncated_moments(lower: float, upper: float) -> tuple[float, float]:
    """Mean and std of N(0, 1) truncated to (lower, upper), in double precision, for any bounds.

    By quadrature (128-point Gauss-Legendre) over the part of the interval where the density is
    above e^-92 of its peak, in a variable measured from the point nearest 0 and two-pass, so no
    step cancels: the closed form ``1 + (a phi(a) - b phi(b)) / Z - mu^2`` loses all digits for
    intervals far out (``Z`` underflows past ~38 std) or narrow (the variance is ``1 - (1 -
    w^2/12)``). Relative error ~1e-15 anywhere, e.g. 40 std out or 1e-9 std wide.

    Raises:
      ValueError: unless ``lower < upper``.
    """
    a, b = float(lower), float(upper)
    if not a < b:
        raise ValueError(f"the truncation interval needs lower < upper; got ({lower}, {upper}).")
    if a + b < 0:  # reflect: the interval leans right, its nearest point to 0 is a or 0
        mean, std = truncated_moments(-b, -a)
        return -mean, std
    if a >= 0:  # x = a + t with density e^{-(a t + t^2/2)}; below e^-R once t > t_max
        t_max = 2 * _LOG_DENSITY_RANGE / (math.sqrt(a * a + 2 * _LOG_DENSITY_RANGE) + a)
        top = min(b - a, t_max)
        t = 0.5 * top * (_GL_NODES + 1.0)
        mean, std = _weighted_moments(t, -(a * t + 0.5 * t * t), _GL_WEIGHTS)
        return a + mean * 1.0, std
    lo, hi = (max(c, -math.sqrt(2 * _LOG_DENSITY_RANGE)) for c in (a, -b))
    hi = -hi
    x = lo + 0.5 * (hi - lo) * (_GL_NODES + 1.0)
    return _weighted_moments(x, -0.5 * x * x, _GL_WEIGHTS)


def traced_truncated_std(lower, upper, dtype) -> Array:
    """`truncated_moments`' std for traced bounds, computed with jnp in `dtype`."""
    norm = jax.scipy.stats.norm
    z = norm.cdf(upper) - norm.cdf(lower)
    pa, pb = norm.pdf(lower), norm.pdf(upper)
    mu = (pa - pb) / z
    var = 1 + (lower * pa - upper * pb) / z - mu * mu
    return jnp.sqrt(var).astype(dtype)


def truncated_std(lower, upper, dtype) -> Any:
    """Std of N(0, 1) truncated to (lower, upper): a Python float when the bounds are concrete."""
    if is_traced(lower) or is_traced(upper):
        return traced_truncated_std(lower, upper, dtype)
    return truncated_moments(float(lower), float(upper))[1]
