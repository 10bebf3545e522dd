"""The Flax adapter (docs/design.md): jaxinit initializers inside linen and NNX layers, and
`jaxinit.flax.reinit`/`plan` -- rules, path-keyed keys, layer-aware fans, sharding at birth,
grouped generation, fused recurrent kernels. Runs on the 8 simulated CPU devices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import flax.linen as nn
import flax_models as fm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import stats
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit
import jaxinit.flax as jf
from jaxinit._src.flax import generate as flax_generate
from jaxinit._src.flax import reinit as flax_adapter

KEY = jax.random.key(42)
TN = stats.KURTOSIS_TRUNCNORM_2
# |Q^T Q - I| of an orthogonal Q rounded to bfloat16 (relative error <= 2^-9 per entry):
# |(Q^T E)_ij| <= 2^-9 sum_k |Q_ki Q_kj| <= 2^-9 by Cauchy-Schwarz, twice, plus f32 rounding.
BF16_ORTHO_TOL = 2.0**-8 + 1e-5
F32_ORTHO_TOL = 1e-5

# Rules for every test model: the ones some models lack (norm scales) are optional.
RULES = [
    ("kernel|embedding", jaxinit.lecun_normal()),
    ("bias", jaxinit.normal(0.1)),
    ("scale", jf.optional(jaxinit.ones)),
]


def _bits(x) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}"))


def _assert_bitwise(a, b) -> None:
    np.testing.assert_array_equal(_bits(a), _bits(b))


def _params(model) -> dict[str, jax.Array]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {"/".join(map(str, k)): v.get_value() for k, v in flat}


def _ortho_error(w) -> float:
    """max |W^T W - I| (or |W W^T - I| for wide W) in float64."""
    w = np.asarray(w, np.float64)
    w = w if w.shape[0] >= w.shape[1] else w.T
    return float(np.abs(w.T @ w - np.eye(w.shape[1])).max())


def _mesh(axis_type=AxisType.Auto) -> jax.sharding.Mesh:
    return jax.make_mesh((2, 4), ("data", "model"), axis_types=(axis_type,) * 2)


def _expected(rows: list[jf.PlanRow], key) -> dict[str, jax.Array]:
    """Each planned parameter generated on its own: the initializer the plan names, called
    with the parameter's path key, shape and dtype."""
    return {
        r.path: r.initializer(jf.path_key(key, r.path), r.shape, r.dtype)
        for r in rows
        if r.initializer is not None
    }


