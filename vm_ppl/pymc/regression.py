r"""Circular regression in PyMC: :math:`y_i \sim \mathrm{VM}(\mu_0 + g(x_i^\top\beta), \kappa)`.

Mirrors :mod:`vm_ppl.numpyro.regression` (same links and priors):

``"tan_half"``
    :math:`g(\eta) = 2\arctan\eta` (Fisher & Lee 1992), :math:`\beta \sim` Cauchy(0, 1)
    (with a standardised covariate :math:`2\arctan(x\beta)` is then uniform on the
    circle; lighter-tailed priors make it bimodal, brms#1631).
``"identity"``
    :math:`g(\eta) = \eta`, the mean wrapped onto the circle; :math:`\beta \sim` Normal(0, 1).

:math:`\mu_0` is uniform on the circle with the periodic :data:`~.distribution.circular`
transform (NUTS passes through :math:`\pm\pi`), :math:`\kappa \sim` Gamma(2, 0.2)
(density 0 at :math:`\kappa = 0`, where :math:`\mu_0, \beta` are not identified).

The tan-half likelihood can have a mirrored mode (:math:`\mu_0 + \pi`, :math:`-\beta`);
:func:`mle_init` gives a multi-start maximum-likelihood start to pass as ``initvals``.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.optimize import minimize

from ..bessel import inv_bessel_ratio
from .distribution import VonMises, circular

__all__ = ["LINKS", "circular_regression_model", "mle_init"]

LINKS = ("tan_half", "identity")


def _as_design(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 1-d or 2-d (n_obs, n_features), got shape {X.shape}")
    return X


def _check_link(link: str) -> None:
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")


def circular_regression_model(X, y=None, *, link: str = "tan_half",
                              record_mu: bool = False) -> pm.Model:
    r"""Build the PyMC model :math:`y \sim \mathrm{VonMises}(\mu_0 + g(X\beta), \kappa)`.

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, n_features)
        Covariates (standardise them: the priors assume unit scale).
    y : array_like, shape (n_obs,), optional
        Observed angles, any window; ``None`` for prior predictive draws.
    link : {"tan_half", "identity"}
        Link function (module docstring).
    record_mu : bool
        Record ``mu`` (wrapped mean direction per observation) as a Deterministic.

    Returns
    -------
    pymc.Model
        Free variables ``mu0``, ``beta`` (dim ``feature``), ``kappa``; observed ``y``
        (dim ``obs``).
    """
    _check_link(link)
    X = _as_design(X)
    n, p = X.shape
    if y is not None and np.shape(y) != (n,):
        raise ValueError(f"y must have shape ({n},) to match X, got {np.shape(y)}")
    coords = {"obs": np.arange(n), "feature": np.arange(p)}
    with pm.Model(coords=coords) as model:
        Xd = pm.Data("X", X, dims=("obs", "feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        if link == "tan_half":
            beta = pm.Cauchy("beta", 0.0, 1.0, dims="feature")
        else:
            beta = pm.Normal("beta", 0.0, 1.0, dims="feature")
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        eta = pt.dot(Xd, beta)
        g = 2.0 * pt.arctan(eta) if link == "tan_half" else eta
        mu = mu0 + g
        if record_mu:
            pm.Deterministic("mu", pt.arctan2(pt.sin(mu), pt.cos(mu)), dims="obs")
        VonMises("y", mu, kappa, observed=y, dims="obs")
    return model


def mle_init(X, y, *, link: str = "tan_half", n_starts: int = 16, seed: int = 0) -> dict:
    r"""Multi-start maximum likelihood: the best of ``n_starts`` BFGS fits.

    Maximises the mean cosine residual :math:`\bar c = n^{-1}\sum\cos(y_i - \mu_0 -
    g(x_i^\top\beta))` (the profile likelihood in :math:`(\mu_0, \beta)` for any
    :math:`\kappa`) from ``mu0`` spread round the circle and ``beta`` near 0, then sets
    :math:`\hat\kappa = A^{-1}(\bar c)`.

    Returns
    -------
    dict
        ``{"mu0", "beta", "kappa"}``, usable as ``pm.sample(initvals=...)``.
    """
    _check_link(link)
    X = _as_design(X)
    y = np.asarray(y, dtype=float)
    p = X.shape[1]
    rng = np.random.default_rng(seed)

    def g(eta):
        return 2.0 * np.arctan(eta) if link == "tan_half" else eta

    def dg(eta):
        return 2.0 / (1.0 + eta * eta) if link == "tan_half" else np.ones_like(eta)

    def neg(theta):
        mu0, beta = theta[0], theta[1:]
        eta = X @ beta
        r = y - mu0 - g(eta)
        s = np.sin(r)
        val = -np.mean(np.cos(r))
        grad = np.concatenate([[-np.mean(s)], -(X.T @ (s * dg(eta))) / len(y)])
        return val, grad

    best = None
    for mu0 in np.linspace(-np.pi, np.pi, n_starts, endpoint=False):
        x0 = np.concatenate([[mu0], 0.5 * rng.standard_normal(p)])
        res = minimize(neg, x0, jac=True, method="BFGS")
        if best is None or res.fun < best.fun:
            best = res
    mean_cos = float(np.clip(-best.fun, 0.0, 1.0 - 1e-6))
    mu0 = float(np.angle(np.exp(1j * best.x[0])))
    return {"mu0": mu0, "beta": best.x[1:], "kappa": float(inv_bessel_ratio(mean_cos))}
