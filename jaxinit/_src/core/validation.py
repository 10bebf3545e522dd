"""One place for argument checks, so every error names the argument, the value and the choices."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

#: The largest |z| of a normal draw in float32 and float64 (jax's inverse-CDF sampler maps the
#: extreme uniforms 1 - 2**-24 and 1 - 2**-53 to about 5.42 and 8.29), rounded up.
NORMAL_MAX = {"float32": 5.5, "float64": 8.5}


def is_traced(x: Any) -> bool:
    """True for JAX tracers (values known only inside `jit`/`vmap`/`grad`)."""
    return isinstance(x, Tracer)


def check_choice(arg: str, value: Any, choices: Iterable[str]) -> str:
    """Returns `value` if it is one of `choices`, else raises a `ValueError` listing them."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{arg}` must be one of {valid}; got {value!r}.")
    return value


def check_bool(arg: str, value: Any) -> bool:
    """Returns `value` if it is True or False (not merely truthy), else raises a TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"`{arg}` must be True or False; got {value!r}.")
    return value


def _as_float(arg: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{arg}` must be a real number; got {value!r}.") from None


def compute_limit() -> tuple[float, str]:
    """The largest finite value of the widest real dtype jaxinit computes in, and its name:
    float32, or float64 when ``jax_enable_x64`` is on."""
    name = "float64" if jax.config.jax_enable_x64 else "float32"  # type: ignore[attr-defined]
    return float(np.finfo(name).max), name


def check_finite(arg: str, value: Any, x: float) -> None:
    """Raises unless `x` (the float value of `value`) is finite and representable in the compute
    dtype: a parameter beyond float32's range would make every value it scales +-inf."""
    if not math.isfinite(x):
        raise ValueError(f"`{arg}` must be finite; got {value!r}.")
    limit, name = compute_limit()
    if abs(x) > limit:
        raise ValueError(
            f"`{arg}`={value!r} overflows {name}, the dtype jaxinit computes in (largest finite "
            f"value {limit:.7g})."
        )


def normal_max(dtype: Any) -> float:
    """The largest |z| of a standard normal draw made for an output of `dtype`."""
    wide = np.dtype(dtype) in (np.dtype(np.float64), np.dtype(np.complex128))
    return NORMAL_MAX["float64" if wide else "float32"]


#: The largest dimension index arithmetic in int32 (jax's default integer) can address.
MAX_DIM = 2**31 - 1


def check_dims(name: str, shape: tuple[int, ...]) -> None:
    """Raises unless every dimension of `shape` fits int32, for initializers that index their
    output (iotas, Householder reflections) in jax's default integer dtype."""
    if any(d > MAX_DIM for d in shape):
        raise ValueError(
            f"{name} needs every dimension of `shape` to be < 2**31 (it indexes it in int32); "
            f"got {shape}."
        )


def check_fits(arg: str, value: Any, bound: float, dtype: Any) -> None:
    """Call-time check: raises unless `bound`, the largest magnitude the values (or an
    intermediate) reach because of parameter `arg`=`value`, is finite in the output `dtype`.

    8-bit float outputs are checked against float32, the dtype they are computed in: beyond
    their own tiny range they saturate by design (`dtypes.cast_out`), so float8_e4m3fn, which
    has no inf, never gets NaN.
    """
    dt = np.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.inexact):
        return
    checked = np.dtype(np.float32) if dt.itemsize == 1 else dt
    limit = float(jnp.finfo(checked).max)  # a complex dtype's: its real part's
    if not bound <= limit:
        where = f"{dt.name}" if checked == dt else f"float32, which {dt.name} is computed in"
        raise ValueError(
            f"`{arg}`={value!r} gives magnitudes up to {bound:.4g} for this shape, beyond the "
            f"largest finite value of {where} ({limit:.4g}): use a wider `dtype` or a smaller "
            f"`{arg}`."
        )


def check_real(
    arg: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Checks a concrete real scalar parameter; traced values pass through unchecked.

    The value must be finite and within the compute dtype's range (float32 unless x64).
    """
    if is_traced(value):
        return value
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0 or np.iscomplexobj(value):
        raise TypeError(f"`{arg}` must be a real scalar; got {value!r}.")
    x = _as_float(arg, value)
    check_finite(arg, value, x)
    if positive and not x > 0:
        raise ValueError(f"`{arg}` must be > 0; got {value!r}.")
    if nonnegative and not x >= 0:
        raise ValueError(f"`{arg}` must be >= 0; got {value!r}.")
    if low is not None and not x >= low:
        raise ValueError(f"`{arg}` must be >= {low}; got {value!r}.")
    if high is not None and not x <= high:
        raise ValueError(f"`{arg}` must be <= {high}; got {value!r}.")
    return value


def check_int(arg: str, value: Any, *, minimum: int | None = None) -> int:
    """Checks a Python integer parameter (e.g. `groups`, `column_axis`)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{arg}` must be an integer; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{arg}` must be >= {minimum}; got {value!r}.")
    return int(value)


def check_less(arg_lo: str, lo: Any, arg_hi: str, hi: Any) -> None:
    """Raises unless `lo < hi` (skipped for traced values)."""
    if is_traced(lo) or is_traced(hi):
        return
    if not float(lo) < float(hi):
        raise ValueError(f"`{arg_lo}` must be < `{arg_hi}`; got {arg_lo}={lo!r}, {arg_hi}={hi!r}.")


def normalize_axes(arg: str, axes: Any, ndim: int) -> tuple[int, ...]:
    """Turns an int or a sequence of ints into non-negative axes of a rank-`ndim` shape."""
    seq = (axes,) if isinstance(axes, int | np.integer) else axes
    try:
        seq = tuple(seq)
    except TypeError:
        raise TypeError(f"`{arg}` must be an int or a sequence of ints; got {axes!r}.") from None
    out = []
    for a in seq:
        if isinstance(a, bool) or not isinstance(a, int | np.integer):
            raise TypeError(f"`{arg}` must be an int or a sequence of ints; got {axes!r}.")
        if not -ndim <= a < ndim:
            raise ValueError(
                f"`{arg}`={axes!r} is out of range for a shape of rank {ndim} "
                f"(valid axes: {-ndim}..{ndim - 1})."
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"`{arg}`={axes!r} names the same axis twice.")
    return tuple(out)


def freeze_axes(arg: str, axes: Any) -> int | tuple[int, ...]:
    """Build-time check of an axis argument: an int stays an int, a sequence becomes a tuple."""
    if isinstance(axes, bool):
        raise TypeError(f"`{arg}` must be an int or a sequence of ints; got {axes!r}.")
    if isinstance(axes, int | np.integer):
        return int(axes)
    try:
        seq = tuple(axes)
    except TypeError:
        raise TypeError(f"`{arg}` must be an int or a sequence of ints; got {axes!r}.") from None
    if any(isinstance(a, bool) or not isinstance(a, int | np.integer) for a in seq):
        raise TypeError(f"`{arg}` must be an int or a sequence of ints; got {axes!r}.")
    return tuple(int(a) for a in seq)