# -- 1. jaxinit initializers as Flax layer initializers --------------------------------------------
NNX_LAYERS = {
    "linear_he": lambda dt: nnx.Linear(
        64, 32, kernel_init=jaxinit.he_normal(), param_dtype=dt, rngs=nnx.Rngs(0)
    ),
    "conv_glorot": lambda dt: nnx.Conv(
        4, 8, (3, 3), kernel_init=jaxinit.glorot_uniform(), param_dtype=dt, rngs=nnx.Rngs(0)
    ),
    "embed_normal": lambda dt: nnx.Embed(
        16, 8, embedding_init=jaxinit.normal(1.0), param_dtype=dt, rngs=nnx.Rngs(0)
    ),
    "general_bias": lambda dt: nnx.LinearGeneral(
        64, (4, 8), bias_init=jaxinit.uniform(0.1), param_dtype=dt, rngs=nnx.Rngs(0)
    ),
    "lstm_orthogonal": lambda dt: nnx.LSTMCell(
        8, 16, recurrent_kernel_init=jaxinit.orthogonal(), param_dtype=dt, rngs=nnx.Rngs(0)
    ),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("name", list(NNX_LAYERS))
def test_nnx_layers_take_jaxinit_initializers(name, dtype):
    params = _params(NNX_LAYERS[name](dtype))
    for value in params.values():
        assert value.dtype == dtype
        assert bool(jnp.isfinite(value.astype(jnp.float32)).all())
    if name == "lstm_orthogonal":
        tol = F32_ORTHO_TOL if dtype == jnp.float32 else BF16_ORTHO_TOL
        for gate in ("hi", "hf", "hg", "ho"):
            assert _ortho_error(params[f"{gate}/kernel"]) <= tol


def test_bfloat16_orthogonal_kernel_is_the_float32_draw_rounded():
    """Orthogonal is built in f32 for any `param_dtype`: the bf16 kernel is the f32 one, rounded."""
    init = jaxinit.orthogonal()
    layer = nnx.Linear(64, 64, kernel_init=init, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    key = nnx.Rngs(0).params()  # the key Linear drew its kernel with
    _assert_bitwise(layer.kernel[...], init(key, (64, 64), jnp.float32).astype(jnp.bfloat16))


def test_linen_layers_take_jaxinit_initializers():
    cell = nn.OptimizedLSTMCell(
        16, recurrent_kernel_init=jaxinit.orthogonal(), param_dtype=jnp.bfloat16
    )
    x = jnp.ones((2, 8), jnp.bfloat16)  # bf16 inputs: strict dtype promotion in the tests
    params = cell.init(KEY, cell.initialize_carry(KEY, x.shape), x)["params"]
    for gate in ("hi", "hf", "hg", "ho"):
        assert params[gate]["kernel"].dtype == jnp.bfloat16
        assert _ortho_error(params[gate]["kernel"]) <= BF16_ORTHO_TOL
    dense = nn.Dense(32, kernel_init=jaxinit.he_normal(), bias_init=jaxinit.constant(0.5))
    p = dense.init(KEY, jnp.ones((1, 64)))["params"]
    assert p["kernel"].shape == (64, 32) and float(p["bias"][0]) == 0.5
    embed = nn.Embed(10, 4, embedding_init=jaxinit.normal(1.0), param_dtype=jnp.bfloat16)
    assert embed.init(KEY, jnp.arange(3))["params"]["embedding"].dtype == jnp.bfloat16


# -- 2. reinit: targets, rules, strictness ---------------------------------------------------------
@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_reinit_nnx_in_place_gives_each_parameter_its_path_keyed_draw():
    model = fm.Tower(3, nnx.Rngs(0))
    rows = jf.plan(model, RULES)
    out = jf.reinit(model, KEY, RULES)
    assert out is model
    got = _params(model)
    expected = _expected(rows, KEY)
    assert set(got) == set(expected) == {r.path for r in rows}
    for path, value in expected.items():
        _assert_bitwise(got[path], value)  # grouped generation == one by one, bitwise


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_grouping_does_not_change_a_bit():
    model = fm.Tower(3, nnx.Rngs(0))
    grouped = _params(jf.reinit(model, KEY, RULES))
    single = _params(jf.reinit(model, KEY, RULES, group_bytes=0))
    for path in grouped:
        _assert_bitwise(grouped[path], single[path])


#: Unit draws shared across schemes, scales and (unsharded) shapes: q/k/v (d, h, k) and out
#: (h, k, d) kernels of two scales (normal), up (d, 4d) and down (4d, d) (he_uniform and
#: glorot_uniform: both U(-1, 1) times a scale), biases (4, 8) and (32,) (normal) -- and alone
#: the (128,) biases and the embedding.
MIXED_RULES = [
    (r"attn/out/kernel", jaxinit.normal(0.004)),
    (r"attn/.*/kernel", jaxinit.normal(0.02)),
    (r"up/kernel", jaxinit.he_uniform()),
    (r"down/kernel", jaxinit.glorot_uniform()),
    (r"embedding", jaxinit.lecun_normal()),
    ("bias", jaxinit.normal(0.1)),
    ("scale", jaxinit.ones),
]


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_unit_draws_of_different_scales_and_shapes_share_a_loop_bit_for_bit():
    model = fm.Tower(3, nnx.Rngs(0))
    jobs, _ = flax_adapter.prepare(model, MIXED_RULES)
    gens = [flax_generate._placement(j, flax_generate._mesh(jobs))[0] for j in jobs]
    chunks = flax_generate.chunks(jobs, gens, flax_generate.GROUP_BYTES)
    random = [c for c in chunks if jobs[c[0]].init.random]
    inits = [len({(jobs[i].init, jobs[i].shape) for i in c}) for c in random]
    assert len(random) == 5 and sorted(inits) == [1, 1, 2, 2, 2]
    # With a threefry key, one loop of blocks per unit draw whatever the sizes: N(0, 1) for
    # the attention kernels and every bias (5 initializer-shape pairs), U(-1, 1) for up/down.
    chunks = flax_generate.chunks(jobs, gens, flax_generate.GROUP_BYTES, threefry=True)
    random = [c for c in chunks if jobs[c[0]].init.random]
    inits = [len({(jobs[i].init, jobs[i].shape) for i in c}) for c in random]
    assert len(random) == 3 and sorted(inits) == [1, 2, 5]
    got = _params(jf.reinit(model, KEY, MIXED_RULES))
    for path, value in _expected(jf.plan(model, MIXED_RULES), KEY).items():
        _assert_bitwise(got[path], value)


def test_strict_names_every_unmatched_parameter():
    model = fm.Tower(1, nnx.Rngs(0))
    with pytest.raises(ValueError, match="match no rule") as info:
        jf.reinit(model, KEY, [("kernel", jaxinit.lecun_normal())])
    unmatched = [p for p in _params(model) if not p.endswith("kernel")]
    assert unmatched and all(repr(p) in str(info.value) for p in unmatched)
    assert "'blocks/0/up/kernel'" not in str(info.value)


def test_non_strict_keeps_unmatched_values_exactly():
    model = fm.Tower(1, nnx.Rngs(0))
    before = _params(model)
    jf.reinit(model, KEY, [("kernel", jaxinit.zeros)], strict=False)
    after = _params(model)
    for path, value in before.items():
        if path.endswith("kernel"):
            assert not bool(jnp.any(after[path]))
        else:
            assert after[path] is value or np.array_equal(_bits(after[path]), _bits(value))


def test_first_match_wins_with_re_search_and_none_keeps():
    model = fm.Named(("a", "b"), nnx.Rngs(0))
    before = _params(model)
    rules = [
        (r"^a/", None),  # keep all of layer a, even in strict mode
        (re.compile("kern"), jaxinit.ones),  # re.search: a substring is enough
        ("kernel", jaxinit.zeros),  # never reached
        (".*", jaxinit.constant(0.25)),
    ]
    jf.reinit(model, KEY, rules)
    after = _params(model)
    _assert_bitwise(after["a/kernel"], before["a/kernel"])
    _assert_bitwise(after["a/bias"], before["a/bias"])
    assert bool((after["b/kernel"] == 1).all()) and bool((after["b/bias"] == 0.25).all())


def test_rules_take_names_and_dicts_and_reject_malformed_ones():
    model = fm.Named(("a",), nnx.Rngs(0))
    serialized = jaxinit.serialize(jaxinit.normal(0.5))
    jf.reinit(model, KEY, [("kernel", "he_normal"), ("bias", serialized)])
    _assert_bitwise(
        model.a.kernel[...], jaxinit.he_normal()(jf.path_key(KEY, "a/kernel"), (32, 32))
    )
    for bad in ("kernel", [("kernel",)], [(1, jaxinit.zeros)], [("kernel", 3.0)]):
        with pytest.raises(TypeError, match="`rules`"):
            jf.reinit(model, KEY, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown initializer name"):
        jf.reinit(model, KEY, [(".*", "he_nromal")])


def test_an_initializer_error_names_the_parameter():
    model = fm.Named(("a",), nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"'a/bias'.*rank 1"):
        jf.reinit(model, KEY, [(".*", jaxinit.he_normal())])  # fans of a vector: no default
    with pytest.raises(ValueError, match=r"'a/bias'.*rank 1"):
        jf.plan(model, [(".*", jaxinit.he_normal())])


def test_linen_params_give_a_new_tree_and_the_input_is_untouched():
    net = nn.Dense(16)
    variables = net.init(KEY, jnp.ones((1, 8)))
    copy = jax.tree.map(lambda x: x, variables)
    rules = [("kernel", jaxinit.orthogonal()), ("bias", jaxinit.constant(0.5))]
    out = jf.reinit(variables, KEY, rules)
    assert jax.tree.structure(out) == jax.tree.structure(variables)
    jax.tree.map(_assert_bitwise, variables, copy)  # untouched
    kernel = out["params"]["kernel"]
    assert _ortho_error(kernel) <= F32_ORTHO_TOL
    _assert_bitwise(kernel, jaxinit.orthogonal()(jf.path_key(KEY, "params/kernel"), (8, 16)))
    assert bool((out["params"]["bias"] == 0.5).all())


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_abstract_targets_are_materialized():
    abstract = nnx.eval_shape(lambda: fm.Tower(2, nnx.Rngs(0)))
    rows = jf.plan(abstract, RULES)
    model = jf.reinit(abstract, KEY, RULES)
    assert all(isinstance(v, jax.Array) for v in _params(model).values())
    expected = _expected(rows, KEY)
    for path, value in _params(model).items():
        _assert_bitwise(value, expected[path])
    shapes = jax.eval_shape(nn.Dense(4).init, KEY, jnp.ones((1, 3)))
    out = jf.reinit(shapes, KEY, [("kernel", jaxinit.he_uniform()), ("bias", jaxinit.zeros)])
    assert isinstance(out["params"]["kernel"], jax.Array) and out["params"]["kernel"].shape == (
        3,
        4,
    )


def test_abstract_target_cannot_keep_values():
    abstract = nnx.eval_shape(lambda: fm.Named(("a",), nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"abstract target.*'a/bias'"):
        jf.reinit(abstract, KEY, [("kernel", jaxinit.zeros)], strict=False)
    with pytest.raises(ValueError, match=r"a rule maps them to None.*'a/bias'"):
        jf.reinit(abstract, KEY, [("kernel", jaxinit.zeros), ("bias", None)])


# -- 3. path-keyed, edit-stable keys ---------------------------------------------------------------
def test_stable_hash_is_the_documented_sha256_prefix():
    for path in ("", "layers/0/kernel", "blocks/3/attn/q/kernel", "ëmbed/表"):
        digest = hashlib.sha256(path.encode("utf-8")).digest()
        assert jf.stable_hash(path) == int.from_bytes(digest[:4], "big")
    # Pinned: the same in every process, Python version and PYTHONHASHSEED.
    assert jf.stable_hash("layers/0/kernel") == 91456768
    assert jf.stable_hash("blocks/3/attn/q/kernel") == 1433653225
    with pytest.raises(TypeError, match="`path`"):
        jf.stable_hash(("a", 0))  # type: ignore[arg-type]


def test_path_key_is_fold_in_of_the_hash_for_typed_and_legacy_keys():
    for root in (KEY, jax.random.PRNGKey(42)):
        want = jax.random.fold_in(root, jf.stable_hash("blocks/3/attn/q/kernel"))
        got = jf.path_key(root, "blocks/3/attn/q/kernel")
        np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(want))


def test_legacy_keys_work_and_give_the_typed_keys_bits():
    legacy = jf.reinit(fm.Named(("a", "b"), nnx.Rngs(0)), jax.random.PRNGKey(42), RULES)
    typed = jf.reinit(fm.Named(("a", "b"), nnx.Rngs(0)), jax.random.key(42), RULES)
    for path, value in _params(typed).items():
        _assert_bitwise(_params(legacy)[path], value)
    with pytest.raises(TypeError, match="`key`"):
        jf.reinit(fm.Named(("a",), nnx.Rngs(0)), 42, RULES)  # type: ignore[arg-type]


def test_adding_removing_and_reordering_layers_changes_nothing_else():
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.normal(0.1))]
    one = jf.reinit(fm.Named(("a", "b", "c"), nnx.Rngs(0)), KEY, rules)
    two = jf.reinit(fm.Named(("c", "x", "y", "a"), nnx.Rngs(1)), KEY, rules)
    p1, p2 = _params(one), _params(two)
    shared = sorted(set(p1) & set(p2))
    assert shared == ["a/bias", "a/kernel", "c/bias", "c/kernel"]
    for path in shared:
        _assert_bitwise(p1[path], p2[path])
    assert not np.array_equal(p1["b/kernel"], p2["x/kernel"])


# -- 4. layer-aware fans ---------------------------------------------------------------------------
def test_linear_general_batch_axis_does_not_fold_into_fan_in():
    """B=16, in=64: std 1/sqrt(64), not 1/sqrt(16 * 64) as Flax's flattening gives."""
    layer = nnx.LinearGeneral(64, 32, batch_axis={0: 16}, rngs=nnx.Rngs(0))
    rules = [("kernel", jaxinit.lecun_normal()), ("bias", jaxinit.zeros)]
    (row,) = [r for r in jf.plan(layer, rules) if r.path == "kernel"]
    assert (row.shape, row.fan_in, row.fan_out, row.std) == ((16, 64, 32), 64, 32, 1 / 8)
    (naive,) = [r for r in jf.plan(layer, rules, layer_axes=False) if r.path == "kernel"]
    assert naive.fan_in == 1024  # the initializer's own axes: batch folded in
    stats.assert_std(jf.reinit(layer, KEY, rules).kernel[...], 1 / 8, TN, "LinearGeneral")


def test_einsum_kernel_fans_come_from_its_spec():
    """'bd,dhk->bhk' with kernel (1024, 16, 64): std 1/sqrt(1024) = 0.031, not 0.0078."""
    layer = nnx.Einsum("bd,dhk->bhk", (1024, 16, 64), (16, 64), rngs=nnx.Rngs(0))
    rules = [("kernel", jaxinit.lecun_normal()), ("bias", jaxinit.zeros)]
    (row,) = [r for r in jf.plan(layer, rules) if r.path == "kernel"]
    assert (row.fan_in, row.fan_out, row.std) == (1024, 1024, 1 / 32)
    stats.assert_std(jf.reinit(layer, KEY, rules).kernel[...], 1 / 32, TN, "Einsum")


def test_attention_conv_embed_and_transposed_conv_fans():
    class Zoo(nnx.Module):
        def __init__(self, rngs):
            self.attn = nnx.MultiHeadAttention(8, 64, qkv_features=128, decode=False, rngs=rngs)
            self.conv = nnx.Conv(3, 16, (5, 5), rngs=rngs)
            self.convt = nnx.ConvTranspose(6, 4, (3, 3), transpose_kernel=True, rngs=rngs)
            self.embed = nnx.Embed(1000, 48, rngs=rngs)

    rows = {r.path: r for r in jf.plan(nnx.eval_shape(lambda: Zoo(nnx.Rngs(0))), RULES)}
    fans = {p: (r.shape, r.fan_in, r.fan_out) for p, r in rows.items() if r.fan_in is not None}
    assert fans["attn/query/kernel"] == ((64, 8, 16), 64, 128)
    assert fans["attn/key/kernel"] == ((64, 8, 16), 64, 128)
    assert fans["attn/value/kernel"] == ((64, 8, 16), 64, 128)
    assert fans["attn/out/kernel"] == ((8, 16, 64), 128, 64)
    assert fans["conv/kernel"] == ((5, 5, 3, 16), 75, 400)
    assert fans["convt/kernel"] == ((3, 3, 4, 6), 54, 36)  # (*k, out, in) when transposed
    assert fans["embed/embedding"] == ((1000, 48), 48, 1000)
    assert rows["embed/embedding"].std == pytest.approx(48**-0.5)  # Flax's Embed default std


def test_grouped_depthwise_and_local_conv_fans_are_per_group_and_per_position():
    """Flax's ``feature_group_count`` divides fan_out (each input feeds its group's outputs);
    linen's ConvLocal has one kernel per output position: fan_in is one position's."""
    glorot = [("kernel", jaxinit.glorot_normal()), ("bias", jaxinit.zeros)]
    grouped = nnx.Conv(16, 32, (3, 3), feature_group_count=4, rngs=nnx.Rngs(0))
    depthwise = nnx.Conv(16, 16, (3, 3), feature_group_count=16, rngs=nnx.Rngs(0))
    for layer, fans in [(grouped, (36, 72)), (depthwise, (9, 9))]:
        (row,) = [r for r in jf.plan(layer, glorot) if r.path == "kernel"]
        assert (row.fan_in, row.fan_out) == fans
        assert row.std == pytest.approx((2 / sum(fans)) ** 0.5)
    dw = jf.reinit(depthwise, KEY, glorot).kernel[...]
    stats.assert_std(dw, 1 / 3, stats.KURTOSIS_NORMAL, "depthwise")
    local, x = nn.ConvLocal(8, (3, 3), padding="SAME"), jnp.zeros((1, 10, 10, 8))
    layers = jf.linen_layers(local, x)
    (row,) = [r for r in jf.plan(local.init(KEY, x), glorot, layers=layers) if "kernel" in r.path]
    assert (row.shape, row.fan_in, row.fan_out) == ((10, 10, 72, 8), 72, 8)


def test_linen_attention_without_layers_warns_naming_the_guessed_fans():
    """A linen attention kernel (d, heads, head_dim) has fan_in d; without ``layers=`` the
    default axes give heads * d: one warning names each such parameter and the fix."""
    attn, x = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32), jnp.zeros((1, 5, 32))
    params = jax.eval_shape(attn.init, KEY, x)
    rules = [("kernel", jaxinit.lecun_normal()), ("bias", jaxinit.zeros)]
    with pytest.warns(UserWarning, match="layer of 4 parameter") as record:
        jf.plan(params, rules)
    assert len(record) == 1
    message = str(record[0].message)
    assert "'params/query/kernel' (32, 4, 8) fan_in=128" in message
    assert "layers=jaxinit.flax.linen_layers(module, *inputs)" in message
    rows = jf.plan(params, rules, layers=jf.linen_layers(attn, x))  # no warning: filterwarnings
    assert {r.path: r.fan_in for r in rows}["params/query/kernel"] == 32


