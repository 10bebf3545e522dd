"""Two independent 32-bit streams from one threefry pass: a value and a selection per element.

An initializer that draws a value *and* a random choice per element (``sparse``'s zero
pattern, a Bernoulli mask) would call jax's sampler twice. On CPU, jax lowers each threefry
draw to a rolled loop whose carried state is two full-size ``uint32`` arrays, so a second draw
while the first one's result is alive costs two more arrays per device: 5 output shards of
temporaries instead of 3 when the output is sharded.

A threefry2x32 block yields 64 bits per counter; jax's 32-bit ``random_bits`` (partitionable
threefry, jax's default) returns their XOR ``b1 ^ b2``. :func:`threefry_lanes` returns that
XOR -- bit for bit what ``jax.random.bits(key, shape)`` returns, so :func:`normal_from_bits`
turns it into exactly ``jax.random.normal(key, shape)`` -- and ``b1`` as a second stream.
``(b1, b1 ^ b2)`` is a bijection of the block, so the two streams are as independent as the
block's two halves. Counters are the row-major index of the full shape, as in jax, so every
shard computes its own elements.

The block function itself is :func:`threefry2x32`: the 20 rounds written out as ``lax``
integer ops, the form jax lowers to on GPU and TPU. On CPU jax lowers its primitive to a
rolled loop instead; the written-out rounds fuse into one elementwise kernel, which XLA:CPU
compiles in 0.09 s instead of 0.23 s and runs 5-7x faster (2^20 counters: 1.8 vs 13 ms), with
the same bits (tests/test_streams.py).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinit._src.core import samplers
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, KeyArray

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


# Written with `lax` primitives: each ``jnp`` operator is a jitted function of its own, traced
# again on every first call, and the 20 rounds are some 130 of them.
def _rotl(x: Array, d: int) -> Array:
    return lax.bitwise_or(
        lax.shift_left(x, np.uint32(d)), lax.shift_right_logical(x, np.uint32(32 - d))
    )


def threefry2x32(k1: Array, k2: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011) of key ``(k1, k2)`` (scalars) on the
    counter words ``(x0, x1)`` (one shape), all uint32: jax's ``threefry_2x32``, bit for bit."""
    ks = (k1, k2, lax.bitwise_xor(lax.bitwise_xor(k1, k2), _PARITY))
    a, b = lax.add(x0, ks[0]), lax.add(x1, ks[1])
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a = lax.add(a, b)
            b = lax.bitwise_xor(a, _rotl(b, r))
        a = lax.add(a, ks[(i + 1) % 3])
        b = lax.add(lax.add(b, ks[(i + 2) % 3]), np.uint32(i + 1))
    return a, b


def _blocks(key_data: Array, counters: Array) -> tuple[Array, Array]:
    """The threefry blocks of a key's data ``(k1, k2)`` at 32-bit `counters` (high words 0)."""
    return threefry2x32(key_data[0], key_data[1], lax.full_like(counters, 0), counters)


def is_threefry(key: KeyArray) -> bool:
    """Whether `key` is a threefry2x32 key (jax's default)."""
    impl = jax.random.key_impl(key)
    return getattr(impl, "name", impl) == "threefry2x32"


def has_lanes(key: KeyArray, shape: tuple[int, ...], dtype: Any) -> bool:
    """Whether :func:`threefry_lanes` applies: a threefry key under jax's partitionable
    threefry, a float32 compute dtype (float64 draws 64 bits per element), fewer than 2**32
    elements."""
    return (
        bool(jax.config.jax_threefry_partitionable)  # type: ignore[attr-defined]
        and np.dtype(dtype) == np.float32
        and math.prod(shape) < 2**32
        and is_threefry(key)
    )


