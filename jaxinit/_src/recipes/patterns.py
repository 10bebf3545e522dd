"""The recipes' role patterns, and what every recipe uses to turn its arguments into rules.

A parameter's role (residual projection, query, readout, ...) is found by a regular expression
``re.search``-ed in its path; each recipe takes its roles as keyword arguments defaulting to
the patterns here (`PATTERNS`), which match common naming. The helpers check those arguments
(every error names the argument), scope a pattern to one stack of an encoder-decoder, and build
the rules and initializers the recipes share: the catch-alls (biases zero, norm scales one),
Xavier with a gain and the ``N(0, factor**2 / features)`` embedding.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any

from jaxinit._src.core.typing import DISTRIBUTIONS, Rule
from jaxinit._src.core.validation import check_choice, check_int, check_real
from jaxinit._src.flax.rules import optional
from jaxinit._src.schemes import constant, variance

# -- default role patterns -------------------------------------------------------------------------
#: The weight leaf: Flax ``kernel``, torch-port ``weight``, Haiku ``w``.
WEIGHT_LEAF = r"(?:kernel|weight|w)"
_ATTN = r"[^/]*(?i:attn|attention)[^/]*"  # attn, self_attn, SelfAttention, encoder_attn, ...
_MLP = r"[^/]*(?i:mlp|ffn|feed_?forward|densereludense)[^/]*"

QUERY = rf"(?:^|/)(?:q|query|q_proj|wq|to_q)/{WEIGHT_LEAF}$"
KEY = rf"(?:^|/)(?:k|key|k_proj|wk|to_k)/{WEIGHT_LEAF}$"
VALUE = rf"(?:^|/)(?:v|value|v_proj|wv|to_v)/{WEIGHT_LEAF}$"
# Attention outputs: GPT-2 c_proj, Llama o_proj, T5 o, NNX MultiHeadAttention and linen's
# MultiHeadDotProductAttention out, Gemma attn_vec_einsum, ...
ATTN_OUT = (
    rf"(?:^|/){_ATTN}/(?:o|out|o_proj|out_proj|c_proj|proj|wo|dense|attn_vec_einsum)"
    rf"/{WEIGHT_LEAF}$"
)
# MLP layers: GPT-2 c_fc/c_proj, Llama and Gemma gate/up/down_proj, T5 wi/wo, and the two Dense
# layers of Flax's lm1b and WMT ``MlpBlock`` (Dense_0 in, Dense_1 out).
MLP_IN = (
    rf"(?:^|/)(?:{_MLP}/(?:c_fc|fc1|fc_in|wi|wi_0|wi_1|up|up_proj|gate|gate_proj|w1|w3"
    rf"|dense_h_to_4h|Dense_0)|fc1|up|up_proj|gate_proj)/{WEIGHT_LEAF}$"
)
MLP_OUT = (
    rf"(?:^|/)(?:{_MLP}/(?:c_proj|fc2|fc_out|wo|down|down_proj|w2|dense_4h_to_h|Dense_1)"
    rf"|fc2|down|down_proj)/{WEIGHT_LEAF}$"
)
EMBEDDING = r"(?:^|/)(?:input_)?embedding$"  # Flax Embed; Gemma's Embedder.input_embedding
# Position tables: GPT-2 wpe, a pos_embed/position_embeddings layer's embedding, or a parameter
# named so (Flax's lm1b/WMT/ViT ``pos_embedding``).
POSITION = r"(?:^|/)(?:(?:wpe|[^/]*(?i:pos)[^/]*)/embedding|(?i:pos|position)_?(?i:embedding)s?)$"
READOUT = (
    rf"(?:^|/)(?:lm_head|head|readout|classifier|logits|logits_dense|output_layer|unembed)"
    rf"/{WEIGHT_LEAF}$"
)
WEIGHT = rf"(?:^|/)(?:{WEIGHT_LEAF}|(?:input_|pos_|position_)?embedding)$"
BIAS = r"(?:^|/)(?:bias|beta)[^/]*$"  # also Fixup's scalar biases (bias1a, ...)
NORM_SCALE = r"(?:^|/)(?:scale|gamma)$"
ENCODER = r"(?:^|/)[^/]*(?i:encoder)[^/]*/"
DECODER = r"(?:^|/)[^/]*(?i:decoder)[^/]*/"

#: The default role patterns, by name (read-only). Each is ``re.search``-ed in a parameter path.
PATTERNS: Mapping[str, str] = types.MappingProxyType(
    {
        "query": QUERY,
        "key": KEY,
        "value": VALUE,
        "attn_out": ATTN_OUT,
        "mlp_in": MLP_IN,
        "mlp_out": MLP_OUT,
        "residual": f"{ATTN_OUT}|{MLP_OUT}",
        "embedding": EMBEDDING,
        "position": POSITION,
        "readout": READOUT,
        "weight": WEIGHT,
        "bias": BIAS,
        "norm_scale": NORM_SCALE,
        "encoder": ENCODER,
        "decoder": DECODER,
    }
)
#: Query and key kernels (DeepNet and T-Fixup give them their own gain).
QK = f"{QUERY}|{KEY}"
#: The depth-scaled branch weights of DeepNet and T-Fixup: value, attention output and the MLP.
BRANCH = f"{VALUE}|{ATTN_OUT}|{MLP_IN}|{MLP_OUT}"


# -- argument checks -------------------------------------------------------------------------------
def check_count(arg: str, value: Any, minimum: int = 1) -> int:
    """A layer or branch count: an int >= `minimum`."""
    return check_int(arg, value, minimum=minimum)


def check_positive(arg: str, value: Any) -> float:
    """A concrete real > 0, as a float."""
    return float(check_real(arg, value, positive=True))


def check_flag(arg: str, value: Any) -> bool:
    """True or False (no other truthy value)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{arg}` must be True or False; got {value!r}.")
    return value


def check_pattern(arg: str, value: Any) -> str:
    """A role pattern as a regex string (compiled patterns must carry their flags inline)."""
    if isinstance(value, re.Pattern):
        if value.flags & ~re.UNICODE:
            raise ValueError(
                f"`{arg}`: a compiled pattern's flags are lost when recipes combine patterns; "
                f"write them inline, e.g. '(?i:...)'. Got {value!r}."
            )
        value = value.pattern
    if not isinstance(value, str):
        raise TypeError(f"`{arg}` must be a regex string or compiled pattern; got {value!r}.")
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"`{arg}` is not a valid regular expression ({e}): {value!r}.") from e
    return value


def check_distribution(value: Any) -> str:
    """The `distribution` argument: one of ``DISTRIBUTIONS``."""
    return check_choice("distribution", value, DISTRIBUTIONS)


# -- building blocks -------------------------------------------------------------------------------
def within(scope: str, pattern: str) -> str:
    """Matches paths that `scope` and `pattern` both ``re.search``."""
    return f"^(?=.*?(?:{scope}))(?=.*?(?:{pattern}))"


def catch_all_rules(flag: Any) -> list[Rule]:
    """Biases zero and norm scales one, when `flag` (the `catch_all` argument); optional rules
    (a strict `reinit` accepts a model without biases)."""
    if not check_flag("catch_all", flag):
        return []
    return [(BIAS, optional(constant.zeros)), (NORM_SCALE, optional(constant.ones))]


def xavier(gain: float, distribution: str) -> Any:
    """Glorot/Xavier with a gain: variance ``gain**2 / fan_avg``."""
    return variance.VarianceScaling(gain**2, "fan_avg", distribution)


def embedding_init(factor: float) -> Any:
    """``N(0, factor**2 / features)`` on an ``(num_embeddings, features)`` table."""
    return variance.VarianceScaling(factor**2, "fan_in", "normal", in_axis=-1, out_axis=-2)
