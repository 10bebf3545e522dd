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
import math
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.sharding import Layout
from jaxinit._src.core.typing import Array, DTypeLike, KeyArray, RealNumeric
from jaxinit._src.core.validation import check_dims, check_int, check_real
from jaxinit._src.schemes import householder
from jaxinit._src.schemes.orthogonal import HouseholderInitializer

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
        *lead, n, fused = shape
        m = fused // self.gates
        count = math.prod(lead) * self.gates  # one Haar matrix per (stacked index, gate)
        # From one key, one matrix at a time (`householder.stack`); the blocks' layout is not
        # the output's, so they are formed whole.
        q = householder.matrix(key, n, m, dtype, batch=count)
        g = len(lead)  # (..., gates, n, m) -> (..., n, gates, m) -> shape
        q = lax.reshape(q, (*lead, self.gates, n, m))
        q = lax.reshape(lax.transpose(q, (*range(g), g + 1, g, g + 2)), shape)
        return lax.mul(q, lax.convert_element_type(self.scale, dtype))


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
