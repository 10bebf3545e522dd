"""Depth- and width-scaled initialization schemes as rules for :func:`jaxinit.flax.reinit`.

Each recipe is a pure function returning ``(pattern, initializer)`` rules -- plain data, built
without Flax. A parameter's role (residual projection, query, readout, ...) is found by a
regular expression searched in its path; every role is a keyword argument whose default matches
common naming (`PATTERNS`). Rules end with catch-alls -- biases zero, norm scales one -- unless
``catch_all=False``. `mup_plan`/`mup` also need shapes: they read the target and the same model
at base width through the Flax adapter (imported when called), and export every parameter's init
std and learning-rate multipliers, which `scale_by_mup` turns into an optax transform.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxinit._src import constant, elementwise, variance
from jaxinit._src.fans import Fans, compute_fans
from jaxinit._src.typing import DISTRIBUTIONS
from jaxinit._src.validation import check_choice, check_int, check_real

#: One rule: a regular expression (searched in the parameter path) and an initializer.
Rule = tuple[str | re.Pattern[str], Any]

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


# -- muP -------------------------------------------------------------------------------------------
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


def _as_target(x: Any) -> Any:
    """Shapes (tuples of ints) in a mapping become float32 `ShapeDtypeStruct`s."""
    if not isinstance(x, Mapping):
        return x
    to_struct = lambda v: jax.ShapeDtypeStruct(tuple(v), jnp.float32) if _is_shape(v) else v
    return jax.tree_util.tree_map(to_struct, dict(x), is_leaf=_is_shape)


def _fans(layer: Any, shape: tuple[int, ...]) -> Fans | None:
    axes = layer.for_shape(shape) if layer is not None else None
    if axes is not None:
        return compute_fans(shape, **axes)
    return compute_fans(shape) if len(shape) >= 2 else None


def _role(path: str, patterns: Sequence[tuple[str, re.Pattern[str] | None]], n_inf: int) -> str:
    for role, pattern in patterns:
        if pattern is not None and pattern.search(path):
            return role
    return "hidden" if n_inf >= 2 else "input"


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
    `inputs` or `hidden` (checked in that order) has that role; any other parameter is hidden
    when two or more of its dimensions are width dimensions, else input (biases, norm scales,
    embeddings and input layers have one). muP also wants attention logits scaled by
    :math:`1/d_\text{head}` instead of :math:`1/\sqrt{d_\text{head}}`: that is the model's job.

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
    from jaxinit._src import flax_adapter, flax_targets

    zero_readout, zero_query = _flag("zero_readout", zero_readout), _flag("zero_query", zero_query)
    dist = _distribution(distribution)
    roles = [(name, None if p is None else re.compile(_pattern(name, p)))
             for name, p in (("readout", readout), ("query", query), ("input", inputs),
                             ("hidden", hidden))]  # fmt: skip
    if init is None:
        init = [(BIAS, constant.zeros), (NORM_SCALE, constant.ones),
                ("", variance.VarianceScaling(1.0, "fan_in", "normal"))]  # fmt: skip
    target, base = _as_target(target), _as_target(base)
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
        role = _role(leaf.path, roles, len(inf))
        fans, base_fans = _fans(leaf.layer, leaf.shape), _fans(leaf.layer, b.shape)
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


# -- the optimizer side of muP ---------------------------------------------------------------------
def _entry(entry: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _leaf_path(keypath: tuple[Any, ...]) -> str:
    """A pytree leaf's parameter path; an NNX ``Variable``'s trailing ``.value`` is dropped."""
    keys = list(keypath)
    while (
        keys
        and isinstance(keys[-1], jax.tree_util.GetAttrKey)
        and keys[-1].name
        in (
            "value",
            "raw_value",
        )
    ):
        keys.pop()
    return "/".join(_entry(k) for k in keys)


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
    strict = _flag("strict", strict)
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
    """``optax.sgd(learning_rate, **kwargs)`` with muP's per-parameter learning rates.

    Args:
      plan: the rows of :func:`mup_plan`.
      learning_rate: the base model's learning rate (a float or an optax schedule).
      **kwargs: passed to ``optax.sgd`` (``momentum``, ``nesterov``).

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> tx = jr.mup_sgd(jr.mup_plan({"w": (64, 64)}, {"w": (16, 16)}), 0.1, momentum=0.9)
      >>> type(tx).__name__
      'GradientTransformationExtraArgs'
    """
    import optax

    return optax.chain(optax.sgd(learning_rate, **kwargs), scale_by_mup(plan, "sgd"))
