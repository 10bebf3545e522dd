"""The muP coordinate check of Tensor Programs V (Yang et al. 2022), on an MLP and a small
pre-LN transformer built with Flax NNX, at widths 64 (the base) to 2048.

Each model is initialized with `jaxinit.recipes.mup` relative to its width-64 copy and trained
for 5 Adam steps with the plan's learning-rate multipliers (`scale_by_mup`), on one fixed random
batch with fixed keys; the standard parametrization (SP: the same base rules at every width, one
global Adam learning rate) is trained the same way. For every layer we record the std of its
output coordinates at init, and the std of their change after the 5 steps. Under muP each
statistic at width 2048 is within 1.5x of its value at width 64, except two that muP sends to
zero at init -- the output of an output-type matrix (init std s0 / m, m = width / 64: Table 3 of
the paper) and the 1/d-scaled attention logits (q and k still independent) -- which shrink like
m**-1/2 and are checked against that. Under SP the changes grow with the width, the logits' by
far more than 1.5x.

The statistics are single draws (fixed keys), so the 1.5x band is the check's own tolerance, not
a sampling error; `tests/test_recipes.py` checks expected values of such statistics over replicas.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxinit
import jaxinit.flax as jf
import jaxinit.recipes as jr

WIDTHS = (64, 256, 1024, 2048)  # the base width first
BASE = WIDTHS[0]
STEPS = 5
BAND = 1.5  # the check's tolerance on a statistic's ratio from width 64 to 2048
LR = 3e-2  # Adam, the base model's: muP scales it per parameter, SP uses it everywhere
KEY = jax.random.key(0)
#: optax's Adam computes `decay**count` (float ** int32), which strict promotion refuses.
OPTAX_PROMOTION = jax.numpy_dtype_promotion("standard")

#: The base parametrization, and SP at every width: LeCun-normal kernels, N(0, 1) embeddings.
INIT = [
    (jr.PATTERNS["bias"], jaxinit.zeros),
    (jr.PATTERNS["norm_scale"], jf.optional(jaxinit.ones)),
    (r"(?:^|/)embedding$", jf.optional(jaxinit.normal(1.0))),
    ("", jaxinit.variance_scaling(1.0, "fan_in", "normal")),
]


# -- the models -----------------------------------------------------------------------------------
D_IN, D_OUT, BATCH = 32, 10, 16  # the MLP's fixed input and output sizes, its batch
VOCAB, SEQ, LM_BATCH, HEADS = 64, 16, 4, 4  # the transformer's; head_dim = width / HEADS


class MLP(nnx.Module):
    """32 -> width -> width -> 10, ReLU. `out` has no readout name: it is output-type by shape."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.inp = nnx.Linear(D_IN, width, rngs=rngs)
        self.hidden = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, D_OUT, rngs=rngs)

    def __call__(self, x: jax.Array, attn_scale: jax.Array) -> dict[str, jax.Array]:
        del attn_scale  # no attention
        h1 = jax.nn.relu(self.inp(x))
        h2 = jax.nn.relu(self.hidden(h1))
        return {"inp": h1, "hidden": h2, "out": self.out(h2)}


