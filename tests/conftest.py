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


def pytest_collection_finish(session):
    """Importing PyTensor's JAX dispatch (vm_ppl.pymc, PyMC's JAX samplers) turns on x64
    process-wide when floatX is float64. Start every test from JAX's default (float32)."""
    jax.config.update("jax_enable_x64", False)


@pytest.fixture(autouse=True)
def _restore_x64():
    """A test that flips x64 (directly or through an import) does not leak it."""
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)
