"""Every bad input gets a clear error: the argument in backticks, the bad value, the choices.

Build-time errors are raised by the factory call (bad choices, ranges, types); call-time errors
by the initializer call (what depends on the key, shape or dtype).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import jaxinit

KEY = jax.random.key(0)
NAN, INF = math.nan, math.inf

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
NONLINEARITIES = ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
RND_TYPES = ("uniform", "gaussian")
FACTOR_TYPES = ("avg", "in", "out")
VARIANCE_NORMS = ("fan_in", "fan_out", "average")


def check_message(info: pytest.ExceptionInfo, arg: str, *fragments: str) -> None:
    msg = str(info.value)
    named = f"`{arg}`" in msg or f"`{arg}=" in msg  # `arg` or `arg=value`
    assert named, f"the message does not name `{arg}`: {msg}"
    for fragment in fragments:
        assert fragment in msg, f"the message lacks {fragment!r}: {msg}"


# -- build time: choices ------------------------------------------------------------------------

CHOICE_ERRORS = [
    ("mode", lambda v: jaxinit.variance_scaling(1.0, v, "normal"), "fan_inn", MODES),
    ("mode", lambda v: jaxinit.variance_scaling(1.0, v, "normal"), None, MODES),
    (
        "distribution",
        lambda v: jaxinit.variance_scaling(1.0, "fan_in", v),
        "gaussian",
        DISTRIBUTIONS,
    ),
    ("nonlinearity", lambda v: jaxinit.he_normal(nonlinearity=v), "relu6", NONLINEARITIES),
    ("nonlinearity", lambda v: jaxinit.he_uniform(nonlinearity=v), "ReLU", NONLINEARITIES),
    ("nonlinearity", lambda v: jaxinit.calculate_gain(v), "gelu", NONLINEARITIES),
    ("rnd_type", lambda v: jaxinit.mxnet_xavier(v), "normal", RND_TYPES),
    ("factor_type", lambda v: jaxinit.mxnet_xavier("uniform", v), "fan_in", FACTOR_TYPES),
    ("factor_type", lambda v: jaxinit.msra_prelu(v), "average", FACTOR_TYPES),
    ("variance_norm", lambda v: jaxinit.caffe_xavier(v), "avg", VARIANCE_NORMS),
    ("variance_norm", lambda v: jaxinit.caffe_msra(v), "fan_avg", VARIANCE_NORMS),
]


@pytest.mark.parametrize(
    ("arg", "build", "bad", "choices"),
    CHOICE_ERRORS,
    ids=[f"{e[0]}-{e[2]}" for e in CHOICE_ERRORS],
)
def test_bad_choice_lists_the_valid_choices(arg, build, bad, choices):
    with pytest.raises(ValueError) as info:
        build(bad)
    check_message(info, arg, repr(bad), *(repr(c) for c in choices))


# -- build time: numeric parameters --------------------------------------------------------------

RANGE_ERRORS = [
    ("scale", lambda v: jaxinit.variance_scaling(v, "fan_in", "normal"), (-1.0, NAN, INF)),
    ("scale", lambda v: jaxinit.uniform(v), (-0.5, NAN, INF)),
    ("scale", lambda v: jaxinit.orthogonal(v), (-1.0, NAN, INF)),
    ("scale", lambda v: jaxinit.delta_orthogonal(v), (-1.0, INF)),
    ("stddev", lambda v: jaxinit.normal(v), (-0.1, NAN, INF)),
    ("stddev", lambda v: jaxinit.truncated_normal(v), (-0.1, NAN, -INF)),
    ("mean", lambda v: jaxinit.normal(0.1, mean=v), (NAN, INF)),
    ("factor", lambda v: jaxinit.uniform_unit_scaling(v), (-1.0, NAN, INF)),
    ("magnitude", lambda v: jaxinit.mxnet_xavier(magnitude=v), (-1.0, 0.0, NAN, INF)),
    ("slope", lambda v: jaxinit.msra_prelu(slope=v), (NAN, INF)),
    ("std", lambda v: jaxinit.caffe_gaussian(v), (-1.0, NAN)),
    ("minval", lambda v: jaxinit.uniform_range(v, 1.0), (NAN, -INF)),
    (
        "negative_slope",
        lambda v: jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=v),
        (NAN, INF),
    ),
]


@pytest.mark.parametrize(
    ("arg", "build", "bad"),
    [(arg, build, bad) for arg, build, bads in RANGE_ERRORS for bad in bads],
    ids=[f"{arg}={bad}" for arg, _, bads in RANGE_ERRORS for bad in bads],
)
def test_out_of_range_number_names_argument_and_value(arg, build, bad):
    with pytest.raises(ValueError) as info:
        build(bad)
    check_message(info, arg, repr(bad))


@pytest.mark.parametrize("bad", [np.float32(-1.0), jnp.float32(-1.0)], ids=["numpy", "jax"])
def test_negative_array_scalar_scale(bad):
    with pytest.raises(ValueError) as info:
        jaxinit.variance_scaling(bad, "fan_in", "normal")
    check_message(info, "scale", "-1.0")


TYPE_ERRORS = [  # (argument, factory, bad value, how the message shows it)
    ("stddev", lambda v: jaxinit.normal(v), True, "True"),
    ("stddev", lambda v: jaxinit.normal(v), 1 + 2j, "(1+2j)"),
    ("stddev", lambda v: jaxinit.normal(v), [0.1], "0.1"),
    ("stddev", lambda v: jaxinit.normal(v), "0.1", "'0.1'"),
    ("scale", lambda v: jaxinit.variance_scaling(v, "fan_in", "normal"), "1.0", "'1.0'"),
    ("scale", lambda v: jaxinit.variance_scaling(v, "fan_in", "normal"), np.ones(2), "array("),
    (
        "negative_slope",
        lambda v: jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=v),
        True,
        "True",
    ),
    ("post_truncation", lambda v: jaxinit.truncated_normal(0.1, post_truncation=v), 1, "1"),
    ("absolute_bounds", lambda v: jaxinit.truncated_normal(0.1, absolute_bounds=v), "y", "'y'"),
    ("sparse", lambda v: jaxinit.caffe_gaussian(0.1, sparse=v), 1.5, "1.5"),
    ("column_axis", lambda v: jaxinit.orthogonal(column_axis=v), 1.5, "1.5"),
    ("value", lambda v: jaxinit.constant(v), "abc", "'abc'"),
    ("dtype", lambda v: jaxinit.normal(0.1, v), "not_a_dtype", "'not_a_dtype'"),
]


@pytest.mark.parametrize(
    ("arg", "build", "bad", "shown"),
    TYPE_ERRORS,
    ids=[f"{e[0]}={e[3]}" for e in TYPE_ERRORS],
)
def test_wrong_type_names_argument_and_value(arg, build, bad, shown):
    with pytest.raises(TypeError) as info:
        build(bad)
    check_message(info, arg, shown)


def _tn(lo, hi):
    return jaxinit.truncated_normal(0.1, lower=lo, upper=hi)


def _tn_absolute(lo, hi):
    return jaxinit.truncated_normal(1.0, None, lo, hi, absolute_bounds=True)


@pytest.mark.parametrize(
    ("build", "lo_arg", "hi_arg", "lo", "hi"),
    [
        (_tn, "lower", "upper", 2.0, 2.0),
        (_tn, "lower", "upper", 3.0, -1.0),
        (_tn, "lower", "upper", -INF, -INF),
        (_tn_absolute, "lower", "upper", 0.5, -0.5),
        (jaxinit.uniform_range, "minval", "maxval", 1.0, 1.0),
        (jaxinit.uniform_range, "minval", "maxval", 0.3, -0.3),
    ],
)
def test_lower_not_below_upper(build, lo_arg, hi_arg, lo, hi):
    with pytest.raises(ValueError) as info:
        build(lo, hi)
    check_message(info, lo_arg, f"`{hi_arg}`", repr(lo), repr(hi))


def test_post_truncation_absolute_bounds_unreachable_std():
    """With absolute bounds (-0.5, 0.5) no truncated normal has std >= 1/sqrt(12) = 0.2887."""
    with pytest.raises(ValueError) as info:
        jaxinit.truncated_normal(
            1.0, lower=-0.5, upper=0.5, post_truncation=True, absolute_bounds=True
        )
    check_message(info, "stddev", "1.0", "0.288675")


AXES_TYPE_ERRORS = [
    ("in_axis", "0"),
    ("in_axis", 1.5),
    ("out_axis", [0, "a"]),
    ("batch_axis", True),
    ("batch_axis", None),
]


@pytest.mark.parametrize(
    "factory",
    [jaxinit.he_normal, jaxinit.glorot_uniform, jaxinit.mxnet_xavier, jaxinit.caffe_msra],
    ids=lambda f: f.name,
)
@pytest.mark.parametrize(
    ("arg", "bad"), AXES_TYPE_ERRORS, ids=[f"{a}={b!r}" for a, b in AXES_TYPE_ERRORS]
)
def test_axes_of_wrong_type(factory, arg, bad):
    with pytest.raises(TypeError) as info:
        factory(**{arg: bad})
    check_message(info, arg, "int or a sequence of ints")


def test_axes_of_wrong_type_variance_scaling():
    with pytest.raises(TypeError) as info:
        jaxinit.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 1.0))
    check_message(info, "in_axis", "(0, 1.0)")


@pytest.mark.parametrize("factory", [jaxinit.he_normal, jaxinit.he_uniform], ids=lambda f: f.name)
@pytest.mark.parametrize("nonlinearity", [None, "tanh", "relu"])
def test_negative_slope_needs_leaky_relu(factory, nonlinearity):
    with pytest.raises(ValueError) as info:
        factory(nonlinearity=nonlinearity, negative_slope=0.1)
    check_message(info, "negative_slope", "0.1", "leaky_relu", repr(nonlinearity))


def test_calculate_gain_unknown_name():
    with pytest.raises(ValueError) as info:
        jaxinit.calculate_gain("swish")
    check_message(info, "nonlinearity", "'swish'", "'leaky_relu'", "'tanh'")


@pytest.mark.parametrize("bad", [True, False, "0.2", [0.2]])
def test_calculate_gain_bad_param_type(bad):
    with pytest.raises(TypeError) as info:
        jaxinit.calculate_gain("leaky_relu", bad)
    check_message(info, "param")


def test_calculate_gain_param_for_other_nonlinearity():
    with pytest.raises(ValueError) as info:
        jaxinit.calculate_gain("tanh", 0.1)
    check_message(info, "param", "0.1", "leaky_relu", "'tanh'")


# -- call time: dtypes ----------------------------------------------------------------------------

RANDOM = [
    jaxinit.normal(),
    jaxinit.uniform(),
    jaxinit.uniform_range(),
    jaxinit.truncated_normal(),
    jaxinit.variance_scaling(1.0, "fan_in", "normal"),
    jaxinit.he_normal(),
    jaxinit.glorot_uniform(),
    jaxinit.orthogonal(),
    jaxinit.mxnet_xavier(),
    jaxinit.caffe_gaussian(),
    jaxinit.uniform_unit_scaling(),
    jaxinit.sparse(0.5),
    jaxinit.positive_unitball(),
]


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_], ids=lambda d: d.__name__)
@pytest.mark.parametrize("init", RANDOM, ids=lambda i: i.name)
def test_random_initializers_refuse_integer_and_bool_dtypes(init, dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError) as info:
        init(KEY, (4, 4), dtype)
    check_message(info, "dtype", name, "Valid choices", "bfloat16")
    with pytest.raises(TypeError) as info:  # a factory dtype is checked when called
        type(init)(**{**init.params(), "dtype": dtype})(KEY, (4, 4))
    check_message(info, "dtype", name)


@pytest.mark.parametrize(
    "dtype", [jnp.int32, jnp.uint8, jnp.int8, jnp.bool_], ids=lambda d: d.__name__
)
@pytest.mark.parametrize(
    ("init", "value"),
    [(jaxinit.zeros, 0), (jaxinit.ones, 1), (jaxinit.constant(1), 1)],
    ids=["zeros", "ones", "constant"],
)
def test_zeros_ones_constant_allow_integer_and_bool(init, value, dtype):
    w = init(KEY, (2, 3), dtype)
    assert w.dtype == dtype
    np.testing.assert_array_equal(np.asarray(w), np.full((2, 3), value, dtype))


REAL_ONLY = [
    jaxinit.uniform(),
    jaxinit.uniform_range(),
    jaxinit.truncated_normal(),
    jaxinit.truncated_normal(0.1, post_truncation=True),
    jaxinit.uniform_unit_scaling(),
    jaxinit.caffe_gaussian(),
    jaxinit.sparse(0.5),
    jaxinit.positive_unitball(),
]


@pytest.mark.parametrize("init", REAL_ONLY, ids=lambda i: i.name)
def test_real_only_initializers_refuse_complex(init):
    with pytest.raises(TypeError) as info:
        init(KEY, (4, 4), jnp.complex64)
    check_message(info, "dtype", "complex64")


def test_complex_constant_into_real_dtype():
    with pytest.raises(TypeError) as info:
        jaxinit.constant(1j)(KEY, (2, 2))
    check_message(info, "value", "1j", "float32")


# -- call time: shapes and axes -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (5,)])
@pytest.mark.parametrize(
    "init",
    [
        jaxinit.he_normal(),
        jaxinit.variance_scaling(1.0, "fan_avg", "uniform"),
        jaxinit.caffe_msra(),
    ],
    ids=lambda i: i.name,
)
def test_rank_too_small_for_fans(init, shape):
    with pytest.raises(ValueError) as info:
        init(KEY, shape)
    check_message(info, "in_axis", str(shape), "out_axis=()")


@pytest.mark.parametrize(
    ("init", "shape"),
    [
        (jaxinit.orthogonal(), (5,)),
        (jaxinit.orthogonal(), ()),
        (jaxinit.delta_orthogonal(), (5, 4)),
        (jaxinit.delta_orthogonal(), (1, 1, 1, 1, 1, 1)),
        (jaxinit.caffe_gaussian(), ()),
        (jaxinit.sparse(0.5), (5,)),
    ],
    ids=lambda x: x.name if isinstance(x, jaxinit.BaseInitializer) else str(x),
)
def test_rank_too_small_or_large_names_shape(init, shape):
    with pytest.raises(ValueError) as info:
        init(KEY, shape)
    check_message(info, "shape", str(shape))


@pytest.mark.parametrize(
    ("init", "arg", "bad"),
    [
        (jaxinit.he_normal(in_axis=3), "in_axis", "3"),
        (jaxinit.he_normal(out_axis=-3), "out_axis", "-3"),
        (jaxinit.he_normal(batch_axis=(2,)), "batch_axis", "(2,)"),
        (jaxinit.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 7)), "in_axis", "(0, 7)"),
        (jaxinit.orthogonal(column_axis=2), "column_axis", "2"),
        (jaxinit.orthogonal(column_axis=-3), "column_axis", "-3"),
    ],
)
def test_axes_out_of_range_at_call(init, arg, bad):
    with pytest.raises(ValueError) as info:
        init(KEY, (5, 4))
    check_message(info, arg, bad, "rank 2")


def test_repeated_axis():
    with pytest.raises(ValueError) as info:
        jaxinit.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, -2))(KEY, (4, 4))
    check_message(info, "in_axis", "(0, -2)", "twice")


@pytest.mark.parametrize(
    ("shape", "exc"),
    [((5, -4), ValueError), ((-1,), ValueError), ((5, 4.0), TypeError), ("ab", TypeError)],
)
def test_bad_shape(shape, exc):
    with pytest.raises(exc) as info:
        jaxinit.normal()(KEY, shape)
    check_message(info, "shape", repr(shape))


@pytest.mark.parametrize(
    ("value", "shape"),
    [(np.ones(3), (5, 4)), (np.ones((4, 1)), (5, 4)), (np.ones((2, 5, 4)), (5, 4))],
    ids=["trailing", "leading", "too-many-dims"],
)
def test_constant_not_broadcastable(value, shape):
    with pytest.raises(ValueError) as info:
        jaxinit.constant(value)(KEY, shape)
    check_message(info, "value", str(value.shape), str(shape))


def test_caffe_gaussian_sparse_exceeds_outputs():
    with pytest.raises(ValueError) as info:
        jaxinit.caffe_gaussian(0.1, sparse=10)(KEY, (5, 4))
    check_message(info, "sparse", "10", "4")


# -- call time: keys and shardings --------------------------------------------------------------

BAD_KEYS = [
    pytest.param(0, "0", id="int"),
    pytest.param(np.uint32(3), "3", id="numpy-int"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param("key", "'key'", id="str"),
    pytest.param(jax.random.split(KEY, 3), "(3,)", id="batch-of-typed-keys"),
    pytest.param(jnp.stack([jax.random.PRNGKey(0)] * 2), "(2, 2)", id="batch-of-legacy-keys"),
    pytest.param(jnp.zeros(2, jnp.float32), "float32", id="float-array"),
    pytest.param(jnp.zeros((), jnp.uint32), "()", id="scalar-uint32"),
]


@pytest.mark.parametrize(("key", "shown"), BAD_KEYS)
def test_bad_key(key, shown):
    with pytest.raises(TypeError) as info:
        jaxinit.he_normal()(key, (4, 4))
    check_message(info, "key", shown, "jax.random.key", "vmap")


def test_bad_out_sharding():
    with pytest.raises(TypeError) as info:
        jaxinit.normal()(KEY, (4, 4), out_sharding="data")
    check_message(info, "out_sharding", "'data'", "NamedSharding")
    with pytest.raises(ValueError) as info:
        jaxinit.normal()(KEY, (4, 4), out_sharding=PartitionSpec("data"))
    check_message(info, "out_sharding", "jax.set_mesh")


# -- registry -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("he_normla", "'he_normal'"),
        ("kaiming_normall", "'kaiming_normal'"),
        ("glorot_unifrom", "'glorot_uniform'"),
        ("orthogonl", "'orthogonal'"),
    ],
)
def test_get_unknown_name_suggests_close_matches(typo, suggestion):
    with pytest.raises(ValueError) as info:
        jaxinit.get(typo)
    msg = str(info.value)
    assert repr(typo) in msg and "Did you mean" in msg and suggestion in msg, msg


def test_get_unknown_name_without_close_match_points_to_the_names():
    with pytest.raises(ValueError) as info:
        jaxinit.get("xyzzy")
    assert "'xyzzy'" in str(info.value) and "registry_names" in str(info.value)


def test_get_bad_identifier_type():
    with pytest.raises(TypeError) as info:
        jaxinit.get(3)  # type: ignore[arg-type]
    check_message(info, "identifier", "3")


def test_get_malformed_dict():
    with pytest.raises(ValueError, match="'name' and 'config'"):
        jaxinit.get({"name": "normal"})


def test_serialize_non_initializer():
    with pytest.raises(TypeError) as info:
        jaxinit.serialize(jax.nn.initializers.normal())  # type: ignore[arg-type]
    check_message(info, "init")
