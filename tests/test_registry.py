"""Initializers are values: hashable, comparable, printable, serializable, found by name."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, nonzero_shapes

import jaxinit
from jaxinit._src.catalog import registry
from jaxinit._src.schemes.constant import Zeros


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_value_semantics(case):
    init = case.init
    twin = copy.deepcopy(init)
    assert init == twin and hash(init) == hash(twin)
    assert isinstance(init, jax.nn.initializers.Initializer)
    with pytest.raises(dataclasses.FrozenInstanceError):
        init.dtype = jnp.float16  # type: ignore[misc]
    assert repr(init).startswith(f"{case.init.name}(")
    assert pickle.loads(pickle.dumps(init)) == init


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_serialize_round_trip_through_json(case):
    blob = json.dumps(jaxinit.serialize(case.init))
    back = jaxinit.get(json.loads(blob))
    assert back == case.init and type(back) is type(case.init)
    shape = nonzero_shapes(case)[0]
    key = jax.random.key(0)
    np.testing.assert_array_equal(np.asarray(back(key, shape)), np.asarray(case.init(key, shape)))


def test_repr_shows_parameters():
    assert repr(jaxinit.he_normal(in_axis=0, out_axis=(1, 2))) == (
        "he_normal(in_axis=0, out_axis=(1, 2), batch_axis=(), dtype=None, groups=1, "
        "nonlinearity=None, negative_slope=None)"
    )
    assert (
        repr(jaxinit.normal(0.5, jnp.bfloat16)) == "normal(stddev=0.5, dtype='bfloat16', mean=0.0)"
    )


def test_equality_is_by_parameters():
    assert jaxinit.normal(0.1) == jaxinit.normal(0.1)
    assert jaxinit.normal(0.1) != jaxinit.normal(0.2)
    assert jaxinit.normal(0.1, jnp.float32) != jaxinit.normal(0.1)
    assert jaxinit.normal(0.1, "float32") == jaxinit.normal(0.1, np.float32)
    assert jaxinit.glorot_uniform() != jaxinit.variance_scaling(1.0, "fan_avg", "uniform")
    assert len({jaxinit.he_normal(), jaxinit.he_normal(), jaxinit.kaiming_normal()}) == 1


def test_concrete_jax_scalars_are_frozen_to_hashable_values():
    a = jaxinit.normal(jnp.float32(0.5))
    assert a == jaxinit.normal(np.float32(0.5)) and hash(a) == hash(jaxinit.normal(np.float32(0.5)))
    blob = jaxinit.serialize(a)
    assert blob["config"]["stddev"] == {"__scalar__": 0.5, "dtype": "float32"}
    assert jaxinit.get(blob) == a


def test_constant_array_value_is_a_value():
    lap = np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
    a, b = jaxinit.constant(lap.astype(np.float32)), jaxinit.constant(jnp.asarray(lap))
    assert a != jaxinit.constant(lap)  # float64 and float32 values differ
    assert a == b and hash(a) == hash(b)
    assert jaxinit.get(json.loads(json.dumps(jaxinit.serialize(a)))) == a


@pytest.mark.parametrize("name", jaxinit.registry_names())
def test_get_knows_every_name_and_alias(name):
    init = jaxinit.get(name) if name not in _NEED_ARGS else jaxinit.get(name, **_NEED_ARGS[name])
    assert isinstance(init, jaxinit.BaseInitializer)
    canonical = registry.ALIASES.get(name, name)
    assert init.name == canonical


_NEED_ARGS = {
    "constant": {"value": 1.0},
    "variance_scaling": {"scale": 1.0, "mode": "fan_in", "distribution": "normal"},
    "sparse": {"sparsity": 0.5},
}


def test_every_public_factory_is_registered():
    public = {
        getattr(jaxinit, n).name
        for n in jaxinit.__all__
        if isinstance(getattr(jaxinit, n), type)
        and issubclass(getattr(jaxinit, n), jaxinit.BaseInitializer)
        and getattr(jaxinit, n) is not jaxinit.BaseInitializer
    }
    assert public <= set(registry.FACTORIES)
    for alias in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
        assert jaxinit.get(alias) == getattr(jaxinit, alias)()


def test_get_accepts_class_names_instances_and_kwargs():
    assert jaxinit.get("HeNormal") == jaxinit.he_normal()
    assert jaxinit.get("zeros") is jaxinit.zeros
    assert jaxinit.get("zeros", dtype=jnp.int32) == Zeros(jnp.int32)
    init = jaxinit.orthogonal()
    assert jaxinit.get(init) is init
    assert jaxinit.get(init, scale=2.0) == jaxinit.orthogonal(2.0)
    assert jaxinit.get({"name": "normal", "config": {"stddev": 0.1}}, stddev=0.3) == jaxinit.normal(
        0.3
    )


def test_get_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"'he_normla'.*'he_normal'"):
        jaxinit.get("he_normla")
    with pytest.raises(ValueError, match="unknown initializer name 'zzz'"):
        jaxinit.get("zzz")


def test_get_and_serialize_reject_other_things():
    with pytest.raises(TypeError, match="identifier"):
        jaxinit.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'name' and 'config'"):
        jaxinit.get({"name": "normal"})
    with pytest.raises(TypeError, match="jaxinit initializer"):
        jaxinit.serialize(jax.nn.initializers.normal())  # type: ignore[arg-type]


def test_traced_parameters_are_carried_but_not_serialized():
    key = jax.random.key(0)

    @jax.jit
    def f(s):
        init = jaxinit.normal(s)
        with pytest.raises(TypeError, match="traced parameter `stddev`"):
            jaxinit.serialize(init)
        return init(key, (4, 4))

    np.testing.assert_array_equal(np.asarray(f(0.1)), np.asarray(jaxinit.normal(0.1)(key, (4, 4))))


def test_get_with_an_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(
        TypeError, match=r"he_normal\(\) got unknown parameter\(s\) 'bogus'.*in_axis"
    ):
        jaxinit.get("he_normal", bogus=1)
    with pytest.raises(TypeError, match="valid parameters: dtype"):
        jaxinit.get("zeros", value=1)


# -- one registry: one listing, one unknown-name error, one parameter check ----------------------
def test_names_lists_schemes_and_presets_in_one_table():
    names = jaxinit.names()
    assert names == sorted({*registry.TABLE, *registry.ALIASES})
    assert names == sorted(jaxinit.registry_names() + jaxinit.preset_names())
    assert set(registry.FACTORIES) == {n for n in registry.TABLE if "." not in n}
    assert "torch.linear.bias" not in registry.FACTORIES
    assert registry.lookup("torch.conv.bias") is registry.lookup("torch.linear.bias")
    assert registry.lookup("xavier_normal") is jaxinit.glorot_normal


def test_register_refuses_a_name_already_taken():
    with pytest.raises(ValueError, match=r"already registered: 'he_normal', 'torch\.linear\.bias'"):
        registry.register("he_normal", "torch.linear.bias")(object())
    assert registry.lookup("he_normal") is jaxinit.he_normal


@pytest.mark.parametrize(
    ("typo", "kind", "match", "listing"),
    [
        ("he_normla", "initializer", "'he_normal'", "registry_names"),
        ("torch.linear.kernal", "preset", "'torch.linear.kernel'", "preset_names"),
        ("torch.he_normal", "preset", "'tf1.he_normal'", "preset_names"),  # across namespaces
        ("glorot_uniform_", "initializer", "'tf1.glorot_uniform'", "registry_names"),
    ],
)
def test_unknown_name_is_one_error_with_close_matches_over_every_name(typo, kind, match, listing):
    with pytest.raises(ValueError) as info:
        jaxinit.get(typo)
    msg = str(info.value)
    assert msg.startswith(f"`identifier`: unknown {kind} name {typo!r}. Did you mean ")
    assert match in msg and msg.endswith(f"Valid names: `jaxinit.{listing}()`."), msg


@pytest.mark.parametrize(
    ("identifier", "kwargs", "message"),
    [
        ("constant", {"value": 1, "x": 2, "bogus": 3}, "constant() got unknown parameter(s) "
         "'bogus', 'x'; valid parameters: value, dtype."),
        ("zeros", {"value": 1}, "zeros() got unknown parameter(s) 'value'; "
         "valid parameters: dtype."),
        ("torch.linear.bias", {"fan_in": 3, "x": 1}, "torch.linear.bias() got unknown "
         "parameter(s) 'x'; valid parameters: fan_in, dtype."),
        (jaxinit.ones, {"bogus": 1}, "ones() got unknown parameter(s) 'bogus'; "
         "valid parameters: dtype."),
        ("constant", {}, "constant() is missing the required parameter(s) `value`; "
         "valid parameters: value, dtype."),
        ("torch.conv.bias", {}, "torch.conv.bias() is missing the required parameter(s) "
         "`fan_in`; valid parameters: fan_in, dtype."),
    ],
)  # fmt: skip
def test_parameter_errors_have_one_form_for_schemes_and_presets(identifier, kwargs, message):
    with pytest.raises(TypeError) as info:
        jaxinit.get(identifier, **kwargs)
    assert str(info.value) == message
