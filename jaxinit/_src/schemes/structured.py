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

from jaxinit._src.core import samplers, streams
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.validation import check_dims, check_int, check_real, is_traced, normal_max

_RANK_ERROR = "`shape` must have rank {ranks} for `{name}`; got {shape} (rank {rank}). {hint}"
_SPARSE_CHOICE_ERROR = (
    "`sparse` needs exactly one of `sparsity` (fraction of zeros per unit) and `nonzeros` "
    "(non-zeros per unit); got sparsity={sparsity!r}, nonzeros={nonzeros!r}."
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
        check_dims(self.name, shape)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("scale", abs(float(self.scale)))]

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

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("scale", abs(float(self.scale)))]

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
        # Times the reciprocal, written out: XLA turns a division by a broadcast total into
        # exactly this, but not where a shard holds one index of the summed axes (nothing to
        # broadcast), which would then divide and differ by an ulp from the unsharded call.
        return jnp.where(total > 0, u * (1 / total), jnp.asarray(1 / fan, dtype))


def _lowest(scores: Array, count: Any, axis: int) -> Array:
    """Whether each element is among the `count` lowest of `scores` along `axis`.

    `scores` are distinct uint32 per line (`_scores`), so the count-th lowest is found by
    bisection over the 2**32 values: 32 rounds of compare-and-count, which read `scores` and
    keep one value per line. Unlike a sort (or argsort, which carries the indices too), this
    needs no temporaries beyond `scores` itself, and a line split across devices costs a small
    all-reduce per round instead of gathering the line.
    """
    line = list(scores.shape)
    line[axis] = 1
    count = jnp.asarray(count).astype(jnp.int32)

    def halve(_, bounds):
        lo, hi = bounds  # the count-th lowest is in [lo, hi]
        mid = lo + (hi - lo) // np.uint32(2)
        below = jnp.sum(scores <= mid, axis=axis, keepdims=True, dtype=jnp.int32)
        enough = below >= count
        return jnp.where(enough, lo, mid + np.uint32(1)), jnp.where(enough, mid, hi)

    start = (jnp.zeros(line, jnp.uint32), jnp.full(line, np.iinfo(np.uint32).max, jnp.uint32))
    threshold, _ = lax.fori_loop(0, 32, halve, start)
    return (scores <= threshold) & (count > 0)


def _scores(bits: Array, axis: int) -> Array:
    """Random uint32 scores, distinct along `axis`: the position along `axis` replaces the
    low bits of `bits` (equal high bits, a 2**-(32 - log2 n) event, rank by position)."""
    n = bits.shape[axis]
    low = max(n - 1, 0).bit_length()
    position = lax.broadcasted_iota(jnp.uint32, bits.shape, axis % bits.ndim)
    return ((bits >> np.uint32(low)) << np.uint32(low)) | position if low else bits


@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(BaseInitializer):
    r"""Builds an initializer of sparse Gaussian kernels with a fixed number of zeros per unit.

    For an ``(in, out)`` kernel (leading axes are batch axes) the non-zero values are
    :math:`\mathcal{N}(0, \mathrm{stddev}^2)`, and each line along `axis` gets exactly ``z``
    zeros at positions chosen by the key, of its ``n`` entries:

    .. math::
      z =
      \begin{cases}
        \lceil \mathrm{sparsity} \cdot n \rceil & \text{PyTorch's ``sparse_``: per input unit,
        along the out axis (} n = \mathrm{out}) \\
        n - \mathrm{nonzeros} & \text{Martens (2010): per output unit, along the in axis (}
        n = \mathrm{in})
      \end{cases}

    Pass exactly one of `sparsity` and `nonzeros`. With `sparsity` (default ``axis=-1``), each
    input unit's outgoing weights have ``z`` zeros -- exactly ``torch.nn.init.sparse_`` on the
    ``(out, in)`` weight of the same layer, which zeroes ``ceil(sparsity * out)`` entries of
    every input column. With `nonzeros` (default ``axis=-2``), each output unit keeps
    ``nonzeros`` incoming weights, Martens's "sparse initialization". Pass `axis` to count the
    other way. A concrete `sparsity` counts on its decimal value (``0.3`` of 10 is 3 zeros;
    PyTorch's float product gives 4). Unlike PyTorch, whose ``randperm`` ignores the generator,
    the zero pattern comes from `key`: the entries with the lowest random scores are zeroed.
    For a float32 draw, the scores and the values come from one threefry pass (its two 32-bit
    halves), which keeps a sharded call within 3 output shards of temporary memory per device.

    Args:
      sparsity: fraction of each line set to zero, in [0, 1]; None when `nonzeros` is given.
      stddev: standard deviation of the non-zero values, >= 0.
      dtype: the default output dtype (real).
      nonzeros: number of non-zeros per line, >= 0 and at most its length (keyword only).
      axis: -1 (each input unit's out weights) or -2 (each output unit's in weights); None:
        -1 with `sparsity`, -2 with `nonzeros` (keyword only).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      TypeError: if a parameter has the wrong type; at call time, if the dtype is complex.
      ValueError: if both or neither of `sparsity` and `nonzeros` are given, or one (or
        `axis`) is out of range; at call time, if `shape` has rank < 2 or `nonzeros` exceeds
        the length of the counted axis.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxinit
      >>> w = jaxinit.sparse(0.25)(jax.random.key(0), (64, 100))
      >>> (w == 0).sum(axis=1).tolist() == [25] * 64
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
    axis: int | None = dataclasses.field(default=None, kw_only=True)

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
        if self.axis is not None and (isinstance(self.axis, bool) or self.axis not in (-1, -2)):
            raise ValueError(f"`axis` must be -1, -2 or None; got {self.axis!r}.")

    @property
    def counted_axis(self) -> int:
        """The axis along which zeros are counted: `axis`, else -1 (`sparsity`) or -2."""
        if self.axis is not None:
            return self.axis
        return -1 if self.sparsity is not None else -2

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_rank(self.name, shape, "Use a (..., in, out) kernel shape.", 2)
        n = shape[self.counted_axis]
        if self.nonzeros is not None and self.nonzeros > n:
            raise ValueError(
                f"`nonzeros`={self.nonzeros} must be at most shape[{self.counted_axis}]={n}, "
                f"the length of the counted axis; got shape {shape}."
            )

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("stddev", float(self.stddev) * normal_max(dtype))]

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """`stddev` times the square root of the kept fraction of each line."""
        n = shape[self.counted_axis]
        if not n:
            return float(self.stddev)
        return float(self.stddev) * math.sqrt((n - int(self._zeros_per_line(n))) / n)

    def _zeros_per_line(self, n: int) -> int | Array:
        if self.nonzeros is not None:
            return n - self.nonzeros
        if is_traced(self.sparsity):
            return jnp.ceil(cast(Any, self.sparsity) * n)
        return math.ceil(Fraction(str(self.sparsity)) * n)  # str: the decimal as written

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        if streams.has_lanes(key, shape, dtype):
            bits, other = streams.threefry_lanes(key, shape, layout)
            values = streams.normal_from_bits(bits, dtype)
        else:  # float64, or a key that is not threefry: two draws
            key_values, key_mask = jax.random.split(key)
            values = samplers.normal(key_values, shape, dtype, layout)
            drawn = samplers.draw_shape(shape, layout)
            other = jax.random.bits(key_mask, drawn, jnp.uint32).reshape(shape)
        axis = self.counted_axis
        zero = _lowest(_scores(other, axis), self._zeros_per_line(shape[axis]), axis)
        return jnp.where(zero, jnp.zeros((), dtype), values * jnp.asarray(self.stddev, dtype))
