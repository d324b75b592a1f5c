"""JAX registrations: the PyTensor ops run the :mod:`vm_ppl` core kernels.

``pm.sample(nuts_sampler="numpyro")``, nutpie ``backend="jax"`` and
``compile_kwargs={"mode": "JAX"}`` convert the logp graph with ``jax_funcify``; with
these registrations they end in the same jitted :func:`vm_ppl.log_prob` (custom JVP,
analytic derivatives) as a NumPyro model; a tan-half regression likelihood
``vonmises_logp(y, mu0 + 2 arctan(eta), k)`` is rewritten (JAX mode only, see
:mod:`.tan_half`) to the fused :func:`vm_ppl.tan_half_log_prob`. The gradient ops are
registered too, so a symbolic PyTensor gradient (nutpie ``gradient_backend="pytensor"``)
converts as well.

Note: importing PyTensor's JAX dispatch sets ``jax_enable_x64`` to match
``pytensor.config.floatX`` (PyTensor's own behaviour, also triggered by PyMC's JAX
samplers).

PyTorch (``mode="PYTORCH"``): see :mod:`.dispatch_pytorch`.
"""

from __future__ import annotations

from pytensor.link.jax.dispatch import jax_funcify
from pytensor.link.jax.dispatch.random import jax_sample_fn

from ..bessel import bessel_ratio_derivative, one_minus_bessel_ratio
from ..cdf import cdf, icdf
from ..density import log_prob
from ..sampling import sample
from ..tan_half import tan_half_log_prob
from .ops import (
    BesselRatioDerivative,
    OneMinusBesselRatio,
    VonMisesCDF,
    VonMisesICDF,
    VonMisesLogp,
)
from .random import VonMisesRV
from .tan_half import VonMisesTanHalfLogp


@jax_funcify.register(VonMisesLogp)
def _jax_vonmises_logp(op, node=None, **kwargs):
    return log_prob


@jax_funcify.register(VonMisesTanHalfLogp)
def _jax_vonmises_tan_half_logp(op, node=None, **kwargs):
    # The fused link-density kernel (see vm_ppl.pymc.tan_half): no arctan per observation.
    return tan_half_log_prob


@jax_funcify.register(OneMinusBesselRatio)
def _jax_one_minus_bessel_ratio(op, node=None, **kwargs):
    return one_minus_bessel_ratio


@jax_funcify.register(BesselRatioDerivative)
def _jax_bessel_ratio_derivative(op, node=None, **kwargs):
    return bessel_ratio_derivative


@jax_funcify.register(VonMisesCDF)
def _jax_vonmises_cdf(op, node=None, **kwargs):
    return cdf


@jax_funcify.register(VonMisesICDF)
def _jax_vonmises_icdf(op, node=None, **kwargs):
    return icdf


@jax_sample_fn.register(VonMisesRV)
def _jax_sample_vonmises(op, node):
    # The core's exact Best-Fisher sampler: no NumPyro, uniform at kappa = 0.
    def sample_fn(rng_key, size, dtype, mu, kappa):
        return sample(rng_key, mu, kappa, shape=size, dtype=dtype)

    return sample_fn
