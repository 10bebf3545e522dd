"""Key checks: typed keys (`jax.random.key`) and legacy ``uint32[2]`` keys."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.config import config
from jaxinit._src.core.typing import KeyArray

#: Key implementations whose bits depend on how the output is sharded.
NOT_SHARD_INVARIANT = frozenset({"rbg", "unsafe_rbg"})
_WARNED: set[str] = set()
_IMPL_MESSAGE = (
    "PRNG key implementation {impl!r} is not shard-invariant: the same key can give different "
    "values on different meshes or device counts, breaking jaxinit's determinism contract. Use "
    "'threefry2x32' (jax's default) for initialization, e.g. jax.random.key(seed, "
    "impl='threefry2x32'){strict}"
)

_KEY_ERROR = (
    "`key` must be a single PRNG key: a typed key from `jax.random.key(seed)` (shape ()) or a "
    "legacy `jax.random.PRNGKey(seed)` (uint32{raw} for jax's default implementation "
    "{impl!r}); got {what}. To initialize a batch of parameters, `jax.vmap` over the keys."
)


@functools.cache
def raw_key_shape(impl: str) -> tuple[int, ...]:
    """The shape of the raw uint32 key data of implementation `impl` (``(2,)`` for threefry)."""
    return jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0, impl=impl))).shape


def _key_error(what: str) -> TypeError:
    impl = str(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]
    raw = list(raw_key_shape(impl))
    return TypeError(_KEY_ERROR.format(raw=raw, impl=impl, what=what))


def key_impl_name(key: Any) -> str:
    """The implementation name of a typed key, or jax's default for a legacy uint32 key."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(key))
    return str(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]


def check_impl(key: Any) -> None:
    """Warns once per implementation (or raises in strict mode) for non-shard-invariant keys."""
    impl = key_impl_name(key)
    if impl not in NOT_SHARD_INVARIANT:
        return
    if config.strict:
        raise ValueError(_IMPL_MESSAGE.format(impl=impl, strict=" (jaxinit.config.strict)."))
    if impl not in _WARNED:
        _WARNED.add(impl)
        warnings.warn(_IMPL_MESSAGE.format(impl=impl, strict="."), UserWarning, stacklevel=4)


def check_key(key: Any) -> KeyArray:
    """Returns `key` if jax accepts it as one PRNG key, else raises a `TypeError` that says what a
    key is: a typed key of any implementation, shape ``()``, or raw ``uint32`` key data of the
    shape of jax's default implementation (a jax or NumPy array, possibly traced)."""
    if isinstance(key, int | float | np.integer):
        raise _key_error(f"the number {key!r}")
    if not isinstance(key, jax.Array | np.ndarray):
        raise _key_error(f"{type(key).__name__} {key!r}")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise _key_error(f"a key array of shape {key.shape}")
    else:
        impl = str(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]
        if key.dtype != jnp.uint32 or key.shape != raw_key_shape(impl):
            raise _key_error(f"an array of dtype {key.dtype}, shape {key.shape}")
    check_impl(key)
    return key  # type: ignore[return-value]  # a NumPy uint32 key is one jax accepts
