"""Key checks: typed keys (`jax.random.key`) and legacy ``uint32[2]`` keys."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.typing import KeyArray

_KEY_ERROR = (
    "`key` must be a single PRNG key: a typed key from `jax.random.key(seed)` (shape ()) or a "
    "legacy `jax.random.PRNGKey(seed)` (uint32[2]); got {what}. To initialize a batch of "
    "parameters, `jax.vmap` over the keys."
)


def check_key(key: Any) -> KeyArray:
    """Returns `key` if it is one PRNG key, else raises a `TypeError` that says what a key is."""
    if isinstance(key, int | float | np.integer):
        raise TypeError(_KEY_ERROR.format(what=f"the number {key!r}"))
    if not hasattr(key, "dtype") or not hasattr(key, "shape"):
        raise TypeError(_KEY_ERROR.format(what=f"{type(key).__name__} {key!r}"))
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise TypeError(_KEY_ERROR.format(what=f"a key array of shape {key.shape}"))
        return key
    if key.dtype != jnp.uint32 or key.ndim != 1:
        raise TypeError(_KEY_ERROR.format(what=f"an array of dtype {key.dtype}, shape {key.shape}"))
    return key
