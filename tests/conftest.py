"""Shared fixtures: float64 tests run inside ``jax.enable_x64(True)``."""

import jax
import pytest


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run a test in both dtypes; float64 enables x64 for the test's duration only."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield request.param
    else:
        yield request.param


@pytest.fixture
def x64():
    """Enable x64 for one test."""
    with jax.enable_x64(True):
        yield
