"""Statistics: every random scheme draws from exactly the distribution its formula says.

Fixed keys, about a million values per case, tolerances from `stats` (derived from the sample
size). For each scheme: the sample std equals the formula's std, the sample mean its mean, the
values lie in the support, and a Kolmogorov-Smirnov test accepts the exact law (a frozen
``scipy.stats`` distribution built from the formula, independently of jaxinit's code).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import stats

import jaxinit
from jaxinit._src.catalog import registry
from jaxinit._src.core import samplers as jrandom

pytestmark = pytest.mark.slow  # large fixed samples per scheme: left out of the fast lane

KEY = jax.random.key(20250607)

# Shapes (about 2**20 values each) and their fans, computed by hand.
DENSE = (512, 2048)  # fan_in 512, fan_out 2048
CONV = (3, 3, 128, 512)  # HWIO: fan_in 3*3*128 = 1152, fan_out 3*3*512 = 4608
STACKED = (4, 256, 1024)  # with batch_axis=0: fan_in 256, fan_out 1024
FANS = {DENSE: (512, 2048), CONV: (1152, 4608), STACKED: (256, 1024)}

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")

# torch.nn.init.calculate_gain's table (docs/design.md, "Gains"); leaky_relu: sqrt(2/(1+s^2)).
TORCH_GAIN = {
    "linear": 1.0,
    "conv2d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 0.75,
}


def leaky_gain(slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + slope**2))


def denominator(mode: str, fan_in: float, fan_out: float) -> float:
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "fan_avg": (fan_in + fan_out) / 2,
        "fan_geo_avg": math.sqrt(fan_in * fan_out),
    }[mode]


def law(distribution: str, variance: float) -> Any:
    """The exact law of a variance-scaling draw with the given (post-truncation) variance."""
    std = math.sqrt(variance)
    if distribution == "normal":
        return scipy.stats.norm(0.0, std)
    if distribution == "uniform":
        bound = math.sqrt(3.0 * variance)
        return scipy.stats.uniform(-bound, 2 * bound)
    return scipy.stats.truncnorm(-2.0, 2.0, scale=std / stats.TRUNC_STD_2)


@dataclasses.dataclass(frozen=True)
class Case:
    """One initializer on one shape, with the formula's std and the exact law of its values."""

    id: str
    init: Any
    shape: tuple[int, ...]
    std: float  # the formula's standard deviation
    dist: Any  # frozen scipy distribution of each value
    mean: float = 0.0
    half_open: bool = False  # uniform: min >= low, max < high (else low <= w <= high)

    @property
    def kurtosis(self) -> float:
        return stats.kurtosis(self.dist)

    def __repr__(self) -> str:
        return self.id


def vs_case(id_, init, shape, scale, mode, distribution, fans=None) -> Case:
    fan_in, fan_out = fans or FANS[shape]
    variance = scale / denominator(mode, fan_in, fan_out)
    return Case(
        id_,
        init,
        shape,
        math.sqrt(variance),
        law(distribution, variance),
        half_open=distribution == "uniform",
    )


def _variance_scaling_cases() -> list[Case]:
    out = [
        vs_case(f"variance_scaling-{m}-{d}", jaxinit.variance_scaling(1.5, m, d), DENSE, 1.5, m, d)
        for m in MODES
        for d in DISTRIBUTIONS
    ]
    out += [
        vs_case(
            "variance_scaling-conv-tn",
            jaxinit.variance_scaling(2.0, "fan_in", "truncated_normal"),
            CONV, 2.0, "fan_in", "truncated_normal",
        ),
        vs_case(
            "variance_scaling-conv-uniform-fan_out",
            jaxinit.variance_scaling(0.5, "fan_out", "uniform"),
            CONV, 0.5, "fan_out", "uniform",
        ),
        vs_case(
            "variance_scaling-stacked-batch_axis",
            jaxinit.variance_scaling(1.0, "fan_avg", "normal", batch_axis=0),
            STACKED, 1.0, "fan_avg", "normal",
        ),
        vs_case(
            "variance_scaling-sequence-in_axis",
            jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=(0, 1), out_axis=2),
            (16, 64, 1024), 1.0, "fan_in", "truncated_normal", fans=(1024, 1024),
        ),
        # Flax's Embed default: in and out axes coincide, fan_in = F, std 1/sqrt(F).
        vs_case(
            "variance_scaling-embed-out_axis0",
            jaxinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
            (4096, 256), 1.0, "fan_in", "normal", fans=(256, 256),
        ),
    ]  # fmt: skip
    return out


