"""A framework's defaults for a whole Flax model: `framework_rules` for `jaxinit.flax.reinit`.

The rules are built from the presets (presets.py) and matched on Flax's parameter names:
``kernel`` (Dense/Linear/Conv/attention/Einsum), ``embedding`` (Embed), ``scale`` and ``bias``,
and those of Flax's Gemma example: ``w`` (its own Einsum) and ``input_embedding`` (Embedder).
Variance schemes then get each layer's real axes from `reinit`, so one rule serves dense, conv
and N-D kernels. Two things need the model itself, and become exact-path rules in front:

* a PyTorch bias is U(+-1/sqrt(fan_in)) with the fan_in of its *sibling kernel*, read from
  `jaxinit.flax.plan` (layer-aware, so a ``LinearGeneral``'s bias gets its real fan_in);
* NNX recurrent cells (``nnx.LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell``):
  PyTorch gives every weight and bias U(+-1/sqrt(hidden)); Flax and Keras an orthogonal
  recurrent kernel; Keras an LSTM forget-gate bias of one, and to an unfused cell's gates the
  law of their block of its fused kernels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from jaxinit._src.catalog import presets
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.fans import compute_fans
from jaxinit._src.core.paths import join_path
from jaxinit._src.core.validation import check_choice
from jaxinit._src.flax import layers as flax_layers
from jaxinit._src.flax import targets
from jaxinit._src.flax.layers import LayerAxes
from jaxinit._src.flax.reinit import plan
from jaxinit._src.flax.rules import optional, own_axes
from jaxinit._src.schemes.constant import Ones
from jaxinit._src.schemes.elementwise import UniformRange
from jaxinit._src.schemes.orthogonal import Orthogonal

#: The frameworks `framework_rules` knows.
FRAMEWORKS = ("flax", "haiku", "keras", "torch")

# Flax's parameter names, and those of Flax's Gemma example (an Einsum's ``w``, the Embedder's
# ``input_embedding``).
_KERNEL, _BIAS, _SCALE, _EMBEDDING, _LORA_A, _LORA_B = (
    rf"(^|/){n}$" for n in ("(kernel|w)", "bias", "scale", "(input_)?embedding", "lora_a", "lora_b")
)

#: Framework -> presets of LoRA's ``lora_a`` and ``lora_b`` (Haiku has no LoRA).
_LORA: dict[str, tuple[str, str]] = {
    "flax": ("flax.lora.lora_a", "flax.lora.lora_b"),
    "torch": ("torch.lora.lora_a", "torch.lora.lora_b"),
    "keras": ("keras.dense.lora_kernel_a", "keras.dense.lora_kernel_b"),
}

#: Framework -> preset of each parameter name; a None bias is decided per parameter (torch).
_GENERIC: dict[str, dict[str, str | None]] = {
    "torch": {
        "kernel": "torch.linear.kernel",
        "embedding": "torch.embedding.embedding",
        "scale": "torch.layer_norm.scale",
        "bias": None,
    },
    "keras": {
        "kernel": "keras.dense.kernel",
        "embedding": "keras.embedding.embeddings",
        "scale": "keras.layer_norm.gamma",
        "bias": "keras.dense.bias",
    },
    "haiku": {
        "kernel": "haiku.linear.w",
        "embedding": "haiku.embed.embeddings",
        "scale": "haiku.layer_norm.scale",
        "bias": "haiku.linear.b",
    },
    "flax": {
        "kernel": "flax.dense.kernel",
        "embedding": "flax.embed.embedding",
        "scale": "flax.layer_norm.scale",
        "bias": "flax.dense.bias",
    },
}

#: Framework -> presets of a recurrent cell's input kernel, recurrent kernel and bias.
_RECURRENT: dict[str, tuple[str, str, str]] = {
    "torch": ("torch.rnn.kernel", "torch.rnn.recurrent_kernel", "torch.rnn.bias"),
    "keras": ("keras.lstm.kernel", "keras.lstm.recurrent_kernel", "keras.dense.bias"),
    "flax": ("flax.dense.kernel", "flax.lstm.recurrent_kernel", "flax.dense.bias"),
}


def _exact(path: str) -> str:
    return "^" + re.escape(path) + "$"


def _split(path: str) -> tuple[str, str]:
    """``(parent, name)`` of a parameter path."""
    parent, _, name = path.rpartition("/")
    return parent, name


def _cells(target: Any) -> list[tuple[str, Any]]:
    """``(path, cell)`` of every NNX recurrent cell in `target` (none for a pytree)."""
    from flax import nnx

    if not targets.is_nnx_module(target):
        return []
    return [
        (join_path(path), module)
        for path, module in nnx.iter_modules(target)
        if isinstance(module, nnx.RNNCellBase)
    ]


def _keras_gate_kernel(cell: Any, recurrent: bool) -> BaseInitializer:
    """One gate's kernel of an unfused ``nnx.LSTMCell`` as a block of Keras's fused ones.

    Keras draws glorot_uniform over the fused ``(in, 4h)`` input kernel, so a gate's block is
    U(+-sqrt(6 / (in + 4h))), and one orthogonal ``(h, 4h)`` recurrent kernel, whose blocks
    have entries of variance ``1/(4h)``: an orthogonal ``(h, h)`` block halved has that
    variance, but not the joint law (the four blocks of one orthogonal matrix are dependent).
    """
    h = int(cell.hidden_features)
    if recurrent:
        return Orthogonal(scale=0.5)  # 1 / sqrt(gates): the fused entries' std 1/sqrt(4h)
    bound = math.sqrt(6.0 / (int(cell.in_features) + 4 * h))
    return UniformRange(-bound, bound)


def _cell_rule(framework: str, cell: Any, sub: str, name: str) -> BaseInitializer | None:
    """The initializer of parameter `name` of the cell's sublayer `sub` (e.g. ``hf``/``bias``).

    Flax names a cell's recurrent sublayers ``h*`` (``hi``, ``hf``, ... or ``dense_h``) and its
    input sublayers ``i*`` (``ii``, ``if_``, ... or ``dense_i``).
    """
    from flax import nnx

    if framework not in _RECURRENT or name not in ("kernel", "bias"):
        return None
    recurrent = sub.startswith("h") or sub == "dense_h"
    kernel, recurrent_kernel, bias = _RECURRENT[framework]
    kwargs = {"hidden_size": int(cell.hidden_features)} if framework == "torch" else {}
    if framework == "keras" and isinstance(cell, nnx.LSTMCell) and name == "kernel":
        return _keras_gate_kernel(cell, recurrent)
    if name == "kernel":
        return presets.build(recurrent_kernel if recurrent else kernel, kwargs)
    lstm = isinstance(cell, nnx.LSTMCell | nnx.OptimizedLSTMCell)
    if framework == "keras" and lstm and sub == "hf":  # unfused forget gate: unit_forget_bias
        return Ones()
    if framework == "keras" and lstm and sub == "dense_h":  # fused (4h,), gates i, f, g, o
        return presets.build("keras.lstm.bias", {})
    return presets.build(bias, kwargs)


def _native_axes(framework: str, layer: LayerAxes, shape: tuple[int, ...]) -> Any:
    """The axes `framework`'s own init uses for a kernel of `layer` with `shape`, where they
    are not the layer's real ones; None where they are.

    * Flax hands ``DenseGeneral``/``LinearGeneral`` initializers the kernel flattened to
      ``(batch * in, out)``, so batch axes count in fan_in; ``Einsum`` and ``ConvTranspose``
      initializers get the raw kernel shape, whose default axes (-2, -1) guess.
    * Keras (3.15+) takes an ``EinsumDense`` kernel's fans from its einsum: a weight axis that
      is also an output axis (a batch label) counts in fan_out; its ``Conv*Transpose`` kernel
      is ``(*k, out, in)``: fan_in counts the outputs.
    * torch's ``ConvTranspose`` weight is ``(in, out/groups, *k)``: fan_in counts the outputs.
    * None of them divides a grouped convolution's fan_out by its groups, and Flax hands
      ``ConvLocal`` initializers the raw kernel, so its output positions count in both fans.
    """
    lead = len(shape) - layer.rank
    axes = layer.for_shape(shape)
    if axes is None:
        return None
    stacked = tuple(range(lead))
    raw = {"in_axis": (len(shape) - 2,), "out_axis": (len(shape) - 1,), "batch_axis": stacked}
    swapped = {**axes, "in_axis": axes["out_axis"], "out_axis": axes["in_axis"]}
    kind = layer.kind
    if framework == "flax" and kind == "conv_local":
        return raw
    if kind == "conv" and "groups" in axes:
        return {k: v for k, v in axes.items() if k != "groups"}
    if framework == "flax" and kind == "general" and layer.batch_axis:
        flat_in = tuple(a + lead for a in layer.batch_axis + layer.in_axis)
        return {**axes, "in_axis": flat_in, "batch_axis": stacked}
    if framework == "flax" and kind in ("einsum", "conv_transpose"):
        return raw
    if framework == "keras" and kind in ("einsum", "general") and layer.batch_axis:
        batch = tuple(a + lead for a in layer.batch_axis)
        return {**axes, "out_axis": axes["out_axis"] + batch, "batch_axis": stacked}
    if framework in ("keras", "torch") and kind == "conv_transpose":
        return swapped
    return None


def _attention(framework: str, target: Any) -> dict[str, BaseInitializer]:
    """torch's ``nn.MultiheadAttention`` init for the NNX ``MultiHeadAttention`` layers of
    `target`: xavier_uniform on the packed ``(3E, E)`` in-projection (variance ``1/(2E)``) for
    query, key and value, zeros for every projection's bias (the output kernel stays a Linear)."""
    from flax import nnx

    if framework != "torch" or not targets.is_nnx_module(target):
        return {}
    out: dict[str, BaseInitializer] = {}
    for path, module in nnx.iter_modules(target):
        if not isinstance(module, nnx.MultiHeadAttention):
            continue
        prefix = join_path(path) + "/" if path else ""
        for sub in ("query", "key", "value"):
            out[f"{prefix}{sub}/kernel"] = presets.build("torch.multihead_attention.in_proj", {})
        for sub in ("query", "key", "value", "out"):
            out[f"{prefix}{sub}/bias"] = presets.build("torch.multihead_attention.bias", {})
    return out


