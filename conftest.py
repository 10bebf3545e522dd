"""Repository-wide pytest set-up, loaded before any test or doctest module imports JAX."""

import os

# 8 simulated CPU devices for the sharding tests; must be set before JAX initializes.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
