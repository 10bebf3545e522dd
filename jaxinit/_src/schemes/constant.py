"""Constant initializers: `zeros`, `ones`, `constant` (a scalar or an array broadcast)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.base import BaseInitializer, FrozenArray
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray
from jaxinit._src.core.validation import check_finite, is_traced


class _Fill(BaseInitializer):
    """An array filled with one value (`fill`), in any dtype (integers and booleans included)."""

    allow_integer: ClassVar[bool] = True
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    fill: ClassVar[int]

    def target_std(self, shape: tuple[int, ...]) -> float:
        return 0.0

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return jnp.full(shape, self.fill, dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class Zeros(_Fill):
    """An initializer of zeros; ``jaxinit.zeros`` is one (as in jax), ``zeros_init()`` builds one.

    .. math:: w_{i} = 0

    Args:
      dtype: the default dtype (any dtype, integers and booleans included).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit
      >>> jaxinit.zeros(jax.random.key(0), (2, 3), jnp.int8)
      Array([[0, 0, 0],
             [0, 0, 0]], dtype=int8)
      >>> jaxinit.zeros_init() == jaxinit.zeros
      True
    """

    name: ClassVar[str] = "zeros"
    fill: ClassVar[int] = 0
    dtype: DTypeLike | None = None


@dataclasses.dataclass(frozen=True, repr=False)
class Ones(_Fill):
    """An initializer of ones; ``jaxinit.ones`` is one (as in jax), ``ones_init()`` builds one.

    .. math:: w_{i} = 1

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit
      >>> jaxinit.ones(jax.random.key(0), (3,), jnp.bfloat16)
      Array([1, 1, 1], dtype=bfloat16)
    """

    dtype: DTypeLike | None = None
    name: ClassVar[str] = "ones"
    fill: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True, repr=False)
class Constant(BaseInitializer):
    r"""Fills arrays with `value`: a scalar, or an array broadcast to the requested shape.

    .. math:: w_{i} = \text{value}_{i} \quad (\text{value broadcast to the shape})

    Args:
      value: a finite number or a rectangular numeric array (e.g. a 3x3 Laplacian kernel;
        bfloat16, float8 and complex included), broadcast to the shape as in jax. NaN and inf
        are refused, so equal values are equal initializers.
      dtype: the default dtype (integers and booleans allowed).

    Raises:
      TypeError: when built, for a non-numeric `value` (None, a string, an object); at call
        time, for a complex `value` with a real dtype.
      ValueError: when built, for a ragged, NaN, infinite or out-of-range `value`; at call
        time, if it does not broadcast to the shape or does not fit the dtype (300 in int8).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit
      >>> jaxinit.constant(-7)(jax.random.key(0), (2, 3))
      Array([[-7., -7., -7.],
             [-7., -7., -7.]], dtype=float32)
      >>> lap = jnp.array([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])
      >>> w = jaxinit.constant(lap[:, :, None, None])(jax.random.key(0), (3, 3, 1, 8))
      >>> w.shape, float(w[..., 5].sum())
      ((3, 3, 1, 8), 0.0)
    """

    name: ClassVar[str] = "constant"
    allow_integer: ClassVar[bool] = True
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    value: Any
    dtype: DTypeLike | None = None

    def _value(self) -> Any:
        return self.value.array if isinstance(self.value, FrozenArray) else self.value

    def validate(self) -> None:
        object.__setattr__(self, "value", _check_value(self.value))

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        v = self._value()
        try:
            ok = np.broadcast_shapes(np.shape(v), shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"`value` of shape {np.shape(v)} does not broadcast to the `shape` {shape}."
            )
        if np.iscomplexobj(v) and not jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(f"`value`={self.value!r} is complex but `dtype` is {dtype}.")
        if jnp.issubdtype(dtype, jnp.integer) and not is_traced(v) and np.size(v):
            info = jnp.iinfo(dtype)
            lo, hi = float(np.min(v)), float(np.max(v))
            if lo < info.min or hi > info.max:
                raise ValueError(
                    f"`value`={self.value!r} is out of the range of `dtype` {dtype} "
                    f"[{info.min}, {info.max}]."
                )

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("value", _largest_part(np.asarray(self._value())))]

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """0 for a scalar; None for an array, whose values vary by position."""
        return 0.0 if np.ndim(self._value()) == 0 else None

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return jnp.broadcast_to(jnp.asarray(self._value(), dtype), shape)


_VALUE_ERROR = (
    "`value` must be a number or a rectangular numeric array (bool, int, float -- bfloat16 and "
    "float8 included -- or complex); got {value!r}."
)


def _largest_part(a: np.ndarray) -> float:
    """The largest magnitude of a real or imaginary part of `a` (nan if one is nan)."""
    if not a.size:
        return 0.0
    parts = a.astype(np.complex128) if np.iscomplexobj(a) else a.astype(np.float64)
    return float(np.max(np.abs(np.concatenate([parts.real.ravel(), parts.imag.ravel()]))))


def _check_value(value: Any) -> Any:
    """`constant`'s `value`, checked and normalized: a hashable scalar, a `FrozenArray`, or a
    traced value (unchecked). Raises a TypeError for a non-numeric value and a ValueError for a
    ragged, non-finite or out-of-range one."""
    if is_traced(value):
        return value
    raw = value.array if isinstance(value, FrozenArray) else value
    if raw is None or isinstance(raw, str | bytes):
        raise TypeError(_VALUE_ERROR.format(value=value))
    try:
        a = np.asarray(raw)
    except (ValueError, TypeError):  # a ragged nested sequence
        raise ValueError(_VALUE_ERROR.format(value=value)) from None
    if a.dtype == object and isinstance(raw, int):
        raise ValueError(f"`value`={value!r} is out of the range of every integer dtype.")
    if a.dtype != np.bool_ and not jnp.issubdtype(a.dtype, jnp.number):
        raise TypeError(_VALUE_ERROR.format(value=value))
    if jnp.issubdtype(a.dtype, jnp.inexact):
        check_finite("value", value, _largest_part(a))
    if a.ndim:
        return FrozenArray(a)
    return raw if isinstance(raw, bool | int | float | complex) else a[()]


zeros = Zeros()
ones = Ones()


def zeros_init() -> Zeros:
    """Builds the zeros initializer (Flax's factory); equal to ``jaxinit.zeros``.

    .. math:: w_{i} = 0

    Examples:
      >>> import jaxinit
      >>> jaxinit.zeros_init()
      zeros(dtype=None)
    """
    return zeros


def ones_init() -> Ones:
    """Builds the ones initializer (Flax's factory); equal to ``jaxinit.ones``.

    .. math:: w_{i} = 1

    Examples:
      >>> import jaxinit
      >>> jaxinit.ones_init() == jaxinit.ones
      True
    """
    return ones
