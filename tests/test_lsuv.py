"""LSUV (docs/design.md): `jaxinit.flax.lsuv` (NNX, in place) and `lsuv_linen` (functional).

Every check of the post-condition recomputes each layer's output std independently of the
capture mechanism under test: NNX models by calling their layers one by one, linen ones through
Flax's own ``capture_intermediates``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxinit._src.flax import lsuv as lsuv_lib
from jaxinit._src.flax.lsuv import lsuv
from jaxinit._src.flax.lsuv_linen import lsuv_linen

pytestmark = pytest.mark.slow  # data-dependent init of whole models: left out of the fast lane

KEY = jax.random.key(0)
TOL = 0.1
#: The recomputation runs eagerly, the statistics under jit: the two stds differ by float32
#: rounding (a few ulps of 1.0), far below this slack on top of `tol`.
FP_SLACK = 1e-5
#: A tight `tol` for checks of precision: without a bias one rescaling is exact,
#: std(c W x) = c std(W x), up to float32 rounding (relative ~1e-6), so LSUV meets it in one step.
TIGHT = 1e-3
#: Orthogonality of a float32 kernel after one scalar rescaling: f32 construction error ~1e-6.
ORTHO_TOL = 1e-5


def _x(shape: tuple[int, ...], seed: int = 1) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape)


class MLP(nnx.Module):
    """`depth` Linear layers of width `d` with `act` between them."""

    def __init__(self, depth: int, d: int, act, rngs: nnx.Rngs, use_bias: bool = True):
        self.act = act
        self.layers = nnx.List(
            [nnx.Linear(d, d, use_bias=use_bias, rngs=rngs) for _ in range(depth)]
        )

    def __call__(self, x):
        for layer in self.layers:
            x = self.act(layer(x))
        return x

    def layer_stds(self, x) -> list[float]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(float(jnp.std(x)))
            x = self.act(x)
        return out


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(3, 16, (3, 3), rngs=rngs)
        self.c2 = nnx.Conv(16, 32, (3, 3), strides=2, rngs=rngs)
        self.head = nnx.Linear(4 * 4 * 32, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.c2(nnx.relu(self.c1(x))))
        return self.head(x.reshape(x.shape[0], -1))

    def layer_stds(self, x) -> list[float]:
        h1 = self.c1(x)
        h2 = self.c2(nnx.relu(h1))
        h3 = self.head(nnx.relu(h2).reshape(x.shape[0], -1))
        return [float(jnp.std(h)) for h in (h1, h2, h3)]


def _assert_within(stds: list[float], target: float = 1.0, tol: float = TOL) -> None:
    bad = {i: s for i, s in enumerate(stds) if not abs(s - target) <= tol + FP_SLACK}
    assert not bad, f"layers off target {target} +- {tol}: {bad}"


def _ortho_error(w: np.ndarray) -> float:
    """max |W^T W / c^2 - I| (W W^T for wide W), c^2 the mean diagonal: orthogonal up to scale."""
    w = np.asarray(w, np.float64)
    w = w if w.shape[0] >= w.shape[1] else w.T
    g = w.T @ w
    return float(np.abs(g / np.diag(g).mean() - np.eye(g.shape[0])).max())


# -- the post-condition ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("act", "orthogonal"), [(jnp.tanh, True), (nnx.relu, False)], ids=["tanh-ortho", "relu"]
)
def test_deep_mlp_every_layer_hits_the_target(act, orthogonal):
    model = MLP(10, 64, act, nnx.Rngs(0))
    x = _x((128, 64))
    assert lsuv(model, x, key=KEY, orthogonal=orthogonal) is model
    _assert_within(model.layer_stds(x))


def test_cnn_every_layer_hits_a_target_std():
    model = CNN(nnx.Rngs(0))
    x = _x((16, 8, 8, 3))
    lsuv(model, x, orthogonal=False, target_std=0.5, tol=TIGHT)  # zero biases: exact
    _assert_within(model.layer_stds(x), 0.5, TIGHT)


def test_biased_layers_iterate_into_tol():
    """Without pre-init the (nonzero) biases stay and rescaling the kernel is not exact."""
    model = MLP(4, 64, jnp.tanh, nnx.Rngs(0))
    for i, layer in enumerate(model.layers):
        layer.bias[...] = 0.5 * _x((64,), seed=10 + i)
    bias = [np.asarray(layer.bias[...]) for layer in model.layers]
    lsuv(model, _x((128, 64)), orthogonal=False, tol=0.02)
    _assert_within(model.layer_stds(_x((128, 64))), tol=0.02)
    for before, layer in zip(bias, model.layers, strict=True):
        np.testing.assert_array_equal(before, layer.bias[...])


def test_linen_gives_the_same_property_and_leaves_params_untouched():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i in range(6):
                x = nn.relu(nn.Dense(64, name=f"fc{i}")(x))
            return x

    net, x = Net(), _x((128, 64))
    params = net.init(KEY, x)["params"]
    before = jax.tree.map(np.array, params)
    new = lsuv_linen(net.apply, params, x, key=KEY, target_std=2.0, tol=TIGHT)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, params), before)
    assert jax.tree.structure(new) == jax.tree.structure(params)
    _, state = net.apply({"params": new}, x, capture_intermediates=True, mutable=["intermediates"])
    stds = [float(jnp.std(state["intermediates"][f"fc{i}"]["__call__"][0])) for i in range(6)]
    _assert_within(stds, 2.0, TIGHT)


# -- orthogonal pre-init ---------------------------------------------------------------------------
class Mixed(nnx.Module):
    """Conv, LinearGeneral with two output axes (attention-style), and Linear."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(4, 32, (3, 3), rngs=rngs)
        self.heads = nnx.LinearGeneral(32, (4, 16), rngs=rngs)
        self.out = nnx.Linear(64, 48, rngs=rngs)

    def __call__(self, x):  # x: (n, 6, 6, 4)
        h = self.heads(nnx.relu(self.conv(x)))  # (n, 6, 6, 4, 16)
        return self.out(h.reshape(*h.shape[:-2], 64))


