"""Numba registrations: native ``njit`` kernels, never object mode.

The scalar ops compile :mod:`._kernels` (Cephes i0e/i1e, asymptotic series) with
``numba.njit``; PyTensor's Elemwise/Composite machinery vectorises and fuses them. The
random variable gets a Best-Fisher sampler written against numba's ``Generator`` API.
"""

from __future__ import annotations

import math

import numba
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
from pytensor.link.numba.dispatch.random import numba_core_rv_funcify
from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key

from . import _kernels
from .ops import (
    BesselRatioDerivative,
    OneMinusBesselRatio,
    VonMisesCDF,
    VonMisesICDF,
    VonMisesLogNormaliser,
    VonMisesLogp,
)
from .random import VonMisesRV

_CACHE_VERSION = 3  # bump on any change of _kernels (numba's on-disk cache key)

# Compile the shared pure-Python kernels (module-level, so numba resolves them as
# globals of each other).
_i0e = numba.njit(_kernels.i0e)
_kernels_nb = {
    "logp": numba.njit(_kernels.logp),
    "one_minus_ratio": numba.njit(_kernels.one_minus_ratio),
    "ratio_derivative": numba.njit(_kernels.ratio_derivative),
    "log_normaliser": numba.njit(_kernels.log_normaliser),
    "cdf": numba.njit(_kernels.cdf),
    "icdf": numba.njit(_kernels.icdf),
}


@register_funcify_and_cache_key(VonMisesLogp)
def _numba_vonmises_logp(op, node=None, **kwargs):
    return _kernels_nb["logp"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@register_funcify_and_cache_key(OneMinusBesselRatio)
def _numba_one_minus_bessel_ratio(op, node=None, **kwargs):
    return _kernels_nb["one_minus_ratio"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@register_funcify_and_cache_key(BesselRatioDerivative)
def _numba_bessel_ratio_derivative(op, node=None, **kwargs):
    return _kernels_nb["ratio_derivative"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@register_funcify_and_cache_key(VonMisesLogNormaliser)
def _numba_vonmises_log_normaliser(op, node=None, **kwargs):
    return _kernels_nb["log_normaliser"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@register_funcify_and_cache_key(VonMisesCDF)
def _numba_vonmises_cdf(op, node=None, **kwargs):
    return _kernels_nb["cdf"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@register_funcify_and_cache_key(VonMisesICDF)
def _numba_vonmises_icdf(op, node=None, **kwargs):
    return _kernels_nb["icdf"], scalar_op_cache_key(op, cache_version=_CACHE_VERSION)


@numba.njit
def _draw(rng, mu, kappa):
    # Best & Fisher (1979) as in NumPy's random_vonmises: uniform below 1e-8, the wrapped
    # normal limit above 1e6 (error O(1/kappa) in distribution), result in [-pi, pi).
    if not (kappa >= 0.0) or math.isinf(kappa) or math.isnan(mu):
        return math.nan
    if kappa < 1e-8:
        theta = math.pi * (2.0 * rng.random() - 1.0)
    elif kappa > 1e6:
        theta = rng.standard_normal() / math.sqrt(kappa)
    else:
        if kappa < 1e-5:
            s = 1.0 / kappa + kappa
        else:
            r = 1.0 + math.sqrt(1.0 + 4.0 * kappa * kappa)
            rho = (r - math.sqrt(2.0 * r)) / (2.0 * kappa)
            s = (1.0 + rho * rho) / (2.0 * rho)
        while True:
            u = rng.random()
            z = math.cos(math.pi * u)
            w = (1.0 + s * z) / (s + z)
            y = kappa * (s - w)
            v = rng.random()
            if y * (2.0 - y) - v >= 0.0 or (v > 0.0 and math.log(y / v) + 1.0 - y >= 0.0):
                break
        theta = math.acos(min(1.0, max(-1.0, w)))
        if rng.random() < 0.5:
            theta = -theta
    out = theta + mu
    out = out - 2.0 * math.pi * math.floor((out + math.pi) / (2.0 * math.pi))
    return out if out < math.pi else out - 2.0 * math.pi


@numba_core_rv_funcify.register(VonMisesRV)
def _numba_core_vonmises(op, node):
    return _draw
