"""By-name lookup (`get`) and JSON-safe serialization (`serialize`) of every initializer."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np

from jaxinit._src.core.base import BaseInitializer, FrozenArray
from jaxinit._src.core.validation import is_traced
from jaxinit._src.schemes import constant, elementwise, frameworks, orthogonal, structured, variance
from jaxinit._src.schemes.recurrent import GatedOrthogonal, LstmForgetBias

#: Public factory (or initializer) by canonical name.
FACTORIES: dict[str, Any] = {}
#: Alternative names (jax, torch and Keras spellings) -> canonical name.
ALIASES: dict[str, str] = {}


def register(factory: Any, *aliases: str) -> Any:
    """Registers a factory class (or an initializer instance) under its `name` and `aliases`."""
    name = factory.name
    FACTORIES[name] = factory
    for alias in aliases:
        ALIASES[alias] = name
    return factory


#: Alternative spellings of registered names.
_ALIAS_TABLE = {
    "zeros": ("zero", "zeros_init"),
    "ones": ("one", "ones_init"),
    "uniform_range": ("random_uniform",),
    "normal": ("random_normal",),
    "glorot_uniform": ("xavier_uniform",),
    "glorot_normal": ("xavier_normal",),
    "he_uniform": ("kaiming_uniform",),
    "he_normal": ("kaiming_normal",),
    "identity": ("eye",),
}
_C, _E, _V, _O, _F, _S = constant, elementwise, variance, orthogonal, frameworks, structured
for _factory in (
    *(_C.zeros, _C.ones, _C.Constant),
    *(_E.Uniform, _E.UniformRange, _E.Normal, _E.TruncatedNormal),
    *(_V.VarianceScaling, _V.GlorotUniform, _V.GlorotNormal, _V.LecunUniform, _V.LecunNormal),
    *(_V.HeUniform, _V.HeNormal, _O.Orthogonal, _O.DeltaOrthogonal),
    *(_F.UniformUnitScaling, _F.MXNetXavier, _F.MSRAPrelu, _F.CaffeXavier, _F.CaffeMSRA),
    *(_F.CaffeGaussian, _S.Identity, _S.Dirac, _S.Bilinear, _S.PositiveUnitball, _S.Sparse),
    *(GatedOrthogonal, LstmForgetBias),
):
    register(_factory, *_ALIAS_TABLE.get(_factory.name, ()))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def names() -> list[str]:
    """Every registered name `get` accepts: canonical names and aliases, sorted.

    Framework presets (dotted names such as ``"torch.linear.bias"``) are listed apart, by
    ``jaxinit.preset_names()``.
    """
    return sorted({*FACTORIES, *ALIASES})


def _lookup(name: str) -> Any:
    key = name if name in FACTORIES or name in ALIASES else _snake(name)
    key = ALIASES.get(key, key)
    if key not in FACTORIES:
        close = difflib.get_close_matches(name.lower(), names(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"`identifier`: unknown initializer name {name!r}.{hint} Valid names: "
            "`jaxinit.registry_names()`."
        )
    return FACTORIES[key]


def _build(factory: Any, kwargs: Mapping[str, Any]) -> BaseInitializer:
    cls = type(factory) if isinstance(factory, BaseInitializer) else factory
    valid = [f.name for f in dataclasses.fields(cast(Any, cls))]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(
            f"{cls.name}() got unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"valid parameters: {', '.join(valid)}."
        )
    if isinstance(factory, BaseInitializer):  # zeros / ones are initializers themselves
        return cls(**kwargs) if kwargs else factory
    return factory(**kwargs)


def _by_name(name: str, kwargs: Mapping[str, Any]) -> BaseInitializer:
    """A registered initializer, or a framework preset for a dotted name (presets.py)."""
    if "." in name:
        from jaxinit._src import presets  # the presets build on every scheme module

        return presets.build(name, kwargs)
    return _build(_lookup(name), kwargs)


def get(identifier: str | Mapping[str, Any] | BaseInitializer, **kwargs: Any) -> BaseInitializer:
    """Builds an initializer from a name, a serialized dict, or an initializer.

    Args:
      identifier: a name or alias (``"he_normal"``, ``"kaiming_normal"``, ``"HeNormal"``), a
        framework preset's dotted name (``"torch.linear.bias"``, see
        ``jaxinit.preset_names()``), a dict from :func:`serialize`, or an initializer (returned
        as is, or with `kwargs` replaced).
      **kwargs: parameters passed to the factory (they override a dict's config).

    Returns:
      The initializer.

    Raises:
      ValueError: for an unknown name (with close matches) or a malformed dict.
      TypeError: for any other kind of identifier, or an unknown or missing parameter.

    Examples:
      >>> import jaxinit
      >>> jaxinit.get("kaiming_normal", in_axis=0, out_axis=1)
      he_normal(in_axis=0, out_axis=1, batch_axis=(), dtype=None, nonlinearity=None, \
negative_slope=None)
      >>> jaxinit.get("torch.linear.bias", fan_in=16)
      uniform_range(minval=-0.25, maxval=0.25, dtype=None)
      >>> init = jaxinit.variance_scaling(0.5, "fan_avg", "uniform", dtype="bfloat16")
      >>> jaxinit.get(jaxinit.serialize(init)) == init
      True
    """
    if isinstance(identifier, BaseInitializer):
        return dataclasses.replace(cast(Any, identifier), **kwargs) if kwargs else identifier
    if isinstance(identifier, str):
        return _by_name(identifier, kwargs)
    if isinstance(identifier, Mapping):
        if set(identifier) != {"name", "config"} or not isinstance(identifier["config"], Mapping):
            raise ValueError(
                "A serialized initializer is a dict with keys 'name' and 'config'; got keys "
                f"{sorted(identifier)}."
            )
        config = {k: _decode(v) for k, v in identifier["config"].items()}
        return _by_name(identifier["name"], {**config, **kwargs})
    raise TypeError(
        "`identifier` must be a name, a dict from jaxinit.serialize, or an initializer; "
        f"got {identifier!r}."
    )


def _encode(arg: str, value: Any) -> Any:
    if is_traced(value):
        raise TypeError(f"cannot serialize the traced parameter `{arg}`; pass a concrete value.")
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.generic):
        return {"__scalar__": value.item(), "dtype": value.dtype.name}
    if isinstance(value, FrozenArray):
        return {"__array__": value.array.tolist(), "dtype": value.array.dtype.name}
    if isinstance(value, tuple):
        return [_encode(arg, v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot serialize parameter `{arg}`={value!r}.")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__scalar__" in value:
        return np.dtype(value["dtype"]).type(value["__scalar__"])
    if isinstance(value, dict) and "__array__" in value:
        return FrozenArray(np.asarray(value["__array__"], dtype=value["dtype"]))
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def serialize(init: BaseInitializer) -> dict[str, Any]:
    """A JSON-safe dict that :func:`get` turns back into an equal initializer.

    Args:
      init: a jaxinit initializer with concrete parameters.

    Returns:
      ``{"name": ..., "config": {...}}``.

    Raises:
      TypeError: for something that is not a jaxinit initializer, or traced parameters.

    Examples:
      >>> import json, jaxinit
      >>> json.dumps(jaxinit.serialize(jaxinit.uniform(2.0)))
      '{"name": "uniform", "config": {"scale": 2.0, "dtype": null}}'
    """
    if not isinstance(init, BaseInitializer):
        raise TypeError(f"`init` must be a jaxinit initializer; got {init!r}.")
    return {"name": init.name, "config": {k: _encode(k, v) for k, v in init.params().items()}}


FactoryLike = Callable[..., BaseInitializer]