def test_stacked_layers_count_the_layer_axis_as_batch():
    stack = fm.stacked_linear(8, 64, 128)
    rows = {r.path: r for r in jf.plan(stack, [("kernel", jaxinit.he_normal()), ("bias", None)])}
    assert (rows["kernel"].shape, rows["kernel"].fan_in) == ((8, 64, 128), 64)
    assert rows["kernel"].initializer.batch_axis == (0,)
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.zeros)]
    stats.assert_std(jf.reinit(stack, KEY, rules).kernel[...], (2 / 64) ** 0.5, TN, "stacked")
    # Orthogonal gets the layer axis as a batch axis: one Haar matrix per layer.
    jf.reinit(stack, KEY, [("kernel", jaxinit.orthogonal()), ("bias", jaxinit.zeros)])
    for w in np.asarray(stack.kernel[...]):
        assert _ortho_error(w) <= F32_ORTHO_TOL


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_linen_layers_are_found_by_tracing_init():
    net, x = fm.LinenNet(), jnp.zeros((16, 4, 64))
    layers = jf.linen_layers(net, x)
    assert layers["batched/kernel"].layer == "nn.DenseGeneral"
    assert layers["stack/fc/kernel"].layer == "nn.Dense"
    variables = net.init(KEY, x)
    rules = [("kernel|embedding", jaxinit.lecun_normal()), ("bias", jaxinit.zeros)]
    rows = {r.path: r for r in jf.plan(variables, rules, layers=layers)}
    fan_in = {p: r.fan_in for p, r in rows.items() if p.endswith(("kernel", "embedding"))}
    assert fan_in == {
        "params/batched/kernel": 64,  # DenseGeneral batch_dims=(0,): (16, 64, 32)
        "params/heads/kernel": 512,  # Einsum 'bd,dhk->bhk': (512, 4, 16)
        "params/embed/embedding": 64,
        "params/stack/fc/kernel": 64,  # nn.scan: (3, 64, 64), the layer axis is batch
        "params/conv/kernel": 9,
    }
    # Without the layers, linen parameters keep the initializer's own axes.
    plain = {r.path: r.fan_in for r in jf.plan(variables, rules)}
    assert plain["params/batched/kernel"] == 16 * 64
    out = jf.reinit(variables, KEY, rules, layers=layers)
    stats.assert_std(out["params"]["batched"]["kernel"], 1 / 8, TN, "DenseGeneral")


