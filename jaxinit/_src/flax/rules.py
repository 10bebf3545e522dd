"""The rules of `reinit` and `plan`: ``(pattern, initializer)`` pairs, checked and compiled.

A rule's pattern is ``re.search``-ed in each parameter path; the first rule that matches gives
the parameter its initializer (None: keep it). An initializer may be marked -- `own_axes` (keep
its own axes instead of its layer's), `optional` (a strict `reinit` accepts that it matches no
parameter), `labelled` (a note that `plan` rows and ``jaxinit report`` show) -- by wrapping it
in a `RuleInit`. Every malformed rule is refused here, naming it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from jaxinit._src.core.typing import Rule

_RULE_ERROR = (
    "`rules` must be a sequence of (pattern, initializer) pairs, the pattern a str or compiled "
    "regex and the initializer a callable, a registered name, a serialized dict or None (keep); "
    "got {what}."
)
_PATTERN_ERROR = (
    "rule {i}: the pattern {pattern!r} is not a valid regular expression ({error}); escape "
    "literal characters with re.escape."
)
_UNUSED_ERROR = (
    "{n} rule(s) match no parameter (strict=True): {rules}. A misspelled name? Fix the "
    "pattern, mark the initializer jaxinit.flax.optional(init) if the rule may match nothing, "
    "or pass strict=False."
)


@dataclasses.dataclass(frozen=True, repr=False)
class RuleInit:
    """A rule's initializer and how the rule applies (see :func:`own_axes`, :func:`optional`
    and :func:`labelled`). Called directly, it is `init`.

    Attributes:
      init: the initializer (or None: keep the parameter).
      own_axes: the initializer keeps its own axes instead of its parameter's layer's.
      optional: a strict `reinit` accepts that the rule matches no parameter.
      label: what the rule does to the parameters it takes, for `plan` rows and reports.
    """

    init: Any
    own_axes: bool = False
    optional: bool = False
    label: str = ""

    def __call__(self, key: Any, shape: Any, dtype: Any = None, out_sharding: Any = None) -> Any:
        return self.init(key, shape, dtype, out_sharding=out_sharding)

    def __repr__(self) -> str:  # as written: optional(own_axes(he_normal(...)))
        text = repr(self.init)
        text = f"labelled({text}, {self.label!r})" if self.label else text
        text = f"own_axes({text})" if self.own_axes else text
        return f"optional({text})" if self.optional else text


def _marked(init: Any) -> RuleInit:
    return init if isinstance(init, RuleInit) else RuleInit(init)


def own_axes(init: Any) -> RuleInit:
    """Marks a rule's initializer to keep its own axes instead of its layer's.

    By default `reinit` and `plan` give a variance scheme the real axes of the parameter's
    layer (``layer_axes=True``). A rule whose initializer is ``own_axes(init)`` keeps the axes
    `init` was built with -- e.g. to reproduce a framework that computes fans from the raw
    kernel shape, as Flax does for ``Einsum`` (see :func:`framework_rules`).

    Args:
      init: a jaxinit initializer, a name or dict for :func:`jaxinit.get`, any callable, or
        an already marked one (marks combine).

    Returns:
      A :class:`RuleInit` that rules accept in place of an initializer.

    Examples:
      >>> import jax, jaxinit, jaxinit.flax
      >>> from flax import nnx
      >>> layer = nnx.eval_shape(lambda: nnx.Einsum("btd,dnh->btnh", (64, 4, 16),
      ...                                           rngs=nnx.Rngs(0)))
      >>> rules = [("kernel", jaxinit.flax.own_axes(jaxinit.lecun_normal())), ("bias", None)]
      >>> [r.fan_in for r in jaxinit.flax.plan(layer, rules) if r.initializer]  # 4 * 64
      [256]
    """
    return dataclasses.replace(_marked(init), own_axes=True)


def optional(init: Any) -> RuleInit:
    """Marks a rule that may match no parameter: a strict `reinit` then does not refuse it.

    With ``strict=True`` (the default), `reinit` refuses a rule whose pattern matches no
    parameter path -- most often a misspelled name (``"kernal"``) that would otherwise let a
    later catch-all take the parameters it meant. Rules meant for many models (the presets of
    :func:`framework_rules`, the recipes' catch-alls) are optional.

    Args:
      init: as for :func:`own_axes`.

    Returns:
      A :class:`RuleInit`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit, jaxinit.flax
      >>> params = {"dense": {"kernel": jnp.ones((4, 4))}}
      >>> rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.flax.optional(jaxinit.zeros))]
      >>> sorted(jaxinit.flax.reinit(params, jax.random.key(0), rules)["dense"])
      ['kernel']
    """
    return dataclasses.replace(_marked(init), optional=True)


def labelled(init: Any, label: str) -> RuleInit:
    """Attaches a label to a rule: what it does to the parameters it takes.

    The label reaches every parameter the rule takes, as `PlanRow.label` of :func:`plan` and
    in ``jaxinit report``: the depth recipes label their depth-scaled rules (``"residual
    projection, L=12: std 0.02/sqrt(2L)"``) so that a report shows which parameters were
    treated as residual and with which depth.

    Args:
      init: as for :func:`own_axes`.
      label: a short text.

    Returns:
      A :class:`RuleInit`.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit, jaxinit.flax
      >>> params = {"out": {"kernel": jax.ShapeDtypeStruct((8, 8), jnp.float32)}}
      >>> rules = [("out", jaxinit.flax.labelled(jaxinit.zeros, "zero-init output"))]
      >>> [(r.path, r.label) for r in jaxinit.flax.plan(params, rules)]
      [('out/kernel', 'zero-init output')]
    """
    if not isinstance(label, str):
        raise TypeError(f"`label` must be a str; got {label!r}.")
    return dataclasses.replace(_marked(init), label=label)


@dataclasses.dataclass(frozen=True)
class Compiled:
    """One checked rule: its index, compiled pattern, initializer (None: keep), marks and
    label."""

    index: int
    pattern: re.Pattern[str]
    init: Any
    own_axes: bool
    optional: bool
    label: str = ""


def compile_rules(rules: Sequence[Rule]) -> list[Compiled]:
    """Every rule checked (type errors and bad regexes name the rule) and compiled; names and
    dicts are looked up in the registry."""
    from jaxinit._src.catalog import registry

    if isinstance(rules, str | bytes | Mapping) or not isinstance(rules, Sequence):
        raise TypeError(_RULE_ERROR.format(what=repr(rules)))
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, tuple | list) or len(rule) != 2:
            raise TypeError(_RULE_ERROR.format(what=f"the rule {rule!r}"))
        pattern, marked = rule
        if not isinstance(pattern, str | re.Pattern):
            raise TypeError(_RULE_ERROR.format(what=f"the pattern {pattern!r}"))
        mark = _marked(marked)
        init = mark.init
        if isinstance(init, str | Mapping):
            init = registry.get(init)
        elif init is not None and not callable(init):
            raise TypeError(_RULE_ERROR.format(what=f"the initializer {init!r}"))
        if isinstance(pattern, str):
            try:
                pattern = re.compile(pattern)
            except re.error as e:
                raise ValueError(_PATTERN_ERROR.format(i=i, pattern=pattern, error=e)) from None
        out.append(Compiled(i, pattern, init, mark.own_axes, mark.optional, mark.label))
    return out


def _names(pattern: re.Pattern[str], path: str) -> bool:
    """Whether `pattern` names the last key of `path` (its text holds that key)."""
    return path.rpartition("/")[2] in pattern.pattern


def match(rules: Sequence[Compiled], path: str, dtype: Any) -> tuple[bool, Compiled | None]:
    """Whether a rule matches `path`, and the first one that does. A parameter that is not a
    float or complex array (an int step count, a bool mask) is only taken by a rule that names
    it; otherwise it is kept, and counts as matched."""
    inexact = jnp.issubdtype(dtype, jnp.inexact)  # float8 and bfloat16 included
    for rule in rules:
        if rule.pattern.search(path) and (inexact or _names(rule.pattern, path)):
            return True, rule
    return not inexact, None


def check_used(rules: Sequence[Compiled], paths: Sequence[str]) -> None:
    """Refuses the rules (not marked optional) whose pattern matches none of `paths`."""
    unused = [r for r in rules if not r.optional and not any(r.pattern.search(p) for p in paths)]
    if unused:
        named = ", ".join(f"rule {r.index} ({r.pattern.pattern!r}, {r.init!r})" for r in unused)
        raise ValueError(_UNUSED_ERROR.format(n=len(unused), rules=named))
