"""Parameter paths: the one way a pytree or module path becomes the ``a/b/0/kernel`` string.

Rules match it, `stable_hash` keys it, the report and muP print it: all through `join_path`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def key_name(entry: Any) -> Any:
    """The bare key of a `jax.tree_util` path entry (dict key, index, attribute name); any
    other entry (an NNX path's str or int) as it is."""
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return entry


def join_path(entries: Iterable[Any]) -> str:
    """A parameter's path: its keys joined by ``/`` (``blocks/3/attn/q/kernel``).

    Examples:
      >>> import jax
      >>> from jaxinit._src.core.paths import join_path
      >>> join_path(("blocks", 3, "kernel"))
      'blocks/3/kernel'
      >>> join_path((jax.tree_util.DictKey("q"), jax.tree_util.SequenceKey(0)))
      'q/0'
    """
    return "/".join(str(key_name(e)) for e in entries)