def test_orthogonal_preinit_along_the_layers_fan_axes():
    model = Mixed(nnx.Rngs(0))
    lsuv(model, _x((8, 6, 6, 4)), key=KEY)
    kernels = {
        "conv": model.conv.kernel[...].reshape(36, 32),  # (kh kw in, out)
        "heads": model.heads.kernel[...].reshape(32, 64),  # (in, heads * head_dim)
        "out": model.out.kernel[...],
    }
    for name, w in kernels.items():
        assert _ortho_error(w) <= ORTHO_TOL, name
    for layer in (model.conv, model.heads, model.out):
        assert not np.any(layer.bias[...])


def test_orthogonal_false_only_rescales():
    model = MLP(3, 64, jnp.tanh, nnx.Rngs(0), use_bias=False)
    before = [np.asarray(layer.kernel[...]) for layer in model.layers]
    lsuv(model, _x((64, 64)), orthogonal=False, target_std=3.0)
    for w0, layer in zip(before, model.layers, strict=True):
        ratio = np.asarray(layer.kernel[...]) / w0  # one scalar per layer (f32 rounding)
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
        assert ratio.flat[0] > 1.5  # it did rescale


# -- sharding --------------------------------------------------------------------------------------
class ShardedMLP(nnx.Module):
    """Both kernels sharded, along axes whose matmuls are unambiguous under an Explicit mesh."""

    def __init__(self, rngs: nnx.Rngs, d: int = 64):
        part = lambda names: nnx.with_partitioning(nnx.initializers.lecun_normal(), names)
        self.up = nnx.Linear(d, 4 * d, kernel_init=part(("data", None)), rngs=rngs)
        self.down = nnx.Linear(4 * d, d, kernel_init=part(("model", None)), rngs=rngs)

    def __call__(self, x):
        return self.down(nnx.relu(self.up(x)))


def _mesh(axis_type: AxisType) -> jax.sharding.Mesh:
    return jax.make_mesh((2, 4), ("data", "model"), axis_types=(axis_type,) * 2)


