"""Property tests (hypothesis) of the public contract, over every registry name.

Initializers are generated from `jaxinit.registry_names()` and each factory's signature:
ordinary parameter values, extreme ones (0, negative, 1e38, 1e300, nan, inf, huge ints, wrong
types) and axes in and out of range, called on shapes of rank 0-4 (zero dims included) in every
dtype (float8 and float64 under x64 included) with every kind of key. The only failures allowed
are a ValueError or TypeError whose message names an argument in backquotes (`` `shape` ``,
`` `key` ``, `` `stddev=...` ``); every success keeps the contract of docs/design.md and
docs/determinism.md: the shape and dtype asked for, finite values, eager = `jax.jit` bitwise,
16/8-bit floats = the float32 result cast once, serialize/get and pickle round trips, sharded =
unsharded (orthogonal family: <= 2e-6), and `jaxinit.flax.reinit` = the direct calls.

The "ci" profile (tests/conftest.py, the default) is derandomized and small; run
``python -m pytest -n 0 tests/test_properties.py --hypothesis-profile=deep`` for thousands.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import pickle
import re
import warnings

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import event, given, settings
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinit
import jaxinit.flax
from jaxinit._src.catalog import registry
from jaxinit._src.schemes.orthogonal import HouseholderInitializer

NAN, INF = math.nan, math.inf
NAMES = tuple(jaxinit.registry_names())
CALL_ARGS = frozenset({"key", "shape", "dtype", "out_sharding"})

CHOICES = {
    "mode": ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"),
    "distribution": ("truncated_normal", "normal", "uniform"),
    "nonlinearity": (None, "linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"),
    "rnd_type": ("uniform", "gaussian"),
    "factor_type": ("avg", "in", "out"),
    "variance_norm": ("fan_in", "fan_out", "average"),
}
LOW = (jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn, jnp.float8_e5m2)
DTYPES = (None, jnp.float32, *LOW, jnp.complex64, jnp.int32, jnp.bool_, "float64")
FLOAT32_EXTREME = (0.0, -1.0, -0.0, 1e38, -1e38, 3.4e38, 1e-45)
EXTREME = (0.0, -1.0, -0.0, 1e38, -1e38, 3.4e38, 1e300, -1e300, 1e-45, NAN, INF, -INF, 2**70)
WRONG = (True, "0.1", 1 + 2j, [0.5], None)
MESHES = {(8,): ("x",), (2, 4): ("a", "b"), (4, 2): ("a", "b")}


# -- the contract's checks -------------------------------------------------------------------------


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """A factory's parameters by name ({} for the parameterless zeros/ones values)."""
    f = registry.lookup(name)
    return dict(inspect.signature(f).parameters) if isinstance(f, type) else {}


def named(msg: str, args) -> bool:
    """Whether `msg` names one of `args` in backquotes: `arg` or `arg=value`."""
    return any(f"`{a}`" in msg or f"`{a}=" in msg for a in args)


@contextlib.contextmanager
def refused_by_name(args):
    """Lets only a ValueError/TypeError naming one of `args` out of the block, as `Refused`."""
    try:
        yield
    except (ValueError, TypeError) as e:
        assert named(str(e), args), f"{type(e).__name__} names no argument of {sorted(args)}: {e}"
        event("refused by name")
        raise Refused(e) from e


class Refused(Exception):  # noqa: N818 (not an error: a refusal the contract allows)
    """A refusal the contract allows (a named ValueError/TypeError), raised by `refused_by_name`."""


def bits(x) -> np.ndarray:
    return np.asarray(x).reshape(-1).view(np.uint8)


def assert_bitwise(a, b) -> None:
    np.testing.assert_array_equal(bits(a), bits(b))


def all_finite(x: jax.Array) -> bool:
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return True
    wide = np.complex128 if jnp.iscomplexobj(x) else np.float64
    return bool(np.isfinite(np.asarray(x).astype(wide)).all())


def finite_params(kwargs: dict) -> bool:
    """Whether every number among the parameters is finite (arrays included)."""
    for v in kwargs.values():
        if isinstance(v, bool | str) or v is None:
            continue
        try:
            a = np.asarray(v)
        except Exception:
            continue
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            return False
    return True


def expected_dtype(init, dtype, x64: bool):
    if dtype is not None:
        return jnp.dtype(dtype)
    own = getattr(init, "dtype", None)
    if own is not None:
        return jnp.dtype(own)
    return jnp.dtype(jnp.float64 if x64 else jnp.float32)