def _named_cases() -> list[Case]:
    named = {
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "lecun_normal": (1.0, "fan_in", "truncated_normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
        "he_normal": (2.0, "fan_in", "truncated_normal"),
    }
    out = [
        vs_case(name, getattr(jaxinit, name)(), DENSE, *scheme) for name, scheme in named.items()
    ]
    out += [
        vs_case("glorot_normal-conv", jaxinit.glorot_normal(), CONV, *named["glorot_normal"]),
        vs_case("he_uniform-conv", jaxinit.he_uniform(), CONV, *named["he_uniform"]),
        vs_case(
            "lecun_normal-stacked", jaxinit.lecun_normal(batch_axis=0), STACKED,
            *named["lecun_normal"],
        ),
    ]  # fmt: skip
    # He with torch's nonlinearity options: scale = calculate_gain(nonlinearity, slope)**2.
    for nl in ("linear", "sigmoid", "tanh", "relu", "selu"):
        out.append(
            vs_case(
                f"he_normal-{nl}", jaxinit.he_normal(nonlinearity=nl), DENSE,
                TORCH_GAIN[nl] ** 2, "fan_in", "truncated_normal",
            )
        )  # fmt: skip
    out += [
        # torch's kaiming default a=0: leaky_relu without a slope has ReLU's gain.
        vs_case(
            "he_normal-leaky_relu-default", jaxinit.he_normal(nonlinearity="leaky_relu"), DENSE,
            leaky_gain(0.0) ** 2, "fan_in", "truncated_normal",
        ),
        vs_case(
            "he_normal-leaky_relu-0.2",
            jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=0.2), DENSE,
            leaky_gain(0.2) ** 2, "fan_in", "truncated_normal",
        ),
        vs_case(
            "he_uniform-conv2d", jaxinit.he_uniform(nonlinearity="conv2d"), CONV,
            TORCH_GAIN["conv2d"] ** 2, "fan_in", "uniform",
        ),
        vs_case(
            "he_uniform-tanh", jaxinit.he_uniform(nonlinearity="tanh"), DENSE,
            TORCH_GAIN["tanh"] ** 2, "fan_in", "uniform",
        ),
        vs_case(
            "he_uniform-leaky_relu-0.1",
            jaxinit.he_uniform(nonlinearity="leaky_relu", negative_slope=0.1), CONV,
            leaky_gain(0.1) ** 2, "fan_in", "uniform",
        ),
    ]  # fmt: skip
    return out


