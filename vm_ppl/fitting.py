r"""Circular summaries of data and maximum-likelihood fitting of a von Mises.

References
----------
.. [1] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*, Wiley, sec. 2.2
   (mean direction and mean resultant length) and sec. 5.3 (maximum likelihood).
.. [2] Best, D. J. and Fisher, N. I. (1981). The bias of the maximum likelihood
   estimators of the von Mises-Fisher concentration parameters.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from ._utils import promote_float
from .bessel import inv_bessel_ratio

__all__ = ["circular_mean", "fit", "mean_resultant_length"]

AxisLike = int | tuple[int, ...] | None


def _mean_cos_sin(angles: jnp.ndarray, axis: AxisLike) -> tuple[jnp.ndarray, jnp.ndarray]:
    return jnp.mean(jnp.cos(angles), axis=axis), jnp.mean(jnp.sin(angles), axis=axis)


def circular_mean(angles: ArrayLike, axis: AxisLike = None) -> jnp.ndarray:
    r"""Mean direction :math:`\bar\theta = \operatorname{atan2}(\bar S, \bar C)` in
    :math:`[-\pi, \pi]`, with :math:`\bar C, \bar S` the means of cos and sin.

    NaN angles give NaN. The mean direction of perfectly balanced data (``R = 0``) is
    undefined; ``atan2(0, 0) = 0`` is returned there.
    """
    (angles,) = promote_float(angles)
    c, s = _mean_cos_sin(angles, axis)
    return jnp.arctan2(s, c)


def mean_resultant_length(angles: ArrayLike, axis: AxisLike = None) -> jnp.ndarray:
    r"""Mean resultant length :math:`\bar R = \sqrt{\bar C^2 + \bar S^2} \in [0, 1]`."""
    (angles,) = promote_float(angles)
    c, s = _mean_cos_sin(angles, axis)
    return jnp.hypot(c, s)


def fit(angles: ArrayLike, axis: AxisLike = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""Maximum-likelihood estimates ``(loc, concentration)`` of a von Mises.

    .. math:: \hat\mu = \operatorname{atan2}(\bar S, \bar C), \qquad
       \hat\kappa = A^{-1}(\bar R),

    with :math:`A = I_1/I_0` inverted by :func:`vm_ppl.inv_bessel_ratio` (Newton from
    the Best-Fisher starting value, a fixed number of steps): ``jit``-able and
    differentiable. Matches ``scipy.stats.vonmises.fit(data, fscale=1)``.

    Parameters
    ----------
    angles : array_like
        Angles in radians, any window.
    axis : int or tuple of int, optional
        Axis or axes to reduce; default all. Other axes are batch axes.

    Returns
    -------
    (jax.Array, jax.Array)
        ``loc`` in :math:`[-\pi, \pi]` and ``concentration`` :math:`\ge 0`;
        ``concentration = inf`` when all angles are equal, NaN if any angle is NaN.
    """
    (angles,) = promote_float(angles)
    c, s = _mean_cos_sin(angles, axis)
    # R is clipped to 1: rounding of cos^2 + sin^2 can exceed it by an ulp.
    r = jnp.minimum(jnp.hypot(c, s), 1.0)
    return jnp.arctan2(s, c), inv_bessel_ratio(r)
