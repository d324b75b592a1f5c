r"""Closed-form properties of the von Mises distribution: entropy, variance, KL.

All are written with :math:`\log \mathrm{i0e}` and the cancellation-free
:math:`1 - A(\kappa)` of :mod:`vm_ppl.bessel`, so they stay accurate from
:math:`\kappa = 0` to :math:`10^8` in float32 and float64.

References
----------
.. [1] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*, Wiley.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.typing import ArrayLike

from ._fastmath import half_angle_sincos
from ._utils import nan_unless_valid, promote_float
from .bessel import bessel_ratio, log_i0e, one_minus_bessel_ratio

__all__ = ["circular_variance", "entropy", "kl_divergence"]

_LOG_2PI = math.log(2 * math.pi)


def entropy(concentration: ArrayLike) -> jnp.ndarray:
    r"""Differential entropy of a von Mises distribution (nats).

    .. math:: H(\kappa) = \log(2\pi I_0(\kappa)) - \kappa A(\kappa)
       = \log 2\pi + \log\mathrm{i0e}(\kappa) + \kappa\,(1 - A(\kappa))

    ``log(2 pi)`` at :math:`\kappa = 0` (uniform), about
    :math:`\tfrac12\log(2\pi e/\kappa)` for large :math:`\kappa`. NaN for invalid
    concentration (negative, NaN, inf), with NaN derivatives there too.
    """
    (k,) = promote_float(concentration, names=("concentration",))
    h = _LOG_2PI + log_i0e(k) + k * one_minus_bessel_ratio(k)
    return nan_unless_valid(h, k)


def circular_variance(concentration: ArrayLike) -> jnp.ndarray:
    r"""Circular variance :math:`1 - A(\kappa) = 1 - I_1(\kappa)/I_0(\kappa)`.

    1 at :math:`\kappa = 0`, about :math:`1/(2\kappa)` for large :math:`\kappa`, computed
    without cancellation. NaN for invalid concentration.
    """
    (k,) = promote_float(concentration, names=("concentration",))
    return nan_unless_valid(one_minus_bessel_ratio(k), k)


def kl_divergence(
    loc_p: ArrayLike, conc_p: ArrayLike, loc_q: ArrayLike, conc_q: ArrayLike
) -> jnp.ndarray:
    r"""Kullback-Leibler divergence :math:`KL(p \,\|\, q)` between two von Mises laws.

    .. math::

        KL = \log\frac{I_0(\kappa_q)}{I_0(\kappa_p)} + A(\kappa_p)
             \left(\kappa_p - \kappa_q\cos(\mu_p - \mu_q)\right)
           = \log\frac{\mathrm{i0e}(\kappa_q)}{\mathrm{i0e}(\kappa_p)}
             + (\kappa_q - \kappa_p)(1 - A_p) + 2\kappa_q A_p \sin^2\frac{\mu_p-\mu_q}{2}

    The second form is evaluated: exactly 0 for ``p == q``, no overflow, no
    cancellation. Broadcasts over all four arguments; NaN for invalid concentrations.
    """
    loc_p, conc_p, loc_q, conc_q = promote_float(
        loc_p, conc_p, loc_q, conc_q, names=("loc_p", "conc_p", "loc_q", "conc_q")
    )
    a_p = bessel_ratio(conc_p)
    s, _ = half_angle_sincos(loc_p - loc_q)
    kl = (
        log_i0e(conc_q)
        - log_i0e(conc_p)
        + (conc_q - conc_p) * one_minus_bessel_ratio(conc_p)
        + 2.0 * conc_q * a_p * s * s
    )
    return nan_unless_valid(kl, conc_p, conc_q)
