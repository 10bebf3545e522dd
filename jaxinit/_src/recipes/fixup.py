"""Fixup initialization as rules for :func:`jaxinit.flax.reinit`: residual networks (ResNets)
trained without normalization.

Fixup zeroes the last layer of every residual branch and the classifier, and scales the
branches' other layers by depth. As the other recipes (depth.py), it returns
``(pattern, initializer)`` rules built without Flax, with its role patterns as keyword
arguments (patterns.py) and catch-alls unless ``catch_all=False``. T-Fixup, its transformer
counterpart, is in depth.py with the other transformer schemes.
"""

from __future__ import annotations

import re

from jaxinit._src.core.typing import Rule
from jaxinit._src.core.validation import check_choice
from jaxinit._src.flax.rules import labelled, optional
from jaxinit._src.recipes.patterns import (
    READOUT,
    WEIGHT,
    WEIGHT_LEAF,
    catch_all_rules,
    check_count,
    check_distribution,
    check_pattern,
)
from jaxinit._src.schemes import constant, variance

_CLASSIFIER = rf"{READOUT}|(?:^|/)fc/{WEIGHT_LEAF}$"  # torchvision ResNets call it `fc`


def fixup(
    n_branches: int,
    layers_per_branch: int = 2,
    *,
    mode: str = "fan_in",
    distribution: str = "normal",
    inner: str | re.Pattern[str] | None = None,
    last: str | re.Pattern[str] | None = None,
    classifier: str | re.Pattern[str] = _CLASSIFIER,
    catch_all: bool = True,
) -> list[Rule]:
    r"""Fixup: the last layer of every residual branch and the classifier zero, the branches'
    other layers He-initialized and scaled by :math:`L^{-1/(2m-2)}`.

    .. math::
       \operatorname{std}(w_\text{inner}) = \sqrt{\frac{2}{n}}\, L^{-\frac{1}{2m-2}}, \qquad
       w_\text{last} = w_\text{classifier} = 0, \qquad
       \operatorname{std}(w_\text{other}) = \sqrt{\frac{2}{n}}

    for :math:`L` residual branches of :math:`m` layers each, :math:`n` the fan chosen by
    `mode`. Fixup's scalar biases (``bias1a``, ...) are zero and its multipliers (``scale``) one
    through the catch-alls. The official ResNet code uses fan_out (``mode="fan_out"``); the same
    for square convolutions. Praxis's ``XavierWithFixupParams`` uses the exponent
    :math:`-1/(2m)` instead: a different convention.

    Args:
      n_branches: the number of residual branches :math:`L` (>= 1).
      layers_per_branch: the weight layers per branch :math:`m` (>= 2).
      mode: ``"fan_in"`` or ``"fan_out"`` (He).
      distribution: ``"normal"`` (He, untruncated), ``"truncated_normal"`` or ``"uniform"``.
      inner: the branches' layers but the last (default ``conv1`` ... ``conv{m-1}``).
      last: the branches' last layers (default ``conv{m}``).
      classifier: the final classifier (default: ``PATTERNS["readout"]`` or ``fc``).
      catch_all: append rules for biases (zeros) and norm scales / multipliers (ones).

    Returns:
      The rules: last layers, classifier, inner layers, every other weight, catch-alls.

    Raises:
      ValueError, TypeError: for a bad argument (the message names it).

    Examples:
      >>> import jaxinit.recipes as jr
      >>> rules = jr.fixup(16)  # 16 basic blocks: conv1 scaled by 16 ** (-1/2), conv2 zero
      >>> round(rules[2][1].init.scale, 6)  # 2 * L ** (-1 / (m - 1))
      0.125

    References:
      Zhang, Dauphin & Ma, `Fixup Initialization: Residual Learning Without Normalization
      <https://arxiv.org/abs/1901.09321>`_, 2019.
    """
    n = check_count("n_branches", n_branches)
    m = check_count("layers_per_branch", layers_per_branch, minimum=2)
    mode = check_choice("mode", mode, ("fan_in", "fan_out"))
    dist = check_distribution(distribution)
    if inner is None:
        inner = rf"(?:^|/)conv(?:{'|'.join(str(i) for i in range(1, m))})/{WEIGHT_LEAF}$"
    if last is None:
        last = rf"(?:^|/)conv{m}/{WEIGHT_LEAF}$"
    inner_init = variance.VarianceScaling(2.0 * n ** (-1 / (m - 1)), mode, dist)
    return [
        (check_pattern("last", last), labelled(constant.zeros, "last layer of a branch: 0")),
        (check_pattern("classifier", classifier), optional(constant.zeros)),
        (
            check_pattern("inner", inner),
            labelled(inner_init, f"inner layer, L={n}: He * L^(-1/{2 * (m - 1)})"),
        ),
        (WEIGHT, optional(variance.VarianceScaling(2.0, mode, dist))),
        *catch_all_rules(catch_all),
    ]
