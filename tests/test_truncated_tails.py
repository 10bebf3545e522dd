"""The truncated normal anywhere: far in the tails, one-sided, narrow and wide (issue 13).

jax's sampler inverts ``erf`` in float32, which loses every digit past ~5 std (``lower=10,
upper=11`` gives 11.0 for every draw) and returns 3.4e38 for ``u = -1`` with an infinite bound.
jaxinit keeps jax's draws where they are accurate and draws the rest in log space (see
`jaxinit._src.core.samplers.truncated_normal`). Here: the moments of 100k draws against the
exact law (tolerances from `stats`), the support, bfloat16 as the float32 cast, eager = jit =
sharded bitwise, the float64 moments behind ``post_truncation``, and the solve for the
pre-truncation std with absolute bounds.

The exact law: the closed-form moments in 80-digit arithmetic (mpmath, which the test extras
install with torch's sympy), so that no step cancels. ``scipy.stats.truncnorm`` agrees with it
to 1e-6 wherever its own float64 arithmetic holds (`test_scipy_agrees`); for narrow intervals
it does not (its std of ``(6, 6.0001)`` is 15% below ``w / sqrt 12``, its kurtosis of
``(30, 30.01)`` is -1857).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.stats
import stats
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit
from jaxinit._src.core import samplers

inf = math.inf
KEY = jax.random.key(0)
N = 100_000


@dataclasses.dataclass(frozen=True)
class Law:
    """Mean, std and kurtosis of N(0, 1) truncated to (a, b)."""

    mean: float
    std: float
    kurtosis: float


def exact_law(a: float, b: float) -> Law:
    """By the raw moments ``m_k = (k-1) m_{k-2} + (a^{k-1} phi(a) - b^{k-1} phi(b)) / Z``,
    with ``Z`` taken on the interval's side of 0, in 80 digits."""
    if a + b < 0:
        law = exact_law(-b, -a)
        return Law(-law.mean, law.std, law.kurtosis)
    with mpmath.workdps(80):
        lo, hi = mpmath.mpf(a), mpmath.mpf(b)
        z = mpmath.ncdf(-lo) - mpmath.ncdf(-hi)

        def edge(x, k):
            return mpmath.mpf(0) if mpmath.isinf(x) else x ** (k - 1) * mpmath.npdf(x)

        m = [mpmath.mpf(1), (edge(lo, 1) - edge(hi, 1)) / z]
        for k in (2, 3, 4):
            m.append((k - 1) * m[k - 2] + (edge(lo, k) - edge(hi, k)) / z)
        mu = m[1]
        var = m[2] - mu**2
        c4 = m[4] - 4 * mu * m[3] + 6 * mu**2 * m[2] - 3 * mu**4
        return Law(float(mu), float(mpmath.sqrt(var)), float(c4 / var**2))


#: Standardized bounds by case id.
CASES: dict[str, tuple[float, float]] = {
    # ordinary: jax's sampler, jax's bits
    "two-sided-2": (-2.0, 2.0),
    "asymmetric": (-1.0, 3.0),
    "one-side-of-0": (0.5, 4.0),
    # one-sided
    "below-1": (-inf, 1.0),
    "half-normal": (0.0, inf),
    "above-3": (3.0, inf),
    "below-minus-6": (-inf, -6.0),
    "above-40": (40.0, inf),
    "below-minus-40": (-inf, -40.0),
    "untruncated": (-inf, inf),
    # far from the mean
    "5-6": (5.0, 6.0),
    "10-11": (10.0, 11.0),
    "minus-11-minus-9": (-11.0, -9.0),
    "40-41": (40.0, 41.0),
    "minus-41-minus-40": (-41.0, -40.0),
    "38-45": (38.0, 45.0),
    # wide
    "wide-5": (-5.0, 5.0),
    "wide-40": (-40.0, 40.0),
    "wide-left": (-100.0, 0.5),
    "wide-right": (-0.5, 1e4),
    # narrow
    "narrow-1": (1.0, 1.01),
    "narrow-1-erf": (1.0, 1.001),
    "narrow-2": (2.0, 2.0001),
    "narrow-minus-6": (-6.0001, -6.0),
    "narrow-30": (30.0, 30.01),
    "narrow-40": (40.0, 40.001),
    "narrow-around-0": (-1e-6, 1e-6),
}
BOUNDS = [pytest.param(a, b, id=name) for name, (a, b) in CASES.items()]
#: scipy's truncnorm keeps its digits except on narrow intervals (see the module docstring).
SCIPY_BOUNDS = [pytest.param(a, b, id=name) for name, (a, b) in CASES.items() if b - a > 0.02]


def _draw(a: float, b: float, dtype=jnp.float32) -> jax.Array:
    return jaxinit.truncated_normal(1.0, lower=a, upper=b)(KEY, (N,), dtype)


@pytest.mark.parametrize(("a", "b"), BOUNDS)
def test_moments_match_the_exact_law(a, b):
    x = _draw(a, b)
    law = exact_law(a, b)
    what = f"truncated_normal({a}, {b})"
    stats.assert_mean(x, law.mean, law.std, what)
    stats.assert_std(x, law.std, law.kurtosis, what)


@pytest.mark.parametrize(("a", "b"), BOUNDS)
def test_values_lie_in_the_interval_and_bfloat16_is_the_float32_cast(a, b):
    x = np.asarray(_draw(a, b))
    assert np.isfinite(x).all()
    assert x.min() >= np.float32(a) and x.max() <= np.float32(b)
    np.testing.assert_array_equal(
        np.asarray(_draw(a, b, jnp.bfloat16)), x.astype(jnp.bfloat16), strict=True
    )


@pytest.mark.parametrize(("a", "b"), BOUNDS)
def test_float64_moments_match_the_exact_law(a, b):
    """`samplers.truncated_moments` (behind ``post_truncation`` and `target_std`)."""
    law = exact_law(a, b)
    mean, std = samplers.truncated_moments(a, b)
    assert abs(mean - law.mean) <= 1e-12 * law.std
    assert abs(std / law.std - 1) <= 1e-12


@pytest.mark.parametrize(("a", "b"), SCIPY_BOUNDS)
def test_scipy_agrees(a, b):
    """scipy's truncnorm is the exact law to 1e-6 unless the interval is narrow."""
    law = exact_law(a, b)
    ref = scipy.stats.truncnorm(a, b)
    assert abs(float(ref.mean()) - law.mean) <= 1e-6 * law.std
    assert abs(float(ref.std()) / law.std - 1) <= 1e-6


# -- the cases of the issue, with scale, mean and absolute bounds --------------------------------


@pytest.mark.parametrize(
    ("init", "a", "b", "scale", "shift"),
    [
        (jaxinit.truncated_normal(1.0, lower=10, upper=11), 10, 11, 1.0, 0.0),
        (jaxinit.truncated_normal(1.0, lower=3, upper=inf), 3, inf, 1.0, 0.0),
        (jaxinit.truncated_normal(1.0, lower=5, upper=6), 5, 6, 1.0, 0.0),
        (
            jaxinit.truncated_normal(1.0, lower=-1, upper=1, mean=10, absolute_bounds=True),
            -11,
            -9,
            1.0,
            10.0,
        ),
        (jaxinit.truncated_normal(0.5, lower=20, upper=21, mean=-3.0), 20, 21, 0.5, -3.0),
        (
            jaxinit.truncated_normal(0.05, lower=1.5, upper=1.625, absolute_bounds=True),
            30,
            32.5,
            0.05,
            0.0,
        ),
    ],
    ids=["10-11", "3-inf", "5-6", "absolute-mean-10", "scaled-shifted-20-21", "absolute-30-std"],
)
def test_issue_cases(init, a, b, scale, shift):
    """``shift + scale * Z`` with Z truncated to the standardized (a, b)."""
    x = np.asarray(init(KEY, (N,)))
    law = exact_law(a, b)
    stats.assert_mean(x, shift + scale * law.mean, scale * law.std)
    stats.assert_std(x, scale * law.std, law.kurtosis)
    lo, hi = (np.float32(shift + scale * v) for v in (a, b))
    assert x.min() >= lo and x.max() <= hi
    assert abs(init.target_std((N,)) / (scale * law.std) - 1) <= 1e-6


