"""Depth and width scaling schemes as rules for :func:`jaxinit.flax.reinit`.

Each recipe returns ``(pattern, initializer)`` rules -- plain data, built without Flax -- whose
role patterns are keyword arguments with defaults for common naming (`PATTERNS`: ``q/k/v/o``,
``q_proj``..., ``c_attn/c_proj/c_fc``, ``up/down``, ``fc1/fc2``, ``out_proj``, ``lm_head``...):

* :func:`gpt2` -- N(0, 0.02), residual projections 0.02/sqrt(2L) (Radford et al. 2019).
* :func:`t5` -- fan_in scaling, 1/sqrt(head_dim) folded into the query (Raffel et al. 2020).
* :func:`deepnet` with :func:`deepnet_alpha` / :func:`deepnet_beta` -- DeepNorm (Wang et al.
  2022), decoder-only, encoder-only and encoder-decoder.
* :func:`fixup` (Zhang et al. 2019) and :func:`t_fixup` (Huang et al. 2020).
* :func:`mup` / :func:`mup_plan` -- muP relative to a base-width model (Yang et al. 2022), with
  each parameter's init std and learning-rate multipliers exported, and the optax side:
  :func:`scale_by_mup`, :func:`mup_adam`, :func:`mup_sgd`.

Examples:
  >>> import jax, jaxinit.flax, jaxinit.recipes as jr
  >>> from flax import nnx
  >>> model = nnx.Sequential(nnx.Linear(64, 256, rngs=nnx.Rngs(0)), nnx.relu,
  ...                        nnx.Linear(256, 64, rngs=nnx.Rngs(0)))
  >>> rules = jr.gpt2(n_layers=8, residual=r"layers/2/kernel")
  >>> model = jaxinit.flax.reinit(model, jax.random.key(0), rules)
  >>> round(float(model.layers[2].kernel[...].std()), 4)  # 0.02 / sqrt(16)
  0.005
"""

from jaxinit._src.core.typing import Rule as Rule
from jaxinit._src.recipes.depth import deepnet as deepnet
from jaxinit._src.recipes.depth import deepnet_alpha as deepnet_alpha
from jaxinit._src.recipes.depth import deepnet_beta as deepnet_beta
from jaxinit._src.recipes.depth import gpt2 as gpt2
from jaxinit._src.recipes.depth import t5 as t5
from jaxinit._src.recipes.depth import t_fixup as t_fixup
from jaxinit._src.recipes.fixup import fixup as fixup
from jaxinit._src.recipes.mup import ROLES as ROLES
from jaxinit._src.recipes.mup import MupRow as MupRow
from jaxinit._src.recipes.mup import mup as mup
from jaxinit._src.recipes.mup import mup_plan as mup_plan
from jaxinit._src.recipes.mup_optax import mup_adam as mup_adam
from jaxinit._src.recipes.mup_optax import mup_sgd as mup_sgd
from jaxinit._src.recipes.mup_optax import scale_by_mup as scale_by_mup
from jaxinit._src.recipes.patterns import PATTERNS as PATTERNS

__all__ = [
    "PATTERNS",
    "ROLES",
    "MupRow",
    "Rule",
    "deepnet",
    "deepnet_alpha",
    "deepnet_beta",
    "fixup",
    "gpt2",
    "mup",
    "mup_adam",
    "mup_plan",
    "mup_sgd",
    "scale_by_mup",
    "t5",
    "t_fixup",
]
