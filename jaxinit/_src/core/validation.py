"""One place for argument checks, so every error names the argument, the value and the choices."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from jax.core import Tracer


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


def check_real(
    arg: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Checks a concrete real scalar parameter; traced values pass through unchecked."""
    if is_traced(value):
        return value
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0 or np.iscomplexobj(value):
        raise TypeError(f"`{arg}` must be a real scalar; got {value!r}.")
    x = _as_float(arg, value)
    if not math.isfinite(x):
        raise ValueError(f"`{arg}` must be finite; got {value!r}.")
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
