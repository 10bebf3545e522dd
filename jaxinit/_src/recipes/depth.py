"""Depth-scaled initialization schemes as rules for :func:`jaxinit.flax.reinit`.

Each recipe is a pure function returning ``(pattern, initializer)`` rules -- plain data, built
without Flax. A parameter's role (residual projection, query, readout, ...) is found by a
regular expression searched in its path; every role is a keyword argument whose default matches
common naming (`PATTERNS`). Rules end with catch-alls -- biases zero, norm scales one -- unless
``catch_all=False``. muP, which also needs shapes, builds on these patterns in mup.py.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Mapping
from typing import Any

from jaxinit._src.core.typing import DISTRIBUTIONS, Rule
from jaxinit._src.core.validation import check_choice, check_int, check_real
from jaxinit._src.schemes import constant, elementwise, variance

#: One rule: a regular expression (searched in the parameter path) and an initializer.

# -- default role patterns -------------------------------------------------------------------------
_W = r"(?:kernel|weight|w)"  # the weight leaf: Flax `kernel`, torch-port `weight`, Haiku `w`
_ATTN = r"[^/]*(?i:attn|attention)[^/]*"  # attn, self_attn, SelfAttention, encoder_attn, ...
_MLP = r"[^/]*(?i:mlp|ffn|feed_?forward|densereludense)[^/]*"

QUERY = rf"(?:^|/)(?:q|query|q_proj|wq|to_q)/{_W}$"
KEY = rf"(?:^|/)(?:k|key|k_proj|wk|to_k)/{_W}$"
VALUE = rf"(?:^|/)(?:v|value|v_proj|wv|to_v)/{_W}$"
ATTN_OUT = rf"(?:^|/){_ATTN}/(?:o|out|o_proj|out_proj|c_proj|proj|wo|dense)/{_W}$"
MLP_IN = (
    rf"(?:^|/)(?:{_MLP}/(?:c_fc|fc1|fc_in|wi|wi_0|wi_1|up|up_proj|gate|gate_proj|w1|w3"
    rf"|dense_h_to_4h)|fc1|up|up_proj|gate_proj)/{_W}$"
)
MLP_OUT = (
    rf"(?:^|/)(?:{_MLP}/(?:c_proj|fc2|fc_out|wo|down|down_proj|w2|dense_4h_to_h)"
    rf"|fc2|down|down_proj)/{_W}$"
)
EMBEDDING = r"(?:^|/)embedding$"
POSITION = r"(?:^|/)(?:wpe|[^/]*(?i:pos)[^/]*)/embedding$"
READOUT = (
    rf"(?:^|/)(?:lm_head|head|readout|classifier|logits|logits_dense|output_layer|unembed)"
    rf"/{_W}$"
)
WEIGHT = rf"(?:^|/)(?:{_W}|embedding)$"
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
_QK = f"{QUERY}|{KEY}"
_BRANCH = f"{VALUE}|{ATTN_OUT}|{MLP_IN}|{MLP_OUT}"  # DeepNet / T-Fixup: v, out and the MLP
_CLASSIFIER = rf"{READOUT}|(?:^|/)fc/{_W}$"  # torchvision ResNets call it `fc`

_LAYERS_ERROR = (
    "pass `n_layers` (encoder-only or decoder-only) or both `encoder_layers` and "
    "`decoder_layers` (encoder-decoder); got n_layers={n!r}, encoder_layers={e!r}, "
    "decoder_layers={d!r}."
)
_STACKS_ERROR = (
    "pass `encoder_layers`, `decoder_layers` or both; got encoder_layers={e!r}, "
    "decoder_layers={d!r}."
)


# -- validation and building blocks ----------------------------------------------------------------
def _count(arg: str, value: Any, minimum: int = 1) -> int:
    return check_int(arg, value, minimum=minimum)


def _positive(arg: str, value: Any) -> float:
    return float(check_real(arg, value, positive=True))


def _flag(arg: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{arg}` must be True or False; got {value!r}.")
    return value


def _pattern(arg: str, value: Any) -> str:
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


def _within(scope: str, pattern: str) -> str:
    """Matches paths that `scope` and `pattern` both ``re.search``."""
    return f"^(?=.*?(?:{scope}))(?=.*?(?:{pattern}))"


def _catch_all(flag: Any) -> list[Rule]:
    """Biases zero and norm scales one, when `flag`."""
    return [(BIAS, constant.zeros), (NORM_SCALE, constant.ones)] if _flag("catch_all", flag) else []


def _xavier(gain: float, distribution: str) -> Any:
    """Glorot/Xavier with a gain: variance ``gain**2 / fan_avg``."""
    return variance.VarianceScaling(gain**2, "fan_avg", distribution)


def _embedding(factor: float) -> Any:
    """``N(0, factor**2 / features)`` on an ``(num_embeddings, features)`` table."""
    return variance.VarianceScaling(factor**2, "fan_in", "normal", in_axis=-1, out_axis=-2)


def _distribution(value: Any) -> str:
    return check_choice("distribution", value, DISTRIBUTIONS)


# -- GPT-2 -----------------------------------------------------------------------------------------
def gpt2(
    n_layers: int,
    *,
    std: float = 0.02,
    position_std: float | None = None,
    residual: str | re.Pattern[str] = PATTERNS["residual"],
    position: str | re.Pattern[str] = POSITION,
    catch_all: bool = True,
) -> list[Rule]:
    r"""GPT-2 / nanoGPT: every weight :math:`\mathcal{N}(0, 0.02^2)`, residual projections scaled
    by :math:`1/\sqrt{2L}`.

    .. math::
       w \sim \mathcal{N}(0, \text{std}^2), \qquad
       w_\text{residual} \sim \mathcal{N}\!\left(0, \frac{\text{std}^2}{2L}\right)

    Each of the :math:`2L` residual branches (attention and MLP of every block) adds to the
    residual stream through its output projection; scaling those by :math:`1/\sqrt{2L}` keeps the
    stream's variance at init independent of the depth :math:`L`. Embeddings (token and
    position) get ``std`` too, as in nanoGPT; the original GPT-2 code used 0.01 for position
    embeddings (``position_std=0.01``).

    Args:
      n_layers: the number of transformer blocks :math:`L` (>= 1).
      std: the std of every weight (> 0).
      position_std: the std of position embeddings (paths matching `position`); default `std`.
      residual: the residual output projections (default: ``PATTERNS["residual"]``, e.g.
        ``attn/c_proj``, ``mlp/c_proj``, ``self_attn/o_proj``, ``mlp/down_proj``, ``attn/out``).
      position: the position embeddings (default ``POSITION``: ``wpe``, ``pos_embed``, ...).
      catch_all: append rules for biases (zeros) and norm scales (ones).

    Returns:
      The rules: residual projections, (position embeddings,) every other weight or embedding,
      then the catch-alls.

    Raises:
      ValueError, TypeError: for a bad argument (the message names it).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.flax, jaxinit.recipes as jr
      >>> s = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
      >>> params = {"h": {"0": {"attn": {"c_attn": {"kernel": s(64, 192)},
      ...                                "c_proj": {"kernel": s(64, 64), "bias": s(64)}},
      ...                       "ln_1": {"scale": s(64)}}}}
      >>> [(r.path, round(r.std, 5)) for r in jaxinit.flax.plan(params, jr.gpt2(12))]
      [('h/0/attn/c_attn/kernel', 0.02), ('h/0/attn/c_proj/bias', 0.0),
       ('h/0/attn/c_proj/kernel', 0.00408), ('h/0/ln_1/scale', 0.0)]

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, `Language Models are Unsupervised Multitask
      Learners <https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf>`_,
      2019 (Section 2.3); Karpathy, `nanoGPT <https://github.com/karpathy/nanoGPT>`_.
    """
    n = _count("n_layers", n_layers)
    std = _positive("std", std)
    residual, position = _pattern("residual", residual), _pattern("position", position)
    rules: list[Rule] = [(residual, elementwise.Normal(std / math.sqrt(2 * n)))]
    if position_std is not None:
        rules.append((position, elementwise.Normal(_positive("position_std", position_std))))
    rules.append((WEIGHT, elementwise.Normal(std)))
    return rules + _catch_all(catch_all)


# -- T5 --------------------------------------------------------------------------------------------
def t5(
    head_dim: int,
    *,
    factor: float = 1.0,
    distribution: str = "normal",
    query: str | re.Pattern[str] = QUERY,
    embedding: str | re.Pattern[str] = EMBEDDING,
    catch_all: bool = True,
) -> list[Rule]:
    r"""T5 / Mesh TensorFlow: fan_in scaling, with the attention's :math:`1/\sqrt{d_\text{head}}`
    folded into the query's init (T5 does not scale the attention logits).

    .. math::
       \operatorname{std}(w_q) = \frac{\text{factor}}{\sqrt{d_\text{model}\, d_\text{head}}},
       \quad \operatorname{std}(w) = \frac{\text{factor}}{\sqrt{\text{fan\_in}}}, \quad
       \operatorname{std}(\text{embedding}) = \text{factor}

    so k and v get :math:`d_\text{model}^{-1/2}`, the attention output
    :math:`(n_\text{heads} d_\text{head})^{-1/2}`, the MLP ``wi`` :math:`d_\text{model}^{-1/2}` and
    ``wo`` :math:`d_\text{ff}^{-1/2}` (Hugging Face's ``T5PreTrainedModel._init_weights``;
    ``factor`` is its ``initializer_factor``). fan_in is the layer's input size: multi-head
    kernels ``(d_model, heads, head_dim)`` need the layer's axes, which :func:`jaxinit.flax.reinit`
    knows for NNX layers and for linen through ``layers=jaxinit.flax.linen_layers(...)``.

    Args:
      head_dim: the per-head query/key size :math:`d_\text{head}` (>= 1).
      factor: a std multiplier for everything (> 0).
      distribution: ``"normal"`` (T5, Hugging Face), ``"truncated_normal"`` or ``"uniform"``.
      query: the query kernels (default ``QUERY``: ``q``, ``query``, ``q_proj``, ...).
      embedding: token embeddings (default ``EMBEDDING``: any ``.../embedding``).
      catch_all: append rules for biases (zeros) and norm scales (ones).

    Returns:
      The rules: query, embeddings, every other weight, then the catch-alls.

    Raises:
      ValueError, TypeError: for a bad argument (the message names it).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.flax, jaxinit.recipes as jr
      >>> from flax import nnx
      >>> attn = nnx.eval_shape(lambda: nnx.MultiHeadAttention(8, 512, qkv_features=512,
      ...                                                      rngs=nnx.Rngs(0)))
      >>> rows = jaxinit.flax.plan(attn, jr.t5(head_dim=64))
      >>> [(r.path, round(r.std * (512 * 64) ** 0.5, 3)) for r in rows if "query/k" in r.path]
      [('query/kernel', 1.0)]

    References:
      Raffel et al., `Exploring the Limits of Transfer Learning with a Unified Text-to-Text
      Transformer <https://arxiv.org/abs/1910.10683>`_, 2020; Shazeer et al., `Mesh-TensorFlow:
      Deep Learning for Supercomputers <https://arxiv.org/abs/1811.02084>`_, 2018.
    """
    d = _count("head_dim", head_dim)
    factor = _positive("factor", factor)
    dist = _distribution(distribution)
    return [
        (_pattern("query", query), variance.VarianceScaling(factor**2 / d, "fan_in", dist)),
        (_pattern("embedding", embedding), elementwise.Normal(factor)),
        (WEIGHT, variance.VarianceScaling(factor**2, "fan_in", dist)),
        *_catch_all(catch_all),
    ]


# -- DeepNet ---------------------------------------------------------------------------------------
def _deepnet_constants(
    n_layers: Any, encoder_layers: Any, decoder_layers: Any
) -> dict[str, tuple[float, float]]:
    """``{stack: (alpha, beta)}``; the stack is ``""`` for a single (encoder- or decoder-only)
    stack, else ``"encoder"`` and ``"decoder"``."""
    if n_layers is not None:
        if encoder_layers is not None or decoder_layers is not None:
            raise ValueError(_LAYERS_ERROR.format(n=n_layers, e=encoder_layers, d=decoder_layers))
        n = _count("n_layers", n_layers)
        return {"": ((2 * n) ** 0.25, (8 * n) ** -0.25)}
    if encoder_layers is None or decoder_layers is None:
        raise ValueError(_LAYERS_ERROR.format(n=n_layers, e=encoder_layers, d=decoder_layers))
    n, m = _count("encoder_layers", encoder_layers), _count("decoder_layers", decoder_layers)
    enc = (0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16))
    return {"encoder": enc, "decoder": ((3 * m) ** 0.25, (12 * m) ** -0.25)}


def _per_stack(constants: dict[str, tuple[float, float]], which: int) -> Any:
    values = {k: v[which] for k, v in constants.items()}
    return values[""] if "" in values else (values["encoder"], values["decoder"])


def deepnet_alpha(
    n_layers: int | None = None,
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
) -> Any:
    r"""DeepNorm's residual multiplier :math:`\alpha`: the model computes
    ``LayerNorm(alpha * x + f(x))`` in each sub-layer (post-LN). The init is :func:`deepnet`.

    ===================  ================================  =================================
    architecture         :math:`\alpha`                     :math:`\beta` (:func:`deepnet_beta`)
    ===================  ================================  =================================
    encoder-/decoder-    :math:`(2N)^{1/4}`                 :math:`(8N)^{-1/4}`
    only, N layers
    encoder (N) of an    :math:`0.81 (N^4 M)^{1/16}`        :math:`0.87 (N^4 M)^{-1/16}`
    encoder-decoder
    decoder (M) of an    :math:`(3M)^{1/4}`                 :math:`(12M)^{-1/4}`
    encoder-decoder
    ===================  ================================  =================================

    Args:
      n_layers: the layers :math:`N` of an encoder-only or decoder-only model; or
      encoder_layers: :math:`N` and
      decoder_layers: :math:`M` of an encoder-decoder model (both).

    Returns:
      A float for one stack; ``(encoder_alpha, decoder_alpha)`` for an encoder-decoder.

    Raises:
      ValueError, TypeError: for a bad or inconsistent combination of layer counts.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> round(jr.deepnet_alpha(8), 4)  # (2 * 8) ** (1 / 4)
      2.0
      >>> [round(a, 4) for a in jr.deepnet_alpha(encoder_layers=6, decoder_layers=6)]
      [1.4179, 2.0598]

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei, `DeepNet: Scaling Transformers to 1,000 Layers
      <https://arxiv.org/abs/2203.00555>`_, 2022 (Table 1 / Figure 2).
    """
    return _per_stack(_deepnet_constants(n_layers, encoder_layers, decoder_layers), 0)


def deepnet_beta(
    n_layers: int | None = None,
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
) -> Any:
    r"""DeepNorm's init gain :math:`\beta` (see the table in :func:`deepnet_alpha`).

    Args:
      n_layers: the layers :math:`N` of an encoder-only or decoder-only model; or
      encoder_layers: :math:`N` and
      decoder_layers: :math:`M` of an encoder-decoder model (both).

    Returns:
      A float for one stack; ``(encoder_beta, decoder_beta)`` for an encoder-decoder.

    Raises:
      ValueError, TypeError: for a bad or inconsistent combination of layer counts.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> round(jr.deepnet_beta(2), 4)  # (8 * 2) ** (-1 / 4)
      0.5

    References:
      Wang et al., `DeepNet: Scaling Transformers to 1,000 Layers
      <https://arxiv.org/abs/2203.00555>`_, 2022.
    """
    return _per_stack(_deepnet_constants(n_layers, encoder_layers, decoder_layers), 1)


def deepnet(
    n_layers: int | None = None,
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
    distribution: str = "normal",
    qk: str | re.Pattern[str] = _QK,
    scaled: str | re.Pattern[str] = _BRANCH,
    embedding: str | re.Pattern[str] = EMBEDDING,
    encoder: str | re.Pattern[str] = ENCODER,
    decoder: str | re.Pattern[str] = DECODER,
    catch_all: bool = True,
) -> list[Rule]:
    r"""DeepNet (DeepNorm) init: Xavier with gain :math:`\beta` on the value, attention-output and
    MLP weights, gain 1 on query and key.

    .. math::
       \operatorname{std}(w) = \beta \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}
       \ (\text{v, out, MLP}), \qquad
       \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}\ (\text{q, k, other weights})

    with :math:`\beta` from :func:`deepnet_beta`; the model must also multiply its residual by
    :math:`\alpha` (:func:`deepnet_alpha`). Embeddings get
    :math:`\mathcal{N}(0, 1/d)` (fairseq/torchscale). For an encoder-decoder, paths matching
    `decoder` get the decoder's :math:`\beta` (checked first, so a decoder's ``encoder_attn`` is
    the decoder's), then paths matching `encoder` the encoder's. The paper's pseudocode uses
    Xavier normal; torchscale rescales its Xavier-uniform init. torchscale's encoder-decoder
    encoder divides by :math:`(N^4M)^{1/16}/1.15`, i.e. :math:`\beta = 1.15 (N^4M)^{-1/16}`,
    where the paper's Table 1 has :math:`0.87 = 1/1.15`; this follows the paper. A fused qkv
    kernel (GPT-2 ``c_attn``) cannot be split by a rule: it gets gain 1.

    Args:
      n_layers: the layers :math:`N` of an encoder-only or decoder-only model; or
      encoder_layers: :math:`N` and
      decoder_layers: :math:`M` of an encoder-decoder model (both).
      distribution: ``"normal"`` (the paper), ``"uniform"`` (torchscale) or
        ``"truncated_normal"``.
      qk: query and key kernels (gain 1).
      scaled: the weights with gain :math:`\beta` (default: value, attention output, MLP).
      embedding: token embeddings.
      encoder: the encoder's parameters (encoder-decoder only).
      decoder: the decoder's parameters (encoder-decoder only).
      catch_all: append rules for biases (zeros) and norm scales (ones).

    Returns:
      The rules.

    Raises:
      ValueError, TypeError: for a bad argument (the message names it).

    Examples:
      >>> import jaxinit.recipes as jr
      >>> rules = jr.deepnet(2)
      >>> rules[1][1].scale == jr.deepnet_beta(2) ** 2  # variance scale of v, out, MLP
      True

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei, `DeepNet: Scaling Transformers to 1,000 Layers
      <https://arxiv.org/abs/2203.00555>`_, 2022.
    """
    constants = _deepnet_constants(n_layers, encoder_layers, decoder_layers)
    dist = _distribution(distribution)
    qk, scaled = _pattern("qk", qk), _pattern("scaled", scaled)
    scopes = {
        "": "",
        "decoder": _pattern("decoder", decoder),
        "encoder": _pattern("encoder", encoder),
    }
    rules: list[Rule] = []
    for stack in ("", "decoder", "encoder"):
        if stack in constants:
            beta = constants[stack][1]
            scope = scopes[stack]
            rules.append((_within(scope, qk) if scope else qk, _xavier(1.0, dist)))
            rules.append((_within(scope, scaled) if scope else scaled, _xavier(beta, dist)))
    rules.append((_pattern("embedding", embedding), _embedding(1.0)))
    rules.append((WEIGHT, _xavier(1.0, dist)))
    return rules + _catch_all(catch_all)


# -- Fixup and T-Fixup -----------------------------------------------------------------------------
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
      >>> round(rules[2][1].scale, 6)  # 2 * L ** (-1 / (m - 1))
      0.125

    References:
      Zhang, Dauphin & Ma, `Fixup Initialization: Residual Learning Without Normalization
      <https://arxiv.org/abs/1901.09321>`_, 2019.
    """
    n = _count("n_branches", n_branches)
    m = _count("layers_per_branch", layers_per_branch, minimum=2)
    mode = check_choice("mode", mode, ("fan_in", "fan_out"))
    dist = _distribution(distribution)
    if inner is None:
        inner = rf"(?:^|/)conv(?:{'|'.join(str(i) for i in range(1, m))})/{_W}$"
    if last is None:
        last = rf"(?:^|/)conv{m}/{_W}$"
    return [
        (_pattern("last", last), constant.zeros),
        (_pattern("classifier", classifier), constant.zeros),
        (_pattern("inner", inner), variance.VarianceScaling(2.0 * n ** (-1 / (m - 1)), mode, dist)),
        (WEIGHT, variance.VarianceScaling(2.0, mode, dist)),
        *_catch_all(catch_all),
    ]


