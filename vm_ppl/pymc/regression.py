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

Covariate scale: ``beta`` is in the units of ``X`` and carries the priors above, but its
transform is PyMC's ``ScaleTransform`` by :math:`s`, the root mean square of each column of
``X`` rounded to a power of 2 (:func:`vm_ppl.regression.covariate_scale`), so the samplers
move on :math:`s\beta` (value variable ``beta_scale__``; no transform, value variable
``beta``, when every :math:`s = 1`, e.g. for standardised covariates). The model is the same
for any units of ``X`` (columns are not centred: that would change a tan-half model), and a
covariate on a scale of :math:`10^6` is fitted as well as a standardised one.

Bad data: NaN or infinite ``X`` or ``y`` raises ``ValueError`` naming the argument and the
first bad index (not PyMC's automatic imputation, nor "Initial evaluation of model at
starting point failed!"); ``X`` and ``y`` of different lengths raise ``ValueError`` naming
both (:func:`vm_ppl.regression.validate_data`); angles that look like degrees warn once
(:class:`vm_ppl.validation.DegreesWarning`, from :class:`~.distribution.VonMises`).

Multimodality: the tan-half likelihood can have a mirrored mode (:math:`\mu_0 + \pi`,
:math:`-\beta`: :math:`2\arctan` saturates at :math:`\pm\pi`), so chains started at
random can settle in different modes. :func:`fit_circular_regression` therefore (1) starts
every chain at the best of a multi-start maximum-likelihood fit (:func:`mle_init`) and
(2) checks after sampling whether the chains agree (:func:`detect_multimodality`), warning
with :class:`MultimodalPosteriorWarning` if not. (The same scheme as
:mod:`vm_ppl.numpyro.regression`, reimplemented here: adapters do not import each other.)

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import ScaleTransform
from scipy.optimize import minimize

from ..bessel import inv_bessel_ratio
from ..regression import (
    LINKS,
    MultimodalPosteriorWarning,
    chain_disagreement,
    check_link,
    covariate_scale,
    validate_data,
)
from .distribution import VonMises, circular

__all__ = [
    "LINKS",
    "SAMPLERS",
    "MultimodalPosteriorWarning",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "mle_init",
]

SAMPLERS = ("pymc", "numpyro", "blackjax", "nutpie")


def _constant(value, *inputs):
    """``ScaleTransform``'s argument function: a constant (picklable, unlike a lambda)."""
    return value


def circular_regression_model(X, y=None, *, link: str = "tan_half",
                              record_mu: bool = False) -> pm.Model:
    r"""Build the PyMC model :math:`y \sim \mathrm{VonMises}(\mu_0 + g(X\beta), \kappa)`.

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, n_features)
        Covariates, finite, any scale (module docstring); the default priors are weakly
        informative for unit scale.
    y : array_like, shape (n_obs,), optional
        Observed angles in radians, finite, any window; ``None`` for prior predictive
        draws.
    link : {"tan_half", "identity"}
        Link function (module docstring).
    record_mu : bool
        Record ``mu`` (wrapped mean direction per observation) as a Deterministic.

    Returns
    -------
    pymc.Model
        Free variables ``mu0``, ``beta`` (dim ``feature``; transform: scale by the root
        mean square of each column of ``X``, rounded to a power of 2, unless that is 1),
        ``kappa``; observed ``y`` (dim ``obs``).

    Raises
    ------
    ValueError
        Unknown ``link``; NaN or infinite ``X`` or ``y`` (first bad index); lengths of
        ``X`` and ``y`` that differ.
    """
    check_link(link)
    X, y = validate_data(X, y, warn_degrees=False)  # VonMises("y", observed=y) warns
    n, p = X.shape
    scale = covariate_scale(X)
    coords = {"obs": np.arange(n), "feature": np.arange(p)}
    with pm.Model(coords=coords) as model:
        Xd = pm.Data("X", X, dims=("obs", "feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        # Samplers move on s * beta; none for standardised covariates (s = 1).
        to_unit = ScaleTransform(partial(_constant, scale)) if np.any(scale != 1.0) else None
        if link == "tan_half":
            beta = pm.Cauchy("beta", 0.0, 1.0, dims="feature", transform=to_unit)
        else:
            beta = pm.Normal("beta", 0.0, 1.0, dims="feature", transform=to_unit)
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
    :math:`\hat\kappa = A^{-1}(\bar c)`. Works on the covariates divided by
    :func:`~vm_ppl.regression.covariate_scale` (module docstring).

    Returns
    -------
    dict
        ``{"mu0", "beta", "kappa"}`` (``beta`` in the units of ``X``), usable as
        ``pm.sample(initvals=...)``.

    Raises
    ------
    ValueError
        NaN or infinite ``X`` or ``y`` (first bad index), lengths that differ.
    """
    check_link(link)
    X, y = validate_data(X, y, warn_degrees=False)
    scale = covariate_scale(X)
    X = X / scale
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
    return {"mu0": mu0, "beta": best.x[1:] / scale, "kappa": float(inv_bessel_ratio(mean_cos))}


def detect_multimodality(idata: az.InferenceData | Any, *, mean_cos_tol: float = 0.02,
                         beta_tol: float = 4.0, warn: bool = True) -> dict:
    r"""Check whether the chains of a circular regression sit in different modes.

    Parameters
    ----------
    idata : arviz.InferenceData or xarray.Dataset
        Posterior with ``mu0`` (chain, draw) and ``beta`` (chain, draw, feature), as from
        :func:`fit_circular_regression` or ``pm.sample`` on
        :func:`circular_regression_model`.
    mean_cos_tol : float
        A chain whose circular mean of ``mu0`` is off the pooled one by more than this in
        :math:`1 - \cos` is flagged (0.02 is about 11 degrees).
    beta_tol : float
        A chain whose mean ``beta`` is more than ``beta_tol`` posterior standard
        deviations from the median over chains is flagged.
    warn : bool
        Issue a :class:`MultimodalPosteriorWarning` when flagged.

    Returns
    -------
    dict
        ``{"multimodal": bool, "chain_mu0": (chains,), "chain_beta": (chains, p)}``: the
        verdict, per-chain circular means of ``mu0`` and means of ``beta``.
    """
    post = getattr(idata, "posterior", idata)
    diag = chain_disagreement(post["mu0"], post["beta"], mean_cos_tol=mean_cos_tol,
                              beta_tol=beta_tol)
    multimodal, chain_mu0, chain_beta = diag["multimodal"], diag["chain_mu0"], diag["chain_beta"]
    if multimodal and warn:
        warnings.warn(
            "chains of the circular regression disagree (per-chain mu0 "
            f"{np.round(chain_mu0, 3).tolist()}, beta {np.round(chain_beta, 3).tolist()}): "
            "the posterior is multimodal or the chains have not mixed; compare the modes' "
            "log-densities, or refit with init='mle'",
            MultimodalPosteriorWarning,
            stacklevel=2,
        )
    return {"multimodal": multimodal, "chain_mu0": chain_mu0, "chain_beta": chain_beta}


def fit_circular_regression(
    X,
    y,
    *,
    link: str = "tan_half",
    sampler: str = "pymc",
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    random_seed: int = 0,
    init: str = "mle",
    check: bool = True,
    **sample_kwargs,
) -> tuple[pm.Model, az.InferenceData]:
    r"""Fit :func:`circular_regression_model` with NUTS, every chain started at the MLE.

    Parameters
    ----------
    X, y : array_like
        Covariates (n_obs,) or (n_obs, p), finite, any scale (``beta`` is reported in
        their units); observed angles in radians, finite, any window.
    link : {"tan_half", "identity"}
        Link function.
    sampler : {"pymc", "numpyro", "blackjax", "nutpie"}
        ``"pymc"`` is ``pm.sample``'s own NUTS; ``"numpyro"``/``"blackjax"`` go through
        ``pm.sample(nuts_sampler=...)``; ``"nutpie"`` calls ``nutpie`` directly (PyMC does not
        pass ``initvals`` to it); ``backend``/``gradient_backend`` in ``sample_kwargs`` go to
        ``nutpie.compile_pymc_model``, the rest to ``nutpie.sample``.
    draws, tune, chains, random_seed : int
        As ``pm.sample``.
    init : {"mle", "prior"}
        ``"mle"``: :func:`mle_init` as the initial value of every chain (jittered by the
        sampler's usual U(-1, 1) on the unconstrained scale); ``"prior"``: the samplers'
        defaults.
    check : bool
        Run :func:`detect_multimodality` (warns :class:`MultimodalPosteriorWarning`); its
        result is stored in ``idata.posterior.attrs["multimodal"]``. Otherwise, the
        largest R-hat with ``mu0`` on the circle
        (:func:`vm_ppl.diagnostics.check_convergence`, warns
        :class:`~vm_ppl.diagnostics.ConvergenceWarning` above 1.01), stored in
        ``idata.posterior.attrs["r_hat_max_circular"]``; PyMC's own (linear) check is then
        off unless ``compute_convergence_checks=True`` is passed.
    **sample_kwargs
        Passed to the sampler (e.g. ``nuts_sampler_kwargs``, ``compile_kwargs``,
        ``target_accept``).

    Returns
    -------
    (pymc.Model, arviz.InferenceData)
        The model and the posterior draws.

    Raises
    ------
    ValueError
        NaN or infinite ``X`` or ``y`` (naming the argument and the first bad index),
        lengths that differ, an unknown ``sampler``, ``init`` or ``link``; before anything
        is compiled.

    Warns
    -----
    vm_ppl.validation.DegreesWarning
        Once, when ``y`` looks like degrees (some :math:`|y| > 2\pi`).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if init not in ("mle", "prior"):
        raise ValueError(f"init must be 'mle' or 'prior', got {init!r}")
    model = circular_regression_model(X, y, link=link)
    start = mle_init(X, y, link=link, seed=random_seed) if init == "mle" else None
    if sampler == "nutpie":
        import nutpie

        compile_kwargs = {k: sample_kwargs.pop(k) for k in ("backend", "gradient_backend")
                          if k in sample_kwargs}
        compiled = nutpie.compile_pymc_model(model, initial_points=start, **compile_kwargs)
        sample_kwargs.setdefault("progress_bar", False)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                              seed=random_seed, **sample_kwargs)
    else:
        sample_kwargs.setdefault("progressbar", False)
        # PyMC's check is a linear R-hat, which warns falsely when mu0 straddles +-pi;
        # the circular one follows below.
        sample_kwargs.setdefault("compute_convergence_checks", not check)
        if sampler != "pymc":
            sample_kwargs["nuts_sampler"] = sampler
        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                              initvals=start, **sample_kwargs)
    if check:
        from ..diagnostics import check_convergence  # ArviZ is imported here anyway

        diag = detect_multimodality(idata)
        idata.posterior.attrs["multimodal"] = int(diag["multimodal"])
        if not diag["multimodal"]:  # mirrored modes are reported above, more precisely
            r_max = check_convergence(
                idata, circ_var_names=["mu0"], var_names=["mu0", "beta", "kappa"]
            )
            idata.posterior.attrs["r_hat_max_circular"] = r_max
    return model, idata