@pytest.mark.parametrize(
    ("axis_type", "orthogonal"),
    [(AxisType.Auto, False), (AxisType.Explicit, True)],
    ids=["auto", "explicit-ortho"],
)
def test_sharded_model_keeps_its_shardings(axis_type, orthogonal):
    mesh, x = _mesh(axis_type), _x((64, 64))
    with jax.set_mesh(mesh):
        model = ShardedMLP(nnx.Rngs(0))
        before = {p: v.sharding for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
        lsuv(model, x, key=KEY, orthogonal=orthogonal, tol=TIGHT)
        for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
            assert var.sharding == before[path], path
        kernel = model.up.kernel[...]
        assert kernel.sharding.is_equivalent_to(NamedSharding(mesh, P("data", None)), 2)
        h = model.up(x)
        _assert_within([float(jnp.std(h)), float(jnp.std(model.down(nnx.relu(h))))], 1.0, TIGHT)


def test_sharded_linen_params_keep_their_shardings():
    net, x = nn.Sequential([nn.Dense(256), nn.relu, nn.Dense(64)]), _x((64, 64))
    specs = {
        "layers_0": {"kernel": P("data", "model"), "bias": P("model")},
        "layers_2": {"kernel": P("model", "data"), "bias": P()},
    }
    mesh = _mesh(AxisType.Auto)
    params = jax.tree.map(
        lambda v, s: jax.device_put(v, NamedSharding(mesh, s)), net.init(KEY, x)["params"], specs
    )
    new = lsuv_linen(net.apply, params, x, orthogonal=False, tol=TIGHT)
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(new), strict=True
    ):
        assert b.sharding == a.sharding, path
    h = x @ new["layers_0"]["kernel"]  # Dense biases start at zero
    _assert_within([float(jnp.std(h))], 1.0, TIGHT)


