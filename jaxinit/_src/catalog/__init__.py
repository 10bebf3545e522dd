"""The catalogue: every initializer `jaxinit.get` finds by name, in one registry.

registry.py holds the one table (canonical name -> factory, plus aliases), its decorator
``register(name, *aliases)``, the lookup, the errors, `get` and `serialize`, and registers the
schemes. Each framework's presets register with the same decorator in their own module
(presets_<framework>.py, sharing presets.py); importing this package imports them all, so the
table is complete wherever the registry is used. A new initializer touches its own module and
the registry (or its framework's preset module) only.
"""

# Each preset module registers its presets when imported.
from jaxinit._src.catalog import (  # noqa: F401
    presets_caffe,
    presets_flax,
    presets_haiku,
    presets_keras,
    presets_mxnet,
    presets_tf1,
    presets_torch,
    presets_zeros_ones,
)