def _row_major_index(shape: tuple[int, ...]) -> Array:
    """``arange(prod(shape)).reshape(shape)`` as uint32, built from per-axis iotas so the
    partitioner gives each shard its own slice."""
    index = lax.full(shape, np.uint32(0), jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        iota = lax.broadcasted_iota(jnp.uint32, shape, axis)
        index = lax.add(index, lax.mul(iota, np.uint32(stride)) if stride != 1 else iota)
        stride *= shape[axis]
    return index


def threefry_lanes(
    key: KeyArray, shape: tuple[int, ...], layout: Layout | None
) -> tuple[Array, Array]:
    """``(jax.random.bits(key, shape), other)``: both uint32 of `shape`, from one threefry pass.

    Call only where :func:`has_lanes` holds. Drawn at `layout`'s draw shape (unsharded axes
    merged, which leaves the row-major counters unchanged).
    """
    drawn = samplers.draw_shape(shape, layout)
    b1, b2 = _blocks(jax.random.key_data(key), _row_major_index(drawn))
    return lax.reshape(lax.bitwise_xor(b1, b2), shape), lax.reshape(b1, shape)


def bits_at(key_data: Array, first: Array, size: int) -> Array:
    """``jax.random.bits(key, (n,))[first : first + size]`` (any ``n >= first + size``) for a
    threefry key's data ``(k1, k2)``: the counters ``first, first + 1, ...`` alone."""
    return bits_of(key_data, lax.add(first, lax.iota(jnp.uint32, size)))


def bits_of(key_data: Array, counters: Array) -> Array:
    """``jax.random.bits(key, (n,))[counters]`` (uint32 `counters` of any shape, all ``< n``)
    for a threefry key's data ``(k1, k2)``: those elements alone."""
    b1, b2 = _blocks(key_data, counters)
    return lax.bitwise_xor(b1, b2)


def split(key: KeyArray, count: int) -> KeyArray:
    """``jax.random.split(key, count)``, bit for bit; by :func:`threefry2x32` under
    partitionable threefry (key ``i`` is the block at counter ``i``), else jax's own."""
    if not (bool(jax.config.jax_threefry_partitionable) and is_threefry(key)):  # type: ignore[attr-defined]
        return jax.random.split(key, count)
    b1, b2 = _blocks(jax.random.key_data(key), lax.iota(jnp.uint32, count))
    data = lax.concatenate([lax.reshape(b1, (count, 1)), lax.reshape(b2, (count, 1))], 1)
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))


def normal_at(key: KeyArray, first: Array | int, size: int, dtype: Any) -> Array:
    """``jax.random.normal(key, (n,))[first : first + size]`` (float32, any ``n >= first +
    size``), for a key where :func:`has_lanes` holds."""
    first = lax.convert_element_type(first, jnp.uint32)
    return normal_from_bits(bits_at(jax.random.key_data(key), first, size), dtype)


def uniform_from_bits(bits: Array, dtype: Any, minval: Any = 0.0, maxval: Any = 1.0) -> Array:
    """jax's ``uniform`` transform of 32-bit `bits` into float32: the top 23 bits as the
    mantissa of a number in [1, 2), minus one, scaled to [minval, maxval)."""
    dtype = np.dtype(dtype)
    return _uniform_between(bits, dtype, np.asarray(minval, dtype), np.asarray(maxval, dtype))


def normal_from_bits(bits: Array, dtype: Any) -> Array:
    """``jax.random.normal``'s transform of its 32-bit draw: bitwise equal for float32."""
    dtype = np.dtype(dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    u = uniform_from_bits(bits, dtype, lo, np.array(1.0, dtype))
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))


def truncated_normal_from_bits(bits: Array, lower: float, upper: float, dtype: Any) -> Array:
    """jax's ``truncated_normal(key, lower, upper)`` transform of its 32-bit draw (float32):
    a uniform draw between ``erf(lower / sqrt 2)`` and ``erf(upper / sqrt 2)``, mapped back by
    ``sqrt(2) erfinv`` and clipped to the open interval. Only for bounds where jaxinit's
    truncated normal is jax's (``samplers.truncated_normal_method(...) == "erf"``)."""
    dtype = np.dtype(dtype)
    sqrt2 = np.array(np.sqrt(2), dtype)
    lo = lax.convert_element_type(lower, dtype)
    hi = lax.convert_element_type(upper, dtype)
    u = _uniform_between(bits, dtype, lax.erf(lo / sqrt2), lax.erf(hi / sqrt2))
    out = sqrt2 * lax.erf_inv(u)
    inf = np.array(np.inf, dtype)
    return jnp.clip(out, lax.nextafter(lo, inf), lax.nextafter(hi, -inf))


def _uniform_between(bits: Array, dtype: Any, lo: Any, hi: Any) -> Array:
    """`uniform_from_bits` with traced bounds."""
    nmant = jnp.finfo(dtype).nmant
    one = np.array(1.0, dtype).view(np.uint32)
    mantissa = lax.bitwise_or(lax.shift_right_logical(bits, np.uint32(32 - nmant)), one)
    floats = lax.sub(lax.bitcast_convert_type(mantissa, dtype), np.array(1.0, dtype))
    return lax.max(lo, lax.add(lax.mul(floats, lax.sub(hi, lo)), lo))
