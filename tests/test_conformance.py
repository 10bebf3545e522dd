"""Conformance: every initializer of the registry x shapes x dtypes x eager/jit/vmap/eval_shape."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, FLOAT8, grid, nonzero_shapes

from jaxinit._src.core import base, sharding, units

KEY = jax.random.key(42)


def _finite(x: jax.Array) -> bool:
    return bool(jnp.isfinite(x.astype(jnp.complex64 if jnp.iscomplexobj(x) else jnp.float32)).all())


@pytest.mark.parametrize(("case", "shape", "dtype"), grid())
def test_shape_dtype_finite_and_cast_of_f32(case, shape, dtype):
    """Right shape and dtype, no NaN/inf, and low precision = the float32 result cast once."""
    w = case.init(KEY, shape, dtype)
    assert w.shape == shape
    assert w.dtype == jnp.dtype(dtype)
    assert _finite(w)
    if np.dtype(dtype).itemsize <= 2 and not jnp.issubdtype(dtype, jnp.complexfloating):
        ref = case.init(KEY, shape, jnp.float32).astype(dtype)
        np.testing.assert_array_equal(np.asarray(w).view(np.uint8), np.asarray(ref).view(np.uint8))


@pytest.mark.parametrize(("case", "shape", "dtype"), grid(dtypes=False))
def test_eager_jit_and_inside_larger_jit_are_bitwise_equal(case, shape, dtype):
    eager = case.init(KEY, shape, dtype)
    jitted = jax.jit(case.init, static_argnums=(1, 2))(KEY, shape, dtype)

    @jax.jit
    def larger(key):
        k1, k2 = jax.random.split(key)
        other = jax.random.normal(k2, (3,))
        return {"w": case.init(key, shape, dtype), "other": other * 2.0, "k1": k1}

    inside = larger(KEY)["w"]
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(inside))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_vmap_over_keys_equals_separate_calls(case):
    shape = nonzero_shapes(case)[0]
    keys = jax.random.split(KEY, 3)
    batched = jax.vmap(lambda k: case.init(k, shape))(keys)
    assert batched.shape == (3, *shape)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(batched[i]), np.asarray(case.init(keys[i], shape)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_unit_scale_reproduces_the_initializer_bitwise(case):
    """Where `units.unit_scale` splits an initializer into a unit draw and a float32 scale
    (what reinit's grouped loops run, with the scale traced), the product is its values."""
    for shape in nonzero_shapes(case):
        for dtype in (jnp.float32, jnp.bfloat16):
            split = units.unit_scale(case.init, shape, dtype)
            if split is None:
                continue
            unit, scale = split
            want = case.init(KEY, shape, dtype)
            traced = jax.jit(lambda s, u=unit, sh=shape, dt=dtype: units.Scaled(u, s)(KEY, sh, dt))
            np.testing.assert_array_equal(np.asarray(traced(scale)), np.asarray(want))
            eager = units.Scaled(unit, scale)(KEY, shape, dtype)
            np.testing.assert_array_equal(np.asarray(eager), np.asarray(want))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_random_flag_says_whether_the_key_matters(case):
    """`init.random` is what reinit trusts to group draws: two keys differ iff it is True."""
    shape = max(nonzero_shapes(case), key=math.prod)
    k1, k2 = jax.random.split(KEY)
    differ = not np.array_equal(np.asarray(case.init(k1, shape)), np.asarray(case.init(k2, shape)))
    assert differ == type(case.init).random


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_eval_shape_computes_nothing_and_matches(case):
    for shape in case.shapes:
        out = jax.eval_shape(lambda k, s=shape: case.init(k, s, jnp.bfloat16), KEY)
        assert out.shape == shape and out.dtype == jnp.bfloat16


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_determinism_and_key_dependence(case):
    shape = nonzero_shapes(case)[0]
    a, b = case.init(KEY, shape), case.init(KEY, shape)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = case.init(jax.random.key(7), shape)
    assert bool((a != other).any()) == case.random


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_legacy_uint32_key_gives_the_typed_key_bits(case):
    shape = nonzero_shapes(case)[0]
    typed = case.init(jax.random.key(3), shape)
    legacy = case.init(jax.random.PRNGKey(3), shape)
    np.testing.assert_array_equal(np.asarray(typed), np.asarray(legacy))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_repeated_eager_calls_do_not_retrace(case):
    shape = nonzero_shapes(case)[0]
    fn = sharding._jitted(base._generate, None, "plain")
    case.init(KEY, shape)
    before = fn._cache_size()
    for i in range(3):
        case.init(jax.random.key(i), shape)
    assert fn._cache_size() == before


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_zero_size_shapes_give_empty_arrays(case):
    for shape in [s for s in case.shapes if 0 in s]:
        w = case.init(KEY, shape, jnp.bfloat16)
        assert w.shape == shape and w.dtype == jnp.bfloat16 and w.size == 0


@pytest.mark.parametrize("case", [c for c in CASES if not c.random], ids=lambda c: c.id)
def test_float64_under_x64(case):
    shape = nonzero_shapes(case)[0]
    with jax.enable_x64(True):
        w = case.init(KEY, shape)
        assert w.dtype == jnp.float64


@pytest.mark.parametrize("case", [c for c in CASES if c.random], ids=lambda c: c.id)
def test_float64_under_x64_draws_in_float64(case):
    shape = nonzero_shapes(case)[0]
    with jax.enable_x64(True):
        w64 = case.init(KEY, shape)
        w32 = case.init(KEY, shape, jnp.float32)
    assert w64.dtype == jnp.float64 and w32.dtype == jnp.float32
    assert _finite(w64)
    # Drawn in float64, not a float32 draw widened: some values need more than 24 mantissa bits.
    if case.id not in ("sparse_k",):
        wide = np.asarray(w64)
        assert bool((wide != wide.astype(np.float32).astype(np.float64)).any())


@pytest.mark.parametrize("dtype", FLOAT8)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float8_has_no_nan_even_far_out_of_range(case, dtype):
    """Values beyond the float8 range saturate to its largest finite value (no NaN, no inf)."""
    shape = nonzero_shapes(case)[0]
    w = case.init(KEY, shape, dtype)
    assert _finite(w)


def test_saturating_cast_for_huge_values():
    import jaxinit

    # 8-bit floats saturate (they are computed in float32 and cast) ...
    w = jaxinit.normal(1e4)(KEY, (64, 64), jnp.float8_e4m3fn).astype(jnp.float32)
    assert _finite(w) and float(jnp.abs(w).max()) == 448.0
    c = jaxinit.constant(1e6)(KEY, (2,), jnp.float8_e5m2).astype(jnp.float32)
    assert float(c[0]) == float(jnp.finfo(jnp.float8_e5m2).max) == 57344.0
    # ... other dtypes refuse a parameter whose values would overflow them, by name.
    with pytest.raises(ValueError, match=r"`value`.*float16"):
        jaxinit.constant(1e6)(KEY, (2,), jnp.float16)
