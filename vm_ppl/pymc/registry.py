r"""Backend implementations of the von Mises ops, all derived from one pair per op.

Each op of :mod:`.ops` names its scalar kernel (``op.kernel``, a function of
:mod:`._kernels`) and its JAX core function (``op.core``); this module registers, once
for every op (for their base class :class:`~.ops.KernelScalarOp`):

* NUMBA: the kernel compiled with ``numba.njit`` (native, never object mode); PyTensor's
  Elemwise/Composite machinery vectorises and fuses it;
* C: :func:`c_address`, the kernel compiled with ``numba.cfunc``, which the op's C code
  calls (:meth:`~.ops.KernelScalarOp.c_code`);
* JAX: the core function (``pm.sample(nuts_sampler="numpyro")``, nutpie ``backend="jax"``
  and ``compile_kwargs={"mode": "JAX"}`` end in the same jitted :func:`vm_ppl.log_prob`,
  custom JVP and all, as a NumPyro model); the gradient ops are registered too, so a
  symbolic PyTensor gradient converts as well;
* PyTorch: :func:`ufunc` (the kernel as a Numba-compiled NumPy ufunc), registered by the
  opt-in module :mod:`.pytorch`.

The random variable (:class:`~.random.VonMisesRV`) draws with :func:`._kernels.draw`
(NUMBA: compiled into the graph; default backend: :func:`.random.vonmises_draws`) and, on JAX,
with the core sampler :func:`vm_ppl.sample`; all three are exact for every
:math:`\kappa \ge 0`.

Importing PyTensor's JAX dispatch (here, at ``import vm_ppl.pymc``) sets
``jax_enable_x64`` to match ``pytensor.config.floatX`` (PyTensor's own behaviour, also
triggered by PyMC's JAX samplers): ``jax_funcify`` cannot be registered without it.
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable

import numba
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify
from pytensor.link.jax.dispatch.random import jax_sample_fn
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
from pytensor.link.numba.dispatch.random import numba_core_rv_funcify
from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key

from .. import _tables
from ..sampling import sample
from . import _kernels
from .ops import KernelScalarOp
from .random import VonMisesRV, njit_kernel

__all__ = ["c_address", "ufunc"]

# Numba's on-disk cache key of PyTensor's compiled graphs: the kernels' source and every
# constant they import from the core, so that no edit can reuse a stale compilation.
_CACHE_VERSION = zlib.crc32(
    repr(
        (
            inspect.getsource(_kernels),
            inspect.getsource(_tables),
            _kernels.OMB_SERIES,
            _kernels.CDF_SEGMENTS,
            _kernels.CDF_SWITCH,
            _kernels.ASYMPTOTIC_THRESHOLD,
        )
    ).encode()
)


def _nargs(kernel: Callable) -> int:
    return len(inspect.signature(kernel).parameters)


@functools.cache
def c_address(name: str) -> int:
    """Address of the C function ``double name(double, ...)`` compiled by Numba from
    ``_kernels.<name>`` (compiled on first use, cached on disk; called by the ops' C
    code once per compiled module)."""
    kernel = getattr(_kernels, name)
    signature = numba.float64(*([numba.float64] * _nargs(kernel)))
    return numba.cfunc(signature, cache=True, error_model="numpy")(kernel).address


@functools.cache
def ufunc(kernel: Callable) -> np.ufunc:
    """``kernel`` compiled by Numba to a float64 NumPy ufunc (broadcasting, native)."""
    signature = numba.float64(*([numba.float64] * _nargs(kernel)))
    return numba.vectorize([signature], cache=True)(kernel)


@register_funcify_and_cache_key(KernelScalarOp)
def _numba_kernel(op, node=None, **kwargs):
    return njit_kernel(op.kernel), scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@numba_core_rv_funcify.register(VonMisesRV)
def _numba_core_vonmises(op, node):
    return njit_kernel(_kernels.draw), _CACHE_VERSION


@jax_funcify.register(KernelScalarOp)
def _jax_kernel(op, node=None, **kwargs):
    return op.core


@jax_sample_fn.register(VonMisesRV)
def _jax_sample_vonmises(op, node):
    # The core's exact Best-Fisher sampler: no NumPyro, uniform at kappa = 0.
    def sample_fn(rng_key, size, dtype, mu, kappa):
        return sample(rng_key, mu, kappa, shape=size, dtype=dtype)

    return sample_fn