def saturating_cast(x32: jax.Array, dtype) -> np.ndarray:
    """The float32 result cast once, saturating at the dtype's largest finite value."""
    big = float(jnp.finfo(dtype).max)
    return np.asarray(jnp.clip(x32, -big, big).astype(dtype))


@contextlib.contextmanager
def quiet_rbg():
    """rbg keys warn once that they are not shard-invariant (documented; not under test here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Key implementation .*shard-invariant", UserWarning)
        warnings.filterwarnings("ignore", ".*is not shard-invariant", UserWarning)
        yield


def examples(weight: float):
    """A property's share of the profile's examples ("ci": tens, "deep": thousands)."""
    return settings(max_examples=max(1, round(settings.default.max_examples * weight)))


# -- strategies ----------------------------------------------------------------------------------

small = st.floats(-3.0, 3.0, allow_nan=False, width=32)
positive = st.floats(0.0625, 3.0, width=32)
extreme = st.sampled_from(EXTREME)
wrong = st.sampled_from(WRONG)

# Ordinary values, by parameter: what a user means to pass (they may still be refused, e.g. a
# sparsity of 1.0 or axes out of range for the shape).
TAME = {
    "mean": small,
    "minval": st.floats(-3.0, -0.125, width=32),
    "maxval": st.floats(0.125, 3.0, width=32),
    "lower": st.floats(-3.0, -0.5, width=32),
    "upper": st.floats(0.5, 3.0, width=32),
    "slope": small,
    "negative_slope": st.one_of(st.none(), st.floats(0.0, 1.0, width=32)),
    "forget_bias": small,
    "sparsity": st.floats(0.0, 0.875, width=32),
    "value": st.one_of(
        small,
        st.integers(-5, 5),
        st.tuples(st.sampled_from([(), (1,), (4,)]), small).map(
            lambda t: np.full(t[0], t[1], np.float32)
        ),
    ),
    "groups": st.integers(1, 2),
    "gates": st.integers(1, 4),
    "forget_gate": st.integers(0, 3),
    "sparse": st.integers(-1, 2),
    "nonzeros": st.one_of(st.none(), st.integers(1, 3)),
    "axis": st.sampled_from((None, 0, -1)),
    "column_axis": st.sampled_from((-1, 0, 1)),
    "in_axis": st.sampled_from((-2, 0, (0, 1))),
    "out_axis": st.sampled_from((-1, 1, (-1,))),
    "batch_axis": st.sampled_from(((), 0, (0,))),
    "dtype": st.sampled_from((None, "float32", jnp.bfloat16)),
}
# Anything: extreme numbers (0, negative, 1e38, 1e300, nan, inf, huge ints), wrong types, axes
# out of range or repeated, bad choices, integer factory dtypes.
WILD_AXES = st.one_of(
    st.integers(-6, 5),
    st.lists(st.integers(-5, 4), max_size=3).map(tuple),
    st.sampled_from(("0", 1.5, None, True, (0, 1.0), 2**70)),
)
WILD = {
    "real": st.one_of(positive, small, extreme, wrong),
    "int": st.one_of(st.integers(-2, 6), st.sampled_from((2**70, -(2**40), 1.5, None, True, "2"))),
    "bool": st.one_of(st.booleans(), st.sampled_from((1, "y", None))),
    "dtype": st.sampled_from((None, "float32", jnp.float16, jnp.int32, "not_a_dtype")),
    "value": st.one_of(
        extreme,
        st.just(1j),
        st.sampled_from([(3,), (2, 1), (2, 5, 4)]).map(lambda s: np.ones(s, np.float32)),
        st.sampled_from(("abc", None)),
    ),
}


def param_strategy(p: inspect.Parameter, wild: bool):
    ann = str(p.annotation)
    if p.name in CHOICES:
        return st.sampled_from((*CHOICES[p.name], *(("bogus", 3) if wild else ())))
    if not wild:
        if p.name in TAME:
            return TAME[p.name]
        if ann == "bool":
            return st.booleans()
        assert "RealNumeric" in ann, f"no ordinary values for {p.name}: {ann}"  # a new kind
        return positive
    if p.name in ("dtype", "value"):
        return WILD[p.name]
    if "Axes" in ann or p.name in ("column_axis", "axis"):
        return WILD_AXES
    if "RealNumeric" in ann:
        return WILD["real"]
    if ann.startswith("int"):
        return WILD["int"]
    assert ann == "bool", f"no values for {p.name}: {ann}"  # a new parameter kind
    return WILD["bool"]


REQUIRED = {
    n: {p for p, v in parameters(n).items() if v.default is inspect.Parameter.empty} for n in NAMES
}


@st.composite
def configs(draw, names=NAMES, wild=None):
    """(name, kwargs) for `jaxinit.get`: each parameter left at its default or drawn, all of
    them ordinary (wild=False), or any of them extreme or wrong (wild=True; None: either)."""
    name = draw(st.sampled_from(names))
    if wild is None:
        wild = draw(st.booleans())
    kwargs = {}
    for p in parameters(name).values():
        required = p.default is inspect.Parameter.empty
        if required or draw(st.integers(0, 2)) == 0:
            kwargs[p.name] = draw(param_strategy(p, wild))
    return name, kwargs


def build(name: str, kwargs: dict):
    """`jaxinit.get(name, **kwargs)`, refused only by name (raises `Refused`)."""
    with refused_by_name({*parameters(name), "identifier"}):
        return jaxinit.get(name, **kwargs)


any_shapes = st.lists(st.integers(0, 8), max_size=4).map(tuple)
kernel_shapes = st.lists(st.integers(1, 8), min_size=2, max_size=4).map(tuple)
shapes = st.one_of(kernel_shapes, any_shapes)
nonzero_shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)


@st.composite
def good_keys(draw):
    """(kind, key, the threefry typed key with the same bits or None)."""
    seed = draw(seeds)
    kind = draw(st.sampled_from(("typed", "legacy", "numpy", "rbg", "unsafe_rbg")))
    typed = jax.random.key(seed)
    if kind == "typed":
        return kind, typed, typed
    if kind == "legacy":
        return kind, jax.random.PRNGKey(seed), typed
    if kind == "numpy":
        return kind, np.asarray(jax.random.key_data(typed)), typed
    return kind, jax.random.key(seed, impl=kind), None


BAD_KEYS = st.sampled_from(
    (
        ("int", 0),
        ("float", 1.5),
        ("str", "key"),
        ("None", None),
        ("float-array", jnp.zeros(2, jnp.float32)),
        ("uint32-scalar", jnp.zeros((), jnp.uint32)),
        ("uint32-(3,)", jnp.zeros(3, jnp.uint32)),
        ("uint32-(2,2)", jnp.zeros((2, 2), jnp.uint32)),
        ("bool-(2,)", np.zeros(2, bool)),
        ("typed-batch", jax.random.split(jax.random.key(0), 2)),
        ("typed-(1,)", jax.random.split(jax.random.key(0), 1)),
    )
)


def call(init, key, shape, dtype, param_names, out_sharding=None):
    """init(key, shape, dtype, out_sharding), refused only by name (raises `Refused`)."""
    with refused_by_name(CALL_ARGS | set(param_names)):
        return init(key, shape, dtype, out_sharding=out_sharding)


def jitted(init, key, shape, dtype):
    return jax.jit(lambda k: init(k, shape, dtype))(key)


# -- properties ----------------------------------------------------------------------------------


def _check_call(name, kwargs, shape, dtype, key, x64):
    """Builds and calls one generated case; checks every success against the contract."""
    try:
        init = build(name, kwargs)
    except Refused:
        return
    try:
        out = call(init, key, shape, dtype, parameters(name))
    except Refused:
        return
    assert out.shape == shape
    assert out.dtype == expected_dtype(init, dtype, x64), (out.dtype, dtype)
    if finite_params(kwargs):
        assert all_finite(out), f"non-finite values from finite parameters: {init!r}"
    assert_bitwise(jitted(init, key, shape, dtype), out)
    if dtype in LOW:
        ref = call(init, key, shape, jnp.float32, parameters(name))
        assert_bitwise(out, saturating_cast(ref, dtype))


@examples(1.5)
@given(config=configs(), shape=shapes, dtype=st.sampled_from(DTYPES), seed=seeds)
def test_any_call_is_refused_by_name_or_keeps_the_contract(config, shape, dtype, seed):
    """Shapes x dtypes x parameters (extreme and wrong ones included) x axes, every name."""
    name, kwargs = config
    x64 = dtype == "float64"
    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else dtype
        _check_call(name, kwargs, shape, dt, jax.random.key(seed), x64)


VARIANCE = tuple(n for n in NAMES if "in_axis" in parameters(n))


@examples(1)
@given(config=configs(VARIANCE), shape=shapes, seed=seeds)
def test_axes_in_and_out_of_range(config, shape, seed):
    """The variance family's in/out/batch axes, any of them out of range or repeated."""
    name, kwargs = config
    _check_call(name, kwargs, shape, jnp.float32, jax.random.key(seed), False)