def _framework_cases() -> list[Case]:
    out = []
    factor_mode = {"avg": "fan_avg", "in": "fan_in", "out": "fan_out"}
    # MXNet Xavier: s = sqrt(magnitude / n); uniform U[-s, s) (var s^2/3), gaussian N(0, s^2).
    for rnd, dist in (("uniform", "uniform"), ("gaussian", "normal")):
        for factor, mode in factor_mode.items():
            scale = 3.0 / 3.0 if rnd == "uniform" else 3.0
            out.append(
                vs_case(
                    f"mxnet_xavier-{rnd}-{factor}", jaxinit.mxnet_xavier(rnd, factor), DENSE,
                    scale, mode, dist,
                )
            )  # fmt: skip
    out.append(
        vs_case(
            "mxnet_xavier-gaussian-in-magnitude2-conv", jaxinit.mxnet_xavier("gaussian", "in", 2.0),
            CONV, 2.0, "fan_in", "normal",
        )
    )  # fmt: skip
    # MXNet MSRAPrelu: N(0, 2 / ((1 + slope^2) n)).
    for factor, mode in factor_mode.items():
        out.append(
            vs_case(
                f"msra_prelu-{factor}", jaxinit.msra_prelu(factor), DENSE,
                2.0 / (1 + 0.25**2), mode, "normal",
            )
        )  # fmt: skip
    out.append(
        vs_case(
            "msra_prelu-in-slope0-conv", jaxinit.msra_prelu("in", 0.0), CONV, 2.0, "fan_in",
            "normal",
        )
    )  # fmt: skip
    # Caffe xavier: U(+-sqrt(3/n)); msra: N(0, 2/n).
    caffe_mode = {"fan_in": "fan_in", "fan_out": "fan_out", "average": "fan_avg"}
    for norm, mode in caffe_mode.items():
        out.append(
            vs_case(f"caffe_xavier-{norm}", jaxinit.caffe_xavier(norm), DENSE, 1.0, mode, "uniform")
        )
        out.append(
            vs_case(f"caffe_msra-{norm}", jaxinit.caffe_msra(norm), CONV, 2.0, mode, "normal")
        )
    # TF1 uniform_unit_scaling: U(+-factor * sqrt(3 / prod(shape[:-1]))).
    for factor, shape in ((1.0, CONV), (1.43, DENSE)):
        bound = factor * math.sqrt(3.0 / math.prod(shape[:-1]))
        out.append(
            Case(
                f"uniform_unit_scaling-{factor}", jaxinit.uniform_unit_scaling(factor), shape,
                bound / math.sqrt(3.0), scipy.stats.uniform(-bound, 2 * bound), half_open=True,
            )
        )  # fmt: skip
    out.append(
        Case(
            "caffe_gaussian", jaxinit.caffe_gaussian(0.05, 0.01), DENSE, 0.05,
            scipy.stats.norm(0.01, 0.05), mean=0.01,
        )
    )  # fmt: skip
    return out


def _solve_pre_truncation_sigma(target: float, mean: float, lo: float, hi: float) -> float:
    """The sigma whose N(mean, sigma) truncated to the absolute (lo, hi) has std `target`."""

    def excess(sigma: float) -> float:
        return (
            scipy.stats.truncnorm((lo - mean) / sigma, (hi - mean) / sigma).std() * sigma - target
        )

    return scipy.optimize.brentq(excess, 1e-6 * target, 1e3 * target, xtol=1e-15, rtol=1e-15)


