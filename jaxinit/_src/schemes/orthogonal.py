"""Orthogonal and delta-orthogonal initializers: Haar-distributed (semi-)orthogonal matrices.

Built from Householder reflections, not QR (docs/orthogonal.md), in float32/64 or complex64/128.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import sharding, streams
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, Axes, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.validation import (
    check_dims,
    check_int,
    check_real,
    freeze_axes,
    normalize_axes,
)
from jaxinit._src.schemes import householder


def haar(key: KeyArray, n_rows: int, n_cols: int, dtype: Any) -> Array:
    """A Haar-distributed (n_rows, n_cols) matrix with orthonormal rows or columns.

    Built from random Householder reflections (see householder.py): the distribution of the
    Q factor of a Gaussian matrix with Mezzadri's sign fix, at half the cost of a QR.
    """
    return householder.matrix(key, n_rows, n_cols, dtype)


P = jax.sharding.PartitionSpec
#: XLA:CPU compiler options of the orthogonal family's own programs (real dtypes).
CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def _block_index(spec_entry: Any, mesh: Any) -> tuple[Array, int]:
    """This device's block index along an array axis sharded by `spec_entry`, and the count."""
    index: Array = jnp.zeros((), jnp.int32)
    count = 1
    for name in sharding.axis_names(spec_entry):
        size = mesh.shape[name]
        index = index * size + jax.lax.axis_index(name)
        count *= size
    return index, count


def _local_indices(shape: tuple[int, ...], axes: tuple[int, ...], spec: tuple, mesh: Any) -> Array:
    """Flattened (row-major over `axes`) global indices of this device's block, inside shard_map."""
    sizes = [shape[a] for a in axes]
    strides = [math.prod(sizes[i + 1 :]) for i in range(len(sizes))]
    flat: Array = jnp.zeros((), jnp.int32)
    for i, a in enumerate(axes):
        block, count = _block_index(spec[a], mesh)
        local = shape[a] // count
        idx = block * local + jnp.arange(local, dtype=jnp.int32)
        flat = flat[..., None] * 1 + (idx * strides[i]).reshape((1,) * i + (local,))
    return flat.reshape(-1)


def spread(
    shape: tuple[int, ...], spec: tuple[Any, ...], mesh: Any, axis: int
) -> tuple[Any, ...] | None:
    """When both of the last two axes are sharded: `spec` with all their mesh axes moved onto
    array axis `axis` (one of the two), if it divides evenly; else None.

    A device's block of a Haar matrix sharded both ways needs whole panels of rows or columns.
    Formed split along one axis over all the mesh axes instead, it costs the same bytes per
    device as one output shard, and XLA redistributes it to `spec` (an all-to-all)."""
    g = len(shape) - 2
    if spec[g] is None or spec[g + 1] is None:
        return None
    names = sharding.axis_names(spec[g]) + sharding.axis_names(spec[g + 1])
    if shape[axis] % math.prod(mesh.shape[a] for a in names):
        return None
    moved: list[Any] = [*spec[:g], None, None]
    moved[axis] = names
    return tuple(moved)


