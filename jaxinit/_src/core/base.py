"""The initializer value class and its one call path.

Every initializer is a frozen dataclass whose fields are its parameters: immutable, hashable,
``==`` by parameters, with a readable repr. Calling it checks the key, shape and dtype, then runs
the sampling program under ``jax.jit`` (see `sharding.place`): eager and jitted calls compile the
same program and so return the same bits.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import dtypes as dtypes_lib
from jaxinit._src.core import keys, sharding
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, OutSharding, Shape
from jaxinit._src.core.validation import check_fits, is_traced

if TYPE_CHECKING:
    from jaxinit._src.core.units import Unit

_SHAPE_ERROR = "`shape` must be a sequence of non-negative ints; got {shape!r}."
_COMPLEX_ERROR = (
    "`dtype`={dtype} is complex; `{name}` only produces real values. "
    "Valid choices: float64/32/16, bfloat16, float8 types."
)


class FrozenArray:
    """A hashable, comparable, read-only wrapper of a NumPy array parameter (e.g. a kernel)."""

    __slots__ = ("array",)

    def __init__(self, array: Any):
        a = np.array(array)
        a.setflags(write=False)
        self.array = a

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FrozenArray)
            and self.array.dtype == other.array.dtype
            and self.array.shape == other.array.shape
            and bool(np.array_equal(self.array, other.array, equal_nan=True))
        )

    def __hash__(self) -> int:
        return hash((self.array.dtype.str, self.array.shape, self.array.tobytes()))

    def __repr__(self) -> str:
        return f"array({self.array.tolist()!r}, dtype={self.array.dtype.name})"


class _Dynamic:
    """Placeholder for a traced parameter in the static (hashable) half of an initializer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<traced>"


_DYNAMIC = _Dynamic()


def _freeze_value(value: Any) -> Any:
    """Concrete JAX/NumPy values become hashable NumPy scalars or `FrozenArray`s."""
    if is_traced(value) or value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        a = np.asarray(value)
        if a.ndim == 0 and a.dtype.kind == "V" and jnp.issubdtype(a.dtype, jnp.floating):
            # bfloat16/float8 scalars (ml_dtypes) compare badly with Python ints (jit caches
            # compare static configs): hold their value, exactly, as a float32 scalar.
            a = a.astype(np.float32)
        return a[()] if a.ndim == 0 else FrozenArray(a)
    if isinstance(value, list):
        return tuple(value)
    return value


def canonical_shape(shape: Shape) -> tuple[int, ...]:
    """`shape` as a tuple of non-negative Python ints."""
    dims = (shape,) if isinstance(shape, int | np.integer) else shape
    try:
        out = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(_SHAPE_ERROR.format(shape=shape)) from None
    if any(d < 0 for d in out):
        raise ValueError(_SHAPE_ERROR.format(shape=shape))
    return out


def _format(value: Any) -> str:
    if isinstance(value, np.dtype):
        return repr(value.name)
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