# -- abstract models and their non-parameter state -------------------------------------------------
class _WithState(nnx.Module):
    """Parameters, BatchNorm statistics and a Dropout that keeps an RNG stream."""

    def __init__(self, rngs: nnx.Rngs):
        self.lin = nnx.Linear(8, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)


def _abstract_values(model: nnx.Module) -> dict:
    """path -> (variable type, shape, dtype, sharding metadata) of every variable."""
    return {
        path: (type(v).__name__, v.get_value().shape, v.get_value().dtype,
               v.get_metadata().get("out_sharding"))
        for path, v in nnx.to_flat_state(nnx.state(model))
    }  # fmt: skip


def test_abstract_is_eval_shape_of_the_factory():
    for factory in (_WithState, fm.ShardedMLP):
        with jax.set_mesh(_mesh(AxisType.Explicit)):
            ours = jf.abstract(lambda rngs, f=factory: f(rngs))
            theirs = nnx.eval_shape(lambda f=factory: f(nnx.Rngs(0)))
        assert type(ours) is type(theirs)
        assert _abstract_values(ours) == _abstract_values(theirs)
        assert all(isinstance(v.get_value(), jax.ShapeDtypeStruct)
                   for _, v in nnx.to_flat_state(nnx.state(ours)))  # fmt: skip


