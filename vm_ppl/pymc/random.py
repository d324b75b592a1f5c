r"""A von Mises :class:`~pytensor.tensor.random.op.RandomVariable` for vm_ppl.

Its own class (not PyTensor's ``VonMisesRV``) so that the backends can be registered
without touching ``pm.VonMises``. Every backend draws exactly, for every
:math:`\kappa \ge 0`, in :math:`[-\pi, \pi)`: the default backend and NUMBA run the
core's Best-Fisher proposal as a Numba-compiled scalar kernel
(:func:`vm_ppl.pymc._kernels.draw`, fed by the graph's NumPy ``Generator``), JAX runs the
core sampler :func:`vm_ppl.sample` (:mod:`.registry`). NumPy's ``Generator.vonmises`` is
not used: it switches to a wrapped normal above :math:`\kappa = 10^6`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numba
import numpy as np
from pytensor.tensor.random.op import RandomVariable

from . import _kernels

__all__ = ["VonMisesRV", "njit_kernel", "vonmises", "vonmises_draws"]


@functools.cache
def njit_kernel(kernel: Callable):
    """``kernel`` (a function of :mod:`._kernels`) compiled by ``numba.njit`` (disk-cached)."""
    return numba.njit(kernel, cache=True, error_model="numpy")


@functools.cache
def _fill_draws():
    draw = njit_kernel(_kernels.draw)

    def fill(rng, mu, kappa, out):
        for i in range(out.size):
            out[i] = draw(rng, mu[i], kappa[i])

    return numba.njit(fill, cache=True, error_model="numpy")


def vonmises_draws(rng: np.random.Generator, mu, kappa, size=None) -> np.ndarray:
    r"""Exact von Mises draws in :math:`[-\pi, \pi)` (:func:`._kernels.draw`, compiled),
    ``mu`` and ``kappa`` broadcast against ``size``; advances ``rng``'s stream."""
    shape = np.broadcast_shapes(
        np.shape(mu), np.shape(kappa), *(() if size is None else (tuple(size),))
    )
    mu_b = np.ascontiguousarray(np.broadcast_to(np.asarray(mu, np.float64), shape)).ravel()
    k_b = np.ascontiguousarray(np.broadcast_to(np.asarray(kappa, np.float64), shape)).ravel()
    out = np.empty(mu_b.size)
    _fill_draws()(rng, mu_b, k_b, out)
    return out.reshape(shape)


class VonMisesRV(RandomVariable):
    r"""von Mises draws :math:`x \sim \mathrm{VM}(\mu, \kappa)` in :math:`[-\pi, \pi)`.

    Signature ``(), () -> ()``.
    """

    name = "vonmises_vm_ppl"
    signature = "(),()->()"
    dtype = "floatX"
    _print_name = ("VonMises", "\\operatorname{VonMises}")

    @classmethod
    def rng_fn(cls, rng: np.random.Generator, mu, kappa, size) -> np.ndarray:
        return vonmises_draws(rng, mu, kappa, size)


vonmises = VonMisesRV()