class BaseInitializer:
    """Base class of jaxinit initializers (subclasses are frozen dataclasses).

    A subclass is the one holder of its initializer's facts. It sets `name` (its public factory
    name) and the class facts `random`, `complex_ok` and `allow_integer`; declares its
    parameters as dataclass fields (one of them ``dtype``); and implements `sample` -- which
    draws and scales in the compute dtype, laid out as the `Layout` it is given -- plus, as
    they apply, `validate` (build time), `check_shape` (the shapes it accepts, at call time),
    `target_std` (the std of its values for a shape), `unit_scale` (its values as a unit draw
    times a float32 scale) and `for_layer` (itself with a layer's fan axes). `jaxinit.flax.plan`,
    `reinit`, grouped generation, the report and the tests ask these; nothing else keeps a
    table of them.

    Parameters are checked when the initializer is built: each must be finite and within
    float32's range (float64's under x64). When it is called, a parameter that would take the
    values beyond the output dtype's largest finite value (``normal(1e5)`` in float16) is
    refused by name; only 8-bit floats saturate, by design. Parameters may also be traced
    (``jax.jit(lambda s: jaxinit.normal(s)(key, shape))(0.1)``): their checks are then
    skipped, and what is derived from them (a variance, a gain) is computed in float32 on the
    device rather than in double precision on the host and rounded once, so the values may
    differ from a concrete parameter's by a few float32 ulps (about 1e-7 relative).
    """

    name: ClassVar[str] = "initializer"
    #: zeros/ones/constant may produce integer or boolean arrays; random schemes may not.
    allow_integer: ClassVar[bool] = False
    #: Whether the values depend on the key (False for constants and structured fills).
    random: ClassVar[bool] = True
    #: Whether complex dtypes are accepted (E|w|^2 is then the real case's variance); the
    #: others refuse them at call time, with `complex_hint` appended to the message.
    complex_ok: ClassVar[bool] = False
    complex_hint: ClassVar[str] = ""
    #: Whether XLA cannot carry an output sharding back into the computation (orthogonal's
    #: Householder loop), so a traced call under a mesh without `out_sharding` warns.
    needs_out_sharding: ClassVar[bool] = False

    # -- building ---------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "dtype" and value is not None:
                value = dtypes_lib.resolve(value, None, self.name, allow_integer=self.allow_integer)
                self._check_complex(value)
            object.__setattr__(self, f.name, _freeze_value(value))
        self.validate()

    def validate(self) -> None:
        """Build-time checks of the parameters (choices, ranges). Traced values are skipped."""

    # -- facts for a shape ------------------------------------------------------------------
    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Call-time checks that depend on the shape or dtype (rank, axes in range); only
        called for non-empty shapes (see `check_call`)."""

    def check_call(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Raises what a call with this (canonical) shape and output dtype raises: a complex
        dtype for a real-only scheme, then `check_shape` unless the shape is empty (a
        zero-size shape always gives an empty array). `jaxinit.flax.plan` asks this too, so it
        refuses exactly what `reinit` refuses."""
        self._check_complex(dtype)
        if math.prod(shape):
            self.check_shape(shape, dtype)
            if self.concrete:
                for arg, bound in self.magnitudes(shape, dtype):
                    check_fits(arg, getattr(self, arg), bound, dtype)

    def _check_complex(self, dtype: np.dtype) -> None:
        if not self.complex_ok and jnp.issubdtype(dtype, jnp.complexfloating):
            msg = _COMPLEX_ERROR.format(dtype=np.dtype(dtype).name, name=self.name)
            raise TypeError(f"{msg} {self.complex_hint}".strip())

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        """``(parameter, bound)`` pairs, concrete parameters only: the largest magnitude the
        values reach because of that parameter (a normal draw's extreme ``NORMAL_MAX`` times
        its std, a uniform's bound). `check_call` refuses a bound beyond the output dtype's
        largest finite value (float32's for 8-bit floats, which saturate), naming the
        parameter, rather than return +-inf or a saturated array."""
        return []

    @property
    def concrete(self) -> bool:
        """Whether every parameter is concrete (not traced), so host-side facts exist."""
        return not any(is_traced(v) for v in self.params().values())

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """The standard deviation of the values for `shape` (concrete parameters), or None
        where no single number describes it (an array constant, a per-position fill)."""
        return None

    def unit_scale(self, shape: tuple[int, ...]) -> tuple[Unit, np.float32] | None:
        """``(unit, scale)`` when, for `shape` and a float32 output, the values are exactly
        the unit draw times the float32 `scale` (see `units.unit_scale`); else None."""
        return None

    def for_layer(self, axes: Mapping[str, tuple[int, ...]]) -> BaseInitializer:
        """This initializer given a layer's fan axes (``in_axis``, ``out_axis``,
        ``batch_axis``), as `jaxinit.flax.reinit` does; those without fan axes ignore them."""
        return self

    # -- calling ----------------------------------------------------------------------------
    def compile_options(self, compute_dtype: np.dtype) -> Mapping[str, Any] | None:
        """XLA:CPU compiler options for this initializer's own (eager) program, or None.

        Only options that leave every bit of the result as the default compilation gives it
        (a traced call is compiled by the caller's jit, with its options): tests check eager
        against jit bitwise."""
        return None

    def sample(
        self, key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, layout: sharding.Layout
    ) -> Array:
        """Returns the values, in the compute `dtype` (float32/64 or complex64/128), drawn for
        the output `layout` (which axes are sharded: the draw keeps them apart)."""
        raise NotImplementedError

    def __call__(
        self,
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> Array:
        shape = canonical_shape(shape)
        dt = dtypes_lib.resolve(
            dtype, getattr(self, "dtype", None), self.name, allow_integer=self.allow_integer
        )
        key = keys.check_key(key)
        self.check_call(shape, dt)
        placement = sharding.canonicalize(out_sharding, shape)
        if placement is None and self.needs_out_sharding and is_traced(key):
            sharding.warn_unsharded_trace(self.name, shape)
        static, dyn = self._split()
        options = self.compile_options(dtypes_lib.compute_dtype(dt))
        return sharding.place(_generate, static, dyn, key, shape, dt, placement, options)

    # -- value semantics --------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The parameters, by name, as given (after normalization)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_format(v)}" for k, v in self.params().items())
        return f"{self.name}({args})"

    def _split(self) -> tuple[BaseInitializer, dict[str, Any]]:
        dyn = {k: v for k, v in self.params().items() if is_traced(v)}
        if not dyn:
            return self, dyn
        static = copy.copy(self)
        for k in dyn:
            object.__setattr__(static, k, _DYNAMIC)
        return static, dyn

    def _merge(self, dyn: dict[str, Any]) -> BaseInitializer:
        if not dyn:
            return self
        full = copy.copy(self)
        for k, v in dyn.items():
            object.__setattr__(full, k, v)
        return full


def _generate(
    static: BaseInitializer,
    dyn: dict[str, Any],
    key: KeyArray,
    shape: tuple[int, ...],
    dtype: Any,
    layout: sharding.Layout,
) -> Array:
    """The sampling program: draw and scale in the compute dtype, cast once."""
    dtype = np.dtype(dtype)
    if math.prod(shape) == 0:
        return jnp.zeros(shape, dtype)
    init = static._merge(dyn)
    x = init.sample(key, shape, dtypes_lib.compute_dtype(dtype), layout)
    return dtypes_lib.cast_out(x, dtype)