@pytest.mark.parametrize("make", ["abstract", "eval_shape"])
def test_reinit_of_an_abstract_model_gives_a_normal_module(make):
    """RNG streams kept by modules are keyed from reinit's key by path, with count 0; BatchNorm
    statistics start at 0 and 1; the module then runs in train mode."""
    if make == "abstract":
        model = jf.abstract(_WithState)
    else:
        model = nnx.eval_shape(lambda: _WithState(nnx.Rngs(0, dropout=1)))
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.zeros), ("scale", jaxinit.ones)]
    model = jf.reinit(model, KEY, rules)
    key = model.drop.rngs.key.get_value()
    expected = jf.path_key(KEY, "drop/rngs/key")
    assert (jax.random.key_data(key) == jax.random.key_data(expected)).all()
    assert int(model.drop.rngs.count.get_value()) == 0
    assert (model.bn.mean[...] == 0).all() and (model.bn.var[...] == 1).all()
    x = jnp.ones((4, 8))
    y1, y2 = model.drop(x), model.drop(x)
    assert not (y1 == y2).all() and set(np.unique(np.asarray(y1))) <= {0.0, 2.0}
    model.bn(x)  # train mode: the statistics update
    assert not (model.bn.mean[...] == 0).all()


def test_abstract_state_with_no_known_start_is_refused_naming_it():
    class Counter(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(2, 2, rngs=rngs)
            self.steps = nnx.BatchStat(jnp.zeros((), jnp.int32))

    model = nnx.eval_shape(lambda: Counter(nnx.Rngs(0)))
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.zeros)]
    with pytest.raises(
        ValueError, match=r"1 non-parameter variable.*'steps'.*jaxinit.flax.abstract"
    ):
        jf.reinit(model, KEY, rules)


@pytest.mark.parametrize("factory", [3, lambda: nnx.Linear(2, 2, rngs=nnx.Rngs(0))])
def test_abstract_needs_a_factory_of_the_rngs(factory):
    with pytest.raises(TypeError, match=r"builds the model from the `nnx\.Rngs` it is given"):
        jf.abstract(factory)


# -- 5. grouped generation -------------------------------------------------------------------------
def test_groups_do_not_grow_with_depth():
    """Same-shaped parameters of one random initializer are one `lax.map`: the number of
    random computations is the same for 2 and 8 blocks. (Constants are not grouped: a fill
    costs next to nothing to compile, and a loop would cost more.)"""

    def n_random(depth: int) -> int:
        abstract = nnx.eval_shape(lambda: fm.Tower(depth, nnx.Rngs(0)))
        jobs, _ = flax_adapter.prepare(abstract, RULES)
        gens = [flax_generate._placement(j, flax_generate._mesh(jobs))[0] for j in jobs]
        chunks = flax_generate.chunks(jobs, gens, flax_generate.GROUP_BYTES)
        return sum(jobs[c[0]].init.random for c in chunks)

    assert n_random(2) == n_random(8) < 10


def test_small_fills_are_built_on_the_host_with_their_own_bits():
    """zeros/ones/scalar constants up to FILL_HOST_BYTES cost no kernel each: one element is
    computed by the initializer, the rest filled on the host, in each parameter's dtype and
    sharding; a larger fill stays in the program. The bits are the initializer's own."""
    tree = {
        "a": jax.ShapeDtypeStruct((256,), jnp.float32),
        "b": jax.ShapeDtypeStruct((3, 5), jnp.bfloat16),
        "c": jax.ShapeDtypeStruct((7,), jnp.int8),
        "big": jax.ShapeDtypeStruct((1025, 1024), jnp.float32),  # > 4 MiB
        "k": jax.ShapeDtypeStruct((16, 16), jnp.float32),
    }
    rules = [("a|big", jaxinit.zeros), ("b", jaxinit.constant(0.1)), ("c", jaxinit.ones),
             ("k", jaxinit.he_normal())]  # fmt: skip
    jobs, _ = flax_adapter.prepare(tree, rules)
    program = flax_generate.program(jobs, flax_generate.GROUP_BYTES)
    assert sorted(jobs[i].path for i, _ in program.fills) == ["a", "b", "c"]
    assert sorted(jobs[c[0]].path for c in program.plan) == ["big", "k"]
    out = jf.reinit(tree, KEY, rules)
    for path, want in _expected(jf.plan(tree, rules), KEY).items():
        assert out[path].dtype == want.dtype and out[path].sharding == want.sharding
        _assert_bitwise(out[path], want)


