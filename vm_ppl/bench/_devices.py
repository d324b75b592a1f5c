"""Host (CPU) devices for the benchmarks' parallel chains, requested in ``main`` only.

XLA reads ``--xla_force_host_platform_device_count`` from ``XLA_FLAGS`` when JAX starts its
backends (the first ``jax.devices()`` or computation), not at ``import jax``. The benchmark
entry points call :func:`request_host_devices` first, so importing a benchmark module
leaves the environment alone and a user's own ``XLA_FLAGS`` wins.
"""

from __future__ import annotations

import os
import sys
import warnings

_FLAG = "--xla_force_host_platform_device_count"


def _backends_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # private module moved: assume started (the flag may not apply)
        return True
    return bool(xla_bridge.backends_are_initialized())


def request_host_devices(n: int) -> int:
    """Ask XLA for ``n`` CPU host devices (one per parallel chain) before JAX starts.

    Adds ``--xla_force_host_platform_device_count=n`` to ``XLA_FLAGS`` in this process's
    environment unless the flags already set a device count. Call it from a command-line
    entry point, before the first JAX computation.

    Parameters
    ----------
    n : int
        Number of host devices wanted.

    Returns
    -------
    int
        The number of local devices JAX then has. If JAX's backends had already
        started with fewer, the flag cannot apply any more: a ``RuntimeWarning`` says so
        (the benchmarks then run their chains vectorised or sequentially).
    """
    if not _backends_started():
        flags = os.environ.get("XLA_FLAGS", "")
        if _FLAG not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={n}".strip()
    import jax

    have = jax.local_device_count()
    if have < n:
        warnings.warn(
            f"JAX has {have} local device(s), fewer than the {n} requested: JAX started "
            f"before {_FLAG}={n} could be set, or XLA_FLAGS sets another count",
            RuntimeWarning,
            stacklevel=2,
        )
    return have
