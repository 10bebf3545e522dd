"""Sharding and determinism tier 1 on 8 simulated CPU devices (docs/design.md, "Sharding").

Every initializer of the registry, on meshes (8,), (4, 2) and (2, 4) with specs over either or
both matrix axes: the result has the requested sharding (never silently replicated) and the same
bits as the unsharded call -- eager, under `jax.jit(out_shardings=...)`, inside a larger jit, on
Auto and Explicit meshes. Orthogonal sharded along a matrix axis: <= 2e-6 (bitwise is the aim).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, Case
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit

KEY = jax.random.key(11)
# Orthogonal sharded along a matrix axis forms each device's block with its own matmuls.
MATRIX_TOL = 2e-6
MESHES = {
    "8": ((8,), ("x",)),
    "4x2": ((4, 2), ("a", "b")),
    "2x4": ((2, 4), ("a", "b")),
}
# (mesh, entries for the two sharded axes)
LAYOUTS = [
    ("8", ("x", None)),
    ("8", (None, "x")),
    ("4x2", ("a", "b")),
    ("2x4", ("b", "a")),
    ("4x2", (None, ("a", "b"))),
    ("2x4", (("a", "b"), None)),
]


def _mesh(name: str, axis_type=AxisType.Auto) -> jax.sharding.Mesh:
    shape, names = MESHES[name]
    return jax.make_mesh(shape, names, axis_types=(axis_type,) * len(shape))


def _shape(case: Case) -> tuple[int, ...]:
    for s in case.shapes:
        if 0 not in s and len(s) >= 2 and s[-1] % 8 == 0 and s[-2] % 8 == 0:
            return s
    raise AssertionError(f"no shardable shape for {case.id}")


def _spec(shape: tuple[int, ...], entries: tuple) -> P:
    return P(*((None,) * (len(shape) - 2) + entries))


def _tolerance(case: Case, entries: tuple) -> float:
    orthogonal = case.id.startswith(("orthogonal", "delta_orthogonal"))
    return MATRIX_TOL if orthogonal and any(e is not None for e in entries) else 0.0


def _assert_same(a: jax.Array, b: jax.Array, tol: float) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if tol == 0.0:
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    else:
        assert float(np.abs(a.astype(np.complex128) - b).max()) <= tol


def _assert_sharding(x: jax.Array, sharding: NamedSharding) -> None:
    assert x.sharding.is_equivalent_to(sharding, x.ndim), (x.sharding, sharding)


PARAMS = [
    pytest.param(case, mesh, entries, id=f"{case.id}-{mesh}-{entries}")
    for case in CASES
    for mesh, entries in LAYOUTS
]


@pytest.mark.parametrize(("case", "mesh_name", "entries"), PARAMS)
def test_out_sharding_on_auto_mesh_matches_unsharded(case, mesh_name, entries):
    shape = _shape(case)
    sharding = NamedSharding(_mesh(mesh_name), _spec(shape, entries))
    ref = case.init(KEY, shape)
    eager = case.init(KEY, shape, out_sharding=sharding)
    _assert_sharding(eager, sharding)
    _assert_same(eager, ref, _tolerance(case, entries))
    jitted = jax.jit(lambda k: case.init(k, shape, out_sharding=sharding))(KEY)
    _assert_sharding(jitted, sharding)
    _assert_same(jitted, eager, 0.0)


@pytest.mark.parametrize(("case", "mesh_name", "entries"), PARAMS[::3])
def test_jit_out_shardings_without_out_sharding(case, mesh_name, entries):
    shape = _shape(case)
    sharding = NamedSharding(_mesh(mesh_name), _spec(shape, entries))
    out = jax.jit(lambda k: case.init(k, shape), out_shardings=sharding)(KEY)
    _assert_sharding(out, sharding)
    # XLA partitions the program itself here: orthogonal's matmuls may split their sums.
    _assert_same(out, case.init(KEY, shape), _tolerance(case, entries))


@pytest.mark.parametrize(("case", "mesh_name", "entries"), PARAMS[1::3])
def test_partition_spec_on_explicit_mesh(case, mesh_name, entries):
    shape = _shape(case)
    mesh = _mesh(mesh_name, AxisType.Explicit)
    spec = _spec(shape, entries)
    ref = case.init(KEY, shape)
    with jax.set_mesh(mesh):
        out = case.init(KEY, shape, out_sharding=spec)
        assert jax.typeof(out).sharding.spec == spec
        inside = jax.jit(lambda k: {"w": case.init(k, shape, out_sharding=spec), "k": k})(KEY)
    _assert_same(out, ref, _tolerance(case, entries))
    _assert_same(inside["w"], out, _tolerance(case, entries) if "stacked" in case.id else 0.0)


@pytest.mark.parametrize("case", [c for c in CASES if c.complex_ok], ids=lambda c: c.id)
def test_complex_results_are_not_silently_replicated(case):
    shape = _shape(case)
    sharding = NamedSharding(_mesh("8"), _spec(shape, (None, "x")))
    out = case.init(KEY, shape, jnp.complex64, out_sharding=sharding)
    _assert_sharding(out, sharding)
    _assert_same(out, case.init(KEY, shape, jnp.complex64), _tolerance(case, (None, "x")))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_zero_size_result_keeps_its_sharding(case):
    shape = (0, 16)
    if case.shapes[0] and len(case.shapes[0]) > 2:
        shape = (3, 3, 0, 16)
    sharding = NamedSharding(_mesh("8"), _spec(shape, (None, "x")))
    out = case.init(KEY, shape, jnp.bfloat16, out_sharding=sharding)
    assert out.shape == shape and out.dtype == jnp.bfloat16
    _assert_sharding(out, sharding)


@pytest.mark.parametrize(
    "init",
    [
        jaxinit.normal(0.02),
        jaxinit.he_normal(),
        jaxinit.glorot_uniform(),
        jaxinit.orthogonal(),
        jaxinit.identity(),
        jaxinit.positive_unitball(),
    ],
    ids=lambda i: i.name,
)
@pytest.mark.parametrize("entries", [("x", None), (None, "x")])
def test_never_builds_the_global_array_on_one_device(init, entries):
    """Compiled per-device temporaries stay far below the global array (8 shards)."""
    shape = (2048, 2048)
    sharding = NamedSharding(_mesh("8"), P(*entries))
    compiled = jax.jit(lambda k: init(k, shape, out_sharding=sharding)).lower(KEY).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    shard = 2048 * 2048 * 4 // 8
    assert temp < 8 * shard / 1.5, f"{temp / shard:.2f}x the shard"


def test_partition_spec_without_mesh_is_a_clear_error():
    with pytest.raises(ValueError, match="no mesh is set"):
        jaxinit.normal()(KEY, (8, 8), out_sharding=P("x"))
    with pytest.raises(TypeError, match="`out_sharding`"):
        jaxinit.normal()(KEY, (8, 8), out_sharding="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rank 1"):
        jaxinit.normal()(KEY, (8,), out_sharding=NamedSharding(_mesh("8"), P("x", None)))


def test_rbg_keys_warn_once_and_strict_mode_refuses(monkeypatch):
    from jaxinit._src.core import keys

    monkeypatch.setattr(keys, "_WARNED", set())
    key = jax.random.key(0, impl="rbg")
    with pytest.warns(UserWarning, match="'rbg' is not shard-invariant"):
        jaxinit.normal()(key, (4, 4))
    jaxinit.normal()(key, (4, 4))  # once only: a second warning would be an error here
    monkeypatch.setattr(jaxinit.config, "strict", True)
    with pytest.raises(ValueError, match="'unsafe_rbg' is not shard-invariant"):
        jaxinit.normal()(jax.random.key(0, impl="unsafe_rbg"), (4, 4))


@pytest.mark.parametrize(
    ("shape", "batch_axis", "mesh_name", "spec"),
    [
        ((8, 16, 8), 0, "8", P("x")),
        ((8, 64, 32), 0, "8", P("x")),
        ((16, 3, 5), 0, "8", P("x")),
        ((4, 16, 2, 8), (0, 2), "4x2", P("a", None, "b")),
        ((2, 8, 32, 16), (0, 1), "2x4", P("a", "b")),
    ],
)
def test_stacked_orthogonal_sharded_on_batch_axes_is_bitwise(shape, batch_axis, mesh_name, spec):
    init = jaxinit.orthogonal(batch_axis=batch_axis)
    sharding = NamedSharding(_mesh(mesh_name), spec)
    out = init(KEY, shape, out_sharding=sharding)
    _assert_sharding(out, sharding)
    _assert_same(out, init(KEY, shape), 0.0)


@pytest.mark.parametrize(
    ("shape", "mesh_name", "spec"),
    [
        ((256, 1024), "8", P(None, "x")),  # each device: half of one gate block's columns
        ((256, 1024), "8", P("x", None)),  # each device: rows of every gate block
        ((256, 1024), "2x4", P("a", "b")),  # rows of one gate block
        ((4, 128, 512), "4x2", P("a", None, "b")),  # stacked layers and gates
    ],
)
def test_sharded_gated_orthogonal_forms_only_each_devices_block(shape, mesh_name, spec):
    """Per-device temporaries stay within 4 output shards (forming the whole kernel on every
    device took 6-14), and the values are the unsharded ones to rounding."""
    init = jaxinit.gated_orthogonal(4)
    sharding = NamedSharding(_mesh(mesh_name), spec)
    compiled = jax.jit(lambda k: init(k, shape, out_sharding=sharding)).lower(KEY).compile()
    shard = int(np.prod(sharding.shard_shape(shape))) * 4
    assert compiled.memory_analysis().temp_size_in_bytes <= 4 * shard
    out = init(KEY, shape, out_sharding=sharding)
    _assert_sharding(out, sharding)
    _assert_same(out, init(KEY, shape), MATRIX_TOL)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
@pytest.mark.parametrize(
    ("init", "shape", "spec"),
    [
        (jaxinit.gated_orthogonal(4), (4, 32, 128), P("a", None, "b")),
        (jaxinit.orthogonal(), (64, 64), P("a", None)),
        (jaxinit.orthogonal(), (64, 64), P(None, "a")),
        (jaxinit.delta_orthogonal(), (3, 3, 16, 16), P(None, None, "a", "b")),
    ],
    ids=["gated", "orthogonal-rows", "orthogonal-columns", "delta"],
)
def test_matrix_axis_sharded_orthogonal_family_under_x64(init, shape, spec, dtype):
    """Under x64 (and strict dtype promotion, as this suite runs) the block paths keep their
    int32 index arithmetic: the per-device row/column indices once met int64 `arange`s."""
    sharding = NamedSharding(_mesh("4x2"), spec)
    with jax.enable_x64(True):
        out = init(KEY, shape, dtype, out_sharding=sharding)
        ref = init(KEY, shape, dtype)
    assert out.dtype == dtype
    _assert_sharding(out, sharding)
    _assert_same(out, ref, 1e-12)


def test_stacked_orthogonal_temporaries_are_one_matrix_not_the_stack():
    init = jaxinit.orthogonal(batch_axis=0)
    sharding = NamedSharding(_mesh("8"), P("x"))
    shape = (64, 256, 256)
    compiled = jax.jit(lambda k: init(k, shape, out_sharding=sharding)).lower(KEY).compile()
    shard = 64 * 256 * 256 * 4 // 8
    assert compiled.memory_analysis().temp_size_in_bytes <= 4 * shard


@pytest.mark.parametrize("case", [c for c in CASES if c.random], ids=lambda c: c.id)
def test_named_sharding_on_explicit_mesh_without_a_mesh_context(case):
    """A NamedSharding over an Explicit mesh works even when no mesh is set (jax's own raises)."""
    shape = _shape(case)
    sharding = NamedSharding(_mesh("8", AxisType.Explicit), _spec(shape, (None, "x")))
    out = case.init(KEY, shape, out_sharding=sharding)
    _assert_sharding(out, sharding)
    _assert_same(out, case.init(KEY, shape), _tolerance(case, (None, "x")))
    # Under a user's jit, jax requires the mesh context for Explicit meshes (as for its own
    # samplers): `with jax.set_mesh(mesh):` -- covered by test_partition_spec_on_explicit_mesh.