def test_reinit_inside_jit_has_the_eager_bits():
    """Traced (inside the caller's jit), nothing goes through the host: fills and groups are
    made in the program, with the same bits."""
    tree = {
        "a": jax.ShapeDtypeStruct((64,), jnp.float32),
        "b": jax.ShapeDtypeStruct((16, 16), jnp.float32),
        "c": jax.ShapeDtypeStruct((16, 32), jnp.float32),
        "d": jax.ShapeDtypeStruct((16, 16), jnp.float32),
    }
    rules = [("a", jaxinit.ones), ("b|d", jaxinit.normal(0.1)), ("c", jaxinit.he_normal())]
    eager = jf.reinit(tree, KEY, rules)
    traced = jax.jit(lambda k: jf.reinit(tree, k, rules))(KEY)
    for path in tree:
        _assert_bitwise(traced[path], eager[path])


# -- 6. partition metadata -> out_sharding ---------------------------------------------------------
@pytest.mark.slow  # over 5 s: the fast lane leaves it out
@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_abstract_sharded_model_is_born_in_its_shardings(axis_type):
    mesh = _mesh(axis_type)
    rules = [("down/kernel", jaxinit.orthogonal()), *RULES]
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: fm.ShardedMLP(nnx.Rngs(0)))
        rows = jf.plan(abstract, rules)
        model = jf.reinit(abstract, KEY, rules)
    params = _params(model)
    specs = {"up/kernel": P("data", "model"), "down/kernel": P("model", "data")}
    for row in rows:
        value = params[row.path]
        want = NamedSharding(mesh, specs.get(row.path, P()))
        assert value.sharding.is_equivalent_to(want, value.ndim), (row.path, value.sharding)
        ref = row.initializer(jf.path_key(KEY, row.path), row.shape, row.dtype)
        if row.path == "down/kernel":  # orthogonal formed block by block: tier 1 allows 2e-6
            assert float(jnp.abs(value - ref).max()) <= 2e-6
        else:
            _assert_bitwise(value, ref)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_concrete_sharded_model_keeps_its_shardings():
    mesh = _mesh()
    with jax.set_mesh(mesh):
        model = fm.ShardedMLP(nnx.Rngs(0))
    before = {p: v.sharding for p, v in _params(model).items()}
    jf.reinit(model, KEY, RULES)
    for path, value in _params(model).items():
        assert value.sharding == before[path], path


def test_linen_logical_partitioning_reaches_the_initializer():
    mesh = _mesh()
    shapes = jax.eval_shape(fm.LinenLogical().init, KEY, jnp.ones((1, 128)))
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.normal(0.1))]
    with jax.set_mesh(mesh), nn.logical_axis_rules((("embed", "data"), ("mlp", "model"))):
        out = jf.reinit(shapes, KEY, rules)
    box = out["params"]["fc"]["kernel"]
    assert isinstance(box, nn.LogicallyPartitioned) and box.names == ("embed", "mlp")
    assert box.value.sharding.is_equivalent_to(NamedSharding(mesh, P("data", "model")), 2)
    assert out["params"]["fc"]["bias"].value.sharding.spec == P("model")
    want = jaxinit.he_normal()(jf.path_key(KEY, "params/fc/kernel"), (128, 256))
    _assert_bitwise(box.value, want)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_jax_initializers_work_as_rules_and_are_placed_too(axis_type):
    mesh = _mesh(axis_type)
    rules = [("kernel", jax.nn.initializers.lecun_normal()), (".*", jax.nn.initializers.zeros)]
    with jax.set_mesh(mesh):
        model = jf.reinit(nnx.eval_shape(lambda: fm.ShardedMLP(nnx.Rngs(0))), KEY, rules)
    kernel = model.up.kernel[...]
    assert kernel.sharding.is_equivalent_to(NamedSharding(mesh, P("data", "model")), 2)
    want = jax.nn.initializers.lecun_normal()(jf.path_key(KEY, "up/kernel"), kernel.shape)
    _assert_bitwise(kernel, want)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_unsharded_parameters_are_initialized_under_any_mesh(axis_type):
    """Parameters that carry no sharding, re-initialized inside a mesh: an abstract one is
    replicated on the mesh, a concrete one stays on its device; the values are those outside."""
    abstract = {"k": jax.ShapeDtypeStruct((8, 8), jnp.float32)}
    rules = [("k", jaxinit.he_normal())]
    layer_rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.zeros)]
    outside = jf.reinit(abstract, KEY, rules)["k"]
    layer = nnx.Linear(16, 32, rngs=nnx.Rngs(0))
    device = layer.kernel[...].sharding
    want = jf.reinit(nnx.Linear(16, 32, rngs=nnx.Rngs(0)), KEY, layer_rules).kernel[...]
    mesh = _mesh(axis_type)
    with jax.set_mesh(mesh):
        inside = jf.reinit(abstract, KEY, rules)["k"]
        layer = jf.reinit(layer, KEY, layer_rules)
    assert inside.sharding.is_equivalent_to(NamedSharding(mesh, P()), 2)
    _assert_bitwise(inside, outside)
    assert layer.kernel[...].sharding == device
    _assert_bitwise(layer.kernel[...], want)


def test_logical_boxes_without_a_mesh_are_unsharded_as_in_flax():
    shapes = jax.eval_shape(fm.LinenLogical().init, KEY, jnp.ones((1, 128)))
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.normal(0.1))]
    out = jf.reinit(shapes, KEY, rules)  # no mesh anywhere: Flax's own init is unsharded too
    box = out["params"]["fc"]["kernel"]
    assert isinstance(box, nn.LogicallyPartitioned) and box.names == ("embed", "mlp")
    assert len(box.value.sharding.device_set) == 1
    want = jaxinit.he_normal()(jf.path_key(KEY, "params/fc/kernel"), (128, 256))
    _assert_bitwise(box.value, want)


def test_a_mesh_without_logical_rules_warns_once_naming_the_replicated_parameters():
    shapes = jax.eval_shape(fm.LinenLogical().init, KEY, jnp.ones((1, 128)))
    rules = [("kernel", jaxinit.he_normal()), ("bias", jaxinit.normal(0.1))]
    with jax.set_mesh(_mesh()), pytest.warns(UserWarning) as record:
        out = jf.reinit(shapes, KEY, rules)
    messages = [str(w.message) for w in record if "logical axis rules" in str(w.message)]
    assert len(messages) == 1
    assert "params/fc/kernel" in messages[0] and "params/fc/bias" in messages[0]
    assert out["params"]["fc"]["kernel"].value.sharding.is_fully_replicated


