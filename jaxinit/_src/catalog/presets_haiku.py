"""Haiku's defaults by name (``haiku.*``): the presets' conventions are presets.py's.

Examples:
  >>> import jaxinit
  >>> jaxinit.get("haiku.embed.embeddings") == jaxinit.truncated_normal(1.0)
  True
"""

from __future__ import annotations

from jaxinit._src.catalog.registry import register
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.samplers import TRUNC_STD_2
from jaxinit._src.core.typing import DTypeLike
from jaxinit._src.schemes.elementwise import TruncatedNormal
from jaxinit._src.schemes.variance import VarianceScaling


@register("haiku.linear.w", "haiku.conv.w")
def haiku_w(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Haiku ``Linear`` / ``ConvND`` weight: ``TruncatedNormal(1 / sqrt(fan_in))``.

    Haiku's ``stddev`` is the std *before* truncation at 2 std and it does not correct for the
    truncation, so the actual std is ``0.8796 / sqrt(fan_in)``. As a variance scheme (so that it
    takes a layer's fans) that is ``variance_scaling(0.8796**2, "fan_in", "truncated_normal")``,
    whose correction by 0.8796 cancels:

    .. math:: w = \frac{z}{\sqrt{\text{fan\_in}}},\quad z \sim \mathcal{N}(0, 1)
              \text{ truncated to } (-2, 2)

    fan_in is ``in`` for a dense kernel and ``prod(w_shape[:-1])`` for a conv kernel.

    References:
      Source: Haiku, ``haiku/_src/basic.py`` (``Linear.__call__``) and ``haiku/_src/conv.py``
      (``ConvND.__call__``).
    """
    return VarianceScaling(TRUNC_STD_2**2, "fan_in", "truncated_normal", dtype=dtype)


@register("haiku.embed.embeddings")
def haiku_embed(*, dtype: DTypeLike | None = None) -> BaseInitializer:
    r"""Haiku ``Embed`` embeddings: ``TruncatedNormal()`` (stddev 1 before truncation).

    .. math:: w \sim \mathcal{N}(0, 1) \text{ truncated to } (-2, 2),\quad
              \operatorname{std}(w) = 0.8796

    References:
      Source: Haiku, ``haiku/_src/embed.py``, ``Embed.__init__``.
    """
    return TruncatedNormal(1.0, dtype)