def test_scipy_agrees_on_the_issue_expectations():
    """The issue's expected moments, from scipy, for the record."""
    assert round(float(scipy.stats.truncnorm(10, 11).mean()), 2) == 10.10
    assert round(float(scipy.stats.truncnorm(10, 11).std()), 3) == 0.097
    assert round(float(scipy.stats.truncnorm(3, inf).mean()), 2) == 3.28
    assert round(float(scipy.stats.truncnorm(5, 6).std()), 3) == 0.172
    assert round(10 + float(scipy.stats.truncnorm(-11, -9).mean()), 2) == 0.89


# -- which sampler runs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "method"),
    [
        (-2.0, 2.0, "erf"),
        (-1.0, 3.0, "erf"),
        (-3.0, 0.5, "erf"),
        (1.0, 1.001, "erf"),
        (-1e-6, 1e-6, "erf"),
        (-inf, 1.0, "mixed"),
        (3.0, inf, "mixed"),
        (-5.0, 5.0, "mixed"),
        (5.0, 6.0, "log"),
        (10.0, 11.0, "log"),
        (40.0, inf, "log"),
        (2.0, 2.0001, "exponential"),
        (-40.0001, -40.0, "exponential"),
    ],
)
def test_method(a, b, method):
    assert samplers.truncated_normal_method(a, b, jnp.float32) == method


def test_ordinary_bounds_are_jax_bits():
    for a, b in [(-2.0, 2.0), (-1.0, 3.0), (-3.0, 0.5)]:
        ours = jaxinit.truncated_normal(1.0, None, a, b)(KEY, (64, 64))
        theirs = jax.jit(lambda k, a=a, b=b: jax.random.truncated_normal(k, a, b, (64, 64)))(KEY)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), strict=True)


def test_infinite_bound_never_returns_the_largest_float():
    """jax maps a uniform draw of 0 to -inf, clipped to -3.4e38 (one draw in 2^23); jaxinit's
    log-space sampler never draws 0. Key 7 and 2^18 draws: the draw 103009 is 0."""
    key, shape = jax.random.key(7), (1 << 18,)
    u = np.asarray(jax.random.uniform(key, shape))
    assert u[103009] == 0
    theirs = np.asarray(jax.jit(lambda k: jax.random.truncated_normal(k, -inf, 1.0, shape))(key))
    assert theirs[103009] < -3e38
    ours = np.asarray(jaxinit.truncated_normal(1.0, None, -inf, 1.0)(key, shape))
    assert -6.0 < ours[103009] < -5.0  # the quantile 2^-24 * Phi(1)
    assert ours.min() > -6.0 and ours.max() < 1.0
    others = np.arange(shape[0]) != 103009
    np.testing.assert_array_equal(
        ours[others & (abs(ours) < 3.8)], theirs[others & (abs(ours) < 3.8)]
    )


# -- eager = jit = sharded bitwise; traced bounds ---------------------------------------------

BITWISE = [
    pytest.param(jaxinit.truncated_normal(1.0, lower=10, upper=11), id="log"),
    pytest.param(jaxinit.truncated_normal(0.1, lower=-inf, upper=1.0), id="mixed"),
    pytest.param(jaxinit.truncated_normal(1.0, lower=6.0, upper=6.0001), id="exponential"),
    pytest.param(
        jaxinit.truncated_normal(
            0.00225, lower=1.5, upper=1.625, absolute_bounds=True, post_truncation=True
        ),
        id="absolute-post",
    ),
]
SHAPE = (64, 128)


@pytest.mark.parametrize("init", BITWISE)
def test_eager_jit_and_sharded_are_bitwise_equal(init):
    eager = np.asarray(init(KEY, SHAPE))
    jitted = np.asarray(jax.jit(lambda k: init(k, SHAPE))(KEY))
    np.testing.assert_array_equal(eager.view(np.uint32), jitted.view(np.uint32))
    mesh = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))
    for spec in (P("x", None), P(None, "x")):
        sharding = NamedSharding(mesh, spec)
        sharded = init(KEY, SHAPE, out_sharding=sharding)
        assert sharded.sharding.is_equivalent_to(sharding, 2)
        np.testing.assert_array_equal(np.asarray(sharded).view(np.uint32), eager.view(np.uint32))
        inside = jax.jit(lambda k, s=sharding: init(k, SHAPE, out_sharding=s))(KEY)
        np.testing.assert_array_equal(np.asarray(inside).view(np.uint32), eager.view(np.uint32))


