"""The one tolerance table of the statistical tests.

Every statistical assertion in the test suite takes its tolerance from here, and every tolerance
is *derived from the sample size*: it is ``Z`` standard errors of the statistic being checked,
where the standard error follows from the exact distribution's moments. Nothing is widened by
hand; if a check fails, either the sampler or the formula is wrong.

* A sample mean of ``n`` iid values with std ``sigma`` has standard error ``sigma / sqrt(n)``.
* A sample std has standard error ``sigma * sqrt((kurtosis - 1) / (4 n))`` (delta method on the
  sample variance, whose standard error is ``sigma**2 * sqrt((kurtosis - 1) / n)``), where
  ``kurtosis = E[(x - mu)^4] / sigma^4`` (3 for a normal, 1.8 for a uniform).
* A sample proportion has standard error ``sqrt(p (1 - p) / n)``.

``Z = 6`` makes a false failure a ~2e-9 event per check. The tests also use fixed keys, so every
result is deterministic: a test either always passes or always fails.

Kolmogorov-Smirnov tests compare a whole sample with the exact distribution (a frozen
``scipy.stats`` distribution), or two samples of one law with each other (`assert_same_law`), and
require ``p > KS_MIN_PVALUE``. With a fixed key the p-value is
a fixed number, so the test is not flaky; under the null hypothesis a given key fails with
probability 1e-4.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special
import scipy.stats

#: Standard errors allowed for every moment check.
Z = 6.0

#: Minimum p-value of a Kolmogorov-Smirnov test against the exact distribution (fixed keys).
KS_MIN_PVALUE = 1e-4


# -- Kurtosis (E[(x - mu)^4] / sigma^4) of each distribution -----------------------------------


def kurtosis(dist: Any) -> float:
    """The (non-excess) kurtosis of a frozen ``scipy.stats`` distribution."""
    return float(dist.stats(moments="k")) + 3.0


KURTOSIS_NORMAL = 3.0
KURTOSIS_UNIFORM = 1.8
#: N(0, 1) truncated to (-2, 2), the truncated normal of every variance-scaling scheme.
KURTOSIS_TRUNCNORM_2 = kurtosis(scipy.stats.truncnorm(-2.0, 2.0))

#: Std of N(0, 1) truncated to (-2, 2), from scipy (the oracle for jaxinit's constant).
TRUNC_STD_2 = float(scipy.stats.truncnorm(-2.0, 2.0).std())


# -- Complex distributions: the law of |w|^2 for E|w|^2 = 1 -------------------------------------


def complex_modulus2(distribution: str, upper: float = 2.0) -> Any:
    """The exact law of ``|w|^2`` for a complex variance-scaling `distribution` with E|w|^2 = 1.

    * ``normal``: a standard complex normal has ``|w|^2 ~ Exp(1)``.
    * ``uniform``: uniform on the disk of radius sqrt(2), ``|w|^2 = 2 U``.
    * ``truncated_normal``: ``|z|^2 ~ Exp(1)`` truncated to ``[0, upper^2)``, divided by its
      mean so that E|w|^2 = 1.
    """
    if distribution == "normal":
        return scipy.stats.expon()
    if distribution == "uniform":
        return scipy.stats.uniform(0.0, 2.0)
    if distribution == "truncated_normal":
        b = upper**2
        return scipy.stats.truncexpon(b, scale=1.0 / scipy.stats.truncexpon(b).mean())
    raise ValueError(f"unknown distribution {distribution!r}")


#: sqrt(E|z|^2) of a standard complex normal with modulus truncated to 2 (scipy's oracle).
COMPLEX_TRUNC_STD_2 = math.sqrt(float(scipy.stats.truncexpon(4.0).mean()))
#: The constant jax 0.10 uses instead: sqrt(1 - 5 e^-4), missing the division by 1 - e^-4.
JAX_COMPLEX_TRUNC_STD_2 = 0.95311164380491208


# -- Tolerances -------------------------------------------------------------------------------


def mean_tolerance(sigma: float, n: int, z: float = Z) -> float:
    """``z`` standard errors of the mean of `n` values with standard deviation `sigma`."""
    return z * sigma / math.sqrt(n)


def std_tolerance(sigma: float, n: int, kurtosis: float, z: float = Z) -> float:
    """``z`` standard errors of the sample std of `n` values with std `sigma` and `kurtosis`."""
    return z * sigma * math.sqrt((kurtosis - 1.0) / (4.0 * n))


def proportion_tolerance(p: float, n: int, z: float = Z) -> float:
    """``z`` standard errors of a proportion `p` estimated from `n` Bernoulli trials."""
    return z * math.sqrt(p * (1.0 - p) / n)


# -- Assertions -------------------------------------------------------------------------------


def as_float64(x: Any) -> np.ndarray:
    """A flat float64 NumPy copy of `x` (any real dtype, bfloat16 and float8 included)."""
    return np.asarray(np.asarray(x).astype(np.float64)).ravel()


def assert_mean(x: Any, mean: float, sigma: float, what: str = "") -> None:
    """The sample mean of `x` is `mean` within `mean_tolerance(sigma, x.size)`."""
    x = as_float64(x)
    tol = mean_tolerance(sigma, x.size)
    got = float(x.mean())
    assert abs(got - mean) <= tol, (
        f"{what} mean {got!r} != {mean!r} (tolerance {tol:.3g} = {Z:g} standard errors, n={x.size})"
    )


def assert_std(x: Any, sigma: float, kurt: float, what: str = "") -> None:
    """The sample std of `x` is `sigma` within `std_tolerance(sigma, x.size, kurt)`."""
    x = as_float64(x)
    tol = std_tolerance(sigma, x.size, kurt)
    got = float(x.std())
    assert abs(got - sigma) <= tol, (
        f"{what} std {got!r} != {sigma!r} (relative error {got / sigma - 1:+.3g}; tolerance "
        f"{tol / sigma:.3g} relative = {Z:g} standard errors, n={x.size}, kurtosis={kurt:.4g})"
    )


def cdf(dist: Any) -> Any:
    """The CDF of a frozen scipy distribution, vectorized fast for ``truncnorm``.

    scipy's generic ``truncnorm.cdf`` takes ~0.5 s per million points; for the moderate bounds
    used here ``(ndtr(z) - ndtr(a)) / (ndtr(b) - ndtr(a))`` is the same function to ~1e-15
    (checked against scipy's by ``tests/test_statistics.py``).
    """
    if dist.dist.name != "truncnorm":
        return dist.cdf
    a, b = dist.args
    loc, scale = dist.kwds.get("loc", 0.0), dist.kwds.get("scale", 1.0)
    lo, mass = scipy.special.ndtr(a), scipy.special.ndtr(b) - scipy.special.ndtr(a)

    def truncnorm_cdf(x: np.ndarray) -> np.ndarray:
        z = np.clip((np.asarray(x) - loc) / scale, a, b)
        return np.clip((scipy.special.ndtr(z) - lo) / mass, 0.0, 1.0)

    return truncnorm_cdf


def ks_pvalue(x: Any, dist: Any) -> float:
    """The p-value of a two-sided Kolmogorov-Smirnov test of `x` against `dist`."""
    return float(scipy.stats.kstest(as_float64(x), cdf(dist)).pvalue)


def assert_ks(x: Any, dist: Any, what: str = "") -> None:
    """`x` passes a KS test against the frozen scipy distribution `dist` (p > KS_MIN_PVALUE)."""
    p = ks_pvalue(x, dist)
    assert p > KS_MIN_PVALUE, f"{what} KS test against the exact law: p = {p:.3g}"


def assert_support(x: np.ndarray, law: Any) -> None:
    """Every value of `x` lies in the support of `law` (up to float32 rounding); a uniform
    sample comes within ``25/n`` of both ends (missing by chance: below e^-25)."""
    lo, hi = law.support()
    eps = 4 * np.finfo(np.float32).eps * max(abs(lo), abs(hi), 1.0)
    assert x.min() >= lo - eps and x.max() <= hi + eps
    if law.dist.name == "uniform":
        t = 25 / x.size * (hi - lo)
        assert x.min() <= lo + t and x.max() >= hi - t


def assert_same_law(a: Any, b: Any, law: Any, *, support: bool = False) -> None:
    """`a` and `b` follow one law, `law`: means and stds within `Z` standard errors of their
    difference (sigma and kurtosis from `law`), each in `law`'s support when `support`
    (`assert_support`), and a two-sample KS test with p > `KS_MIN_PVALUE`."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    std, k = float(law.std()), kurtosis(law)
    inv = 1 / a.size + 1 / b.size
    assert abs(a.mean() - b.mean()) <= Z * std * math.sqrt(inv)
    assert abs(a.std() - b.std()) <= Z * std * math.sqrt((k - 1) / 4 * inv)
    if support:
        assert_support(a, law)
        assert_support(b, law)
    assert scipy.stats.ks_2samp(a, b).pvalue > KS_MIN_PVALUE