def _elementwise_cases() -> list[Case]:
    out = [
        Case("normal", jaxinit.normal(0.02), DENSE, 0.02, scipy.stats.norm(0.0, 0.02)),
        Case(
            "normal-mean", jaxinit.normal(0.5, mean=-0.3), DENSE, 0.5,
            scipy.stats.norm(-0.3, 0.5), mean=-0.3,
        ),
        # jax's uniform is U[0, scale), not symmetric.
        Case(
            "uniform", jaxinit.uniform(0.1), DENSE, 0.1 / math.sqrt(12.0),
            scipy.stats.uniform(0.0, 0.1), mean=0.05, half_open=True,
        ),
        Case(
            "uniform_range", jaxinit.uniform_range(-0.3, 0.7), DENSE, 1.0 / math.sqrt(12.0),
            scipy.stats.uniform(-0.3, 1.0), mean=0.2, half_open=True,
        ),
    ]  # fmt: skip

    def tn(id_, init, sigma, a, b, loc=0.0, std=None):
        """Values ~ loc + sigma * TN(a, b) (a, b in units of sigma)."""
        dist = scipy.stats.truncnorm(a, b, loc=loc, scale=sigma)
        return Case(id_, init, DENSE, dist.std() if std is None else std, dist, dist.mean())

    inf = math.inf
    # Default: stddev is the pre-truncation std, bounds in its units: actual std 0.02 * 0.8796.
    out.append(
        tn(
            "truncated_normal",
            jaxinit.truncated_normal(0.02),
            0.02,
            -2,
            2,
            std=0.02 * 0.8796256610342398,
        )
    )
    out += [
        tn("truncated_normal-asymmetric", jaxinit.truncated_normal(1.0, None, -1, 3), 1.0, -1, 3),
        tn("truncated_normal-one-sided", jaxinit.truncated_normal(0.5, None, -inf, 0.5), 0.5,
           -inf, 0.5),
        tn("truncated_normal-mean", jaxinit.truncated_normal(0.2, mean=1.0), 0.2, -2, 2, loc=1.0),
        # post_truncation: stddev is the std after truncation.
        tn(
            "truncated_normal-post", jaxinit.truncated_normal(0.02, post_truncation=True),
            0.02 / stats.TRUNC_STD_2, -2, 2, std=0.02,
        ),
        tn(
            "truncated_normal-post-asymmetric",
            jaxinit.truncated_normal(0.3, None, -1.0, 3.0, post_truncation=True),
            0.3 / scipy.stats.truncnorm(-1, 3).std(), -1, 3, std=0.3,
        ),
        # absolute_bounds: lower/upper are values (torch's trunc_normal_).
        tn(
            "truncated_normal-absolute",
            jaxinit.truncated_normal(1.0, lower=-0.5, upper=0.5, absolute_bounds=True),
            1.0, -0.5, 0.5,
        ),
        tn(
            "truncated_normal-absolute-mean",
            jaxinit.truncated_normal(0.2, lower=-0.3, upper=0.4, mean=0.1, absolute_bounds=True),
            0.2, (-0.3 - 0.1) / 0.2, (0.4 - 0.1) / 0.2, loc=0.1,
        ),
    ]  # fmt: skip
    # Both: absolute bounds and a post-truncation std; the pre-truncation sigma is solved.
    for id_, std, mean, lo, hi in (
        ("truncated_normal-post-absolute", 0.2, 0.0, -0.5, 0.5),
        ("truncated_normal-post-absolute-mean", 0.1, 0.05, -0.2, 0.4),
        ("truncated_normal-post-absolute-half", 0.5, 0.0, 0.0, inf),
    ):
        init = jaxinit.truncated_normal(
            std, lower=lo, upper=hi, mean=mean, post_truncation=True, absolute_bounds=True
        )
        sigma = _solve_pre_truncation_sigma(std, mean, lo, hi)
        out.append(tn(id_, init, sigma, (lo - mean) / sigma, (hi - mean) / sigma, mean, std=std))
    return out


CASES = _variance_scaling_cases() + _named_cases() + _framework_cases() + _elementwise_cases()


def case_key(case_id: str) -> jax.Array:
    """A fixed key per case, so that cases are independent draws."""
    return jax.random.fold_in(KEY, zlib.crc32(case_id.encode()))


@functools.cache
def _all_draws() -> tuple[np.ndarray, ...]:
    """Every case drawn in one jitted program (one compilation instead of one per case).

    Inside a larger jit the values are bitwise those of an eager call (tests/test_conformance).
    """
    out = jax.jit(lambda: [c.init(case_key(c.id), c.shape) for c in CASES])()
    for c, w in zip(CASES, out, strict=True):
        assert w.shape == c.shape and w.dtype == jnp.float32, c.id
    return tuple(np.asarray(w) for w in out)


def draw(case: Case) -> np.ndarray:
    return _all_draws()[CASES.index(case)]


