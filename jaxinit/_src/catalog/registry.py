"""The one registry: every name `jaxinit.get` accepts, its lookup, and `get` / `serialize`.

One table, `TABLE`, maps each canonical name to its factory: a scheme class (``"he_normal"``),
an initializer instance (``"zeros"``, ``"ones"``, as in jax) or a framework preset function
(dotted names, ``"torch.linear.bias"``); `ALIASES` maps the other spellings to canonical names.
Everything enters through one decorator, ``register(name, *aliases)``: the scheme classes below
(`_SCHEMES` and `_SCHEME_ALIASES`), the presets in their framework modules (presets_*.py, which
the package imports so the table is complete). One lookup resolves a name (alias, CamelCase or
any case), one error reports an unknown name with close matches over `names()`, and one check
(``inspect.signature``, the same for classes and functions) reports an unknown or missing
parameter. `FACTORIES` is the table's scheme part, read-only.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.base import BaseInitializer, FrozenArray
from jaxinit._src.core.validation import is_traced
from jaxinit._src.schemes import constant, elementwise, frameworks, orthogonal, structured, variance
from jaxinit._src.schemes.recurrent import GatedOrthogonal, LstmForgetBias

#: A factory: an initializer class, an initializer instance, or a preset function.
Factory = Any
_T = TypeVar("_T")

#: Every canonical name -> its factory; a dotted name is a framework preset.
TABLE: dict[str, Factory] = {}
#: Every other spelling (jax, torch and Keras names, a preset's other layers) -> canonical name.
ALIASES: dict[str, str] = {}


def register(name: str, *aliases: str) -> Callable[[_T], _T]:
    """Registers a factory under `name` and `aliases` (a decorator; the factory is returned).

    Raises:
      ValueError: for a name that is already registered.
    """

    def add(factory: _T) -> _T:
        taken = [n for n in (name, *aliases) if n in TABLE or n in ALIASES]
        if taken:
            raise ValueError(f"already registered: {', '.join(repr(n) for n in taken)}.")
        TABLE[name] = factory
        ALIASES.update(dict.fromkeys(aliases, name))
        return factory

    return add


def is_preset(name: str) -> bool:
    """Whether `name` is a framework preset's: presets have dotted names, schemes do not."""
    return "." in name