@examples(1)
@given(config=configs(wild=False), shape=kernel_shapes, key=good_keys(), bad=BAD_KEYS)
def test_keys_of_every_kind_and_bad_keys_named(config, shape, key, bad):
    """Typed keys across the uint32 range, legacy and NumPy key data (the typed key's bits),
    rbg keys (eager = jit); a key of the wrong dtype or shape is refused naming `key`."""
    name, kwargs = config
    kind, k, typed = key
    event(f"key: {kind}")
    try:
        init = build(name, kwargs)
    except Refused:
        return
    with quiet_rbg():
        try:
            out = call(init, k, shape, None, parameters(name))
        except Refused:
            return
        assert_bitwise(jitted(init, k, shape, None), out)
    if typed is not None:
        assert_bitwise(out, init(typed, shape))
    with pytest.raises((TypeError, ValueError)) as info:
        init(bad[1], shape)
    assert named(str(info.value), {"key"}), str(info.value)


@examples(2)
@given(config=configs(), shape=nonzero_shapes, seed=seeds)
def test_serialize_get_and_pickle_round_trip(config, shape, seed):
    """serialize -> JSON -> get and pickle give an equal initializer with the same bits."""
    name, kwargs = config
    try:
        init = build(name, kwargs)
    except Refused:
        return
    try:
        with refused_by_name({*parameters(name), "init"}):
            blob = json.dumps(jaxinit.serialize(init))
    except Refused:
        return
    back = jaxinit.get(json.loads(blob))
    unpickled = pickle.loads(pickle.dumps(init))
    key = jax.random.key(seed)
    for twin in (back, unpickled):
        assert twin == init and hash(twin) == hash(init) and type(twin) is type(init)
        assert repr(twin) == repr(init)
    try:
        out = call(init, key, shape, None, parameters(name))
    except Refused as refused:
        for twin in (back, unpickled):
            with pytest.raises(type(refused.__cause__)) as info:
                twin(key, shape)
            assert str(info.value) == str(refused.__cause__)
        return
    for twin in (back, unpickled):
        assert_bitwise(twin(key, shape), out)


