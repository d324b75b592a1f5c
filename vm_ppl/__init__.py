r"""vm_ppl: one fast, exact, differentiable von Mises kernel in JAX.

The core (this package) imports only jax, numpy and scipy. Adapters for NumPyro
(:mod:`vm_ppl.numpyro`) and PyMC (:mod:`vm_ppl.pymc`) build on it.

Every function broadcasts over its array arguments, works under ``jit``, ``vmap`` and
``grad``, and follows the input dtype (float32 by default, float64 with
``jax.config.update("jax_enable_x64", True)``).

=========================  ==========================================================
``log_prob``               log-density, any angle window, analytic derivatives
``tan_half_log_prob``      log-density of a tan-half regression, no ``arctan``
``sample``                 exact Best-Fisher sampler, implicit reparameterisation
``cdf`` / ``icdf``         Hill (1977) cdf, SciPy's convention; its inverse
``entropy``                differential entropy
``circular_variance``      :math:`1 - A(\kappa)`
``kl_divergence``          closed-form KL between two von Mises
``fit``                    maximum-likelihood ``(loc, concentration)``
``circular_mean``          mean direction of data
``mean_resultant_length``  :math:`\bar R` of data
``log_i0``                 :math:`\log I_0`, stable from 0 to 1e8
``bessel_ratio``           :math:`A = I_1/I_0`
``inv_bessel_ratio``       :math:`A^{-1}`
``wrap_angle``             wrap to :math:`[-\pi, \pi)`
``directional_head``       neural-network head: outputs -> (direction, kappa), draws
=========================  ==========================================================
"""

from .bessel import bessel_ratio, inv_bessel_ratio, log_i0
from .cdf import cdf, icdf
from .density import log_prob
from .fitting import circular_mean, fit, mean_resultant_length
from .heads import directional_head
from .properties import circular_variance, entropy, kl_divergence
from .sampling import sample, wrap_angle
from .tan_half import tan_half_log_prob

__all__ = [
    "bessel_ratio",
    "cdf",
    "circular_mean",
    "circular_variance",
    "directional_head",
    "entropy",
    "fit",
    "icdf",
    "inv_bessel_ratio",
    "kl_divergence",
    "log_i0",
    "log_prob",
    "mean_resultant_length",
    "sample",
    "tan_half_log_prob",
    "wrap_angle",
]

__version__ = "0.1.0"
