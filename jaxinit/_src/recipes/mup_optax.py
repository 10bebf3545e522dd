"""The optimizer side of muP: `scale_by_mup` multiplies each parameter's update by the
learning-rate multiplier of its `mup_plan` row (mup.py); `mup_adam` and `mup_sgd` chain it after
the optax optimizer. optax is imported when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax

from jaxinit._src.core.paths import join_path
from jaxinit._src.core.validation import check_choice
from jaxinit._src.recipes.mup import MupRow
from jaxinit._src.recipes.patterns import check_flag

#: Attributes of an NNX ``Variable`` that hold its array: dropped from the end of a leaf's path.
_VALUE_ATTRS = ("value", "raw_value")


def _leaf_path(keypath: tuple[Any, ...]) -> str:
    """A pytree leaf's parameter path; an NNX ``Variable``'s trailing ``.value`` is dropped."""
    keys = list(keypath)
    while keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and keys[-1].name in _VALUE_ATTRS:
        keys.pop()
    return join_path(keys)


def _lookup(table: Mapping[str, float], path: str) -> float | None:
    """The multiplier of `path`: exact, else the one plan path that is a ``/``-suffix of it or
    of which it is one (linen's ``params/`` prefix, on either side)."""
    if path in table:
        return table[path]
    hits = [p for p in table if path.endswith("/" + p) or p.endswith("/" + path)]
    return table[hits[0]] if len(hits) == 1 else None


def scale_by_mup(plan: Sequence[MupRow], optimizer: str = "adam", *, strict: bool = True) -> Any:
    r"""An optax transform multiplying each parameter's update by its muP learning-rate
    multiplier (:func:`mup_plan`'s ``adam_lr_mult`` or ``sgd_lr_mult``).

    Chain it after the optimizer: ``optax.chain(optax.adam(lr), scale_by_mup(plan))``. Scaling
    the final update scales the learning rate, and with it decoupled weight decay (as
    ``mup.MuAdam`` does). Works on any pytree whose leaf paths are the plan's: NNX
    ``nnx.state(model, nnx.Param)`` (``nnx.Optimizer``) and linen ``params`` (with or without the
    ``params/`` prefix). Needs optax.

    Args:
      plan: the rows of :func:`mup_plan`.
      optimizer: ``"adam"`` (any adaptive optimizer: Adam, AdamW, Adafactor-like) or ``"sgd"``.
      strict: raise for update leaves the plan does not know (else they are left as they are).

    Returns:
      An ``optax.GradientTransformation`` (stateless).

    Raises:
      ValueError: for an unknown `optimizer`, or (when updating, `strict`) unknown leaves.

    Examples:
      >>> import jax.numpy as jnp, optax, jaxinit.recipes as jr
      >>> shapes = lambda w: {"hid": {"kernel": (w, w)}, "out": {"kernel": (w, 4)}}
      >>> tx = jr.scale_by_mup(jr.mup_plan(shapes(128), shapes(32)))
      >>> g = {"hid": {"kernel": jnp.ones((128, 128))}, "out": {"kernel": jnp.ones((128, 4))}}
      >>> updates, _ = tx.update(g, tx.init(g))
      >>> float(updates["hid"]["kernel"][0, 0])
      0.25

    References:
      Yang et al., `Tensor Programs V <https://arxiv.org/abs/2203.03466>`_, 2022 (Table 3).
    """
    import optax

    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd"))
    strict = check_flag("strict", strict)
    rows = list(plan)
    if not all(isinstance(r, MupRow) for r in rows):
        raise TypeError(f"`plan` must be the rows of `mup_plan`; got {plan!r}.")
    table = {r.path: r.adam_lr_mult if optimizer == "adam" else r.sgd_lr_mult for r in rows}

    def scale(tree: Any) -> Any:
        unknown: list[str] = []

        def one(keypath: tuple[Any, ...], u: Any) -> Any:
            path = _leaf_path(keypath)
            mult = _lookup(table, path)
            if mult is None:
                unknown.append(path)
                return u
            return u if mult == 1.0 else u * mult

        out = jax.tree_util.tree_map_with_path(one, tree)
        if strict and unknown:
            raise ValueError(
                f"scale_by_mup: {len(unknown)} leaf(s) not (unambiguously) in the muP plan: "
                f"{unknown}. Build the plan from the model being trained, or pass strict=False."
            )
        return out

    def init_fn(params: Any) -> Any:
        scale(params)  # fail early on a tree the plan does not describe
        return optax.EmptyState()

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        return scale(updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def mup_adam(plan: Sequence[MupRow], learning_rate: Any, **kwargs: Any) -> Any:
    """``optax.adamw(learning_rate, **kwargs)`` with muP's per-parameter learning rates.

    Args:
      plan: the rows of :func:`mup_plan`.
      learning_rate: the base model's learning rate (a float or an optax schedule).
      **kwargs: passed to ``optax.adamw`` (``weight_decay`` defaults to 0 here).

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> tx = jr.mup_adam(jr.mup_plan({"w": (64, 64)}, {"w": (16, 16)}), 1e-3)
      >>> type(tx).__name__
      'GradientTransformationExtraArgs'
    """
    import optax

    kwargs.setdefault("weight_decay", 0.0)
    return optax.chain(optax.adamw(learning_rate, **kwargs), scale_by_mup(plan, "adam"))


def mup_sgd(plan: Sequence[MupRow], learning_rate: Any, **kwargs: Any) -> Any:
    """``optax.sgd(learning_rate, **kwargs)`` with muP's per-parameter learning rates: as
    :func:`mup_adam`, with the `kwargs` (``momentum``, ``nesterov``) passed to ``optax.sgd``.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> tx = jr.mup_sgd(jr.mup_plan({"w": (64, 64)}, {"w": (16, 16)}), 0.1, momentum=0.9)
      >>> type(tx).__name__
      'GradientTransformationExtraArgs'
    """
    import optax

    return optax.chain(optax.sgd(learning_rate, **kwargs), scale_by_mup(plan, "sgd"))
