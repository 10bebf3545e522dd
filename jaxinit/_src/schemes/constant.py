"""Constant initializers: `zeros`, `ones`, `constant` (a scalar or an array broadcast)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.base import BaseInitializer, FrozenArray
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray


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
      value: a scalar or an array (e.g. a 3x3 Laplacian kernel), broadcastable to the shape.
      dtype: the default dtype (integers and booleans allowed).

    Raises:
      ValueError: at call time, if `value` does not broadcast to the shape.
      TypeError: at call time, for a complex `value` with a real dtype.

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
        v = self._value()
        if isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype.kind not in "biufc"):
            raise TypeError(f"`value` must be a number or a numeric array; got {self.value!r}.")

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        v = self._value()
        try:
            np.broadcast_shapes(np.shape(v), shape)
            ok = np.broadcast_shapes(np.shape(v), shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"`value` of shape {np.shape(v)} does not broadcast to the `shape` {shape}."
            )
        if np.iscomplexobj(v) and not jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(f"`value`={self.value!r} is complex but `dtype` is {dtype}.")

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """0 for a scalar; None for an array, whose values vary by position."""
        return 0.0 if np.ndim(self._value()) == 0 else None

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return jnp.broadcast_to(jnp.asarray(self._value(), dtype), shape)


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