def test_cases_are_consistent():
    """Each case's formula std and mean agree with its scipy law (guards the table itself)."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for c in CASES:
        np.testing.assert_allclose(c.dist.std(), c.std, rtol=1e-9, err_msg=c.id)
        np.testing.assert_allclose(c.dist.mean(), c.mean, rtol=1e-9, atol=1e-12, err_msg=c.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_std_matches_formula(case):
    stats.assert_std(draw(case), case.std, case.kurtosis, case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_mean_matches_formula(case):
    stats.assert_mean(draw(case), case.mean, case.std, case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_values_lie_in_the_support(case):
    x = draw(case).astype(np.float64)
    low, high = case.dist.support()
    assert x.min() >= low, (case.id, x.min(), low)
    if case.half_open:
        assert x.max() < high, (case.id, x.max(), high)
    else:
        assert x.max() <= high, (case.id, x.max(), high)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fast_cdf_equals_scipy_cdf(case):
    """The KS helper's CDF (fast for truncnorm) is scipy's, on a grid across the support."""
    lo, hi = case.dist.ppf(1e-9), case.dist.ppf(1 - 1e-9)
    grid = np.linspace(lo - case.std, hi + case.std, 1001)
    np.testing.assert_allclose(stats.cdf(case.dist)(grid), case.dist.cdf(grid), rtol=0, atol=1e-13)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kolmogorov_smirnov_against_exact_law(case):
    stats.assert_ks(draw(case), case.dist, case.id)


def test_truncated_schemes_reach_but_do_not_pass_two_pre_truncation_stds():
    """Variance-scaling truncation is at +-2 sigma_pre: the sample gets close to it, not past."""
    case = next(c for c in CASES if c.id == "lecun_normal")
    sigma_pre = case.std / stats.TRUNC_STD_2
    x = np.abs(draw(case))
    assert x.max() <= 2 * sigma_pre
    # P(|w| > 1.99 sigma_pre) = 2.3e-3 per value: ~2400 of 2**20 values land there.
    assert x.max() > 1.99 * sigma_pre


def test_caffe_gaussian_sparse_keeps_k_over_outputs_and_normal_values():
    """sparse=k keeps each weight with probability k / shape[-1]; the kept values are N(0, std)."""
    k, shape = 64, DENSE
    x = np.asarray(jaxinit.caffe_gaussian(0.05, sparse=k)(case_key("sparse"), shape))
    p, n = k / shape[-1], x.size
    kept = x != 0
    assert abs(kept.mean() - p) <= stats.proportion_tolerance(p, n)
    stats.assert_std(x[kept], 0.05, stats.KURTOSIS_NORMAL, "sparse non-zeros")
    stats.assert_ks(x[kept], scipy.stats.norm(0.0, 0.05), "sparse non-zeros")


# -- Complex dtypes ----------------------------------------------------------------------------

COMPLEX_SHAPE = DENSE  # fan_in 512, 2**20 values
COMPLEX_SCALE = 2.0


@functools.cache
def complex_draw(distribution: str) -> np.ndarray:
    init = jaxinit.variance_scaling(COMPLEX_SCALE, "fan_in", distribution, dtype=jnp.complex64)
    w = init(case_key(f"complex-{distribution}"), COMPLEX_SHAPE)
    assert w.dtype == jnp.complex64
    return np.asarray(w).astype(np.complex128).ravel()


def complex_second_moment_tolerance(distribution: str, n: int) -> float:
    """Tolerance of mean(|w|^2) / E|w|^2 (relative), from the exact law of |w|^2."""
    return stats.mean_tolerance(stats.complex_modulus2(distribution).std(), n)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_complex_second_moment_equals_scale_over_fan(distribution):
    """E|w|^2 * n == scale for every distribution (jax's truncated normal gives 1.0184)."""
    w = complex_draw(distribution)
    fan_in = COMPLEX_SHAPE[0]
    ratio = float(np.mean(np.abs(w) ** 2)) * fan_in / COMPLEX_SCALE
    tol = complex_second_moment_tolerance(distribution, w.size)
    assert abs(ratio - 1.0) <= tol, (distribution, ratio, tol)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_complex_modulus_and_phase_follow_exact_laws(distribution):
    w = complex_draw(distribution)
    variance = COMPLEX_SCALE / COMPLEX_SHAPE[0]
    stats.assert_ks(np.abs(w) ** 2 / variance, stats.complex_modulus2(distribution), "|w|^2")
    stats.assert_ks(np.angle(w), scipy.stats.uniform(-math.pi, 2 * math.pi), "arg w")


def test_complex_uniform_is_bounded_by_the_disk():
    w = complex_draw("uniform")
    bound = math.sqrt(2 * COMPLEX_SCALE / COMPLEX_SHAPE[0])
    assert np.abs(w).max() <= bound


def test_complex_truncated_normal_tolerance_rejects_jax_constant():
    """The E|w|^2 check is tight enough to reject jax's constant 0.95311 (variance +1.86%)."""
    n = math.prod(COMPLEX_SHAPE)
    tol = complex_second_moment_tolerance("truncated_normal", n)
    jax_ratio = (stats.COMPLEX_TRUNC_STD_2 / stats.JAX_COMPLEX_TRUNC_STD_2) ** 2
    assert jax_ratio - 1 > 3 * tol, (jax_ratio, tol)
    # And empirically: jax 0.10's own complex lecun-style draw fails the same check.
    jax_init = jax.nn.initializers.variance_scaling(
        COMPLEX_SCALE, "fan_in", "truncated_normal", dtype=jnp.complex64
    )
    w = np.asarray(jax_init(case_key("complex-jax"), COMPLEX_SHAPE)).astype(np.complex128)
    ratio = float(np.mean(np.abs(w) ** 2)) * COMPLEX_SHAPE[0] / COMPLEX_SCALE
    assert abs(ratio - 1.0) > tol, (ratio, tol)


def test_complex_normal_second_moment_is_stddev_squared():
    """`normal(stddev)` with a complex dtype: E|w|^2 = stddev^2 (not 2 stddev^2)."""
    w = jaxinit.normal(0.3)(case_key("complex-normal"), DENSE, jnp.complex64)
    w = np.asarray(w).astype(np.complex128).ravel()
    tol = stats.mean_tolerance(stats.complex_modulus2("normal").std(), w.size)
    assert abs(float(np.mean(np.abs(w) ** 2)) / 0.09 - 1) <= tol


# -- bfloat16 and float8 ------------------------------------------------------------------------

BF16_SHAPE = (1024, 1024)


def test_bf16_lecun_normal_has_full_resolution_and_right_std():
    """Drawn in float32 and cast: thousands of distinct values (jax's bf16 draw has 128)."""
    w = jaxinit.lecun_normal()(case_key("bf16-lecun"), BF16_SHAPE, jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    x = stats.as_float64(w)
    assert len(np.unique(x)) > 16 * 128
    assert not (x == 0).any()  # jax's bf16 truncated normal has 0.78% exact zeros
    sigma = 1 / math.sqrt(BF16_SHAPE[0])
    stats.assert_std(x, sigma, stats.KURTOSIS_TRUNCNORM_2, "bf16 lecun_normal")
    stats.assert_mean(x, 0.0, sigma, "bf16 lecun_normal")


def _bf16_he_uniform_mean_error(lib: Any) -> tuple[float, float]:
    w = lib.he_uniform()(case_key("bf16-he-uniform"), BF16_SHAPE, jnp.bfloat16)
    x = stats.as_float64(w)
    sigma = math.sqrt(2 / BF16_SHAPE[0])
    return abs(float(x.mean())), stats.mean_tolerance(sigma, x.size)


def test_bf16_he_uniform_is_unbiased():
    err, tol = _bf16_he_uniform_mean_error(jaxinit)
    assert err <= tol


def test_bf16_mean_check_has_power_jax_bf16_draw_fails_it():
    """jax draws bf16 uniforms directly (128 values in [0, 1), biased by -1/256): rejected."""
    err, tol = _bf16_he_uniform_mean_error(jax.nn.initializers)
    assert err > tol


# Every random scheme of the catalogue, some with values beyond float8's range (saturation).
RANDOM_SCHEMES = {
    "gated_orthogonal": jaxinit.gated_orthogonal(gates=4, scale=1e3),
    "uniform": jaxinit.uniform(1e6),
    "uniform_range": jaxinit.uniform_range(-1e6, 1e6),
    "normal": jaxinit.normal(1e3),
    "truncated_normal": jaxinit.truncated_normal(1e3),
    "truncated_normal-post-abs": jaxinit.truncated_normal(
        0.2, lower=-0.5, upper=0.5, post_truncation=True, absolute_bounds=True
    ),
    **{f"variance_scaling-{d}": jaxinit.variance_scaling(1e9, "fan_in", d) for d in DISTRIBUTIONS},
    "glorot_uniform": jaxinit.glorot_uniform(),
    "glorot_normal": jaxinit.glorot_normal(),
    "lecun_uniform": jaxinit.lecun_uniform(),
    "lecun_normal": jaxinit.lecun_normal(),
    "he_uniform": jaxinit.he_uniform(),
    "he_normal": jaxinit.he_normal(),
    "orthogonal": jaxinit.orthogonal(),
    "delta_orthogonal": jaxinit.delta_orthogonal(),
    "uniform_unit_scaling": jaxinit.uniform_unit_scaling(),
    "mxnet_xavier": jaxinit.mxnet_xavier("gaussian", "in"),
    "msra_prelu": jaxinit.msra_prelu(),
    "caffe_xavier": jaxinit.caffe_xavier(),
    "caffe_msra": jaxinit.caffe_msra(),
    "caffe_gaussian": jaxinit.caffe_gaussian(0.01, sparse=4),
    "positive_unitball": jaxinit.positive_unitball(),
    "sparse": jaxinit.sparse(0.5),
}


def test_float8_scheme_table_covers_every_random_initializer():
    """Which initializers are random is asked of their classes (`random`), not restated."""
    classes = {registry.lookup(n) for n in jaxinit.registry_names()}
    classes = {c if isinstance(c, type) else type(c) for c in classes}
    random_names = {c.name for c in classes if c.random}
    covered = {init.name for init in RANDOM_SCHEMES.values()}
    assert covered <= random_names
    missing = random_names - covered
    assert not missing, f"add these random initializers to RANDOM_SCHEMES: {sorted(missing)}"


@functools.cache
def _float8_draws(dtype: Any) -> dict[str, np.ndarray]:
    """Every random scheme in `dtype`, drawn in one jitted program."""

    def shape(name: str) -> tuple[int, ...]:
        return (3, 3, 64, 64) if name == "delta_orthogonal" else (256, 256)

    def draw_all():
        return {n: i(case_key(f"float8-{n}"), shape(n), dtype) for n, i in RANDOM_SCHEMES.items()}

    return {n: np.asarray(w) for n, w in jax.jit(draw_all)().items()}


@pytest.mark.parametrize("dtype", [jnp.float8_e4m3fn, jnp.float8_e5m2], ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", sorted(RANDOM_SCHEMES))
def test_float8_outputs_are_finite(name, dtype):
    """No NaN or inf in float8 (jax's own e4m3fn truncated normal is all NaN): values saturate."""
    w = _float8_draws(dtype)[name]
    assert w.dtype == dtype
    x = w.astype(np.float32)
    assert np.isfinite(x).all(), name
    assert np.abs(x).max() <= float(jnp.finfo(dtype).max)


# -- Truncation constants ----------------------------------------------------------------------

BOUND_PAIRS = [
    (-2.0, 2.0),
    (-1.0, 3.0),
    (-3.0, -0.5),
    (0.5, 4.0),
    (-0.1, 0.1),
    (-math.inf, 1.0),
    (-1.0, math.inf),
    (0.0, math.inf),
    (-math.inf, math.inf),
]


@pytest.mark.parametrize(("lower", "upper"), BOUND_PAIRS)
def test_truncated_moments_match_scipy(lower, upper):
    mean, std = jrandom.truncated_moments(lower, upper)
    ref = scipy.stats.truncnorm(lower, upper)
    assert abs(std - ref.std()) <= 1e-12
    assert abs(mean - ref.mean()) <= 1e-12


def test_truncation_constant_two_sided_two():
    assert abs(jrandom.truncated_moments(-2, 2)[1] - stats.TRUNC_STD_2) <= 1e-12
    assert abs(jrandom.TRUNC_STD_2 - stats.TRUNC_STD_2) <= 1e-15


def test_complex_truncation_constant():
    assert abs(jrandom.complex_truncated_std(2) - 0.96196182800821) <= 1e-12
    assert abs(jrandom.complex_truncated_std(2) - stats.COMPLEX_TRUNC_STD_2) <= 1e-12
    for upper in (1.0, 3.0):
        ref = math.sqrt(float(scipy.stats.truncexpon(upper**2).mean()))
        assert abs(jrandom.complex_truncated_std(upper) - ref) <= 1e-12
