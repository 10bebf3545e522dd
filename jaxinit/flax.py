"""The Flax adapter (linen and NNX): rule-based, path-keyed, layer-aware, sharded re-init.

Importing this module imports Flax; the rest of jaxinit does not need it.

* :func:`reinit` re-initializes an ``nnx.Module`` (in place), linen ``params`` or an abstract
  model by ``(pattern, initializer)`` rules, in one jitted computation, each parameter straight
  into its sharding, with path-derived keys and the fans of its layer's real shape.
* :func:`plan` reports the same per-parameter decisions without computing anything.
* :func:`abstract` builds the abstract model for :func:`reinit` in time linear in its size.
* :func:`with_partitioning` is ``nnx.with_partitioning`` / ``nn.with_partitioning`` for
  jaxinit initializers: Flax's ``kernel_init`` path, each device drawing only its shard.
* :func:`path_key` / :func:`stable_hash`: the documented, stable per-parameter key derivation.
* :func:`linen_layers` finds the layers of a linen module (linen params do not say);
  :func:`own_axes` marks a rule's initializer to keep its own axes instead of its layer's,
  :func:`optional` a rule that a strict :func:`reinit` accepts matching nothing, and
  :func:`labelled` attaches a note that :func:`plan` rows and ``jaxinit report`` show.
* :func:`framework_rules` gives a whole model PyTorch's, Keras's, Haiku's or Flax's defaults.
* :func:`lsuv` (NNX, in place) and :func:`lsuv_linen` (linen params): data-dependent LSUV init.
* :func:`gated_orthogonal` and :func:`lstm_forget_bias` initialize fused recurrent cells.
"""

from jaxinit._src.flax.abstract import abstract as abstract
from jaxinit._src.flax.framework_rules import framework_rules as framework_rules
from jaxinit._src.flax.layers import LayerAxes as LayerAxes
from jaxinit._src.flax.layers import linen_layers as linen_layers
from jaxinit._src.flax.lsuv import lsuv as lsuv
from jaxinit._src.flax.lsuv_linen import lsuv_linen as lsuv_linen
from jaxinit._src.flax.partitioning import with_partitioning as with_partitioning
from jaxinit._src.flax.reinit import PlanRow as PlanRow
from jaxinit._src.flax.reinit import path_key as path_key
from jaxinit._src.flax.reinit import plan as plan
from jaxinit._src.flax.reinit import reinit as reinit
from jaxinit._src.flax.reinit import stable_hash as stable_hash
from jaxinit._src.flax.rules import RuleInit as RuleInit
from jaxinit._src.flax.rules import labelled as labelled
from jaxinit._src.flax.rules import optional as optional
from jaxinit._src.flax.rules import own_axes as own_axes
from jaxinit._src.schemes.recurrent import GatedOrthogonal as gated_orthogonal  # noqa: N813
from jaxinit._src.schemes.recurrent import LstmForgetBias as lstm_forget_bias  # noqa: N813

__all__ = [
    "LayerAxes",
    "PlanRow",
    "RuleInit",
    "abstract",
    "framework_rules",
    "gated_orthogonal",
    "labelled",
    "linen_layers",
    "lstm_forget_bias",
    "lsuv",
    "lsuv_linen",
    "optional",
    "own_axes",
    "path_key",
    "plan",
    "reinit",
    "stable_hash",
    "with_partitioning",
]
