"""Test set-up: strict dtype promotion for every test (the repository conftest sets 8 devices)."""

import jax
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles (tests/test_properties.py): "ci", the default, is derandomized and small
# (the same examples on every run); `--hypothesis-profile=deep` runs thousands with a database
# (.hypothesis/) that keeps failures. No deadline: compile times vary.
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=40,
    suppress_health_check=_HEALTH,
    print_blob=True,
)
settings.register_profile("deep", deadline=None, max_examples=2000, suppress_health_check=_HEALTH)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _strict_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield
