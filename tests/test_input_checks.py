"""Inputs a new user might try: each is answered right or refused with an error naming it.

Overflow (values that would be +-inf or saturate), keys jax would not accept, `constant`'s
values, sharding specs, malformed serialized dicts and out-of-range shapes: every refusal is a
ValueError or TypeError that names the argument and shows the value.
"""

from __future__ import annotations

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit
import jaxinit.flax

KEY = jax.random.key(0)
F32_MAX = float(np.finfo(np.float32).max)


def check_message(info: pytest.ExceptionInfo, arg: str, *fragments: str) -> None:
    msg = str(info.value)
    assert f"`{arg}`" in msg, f"the message does not name `{arg}`: {msg}"
    for fragment in fragments:
        assert fragment in msg, f"the message lacks {fragment!r}: {msg}"


# -- values beyond float32: refused when built ---------------------------------------------------

BUILD_OVERFLOWS = [
    ("scale", lambda: jaxinit.uniform(1e39), "1e+39"),
    ("scale", lambda: jaxinit.identity(1e39), "1e+39"),
    ("scale", lambda: jaxinit.variance_scaling(1e300, "fan_in", "normal"), "1e+300"),
    ("scale", lambda: jaxinit.delta_orthogonal(scale=1e300), "1e+300"),
    ("factor", lambda: jaxinit.uniform_unit_scaling(1e300), "1e+300"),
    ("forget_bias", lambda: jaxinit.lstm_forget_bias(-1e39), "-1e+39"),
    ("negative_slope", lambda: jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=1e300),
     "1e+300"),
    ("slope", lambda: jaxinit.msra_prelu(slope=1e300), "1e+300"),
    ("param", lambda: jaxinit.calculate_gain("leaky_relu", 1e300), "1e+300"),
    ("value", lambda: jaxinit.constant(-1e39), "-1e+39"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arg", "build", "shown"),
    BUILD_OVERFLOWS,
    ids=[f"{i}-{c[0]}" for i, c in enumerate(BUILD_OVERFLOWS)],
)
def test_parameters_beyond_float32_are_refused_when_built(arg, build, shown):
    with pytest.raises(ValueError) as info:
        build()
    check_message(info, arg, shown, "float32")


def test_uniform_range_width_beyond_float32_is_refused_when_built():
    with pytest.raises(ValueError) as info:
        jaxinit.uniform_range(-3e38, 3e38)
    check_message(info, "maxval", "-3e+38", "3e+38", "float32")
    jaxinit.uniform_range(-1e38, 1e38)  # a finite width is fine


def test_slopes_whose_square_overflows_are_refused_under_x64():
    with jax.enable_x64(True):
        with pytest.raises(ValueError) as info:
            jaxinit.calculate_gain("leaky_relu", 1e300)
        check_message(info, "param", "1e+300")
        with pytest.raises(ValueError) as info:
            jaxinit.msra_prelu(slope=-1e200)
        check_message(info, "slope", "-1e+200")


# -- values beyond the output dtype: refused when called -----------------------------------------

CALL_OVERFLOWS = [
    ("stddev", lambda: jaxinit.normal(1e38), (4,), jnp.float32),
    ("stddev", lambda: jaxinit.normal(1e5), (4,), jnp.float16),
    ("mean", lambda: jaxinit.normal(1.0, mean=65500.0), (4,), jnp.float16),
    ("scale", lambda: jaxinit.uniform(1e5), (4,), jnp.float16),
    ("maxval", lambda: jaxinit.uniform_range(0.0, 1e5), (4,), jnp.float16),
    ("scale", lambda: jaxinit.variance_scaling(1e10, "fan_in", "normal"), (1, 2), jnp.float16),
    ("scale", lambda: jaxinit.variance_scaling(1e10, "fan_in", "uniform"), (4, 4), jnp.float16),
    ("magnitude", lambda: jaxinit.mxnet_xavier("gaussian", magnitude=1e10), (1, 1), jnp.float16),
    ("factor", lambda: jaxinit.uniform_unit_scaling(1e6), (4, 4), jnp.float16),
    ("std", lambda: jaxinit.caffe_gaussian(1e38), (4, 4), jnp.float32),
    ("scale", lambda: jaxinit.orthogonal(1e5), (4, 4), jnp.float16),
    ("scale", lambda: jaxinit.delta_orthogonal(1e5), (3, 4, 4), jnp.float16),
    ("scale", lambda: jaxinit.flax.gated_orthogonal(scale=1e5), (4, 8), jnp.float16),
    ("forget_bias", lambda: jaxinit.flax.lstm_forget_bias(1e5), (8,), jnp.float16),
    ("value", lambda: jaxinit.constant(1e6), (2,), jnp.float16),
    ("stddev", lambda: jaxinit.normal(1e38), (4,), jnp.float8_e4m3fn),  # inf in float32
    ("stddev", lambda: jaxinit.sparse(0.5, 3e38), (4, 4), jnp.float32),
    ("scale", lambda: jaxinit.identity(1e5), (3, 3), jnp.float16),
    ("scale", lambda: jaxinit.dirac(1e5), (3, 3, 2, 2), jnp.float16),
    ("stddev", lambda: jaxinit.truncated_normal(3e38), (3,), jnp.float32),
    ("stddev", lambda: jaxinit.truncated_normal(1e5), (3,), jnp.float16),
    (
        "upper",
        lambda: jaxinit.truncated_normal(1.0, lower=0.0, upper=1e5, absolute_bounds=True),
        (3,),
        jnp.float16,
    ),
]
#: Deterministic ids (pytest-xdist needs every worker to collect the same names).
CALL_IDS = [f"{i}-{c[0]}-{jnp.dtype(c[3]).name}" for i, c in enumerate(CALL_OVERFLOWS)]


@pytest.mark.parametrize(("arg", "build", "shape", "dtype"), CALL_OVERFLOWS, ids=CALL_IDS)
def test_values_beyond_the_output_dtype_are_refused_when_called(arg, build, shape, dtype):
    init = build()
    with pytest.raises(ValueError) as info:
        init(KEY, shape, dtype)
    check_message(info, arg, np.dtype(dtype).name)


def test_values_within_the_output_dtype_are_finite():
    # The largest parameters the checks allow give finite values.
    assert bool(jnp.isfinite(jaxinit.normal(F32_MAX / 5.5)(KEY, (256,))).all())
    assert bool(jnp.isfinite(jaxinit.uniform(F32_MAX)(KEY, (256,))).all())
    assert bool(jnp.isfinite(jaxinit.normal(1e4)(KEY, (256,), jnp.float16)).all())
    w = jaxinit.constant(65504.0)(KEY, (2,), jnp.float16)
    assert float(w[0]) == 65504.0


def test_float8_outputs_saturate_within_float32():
    # By design (docs/design.md): float8 has no inf (e4m3fn) or a tiny range, so values beyond
    # it saturate -- as long as the float32 computation itself is finite.
    w = jaxinit.normal(1e4)(KEY, (64, 64), jnp.float8_e4m3fn).astype(jnp.float32)
    assert float(jnp.abs(w).max()) == 448.0
    assert (
        jaxinit.constant(1e6)(KEY, (2,), jnp.float8_e5m2).astype(jnp.float32).tolist()
        == [57344.0] * 2
    )


def test_constant_out_of_integer_range_is_refused_when_called():
    with pytest.raises(ValueError) as info:
        jaxinit.constant(300)(KEY, (2,), jnp.int8)
    check_message(info, "value", "300", "int8", "[-128, 127]")
    with pytest.raises(ValueError) as info:
        jaxinit.constant(np.array([0, -1]))(KEY, (2,), jnp.uint8)
    check_message(info, "value", "uint8")
    assert jaxinit.constant(-128)(KEY, (2,), jnp.int8).tolist() == [-128, -128]


# -- shapes jax indexes in int32 -----------------------------------------------------------------

BIG = 2**31


@pytest.mark.parametrize(
    ("init", "shape"),
    [
        (jaxinit.orthogonal(), (BIG, 2)),
        (jaxinit.delta_orthogonal(), (3, 2, BIG)),
        (jaxinit.flax.gated_orthogonal(), (2, 4 * BIG)),
        (jaxinit.flax.lstm_forget_bias(), (4 * BIG,)),
    ],
    ids=lambda x: getattr(x, "name", str(x)),
)
def test_dimensions_beyond_int32_are_a_value_error(init, shape):
    with pytest.raises(ValueError) as info:
        jax.eval_shape(lambda: init(KEY, shape))
    check_message(info, "shape", "< 2**31", str(shape))


def test_lstm_forget_bias_shape_error_reads_well():
    with pytest.raises(ValueError) as info:
        jaxinit.flax.lstm_forget_bias()(KEY, (7,))
    check_message(info, "shape", "i.e. (..., gates * units); got (7,)")
    with pytest.raises(ValueError) as info:
        jaxinit.flax.gated_orthogonal()(KEY, (4, 7))
    check_message(info, "shape", "i.e. (..., in, gates * units); got (4, 7)")


def test_rank_one_fan_error_starts_with_jax_words():
    # jax's testVarianceScalingError matches this regex.
    jax_words = re.escape(
        "Can't compute input and output sizes of a 1-dimensional weights tensor with default "
        "in_axis. Must be at least 2D or specify in_axis explicitly."
    )
    for init in (jaxinit.he_normal(), jaxinit.variance_scaling(1.0, "fan_avg", "truncated_normal")):
        with pytest.raises(ValueError, match=rf"^{jax_words}") as info:
            init(KEY, (5,))
        check_message(info, "shape", "(5,)", "rank 1", "in_axis=0")


# -- traced slopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [jaxinit.he_normal, jaxinit.he_uniform])
def test_traced_negative_slope(factory):
    def init(slope):
        return factory(nonlinearity="leaky_relu", negative_slope=slope)(KEY, (64, 32))

    traced = jax.jit(init)(0.2)
    # The traced gain is computed on the device in float32 (the concrete one on the host in
    # float64, then rounded): a few float32 roundings apart, each <= 2^-24 relative; rtol 1e-6
    # is ~16 of them.
    np.testing.assert_allclose(traced, init(0.2), rtol=1e-6, atol=0)
    assert float(jax.jit(lambda s: jaxinit.calculate_gain("leaky_relu", s))(0.2)) == (
        pytest.approx(jaxinit.calculate_gain("leaky_relu", 0.2), rel=1e-6)
    )


# -- keys ------------------------------------------------------------------------------------------

BAD_KEYS = [
    jnp.zeros(3, jnp.uint32),
    jnp.zeros(5, jnp.uint32),
    jnp.zeros((1, 2), jnp.uint32),
    jnp.zeros(2, jnp.int32),
    jax.ShapeDtypeStruct((2,), jnp.uint32),
    jax.ShapeDtypeStruct((), jax.random.key(0).dtype),
    jax.random.split(KEY, 2),
]
INITS = [
    jaxinit.normal(),
    jaxinit.identity(),
    jaxinit.zeros,
    jaxinit.ones,
    jaxinit.constant(2.0),
    jaxinit.orthogonal(),
]


@pytest.mark.parametrize("init", INITS, ids=lambda i: i.name)
@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: f"{k.dtype}{list(k.shape)}")
def test_keys_jax_would_refuse_are_refused_naming_key(init, key):
    with pytest.raises(TypeError) as info:
        init(key, (2, 3))
    check_message(info, "key", "uint32[2]")


@pytest.mark.parametrize(
    "key",
    [
        jax.random.key(1),
        jax.random.PRNGKey(1),
        np.asarray(jax.random.PRNGKey(1)),
        jax.random.key(1, impl="threefry2x32"),
    ],
    ids=["typed", "legacy", "numpy", "threefry"],
)
def test_keys_jax_accepts_are_accepted(key):
    w = jaxinit.normal(1.0)(key, (4,))
    assert bool((w == jax.jit(jaxinit.normal(1.0), static_argnums=1)(key, (4,))).all())
    assert jaxinit.zeros(key, (2,)).tolist() == [0.0, 0.0]


def test_typed_keys_of_other_implementations_are_accepted():
    key = jax.random.key(1, impl="rbg")  # (warns: not shard-invariant)
    with pytest.warns(UserWarning, match="rbg"):
        assert jaxinit.normal(1.0)(key, (4,)).shape == (4,)
    # Raw rbg key data (uint32[4]) is not a key of the default implementation.
    with pytest.raises(TypeError) as info:
        jaxinit.normal(1.0)(jax.random.key_data(key), (4,))
    check_message(info, "key", "shape (4,)")


# -- constant --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [(None, TypeError), (object(), TypeError), ("1", TypeError), ([[1.0, 2.0], [3.0]], ValueError),
     (math.nan, ValueError), (-math.inf, ValueError), ([1.0, math.nan], ValueError),
     (np.array([1, 2], dtype=object), TypeError), (10**30, ValueError)],
    ids=["None", "object", "str", "ragged", "nan", "inf", "nan-in-array", "object-array",
         "huge-int"],
)  # fmt: skip
def test_constant_refuses_bad_values_when_built(value, error):
    with pytest.raises(error) as info:
        jaxinit.constant(value)
    check_message(info, "value")


def test_constant_array_values_broadcast_like_jax():
    value = [[1.0, 2.0], [3.0, 4.0]]
    init = jaxinit.constant(value)
    w = init(KEY, (3, 2, 2))
    expected = jax.nn.initializers.constant(jnp.asarray(value))(KEY, (3, 2, 2))
    assert bool((w == expected).all())
    assert init == jaxinit.constant(np.asarray(value)) and hash(init) == hash(
        jaxinit.constant(np.asarray(value))
    )
    assert jax.jit(init, static_argnums=1)(KEY, (2, 2)).tolist() == value
    with pytest.raises(ValueError) as info:
        init(KEY, (2, 3))
    check_message(info, "value", "(2, 2)", "(2, 3)")


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float8_e4m3fn, jnp.float16])
def test_constant_accepts_narrow_float_arrays(dtype):
    value = jnp.asarray([1.5, -2.0], dtype)
    init = jaxinit.constant(value)
    assert init(KEY, (3, 2)).tolist() == [[1.5, -2.0]] * 3
    assert jaxinit.get(json.loads(json.dumps(jaxinit.serialize(init)))) == init


@pytest.mark.parametrize(
    "value", [1 + 2j, np.complex64(1 - 2j), np.array([1j, 2.0 + 0.5j])], ids=["py", "np", "array"]
)
def test_complex_constant_round_trips(value):
    init = jaxinit.constant(value)
    blob = json.loads(json.dumps(jaxinit.serialize(init)))
    back = jaxinit.get(blob)
    assert back == init and hash(back) == hash(init)
    assert bool((back(KEY, (2,), jnp.complex64) == init(KEY, (2,), jnp.complex64)).all())


def test_equal_constants_are_equal_and_nan_is_refused():
    assert jaxinit.constant(0.5) == jaxinit.constant(0.5)
    assert hash(jaxinit.constant(np.float32(0.5))) == hash(jaxinit.constant(np.float32(0.5)))
    with pytest.raises(ValueError):
        jaxinit.constant(np.float32("nan"))


# -- parameters are normalized ---------------------------------------------------------------------


def test_narrow_float_scalar_parameters_do_not_upset_jit_caches():
    a = jaxinit.normal(jnp.bfloat16(0.5))
    assert a == jaxinit.normal(0.5) and hash(a) == hash(jaxinit.normal(0.5))
    a(KEY, (2,))
    w = jaxinit.normal(2**64)(KEY, (2,))  # the cache compares it with the bfloat16 config
    assert bool(jnp.isfinite(w).all())


