"""The dtype policy: draw and scale in float32 (float64 when asked for under x64), cast once.

Sampling in a 16- or 8-bit dtype gives bf16 draws with 128 distinct values and float8 truncated
normals that are all NaN (jax 0.10 does both). Every initializer here computes in a *compute
dtype* -- float32, float64, complex64 or complex128 -- and casts the finished array once, so
``init(key, s, bfloat16) == init(key, s, float32).astype(bfloat16)`` bitwise.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.typing import Array

_INT_ERROR = (
    "`dtype`={dtype} is not a floating-point or complex dtype; {name} only produces inexact "
    "values. Valid choices: float64/32/16, bfloat16, float8 types, complex64/128."
)


def default_float_dtype() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def canonical(dtype: Any) -> np.dtype:
    """`dtype` as a NumPy dtype, canonicalized by jax (float64 -> float32 without x64)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be a dtype (e.g. jnp.float32); got {dtype!r}.") from None
    return np.dtype(jax.dtypes.canonicalize_dtype(dt))


def resolve(dtype: Any, default: Any, name: str, *, allow_integer: bool = False) -> np.dtype:
    """The output dtype of a call: the call's `dtype`, else the factory's, else the default."""
    chosen = dtype if dtype is not None else default
    dt = default_float_dtype() if chosen is None else canonical(chosen)
    if not allow_integer and not jnp.issubdtype(dt, jnp.inexact):
        raise TypeError(_INT_ERROR.format(dtype=dt, name=name))
    return dt


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype to draw and scale in: float32/float64 (complex64/complex128 for complex)."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return np.dtype(np.complex128) if dtype == np.complex128 else np.dtype(np.complex64)
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    return dtype


_REAL = {"complex64": np.float32, "complex128": np.float64}


def real_dtype(dtype: np.dtype) -> np.dtype:
    """The real counterpart of a (complex) compute dtype."""
    return np.dtype(_REAL.get(np.dtype(dtype).name, dtype))


def cast_out(x: Array, dtype: np.dtype) -> Array:
    """Casts a compute-dtype result to `dtype` once, saturating to the finite range.

    For float dtypes narrower than the compute dtype, values beyond the largest finite value are
    clipped to it first (float8_e4m3fn has no inf and would otherwise give NaN); for values in
    range this is exactly ``x.astype(dtype)``.
    """
    if x.dtype == dtype:
        return x
    if jnp.issubdtype(dtype, jnp.floating) and jnp.issubdtype(x.dtype, jnp.floating):
        big = float(jnp.finfo(dtype).max)
        x = jnp.clip(x, -big, big)
    return x.astype(dtype)
