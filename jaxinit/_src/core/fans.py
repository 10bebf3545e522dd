"""The fan rule, in one place.

``fan_in = prod(in axes) * receptive_field`` and ``fan_out = prod(out axes) * receptive_field``,
where ``receptive_field`` is the product of every axis that is neither an in, an out nor a batch
axis -- the rule of :mod:`jax.nn.initializers`. Batch axes (stacked layers, experts, heads) never
count. A grouped convolution's kernel ``(*k, in / groups, out)`` already has the right fan_in;
each input feeds only the ``out / groups`` outputs of its group, so ``groups`` divides fan_out
(a depthwise ``(3, 3, 1, 16)`` kernel with 16 groups: fan_out 9, not 144). When in and out
axes overlap (Flax's ``Embed`` default, ``out_axis=0`` on ``(N, F)``) the receptive field keeps
jax's meaning, ``size / in / out / batch``, which may be below one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxinit._src.core.validation import normalize_axes

_RANK_ERROR = (
    # jax's own sentence first, word for word (its tests match it), then what to do.
    "Can't compute input and output sizes of a {rank}-dimensional weights tensor with default "
    "in_axis. Must be at least 2D or specify in_axis explicitly. `shape` {shape} has rank "
    "{rank}, so the default `in_axis=-2` is no axis: pass e.g. `in_axis=0, out_axis=()` for "
    "fan_in = shape[0] (a bias or a vector), or use an initializer that needs no fans."
)


@dataclass(frozen=True)
class Fans:
    """Effective input and output sizes of a weight tensor."""

    fan_in: float
    fan_out: float

    def denominator(self, mode: str) -> float:
        """The ``n`` of ``variance = scale / n`` for a variance-scaling `mode`."""
        if mode == "fan_in":
            return self.fan_in
        if mode == "fan_out":
            return self.fan_out
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2
        return (self.fan_in * self.fan_out) ** 0.5  # fan_geo_avg


def compute_fans(
    shape: Sequence[int],
    in_axis: Any = -2,
    out_axis: Any = -1,
    batch_axis: Any = (),
    groups: int = 1,
) -> Fans:
    """Computes the fans of a weight of `shape`.

    Args:
      shape: the weight's shape.
      in_axis: axis or axes of the inputs.
      out_axis: axis or axes of the outputs.
      batch_axis: axis or axes that are ignored (stacked layers, experts).
      groups: the feature groups of a grouped or depthwise convolution (Flax's
        ``feature_group_count``, torch's ``groups``): fan_out counts the outputs of one group.
        The out axes' size must be a multiple of it.

    Returns:
      A :class:`Fans`. A zero-size shape gives the fans of its axes (possibly 0).

    Raises:
      ValueError: for rank <= 1 with the default ``in_axis``, for an axis out of range, or for
        `groups` that does not divide the out axes' size.

    Examples:
      >>> from jaxinit import compute_fans
      >>> compute_fans((3, 3, 64, 128))
      Fans(fan_in=576, fan_out=1152)
      >>> compute_fans((8, 16, 32), batch_axis=0)
      Fans(fan_in=16, fan_out=32)
      >>> compute_fans((3, 3, 1, 16), groups=16)  # depthwise
      Fans(fan_in=9, fan_out=9)
    """
    shape = tuple(int(d) for d in shape)
    ndim = len(shape)
    if ndim <= 1 and isinstance(in_axis, int) and in_axis == -2:
        raise ValueError(_RANK_ERROR.format(rank=ndim, shape=shape))
    ins = normalize_axes("in_axis", in_axis, ndim)
    outs = normalize_axes("out_axis", out_axis, ndim)
    batch = normalize_axes("batch_axis", batch_axis, ndim)
    in_size = math.prod(shape[i] for i in ins)
    out_size = math.prod(shape[i] for i in outs)
    groups = check_groups(groups)
    if out_size % groups:
        raise ValueError(
            f"`groups`={groups} must divide the size of the out axes {outs} of shape {shape}, "
            f"{out_size}: a grouped convolution has out / groups outputs per group."
        )
    named = set(ins) | set(outs) | set(batch)
    if len(named) == len(ins) + len(outs) + len(batch):
        # Disjoint axes: an exact integer product, defined for zero-size shapes too.
        rf: float = math.prod(shape[i] for i in range(ndim) if i not in named)
    else:
        # Overlapping axes keep jax's float arithmetic (the `Embed` trick relies on it).
        batch_size = math.prod(shape[i] for i in batch)
        denom = in_size * out_size * batch_size
        rf = math.prod(shape) / in_size / out_size / batch_size if denom else 0.0
    return Fans(in_size * rf, out_size // groups * rf)


def check_groups(groups: Any) -> int:
    """`groups` as a positive int, or a ValueError/TypeError that names it."""
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer):
        raise TypeError(f"`groups` must be a positive int; got {groups!r}.")
    if groups < 1:
        raise ValueError(f"`groups` must be a positive int; got {groups!r}.")
    return int(groups)


_EINSUM_ERROR = "`spec` must be a two-operand einsum like 'bd,dhk->bhk'; got {spec!r}. {why}"


def einsum_axes(spec: str) -> dict[str, tuple[int, ...]]:
    """Fan axes of the kernel (second operand) of a two-operand einsum.

    Contracted labels are input axes, labels that reach the output only from the kernel are
    output axes, and labels shared by both operands and the output are batch axes.

    Args:
      spec: an einsum string with two operands and an explicit output, e.g. ``"bd,dhk->bhk"``.
        An ellipsis is allowed in the first operand and the output.

    Returns:
      ``dict(in_axis=..., out_axis=..., batch_axis=...)``, ready to pass to
      :func:`variance_scaling` or any named scheme.

    Raises:
      ValueError: for a malformed spec, or a kernel label that is summed over on its own.

    Examples:
      >>> import jaxinit
      >>> jaxinit.einsum_axes("bd,dhk->bhk")
      {'in_axis': (0,), 'out_axis': (1, 2), 'batch_axis': ()}
      >>> jaxinit.einsum_axes("ebd,edf->ebf")
      {'in_axis': (1,), 'out_axis': (2,), 'batch_axis': (0,)}
    """
    if not isinstance(spec, str):
        raise TypeError(_EINSUM_ERROR.format(spec=spec, why="It is not a string."))
    s = spec.replace(" ", "")
    m = re.fullmatch(r"([a-zA-Z.]*),([a-zA-Z]*)->([a-zA-Z.]*)", s)
    if m is None:
        raise ValueError(_EINSUM_ERROR.format(spec=spec, why="It does not parse."))
    lhs, kernel, out = (part.replace("...", "") for part in m.groups())
    if "." in lhs + out:
        raise ValueError(_EINSUM_ERROR.format(spec=spec, why="A stray '.' is in it."))
    if len(set(kernel)) != len(kernel):
        raise ValueError(_EINSUM_ERROR.format(spec=spec, why="A kernel label repeats."))
    ins, outs, batch = [], [], []
    for i, label in enumerate(kernel):
        in_lhs, in_out = label in lhs, label in out
        if in_lhs and in_out:
            batch.append(i)
        elif in_lhs:
            ins.append(i)
        elif in_out:
            outs.append(i)
        else:
            why = f"Kernel label {label!r} is in neither the first operand nor the output."
            raise ValueError(_EINSUM_ERROR.format(spec=spec, why=why))
    return {"in_axis": tuple(ins), "out_axis": tuple(outs), "batch_axis": tuple(batch)}