class _Schemes(Mapping[str, Factory]):
    """The scheme part of `TABLE` (canonical names without a dot), a live read-only view."""

    def __getitem__(self, name: str) -> Factory:
        if is_preset(name):
            raise KeyError(name)
        return TABLE[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in TABLE if not is_preset(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: Scheme factory (or initializer) by canonical name: `TABLE` without the presets.
FACTORIES: Mapping[str, Factory] = _Schemes()

_C, _E, _V, _O, _F, _S = constant, elementwise, variance, orthogonal, frameworks, structured
#: Every scheme `get` knows, registered under its ``name``.
_SCHEMES = (
    *(_C.zeros, _C.ones, _C.Constant),
    *(_E.Uniform, _E.UniformRange, _E.Normal, _E.TruncatedNormal),
    *(_V.VarianceScaling, _V.GlorotUniform, _V.GlorotNormal, _V.LecunUniform, _V.LecunNormal),
    *(_V.HeUniform, _V.HeNormal, _O.Orthogonal, _O.DeltaOrthogonal),
    *(_F.UniformUnitScaling, _F.MXNetXavier, _F.MSRAPrelu, _F.CaffeXavier, _F.CaffeMSRA),
    *(_F.CaffeGaussian, _S.Identity, _S.Dirac, _S.Bilinear, _S.PositiveUnitball, _S.Sparse),
    *(GatedOrthogonal, LstmForgetBias),
)
#: Alternative spellings of scheme names.
_SCHEME_ALIASES = {
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
for _scheme in _SCHEMES:
    register(_scheme.name, *_SCHEME_ALIASES.get(_scheme.name, ()))(_scheme)


# -- the listing -----------------------------------------------------------------------------------
def names() -> list[str]:
    """Every name `jaxinit.get` accepts, sorted: schemes, presets and their aliases.

    ``jaxinit.registry_names()`` and ``jaxinit.preset_names()`` are its two parts.

    Examples:
      >>> import jaxinit
      >>> names = jaxinit.names()
      >>> names == sorted(jaxinit.registry_names() + jaxinit.preset_names())
      True
      >>> "kaiming_normal" in names and "torch.linear.bias" in names
      True
    """
    return sorted({*TABLE, *ALIASES})


def registry_names() -> list[str]:
    """Every scheme name `get` accepts: canonical names and aliases, sorted.

    The part of ``jaxinit.names()`` without the framework presets (dotted names such as
    ``"torch.linear.bias"``, listed by ``jaxinit.preset_names()``).
    """
    return [name for name in names() if not is_preset(name)]


def preset_names() -> list[str]:
    """Every framework preset name `jaxinit.get` accepts, sorted.

    The dotted part of ``jaxinit.names()``.

    Returns:
      The dotted names, e.g. ``"torch.linear.kernel"``.

    Examples:
      >>> import jaxinit
      >>> [n for n in jaxinit.preset_names() if n.startswith("haiku.")]
      ['haiku.conv.b', 'haiku.conv.w', 'haiku.embed.embeddings', 'haiku.layer_norm.offset', \
'haiku.layer_norm.scale', 'haiku.linear.b', 'haiku.linear.w']
    """
    return [name for name in names() if is_preset(name)]


# -- the lookup ------------------------------------------------------------------------------------
def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _unknown_name(name: str) -> ValueError:
    """The error for an unknown `name`: close matches among `names()`, and where to look."""
    close = difflib.get_close_matches(name.lower(), names(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    kind, listing = (
        ("preset", "preset_names") if is_preset(name) else ("initializer", "registry_names")
    )
    return ValueError(
        f"`identifier`: unknown {kind} name {name!r}.{hint} Valid names: `jaxinit.{listing}()`."
    )


def _resolve(name: str) -> tuple[str, str]:
    """``(the name as registered, its canonical name)`` for a name, alias or CamelCase spelling."""
    key = name if name in TABLE or name in ALIASES else _snake(name)
    canonical = ALIASES.get(key, key)
    if canonical not in TABLE:
        raise _unknown_name(name)
    return key, canonical


def lookup(name: str) -> Factory:
    """The factory registered under `name`, an alias or a CamelCase spelling of it.

    Raises:
      ValueError: for an unknown name, with close matches among `names()`.

    Examples:
      >>> from jaxinit._src.catalog import registry
      >>> registry.lookup("kaiming_normal").__name__, registry.lookup("torch.conv.bias").__name__
      ('HeNormal', 'torch_bias')
    """
    return TABLE[_resolve(name)[1]]


def _check_parameters(
    name: str, factory: Callable[..., Any], kwargs: Mapping[str, Any], *, complete: bool = True
) -> None:
    """Checks `kwargs` against the signature of `factory` (called `name` in the errors).

    Raises:
      TypeError: for an unknown parameter or, if `complete`, a missing required one (both named,
        with the valid parameters).
    """
    params = [
        p
        for p in inspect.signature(factory).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    valid = ", ".join(p.name for p in params)
    unknown = sorted(set(kwargs) - {p.name for p in params})
    if unknown:
        raise TypeError(
            f"{name}() got unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"valid parameters: {valid}."
        )
    missing = [p.name for p in params if p.default is p.empty and p.name not in kwargs]
    if complete and missing:
        raise TypeError(
            f"{name}() is missing the required parameter(s) "
            f"{', '.join(f'`{m}`' for m in missing)}; valid parameters: {valid}."
        )


def build(name: str, kwargs: Mapping[str, Any]) -> BaseInitializer:
    """Builds the initializer registered under `name` with `kwargs`, checking their names first.

    Raises:
      ValueError: for an unknown name (with close matches) or a bad value.
      TypeError: for an unknown parameter, or a missing required one (both named).
    """
    key, canonical = _resolve(name)
    factory = TABLE[canonical]
    if isinstance(factory, BaseInitializer):  # zeros / ones are initializers themselves
        _check_parameters(key, type(factory), kwargs)
        return type(factory)(**kwargs) if kwargs else factory
    _check_parameters(key, factory, kwargs)
    return factory(**kwargs)


# -- get and serialize -----------------------------------------------------------------------------
def get(identifier: str | Mapping[str, Any] | BaseInitializer, **kwargs: Any) -> BaseInitializer:
    """Builds an initializer from a name, a serialized dict, or an initializer.

    Args:
      identifier: a name or alias (``"he_normal"``, ``"kaiming_normal"``, ``"HeNormal"``), a
        framework preset's dotted name (``"torch.linear.bias"``, see
        ``jaxinit.preset_names()``), a dict from :func:`serialize`, or an initializer (returned
        as is, or with `kwargs` replaced). ``jaxinit.names()`` lists every name.
      **kwargs: parameters passed to the factory (they override a dict's config).

    Returns:
      The initializer.

    Raises:
      ValueError: for an unknown name (with close matches) or a malformed dict.
      TypeError: for any other kind of identifier, or an unknown or missing parameter.

    Examples:
      >>> import jaxinit
      >>> jaxinit.get("kaiming_normal", in_axis=0, out_axis=1)
      he_normal(in_axis=0, out_axis=1, batch_axis=(), dtype=None, groups=1, nonlinearity=None, \
negative_slope=None)
      >>> jaxinit.get("torch.linear.bias", fan_in=16)
      uniform_range(minval=-0.25, maxval=0.25, dtype=None)
      >>> init = jaxinit.variance_scaling(0.5, "fan_avg", "uniform", dtype="bfloat16")
      >>> jaxinit.get(jaxinit.serialize(init)) == init
      True
    """
    if isinstance(identifier, BaseInitializer):
        if not kwargs:
            return identifier
        _check_parameters(identifier.name, type(identifier), kwargs, complete=False)
        return dataclasses.replace(cast(Any, identifier), **kwargs)
    if isinstance(identifier, str):
        return build(identifier, kwargs)
    if isinstance(identifier, Mapping):
        if set(identifier) != {"name", "config"}:
            raise ValueError(
                "`identifier`, a serialized initializer, is a dict with keys 'name' and "
                f"'config' (as jaxinit.serialize makes it); got keys {sorted(map(str, identifier))}"
                "."
            )
        if not isinstance(identifier["config"], Mapping):
            raise TypeError(
                "`identifier` is a serialized initializer whose 'config' must be a dict of its "
                f"parameters; got {identifier['config']!r}."
            )
        name = identifier["name"]
        if not isinstance(name, str):
            raise TypeError(
                "`identifier` is a serialized initializer whose 'name' must be a string (a name "
                f"from `jaxinit.names()`); got {name!r}."
            )
        config = {k: _decode(k, v) for k, v in identifier["config"].items()}
        return build(name, {**config, **kwargs})
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
        return {"__scalar__": _encode_number(value.item()), "dtype": value.dtype.name}
    if isinstance(value, FrozenArray):
        a = value.array
        if np.iscomplexobj(a):
            re, im = np.real(a).tolist(), np.imag(a).tolist()
            return {"__array__": re, "imag": im, "dtype": a.dtype.name}
        return {"__array__": a.tolist(), "dtype": a.dtype.name}
    if isinstance(value, tuple):
        return [_encode(arg, v) for v in value]
    if isinstance(value, complex):
        return {"__complex__": _encode_number(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot serialize parameter `{arg}`={value!r}.")


def _encode_number(x: Any) -> Any:
    """A Python number, JSON-safe: a complex one as ``[real, imag]``."""
    return [x.real, x.imag] if isinstance(x, complex) else x


_MALFORMED = (
    "malformed serialized value of `{arg}`: {why}; got {value!r}. A serialized value is a "
    "number, a string, None, a list, or a dict from `jaxinit.serialize` "
    "({{'__scalar__': x, 'dtype': name}}, {{'__array__': nested list, 'dtype': name}} or "
    "{{'__complex__': [real, imag]}})."
)


def _decode_dtype(arg: str, value: Mapping[str, Any]) -> np.dtype:
    if "dtype" not in value:
        raise ValueError(_MALFORMED.format(arg=arg, why="it has no 'dtype'", value=value))
    try:
        return np.dtype(jnp.dtype(value["dtype"]))
    except TypeError:
        why = f"'dtype' {value['dtype']!r} is not a dtype name (e.g. 'float32', 'bfloat16')"
        raise ValueError(_MALFORMED.format(arg=arg, why=why, value=value)) from None


def _decode_number(x: Any) -> Any:
    is_pair = isinstance(x, list) and len(x) == 2
    return complex(*x) if is_pair and all(isinstance(v, int | float) for v in x) else x


def _decode(arg: str, value: Any) -> Any:
    """The parameter `arg`'s value from its JSON form (see `_encode`); a ValueError or
    TypeError naming `arg` for a malformed one."""
    if isinstance(value, list):
        return tuple(_decode(arg, v) for v in value)
    if not isinstance(value, dict):
        return value
    keys = set(value)
    try:
        if keys == {"__complex__"}:
            return complex(*value["__complex__"])
        if keys == {"__scalar__", "dtype"} or keys == {"__scalar__"}:
            dtype = _decode_dtype(arg, value)
            return dtype.type(_decode_number(value["__scalar__"]))
        if keys in ({"__array__", "dtype"}, {"__array__", "imag", "dtype"}, {"__array__"}):
            dtype = _decode_dtype(arg, value)
            a = np.asarray(value["__array__"], dtype=dtype)
            if "imag" in value:
                a = a + 1j * np.asarray(value["imag"], dtype=dtype)
            return FrozenArray(a.astype(dtype))
    except (TypeError, ValueError, OverflowError) as e:
        if str(e).startswith("malformed"):
            raise
        raise ValueError(_MALFORMED.format(arg=arg, why=str(e), value=value)) from None
    raise ValueError(_MALFORMED.format(arg=arg, why=f"unknown keys {sorted(keys)}", value=value))


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
