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


def _wanted_x64(request) -> bool:
    # Modules that exercise PyTensor's JAX backend with float64 models declare
    # `JAX_X64 = True` (importing it turns x64 on, as PyMC's JAX samplers do); all others
    # run in JAX's default float32 unless a test asks for the `dtype`/`x64` fixtures.
    return bool(getattr(request.module, "JAX_X64", False))


@pytest.fixture(scope="module", autouse=True)
def _module_x64(request):
    """Set x64 for the module (before its module-scoped fixtures run), restore after."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", _wanted_x64(request))
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture(autouse=True)
def _test_x64(request):
    """Every test starts from its module's x64 setting, whatever ran (or was imported)
    before it."""
    jax.config.update("jax_enable_x64", _wanted_x64(request))
    yield


@pytest.fixture(autouse=True)
def _mpmath_precision():
    """mpmath's precision is global: each test starts at 40 digits (references need more
    than the 15 of float64), and whatever a test sets does not leak into the next."""
    import mpmath

    before = mpmath.mp.dps
    mpmath.mp.dps = 40
    yield
    mpmath.mp.dps = before