# -- errors and warnings ---------------------------------------------------------------------------
def test_too_small_batch_is_refused():
    model = MLP(2, 8, jnp.tanh, nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"`batch` is too small.*at least 2 .*\(1, 8\)"):
        lsuv(model, jnp.ones((1, 8)), key=KEY)
    with pytest.raises(ValueError, match=r"layer 'layers/0' outputs 24 element.*at least 32"):
        lsuv(model, _x((3, 8)), key=KEY)
    with pytest.raises(ValueError, match=r"`batch` is too small"):
        lsuv_linen(nn.Dense(64).apply, {}, jnp.ones((1, 64)), key=KEY)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target_std": 0.0}, ValueError, r"`target_std` must be > 0; got 0.0"),
        ({"target_std": -1.0}, ValueError, r"`target_std` must be > 0"),
        ({"target_std": float("nan")}, ValueError, r"`target_std` must be finite"),
        ({"tol": 0}, ValueError, r"`tol` must be > 0; got 0"),
        ({"max_iters": 0}, ValueError, r"`max_iters` must be >= 1; got 0"),
        ({"max_iters": 2.5}, TypeError, r"`max_iters` must be an integer"),
        ({"key": None}, ValueError, r"`key` is required .*orthogonal=False"),
        ({"orthogonal": 1}, TypeError, r"`orthogonal` must be a bool"),
        ({"layers": "fc"}, TypeError, r"`layers` must be None or a sequence"),
        ({"layers": ["nothing"]}, ValueError, r"\['nothing'\] select no layer.*'layers/0'"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    model = MLP(2, 64, jnp.tanh, nnx.Rngs(0))
    w = np.asarray(model.layers[0].kernel[...])
    with pytest.raises(error, match=match):
        lsuv(model, _x((64, 64)), **{"key": KEY, **kwargs})
    np.testing.assert_array_equal(model.layers[0].kernel[...], w)  # refused before any work


def test_non_convergence_warns_naming_the_layer():
    """A bias of std 3 puts the output std above 3 whatever the kernel: target 1 is out of reach."""
    model = MLP(2, 64, jnp.tanh, nnx.Rngs(0))
    model.layers[1].bias[...] = 3.0 * _x((64,), seed=7)
    with pytest.warns(UserWarning, match=r"layer 'layers/1' did not converge in max_iters=2"):
        lsuv(model, _x((64, 64)), orthogonal=False, max_iters=2)
    assert abs(model.layer_stds(_x((64, 64)))[0] - 1.0) <= TOL  # the others still converged


def test_dead_layers_warn_and_are_left_alone():
    """A zero kernel and no bias: layer 0 outputs zeros, so layer 1 (tanh(0) = 0 in) does too."""
    model = MLP(2, 64, jnp.tanh, nnx.Rngs(0), use_bias=False)
    model.layers[0].kernel[...] = jnp.zeros((64, 64))
    w1 = np.asarray(model.layers[1].kernel[...])
    with pytest.warns(UserWarning, match="outputs a constant") as record:
        lsuv(model, _x((64, 64)), orthogonal=False)
    assert [str(w.message).split("'")[1] for w in record] == ["layers/0", "layers/1"]
    assert not np.any(model.layers[0].kernel[...])
    np.testing.assert_array_equal(model.layers[1].kernel[...], w1)


def test_uncalled_layers_warn_and_keep_their_values():
    """A head the forward pass never calls is named, and left exactly as it was."""

    class WithHead(nnx.Module):
        def __init__(self, rngs):
            self.body = nnx.Linear(64, 64, rngs=rngs)
            self.head = nnx.Linear(64, 10, rngs=rngs)

        def __call__(self, x):
            return self.body(x)

    model = WithHead(nnx.Rngs(0))
    head = np.asarray(model.head.kernel[...])
    with pytest.warns(UserWarning, match=r"1 layer\(s\) with a kernel were never called.*'head'"):
        lsuv(model, _x((64, 64)), orthogonal=False)
    np.testing.assert_array_equal(model.head.kernel[...], head)

    class LinenWithHead(nn.Module):
        def setup(self):
            self.body = nn.Dense(64)
            self.head = nn.Dense(10)

        def __call__(self, x, head: bool = False):
            return self.head(self.body(x)) if head else self.body(x)

    net, x = LinenWithHead(), _x((64, 64))
    params = net.init(KEY, x, head=True)["params"]
    with pytest.warns(UserWarning, match=r"never called by the forward pass.*'head'"):
        new = lsuv_linen(net.apply, params, x, orthogonal=False)
    np.testing.assert_array_equal(new["head"]["kernel"], params["head"]["kernel"])


# -- layer choice, order and side effects ----------------------------------------------------------
def test_layers_patterns_choose_and_forward_order_is_the_call_order():
    """Attributes created in reverse of the call order; only `b` and `c` chosen."""

    class Rev(nnx.Module):
        def __init__(self, rngs):
            self.c = nnx.Linear(64, 64, use_bias=False, rngs=rngs)
            self.b = nnx.Linear(64, 64, use_bias=False, rngs=rngs)
            self.a = nnx.Linear(64, 64, use_bias=False, rngs=rngs)

        def __call__(self, x):
            return self.c(jnp.tanh(self.b(jnp.tanh(self.a(x)))))

    model, x = Rev(nnx.Rngs(0)), _x((64, 64))
    a_before = np.asarray(model.a.kernel[...])
    lsuv(model, x, key=KEY, layers=["^b$", "^c$"], target_std=0.7, tol=TIGHT)
    np.testing.assert_array_equal(model.a.kernel[...], a_before)
    hb = model.b(jnp.tanh(model.a(x)))
    _assert_within([float(jnp.std(hb)), float(jnp.std(model.c(jnp.tanh(hb))))], 0.7, TIGHT)


def test_forward_side_effects_are_discarded():
    class Normed(nnx.Module):
        def __init__(self, rngs):
            self.fc = nnx.Linear(64, 64, rngs=rngs)
            self.bn = nnx.BatchNorm(64, use_running_average=False, rngs=rngs)

        def __call__(self, x, scale):
            return self.bn(self.fc(x) * scale)

    model = Normed(nnx.Rngs(0))
    forward = lambda m, batch: m(batch, 3.0)
    lsuv(model, _x((64, 64)), orthogonal=False, tol=TIGHT, forward=forward)
    assert not np.any(model.bn.mean[...])  # the running mean was never updated
    _assert_within([float(jnp.std(model.fc(_x((64, 64)))))], 1.0, TIGHT)


def test_spy_classes_are_cached_and_models_keep_their_class():
    model = MLP(2, 64, jnp.tanh, nnx.Rngs(0))
    lsuv(model, _x((64, 64)), orthogonal=False)
    lsuv(model, _x((64, 64)), orthogonal=False)
    assert type(model.layers[0]) is nnx.Linear
    assert lsuv_lib._spy_class(nnx.Linear) is lsuv_lib._spy_class(nnx.Linear)
