"""Structured initializers: identity, dirac, bilinear upsampling, positive unit ball and sparse.

Layouts are JAX's: dense kernels ``(in, out)``, conv kernels HWIO ``(*spatial, in, out)``. Each
initializer computes in the compute dtype it is given; the base class casts once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinit._src.core import samplers
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.validation import check_int, check_real, is_traced

_RANK_ERROR = "`shape` must have rank {ranks} for `{name}`; got {shape} (rank {rank}). {hint}"
_SPARSE_CHOICE_ERROR = (
    "`sparse` needs exactly one of `sparsity` (fraction of zeros per column) and `nonzeros` "
    "(non-zeros per column); got sparsity={sparsity!r}, nonzeros={nonzeros!r}."
)


def _check_rank(
    name: str, shape: tuple[int, ...], hint: str, low: int, high: int | None = None
) -> None:
    rank = len(shape)
    if rank < low or (high is not None and rank > high):
        want = f">= {low}" if high is None else f"{low}..{high}"
        raise ValueError(
            _RANK_ERROR.format(ranks=want, name=name, shape=shape, rank=rank, hint=hint)
        )


def _scaled_delta(
    shape: tuple[int, ...], dtype: np.dtype, scale: RealNumeric, period: int, centred: int
) -> Array:
    """`scale` where ``in == out % period`` (last two axes) and the first `centred` axes sit at
    their centre ``(k - 1) // 2``; zero elsewhere. Built from iotas, so it shards like any
    elementwise computation."""
    ndim = len(shape)
    row = lax.broadcasted_iota(jnp.int32, shape, ndim - 2)
    col = lax.broadcasted_iota(jnp.int32, shape, ndim - 1)
    mask = row == col % period
    for axis in range(centred):
        mask &= lax.broadcasted_iota(jnp.int32, shape, axis) == (shape[axis] - 1) // 2
    return jnp.where(mask, jnp.asarray(scale, dtype), jnp.zeros((), dtype))


@dataclasses.dataclass(frozen=True, repr=False)
class Identity(BaseInitializer):
    r"""Builds an initializer that returns a scaled identity matrix, batched over leading axes.

    .. math::
      W_{\ldots, i, j} = \mathrm{scale} \cdot \delta_{ij},
      \qquad 0 \le i < \mathrm{shape}[-2],\ 0 \le j < \mathrm{shape}[-1]

    Rectangular shapes get ones on the main diagonal (``jnp.eye(n, m)``); any leading axes are
    batch axes (stacked layers, heads) and each slice is the same matrix.

    Args:
      scale: the value on the diagonal; any finite real number (a negative one flips signs).
      dtype: the default output dtype (float or complex).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``; `key` is not used.

    Raises:
      TypeError: if `scale` is not a real scalar.
      ValueError: if `scale` is not finite; at call time, if `shape` has rank < 2.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.identity(2.0)(jax.random.key(0), (4, 3, 5))
      >>> w.shape, w.dtype
      ((4, 3, 5), dtype('float32'))
      >>> bool(jnp.array_equal(w[1], 2.0 * jnp.eye(3, 5)))
      True
    """

    name: ClassVar[str] = "identity"
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    scale: RealNumeric = 1.0
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("scale", self.scale)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use a (..., n, m) matrix shape.", 2)

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        return _scaled_delta(shape, dtype, self.scale, period=shape[-1], centred=0)


@dataclasses.dataclass(frozen=True, repr=False)
class Dirac(BaseInitializer):
    r"""Builds an initializer of identity-preserving (Dirac delta) convolution kernels.

    For an HWIO kernel ``(*spatial, in_per_group, out)`` with ``g = out / groups`` outputs per
    group and centre :math:`c_a = \lfloor (k_a - 1) / 2 \rfloor` on each spatial axis:

    .. math::
      W_{x, i, o} = \mathrm{scale} \cdot [x = c] \cdot [i = o \bmod g]

    so output channel ``o`` of group ``o // g`` copies input ``o mod g`` of that group when that
    input exists. With ``in == out`` (summed over groups), a stride-1 ``'SAME'``
    ``lax.conv_general_dilated`` with ``feature_group_count=groups`` is ``scale`` times the
    identity map.

    The centre ``(k - 1) // 2`` is the identity tap of XLA's ``'SAME'`` padding and the centre of
    ``jax.nn.initializers.delta_orthogonal``. PyTorch's ``dirac_`` uses ``k // 2``, which differs
    for even ``k`` (it is the identity for PyTorch's symmetric padding of odd kernels only).

    Args:
      scale: the value of the delta taps; any finite real number.
      groups: the ``feature_group_count`` of the convolution; must divide ``out``.
      dtype: the default output dtype (float or complex).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``; `key` is not used.

    Raises:
      TypeError: if `scale` is not a real scalar or `groups` not an integer.
      ValueError: if `scale` is not finite or `groups` < 1; at call time, if `shape` does not
        have rank 3, 4 or 5, or ``out`` is not divisible by `groups`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.dirac()(jax.random.key(0), (3, 3, 8, 8))
      >>> x = jax.random.normal(jax.random.key(1), (2, 6, 6, 8))
      >>> y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
      ...                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
      >>> bool(jnp.allclose(y, x)), float(w.sum())
      (True, 8.0)

    References:
      Zagoruyko and Komodakis, `DiracNets: Training Very Deep Neural Networks Without
      Skip-Connections <https://arxiv.org/abs/1706.00388>`_, 2017.
    """

    name: ClassVar[str] = "dirac"
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    scale: RealNumeric = 1.0
    groups: int = 1
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_real("scale", self.scale)
        check_int("groups", self.groups, minimum=1)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use an HWIO kernel (*spatial, in, out).", 3, 5)
        if shape[-1] % self.groups:
            raise ValueError(
                f"`groups`={self.groups} must divide the output channels shape[-1]; "
                f"got shape {shape}."
            )

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        period = shape[-1] // self.groups
        return _scaled_delta(shape, dtype, self.scale, period=period, centred=len(shape) - 2)


def _bilinear_filter(size: int) -> np.ndarray:
    """The 1-D bilinear upsampling filter of length `size` (float64, symmetric)."""
    f = math.ceil(size / 2)
    # x/f - c with Caffe's centre c = (K-1)/(2f) (MXNet's (2f-1-f%2)/(2f) is off for K=3, 7),
    # over one denominator so the integer numerator makes the filter exactly symmetric.
    return 1 - np.abs(2 * np.arange(size) - (size - 1)) / (2 * f)


@dataclasses.dataclass(frozen=True, repr=False)
class Bilinear(BaseInitializer):
    r"""Builds an initializer of bilinear upsampling kernels (Caffe's ``bilinear`` filler).

    For each spatial axis of size :math:`K`, with :math:`f = \lceil K/2 \rceil` and
    :math:`c = (K - 1) / (2f)`:

    .. math::
      w_K(x) = 1 - \left| \frac{x}{f} - c \right|, \qquad
      W_{x_1, \ldots, x_s, i, o} = \prod_{a=1}^{s} w_{K_a}(x_a)

    The same kernel fills every ``(in, out)`` slot: it is meant for a depthwise transposed
    convolution (kernel ``(K, K, 1, C)`` with ``feature_group_count=C``) upsampling by the
    factor ``f`` (use ``K = 2f`` or ``2f - 1``). The filter is symmetric for every ``K``
    (``[0.5, 1, 0.5]`` for 3, ``[0.25, 0.75, 0.75, 0.25]`` for 4); MXNet's ``Bilinear`` is not
    for ``K = 3, 7``. Deterministic: `key` is not used.

    Args:
      dtype: the default output dtype.

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      ValueError: at call time, if `shape` does not have rank 3, 4 or 5 (1-3 spatial axes).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.bilinear()(jax.random.key(0), (4, 4, 1, 3))
      >>> w[:, 1, 0, 0].tolist()
      [0.1875, 0.5625, 0.5625, 0.1875]
      >>> float(w[..., 0, 0].sum())
      4.0

    References:
      Long, Shelhamer and Darrell, `Fully Convolutional Networks for Semantic Segmentation
      <https://arxiv.org/abs/1411.4038>`_, 2015.
    """

    name: ClassVar[str] = "bilinear"
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    dtype: DTypeLike | None = None

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use an HWIO kernel (*spatial, in, out).", 3, 5)

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        # Host float64: the kernel is a small constant, rounded once to the compute dtype.
        spatial = functools.reduce(np.multiply.outer, map(_bilinear_filter, shape[:-2]))
        kernel = jnp.asarray(spatial.astype(dtype))
        return jnp.broadcast_to(kernel[..., None, None], shape)


def _exact_sum(u: Array, axes: tuple[int, ...], dtype: Any) -> Array:
    """Sum of uniform draws over `axes`, independent of summation order (so of sharding).

    jax's uniform values in [0, 1) are multiples of 2^-nmant, so their integer numerators are
    summed exactly (split in two int32 halves) and rounded once: a float sum would change in its
    last bits when the reduction is split across devices.
    """
    nmant = jnp.finfo(dtype).nmant
    k = jnp.round(u * 2.0**nmant).astype(jnp.int64 if dtype == np.float64 else jnp.int32)
    half = nmant // 2
    hi = jnp.sum(k >> half, axis=axes, keepdims=True)
    lo = jnp.sum(k & ((1 << half) - 1), axis=axes, keepdims=True)
    return (hi.astype(dtype) * (2.0**half) + lo.astype(dtype)) * (2.0**-nmant)


@dataclasses.dataclass(frozen=True, repr=False)
class PositiveUnitball(BaseInitializer):
    r"""Builds an initializer of non-negative weights that sum to one per output unit.

    Draws :math:`U \sim \mathcal{U}[0, 1)` and normalizes each output unit's incoming weights
    (all axes but the last) by their sum -- Caffe's ``positive_unitball`` in JAX layout. Each
    column is a point of the probability simplex (not of the L2 unit ball):

    .. math::
      W_{\ldots, o} = \frac{U_{\ldots, o}}{\sum_{\ldots} U_{\ldots, o}}

    A rank-1 shape is a single unit: the whole vector sums to one.

    Args:
      dtype: the default output dtype (real).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      ValueError: at call time, if `shape` has rank 0.
      TypeError: at call time, if the dtype is complex.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.positive_unitball()(jax.random.key(0), (3, 3, 16, 8))
      >>> bool(jnp.allclose(w.sum(axis=(0, 1, 2)), 1.0)), bool((w >= 0).all())
      (True, True)
    """

    name: ClassVar[str] = "positive_unitball"
    dtype: DTypeLike | None = None

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use a (..., out) shape.", 1)
        fan = math.prod(shape[:-1]) if len(shape) > 1 else math.prod(shape)
        if fan >= 2**19:
            raise ValueError(
                f"{self.name} sums at most 2**19 incoming weights exactly; `shape` {shape} has "
                f"{fan}."
            )

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        axes = tuple(range(max(len(shape) - 1, 1)))
        u = samplers.uniform(key, shape, dtype, layout)
        total = _exact_sum(u, axes, dtype)
        # An all-zero draw (possible only for tiny fans) becomes uniform weights, never 0/0.
        fan = math.prod(shape[a] for a in axes)
        return jnp.where(total > 0, u / total, jnp.asarray(1 / fan, dtype))


@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(BaseInitializer):
    r"""Builds an initializer of sparse Gaussian kernels with a fixed number of zeros per column.

    For an ``(in, out)`` kernel (leading axes are batch axes) with ``n = in``, each output
    column gets exactly ``z`` zeros at positions chosen by the key, the rest drawn from a normal:

    .. math::
      W_{io} = m_{io} Z_{io}, \quad Z_{io} \sim \mathcal{N}(0, \mathrm{stddev}^2), \quad
      \sum_i (1 - m_{io}) = z =
      \begin{cases}
        \lceil \mathrm{sparsity} \cdot n \rceil & \text{(PyTorch's ``sparse_``)} \\
        n - \mathrm{nonzeros} & \text{(Martens, 2010)}
      \end{cases}

    Pass exactly one of `sparsity` and `nonzeros`. A concrete `sparsity` counts on its decimal
    value (``0.3`` of 10 rows is 3 zeros; PyTorch's float product gives 4). Unlike PyTorch,
    whose ``randperm`` ignores the generator, the zero pattern comes from `key`: the positions
    with the lowest uniform scores along the ``in`` axis are zeroed.

    Args:
      sparsity: fraction of each column set to zero, in [0, 1]; None when `nonzeros` is given.
      stddev: standard deviation of the non-zero values, >= 0.
      dtype: the default output dtype (real).
      nonzeros: number of non-zeros per column, >= 0 and at most ``in`` (keyword only).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      TypeError: if a parameter has the wrong type; at call time, if the dtype is complex.
      ValueError: if both or neither of `sparsity` and `nonzeros` are given, or one is out of
        range; at call time, if `shape` has rank < 2 or `nonzeros` exceeds ``shape[-2]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.sparse(0.25)(jax.random.key(0), (100, 64))
      >>> (w == 0).sum(axis=0).tolist() == [25] * 64
      True
      >>> w = jaxinit.sparse(None, nonzeros=15)(jax.random.key(0), (4, 100, 64))
      >>> bool(((w != 0).sum(axis=-2) == 15).all())
      True

    References:
      Martens, `Deep learning via Hessian-free optimization
      <https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf>`_, 2010.
    """

    name: ClassVar[str] = "sparse"
    sparsity: RealNumeric | None
    stddev: RealNumeric = 0.01
    dtype: DTypeLike | None = None
    nonzeros: int | None = dataclasses.field(default=None, kw_only=True)

    def validate(self) -> None:
        if (self.sparsity is None) == (self.nonzeros is None):
            raise ValueError(
                _SPARSE_CHOICE_ERROR.format(sparsity=self.sparsity, nonzeros=self.nonzeros)
            )
        if self.sparsity is not None:
            check_real("sparsity", self.sparsity, low=0.0, high=1.0)
        if self.nonzeros is not None:
            check_int("nonzeros", self.nonzeros, minimum=0)
        check_real("stddev", self.stddev, nonnegative=True)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use a (..., in, out) kernel shape.", 2)
        if self.nonzeros is not None and self.nonzeros > shape[-2]:
            raise ValueError(
                f"`nonzeros`={self.nonzeros} must be at most the fan-in shape[-2]; "
                f"got shape {shape}."
            )

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """`stddev` times the square root of the kept fraction of each column."""
        n = shape[-2]
        return float(self.stddev) * math.sqrt((n - int(self._zeros_per_column(n))) / n)

    def _zeros_per_column(self, fan_in: int) -> int | Array:
        if self.nonzeros is not None:
            return fan_in - self.nonzeros
        if is_traced(self.sparsity):
            return jnp.ceil(cast(Any, self.sparsity) * fan_in)
        return math.ceil(Fraction(str(self.sparsity)) * fan_in)  # str: the decimal as written

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        key_values, key_mask = jax.random.split(key)
        values = jax.random.normal(key_values, shape, dtype) * jnp.asarray(self.stddev, dtype)
        scores = jax.random.uniform(key_mask, shape, jnp.float32)
        rank = jnp.argsort(jnp.argsort(scores, axis=-2), axis=-2)
        keep = rank >= jnp.asarray(self._zeros_per_column(shape[-2])).astype(rank.dtype)
        return jnp.where(keep, values, jnp.zeros((), dtype))
