r"""``VonMises``: a drop-in for ``pm.VonMises`` built on the vm_ppl kernels.

Differences from ``pm.VonMises`` (PyMC 5.28):

- the log-density is stable for every :math:`\kappa` (``log i0e``; ``pm.VonMises``
  is ``-inf`` from :math:`\kappa \approx 714` in float64, :math:`\approx 89` in float32)
  and accurate near the mode (:math:`-2\kappa\sin^2(d/2)` instead of :math:`\kappa\cos d`);
- it is :math:`2\pi`-periodic in the value, so observed angles in :math:`[0, 2\pi)` (or
  any window) are fine (``pm.VonMises`` returns ``-inf`` outside :math:`[-\pi, \pi]`);
- JAX backends run the core :func:`vm_ppl.log_prob` / :func:`vm_ppl.sample` (no NumPyro),
  Numba runs native kernels (no object mode), the C backend compiled C;
- it has ``logcdf`` and ``icdf`` (the core's Hill 1977 cdf and its inverse).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pymc.distributions import transforms
from pymc.distributions.continuous import CircularContinuous
from pymc.distributions.dist_math import check_icdf_value, check_parameters
from pymc.distributions.shape_utils import rv_size_is_none
from pytensor.graph.basic import Constant, Variable

from ..validation import warn_if_degrees
from .ops import vonmises_cdf, vonmises_icdf, vonmises_logp
from .random import vonmises

__all__ = ["CircularTransform", "VonMises", "circular"]


# PyMC's periodic transform (``atan2(sin, cos)`` back onto the circle, log-Jacobian 0):
# a sampler moving on the real line passes through +-pi without a boundary. Re-exported
# for ``pm.Uniform(..., default_transform=vmp.circular)``.
circular = transforms.circular
CircularTransform = transforms.CircularTransform


class VonMises(CircularContinuous):
    r"""Von Mises distribution on the circle (same signature as ``pm.VonMises``).

    .. math:: f(x \mid \mu, \kappa) = \frac{e^{\kappa\cos(x - \mu)}}{2\pi I_0(\kappa)}

    Parameters
    ----------
    mu : tensor_like of float, default 0.0
        Mean direction.
    kappa : tensor_like of float, default 1.0
        Concentration, :math:`\kappa > 0`.

    Notes
    -----
    Values may lie in any :math:`2\pi` window (the density is periodic); draws are in
    :math:`[-\pi, \pi)`. Observed angles (array-like or ``pm.Data``) that look like
    degrees (some :math:`|y| > 2\pi`) warn at model build
    (:class:`vm_ppl.validation.DegreesWarning`); NaN entries are PyMC's missing values
    (imputed). Latent variables get PyMC's ``transforms.circular`` as default transform
    (that of every ``CircularContinuous``; re-exported as :data:`circular`).
    ``logcdf`` is periodic: :math:`\log F(x')` with :math:`F(x') = \int_{\mu-\pi}^{x'} f`
    and :math:`x'` the representative of the value in the window
    :math:`[\mu - \pi, \mu + \pi)` (so :math:`F(\mu) = 1/2`, :math:`F(\mu - \pi) = 0`,
    and an angle in :math:`[0, 2\pi)` gets the same probability as its equivalent in
    :math:`[-\pi, \pi)`): a log-probability, never positive, on every backend, so
    ``pm.Censored`` works on data in any window. ``icdf`` is its inverse, with values in
    :math:`[\mu - \pi, \mu + \pi]`: ``icdf(exp(logcdf(x)))`` equals ``x`` modulo
    :math:`2\pi`. (The core :func:`vm_ppl.cdf` keeps SciPy's cumulative convention,
    :math:`F(x + 2\pi) = F(x) + 1`, which is not a probability outside the window.)

    References
    ----------
    .. [1] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*. Wiley.
    .. [2] Hill, G. W. (1977). Algorithm 518: Incomplete Bessel function I0: the von
       Mises distribution. *ACM TOMS* 3, 279-284.
    """

    rv_op = vonmises

    def __new__(cls, name, *args, observed=None, **kwargs):
        # Observed angles are known here, once, at model build (logp is untouched).
        if observed is not None:
            data = observed
            if isinstance(observed, Constant):
                data = observed.data
            elif hasattr(observed, "get_value"):  # pm.Data
                data = observed.get_value()
            try:
                angles = np.ma.filled(np.ma.asarray(data, dtype=float), np.nan)
            except (TypeError, ValueError):  # symbolic or not numeric: PyMC's business
                angles = None
            if angles is not None and not isinstance(data, Variable):
                warn_if_degrees(angles, name, stacklevel=2)
        return super().__new__(cls, name, *args, observed=observed, **kwargs)

    @classmethod
    def dist(cls, mu=0.0, kappa=1.0, *args, **kwargs):
        mu = pt.as_tensor_variable(mu)
        kappa = pt.as_tensor_variable(kappa)
        return super().dist([mu, kappa], *args, **kwargs)

    def support_point(rv, size, mu, kappa):
        mu, _ = pt.broadcast_arrays(mu, kappa)
        if not rv_size_is_none(size):
            mu = pt.full(size, mu)
        return mu

    def logp(value, mu, kappa):
        return check_parameters(vonmises_logp(value, mu, kappa), kappa > 0, msg="kappa > 0")

    def logcdf(value, mu, kappa):
        # The value's representative in [mu - pi, mu + pi) (see the class notes): a
        # probability, so log F <= 0 for every value, also data in [0, 2 pi).
        d = value - mu
        r = d - 2.0 * np.pi * pt.floor((d + np.pi) / (2.0 * np.pi))
        return check_parameters(pt.log(vonmises_cdf(r, 0.0, kappa)), kappa > 0, msg="kappa > 0")

    def icdf(value, mu, kappa):
        res = check_icdf_value(vonmises_icdf(value, mu, kappa), value)
        return check_parameters(res, kappa > 0, msg="kappa > 0")
