"""Test set-up: strict dtype promotion for every test (the repository conftest sets 8 devices)."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield
