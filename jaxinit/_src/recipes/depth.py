"""Transformer initialization schemes as rules for :func:`jaxinit.flax.reinit`.

GPT-2, T5, DeepNet (DeepNorm) and T-Fixup. Each recipe is a pure function returning
``(pattern, initializer)`` rules -- plain data, built without Flax. A parameter's role (residual
projection, query, readout, ...) is found by a regular expression searched in its path; every
role is a keyword argument whose default matches common naming (`PATTERNS`, in patterns.py).
Rules end with catch-alls -- biases zero, norm scales one -- unless ``catch_all=False``. Fixup
(residual networks without normalization) is in fixup.py, muP in mup.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from jaxinit._src.core.typing import Rule
from jaxinit._src.flax.rules import labelled, optional
from jaxinit._src.recipes.patterns import (
    BRANCH,
    DECODER,
    EMBEDDING,
    ENCODER,
    PATTERNS,
    POSITION,
    QK,
    QUERY,
    WEIGHT,
    catch_all_rules,
    check_count,
    check_distribution,
    check_pattern,
    check_positive,
    embedding_init,
    within,
    xavier,
)
from jaxinit._src.schemes import elementwise, variance

_LAYERS_ERROR = (
    "pass `n_layers` (encoder-only or decoder-only) or both `encoder_layers` and "
    "`decoder_layers` (encoder-decoder); got n_layers={n!r}, encoder_layers={e!r}, "
    "decoder_layers={d!r}."
)
_STACKS_ERROR = (
    "pass `encoder_layers`, `decoder_layers` or both; got encoder_layers={e!r}, "
    "decoder_layers={d!r}."
)


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
    n = check_count("n_layers", n_layers)
    std = check_positive("std", std)
    residual, position = check_pattern("residual", residual), check_pattern("position", position)
    label = f"residual projection, L={n}: std {std:g}/sqrt(2L)"
    rules: list[Rule] = [(residual, labelled(elementwise.Normal(std / math.sqrt(2 * n)), label))]
    if position_std is not None:
        position_init = elementwise.Normal(check_positive("position_std", position_std))
        rules.append((position, optional(position_init)))
    rules.append((WEIGHT, optional(elementwise.Normal(std))))
    return rules + catch_all_rules(catch_all)


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
      embedding: token embeddings (default ``EMBEDDING``: any ``.../embedding`` or
        ``.../input_embedding``).
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
    d = check_count("head_dim", head_dim)
    factor = check_positive("factor", factor)
    dist = check_distribution(distribution)
    return [
        (check_pattern("query", query), variance.VarianceScaling(factor**2 / d, "fan_in", dist)),
        (check_pattern("embedding", embedding), optional(elementwise.Normal(factor))),
        (WEIGHT, optional(variance.VarianceScaling(factor**2, "fan_in", dist))),
        *catch_all_rules(catch_all),
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
        n = check_count("n_layers", n_layers)
        return {"": ((2 * n) ** 0.25, (8 * n) ** -0.25)}
    if encoder_layers is None or decoder_layers is None:
        raise ValueError(_LAYERS_ERROR.format(n=n_layers, e=encoder_layers, d=decoder_layers))
    n, m = (
        check_count("encoder_layers", encoder_layers),
        check_count("decoder_layers", decoder_layers),
    )
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
    r"""DeepNorm's init gain :math:`\beta`: the table, arguments and errors are those of
    :func:`deepnet_alpha`; one stack gives a float, an encoder-decoder
    ``(encoder_beta, decoder_beta)``.

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
    qk: str | re.Pattern[str] = QK,
    scaled: str | re.Pattern[str] = BRANCH,
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
      >>> rules[1][1].init.scale == jr.deepnet_beta(2) ** 2  # variance scale of v, out, MLP
      True

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei, `DeepNet: Scaling Transformers to 1,000 Layers
      <https://arxiv.org/abs/2203.00555>`_, 2022.
    """
    constants = _deepnet_constants(n_layers, encoder_layers, decoder_layers)
    dist = check_distribution(distribution)
    qk, scaled = check_pattern("qk", qk), check_pattern("scaled", scaled)
    scopes = {
        "": "",
        "decoder": check_pattern("decoder", decoder),
        "encoder": check_pattern("encoder", encoder),
    }
    rules: list[Rule] = []
    for stack in ("", "decoder", "encoder"):
        if stack in constants:
            beta = constants[stack][1]
            scope = scopes[stack]
            label = f"{stack or 'branch'} v/out/MLP, depth-scaled: gain beta={beta:.4g}"
            rules.append((within(scope, qk) if scope else qk, optional(xavier(1.0, dist))))
            scaled_init = labelled(xavier(beta, dist), label)
            rules.append((within(scope, scaled) if scope else scaled, scaled_init))
    rules.append((check_pattern("embedding", embedding), optional(embedding_init(1.0))))
    rules.append((WEIGHT, optional(xavier(1.0, dist))))
    return rules + catch_all_rules(catch_all)


# -- T-Fixup ---------------------------------------------------------------------------------------
def t_fixup(
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
    distribution: str = "uniform",
    qk_gain: float = 2**-0.5,
    catch_all: bool = True,
    qk: str | re.Pattern[str] = QK,
    scaled: str | re.Pattern[str] = BRANCH,
    embedding: str | re.Pattern[str] = EMBEDDING,
    encoder: str | re.Pattern[str] = ENCODER,
    decoder: str | re.Pattern[str] = DECODER,
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
      qk, scaled, embedding, encoder, decoder, catch_all: the path patterns and the catch-all
        switch, as in :func:`deepnet` (`scaled`: the depth-scaled weights).

    Returns:
      The rules; a bad argument raises ValueError or TypeError naming it.

    Examples:
      >>> import jaxinit.recipes as jr
      >>> rules = jr.t_fixup(encoder_layers=6, decoder_layers=6)
      >>> round(rules[1][1].init.scale ** 0.5, 4)  # decoder v/out/MLP gain (9 * 6) ** (-1/4)
      0.3689

    References:
      Huang, Perez, Ba & Volkovs, `Improving Transformer Optimization Through Better
      Initialization <https://proceedings.mlr.press/v119/huang20f.html>`_, ICML 2020.
    """
    if encoder_layers is None and decoder_layers is None:
        raise ValueError(_STACKS_ERROR.format(e=encoder_layers, d=decoder_layers))
    dist = check_distribution(distribution)
    qk_gain = check_positive("qk_gain", qk_gain)
    qk, scaled = check_pattern("qk", qk), check_pattern("scaled", scaled)
    embedding = check_pattern("embedding", embedding)
    stacks: dict[str, tuple[float, float]] = {}  # stack -> (branch gain, embedding factor)
    if decoder_layers is not None:
        m = check_count("decoder_layers", decoder_layers)
        stacks["decoder"] = ((9 * m) ** -0.25, (9 * m) ** -0.25)
    if encoder_layers is not None:
        n = check_count("encoder_layers", encoder_layers)
        stacks["encoder"] = (0.67 * n**-0.25, (9 * n) ** -0.25)
    both = len(stacks) == 2
    scopes = {
        "decoder": check_pattern("decoder", decoder),
        "encoder": check_pattern("encoder", encoder),
    }
    rules: list[Rule] = []
    for stack, (gain, emb) in stacks.items():
        scope = scopes[stack] if both else ""
        branch = labelled(xavier(gain, dist), f"{stack} v/out/MLP, depth-scaled: gain {gain:.4g}")
        for pattern, init in ((qk, optional(xavier(qk_gain, dist))), (scaled, branch),
                              (embedding, optional(embedding_init(emb)))):  # fmt: skip
            rules.append((within(scope, pattern) if scope else pattern, init))
    shared = "encoder" if "encoder" in stacks else "decoder"  # a shared table: the encoder's
    rules.append((embedding, optional(embedding_init(stacks[shared][1]))))
    rules.append((WEIGHT, optional(xavier(1.0, dist))))
    return rules + catch_all_rules(catch_all)
