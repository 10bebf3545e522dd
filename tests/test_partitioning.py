"""`jaxinit.flax.with_partitioning`: Flax's ``kernel_init`` path, born sharded.

Each test builds a layer the ordinary Flax way -- ``kernel_init=`` under ``jax.jit`` -- with
jaxinit's wrapper in place of Flax's, and checks the sharding Flax reports, the values (those of
the unsharded call) and the compiled program's per-device temporaries, in shards of the output:
a bound of 4 fails whenever any device forms the whole array (8 shards).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit
import jaxinit.flax as jf

N = 1024
SHARD = N * N * 4 / 8  # float32 (N, N) over the 8 devices of ("data", "model")
ORTHO_TOL = 2e-6  # orthogonal's sharded tier
INITS = [jaxinit.he_normal(), jaxinit.orthogonal(), jaxinit.uniform(), jaxinit.glorot_normal()]


def _mesh(axis_type: AxisType) -> jax.sharding.Mesh:
    return jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_type,) * 2)


def _temp(build: Any, *args: Any) -> int:
    """Per-device temporary bytes of the compiled `build`."""
    return build.lower(*args).compile().memory_analysis().temp_size_in_bytes


def _close(a, b, init) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if init.name == "orthogonal":
        assert np.abs(a - b).max() <= ORTHO_TOL
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", INITS, ids=lambda i: i.name)
def test_nnx_layer_is_born_sharded_under_jit_on_an_explicit_mesh(init):
    kernel_init = jf.with_partitioning(init, ("data", "model"))
    make = lambda: nnx.state(nnx.Linear(N, N, kernel_init=kernel_init, rngs=nnx.Rngs(0)))
    with jax.set_mesh(_mesh(AxisType.Explicit)):
        build = jax.jit(make)
        state = build()
        temp = _temp(build)
    kernel = state["kernel"]
    assert kernel.get_metadata()["out_sharding"] == ("data", "model")
    assert kernel.get_value().sharding.spec == P("data", "model")
    assert temp <= 4 * SHARD, f"{temp / SHARD:.2f} shards"
    plain = nnx.Linear(N, N, kernel_init=init, rngs=nnx.Rngs(0)).kernel[...]
    _close(kernel.get_value(), plain, init)


@pytest.mark.parametrize("init", [jaxinit.orthogonal(), jaxinit.lecun_normal()], ids=str)
def test_linen_init_under_jit_out_shardings_on_an_auto_mesh(init):
    dense = nn.Dense(N, kernel_init=jf.with_partitioning(init, ("data", "model")))
    x, key = jnp.ones((1, N)), jax.random.key(0)
    mesh = _mesh(AxisType.Auto)
    with jax.set_mesh(mesh):
        shardings = nn.get_sharding(jax.eval_shape(dense.init, key, x), mesh)
        build = jax.jit(dense.init, out_shardings=shardings)
        box = build(key, x)["params"]["kernel"]
        temp = _temp(build, key, x)
    assert isinstance(box, nn.Partitioned) and box.names == ("data", "model")
    assert box.value.sharding.spec == P("data", "model")
    assert temp <= 4 * SHARD, f"{temp / SHARD:.2f} shards"
    plain = nn.Dense(N, kernel_init=init).init(key, x)["params"]["kernel"]
    _close(box.value, plain, init)


def test_logical_names_are_resolved_by_the_context_rules():
    kernel_init = jf.with_partitioning(jaxinit.he_normal(), ("embed", "mlp"))
    rules = (("embed", "data"), ("mlp", "model"))
    mesh = _mesh(AxisType.Explicit)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        layer = nnx.Linear(64, 64, kernel_init=kernel_init, rngs=nnx.Rngs(0))
    assert layer.kernel.get_metadata()["out_sharding"] == ("embed", "mlp")
    assert layer.kernel[...].sharding == NamedSharding(mesh, P("data", "model"))


def test_without_a_mesh_it_does_what_flax_does():
    """linen draws unsharded and boxes the value; NNX refuses sharding metadata without a
    mesh, for Flax's wrapper and this one alike."""
    dense = nn.Dense(64, kernel_init=jf.with_partitioning(jaxinit.he_normal(), (None, "model")))
    box: Any = dense.init(jax.random.key(0), jnp.ones((1, 64)))["params"]["kernel"]
    plain = nn.Dense(64, kernel_init=jaxinit.he_normal()).init(jax.random.key(0), jnp.ones((1, 64)))
    assert isinstance(box, nn.Partitioned) and box.names == (None, "model")
    np.testing.assert_array_equal(box.value, np.asarray(plain["params"]["kernel"]))
    for wrap in (jf.with_partitioning, nnx.with_partitioning):
        init = wrap(jaxinit.he_normal(), (None, "model"))
        with pytest.raises(ValueError, match="mesh"):
            nnx.Linear(64, 64, kernel_init=init, rngs=nnx.Rngs(0))


def test_foreign_initializers_work_as_through_flax():
    foreign = jax.nn.initializers.lecun_normal()
    with jax.set_mesh(_mesh(AxisType.Explicit)):
        make = lambda wrap: nnx.Linear(
            64, 64, kernel_init=wrap(foreign, ("data", "model")), rngs=nnx.Rngs(0)
        )
        ours, theirs = make(jf.with_partitioning), make(nnx.with_partitioning)
    np.testing.assert_array_equal(ours.kernel[...], theirs.kernel[...])
    assert ours.kernel[...].sharding == theirs.kernel[...].sharding


@pytest.mark.parametrize("sharding", ["model", 3, [None, 1]])
def test_a_bad_sharding_is_refused_when_built(sharding):
    with pytest.raises(TypeError, match="`sharding` must be a tuple of mesh axis names"):
        jf.with_partitioning(jaxinit.he_normal(), sharding)


@pytest.mark.parametrize(
    "init", [jaxinit.orthogonal(), jaxinit.delta_orthogonal(), jf.gated_orthogonal(2)], ids=str
)
def test_orthogonal_traced_under_a_mesh_without_out_sharding_warns(init):
    """XLA cannot carry an output sharding back through the Householder loop, so the only
    sharded paths are `out_sharding=` and `with_partitioning`; the warning names both."""
    shape, key = (3, 3, 16, 16), jax.random.key(0)
    mesh = _mesh(AxisType.Explicit)
    with jax.set_mesh(mesh):
        with pytest.warns(UserWarning, match="without `out_sharding=`") as record:
            jax.jit(lambda k: init(k, shape))(key)
        assert "jaxinit.flax.with_partitioning" in str(record[0].message)
        jax.jit(lambda k: init(k, shape, out_sharding=P()))(key)  # no warning: filterwarnings
        init(key, shape)  # eager: placed on one device, nothing to warn about
    jax.jit(lambda k: init(k, shape))(key)  # no mesh