class Transformer(nnx.Module):
    """A one-block pre-LN decoder: embed, causal self-attention with `HEADS` heads (head_dim
    grows with the width), a 4x ReLU MLP, final LayerNorm, lm_head. The attention logits are
    scaled by `attn_scale`: muP's 1/head_dim (as `mup_plan` asks of the model) or SP's
    1/sqrt(head_dim), both equal at the base width."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        linear = functools.partial(nnx.Linear, use_bias=False, rngs=rngs)
        self.embed = nnx.Embed(VOCAB, width, rngs=rngs)
        self.ln1, self.ln2, self.ln_f = (nnx.LayerNorm(width, rngs=rngs) for _ in range(3))
        self.query, self.key, self.value = (linear(width, width) for _ in range(3))
        self.proj = linear(width, width)
        self.up, self.down = linear(width, 4 * width), linear(4 * width, width)
        self.lm_head = linear(width, VOCAB)

    def __call__(self, tokens: jax.Array, attn_scale: jax.Array) -> dict[str, jax.Array]:
        x = self.embed(tokens)
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = (
            f(h).reshape(b, t, HEADS, d // HEADS) for f in (self.query, self.key, self.value)
        )
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * attn_scale
        causal = jnp.tril(jnp.ones((t, t), bool))
        weights = jax.nn.softmax(jnp.where(causal, logits, -1e9), axis=-1)
        attn = self.proj(jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d))
        mlp = self.down(jax.nn.relu(self.up(self.ln2(x + attn))))
        out = self.lm_head(self.ln_f(x + attn + mlp))
        return {"embed": x, "attn_logits": logits, "attn": attn, "mlp": mlp, "logits": out}


def _mse(acts: dict[str, jax.Array], y: jax.Array) -> jax.Array:
    return jnp.mean((acts["out"] - y) ** 2)


def _next_token(acts: dict[str, jax.Array], y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(acts["logits"], y).mean()


def _attn_scale(width: int, parametrization: str) -> float:
    head_dim, base_head_dim = width // HEADS, BASE // HEADS
    return math.sqrt(base_head_dim) / head_dim if parametrization == "mup" else head_dim**-0.5


# -- the check -----------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("graph", "loss"))
def _statistics(graph, loss, params, lr_mults, batch, attn_scale):
    """Per layer: the std of its output coordinates at init, and of their change after `STEPS`
    Adam steps whose updates are multiplied by `lr_mults` (a tree like `params`), on `batch`."""
    x, y = batch
    acts = lambda p: nnx.merge(graph, p)(x, attn_scale)
    adam = optax.adam(LR)

    def step(_, carry):
        p, state = carry
        updates, state = adam.update(jax.grad(lambda p: loss(acts(p), y))(p), state, p)
        return optax.apply_updates(p, jax.tree.map(jnp.multiply, updates, lr_mults)), state

    trained, _ = jax.lax.fori_loop(0, STEPS, step, (params, adam.init(params)))
    before, after = acts(params), acts(trained)
    return {k: jnp.stack([before[k].std(), (after[k] - before[k]).std()]) for k in before}


def _scaled(state: nnx.State, factor: dict[str, float]) -> nnx.State:
    """`state` with each parameter multiplied by ``factor[path]``."""
    path = lambda kp: "/".join(str(k.key) for k in kp if isinstance(k, jax.tree_util.DictKey))
    return jax.tree_util.tree_map_with_path(lambda kp, v: v * factor[path(kp)], state)


def coordinate_check(
    make: Callable[[int, nnx.Rngs], nnx.Module], loss: Callable[..., jax.Array], batch: Any
) -> tuple[dict[str, dict[int, dict[str, np.ndarray]]], list[jr.MupRow]]:
    """``{"mup"|"sp": {width: {layer: [std at init, std of the change]}}}`` and the muP plan.

    All widths form one zoo (an ``nnx.Dict``), initialized by one `reinit` with `jr.mup`
    relative to a zoo of base-width copies. SP's init is the same draw times SP's std over
    muP's, per parameter (both from the plans: `INIT` at the zoo's own shapes, and muP's); the
    two differ only in output-type matrices (SP std 1/sqrt(fan_in), muP s0 / m). muP's Adam
    multipliers are `jr.scale_by_mup`'s, applied to a tree of ones (`jr.mup_adam` is that
    chain: adam, then the scale), so muP and SP share one compiled training program per width.
    """
    zoo = lambda width: nnx.Dict({f"w{w}": make(width(w), nnx.Rngs(0)) for w in WIDTHS})
    target = nnx.eval_shape(lambda: zoo(lambda w: w))
    base = nnx.eval_shape(lambda: zoo(lambda w: BASE))  # the same keys, every model at BASE
    plan = jr.mup_plan(target, base, INIT)
    sp_std = {r.path: r.std or 0.0 for r in jf.plan(target, INIT)}  # every std is known
    to_sp = {r.path: sp_std[r.path] / r.std if r.std else 1.0 for r in plan}
    params = nnx.state(jf.reinit(target, KEY, jr.mup(target, base, INIT)), nnx.Param)
    params = {"mup": params, "sp": _scaled(params, to_sp)}
    ones = jax.tree.map(jnp.ones_like, params["mup"])
    mults = {"mup": jr.scale_by_mup(plan).update(ones, optax.EmptyState())[0], "sp": ones}
    out: dict[str, dict[int, dict[str, np.ndarray]]] = {"mup": {}, "sp": {}}
    for w in WIDTHS:
        graph = nnx.graphdef(target[f"w{w}"])
        for name in ("mup", "sp"):
            scale = jnp.float32(_attn_scale(w, name))
            args = (params[name][f"w{w}"], mults[name][f"w{w}"], batch, scale)
            with OPTAX_PROMOTION:
                out[name][w] = jax.tree.map(np.asarray, _statistics(graph, loss, *args))
    return out, plan


def _ratios(res, name: str) -> dict[str, np.ndarray]:
    """Per layer: [at init, change] at the widest width over the base width."""
    return {k: res[name][WIDTHS[-1]][k] / res[name][BASE][k] for k in res[name][BASE]}


def _mlp_batch():
    kx, ky = jax.random.split(jax.random.key(1))
    return jax.random.normal(kx, (BATCH, D_IN)), jax.random.normal(ky, (BATCH, D_OUT))


def _lm_batch():
    tokens = jax.random.randint(jax.random.key(1), (LM_BATCH, SEQ + 1), 0, VOCAB)
    return tokens[:, :-1], tokens[:, 1:]


CASES = {
    "mlp": (MLP, _mse, _mlp_batch, {"out/kernel": "readout", "hidden/kernel": "hidden"}),
    "transformer": (
        Transformer,
        _next_token,
        _lm_batch,
        {"lm_head/kernel": "readout", "query/kernel": "query", "up/kernel": "hidden"},
    ),
}
#: The statistics muP sends to zero at init like m**-1/2: the outputs of output-type matrices,
#: and the 1/d attention logits (q and k independent).
VANISHING_AT_INIT = ("out", "logits", "attn_logits")
#: Not a layer's output: the attention logits' change is only checked not to grow (under muP
#: it falls to about 0.6x from width 64 to 2048, most of it by 256, with the O(1) init logits
#: of the base width; under SP it grows over 1000-fold).
NOT_GROWING = ("attn_logits",)


def test_mup_plan_of_a_zoo_in_an_nnx_dict():
    """An ``nnx.Dict`` of models is an NNX module, not a mapping of shapes: its parameters keep
    their paths and layer axes (they were read as pytree leaves ``.../value`` and failed)."""
    zoo = lambda width: nnx.Dict(a=MLP(width, nnx.Rngs(0)), b=MLP(2 * width, nnx.Rngs(0)))
    rows = jr.mup_plan(nnx.eval_shape(lambda: zoo(64)), nnx.eval_shape(lambda: zoo(16)), INIT)
    got = {r.path: (r.role, r.width_mult) for r in rows}
    assert got["a/inp/bias"] == ("input", 4.0) and got["b/out/kernel"] == ("readout", 4.0)
    assert got["b/hidden/kernel"] == ("hidden", 4.0) and len(got) == 12


def test_lr_mults_give_mup_adams_update():
    """The check multiplies Adam's updates by `scale_by_mup`'s multipliers (so that muP and SP
    share a compiled program): that is `jr.mup_adam`'s update."""
    zoo = lambda width: nnx.Dict(a=MLP(width, nnx.Rngs(0)))
    target = nnx.eval_shape(lambda: zoo(64))
    plan = jr.mup_plan(target, nnx.eval_shape(lambda: zoo(16)), INIT)
    rng = np.random.default_rng(0)
    normal = lambda s: jnp.asarray(rng.standard_normal(s.shape), jnp.float32)
    grads = jax.tree.map(normal, nnx.state(target, nnx.Param))
    ones = jax.tree.map(jnp.ones_like, grads)
    mults = jr.scale_by_mup(plan).update(ones, optax.EmptyState())[0]
    assert {float(x.mean()) for x in jax.tree.leaves(mults)} == {0.25, 1.0}  # matrices, vectors
    mup_adam, adam = jr.mup_adam(plan, LR), optax.adam(LR)

    @jax.jit
    def both(g):
        want, _ = mup_adam.update(g, mup_adam.init(g), g)
        got, _ = adam.update(g, adam.init(g), g)
        return jax.tree.map(jnp.multiply, got, mults), want

    with OPTAX_PROMOTION:
        got, want = both(grads)
    chex.assert_trees_all_close(got, want, rtol=1e-6)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
@pytest.mark.parametrize("case", list(CASES))
def test_mup_coordinate_check(case):
    make, loss, batch, roles = CASES[case]
    res, plan = coordinate_check(make, loss, batch())
    by_path = {r.path: r for r in plan}
    for path, role in roles.items():  # out/kernel: width -> 10, output-type by its fans alone
        assert by_path[f"w{WIDTHS[-1]}/{path}"].role == role, path
    m = WIDTHS[-1] / BASE
    mup, sp = _ratios(res, "mup"), _ratios(res, "sp")
    for layer, (init, change) in mup.items():
        expected = m**-0.5 if layer in VANISHING_AT_INIT else 1.0
        assert 1 / BAND <= init / expected <= BAND, (layer, "init", init, expected)
        low = 0.0 if layer in NOT_GROWING else 1 / BAND
        assert low <= change <= BAND, (layer, "change", change)
    head = "out" if case == "mlp" else "logits"
    assert sp[head][1] > 2 * BAND, sp  # SP: the logits' change blows up with the width
