r"""A Bambi family for circular responses built on :class:`vm_ppl.pymc.VonMises`.

>>> import bambi as bmb  # doctest: +SKIP
>>> from vm_ppl.pymc.bambi import von_mises_family
>>> model = bmb.Model(bmb.Formula("y ~ x + (1|station)", "kappa ~ z"), df,  # doctest: +SKIP
...                   family=von_mises_family("tan_half"))
>>> idata = model.fit(inference_method="numpyro")  # doctest: +SKIP

Differences from Bambi's built-in ``"vonmises"`` family (Bambi 0.16, which uses
``pm.VonMises``):

- angles may lie in any :math:`2\pi` window (``[0, 2\pi)`` or degrees converted to radians
  as recorded); ``pm.VonMises`` returns :math:`-\infty` outside :math:`[-\pi, \pi]`;
- :math:`\kappa` may be large: ``pm.VonMises`` is :math:`-\infty` from
  :math:`\kappa \approx 714` (``log(i0(kappa))`` overflows), ours uses ``log i0e``;
- the response-scale predictions (``model.predict(kind="response_params")``) are mean
  directions wrapped to :math:`[-\pi, \pi)` for both links; draws
  (``kind="response"``, posterior predictive) are angles in :math:`[-\pi, \pi)`.

Links for the mean direction ``mu`` (the linear predictor :math:`\eta` holds the intercept,
common and group-level terms, as in every Bambi family):

``"tan_half"``
    :math:`\mu = 2\arctan\eta` (Fisher & Lee 1992; Bambi's ``"tan_2"``), in
    :math:`(-\pi, \pi)`. The intercept :math:`b_0` gives the mean direction
    :math:`2\arctan b_0` at zero covariates; a mean direction near :math:`\pm\pi` needs
    :math:`|b_0| \to \infty`, so rotate such data (subtract a reference direction) first.
``"identity"``
    :math:`\mu = \eta` on the circle (the likelihood is :math:`2\pi`-periodic in
    :math:`\mu`); predictions are :math:`\eta` wrapped to :math:`[-\pi, \pi)`. Under
    Bambi's default Normal prior the intercept's posterior has copies
    :math:`2\pi` apart with less prior mass; a prior with scale below about 1.5 rad around
    the data's mean direction makes them negligible.

The concentration :math:`\kappa` has a log link (``bmb.Formula("y ~ x", "kappa ~ z")``,
Bambi's priors for those terms: Normal(0, 1) on the log scale); without a formula it is one
parameter with default prior LogNormal(1, 2) (:math:`\log\kappa \sim` Normal(1, 2): 95 %
mass on :math:`\kappa \in (0.05, 140)`, density 0 at :math:`\kappa = 0` where ``mu`` is not
identified, and a tail light enough to leave :math:`\kappa` in the thousands to the data).

``Model.fit(inference_method=...)``: ``"pymc"`` (C backend), ``"numpyro"`` (JAX: the core
kernels) and ``"nutpie"`` (Numba) run our op's implementations (tests/test_bambi.py).

Nothing in Bambi is modified: the family is a new :class:`bambi.Family` instance with
:class:`bambi.Link` objects carrying their own functions; Bambi's registries of families
and links are untouched.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
.. [2] Capretto, T. et al. (2022). Bambi: a simple interface for fitting Bayesian linear
   models in Python. *J. Stat. Softw.* 103(15).
"""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pytensor.tensor as pt
from bambi.families.univariate import UnivariateFamily

from .distribution import VonMises

__all__ = ["FAMILY_NAME", "LINKS", "VonMisesFamily", "von_mises_family"]

LINKS = ("tan_half", "identity")
FAMILY_NAME = "vm_ppl_vonmises"
_TWO_PI = 2.0 * np.pi


def _wrap(x):
    r"""Angles wrapped to :math:`[-\pi, \pi)` (NumPy; a rounding onto :math:`+\pi` gives
    :math:`-\pi`)."""
    y = np.mod(np.asarray(x, dtype=float) + np.pi, _TWO_PI) - np.pi
    return np.where(y >= np.pi, -np.pi, y)


def _tan_half(mu):
    return np.tan(0.5 * _wrap(mu))


def _two_arctan(eta):
    return 2.0 * np.arctan(eta)


def _two_arctan_backend(eta):
    return 2.0 * pt.arctan(eta)


def _identity_backend(eta):
    # The likelihood is periodic in mu: no wrap in the graph (keeps the gradient smooth).
    return eta


def _mean_link(link: str) -> bmb.Link:
    """The :class:`bambi.Link` for ``mu`` (names not in Bambi's tables, so ours are used)."""
    if link == "tan_half":
        return bmb.Link(
            "vm_ppl_tan_half",
            link=_tan_half,
            linkinv=_two_arctan,
            linkinv_backend=_two_arctan_backend,
        )
    if link == "identity":
        return bmb.Link(
            "vm_ppl_circular_identity", link=_wrap, linkinv=_wrap, linkinv_backend=_identity_backend
        )
    raise ValueError(f"link must be one of {LINKS}, got {link!r}")


class VonMisesFamily(UnivariateFamily):
    """Bambi family whose likelihood is :class:`vm_ppl.pymc.VonMises` (see module docstring).

    ``mu`` takes ``"tan_half"`` or ``"identity"`` (also as ``bmb.Model(..., link=...)``),
    ``kappa`` ``"log"``.
    """

    SUPPORTED_LINKS = {"mu": list(LINKS), "kappa": ["log"]}

    def check_string_link(self, link_name, param_name):
        if param_name == "mu":
            if link_name not in LINKS:
                raise ValueError(
                    f"Link '{link_name}' cannot be used for 'mu' with family '{self.name}'; "
                    f"use one of {LINKS}"
                )
            return _mean_link(link_name)
        return super().check_string_link(link_name, param_name)


def von_mises_family(link: str = "tan_half") -> VonMisesFamily:
    r"""A new Bambi family: :math:`y \sim` :class:`vm_ppl.pymc.VonMises` :math:`(\mu, \kappa)`.

    Parameters
    ----------
    link : {"tan_half", "identity"}
        Link for the mean direction: :math:`\mu = 2\arctan\eta` or :math:`\mu = \eta`
        (module docstring). :math:`\kappa` always has a log link.

    Returns
    -------
    VonMisesFamily
        A fresh :class:`bambi.Family` (Bambi may change a family's links in place, so each
        call returns a new one), named ``"vm_ppl_vonmises"``, with likelihood ``VonMises``
        (parameters ``mu``, ``kappa``; parent ``mu``) and default prior
        LogNormal(1, 2) for a constant ``kappa``.

    Raises
    ------
    ValueError
        ``link`` is not one of ``"tan_half"``, ``"identity"``.

    Examples
    --------
    >>> import bambi as bmb  # doctest: +SKIP
    >>> model = bmb.Model("y ~ x", df, family=von_mises_family("identity"))  # doctest: +SKIP
    """
    mean_link = _mean_link(link)
    likelihood = bmb.Likelihood("VonMises", params=["mu", "kappa"], parent="mu", dist=VonMises)
    family = VonMisesFamily(FAMILY_NAME, likelihood, {"mu": mean_link, "kappa": "log"})
    family.set_default_priors({"kappa": bmb.Prior("LogNormal", mu=1.0, sigma=2.0)})
    return family