@pytest.mark.parametrize(
    "build",
    [
        lambda: jaxinit.normal(dtype=jnp.int32),
        lambda: jaxinit.he_normal(dtype="int8"),
        lambda: jaxinit.orthogonal(dtype=jnp.bool_),
        lambda: jaxinit.uniform(dtype=jnp.complex64),
        lambda: jaxinit.normal(dtype="nope"),
    ],
    ids=["normal-int32", "he-int8", "orthogonal-bool", "uniform-complex", "unknown"],
)
def test_dtypes_an_initializer_cannot_produce_are_refused_when_built(build):
    with pytest.raises(TypeError) as info:
        build()
    check_message(info, "dtype")


def test_integer_dtypes_still_build_for_constants():
    assert jaxinit.constant(3, dtype=jnp.int8)(KEY, (2,)).dtype == jnp.int8
    assert jaxinit.zeros_init().__class__(dtype=jnp.int32)(KEY, (1,)).dtype == jnp.int32


# -- out_sharding specs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [(P("x", "x"), "more than once"), (P(("x", "y"), "y"), "more than once"),
     (P("z"), "not an axis of the mesh")],
    ids=["repeated", "repeated-in-tuple", "unknown"],
)  # fmt: skip
def test_bad_partition_specs_are_a_value_error(spec, fragment):
    mesh = jax.make_mesh((2, 4), ("x", "y"))
    with jax.set_mesh(mesh), pytest.raises(ValueError) as info:
        jaxinit.normal()(KEY, (4, 8), out_sharding=spec)
    check_message(info, "out_sharding", fragment, str(spec))


# -- jaxinit.get with malformed dicts --------------------------------------------------------------

MALFORMED = [
    ({"name": 123, "config": {}}, TypeError, "name", "123"),
    ({"name": "normal", "config": {"stddev": {"__scalar__": 1}}}, ValueError, "stddev", "dtype"),
    (
        {"name": "normal", "config": {"stddev": {"__scalar__": 1, "dtype": "nope"}}},
        ValueError, "stddev", "'nope'",
    ),
    (
        {"name": "constant", "config": {"value": {"__array__": [[1, 2], [3]], "dtype": "float32"}}},
        ValueError, "value", "[[1, 2], [3]]",
    ),
    ({"name": "normal", "config": {"stddev": {"foo": 1}}}, ValueError, "stddev", "'foo'"),
    (
        {"name": "normal", "config": {"stddev": {"__scalar__": "x", "dtype": "float32"}}},
        ValueError, "stddev", "'x'",
    ),
    ({"name": "normal", "config": {"dtype": "nope"}}, TypeError, "dtype", "'nope'"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "error", "arg", "shown"), MALFORMED, ids=lambda x: str(x)[:30])
def test_get_refuses_malformed_dicts_naming_the_field(spec, error, arg, shown):
    with pytest.raises(error) as info:
        jaxinit.get(spec)
    msg = str(info.value)
    assert f"`{arg}`" in msg or f"'{arg}'" in msg, msg
    assert shown in msg, msg


# -- empty sharded results ---------------------------------------------------------------------


@pytest.mark.parametrize("init", [jaxinit.zeros, jaxinit.normal(), jaxinit.orthogonal()])
def test_an_empty_sharded_result_has_empty_shards_of_the_right_shape(init):
    # jax's jit(out_shardings=...) gives a zero-size output shards of the global shape, which
    # np.asarray then cannot assemble; jaxinit places an empty result from the host instead.
    mesh = jax.make_mesh((2, 4), ("a", "b"))
    sharding = NamedSharding(mesh, P(None, "a"))
    y = init(KEY, (0, 2), out_sharding=sharding)
    assert y.shape == (0, 2) and y.sharding == sharding
    assert {s.data.shape for s in y.addressable_shards} == {(0, 1)}
    assert np.asarray(y).shape == (0, 2)
