"""Tests of the structured initializers: identity, dirac, bilinear, positive_unitball, sparse."""

import math
from fractions import Fraction

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxinit._src.schemes.structured import Bilinear, Dirac, Identity, PositiveUnitball, Sparse

KEY = jax.random.key(0)
HIGHEST = jax.lax.Precision.HIGHEST
CONV_DIMS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


def ref_filter(k):
    """The 1-D bilinear filter, written out from the formula in float64."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2 * f)
    return np.array([1 - abs(x / f - c) for x in range(k)])


def ref_dirac(shape, groups, scale=1.0):
    """torch's dirac_ loop, transposed to HWIO and with the centre (k - 1) // 2."""
    w = np.zeros(shape)
    in_per_group, out = shape[-2], shape[-1]
    out_per_group = out // groups
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    for g in range(groups):
        for d in range(min(in_per_group, out_per_group)):
            w[(*centre, d, g * out_per_group + d)] = scale
    return w


# -- identity -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (4, 3, 3), (2, 3, 4, 6), (1, 1)])
@pytest.mark.parametrize("scale", [1.0, 2.5, -0.5])
def test_identity_exact(shape, scale):
    w = Identity(scale)(KEY, shape)
    expected = np.broadcast_to(scale * np.eye(shape[-2], shape[-1]), shape)
    chex.assert_trees_all_equal(w, jnp.asarray(expected, jnp.float32))


def test_identity_complex_and_traced_scale():
    w = Identity(2.0)(KEY, (3, 4), jnp.complex64)
    assert w.dtype == jnp.complex64
    np.testing.assert_array_equal(w, 2.0 * np.eye(3, 4))
    w = jax.jit(lambda s: Identity(s)(KEY, (2, 3, 3)))(jnp.float32(3.0))
    np.testing.assert_array_equal(w, np.broadcast_to(3.0 * np.eye(3), (2, 3, 3)))


@pytest.mark.parametrize("shape", [(), (4,)])
def test_identity_rank_error(shape):
    with pytest.raises(ValueError, match="`shape`"):
        Identity()(KEY, shape)


# -- dirac ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, groups",
    [
        ((3, 4, 4), 1),
        ((3, 3, 4, 4), 1),
        ((3, 3, 2, 6), 1),  # in < out: extra outputs are zero
        ((3, 3, 6, 2), 1),  # in > out: extra inputs unused
        ((4, 4, 2, 6), 3),
        ((2, 5, 3, 3), 1),
        ((3, 3, 3, 2, 4), 2),
        ((1, 1, 4, 4), 4),
    ],
)
def test_dirac_exact(shape, groups):
    w = Dirac(2.0, groups)(KEY, shape)
    chex.assert_trees_all_equal(w, jnp.asarray(ref_dirac(shape, groups, 2.0), jnp.float32))


