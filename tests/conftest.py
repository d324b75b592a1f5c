"""Shared fixtures: float64 tests run inside ``jax.enable_x64(True)``; one XLA cache per run."""

import os
import shutil
import tempfile

# One persistent XLA compilation cache for the whole run, shared by the xdist workers and
# every subprocess a test starts (notebook kernels, README blocks, bench scripts): they
# compile many of the same small programs, and a fresh directory per run keeps runs
# independent. Set before JAX is imported, here and (through the environment) in children.
_CACHE_OWNER = "VM_PPL_TEST_JAX_CACHE_OWNER"
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="vm_ppl_xla_cache_")
    os.environ[_CACHE_OWNER] = str(os.getpid())
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_unconfigure(config):
    """The process that made the cache directory removes it."""
    if os.environ.get(_CACHE_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


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