def _sharded_matrix(
    key: KeyArray, shape: tuple[int, ...], col: int, dtype: Any, lay: sharding.Layout
) -> Array:
    """The orthogonal kernel computed block by block under shard_map: each device forms only
    its own rows/columns from reflectors it redraws from the key (no communication)."""
    assert lay.sharding is not None
    mesh = sharding.context_mesh(lay.sharding.mesh)  # inside auto_axes: with Auto axes
    spec = lay.spec(len(shape))
    n_cols = shape[col]
    n_rows = math.prod(shape) // n_cols
    row_axes = tuple(a for a in range(len(shape)) if a != col)
    if len(shape) == 2:
        # Both axes sharded: each device would need a whole column (or row) panel. Instead form
        # the matrix split along its long side (the tall view's columns) over all the mesh axes.
        moved = spread(shape, spec, mesh, 0 if n_rows < n_cols else 1)
        if moved is not None:
            flat = sharding.Layout(lay.sharded, jax.sharding.NamedSharding(mesh, P(*moved)))
            q = _sharded_matrix(key, shape, col, dtype, flat)
            return jax.lax.with_sharding_constraint(q, jax.sharding.NamedSharding(mesh, P(*spec)))

    def local(k: KeyArray) -> Array:
        rows = _local_indices(shape, row_axes, spec, mesh)
        cols = _local_indices(shape, (col,), spec, mesh)
        block = householder.matrix_block(k, n_rows, n_cols, rows, cols, dtype)
        local_shape = [shape[a] // _block_index(spec[a], mesh)[1] for a in range(len(shape))]
        block = block.reshape([local_shape[a] for a in row_axes] + [local_shape[col]])
        return jnp.moveaxis(block, -1, col)

    out_spec = jax.sharding.PartitionSpec(*spec)
    return jax.shard_map(
        local, mesh=mesh, in_specs=jax.sharding.PartitionSpec(), out_specs=out_spec
    )(key)


def _shardable(shape: tuple[int, ...], lay: sharding.Layout | None) -> bool:
    """Whether a matrix axis is sharded evenly, so the per-device construction applies."""
    if lay is None or lay.sharding is None or not any(lay.sharded or ()):
        return False
    if lay.sharded is None or len(lay.sharded) != len(shape):
        return False
    mesh = lay.sharding.mesh
    for dim, entry in zip(shape, lay.spec(len(shape)), strict=True):
        if dim % sharding.shard_count(entry, mesh):
            return False
    return True


def orthogonal_kernel(
    key: KeyArray, shape: tuple[int, ...], col: int, dtype: Any, lay: sharding.Layout | None
) -> Array:
    """`shape` viewed as (prod / shape[col]) x shape[col], Haar, laid out as `lay`.

    When `lay` shards the kernel evenly, each device forms only its block (`_sharded_matrix`);
    otherwise the whole matrix is formed and the enclosing program's sharding applies.
    """
    if _shardable(shape, lay):
        assert lay is not None
        return _sharded_matrix(key, shape, col, dtype, lay)
    n_cols = shape[col]
    n_rows = math.prod(shape) // n_cols
    q = haar(key, n_rows, n_cols, dtype)
    rest = (*shape[:col], *shape[col + 1 :])
    q = jax.lax.reshape(q, (*rest, n_cols))
    if col == len(shape) - 1:
        return q
    # lax, not jnp: each jnp function is a jit of its own, traced again on a first call
    return jax.lax.transpose(q, (*range(col), len(shape) - 1, *range(col, len(shape) - 1)))


def _stacked(
    key: KeyArray,
    shape: tuple[int, ...],
    col: int,
    batch: tuple[int, ...],
    dtype: Any,
    lay: sharding.Layout | None,
) -> Array:
    """One independent Haar matrix per batch index, from ``split(key, prod(batch sizes))``.

    The matrices are formed one at a time (`lax.map`: the same program for every index), and,
    when only batch axes are sharded, each device forms just its own indices -- so the bits do
    not depend on the sharding, and temporaries stay one matrix's worth.
    """
    rest = [a for a in range(len(shape)) if a not in batch]
    order = (*batch, *rest)
    inner = tuple(shape[a] for a in rest)
    sizes = tuple(shape[a] for a in batch)
    inner_col = rest.index(col)
    keys = streams.split(key, math.prod(sizes))  # jax's split, written-out threefry

    def one(k: KeyArray) -> Array:
        return orthogonal_kernel(k, inner, inner_col, dtype, None)

    def form(ks: Array) -> Array:
        if ks.shape[0] == 1:
            # XLA inlines a loop of one iteration and may round differently than the loop body;
            # a second (discarded) iteration keeps every device on the same compiled body.
            return jax.lax.map(one, jnp.concatenate([ks, ks]))[:1]
        return jax.lax.map(one, ks)

    spec = lay.spec(len(shape)) if lay is not None and lay.sharding is not None else None
    only_batch = spec is not None and all(spec[a] is None for a in rest)
    if spec is not None and only_batch and _shardable(shape, lay):
        assert lay is not None and lay.sharding is not None
        mesh = sharding.context_mesh(lay.sharding.mesh)
        moved_spec = tuple(spec[a] for a in order)

        def local(ks: Array) -> Array:
            idx = _local_indices(sizes, tuple(range(len(sizes))), moved_spec, mesh)
            block = form(ks[idx])
            local_sizes = [
                s // sharding.shard_count(moved_spec[i], mesh) for i, s in enumerate(sizes)
            ]
            return block.reshape(tuple(local_sizes) + inner)

        spec_of = jax.sharding.PartitionSpec
        q = jax.shard_map(local, mesh=mesh, in_specs=spec_of(), out_specs=spec_of(*moved_spec))(
            keys
        )
    else:
        q = jax.lax.reshape(form(keys), sizes + inner)
    if batch == tuple(range(len(batch))):
        return q
    return jnp.moveaxis(q, tuple(range(len(batch))), batch)


class HouseholderInitializer(BaseInitializer):
    """The orthogonal family's shared class facts: complex dtypes give unitary matrices, and
    XLA cannot carry an output sharding back through the Householder loop, so a traced call
    under a mesh without `out_sharding` warns (`BaseInitializer.needs_out_sharding`)."""

    complex_ok: ClassVar[bool] = True
    needs_out_sharding: ClassVar[bool] = True
    scale: RealNumeric

    def check_call(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        check_dims(self.name, shape)
        super().check_call(shape, dtype)

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        """Every entry of a (semi-)orthogonal matrix is at most 1 in modulus: `scale` bounds."""
        return [("scale", abs(float(self.scale)))]

    def compile_options(self, compute_dtype: np.dtype) -> Mapping[str, Any] | None:
        """XLA:CPU's classic kernel emitters, for real dtypes: the first call compiles in about
        half the time, with the same bits (docs/orthogonal.md). Complex arithmetic is emitted
        differently by the two, so complex dtypes keep the default."""
        if np.issubdtype(compute_dtype, np.complexfloating):
            return None
        return CPU_OPTIONS


@dataclasses.dataclass(frozen=True, repr=False)
class Orthogonal(HouseholderInitializer):
    r"""Uniformly (Haar) distributed orthogonal matrices, times `scale`.

    The shape is viewed as a matrix of ``prod(shape) / shape[column_axis]`` rows and
    ``shape[column_axis]`` columns. If there are fewer rows than columns the rows are
    orthonormal, otherwise the columns are:

    .. math:: W W^\top = \text{scale}^2 I \ \text{(rows} \le \text{cols)}, \qquad
              W^\top W = \text{scale}^2 I \ \text{(otherwise)}

    Complex dtypes give Haar unitary matrices. The matrix is a product of random Householder
    reflections (distributed as the Q factor of a Gaussian matrix's QR, with the sign fix that
    makes it Haar; see docs/orthogonal.md), formed in float32 (float64 under x64) for every
    output dtype, so bfloat16 and float16 work.

    Args:
      scale: the multiplier (>= 0) -- not a bound (jax's docstring says otherwise).
      column_axis: the axis holding the columns.
      dtype: the default dtype.
      batch_axis: axes of stacked matrices (layers, heads), keyword-only: each index gets its
        own independent Haar matrix, and sharding the result along them is bitwise-stable.

    Raises:
      ValueError: for a negative `scale` (when built); for rank < 2 (besides `batch_axis`) or
        axes out of range (when called).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit
      >>> q = jaxinit.orthogonal()(jax.random.key(0), (64, 32))
      >>> bool(jnp.allclose(q.T @ q, jnp.eye(32), atol=1e-5))
      True
      >>> w = jaxinit.orthogonal(column_axis=0)(jax.random.key(0), (16, 3, 3, 8), jnp.bfloat16)
      >>> w.dtype, w.shape
      (dtype(bfloat16), (16, 3, 3, 8))

    References:
      Saxe, McClelland & Ganguli, `Exact solutions to the nonlinear dynamics of learning in
      deep linear neural networks <https://arxiv.org/abs/1312.6120>`_, 2014.
      Mezzadri, `How to generate random matrices from the classical compact groups
      <https://arxiv.org/abs/math-ph/0609050>`_, 2007.
    """

    name: ClassVar[str] = "orthogonal"
    scale: RealNumeric = 1.0
    column_axis: int = -1
    dtype: DTypeLike | None = None
    _: dataclasses.KW_ONLY
    batch_axis: Axes = ()

    def validate(self) -> None:
        check_real("scale", self.scale, nonnegative=True)
        check_int("column_axis", self.column_axis)
        object.__setattr__(self, "batch_axis", freeze_axes("batch_axis", self.batch_axis))

    def axes(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        """The column axis and the batch axes of `shape`, as non-negative ints."""
        col = normalize_axes("column_axis", self.column_axis, len(shape))[0]
        batch = normalize_axes("batch_axis", self.batch_axis, len(shape))
        return col, batch

    def matrix_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """``(rows, columns)`` of each matrix of `shape` (batch axes apart)."""
        col, batch = self.axes(shape)
        rows = math.prod(s for i, s in enumerate(shape) if i != col and i not in batch)
        return rows, shape[col]

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """``scale / sqrt(max(rows, columns))``: each entry of a Haar (semi-)orthogonal matrix
        has second moment ``1 / max(rows, columns)``."""
        n = max(self.matrix_shape(shape))
        return float(self.scale) / math.sqrt(n) if n else None

    def for_layer(self, axes: Mapping[str, tuple[int, ...]]) -> Orthogonal:
        """One matrix per index of the layer's batch axes (stacked layers, heads), if any."""
        batch = axes.get("batch_axis", ())
        return dataclasses.replace(self, batch_axis=batch) if batch else self

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if len(shape) < 2:
            raise ValueError(
                f"{self.name} needs a `shape` of rank >= 2; got {shape}. For a vector, "
                "normalize a normal draw instead."
            )
        col, batch = self.axes(shape)
        if len(shape) - len(batch) < 2:
            raise ValueError(
                f"{self.name} needs a `shape` of rank >= 2 besides `batch_axis`; got {shape} "
                f"with batch_axis={self.batch_axis!r}. For a vector, normalize a normal draw."
            )
        if col in batch:
            raise ValueError(
                f"`column_axis`={self.column_axis} is also in `batch_axis`={self.batch_axis!r}."
            )

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        col, batch = self.axes(shape)
        if not batch:
            q = orthogonal_kernel(key, shape, col, dtype, layout)
            return q * jnp.array(self.scale, dtype)
        return _stacked(key, shape, col, batch, dtype, layout) * jnp.array(self.scale, dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class DeltaOrthogonal(HouseholderInitializer):
    r"""Delta-orthogonal convolution kernels: an orthogonal matrix at the spatial centre.

    For a kernel ``(*spatial, in, out)`` of rank 3, 4 or 5 with ``in <= out``, the centre tap
    ``((k-1)//2, ...)`` holds ``orthogonal(scale, column_axis)`` of shape ``(in, out)`` and
    every other tap is zero, so the convolution is norm-preserving at initialization. The centre
    is jax's, ``(k-1)//2``: the identity tap of a 'SAME' convolution (torch's ``dirac_`` uses
    ``k//2``; they differ for even k).

    .. math:: W_{c} = \text{scale} \cdot Q_{[:\text{in}]}, \ Q \sim \text{Haar}(O(\text{out})),
              \qquad W_{t} = 0 \ \ (t \ne c)

    Args:
      scale: the multiplier (>= 0).
      column_axis: the column axis of the centre matrix, relative to ``shape[-2:]``
        (-1/1 or -2/0), as in jax.
      dtype: the default dtype.

    Raises:
      ValueError: for rank not in 3..5 or ``in > out`` (when called).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit
      >>> w = jaxinit.delta_orthogonal()(jax.random.key(0), (3, 3, 16, 32))
      >>> c = w[1, 1]
      >>> bool(jnp.allclose(c @ c.T, jnp.eye(16), atol=1e-5)), float(jnp.abs(w[0]).max())
      (True, 0.0)

    References:
      Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington, `Dynamical Isometry and a Mean
      Field Theory of CNNs <https://arxiv.org/abs/1806.05393>`_, 2018.
    """

    name: ClassVar[str] = "delta_orthogonal"
    scale: RealNumeric = 1.0
    column_axis: int = -1
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_int("column_axis", self.column_axis)
        check_real("scale", self.scale, nonnegative=True)
        if self.column_axis not in (-2, -1, 0, 1):
            raise ValueError(
                f"`column_axis` is relative to the (in, out) centre matrix: one of -2, -1, 0, 1; "
                f"got {self.column_axis!r}."
            )

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"{self.name} needs a conv kernel `shape` of rank 3, 4 or 5 "
                f"(*spatial, in, out); got {shape}."
            )
        if shape[-2] > shape[-1]:
            raise ValueError(
                f"{self.name} needs in <= out (shape[-2] <= shape[-1]); got `shape` {shape}."
            )

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        lay = layout
        sub = None
        if lay.sharded is not None and not any(lay.sharded[:-2]):
            sub = Layout(lay.sharded[-2:], lay.sharding and lay.sub_sharding(-2))
        centre = orthogonal_kernel(key, shape[-2:], self.column_axis % 2, dtype, sub)
        centre = centre * jnp.array(self.scale, dtype)
        index = tuple((k - 1) // 2 for k in shape[:-2])
        return jnp.zeros(shape, dtype).at[index].set(centre)
