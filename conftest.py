"""Repository-wide pytest set-up, loaded before any test or doctest module imports JAX."""

import os

import pytest

# 8 simulated CPU devices for the sharding tests; must be set before JAX initializes.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()


#: Doctests that compile a whole model (seconds each): the fast lane leaves them out.
SLOW_DOCTESTS = ("README.md", "jaxinit._src.flax.lsuv.lsuv", "jaxinit._src.flax.reinit.reinit")


def _slow(item) -> bool:
    return item.get_closest_marker("slow") is not None


def pytest_collection_modifyitems(items):
    """What the fast lane (``-m "not slow"``) leaves out, besides what the tests mark `slow`:

    * the notebooks (nbmake items): each starts a kernel;
    * the doctests in `SLOW_DOCTESTS`;
    * every parametrization of a test function but its first fast one: the lane runs each
      test function once, on its first case (the grids list their cheapest cases first).
    """
    seen = set()
    for item in items:
        if item.path.suffix == ".ipynb" or item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)
        if getattr(item, "callspec", None) is None or _slow(item):
            continue
        function = (item.path, getattr(item, "originalname", item.name))
        if function in seen:
            item.add_marker(pytest.mark.slow)
        seen.add(function)
