"""Tests of core/streams.py: jax's threefry bits, rebuilt, and the transforms built on them.

`reinit`'s block loops and the one-pass ``sparse`` / ``caffe_gaussian(sparse=)`` promise the
bits of jax's own samplers; these tests hold them to it, bit for bit (under jit, as jaxinit
always runs: jax's eager op-by-op ``erf_inv`` can differ in the last bit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinit._src.core import streams, units
from jaxinit._src.core.sharding import Layout
from jaxinit._src.flax import generate

SHAPES = [(7,), (3, 5), (64, 33), (2, 3, 4, 5)]
SEEDS = [0, 1, 2**31 + 5]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lanes_xor_half_is_jax_bits(shape):
    lanes = jax.jit(lambda k: streams.threefry_lanes(k, shape, None))
    for seed in SEEDS:
        key = jax.random.key(seed)
        bits, other = lanes(key)
        np.testing.assert_array_equal(bits, jax.random.bits(key, shape))
        assert other.shape == shape and other.dtype == jnp.uint32
        assert not np.array_equal(bits, other)


def test_lanes_other_half_is_uniform_and_uncorrelated():
    # 2**16 draws: the mean of U[0, 1) has std 1/sqrt(12 n) = 0.0011; the correlation of two
    # independent streams has std 1/sqrt(n) = 0.0039. Five standard deviations each.
    n = 2**16
    bits, other = jax.jit(lambda k: streams.threefry_lanes(k, (n,), None))(jax.random.key(0))
    u = np.asarray(other, np.float64) / 2**32
    v = np.asarray(bits, np.float64) / 2**32
    assert abs(u.mean() - 0.5) < 5 / np.sqrt(12 * n)
    assert abs(np.corrcoef(u, v)[0, 1]) < 5 / np.sqrt(n)


@pytest.mark.parametrize("first, size", [(0, 16), (5, 11), (1000, 256)])
def test_bits_at_is_a_slice_of_jax_bits(first, size):
    key = jax.random.key(3)
    data = jax.random.key_data(key)
    got = jax.jit(lambda d, f: streams.bits_at(d, f, size))(data, jnp.uint32(first))
    np.testing.assert_array_equal(got, jax.random.bits(key, (2000,))[first : first + size])


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1])
def test_written_out_threefry_is_jax_threefry_over_a_million_counters(seed):
    """`threefry2x32` (20 rounds as jnp ops, compiled as one elementwise kernel) against jax's
    own primitive, whose CPU lowering is a rolled loop."""
    key = jax.random.key(seed)
    n = 1 << 20
    got = jax.jit(lambda d: streams.bits_at(d, jnp.uint32(0), n))(jax.random.key_data(key))
    np.testing.assert_array_equal(got, jax.random.bits(key, (n,)))


@pytest.mark.parametrize("count", [1, 12, 1000])
def test_split_is_jax_split(count):
    key = jax.random.key(9)
    got = jax.random.key_data(jax.jit(lambda k: streams.split(k, count))(key))
    np.testing.assert_array_equal(got, jax.random.key_data(jax.random.split(key, count)))


@pytest.mark.parametrize("first, size", [(0, 64), (77, 1000)])
def test_normal_at_is_a_slice_of_jax_normal(first, size):
    key = jax.random.key(5)
    got = jax.jit(lambda k: streams.normal_at(k, first, size, np.float32))(key)
    want = jax.jit(lambda k: jax.random.normal(k, (2000,)))(key)[first : first + size]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", units.UNITS)
def test_unit_from_bits_is_its_sample(kind):
    unit = units.Unit(kind)
    shape = (4096,)  # 3 keys x 4096 draws; the transforms are elementwise, shapes don't matter
    sample = jax.jit(lambda k: unit.sample(k, shape, np.float32, Layout(None)))
    from_bits = jax.jit(lambda k: unit.from_bits(jax.random.bits(k, shape), np.float32))
    for seed in SEEDS:
        key = jax.random.key(seed)
        np.testing.assert_array_equal(from_bits(key), sample(key))


def test_normal_from_bits_is_jax_normal():
    key = jax.random.key(11)
    got = jax.jit(lambda k: streams.normal_from_bits(jax.random.bits(k, (300,)), np.float32))(key)
    np.testing.assert_array_equal(got, jax.jit(lambda k: jax.random.normal(k, (300,)))(key))


def test_has_lanes_only_for_float32_threefry():
    key = jax.random.key(0)
    assert streams.has_lanes(key, (4, 4), np.float32)
    assert not streams.has_lanes(key, (4, 4), np.float64)
    assert streams.is_threefry(jax.random.PRNGKey(0))  # raw key data: jax's default impl


@pytest.mark.parametrize(
    "sizes", [[65536] * 4, [9408, 36864, 36864, 2359296, 8192], [1, 3, 100], [70000]]
)
def test_blocks_cover_every_member_exactly(sizes):
    blocks = generate.Blocks.of(sizes)
    b = blocks.size
    assert b & (b - 1) == 0  # a power of two
    counts = [-(-n // b) for n in sizes]
    assert len(blocks.member) == len(blocks.offset) == sum(counts)
    for m, (n, start, count) in enumerate(zip(sizes, blocks.start, counts, strict=True)):
        assert count * b >= n > (count - 1) * b
        run = slice(start, start + count)
        assert (blocks.member[run] == m).all()
        np.testing.assert_array_equal(blocks.offset[run], np.arange(count) * b)


def test_blocks_of_equal_sizes_waste_nothing():
    assert generate.Blocks.of([65536] * 12).size == 65536
    assert generate.Blocks.of([256 * 256] * 3 + [256 * 1024] * 3).size >= 65536