SPEC_EDITS = (
    "none",
    "drop name",
    "drop config",
    "extra key",
    "name not a str",
    "config not a dict",
    "unknown name",
    "unknown parameter",
    "garbage value",
)
GARBAGE = (
    {"__scalar__": 1.0},
    {"__array__": 1},
    {"__complex__": "x"},
    {"__scalar__": "abc", "dtype": "float32"},
    {"__array__": [[1.0], [2.0, 3.0]], "dtype": "float32"},
    {"__scalar__": 1.0, "dtype": "not_a_dtype"},
    [[]],
    object,
)


@st.composite
def edited_specs(draw):
    """A serialized initializer, maybe edited into a malformed one: (init, blob, edit, key)."""
    name, kwargs = draw(configs(wild=False))
    try:
        init = jaxinit.get(name, **kwargs)
    except (ValueError, TypeError):
        init = jaxinit.get(name, **{k: v for k, v in kwargs.items() if k in REQUIRED[name]})
    blob = jaxinit.serialize(init)
    edit = draw(st.sampled_from(SPEC_EDITS))
    key = None
    if edit == "drop name":
        del blob["name"]
    elif edit == "drop config":
        del blob["config"]
    elif edit == "extra key":
        blob["extra"] = 1
    elif edit == "name not a str":
        blob["name"] = draw(st.sampled_from((3, None, ["normal"])))
    elif edit == "unknown name":
        blob["name"] = draw(st.sampled_from(("he_normla", "xyzzy", "", "torch.")))
    elif edit == "config not a dict":
        blob["config"] = draw(st.sampled_from((3, None, [1.0], "stddev")))
    elif edit == "unknown parameter":
        key = draw(st.sampled_from(("bogus", "std_dev")))
        blob["config"][key] = 1.0
    elif edit == "garbage value" and blob["config"]:
        key = draw(st.sampled_from(sorted(blob["config"])))
        blob["config"][key] = draw(st.sampled_from(GARBAGE))
    return init, blob, edit, key


