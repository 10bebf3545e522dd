"""Repository-wide pytest set-up, loaded before any test or doctest module imports JAX."""

import os

import pytest

# 8 simulated CPU devices for the sharding tests; must be set before JAX initializes.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()


def pytest_collection_modifyitems(items):
    """The notebooks (nbmake items, not Python functions) are slow: each starts a kernel."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
