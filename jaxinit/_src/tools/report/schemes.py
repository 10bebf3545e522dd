"""The initialization schemes of ``jaxinit report`` (``--scheme``): name -> rules, with the
one-line summaries that ``--help`` and the report print."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxinit._src.tools.report.environment import REFERENCE_MODEL, ReportError

DEFAULT_SCHEME = "gpt2"

#: A scheme's rules from the abstract model and (muP only) the abstract base-width model.
RulesFn = Callable[[Any, Any], Sequence[tuple[Any, Any]]]
_NORM, _BIAS, _EMBED, _KERNEL = (rf"(^|/){n}$" for n in ("scale", "bias", "embedding", "kernel"))


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A named initialization scheme of the report.

    Attributes:
      summary: what it draws, in one line.
      rules: (abstract model, abstract base model or None) -> ``(pattern, initializer)`` rules.
      bitwise: whether its values are the same bits on every mesh (the fingerprint's tier).
      needs_base: whether it needs a base-width model (muP: the reference model only).
    """

    summary: str
    rules: RulesFn
    bitwise: bool = True
    needs_base: bool = False


def _variance(kernel: str) -> RulesFn:
    """Kernels by the named jaxinit factory, embeddings N(0, 1/features), norms 1, biases 0."""

    def rules(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
        import jaxinit

        embed = jaxinit.variance_scaling(1.0, "fan_in", "normal")  # Embed: fan_in = features
        kernel_init = getattr(jaxinit, kernel)()
        return [(_NORM, jaxinit.ones), (_BIAS, jaxinit.zeros), (_EMBED, embed),
                (_KERNEL, kernel_init)]  # fmt: skip

    return rules


def depth(model: Any) -> int:
    """The number of blocks: residual output projections (attention and MLP) / 2, at least 1."""
    import jaxinit.flax
    import jaxinit.recipes

    pattern = re.compile(jaxinit.recipes.PATTERNS["residual"])
    paths = [row.path for row in jaxinit.flax.plan(model, [("", None)])]
    return max(1, sum(bool(pattern.search(p)) for p in paths) // 2)


def _gpt2(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
    import jaxinit.recipes

    return jaxinit.recipes.gpt2(depth(model))


def _mup(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
    import jaxinit.recipes

    return jaxinit.recipes.mup(model, base)


def _framework(name: str) -> RulesFn:
    def rules(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
        import jaxinit.flax

        return jaxinit.flax.framework_rules(name, model)

    return rules


SCHEMES: Mapping[str, Scheme] = {
    "gpt2": Scheme("N(0, 0.02), residual projections 0.02/sqrt(2L) (GPT-2, nanoGPT)", _gpt2),
    "lecun": Scheme("lecun_normal kernels, embeddings N(0, 1/d), norms 1",
                    _variance("lecun_normal")),
    "he": Scheme("he_normal kernels, embeddings N(0, 1/d), norms 1", _variance("he_normal")),
    "glorot": Scheme("glorot_normal kernels, embeddings N(0, 1/d), norms 1",
                     _variance("glorot_normal")),
    "orthogonal": Scheme("orthogonal kernels, embeddings N(0, 1/d), norms 1",
                         _variance("orthogonal"), bitwise=False),
    "mup": Scheme("muP vs the 4x narrower model (base: fan_in normal)", _mup, needs_base=True),
    "torch": Scheme("PyTorch's defaults (framework_rules)", _framework("torch")),
    "keras": Scheme("Keras's defaults (framework_rules)", _framework("keras")),
    "haiku": Scheme("Haiku's defaults (framework_rules)", _framework("haiku")),
    "flax": Scheme("Flax's defaults (framework_rules)", _framework("flax")),
}  # fmt: skip


def get_scheme(name: str, model_spec: str = REFERENCE_MODEL) -> Scheme:
    """The scheme called `name`, checked against the model, or `ReportError`."""
    if name not in SCHEMES:
        raise ReportError(
            f"`--scheme` must be one of {', '.join(map(repr, SCHEMES))}; got {name!r}."
        )
    scheme = SCHEMES[name]
    if scheme.needs_base and model_spec != REFERENCE_MODEL:
        raise ReportError(
            f"`--scheme {name}` needs a base-width model, which only the embedded reference "
            "model provides; choose another scheme for a `--model`."
        )
    return scheme