@examples(5)
@given(spec=edited_specs())
def test_get_of_malformed_serialized_specs_is_refused_by_name(spec):
    """`jaxinit.get` of a serialized dict, whole or edited (keys dropped or added, a name or
    config of the wrong type, an unknown parameter, a garbage value): the equal initializer, or
    a refusal naming `identifier` or the parameter (an unknown one: in quotes, as 'bogus')."""
    init, blob, edit, key = spec
    try:
        back = jaxinit.get(blob)
    except (ValueError, TypeError) as e:
        msg = str(e)
        unknown = edit == "unknown parameter" and f"'{key}'" in msg
        names = {"identifier", *init.params(), *([key] if key else [])}
        assert unknown or named(msg, names), f"{type(e).__name__} names no argument: {msg}"
        assert edit != "none", msg
        return
    assert isinstance(back, jaxinit.BaseInitializer)
    if edit == "none":
        assert back == init and type(back) is type(init)
    else:  # only a value that is still a valid one may pass
        assert edit == "garbage value", (edit, blob, back)


NUMERIC = {
    n: tuple(p for p, v in parameters(n).items() if "RealNumeric" in str(v.annotation))
    for n in NAMES
}
TRACEABLE = tuple(n for n in NAMES if NUMERIC[n])


@st.composite
def traced_cases(draw):
    name, kwargs = draw(configs(TRACEABLE, wild=False))
    param = draw(st.sampled_from(NUMERIC[name]))
    value = draw(st.one_of(positive, small, st.sampled_from(FLOAT32_EXTREME)))
    return name, kwargs, param, value


@examples(1)
@given(case=traced_cases(), shape=kernel_shapes, seed=seeds)
def test_traced_parameters_give_the_concrete_values(case, shape, seed):
    """A numeric parameter traced under jit gives the concrete float32 value's result to a few
    ulp (not bitwise: XLA folds a constant parameter's arithmetic when it compiles, e.g. the
    erf of a truncated normal's bounds, and runs it for a traced one), or is refused by name
    (the checks that need a concrete value)."""
    name, kwargs, param, value = case
    value = np.float32(value)
    key = jax.random.key(seed)
    try:
        concrete = build(name, {**kwargs, param: value})
        want = call(concrete, key, shape, None, parameters(name))
    except Refused:
        return

    def traced(v):
        init = build(name, {**kwargs, param: v})
        return call(init, key, shape, None, parameters(name))

    try:
        got = jax.jit(traced)(value)
    except Refused:
        return
    assert got.shape == want.shape and got.dtype == want.dtype
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    ulp = float(np.finfo(np.float32).eps) * (float(np.abs(want).max()) if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float32).eps, atol=4 * ulp)


@st.composite
def sharded_cases(draw):
    """(mesh, spec, shape): every mesh axis on one dim (or unused, but at least one used), each
    dim a multiple of its mesh axes' size (0 included), on Auto or Explicit meshes."""
    mesh_shape = draw(st.sampled_from(sorted(MESHES)))
    names = MESHES[mesh_shape]
    axis_type = draw(st.sampled_from((AxisType.Explicit, AxisType.Auto)))
    rank = draw(st.sampled_from((2, 2, 3, 1)))
    where = draw(
        st.lists(
            st.sampled_from((*range(rank), None)), min_size=len(names), max_size=len(names)
        ).filter(lambda w: any(d is not None for d in w))
    )
    entries: list = [None] * rank
    shape = []
    for dim in range(rank):
        used = tuple(n for n, d in zip(names, where, strict=True) if d == dim)
        if used and draw(st.booleans()):
            used = used[::-1]  # ("b", "a"): the minor axis first
        entries[dim] = used[0] if len(used) == 1 else used or None
        size = math.prod(mesh_shape[names.index(n)] for n in used)
        mult = draw(st.sampled_from((1, 2, 1, 2, 0))) if used else draw(st.integers(1, 6))
        shape.append(size * mult)
    return _mesh(mesh_shape, axis_type), P(*entries), tuple(shape)


@functools.cache
def _mesh(shape: tuple[int, ...], axis_type: AxisType) -> jax.sharding.Mesh:
    return jax.make_mesh(shape, MESHES[shape], axis_types=(axis_type,) * len(shape))