def test_a_rule_that_matches_nothing_is_refused_in_strict_mode():
    """A misspelled rule ("kernal") would let the catch-all after it zero every kernel."""
    params = {"dense": {"kernel": jnp.ones((4, 4)), "bias": jnp.ones(4)}}
    rules = [("kernal", jaxinit.he_normal()), ("", jaxinit.zeros)]
    with pytest.raises(ValueError, match=r"1 rule\(s\) match no parameter.*rule 0 \('kernal'"):
        jf.reinit(params, KEY, rules)
    out = jf.reinit(params, KEY, rules, strict=False)  # not strict: as asked
    assert not np.asarray(out["dense"]["kernel"]).any()
    rules = [("kernel", jaxinit.he_normal()), ("scale", jf.optional(jaxinit.ones)), ("", None)]
    assert jf.reinit(params, KEY, rules)["dense"]["bias"] is params["dense"]["bias"]
    assert jf.plan(params, [("kernal", jaxinit.he_normal())])  # plan reports, never refuses


def test_a_bad_regex_names_its_rule():
    params = {"kernel": jnp.ones((4, 4))}
    with pytest.raises(ValueError, match=r"rule 1: the pattern 'kernel\(' is not a valid"):
        jf.reinit(params, KEY, [("bias", jaxinit.zeros), ("kernel(", jaxinit.he_normal())])


def test_non_float_leaves_are_only_rewritten_by_a_rule_that_names_them():
    tree = {
        "kernel": jnp.ones((4, 4)),
        "mask": jnp.ones((4,), bool),
        "step": jnp.int32(7),
        "rng": jax.random.key(3),  # a typed key: never an initializer's
        "table": np.arange(4.0),  # a NumPy leaf holds values
    }
    out = jf.reinit(tree, KEY, [("kernel", jaxinit.he_normal()), ("", jaxinit.zeros)])
    assert bool(out["mask"].all()) and int(out["step"]) == 7  # the catch-all leaves them
    assert out["rng"] is tree["rng"]
    assert not np.asarray(out["table"]).any()  # a float leaf: the catch-all takes it
    named = jf.reinit(tree, KEY, [("step", jaxinit.zeros)], strict=False)
    assert int(named["step"]) == 0 and bool(named["mask"].all())
    np.testing.assert_array_equal(named["table"], tree["table"])  # kept, not "abstract"


def test_abstract_mesh_without_a_concrete_one_is_a_clear_error():
    with jax.set_mesh(_mesh()):
        abstract = nnx.eval_shape(lambda: fm.ShardedMLP(nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"parameter '.+' is annotated .*`jax.set_mesh"):
        jf.reinit(abstract, KEY, RULES)
    model = jf.reinit(abstract, KEY, RULES, mesh=_mesh())  # or pass the mesh
    assert model.up.kernel[...].sharding.spec == P("data", "model")


def _temp_bytes(abstract, rules, mesh) -> tuple[int, list[flax_generate.Job]]:
    with jax.set_mesh(mesh):
        jobs, _ = flax_adapter.prepare(abstract, rules)
        program = flax_generate.program(jobs, flax_generate.GROUP_BYTES)
        compiled = program.lower(KEY).compile()
    return compiled.memory_analysis().temp_size_in_bytes, jobs


def _device_bytes(jobs) -> float:
    return sum(flax_generate._device_bytes(j, j.sharding) for j in jobs)


# Slack for the scalars and keys of the computation.
SLACK = 64 * 1024


@pytest.mark.parametrize("init", [jaxinit.he_normal(), jaxinit.orthogonal()], ids=lambda i: i.name)
def test_a_sharded_parameter_is_never_built_whole(init):
    """One (2048, 2048) kernel over 8 devices: temporaries stay below half the full array.

    jax's threefry keeps two uint32 words per generated element, so generating a shard costs
    about 3 shards of temporaries (measured 3.0 for normals, 2.5 for orthogonal); the full array
    is 8 shards, so a bound of 4 shards fails whenever a whole array is formed anywhere."""
    mesh = _mesh()
    with jax.set_mesh(mesh):
        spec = {"out_sharding": ("data", "model")}
        make = lambda: nnx.Linear(
            2048, 2048, use_bias=False, kernel_metadata=spec, rngs=nnx.Rngs(0)
        )
        abstract = nnx.eval_shape(make)
    temp, _ = _temp_bytes(abstract, [("kernel", init)], mesh)
    shard = 2048 * 2048 * 4 / 8
    assert temp <= 4 * shard + SLACK, f"{temp / shard:.2f} shards"


def test_whole_model_temporaries_are_a_few_times_its_shards():
    """Per device, the reinit computation's temporaries stay below 1.5x the parameters' own
    per-device bytes (measured 0.98x): a group's loop holds one member's draws at a time (2
    threefry words + the float draw per element), and the stacked group is an output, split
    afterwards. Never a multiple of the global sizes, which are 8x (2x4 mesh, fully sharded)
    larger."""
    mesh = _mesh()
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(
            lambda: nnx.List([fm.ShardedMLP(nnx.Rngs(i), 256) for i in range(4)])
        )
    temp, jobs = _temp_bytes(abstract, RULES, mesh)
    assert temp <= 1.5 * _device_bytes(jobs) + SLACK, f"{temp / _device_bytes(jobs):.2f}x"


# -- 7. plan ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "init"),
    [
        ({"layer": {"bias": jnp.ones(16)}}, jaxinit.orthogonal()),  # rank 1
        ({"layer": {"bias": jnp.ones(16)}}, jaxinit.he_normal()),  # no fans for a vector
        ({"w": jnp.ones((3, 4), jnp.complex64)}, jaxinit.uniform()),  # real-only scheme
        ({"k": jnp.ones((3, 3, 16, 8))}, jaxinit.delta_orthogonal()),  # in > out
        ({"k": jnp.ones((4, 6))}, jaxinit.sparse(None, nonzeros=5)),  # nonzeros > fan_in
    ],
    ids=["orthogonal-1d", "he-1d", "uniform-complex", "delta-in>out", "sparse-nonzeros"],
)
def test_plan_refuses_exactly_what_reinit_refuses_with_the_same_message(params, init):
    """`plan` asks the initializer what a call would refuse: it never reports a std for a
    parameter that `reinit` then refuses, and both name the parameter."""
    rules = [("", init)]
    with pytest.raises((ValueError, TypeError)) as planned:
        jf.plan(params, rules)
    with pytest.raises((ValueError, TypeError)) as generated:
        jf.reinit(params, jax.random.key(0), rules)
    assert type(planned.value) is type(generated.value)
    assert str(planned.value) == str(generated.value)
    path = next(iter(jax.tree_util.tree_leaves_with_path(params)))[0]
    assert f"parameter {'/'.join(k.key for k in path)!r}" in str(planned.value)


