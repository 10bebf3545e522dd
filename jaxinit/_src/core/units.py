"""Unit draws and scales: how reinit generates differently scaled parameters in one loop.

Many schemes are one of three unit draws times a float32 scale computed from their parameters
and the shape (``normal(0.02)``: N(0, 1) times 0.02; ``he_uniform`` on a (512, 2048) kernel:
U(-1, 1) times sqrt(3 * 2 / 512)). `unit_scale` gives that decomposition when it is exact;
`Scaled` multiplies a unit draw by a scale that may be traced, so ``lax.map`` can run one
compiled body over parameters with different scales (and, unsharded, different shapes of one
size: the draw is row-major, so a reshape gives the same bits). The scale is rounded to float32
the way each scheme rounds it, and the product is the same float32 multiply, so the values are
bitwise those of calling the scheme itself (tests/test_flax.py checks it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import samplers, streams
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.dtypes import compute_dtype
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, KeyArray

#: The unit draws: N(0, 1), U[0, 1), U[-1, 1), N(0, 1) truncated to (-2, 2).
UNITS = ("normal", "uniform", "symmetric_uniform", "truncated_normal")


@dataclasses.dataclass(frozen=True, repr=False)
class Unit(BaseInitializer):
    """One of the unit draws of `UNITS`, in the compute dtype (real float32 only)."""

    name: ClassVar[str] = "unit"
    kind: str = "normal"
    dtype: Any = None

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        if self.kind == "normal":
            return samplers.normal(key, shape, dtype, layout)
        if self.kind == "uniform":
            return samplers.uniform(key, shape, dtype, layout)
        if self.kind == "symmetric_uniform":
            return samplers.uniform(key, shape, dtype, layout, -1)
        return samplers.truncated_normal(key, -2, 2, shape, dtype, layout)

    def from_bits(self, bits: Array, dtype: Any) -> Array:
        """This draw from ``jax.random.bits(key, shape)`` (uint32): bitwise `sample`'s float32
        values for a threefry `key` (tests/test_flax.py checks it for every kind)."""
        if self.kind == "normal":
            return streams.normal_from_bits(bits, dtype)
        if self.kind == "uniform":
            return streams.uniform_from_bits(bits, dtype)
        if self.kind == "symmetric_uniform":
            return streams.uniform_from_bits(bits, dtype, -1.0)
        return streams.truncated_normal_from_bits(bits, -2.0, 2.0, dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class Scaled(BaseInitializer):
    """`unit`'s draw times `scale` (a float32, possibly traced), in the compute dtype."""

    name: ClassVar[str] = "scaled"
    unit: Unit = Unit()
    scale: Any = 1.0
    dtype: Any = None

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return self.unit.sample(key, shape, dtype, layout) * jnp.asarray(self.scale, dtype)


def unit_scale(init: Any, shape: tuple[int, ...], dtype: Any) -> tuple[Unit, np.float32] | None:
    """``(unit, scale)`` with ``init(k, shape, dtype) == Scaled(unit, scale)(k, shape, dtype)``
    bitwise, or None when `init` is not such a product (or the compute dtype is not float32):
    the initializer's own `BaseInitializer.unit_scale` says which product it is."""
    if not isinstance(init, BaseInitializer) or compute_dtype(np.dtype(dtype)) != np.float32:
        return None
    return init.unit_scale(shape)