def _tolerance(init, spec: P, rank: int) -> float:
    """Orthogonal family sharded along a matrix axis: <= 2e-6 (each device forms its block
    with its own matmuls); sharded along batch axes only, and everything else: bitwise."""
    if not isinstance(init, HouseholderInitializer):
        return 0.0
    batch = getattr(init, "batch_axis", ())
    batch = {b % rank for b in ((batch,) if isinstance(batch, int) else batch)}
    sharded = {i for i, e in enumerate(spec) if e is not None}
    return 0.0 if sharded <= batch else 2e-6


sharded_calls = st.tuples(configs(wild=False), sharded_cases())


@examples(1)
@given(call_case=sharded_calls, seed=seeds, dtype=st.sampled_from(DTYPES[:4]))
def test_sharded_calls_equal_the_unsharded_call(call_case, seed, dtype):
    """out_sharding=NamedSharding on (8,), (2,4), (4,2) meshes: the sharding asked for, and
    the unsharded call's bits (orthogonal family sharded along a matrix axis: within 2e-6)."""
    (name, kwargs), (mesh, spec, shape) = call_case
    key = jax.random.key(seed)
    try:
        init = build(name, kwargs)
        ref = call(init, key, shape, dtype, parameters(name))
    except Refused:
        return
    sharding = NamedSharding(mesh, spec)
    out = call(init, key, shape, dtype, parameters(name), out_sharding=sharding)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert out.sharding.is_equivalent_to(sharding, out.ndim), (out.sharding, sharding)
    tol = _tolerance(init, spec, len(shape))
    if tol == 0.0:
        assert_bitwise(out, ref)
    else:
        diff = np.abs(np.asarray(out, np.complex128) - np.asarray(ref, np.complex128))
        assert diff.size == 0 or float(diff.max()) <= tol


LEAF_NAMES = ("kernel", "bias", "scale", "embedding")


@st.composite
def trees(draw):
    """A small nested dict of ShapeDtypeStructs and one rule per leaf (exact path)."""
    n = draw(st.integers(1, 3))
    leaves = {}
    for i in range(n):
        path = f"layer{i}/{draw(st.sampled_from(LEAF_NAMES))}"
        shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3).map(tuple))
        dtype = draw(st.sampled_from((jnp.float32, jnp.bfloat16, jnp.float16)))
        leaves[path] = jax.ShapeDtypeStruct(shape, dtype)
    rules = []
    for path in leaves:
        name, kwargs = draw(configs(wild=False))
        rules.append((re.escape(path) + "$", name, kwargs))
    return leaves, rules


@examples(1)
@given(tree=trees(), seed=seeds, as_dict=st.booleans())
def test_reinit_trees_equal_the_direct_calls(tree, seed, as_dict):
    """`reinit` on a pytree of ShapeDtypeStructs: each leaf is its initializer called with
    `path_key(key, path)` (bitwise), or reinit refuses naming the parameter and the argument."""
    leaves, rules = tree
    key = jax.random.key(seed)
    target: dict = {}
    for path, sds in leaves.items():
        layer, leaf = path.split("/")
        target.setdefault(layer, {})[leaf] = sds
    inits = []
    for pattern, name, kwargs in rules:
        try:
            init = build(name, kwargs)
        except Refused:
            return
        inits.append((pattern, jaxinit.serialize(init) if as_dict else init, name, init))
    want, refusals = {}, []
    for (_, _, name, init), (path, sds) in zip(inits, leaves.items(), strict=True):
        try:
            pk = jaxinit.flax.path_key(key, path)
            want[path] = call(init, pk, sds.shape, sds.dtype, parameters(name))
        except Refused as refused:
            refusals.append((path, name, refused.__cause__))
    rules_ = [(pattern, spec) for pattern, spec, _, _ in inits]
    if refusals:
        with pytest.raises((ValueError, TypeError)) as info:
            jaxinit.flax.reinit(target, key, rules_)
        msg = str(info.value)
        assert any(repr(p) in msg for p, _, _ in refusals), msg
        assert any(named(msg, {*parameters(n), *CALL_ARGS}) for _, n, _ in refusals), msg
        return
    out = jaxinit.flax.reinit(target, key, rules_)
    for path, sds in leaves.items():
        layer, leaf = path.split("/")
        got = out[layer][leaf]
        assert got.shape == sds.shape and got.dtype == sds.dtype
        assert_bitwise(got, want[path])