@pytest.mark.parametrize(
    "spatial, channels, groups",
    [
        ((3,), 4, 1),
        ((4,), 6, 2),
        ((3, 3), 8, 1),
        ((4, 4), 8, 1),  # even kernel: the centre (k - 1) // 2 is XLA's SAME identity tap
        ((2, 5), 6, 3),
        ((3, 3), 8, 2),
        ((4, 4), 8, 4),
        ((3, 3), 8, 8),  # depthwise
        ((3, 2, 3), 4, 2),
    ],
)
def test_dirac_conv_is_identity(spatial, channels, groups):
    w = Dirac(groups=groups)(KEY, (*spatial, channels // groups, channels), jnp.float32)
    x = jax.random.normal(jax.random.key(1), (2, *([7] * len(spatial)), channels), jnp.float32)
    y = jax.lax.conv_general_dilated(
        x,
        w,
        (1,) * len(spatial),
        "SAME",
        dimension_numbers=CONV_DIMS[len(spatial)],
        feature_group_count=groups,
        precision=HIGHEST,
    )
    chex.assert_trees_all_close(y, x, atol=1e-6, rtol=0)


def test_dirac_groups_must_divide_out():
    with pytest.raises(ValueError, match=r"`groups`=3.*\(3, 3, 4, 8\)"):
        Dirac(groups=3)(KEY, (3, 3, 4, 8))


@pytest.mark.parametrize("shape", [(3, 3), (1, 3, 3, 3, 4, 4)])
def test_dirac_rank_error(shape):
    with pytest.raises(ValueError, match="`shape`"):
        Dirac()(KEY, shape)


# -- bilinear -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 9))
def test_bilinear_filter(k):
    w = np.asarray(Bilinear()(KEY, (k, 1, 1)))[:, 0, 0]
    np.testing.assert_allclose(w, ref_filter(k), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(w, w[::-1])
    assert w.min() > 0 and w.max() <= 1


def test_bilinear_known_values():
    np.testing.assert_array_equal(Bilinear()(KEY, (3, 1, 1))[:, 0, 0], [0.5, 1.0, 0.5])
    expected = [0.25, 0.75, 0.75, 0.25]
    np.testing.assert_array_equal(Bilinear()(KEY, (4, 1, 1))[:, 0, 0], expected)


@pytest.mark.parametrize("shape", [(4, 4, 3, 5), (3, 4, 1, 2), (3, 4, 5, 2, 2)])
def test_bilinear_outer_product_in_every_slot(shape):
    w = np.asarray(Bilinear()(KEY, shape))
    spatial = ref_filter(shape[0])
    for k in shape[1:-2]:
        spatial = np.multiply.outer(spatial, ref_filter(k))
    expected = np.broadcast_to(spatial[..., None, None], shape).astype(w.dtype)
    np.testing.assert_allclose(w, expected, rtol=2 * np.finfo(w.dtype).eps, atol=0)


def test_bilinear_ignores_key():
    init = Bilinear()
    chex.assert_trees_all_equal(init(KEY, (4, 4, 1, 2)), init(jax.random.key(7), (4, 4, 1, 2)))


@pytest.mark.parametrize("factor, k", [(2, 3), (2, 4), (3, 5), (3, 6)])
def test_bilinear_upsampling_keeps_constant_image(factor, k):
    channels, n = 3, 6
    w = Bilinear()(KEY, (k, k, 1, channels), jnp.float32)
    x = jnp.ones((1, n, n, channels), jnp.float32)
    # A transposed convolution: dilate the input by `factor`, pad fully, depthwise conv.
    y = jax.lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        [(k - 1, k - 1)] * 2,
        lhs_dilation=(factor, factor),
        dimension_numbers=CONV_DIMS[2],
        feature_group_count=channels,
        precision=HIGHEST,
    )
    interior = y[0, k - 1 : (n - 1) * factor + 1, k - 1 : (n - 1) * factor + 1]
    assert interior.shape[0] > factor
    chex.assert_trees_all_close(interior, jnp.ones_like(interior), atol=1e-6, rtol=0)


def test_bilinear_conv_transpose_single_channel():
    w = Bilinear()(KEY, (4, 4, 1, 1), jnp.float32)
    x = jnp.ones((1, 5, 5, 1), jnp.float32)
    y = jax.lax.conv_transpose(
        x, w, (2, 2), "VALID", dimension_numbers=CONV_DIMS[2], precision=HIGHEST
    )
    assert y.shape == (1, 12, 12, 1)
    chex.assert_trees_all_close(y[0, 3:9, 3:9], jnp.ones((6, 6, 1)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(4, 4), (1, 2, 2, 2, 1, 1)])
def test_bilinear_rank_error(shape):
    with pytest.raises(ValueError, match="`shape`"):
        Bilinear()(KEY, shape)


# -- positive_unitball ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 1), (1, 5), (3, 3, 4, 8), (5, 16, 2)])
def test_positive_unitball_sums_to_one(shape):
    w = PositiveUnitball()(KEY, shape)
    axes = tuple(range(max(len(shape) - 1, 1)))
    chex.assert_trees_all_close(w.sum(axis=axes), jnp.ones(shape[-1:]), atol=1e-5, rtol=0)
    assert bool((w >= 0).all()) and bool((w <= 1).all())


def test_positive_unitball_is_random():
    init = PositiveUnitball()
    a, b = init(KEY, (8, 4)), init(jax.random.key(1), (8, 4))
    assert not bool(jnp.array_equal(a, b))


def test_positive_unitball_errors():
    with pytest.raises(ValueError, match="`shape`"):
        PositiveUnitball()(KEY, ())
    with pytest.raises(TypeError, match="`dtype`"):
        PositiveUnitball()(KEY, (3, 3), jnp.complex64)
    with pytest.raises(TypeError, match="`dtype`"):
        PositiveUnitball(jnp.complex64)(KEY, (3, 3))


@pytest.mark.parametrize("shape", [(8,), (8, 2), (8, 1, 3), (16, 2)], ids=str)
def test_positive_unitball_sharded_one_index_per_shard_is_bitwise(shape):
    # With one index of the summed axes per shard there is no broadcast to divide by, and XLA
    # divides where it otherwise multiplies by the reciprocal: written out, the bits agree.
    mesh = jax.make_mesh((8,), ("x",))
    init = PositiveUnitball()
    want = init(KEY, shape)
    got = init(KEY, shape, out_sharding=NamedSharding(mesh, P("x")))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


# -- sparse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.25, 0.3, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("shape", [(10, 7), (37, 5), (3, 20, 4), (5, 1000)])
def test_sparse_zero_count_per_input_unit(sparsity, shape):
    # PyTorch's rule: each input unit (a row of the (in, out) kernel) has ceil(s * out) zeros.
    w = Sparse(sparsity)(KEY, shape)
    zeros = math.ceil(Fraction(str(sparsity)) * shape[-1])
    np.testing.assert_array_equal((w == 0).sum(axis=-1), zeros)


def test_sparse_counts_decimal_sparsity():
    # 0.3 * 10 is 3.0000000000000004 in floats; the decimal 0.3 of 10 outputs is 3 zeros.
    w = Sparse(0.3)(KEY, (50, 10))
    np.testing.assert_array_equal((w == 0).sum(axis=1), 3)


@pytest.mark.parametrize("nonzeros", [0, 1, 5, 15, 20])
@pytest.mark.parametrize("shape", [(20, 9), (2, 30, 3)])
def test_sparse_nonzeros_per_output_unit(nonzeros, shape):
    # Martens's rule: each output unit (a column) keeps `nonzeros` incoming weights.
    w = Sparse(None, nonzeros=nonzeros)(KEY, shape)
    np.testing.assert_array_equal((w != 0).sum(axis=-2), nonzeros)


@pytest.mark.parametrize(
    ("init", "axis", "count"),
    [(Sparse(0.25, axis=-2), -2, 10), (Sparse(None, nonzeros=4, axis=-1), -1, 20 - 4)],
)
def test_sparse_axis_overrides_the_counted_axis(init, axis, count):
    w = init(KEY, (40, 20))
    np.testing.assert_array_equal((w == 0).sum(axis=axis), count)


def test_sparse_zeros_are_the_lowest_scores_of_each_line():
    # The pattern is a uniformly random subset: every position of a line is zeroed about
    # equally often. 4000 lines of 8, 2 zeros each: each position is zeroed with p = 1/4,
    # count ~ Binomial(4000, 1/4), std 27.4; 5 standard deviations.
    w = Sparse(0.25)(KEY, (4000, 8))
    per_position = np.asarray((w == 0).sum(axis=0))
    assert np.abs(per_position - 1000).max() < 5 * math.sqrt(4000 * 0.25 * 0.75)


def test_sparse_traced_sparsity():
    w = jax.jit(lambda s: Sparse(s)(KEY, (6, 10)))(jnp.float32(0.5))
    np.testing.assert_array_equal((w == 0).sum(axis=1), 5)


def test_sparse_std_of_nonzeros():
    stddev = 0.02
    w = np.asarray(Sparse(0.5, stddev)(KEY, (1000, 200)), np.float64)
    nz = w[w != 0]
    n = nz.size
    assert n == 100_000
    # Standard errors of the sample mean and std of n normal draws: sigma/sqrt(n), sigma/sqrt(2n).
    assert abs(nz.mean()) < 6 * stddev / math.sqrt(n)
    assert abs(nz.std() - stddev) < 6 * stddev / math.sqrt(2 * n)


def test_sparse_values_are_jax_normal_of_the_key():
    # One threefry pass: its XOR half is jax's own draw, so the kept values are exactly
    # jax.random.normal(key) * stddev; the zero pattern comes from the other half.
    # (jitted, as jaxinit always is: jax's eager op-by-op erf_inv differs in the last bit.)
    w = np.asarray(Sparse(0.5, 0.1)(KEY, (64, 48)))
    ref = np.asarray(jax.jit(lambda k: jax.random.normal(k, (64, 48)) * jnp.float32(0.1))(KEY))
    np.testing.assert_array_equal(w[w != 0], ref[w != 0])


def test_sparse_pattern_comes_from_key():
    init = Sparse(0.5)
    mask = lambda key: np.asarray(init(key, (32, 64)) == 0)
    np.testing.assert_array_equal(mask(KEY), mask(jax.random.key(0)))
    assert not np.array_equal(mask(KEY), mask(jax.random.key(1)))
    # Input units get independent patterns.
    m = mask(KEY)
    assert len({m[i].tobytes() for i in range(m.shape[0])}) > 1


def test_sparse_legacy_key():
    w = Sparse(0.5)(jax.random.PRNGKey(3), (4, 16))
    np.testing.assert_array_equal((w == 0).sum(axis=1), 8)


def test_sparse_float64_draws_twice_with_the_same_counts():
    # float64 draws 64 bits per value, so the pattern comes from a second draw.
    with jax.enable_x64(True):
        w = np.asarray(Sparse(0.25, 1.0)(KEY, (40, 12), jnp.float64))
        ref = np.asarray(
            jax.jit(lambda k: jax.random.normal(k, (40, 12), jnp.float64))(jax.random.split(KEY)[0])
        )
    assert w.dtype == np.float64
    np.testing.assert_array_equal((w == 0).sum(axis=1), 3)
    np.testing.assert_array_equal(w[w != 0], ref[w != 0])


def test_sparse_call_errors():
    with pytest.raises(ValueError, match=r"`nonzeros`=11.*shape\[-2\]=10.*\(10, 4\)"):
        Sparse(None, nonzeros=11)(KEY, (10, 4))
    with pytest.raises(ValueError, match=r"`axis` must be -1, -2 or None; got 0"):
        Sparse(0.5, axis=0)
    with pytest.raises(ValueError, match="`shape`"):
        Sparse(0.5)(KEY, (10,))
    with pytest.raises(TypeError, match="`dtype`"):
        Sparse(0.5)(KEY, (10, 4), jnp.complex64)


# -- common ---------------------------------------------------------------------------------

CASES = [
    (Identity(0.3), (2, 5, 7)),
    (Dirac(0.7, 2), (3, 3, 4, 8)),
    (Bilinear(), (5, 5, 2, 3)),
    (PositiveUnitball(), (3, 3, 16, 8)),
    (Sparse(0.4, 0.5), (2, 50, 20)),
    (Sparse(None, 1.0, nonzeros=7), (50, 20)),
]
IDS = [f"{init.name}-{i}" for i, (init, _) in enumerate(CASES)]


@pytest.mark.parametrize("init, shape", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn])
def test_low_precision_is_cast_of_float32(init, shape, dtype):
    low = init(KEY, shape, dtype)
    assert low.dtype == dtype
    chex.assert_trees_all_equal(low, init(KEY, shape, jnp.float32).astype(dtype))
    assert bool(jnp.isfinite(low.astype(jnp.float32)).all())


@pytest.mark.parametrize("init, shape", CASES, ids=IDS)
def test_jit_equals_eager_and_deterministic(init, shape):
    eager = init(KEY, shape, jnp.float32)
    chex.assert_shape(eager, shape)
    assert eager.dtype == jnp.float32
    chex.assert_trees_all_equal(eager, init(KEY, shape, jnp.float32))
    chex.assert_trees_all_equal(eager, jax.jit(lambda k: init(k, shape, jnp.float32))(KEY))


@pytest.mark.parametrize(
    "init, shape",
    [
        (Identity(), (0, 3)),
        (Identity(), (2, 3, 0)),
        (Dirac(), (3, 3, 0, 4)),
        (Dirac(groups=2), (3, 0, 4, 0)),
        (Bilinear(), (0, 3, 1, 1)),
        (PositiveUnitball(), (0,)),
        (PositiveUnitball(), (3, 0)),
        (Sparse(0.5), (0, 4)),
        (Sparse(None, nonzeros=3), (5, 0)),
    ],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_zero_size_shapes(init, shape, dtype):
    w = init(KEY, shape, dtype)
    assert w.shape == shape and w.dtype == dtype


def test_factory_dtype_is_the_default():
    for init in (Identity(1.0, jnp.bfloat16), Bilinear(jnp.float16), Sparse(0.5, 0.1, "f2")):
        assert init(KEY, (3, 3, 2, 2)).dtype == init.dtype


def test_value_semantics():
    assert Sparse(0.5) == Sparse(0.5, 0.01)
    assert hash(Dirac(1.0, 2)) == hash(Dirac(groups=2))
    assert Sparse(0.5) != Sparse(None, nonzeros=5)
    assert repr(Dirac(2.0, 4)) == "dirac(scale=2.0, groups=4, dtype=None)"
    assert repr(Sparse(None, nonzeros=3)) == (
        "sparse(sparsity=None, stddev=0.01, dtype=None, nonzeros=3, axis=None)"
    )
    names = {cls.name for cls in (Identity, Dirac, Bilinear, PositiveUnitball, Sparse)}
    assert names == {"identity", "dirac", "bilinear", "positive_unitball", "sparse"}
    assert isinstance(Identity(), jax.nn.initializers.Initializer)


@pytest.mark.parametrize(
    "build, error, arg",
    [
        (lambda: Identity("big"), TypeError, "scale"),
        (lambda: Identity(float("inf")), ValueError, "scale"),
        (lambda: Dirac(float("nan")), ValueError, "scale"),
        (lambda: Dirac(groups=0), ValueError, "groups"),
        (lambda: Dirac(groups=1.5), TypeError, "groups"),
        (lambda: Sparse(1.5), ValueError, "sparsity"),
        (lambda: Sparse(-0.1), ValueError, "sparsity"),
        (lambda: Sparse(None), ValueError, "sparsity"),
        (lambda: Sparse(0.5, nonzeros=3), ValueError, "nonzeros"),
        (lambda: Sparse(None, nonzeros=-1), ValueError, "nonzeros"),
        (lambda: Sparse(None, nonzeros=2.5), TypeError, "nonzeros"),
        (lambda: Sparse(0.5, -0.01), ValueError, "stddev"),
        (lambda: Sparse(0.5, float("inf")), ValueError, "stddev"),
        (lambda: Bilinear("not-a-dtype"), TypeError, "dtype"),
    ],
)
def test_build_errors_name_the_argument(build, error, arg):
    with pytest.raises(error, match=f"`{arg}`"):
        build()


@pytest.mark.parametrize("init", [Identity(), Sparse(0.5), PositiveUnitball()])
def test_integer_dtype_refused(init):
    with pytest.raises(TypeError, match="`dtype`"):
        init(KEY, (4, 4), jnp.int32)