def _torch_biases(
    rows: list[Any], fan_ins: Mapping[str, float], covered: Mapping[str, Any]
) -> dict[str, BaseInitializer]:
    """Exact rules for PyTorch biases: U(+-1/sqrt(fan_in of the sibling kernel, as torch counts
    it)), or zeros beside a norm layer's ``scale``. Biases with neither sibling get no rule."""
    paths = {row.path for row in rows}
    out: dict[str, BaseInitializer] = {}
    for row in rows:
        parent, name = _split(row.path)
        if name != "bias" or row.path in covered:
            continue
        prefix = f"{parent}/" if parent else ""
        fan_in = fan_ins.get(prefix + "kernel")
        if fan_in is not None:
            out[row.path] = presets.build("torch.linear.bias", {"fan_in": int(fan_in)})
        elif prefix + "scale" in paths:
            out[row.path] = presets.build("torch.layer_norm.bias", {})
    return out


def framework_rules(
    framework: str, target: Any, *, layers: Mapping[str, LayerAxes] | None = None
) -> list[tuple[str, Any]]:
    r"""Rules that give `target` the default initialization of `framework`, biases included.

    For :func:`jaxinit.flax.reinit` (with the same `layers`). Parameters are recognized by
    Flax's names (``kernel``, ``embedding``, ``scale``, ``bias``; also ``w`` and
    ``input_embedding``, the names of Flax's Gemma example, as kernel and embedding):

    ========== ============================= ====================== ========== =================
    framework  kernel (dense, conv, N-D)     embedding              scale      bias
    ========== ============================= ====================== ========== =================
    torch      U(+-1/sqrt(fan_in))           N(0, 1)                1          see below
    keras      glorot_uniform                U(-0.05, 0.05)         1          0
    haiku      TN, std 1/sqrt(fan_in) before TN(0, 1) before        1          0
               truncation                    truncation
    flax       lecun_normal                  N(0, 1/features)       1          0
    ========== ============================= ====================== ========== =================

    Each framework's own fan quirks are reproduced, as exact-path rules whose initializer keeps
    the framework's axes (:func:`own_axes`), for the layers it can see (NNX layers; linen ones
    through `layers`):

    * Flax: ``LinearGeneral``/``DenseGeneral`` batch axes count in fan_in (Flax flattens the
      kernel to ``(batch * in, out)``); ``Einsum`` and ``ConvTranspose`` kernels use the
      default axes (-2, -1) of their raw shape (with ``transpose_kernel=True``, fan_in counts
      the outputs), and so do linen ``ConvLocal`` kernels (whose output positions then count
      in both fans); a grouped conv's fan_out is not divided by its groups.
    * Keras (3.15 and later): ``Einsum`` and general kernels (``EinsumDense``, attention) take
      their fans from the einsum's input and output axes, an axis that is also an output
      (an einsum batch label, a ``LinearGeneral`` batch axis) counting in fan_out; a grouped
      conv's fan_out is not divided by its groups; a transposed conv's fan_in counts its
      outputs.
    * torch: a ``ConvTranspose`` weight's fan_in counts its outputs (``(in, out/groups, *k)``
      layout), and so does its bias; an ``nnx.MultiHeadAttention`` gets
      ``nn.MultiheadAttention``'s init: xavier_uniform on the packed ``(3E, E)`` query, key and
      value projection, zero biases.

    A PyTorch bias gets U(+-1/sqrt(fan_in)) with the fan_in of the ``kernel`` beside it (as
    torch counts it), or 0 beside a ``scale`` (norm layers); a bias with neither gets no rule, so
    a strict ``reinit`` names it. In NNX recurrent cells, PyTorch gives every kernel and bias
    U(+-1/sqrt(hidden_features)), Flax and Keras give recurrent kernels an orthogonal init, and
    Keras sets the LSTM forget-gate bias to 1; Keras's LSTM kernels are fused ``(in, 4h)`` and
    ``(h, 4h)``, so a gate of an unfused ``nnx.LSTMCell`` gets its block's law: input kernels
    U(+-sqrt(6 / (in + 4h))), recurrent kernels orthogonal / 2 (variance ``1/(4h)``). LoRA
    (``nnx.LoRA``, ``LoRALinear``): ``lora_a`` he_uniform for Flax and Keras, torch's Linear
    init for torch (PEFT), ``lora_b`` zeros; Haiku has no LoRA, so it gives no rule.

    Not reproduced (put your own rules first): linen recurrent cells (their sublayers get the
    plain rules) and linen attention under torch (its projections get Linear's init); torch's
    LSTM adds two biases, ``b_ih + b_hh`` (a sum of two uniforms), where an NNX cell has one
    (here one uniform), and torch's GRU ``b_hh`` has no NNX counterpart (``nnx.GRUCell`` has
    no recurrent bias); Keras draws one orthogonal ``(h, 4h)`` matrix across an LSTM's gates,
    so an unfused ``nnx.LSTMCell``'s independent per-gate blocks have its variance, not its
    law (``OptimizedLSTMCell`` gets the law exactly); Keras before 3.15 took an
    ``EinsumDense``'s fans from its raw shape (receptive field ``prod(shape[:-2])``). The
    parameters of your own modules get the rule of their name, not your module's own init: a
    ``scale`` is 1, so a norm that multiplies by ``1 + scale`` and starts ``scale`` at 0 (the
    RMSNorm of Flax's Gemma example) needs ``(r"norm/scale$", jaxinit.zeros)`` put first.

    Args:
      framework: ``"torch"``, ``"keras"``, ``"haiku"`` or ``"flax"``.
      target: an NNX module (concrete or from ``nnx.eval_shape``) or a pytree of arrays or
        ``jax.ShapeDtypeStruct``s (linen ``params``).
      layers: parameter path -> :class:`LayerAxes`, e.g. ``jaxinit.flax.linen_layers(...)``
        for linen ``DenseGeneral``/``Einsum`` kernels (NNX layers are found automatically).

    Returns:
      ``(pattern, initializer)`` rules: exact-path rules first, then the per-name ones.

    Raises:
      ValueError: for an unknown `framework`, or a kernel whose fans cannot be computed.

    Examples:
      >>> import jax, jaxinit.flax
      >>> from flax import nnx
      >>> model = nnx.Sequential(nnx.Linear(64, 256, rngs=nnx.Rngs(0)),
      ...                        nnx.LayerNorm(256, rngs=nnx.Rngs(0)))
      >>> rules = jaxinit.flax.framework_rules("torch", model)
      >>> rules[0]
      ('^layers/0/bias$', uniform_range(minval=-0.125, maxval=0.125, dtype=None))
      >>> model = jaxinit.flax.reinit(model, jax.random.key(0), rules)
      >>> w = model.layers[0].kernel[...]
      >>> bool(abs(w).max() < 0.125), round(float(w.std() * 3**0.5 * 8), 2)
      (True, 1.0)
      >>> jaxinit.flax.framework_rules("jax", model)
      Traceback (most recent call last):
      ...
      ValueError: `framework` must be one of 'flax', 'haiku', 'keras', 'torch'; got 'jax'.
    """
    check_choice("framework", framework, FRAMEWORKS)
    generic = _GENERIC[framework]
    kernel_init = presets.build(str(generic["kernel"]), {})
    rows = plan(target, [(_KERNEL, kernel_init), (".*", None)], layers=layers)
    found = flax_layers.nnx_layers(target) if targets.is_nnx_module(target) else {}
    exact: dict[str, Any] = {}
    fan_ins: dict[str, float] = {}  # each kernel's fan_in as the framework counts it
    for row in rows:
        layer = flax_layers.lookup(layers or {}, row.path) or found.get(row.path)
        native = None
        if _split(row.path)[1] in ("kernel", "w") and layer is not None:
            native = _native_axes(framework, layer, row.shape)
        if native is not None:
            exact[row.path] = own_axes(kernel_init.for_layer(native))
            fan_ins[row.path] = compute_fans(row.shape, **native).fan_in
        elif row.fan_in is not None:
            fan_ins[row.path] = row.fan_in
    exact.update(_attention(framework, target))
    for cell_path, cell in _cells(target):
        prefix = f"{cell_path}/" if cell_path else ""
        for row in rows:
            if not row.path.startswith(prefix):
                continue
            parts = row.path[len(prefix) :].split("/")
            init = _cell_rule(framework, cell, parts[0], parts[-1]) if len(parts) == 2 else None
            if init is not None:
                exact[row.path] = init
    if framework == "torch":
        exact.update(_torch_biases(rows, fan_ins, exact))
    rules: list[tuple[str, Any]] = [(_exact(p), i) for p, i in exact.items()]
    generic_rules = [(pattern, str(generic[name])) for name, pattern in (
        ("kernel", _KERNEL), ("embedding", _EMBEDDING), ("scale", _SCALE), ("bias", _BIAS))
        if generic[name] is not None]  # fmt: skip
    if framework in _LORA:
        generic_rules += list(zip((_LORA_A, _LORA_B), _LORA[framework], strict=True))
    # Per-name rules serve any model, so a model without embeddings (say) is no mistake.
    return rules + [(pattern, optional(presets.build(name, {}))) for pattern, name in generic_rules]
