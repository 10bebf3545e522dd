r"""Framework defaults by name: ``jaxinit.get("torch.linear.bias", fan_in=256)``.

A preset is a small factory named ``<framework>.<layer>.<parameter>`` (or
``<framework>.<scheme>`` for a framework's stand-alone initializers) that returns an ordinary
jaxinit initializer reproducing that framework's default in JAX layouts: dense kernels
``(in, out)``, conv kernels HWIO ``(*spatial, in, out)``, embeddings ``(vocab, features)``. The
result is built from the existing schemes, so ``jaxinit.serialize`` gives the underlying scheme
(``torch.linear.kernel`` serializes as ``he_uniform(... negative_slope=sqrt(5))``).

Presets live in the one registry (registry.py), registered with its decorator
``register(name, *aliases)`` like the schemes, one module a framework (presets_torch.py,
presets_keras.py, presets_haiku.py, presets_flax.py, presets_caffe.py, presets_mxnet.py,
presets_tf1.py) and every framework's zeros and ones in one table (presets_zeros_ones.py). Every
preset takes ``dtype=None`` (the default dtype; not repeated in each docstring); a few need a
number the weight's shape does not carry (``fan_in`` for a torch bias, ``hidden_size`` for a
torch RNN). This module holds what the preset modules share: the `Preset` type and
`dtype_preset`, which registers a preset that takes nothing but ``dtype``.

Examples:
  >>> import jax, jaxinit
  >>> jaxinit.get("torch.linear.bias", fan_in=256)
  uniform_range(minval=-0.0625, maxval=0.0625, dtype=None)
  >>> w = jaxinit.get("keras.embedding.embeddings")(jax.random.key(0), (1000, 64))
  >>> bool(abs(w).max() <= 0.05)
  True
  >>> "torch.rnn.recurrent_kernel" in jaxinit.preset_names()
  True
"""

from __future__ import annotations

from collections.abc import Callable

from jaxinit._src.catalog import registry
from jaxinit._src.core.base import BaseInitializer
from jaxinit._src.core.typing import DTypeLike

#: A preset factory: keyword parameters (always ``dtype=None``) -> an initializer.
Preset = Callable[..., BaseInitializer]

#: Builds a preset (or any registered initializer) by name: the registry's `build`.
build = registry.build


def dtype_preset(
    names: tuple[str, ...], make: Callable[[DTypeLike | None], BaseInitializer], doc: str
) -> Preset:
    """Registers under `names` the preset ``(*, dtype=None) -> make(dtype)`` documented by `doc`."""

    def preset(*, dtype: DTypeLike | None = None) -> BaseInitializer:
        return make(dtype)

    preset.__name__ = preset.__qualname__ = names[0].replace(".", "_")
    preset.__doc__ = doc
    return registry.register(*names)(preset)