def test_plan_accepts_what_reinit_accepts_including_empty_shapes():
    params = {"empty": jnp.ones((0, 8)), "bias": jnp.ones(0)}
    rows = jf.plan(params, [("", jaxinit.orthogonal())])
    assert [r.std for r in rows] == [None, None]
    jf.reinit(params, jax.random.key(0), [("", jaxinit.orthogonal())])


def test_plan_rows_describe_each_parameter_without_computing():
    class Boom:
        """An initializer that must never be called by `plan`."""

        def __call__(self, key, shape, dtype=None):
            raise AssertionError("plan computed something")

    abstract = nnx.eval_shape(lambda: fm.Named(("a", "b", "c", "d"), nnx.Rngs(0)))
    rules = [
        ("a/kernel", jaxinit.truncated_normal(0.02)),
        ("b/kernel", jaxinit.orthogonal(2.0)),
        ("c/kernel", jaxinit.variance_scaling(3.0, "fan_avg", "uniform")),
        ("d/kernel", Boom()),
        ("a/bias", jaxinit.zeros),
        ("b/bias", jaxinit.normal(0.5)),
        ("c/bias", jaxinit.uniform_range(-1.0, 1.0)),
    ]
    rows = {r.path: r for r in jf.plan(abstract, rules)}
    assert len(rows) == 8
    row = rows["a/kernel"]
    assert (row.shape, row.dtype, row.sharding) == ((32, 32), np.dtype("float32"), None)
    assert row.std == pytest.approx(0.02 * stats.TRUNC_STD_2)  # pre-truncation stddev
    assert rows["b/kernel"].std == pytest.approx(2.0 / 32**0.5)
    assert rows["c/kernel"].std == pytest.approx((3.0 / 32) ** 0.5)
    assert (rows["c/kernel"].fan_in, rows["c/kernel"].fan_out) == (32, 32)
    assert rows["d/kernel"].std is None and rows["d/kernel"].fan_in == 32  # layer axes
    assert rows["a/bias"].std == 0.0 and rows["b/bias"].std == 0.5
    assert rows["c/bias"].std == pytest.approx(2.0 / 12**0.5)
    assert rows["d/bias"].initializer is None and rows["d/bias"].std is None  # unmatched
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.std = 1.0  # type: ignore[misc]


# -- 8. fused recurrent kernels --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "gates"),
    [(nnx.OptimizedLSTMCell, 4), (nnx.GRUCell, 3)],
    ids=["optimized_lstm", "gru"],
)
def test_gated_orthogonal_makes_every_gate_block_orthogonal(cell, gates):
    h = 32
    model = cell(16, h, rngs=nnx.Rngs(0))
    blocks = lambda w: [np.asarray(w)[:, g * h : (g + 1) * h] for g in range(gates)]
    # Flax's default: one orthogonal over the fused (h, gates*h) matrix, blocks far from it.
    assert min(_ortho_error(b) for b in blocks(model.dense_h.kernel[...])) > 0.5
    rules = [("dense_h/kernel", jf.gated_orthogonal(gates)), (".*", None)]
    jf.reinit(model, KEY, rules)
    for block in blocks(model.dense_h.kernel[...]):
        assert _ortho_error(block) <= F32_ORTHO_TOL


def test_gated_orthogonal_stacked_and_rectangular_blocks():
    w = jf.gated_orthogonal(4, scale=2.0)(KEY, (3, 8, 64))  # 3 layers, blocks (8, 16)
    for layer in np.asarray(w) / 2.0:
        for g in range(4):
            assert _ortho_error(layer[:, g * 16 : (g + 1) * 16]) <= F32_ORTHO_TOL
    assert not np.array_equal(np.asarray(w[0]), np.asarray(w[1]))  # independent layers
    with pytest.raises(ValueError, match="`gates`=4"):
        jf.gated_orthogonal(4)(KEY, (8, 30))
    with pytest.raises(ValueError, match="`gates` must be >= 1"):
        jf.gated_orthogonal(0)


def test_lstm_forget_bias_sets_the_forget_gate_of_flax_gate_order():
    h = 8
    cell = nnx.OptimizedLSTMCell(4, h, rngs=nnx.Rngs(0))
    rules = [("kernel", jaxinit.zeros), ("dense_h/bias", jf.lstm_forget_bias(2.0))]
    jf.reinit(cell, KEY, rules)
    bias = np.asarray(cell.dense_h.bias[...])
    np.testing.assert_array_equal(bias, np.repeat([0.0, 2.0, 0.0, 0.0], h).astype(np.float32))
    # Behaviour, not layout: with zero kernels the new cell state is sigmoid(f) * c + i * g,
    # and g = tanh(0) = 0, so c' = sigmoid(2) * c exactly when block 1 is Flax's forget gate.
    c = jnp.ones((1, h))
    (new_c, _), _ = cell((c, jnp.zeros((1, h))), jnp.zeros((1, 4)))
    np.testing.assert_allclose(np.asarray(new_c), np.full((1, h), jax.nn.sigmoid(2.0)), rtol=1e-6)
    with pytest.raises(ValueError, match="`forget_gate`=4 must be < `gates`=4"):
        jf.lstm_forget_bias(forget_gate=4)