@pytest.mark.parametrize(("a", "b"), [(10.0, 11.0), (-inf, 1.0), (6.0, 6.0001), (-2.0, 2.0)])
def test_traced_bounds_match_concrete(a, b):
    """Traced bounds run the per-draw choice ("mixed"): the same values as concrete bounds up
    to the float32 rounding of constants XLA folds for concrete ones (a few ulps)."""
    concrete = np.asarray(jaxinit.truncated_normal(1.0, None, a, b)(KEY, SHAPE), np.float64)
    traced = jax.jit(lambda lo, hi: jaxinit.truncated_normal(1.0, None, lo, hi)(KEY, SHAPE))(
        jnp.float32(a), jnp.float32(b)
    )
    traced = np.asarray(traced, np.float64)
    ulp = np.spacing(np.abs(concrete).astype(np.float32)).astype(np.float64)
    assert (np.abs(traced - concrete) <= 8 * ulp).all()


# -- the pre-truncation std for absolute bounds ------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lo", "hi", "mean"),
    [
        (0.00225, 1.5, 1.625, 0.0),  # the issue's case: the solve passes (48, 52) std
        (0.0025, 1.5, 1.625, 0.0),
        (0.035, 1.5, 1.625, 0.0),  # near the limit 0.125 / sqrt 12 = 0.0361
        (0.1, -1.0, 1.0, 10.0),
        (0.1, 0.0, inf, -5.0),
        (3.0, -inf, 2.0, 0.0),
        (0.02, -inf, inf, 0.3),
    ],
)
def test_post_truncation_with_absolute_bounds_reaches_every_reachable_target(target, lo, hi, mean):
    init = jaxinit.truncated_normal(
        target, lower=lo, upper=hi, mean=mean, absolute_bounds=True, post_truncation=True
    )
    assert abs(init.target_std((N,)) / target - 1) <= 1e-12
    sigma = init._solve_sigma()
    law = exact_law((lo - mean) / sigma, (hi - mean) / sigma)
    assert abs(sigma * law.std / target - 1) <= 1e-6  # scipy agrees
    x = np.asarray(init(KEY, (N,)))
    assert x.min() >= np.float32(lo) and x.max() <= np.float32(hi)
    stats.assert_mean(x, mean + sigma * law.mean, target)
    stats.assert_std(x, target, law.kurtosis)


def test_post_truncation_solves_far_out():
    """A target 1e-6 within (1.5, 1.625) needs the mean ~1000 pre-truncation stds away."""
    init = jaxinit.truncated_normal(
        1e-6, lower=1.5, upper=1.625, absolute_bounds=True, post_truncation=True
    )
    assert 1e3 < 1.5 / init._solve_sigma() < 2e3
    assert abs(init.target_std((1,)) / 1e-6 - 1) <= 1e-12


@pytest.mark.parametrize(
    ("target", "lo", "hi"),
    [(0.125 / math.sqrt(12), 1.5, 1.625), (0.5, 1.5, 1.625), (1.0, -1.0, 1.0)],
)
def test_unreachable_post_truncation_target_is_refused(target, lo, hi):
    with pytest.raises(ValueError, match=r"`stddev`=.*\(upper - lower\)/sqrt\(12\)"):
        jaxinit.truncated_normal(
            target, lower=lo, upper=hi, absolute_bounds=True, post_truncation=True
        )


@pytest.mark.parametrize("bad", [np.array([-1.0, -2.0]), "inf", None])
def test_bounds_must_be_real_scalars(bad):
    """Infinite bounds are accepted as floats only; an array or a string is named and refused
    when the initializer is built."""
    with pytest.raises(TypeError, match="`lower` must be a real"):
        jaxinit.truncated_normal(1.0, None, bad, 1.0)
