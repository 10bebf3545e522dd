"""Initializers for fused recurrent cells: per-gate orthogonal kernels and the LSTM forget bias.

Fused cells keep every gate's weights side by side along the last axis: Flax's NNX
``OptimizedLSTMCell`` has a recurrent kernel ``(h, 4h)`` with gates in the order
``i, f, g, o`` (input, forget, cell candidate, output -- ``jnp.split(y, 4, axis=-1)`` in
``flax/nnx/nn/recurrent.py``) and ``GRUCell`` a kernel ``(h, 3h)`` with ``r, z, n``. One
orthogonal matrix over the fused kernel leaves each gate block far from orthogonal (its
columns have norm about ``1/sqrt(gates)``); these initializers treat each block on its own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinit._src.core import sharding
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.validation import check_dims, check_int, check_real
from jaxinit._src.schemes import householder
from jaxinit._src.schemes.orthogonal import (
    HouseholderInitializer,
    _block_index,
    _local_indices,
    _shardable,
    spread,
)

P = jax.sharding.PartitionSpec

_GATES_ERROR = (
    "{name} needs a `shape` whose last axis holds `gates`={gates} equal blocks, i.e. "
    "{layout}; got {shape}."
)


def _check_gated(name: str, shape: tuple[int, ...], gates: int, layout: str) -> None:
    """Raises unless `shape` has the rank of `layout` (its commas) and a last axis divisible by
    `gates`."""
    check_dims(name, shape)
    if len(shape) < layout.count(",") or shape[-1] % gates:
        raise ValueError(_GATES_ERROR.format(name=name, gates=gates, shape=shape, layout=layout))


@dataclasses.dataclass(frozen=True, repr=False)
class GatedOrthogonal(HouseholderInitializer):
    r"""Per-gate orthogonal fused recurrent kernels: each gate block is its own Haar matrix.

    For a kernel ``(..., n, gates * m)`` the block ``W[..., :, k*m:(k+1)*m]`` of every gate
    ``k`` is an independent Haar (semi-)orthogonal ``(n, m)`` matrix times `scale`, as linen's
    separate per-gate cells have; leading axes (stacked layers) get independent kernels too.
    With `out_sharding`, each device forms only its own shard of the gate blocks.

    .. math:: B_k^\top B_k = \text{scale}^2 I \quad (n \ge m), \qquad
              B_k B_k^\top = \text{scale}^2 I \quad (n < m)

    Args:
      gates: the number of fused gates (4 for an LSTM, 3 for a GRU).
      scale: the multiplier (>= 0).
      dtype: the default dtype.

    Raises:
      ValueError: for ``gates < 1`` or a negative `scale` (when built); for rank < 2 or a last
        axis not divisible by `gates` (when called).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.flax
      >>> w = jaxinit.flax.gated_orthogonal(gates=4)(jax.random.key(0), (32, 128))
      >>> f = w[:, 32:64]  # the forget gate's block
      >>> bool(jnp.allclose(f.T @ f, jnp.eye(32), atol=1e-5))
      True

    References:
      Saxe, McClelland & Ganguli, `Exact solutions to the nonlinear dynamics of learning in
      deep linear neural networks <https://arxiv.org/abs/1312.6120>`_, 2014.
    """

    name: ClassVar[str] = "gated_orthogonal"
    gates: int = 4
    scale: RealNumeric = 1.0
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_int("gates", self.gates, minimum=1)
        check_real("scale", self.scale, nonnegative=True)

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_gated(self.name, shape, self.gates, "(..., in, gates * units)")

    def target_std(self, shape: tuple[int, ...]) -> float | None:
        """Each gate's (n, m) block is `orthogonal`'s: ``scale / sqrt(max(n, m))``."""
        n = max(shape[-2], shape[-1] // self.gates)
        return float(self.scale) / math.sqrt(n) if n else None

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        q = _sharded_gates(key, shape, self.gates, dtype, layout)
        if q is None:
            *lead, n, fused = shape
            m = fused // self.gates
            count = math.prod(lead) * self.gates  # one Haar matrix per (stacked index, gate)
            # From one key, one matrix at a time (`householder.stack`).
            q = householder.matrix(key, n, m, dtype, batch=count)
            g = len(lead)  # (..., gates, n, m) -> (..., n, gates, m) -> shape
            q = lax.reshape(q, (*lead, self.gates, n, m))
            q = lax.reshape(lax.transpose(q, (*range(g), g + 1, g, g + 2)), shape)
        return lax.mul(q, lax.convert_element_type(self.scale, dtype))


def _sharded_gates(
    key: KeyArray, shape: tuple[int, ...], gates: int, dtype: Any, lay: Layout
) -> Array | None:
    """The fused kernel formed shard by shard under ``shard_map`` (`_gates_by_shard`), or None
    where the layout does not allow it: not sharded, uneven, a shard of the fused axis that
    straddles gate blocks unevenly, or one whose blocks would take more than a shard.

    When both matrix axes are sharded and their blocks are too costly, the kernel is formed
    split along one of them over all their mesh axes -- the same bytes per device as one
    output shard -- and XLA redistributes it (an all-to-all), as `orthogonal` does."""
    if not _shardable(shape, lay):
        return None
    assert lay.sharding is not None
    mesh = sharding.context_mesh(lay.sharding.mesh)  # inside auto_axes: with Auto axes
    spec = lay.spec(len(shape))
    g = len(shape) - 2
    # As asked; else, both matrix axes sharded, split along the fused axis or the rows over all
    # their mesh axes and redistributed (`orthogonal.spread`).
    for moved in (spec, spread(shape, spec, mesh, g + 1), spread(shape, spec, mesh, g)):
        plan = None if moved is None else _gate_plan(shape, gates, moved, mesh)
        if plan is not None:
            assert moved is not None
            q = _gates_by_shard(key, shape, gates, dtype, moved, mesh, plan)
            if moved is spec:
                return q
            return jax.lax.with_sharding_constraint(q, jax.sharding.NamedSharding(mesh, P(*spec)))
    return None


def _gate_plan(
    shape: tuple[int, ...], gates: int, spec: tuple[Any, ...], mesh: Any
) -> tuple[int, int] | None:
    """``(per_gate, slots)`` of a device's shard under `spec`: it holds `per_gate` columns
    of each of `slots` gate blocks; None if its columns straddle gate blocks unevenly, or if
    `householder.matrix_block` (``max(n, m) x min(rows, cols)`` memory) would need more than
    one shard -- a tall, narrow gate block sharded by rows -- where forming the kernel whole
    is no worse."""
    *lead, n, fused = shape
    m = fused // gates
    width = fused // sharding.shard_count(spec[-1], mesh)  # fused columns per device
    if width == 0 or (m % width and width % m):
        return None
    per_gate = min(width, m)
    rows = n // sharding.shard_count(spec[-2], mesh)
    lead_count = math.prod(s // sharding.shard_count(spec[a], mesh) for a, s in enumerate(lead))
    if max(n, m) * min(rows, per_gate) > lead_count * rows * width:
        return None
    return per_gate, width // per_gate


def _gates_by_shard(
    key: KeyArray,
    shape: tuple[int, ...],
    gates: int,
    dtype: Any,
    spec: tuple,
    mesh: Any,
    plan: tuple[int, int],
) -> Array:
    """Each device forms only its block of the fused kernel: for every stacked index and gate
    block its shard touches, the rows and columns it holds of that Haar matrix
    (`householder.matrix_block`, with the matrix's place in `householder.stack`'s draws), one
    block at a time -- so temporaries stay about one shard, where forming the whole kernel on
    every device costs the global array. The values are the unsharded ones to rounding (the
    block paths apply the reflectors a panel at a time)."""
    per_gate, slots = plan  # `_gate_plan`
    *lead, n, fused = shape
    m = fused // gates
    g = len(lead)
    count = math.prod(lead) * gates
    local_rows = n // sharding.shard_count(spec[g], mesh)
    local_lead = tuple(s // sharding.shard_count(spec[a], mesh) for a, s in enumerate(lead))
    names = tuple(a for entry in spec for a in sharding.axis_names(entry))

    def local(k: KeyArray) -> Array:
        # 0, varying over every sharded mesh axis: the loop carries below depend on the block
        # indices, and shard_map needs each carry to vary the same way from the start.
        zero = functools.reduce(lax.add, [lax.mul(lax.axis_index(a), np.int32(0)) for a in names])
        col_block, _ = _block_index(spec[-1], mesh)
        c0 = lax.add(lax.mul(col_block, np.int32(per_gate * slots)), zero)
        rows = lax.add(_local_indices(shape, (g,), spec, mesh), zero)
        leads = _local_indices(shape, tuple(range(g)), spec, mesh) if g else jnp.zeros(1, jnp.int32)
        leads = lax.add(leads, zero)
        cols = lax.add(lax.rem(c0, np.int32(m)), lax.iota(np.int32, per_gate))
        first_gate = lax.div(c0, np.int32(m))

        def one(j: Array) -> Array:  # j: (local stacked index, slot), flattened
            slot = lax.rem(j, np.int32(slots))
            i = leads[lax.div(j, np.int32(slots))] * gates + first_gate + slot
            return householder.matrix_block(k, n, m, rows, cols, dtype, batch=count, index=i)

        q = lax.map(one, lax.iota(np.int32, leads.shape[0] * slots))
        q = lax.reshape(q, (*local_lead, slots, local_rows, per_gate))
        q = lax.transpose(q, (*range(g), g + 1, g, g + 2))
        return lax.reshape(q, (*local_lead, local_rows, per_gate * slots))

    return jax.shard_map(local, mesh=mesh, in_specs=P(), out_specs=P(*spec))(key)


@dataclasses.dataclass(frozen=True, repr=False)
class LstmForgetBias(BaseInitializer):
    r"""The fused LSTM bias with the forget gate's block set to `forget_bias`, the rest 0.

    For a bias ``(..., gates * h)`` in Flax's gate order ``i, f, g, o`` the block
    ``[h:2h]`` (gate `forget_gate` = 1) holds `forget_bias` and every other entry is 0 --
    Keras's ``unit_forget_bias`` and Jozefowicz et al.'s advice, as an initializer instead of
    a +1 in the forward pass. (An unfused cell's forget bias is ``constant(1.0)`` on its own.)

    .. math:: b_j = \text{forget\_bias}\ \text{if}\ \lfloor j / h \rfloor = \text{forget\_gate}
              \ \text{else}\ 0

    Args:
      forget_bias: the forget gate's bias.
      gates: the number of fused gates (4 for an LSTM).
      forget_gate: the forget gate's index in the gate order (1 in Flax's ``i, f, g, o``).
      dtype: the default dtype.

    Raises:
      ValueError: for ``gates < 1`` or `forget_gate` out of range (when built); for a last axis
        not divisible by `gates` (when called).

    Examples:
      >>> import jax, jaxinit.flax
      >>> b = jaxinit.flax.lstm_forget_bias()(jax.random.key(0), (8,))
      >>> b.tolist()
      [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]

    References:
      Jozefowicz, Zaremba & Sutskever, `An Empirical Exploration of Recurrent Network
      Architectures <https://proceedings.mlr.press/v37/jozefowicz15.html>`_, 2015.
    """

    name: ClassVar[str] = "lstm_forget_bias"
    random: ClassVar[bool] = False
    complex_ok: ClassVar[bool] = True
    forget_bias: RealNumeric = 1.0
    gates: int = 4
    forget_gate: int = 1
    dtype: DTypeLike | None = None

    def validate(self) -> None:
        check_int("gates", self.gates, minimum=1)
        check_int("forget_gate", self.forget_gate, minimum=0)
        check_real("forget_bias", self.forget_bias)
        if self.forget_gate >= self.gates:
            raise ValueError(
                f"`forget_gate`={self.forget_gate} must be < `gates`={self.gates} "
                f"(valid: 0..{self.gates - 1})."
            )

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        _check_gated(self.name, shape, self.gates, "(..., gates * units)")

    def magnitudes(self, shape: tuple[int, ...], dtype: np.dtype) -> list[tuple[str, float]]:
        return [("forget_bias", abs(float(self.forget_bias)))]

    def sample(self, key: KeyArray, shape: tuple[int, ...], dtype: Any, layout: Layout) -> Array:
        h = shape[-1] // self.gates
        gate = lax.broadcasted_iota(jnp.int32, shape, len(shape) - 1) // h
        value = jnp.asarray(self.forget_bias, dtype)
        return jnp.where(gate == self.forget_gate, value, jnp.zeros((), dtype))