def t_fixup(
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
    distribution: str = "uniform",
    qk_gain: float = 2**-0.5,
    qk: str | re.Pattern[str] = _QK,
    scaled: str | re.Pattern[str] = _BRANCH,
    embedding: str | re.Pattern[str] = EMBEDDING,
    encoder: str | re.Pattern[str] = ENCODER,
    decoder: str | re.Pattern[str] = DECODER,
    catch_all: bool = True,
) -> list[Rule]:
    r"""T-Fixup: Xavier init with the value, attention-output and MLP weights and the embeddings
    scaled by depth, for transformers trained without warmup or layer norm.

    .. math::
       \text{encoder (N layers)}: \ \operatorname{std}(w_\text{v,out,MLP}) =
       0.67 N^{-1/4} \sqrt{\tfrac{2}{\text{fan\_in} + \text{fan\_out}}}, \qquad
       \text{decoder (M layers)}: \ (9M)^{-1/4} \sqrt{\tfrac{2}{\text{fan\_in} + \text{fan\_out}}}

    Embeddings: :math:`\mathcal{N}(0, 1/d)` times :math:`(9N)^{-1/4}` in the encoder and
    :math:`(9M)^{-1/4}` in the decoder (a shared one gets the encoder's, as the reference code).
    Query and key: Xavier with gain `qk_gain` (fairseq's :math:`1/\sqrt{2}`); other weights Xavier
    with gain 1. This is the reference implementation: Xavier uniform, and its value weights
    multiplied by :math:`\sqrt{2}` to undo fairseq's :math:`1/\sqrt{2}` gain, so value weights end
    like the others. Decoder paths (`decoder`, checked first, so cross-attention is the
    decoder's) and encoder paths (`encoder`) are told apart for an encoder-decoder; with one
    stack everything is that stack's.

    Args:
      encoder_layers: the encoder layers :math:`N`;
      decoder_layers: the decoder layers :math:`M` (one or both).
      distribution: ``"uniform"`` (reference code), ``"normal"`` or ``"truncated_normal"``.
      qk_gain: the Xavier gain of query and key kernels (> 0).
      qk: query and key kernels.
      scaled: the depth-scaled weights (default: value, attention output, MLP).
      embedding: token embeddings.
      encoder: the encoder's parameters (encoder-decoder only).
      decoder: the decoder's parameters (encoder-decoder only).
      catch_all: append rules for biases (zeros) and norm scales (ones).

    Returns:
      The rules.

    Raises:
      ValueError, TypeError: for a bad argument (the message names it).

    Examples:
      >>> import jaxinit.recipes as jr
      >>> rules = jr.t_fixup(encoder_layers=6, decoder_layers=6)
      >>> round(rules[1][1].scale ** 0.5, 4)  # decoder v/out/MLP gain (9 * 6) ** (-1/4)
      0.3689

    References:
      Huang, Perez, Ba & Volkovs, `Improving Transformer Optimization Through Better
      Initialization <https://proceedings.mlr.press/v119/huang20f.html>`_, ICML 2020.
    """
    if encoder_layers is None and decoder_layers is None:
        raise ValueError(_STACKS_ERROR.format(e=encoder_layers, d=decoder_layers))
    dist = _distribution(distribution)
    qk_gain = _positive("qk_gain", qk_gain)
    qk, scaled = _pattern("qk", qk), _pattern("scaled", scaled)
    embedding = _pattern("embedding", embedding)
    stacks: dict[str, tuple[float, float]] = {}  # stack -> (branch gain, embedding factor)
    if decoder_layers is not None:
        m = _count("decoder_layers", decoder_layers)
        stacks["decoder"] = ((9 * m) ** -0.25, (9 * m) ** -0.25)
    if encoder_layers is not None:
        n = _count("encoder_layers", encoder_layers)
        stacks["encoder"] = (0.67 * n**-0.25, (9 * n) ** -0.25)
    both = len(stacks) == 2
    scopes = {"decoder": _pattern("decoder", decoder), "encoder": _pattern("encoder", encoder)}
    rules: list[Rule] = []
    for stack, (gain, emb) in stacks.items():
        scope = scopes[stack] if both else ""
        for pattern, init in ((qk, _xavier(qk_gain, dist)), (scaled, _xavier(gain, dist)),
                              (embedding, _embedding(emb))):  # fmt: skip
            rules.append((_within(scope, pattern) if scope else pattern, init))
    shared = "encoder" if "encoder" in stacks else "decoder"  # a shared table: the encoder's
    rules.append((embedding, _embedding(stacks[shared][1])))
    rules.append((WEIGHT, _xavier(1.0, dist)))
    return rules + _catch_all(catch_all)
