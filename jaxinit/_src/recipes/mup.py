"""muP (maximal update parametrization) as rules for :func:`jaxinit.flax.reinit`.

Unlike the depth recipes, muP needs shapes: `mup_plan`/`mup` read the target and the same model
at base width through the Flax adapter (imported when called), with the recipes' role patterns
and argument checks (patterns.py), and export every parameter's init std and learning-rate
multipliers, which `scale_by_mup` (mup_optax.py) turns into an optax transform.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxinit._src.core.fans import Fans, compute_fans
from jaxinit._src.core.typing import Rule
from jaxinit._src.recipes.patterns import (
    BIAS,
    NORM_SCALE,
    QUERY,
    READOUT,
    check_distribution,
    check_flag,
    check_pattern,
)
from jaxinit._src.schemes import constant, elementwise, variance

ROLES = ("input", "hidden", "readout", "query")


@dataclasses.dataclass(frozen=True)
class MupRow:
    """What muP does to one parameter.

    Attributes:
      path: the parameter's path.
      role: ``"input"`` (input weights, biases, norm scales: every vector-like parameter),
        ``"hidden"``, ``"readout"`` or ``"query"``.
      shape: its shape.
      base_shape: its shape in the base model.
      width_mult: the width multiplier :math:`m`: fan_in over the base's for hidden, query and
        readout; for input the growth of its one width dimension (fan_out), 1 if none.
      std: its init std (None when the parameter is kept).
      initializer: the initializer `mup` gives it (None: kept).
      adam_lr_mult: its Adam (any adaptive optimizer) learning-rate multiplier.
      sgd_lr_mult: its SGD learning-rate multiplier.
    """

    path: str
    role: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    width_mult: float
    std: float | None
    initializer: Any
    adam_lr_mult: float
    sgd_lr_mult: float


def _is_shape(x: Any) -> bool:
    return (
        isinstance(x, Sequence)
        and not isinstance(x, str)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in x)
    )


def _as_target(x: Any, is_module: bool) -> Any:
    """Shapes (tuples of ints) in a mapping become float32 `ShapeDtypeStruct`s. An NNX module
    is kept as it is, even one that is a mapping (``nnx.Dict``): mapped over, its ``Param``s
    would become pytree leaves with ``.../value`` paths and no layer axes."""
    if is_module or not isinstance(x, Mapping):
        return x
    to_struct = lambda v: jax.ShapeDtypeStruct(tuple(v), jnp.float32) if _is_shape(v) else v
    return jax.tree_util.tree_map(to_struct, dict(x), is_leaf=_is_shape)


def _fans(layer: Any, shape: tuple[int, ...]) -> Fans | None:
    axes = layer.for_shape(shape) if layer is not None else None
    if axes is not None:
        return compute_fans(shape, **axes)
    return compute_fans(shape) if len(shape) >= 2 else None


def _role(
    path: str,
    patterns: Sequence[tuple[str, re.Pattern[str] | None]],
    fans: tuple[Fans | None, Fans | None],
    layer: Any,
) -> str:
    """The role a pattern gives `path`, else the one its fans give: a matrix whose fan_in and
    fan_out both grow with width is hidden; one whose fan_in grows and fan_out does not maps
    width to a fixed size, an output-type ("readout") matrix; everything else is input-like
    (vectors, embeddings, matrices from a fixed size to width)."""
    for role, pattern in patterns:
        if pattern is not None and pattern.search(path):
            return role
    target, base = fans
    if target is None or base is None or (layer is not None and layer.kind == "embed"):
        return "input"
    grows_in, grows_out = target.fan_in != base.fan_in, target.fan_out != base.fan_out
    if grows_in:
        return "hidden" if grows_out else "readout"
    return "input"


def _sampler(std: float, distribution: str) -> Any:
    if distribution == "normal":
        return elementwise.Normal(std)
    if distribution == "truncated_normal":
        return elementwise.TruncatedNormal(std, post_truncation=True)
    bound = math.sqrt(3.0) * std
    return elementwise.UniformRange(-bound, bound)


def _mult(num: float | None, den: float | None, path: str, what: str) -> float:
    if not num or not den:
        raise ValueError(f"parameter {path!r}: its {what} is 0 or unknown, so no width multiplier.")
    return float(num) / float(den)


def _check_pair(path: str, shape: tuple[int, ...], base_shape: tuple[int, ...] | None) -> None:
    if base_shape is None:
        raise ValueError(f"parameter {path!r} of the target is not in `base`.")
    if len(shape) != len(base_shape):
        raise ValueError(
            f"parameter {path!r} has shape {shape} in the target but {base_shape} in `base`: "
            "muP needs the same rank (only the width may change)."
        )


def mup_plan(
    target: Any,
    base: Any,
    init: Sequence[Rule] | None = None,
    *,
    inputs: str | re.Pattern[str] | None = None,
    hidden: str | re.Pattern[str] | None = None,
    readout: str | re.Pattern[str] | None = READOUT,
    query: str | re.Pattern[str] | None = QUERY,
    zero_readout: bool = False,
    zero_query: bool = False,
    distribution: str = "normal",
    layers: Mapping[str, Any] | None = None,
) -> list[MupRow]:
    r"""The muP (maximal update parametrization) plan of `target` relative to `base`: each
    parameter's role, width multiplier, init std and learning-rate multipliers.

    The base model fixes the hyperparameters; `target` is the same model wider. Dimensions whose
    size differs between them are *width* dimensions. With :math:`\sigma_0` the std that `init`
    gives the parameter **at its base shape** and :math:`m` its width multiplier (fan_in over the
    base's fan_in; for input-like parameters the growth of their one width dimension):

    ============  ===========================  ==============  ================================
    role          init std                     Adam LR         SGD LR
    ============  ===========================  ==============  ================================
    input         :math:`\sigma_0`             :math:`\eta`    :math:`\eta\, m`
    hidden        :math:`\sigma_0/\sqrt{m}`    :math:`\eta/m`  :math:`\eta\, m_\text{out}/m`
    query         as hidden, or 0              :math:`\eta/m`  :math:`\eta\, m_\text{out}/m`
    readout       :math:`\sigma_0/m`, or 0     :math:`\eta/m`  :math:`\eta/m`
    ============  ===========================  ==============  ================================

    This is Table 3 of Tensor Programs V (no output multiplier in the model: the readout's
    :math:`1/\text{fan\_in}` is in its init and learning rate), as ratios to the base model, so
    that at the base shape muP equals the base parametrization. Parameters with a zero-std base
    initializer (``zeros``, ``ones``) keep it. Roles: a path matching `readout`, `query`,
    `inputs` or `hidden` (checked in that order) has that role; any other matrix is hidden when
    its fan_in and fan_out both grow with width, output-type (the readout role) when only its
    fan_in does (width to a fixed size, e.g. a projection to a fixed number of heads or
    features), and input otherwise, as are biases, norm scales and embeddings. muP also wants
    attention logits scaled by :math:`1/d_\text{head}` instead of :math:`1/\sqrt{d_\text{head}}`:
    that is the model's job.

    Args:
      target: the model to initialize: an ``nnx.Module`` (concrete or abstract), a pytree of
        arrays / ``jax.ShapeDtypeStruct`` (linen ``params``), or a (nested) mapping whose
        leaves are shapes (``{"blocks/0/up/kernel": (512, 2048), ...}``).
      base: the same model at base width, in any of those forms, with the same paths.
      init: the base parametrization's rules, evaluated at the base shapes (default: biases
        zero, norm scales one, everything else ``variance_scaling(1, "fan_in", "normal")``).
      inputs: a pattern forcing the input role (default: by shape).
      hidden: a pattern forcing the hidden role (default: by shape).
      readout: the readout (default ``READOUT``: ``lm_head``, ``head``, ``readout``, ...); None
        for none.
      query: the attention query kernels (default ``QUERY``); None to treat them as hidden.
      zero_readout: initialize the readout to zero (recommended by the muP authors).
      zero_query: initialize the query to zero (recommended by the muP authors).
      distribution: the distribution of the rescaled parameters: ``"normal"``,
        ``"truncated_normal"`` (the std is after truncation) or ``"uniform"``.
      layers: parameter path -> :class:`jaxinit.flax.LayerAxes`, for linen targets (see
        :func:`jaxinit.flax.linen_layers`); NNX layers are found automatically.

    Returns:
      A list of :class:`MupRow`, in the target's parameter order.

    Raises:
      ValueError: when `target` and `base` have different parameters or ranks, a parameter's
        base initializer has no known std, or a matrix role is given to a vector.
      TypeError: for a bad argument.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.recipes as jr
      >>> def mlp(w):
      ...     return {"inp": {"kernel": (8, w), "bias": (w,)}, "hid": {"kernel": (w, w)},
      ...             "readout": {"kernel": (w, 10)}}
      >>> rows = jr.mup_plan(mlp(256), mlp(64))
      >>> [(r.path, r.role, r.width_mult, round(r.std, 4), r.adam_lr_mult) for r in rows]
      [('hid/kernel', 'hidden', 4.0, 0.0625, 0.25), ('inp/bias', 'input', 4.0, 0.0, 1.0),
       ('inp/kernel', 'input', 4.0, 0.3536, 1.0), ('readout/kernel', 'readout', 4.0, 0.0312,
       0.25)]

    References:
      Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao, `Tensor Programs V:
      Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer
      <https://arxiv.org/abs/2203.03466>`_, 2022 (Table 3); Yang & Hu, `Feature Learning in
      Infinite-Width Neural Networks <https://arxiv.org/abs/2011.14522>`_, 2021;
      `microsoft/mup <https://github.com/microsoft/mup>`_.
    """
    from jaxinit._src.flax import reinit as flax_adapter
    from jaxinit._src.flax import targets as flax_targets

    zero_readout = check_flag("zero_readout", zero_readout)
    zero_query = check_flag("zero_query", zero_query)
    dist = check_distribution(distribution)
    roles = [(name, None if p is None else re.compile(check_pattern(name, p)))
             for name, p in (("readout", readout), ("query", query), ("input", inputs),
                             ("hidden", hidden))]  # fmt: skip
    if init is None:
        init = [(BIAS, constant.zeros), (NORM_SCALE, constant.ones),
                ("", variance.VarianceScaling(1.0, "fan_in", "normal"))]  # fmt: skip
    target, base = (_as_target(x, flax_targets.is_nnx_module(x)) for x in (target, base))
    leaves, _ = flax_targets.collect(target, layers, None, False)
    found = {leaf.path: leaf.layer for leaf in leaves if leaf.layer is not None}
    base_layers = {**found, **(layers or {})}
    base_rows = {r.path: r for r in flax_adapter.plan(base, init, layers=base_layers)}
    extra = sorted(set(base_rows) - {leaf.path for leaf in leaves})
    if extra:
        raise ValueError(f"`base` has parameters the target lacks: {extra}.")
    out = []
    for leaf in leaves:
        b = base_rows.get(leaf.path)
        _check_pair(leaf.path, leaf.shape, b.shape if b is not None else None)
        assert b is not None
        inf = [i for i, (s, s0) in enumerate(zip(leaf.shape, b.shape, strict=True)) if s != s0]
        fans, base_fans = _fans(leaf.layer, leaf.shape), _fans(leaf.layer, b.shape)
        role = _role(leaf.path, roles, (fans, base_fans), leaf.layer)
        if role == "input":
            if len(inf) >= 2 and fans is not None and base_fans is not None:
                m = _mult(fans.fan_out, base_fans.fan_out, leaf.path, "fan_out")
            else:
                m = math.prod(leaf.shape[i] / b.shape[i] for i in inf) if inf else 1.0
            m_out = m
        else:
            if fans is None or base_fans is None:
                raise ValueError(
                    f"parameter {leaf.path!r} of shape {leaf.shape} has role {role!r}, which "
                    "needs a matrix (rank >= 2); give it the input role (`inputs=`)."
                )
            m = _mult(fans.fan_in, base_fans.fan_in, leaf.path, "fan_in")
            m_out = _mult(fans.fan_out, base_fans.fan_out, leaf.path, "fan_out")
        std, initializer = _mup_init(leaf.path, role, m, b, dist, zero_readout, zero_query)
        adam = 1.0 if role == "input" else 1.0 / m
        sgd = {"input": m, "readout": 1.0 / m}.get(role, m_out / m)
        out.append(MupRow(leaf.path, role, leaf.shape, b.shape, m, std, initializer, adam, sgd))
    return out


def _mup_init(
    path: str, role: str, m: float, base_row: Any, dist: str, zero_readout: bool, zero_query: bool
) -> tuple[float | None, Any]:
    """The std and initializer of a parameter of `role` from its base plan row."""
    if base_row.initializer is None:
        return None, None
    if (role == "readout" and zero_readout) or (role == "query" and zero_query):
        return 0.0, constant.zeros
    if base_row.std is None:
        raise ValueError(
            f"parameter {path!r}: muP rescales the std of its base initializer "
            f"{base_row.initializer!r}, which is unknown; give it a rule whose std is known "
            "(normal, truncated_normal, uniform, variance scaling, orthogonal, zeros, ones)."
        )
    if base_row.std == 0.0:
        return 0.0, base_row.initializer  # zeros, ones, constants: width-independent
    std = base_row.std * {"input": 1.0, "readout": 1.0 / m}.get(role, m**-0.5)
    return std, _sampler(std, dist)


def mup(
    target: Any,
    base: Any,
    init: Sequence[Rule] | None = None,
    **kwargs: Any,
) -> list[Rule]:
    """muP rules for :func:`jaxinit.flax.reinit`: one exact-path rule per parameter of `target`.

    The rules come from :func:`mup_plan` (same arguments; see it for the math) and hold for
    `target`'s paths: pass the same target to ``reinit`` (for linen, the same pytree, e.g. the
    whole variables dict or its ``"params"``). Use :func:`scale_by_mup` with the plan for the
    learning rates.

    Args:
      target: the model to initialize (see :func:`mup_plan`).
      base: the same model at base width.
      init: the base parametrization's rules (default: see :func:`mup_plan`).
      **kwargs: the keyword arguments of :func:`mup_plan`.

    Returns:
      ``[("^<path>$", initializer), ...]`` covering every parameter.

    Raises:
      ValueError, TypeError: as :func:`mup_plan`.

    Examples:
      >>> import jax, jaxinit.flax, jaxinit.recipes as jr
      >>> from flax import nnx
      >>> def mlp(w):
      ...     return nnx.Sequential(nnx.Linear(8, w, rngs=nnx.Rngs(0)), nnx.relu,
      ...                           nnx.Linear(w, w, rngs=nnx.Rngs(0)))
      >>> target = nnx.eval_shape(lambda: mlp(1024))  # abstract: reinit materializes it
      >>> rules = jr.mup(target, nnx.eval_shape(lambda: mlp(64)))
      >>> model = jaxinit.flax.reinit(target, jax.random.key(0), rules)
      >>> round(float(model.layers[2].kernel[...].std() * 64**0.5 * 4), 2)  # 1/sqrt(64*16)
      1.0

    References:
      Yang et al., `Tensor Programs V <https://arxiv.org/abs/2203.03466>`_, 2022.
    """
    return [
        (f"^{re.escape(r.path)}$", r.initializer) for r in mup_plan(target, base, init, **kwargs)
    ]
