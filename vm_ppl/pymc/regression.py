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

Bad data: NaN or infinite ``X``, ``Z``, ``groups`` or ``y`` raises ``ValueError`` naming the
argument and the first bad index (not PyMC's automatic imputation, nor "Initial evaluation
of model at starting point failed!"); ``y``, ``Z`` or ``groups`` of another length than
``X``, and group indices not integer or outside ``0 .. G-1``, raise ``ValueError`` naming the
argument (:func:`vm_ppl.regression.check_regression_data`); angles that look like degrees warn once
(:class:`vm_ppl.validation.DegreesWarning`, from :class:`~.distribution.VonMises`).

Multimodality: the tan-half likelihood can have a mirrored mode (:math:`\mu_0 + \pi`,
:math:`-\beta`: :math:`2\arctan` saturates at :math:`\pm\pi`), so chains started at
random can settle in different modes. :func:`fit_circular_regression` therefore (1) starts
every chain at the best of a multi-start maximum-likelihood fit (:func:`mle_init`) and
(2) checks after sampling whether the chains agree (:func:`detect_multimodality`), warning
with :class:`MultimodalPosteriorWarning` if not. Both steps, the data checks and the priors
are those of :mod:`vm_ppl.numpyro.regression`: they live once, in :mod:`vm_ppl.regression`.

Richer models (the same arguments, sites and priors as :mod:`vm_ppl.numpyro`): several
predictors in ``X``; :math:`\log\kappa_i = \gamma_0 + z_i^\top\gamma` with its own design
matrix ``Z``; group-level random intercepts (``groups``, an integer index per observation,
dim ``group``) on the link scale of the mean direction (non-centred,
:math:`a_j = \sigma_\mu u_j`) and, with ``group_kappa=True``, on :math:`\log\kappa`;
``fit_circular_regression(..., predictive=True)`` adds the pointwise log-likelihood and prior
and posterior predictive draws in :math:`[-\pi, \pi)` to the ``InferenceData``.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import ScaleTransform

from ..regression import (
    LINKS,
    PRIORS,
    MultimodalPosteriorWarning,
    RegressionMLE,
    check_chains,
    check_link,
    check_regression_data,
    covariate_scale,
    group_offset_concentration,
    kappa_is_modelled,
)
from ..regression import mle_init as _core_mle_init
from .distribution import VonMises, circular

__all__ = [
    "LINKS",
    "SAMPLERS",
    "MultimodalPosteriorWarning",
    "RegressionMLE",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "mle_init",
]

SAMPLERS = ("pymc", "numpyro", "blackjax", "nutpie")


def _constant(value, *inputs):
    """``ScaleTransform``'s argument function: a constant (picklable, unlike a lambda)."""
    return value


def _prior(name: str, spec: tuple, **kwargs):
    dist, *args = spec  # PRIORS: NumPyro's positional parameters, PyMC's too
    return getattr(pm, dist)(name, *args, **kwargs)


def _scale_transform(scale: np.ndarray) -> dict:
    """Keyword arguments: samplers move on ``value * scale``; none when every scale is 1."""
    return {"transform": ScaleTransform(partial(_constant, scale))} if np.any(scale != 1.0) else {}


def circular_regression_model(
    X,
    y=None,
    *,
    link: str = "tan_half",
    Z=None,
    groups=None,
    n_groups: int | None = None,
    group_kappa: bool = False,
    record_mu: bool = False,
) -> pm.Model:
    r"""Build the PyMC model :math:`y_i \sim \mathrm{VonMises}(\mu_0 + g(x_i^\top\beta +
    a_{j[i]}), \kappa_i)`, :math:`\log\kappa_i = \gamma_0 + z_i^\top\gamma + b_{j[i]}`
    (:mod:`vm_ppl.regression`; the same sites and priors as :mod:`vm_ppl.numpyro`).

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
    Z : array_like, shape (n_obs,) or (n_obs, q), optional
        Covariates of :math:`\log\kappa` (``gamma0``, ``gamma`` of dim ``kappa_feature``,
        scale-transformed like ``beta``).
    groups : array_like of int, shape (n_obs,), optional
        Group index per observation in ``0 .. n_groups - 1``: random intercepts
        :math:`a_j` on the link scale of the mean direction, with scale ``sigma_mu``:
        tan-half :math:`a_j = \sigma_\mu u_j` (``u_mu`` of dim ``group``, non-centred);
        identity :math:`a_j \sim \mathrm{VonMises}(0, 1/\sigma_\mu^2)` (``a_mu``, angles;
        :mod:`vm_ppl.regression` says why).
    n_groups : int, optional
        :math:`G`; default ``max(groups) + 1``.
    group_kappa : bool
        Also random intercepts :math:`b_j = \sigma_\kappa v_j` on :math:`\log\kappa`
        (``sigma_kappa``, ``u_kappa``).
    record_mu : bool
        Record ``mu`` (wrapped mean direction per observation) as a Deterministic.

    Returns
    -------
    pymc.Model
        Free variables ``mu0``, ``beta`` (dim ``feature``; transform: scale by the root
        mean square of each column of ``X``, rounded to a power of 2, unless that is 1),
        then ``kappa`` or ``gamma0`` [, ``gamma``], [``sigma_mu``, ``u_mu`` or ``a_mu``],
        [``sigma_kappa``, ``u_kappa``]; observed ``y`` (dim ``obs``). Priors:
        :data:`vm_ppl.regression.PRIORS`.

    Raises
    ------
    ValueError
        Unknown ``link``; ``group_kappa`` without ``groups``; bad ``X``, ``Z``,
        ``groups`` or ``y`` (non-finite, lengths that differ, group indices not integer
        or out of range: naming the argument).
    """
    check_link(link)
    log_kappa_model = kappa_is_modelled(Z, groups, group_kappa)
    # VonMises("y", observed=y) warns on degrees.
    data = check_regression_data(X, y, Z=Z, groups=groups, n_groups=n_groups, warn_degrees=False)
    X, y = data.X, data.y
    n, p = X.shape
    coords = {"obs": np.arange(n), "feature": np.arange(p)}
    if data.Z is not None:
        coords["kappa_feature"] = np.arange(data.Z.shape[1])
    if data.groups is not None:
        coords["group"] = np.arange(data.n_groups)
    with pm.Model(coords=coords) as model:
        Xd = pm.Data("X", X, dims=("obs", "feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        # Samplers move on s * beta; none for standardised covariates (s = 1).
        spec = PRIORS["beta_tan_half" if link == "tan_half" else "beta_identity"]
        beta = _prior("beta", spec, dims="feature", **_scale_transform(covariate_scale(X)))
        eta = pt.dot(Xd, beta)
        if data.groups is not None:
            sigma_mu = _prior("sigma_mu", PRIORS["sigma_mu"])
            if link == "tan_half":
                offsets = sigma_mu * pm.Normal("u_mu", 0.0, 1.0, dims="group")
            else:  # angles, on the circle (vm_ppl.regression: copies of a real offset)
                kappa_a = group_offset_concentration(sigma_mu)
                offsets = VonMises("a_mu", 0.0, kappa_a, dims="group")
            eta = eta + offsets[data.groups]
        if not log_kappa_model:
            kappa = _prior("kappa", PRIORS["kappa"])
        else:
            log_kappa = _prior("gamma0", PRIORS["gamma0"])
            if data.Z is not None:
                Zd = pm.Data("Z", data.Z, dims=("obs", "kappa_feature"))
                gamma = _prior(
                    "gamma",
                    PRIORS["gamma"],
                    dims="kappa_feature",
                    **_scale_transform(covariate_scale(data.Z)),
                )
                log_kappa = log_kappa + pt.dot(Zd, gamma)
            if group_kappa:
                sigma_kappa = _prior("sigma_kappa", PRIORS["sigma_kappa"])
                u_kappa = pm.Normal("u_kappa", 0.0, 1.0, dims="group")
                log_kappa = log_kappa + (sigma_kappa * u_kappa)[data.groups]
            kappa = pt.exp(log_kappa)
        g = 2.0 * pt.arctan(eta) if link == "tan_half" else eta
        mu = mu0 + g
        if record_mu:
            pm.Deterministic("mu", pt.arctan2(pt.sin(mu), pt.cos(mu)), dims="obs")
        VonMises("y", mu, kappa, observed=y, dims="obs")
    return model


def mle_init(
    X, y, *, link: str = "tan_half", Z=None, n_starts: int = 16, seed: int = 0
) -> RegressionMLE:
    r"""Multi-start maximum-likelihood start of the regression:
    :func:`vm_ppl.regression.mle_init` (shared with :mod:`vm_ppl.numpyro`).

    Returns
    -------
    vm_ppl.regression.RegressionMLE
        ``mu0``, ``beta`` (units of ``X``), ``kappa``, ``mean_cos``, ``gamma0``, ``gamma``;
        fields also by name (``start["beta"]``); ``start.initial_values(...)`` is a dict
        for ``pm.sample(initvals=...)``.

    Raises
    ------
    ValueError
        NaN or infinite ``X``, ``Z`` or ``y`` (first bad index), lengths that differ, an
        unknown ``link``.
    """
    return _core_mle_init(X, y, link=link, Z=Z, n_starts=n_starts, seed=seed)


def detect_multimodality(
    idata: az.InferenceData | Any,
    *,
    mean_cos_tol: float = 0.02,
    beta_tol: float = 4.0,
    warn: bool = True,
) -> dict:
    r"""Check whether the chains of a circular regression sit in different modes.

    :func:`vm_ppl.regression.check_chains` (the check of both adapters).

    Parameters
    ----------
    idata : arviz.InferenceData or xarray.Dataset
        Posterior with ``mu0`` (chain, draw) and ``beta`` (chain, draw, feature), as from
        :func:`fit_circular_regression` or ``pm.sample`` on
        :func:`circular_regression_model`.
    mean_cos_tol, beta_tol : float
        See :func:`vm_ppl.regression.chain_disagreement`.
    warn : bool
        Issue a :class:`MultimodalPosteriorWarning` when flagged (or
        :class:`~vm_ppl.diagnostics.ConvergenceWarning` when the chains agree but the
        R-hat of ``mu0``, ``beta`` exceeds 1.01).

    Returns
    -------
    dict
        ``{"multimodal": bool, "chain_mu0": (chains,), "chain_beta": (chains, p),
        "r_hat_max_circular": float}``.
    """
    post = getattr(idata, "posterior", idata)
    return check_chains(post, mean_cos_tol=mean_cos_tol, beta_tol=beta_tol, warn=warn, stacklevel=2)


def fit_circular_regression(
    X,
    y,
    *,
    link: str = "tan_half",
    Z=None,
    groups=None,
    n_groups: int | None = None,
    group_kappa: bool = False,
    sampler: str = "pymc",
    draws: int = 500,
    tune: int = 500,
    chains: int = 4,
    random_seed: int = 0,
    init: str = "mle",
    check: bool = True,
    predictive: bool = False,
    **sample_kwargs,
) -> tuple[pm.Model, az.InferenceData]:
    r"""Fit :func:`circular_regression_model` with NUTS, every chain started at the MLE.

    Parameters
    ----------
    X, y : array_like
        Covariates (n_obs,) or (n_obs, p), finite, any scale (``beta`` is reported in
        their units); observed angles in radians, finite, any window.
    link, Z, groups, n_groups, group_kappa
        As :func:`circular_regression_model`.
    sampler : {"pymc", "numpyro", "blackjax", "nutpie"}
        ``"pymc"`` is ``pm.sample``'s own NUTS; ``"numpyro"``/``"blackjax"`` go through
        ``pm.sample(nuts_sampler=...)``; ``"nutpie"`` calls ``nutpie`` directly (PyMC does not
        pass ``initvals`` to it); ``backend``/``gradient_backend`` in ``sample_kwargs`` go to
        ``nutpie.compile_pymc_model``, the rest to ``nutpie.sample``.
    draws, tune, chains, random_seed : int
        As ``pm.sample``.
    init : {"mle", "prior"}
        ``"mle"``: :func:`mle_init`'s population-level parameters as the initial value of
        every chain (jittered by the sampler's usual U(-1, 1) on the unconstrained
        scale; group effects start at the defaults); ``"prior"``: the samplers' defaults.
    check : bool
        Run :func:`vm_ppl.regression.check_chains` (warns
        :class:`MultimodalPosteriorWarning`); its verdict is stored in
        ``idata.posterior.attrs["multimodal"]``. Otherwise, the largest R-hat with ``mu0``
        on the circle (warns :class:`~vm_ppl.diagnostics.ConvergenceWarning` above 1.01),
        stored in ``idata.posterior.attrs["r_hat_max_circular"]``; PyMC's own (linear)
        check is then off unless ``compute_convergence_checks=True`` is passed.
    predictive : bool
        Add the pointwise log-likelihood (``az.loo``), 500 prior draws (``prior``,
        ``prior_predictive``) and posterior predictive draws of ``y`` (all in
        :math:`[-\pi, \pi)`) to the ``InferenceData``.
    **sample_kwargs
        Passed to the sampler (e.g. ``nuts_sampler_kwargs``, ``compile_kwargs``,
        ``target_accept``). With ``groups`` and ``sampler="numpyro"``, NumPyro's NUTS
        adapts a dense mass matrix unless ``nuts_sampler_kwargs["nuts_kwargs"]`` says
        otherwise (``mu0`` and the group intercepts trade off on the link scale).

    Returns
    -------
    (pymc.Model, arviz.InferenceData)
        The model and the posterior draws.

    Raises
    ------
    ValueError
        Bad ``X``, ``Z``, ``groups`` or ``y`` (NaN or infinite, lengths that differ, group
        indices not integer or out of range: naming the argument), an unknown
        ``sampler``, ``init`` or ``link``; before anything is compiled.

    Warns
    -----
    vm_ppl.validation.DegreesWarning
        Once, when ``y`` looks like degrees (some :math:`|y| > 2\pi`).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if init not in ("mle", "prior"):
        raise ValueError(f"init must be 'mle' or 'prior', got {init!r}")
    log_kappa_model = kappa_is_modelled(Z, groups, group_kappa)
    model = circular_regression_model(
        X, y, link=link, Z=Z, groups=groups, n_groups=n_groups, group_kappa=group_kappa
    )
    start = None
    if init == "mle":
        start = mle_init(X, y, link=link, Z=Z, seed=random_seed).initial_values(log_kappa_model)
    if sampler == "nutpie":
        import nutpie

        compile_kwargs = {
            k: sample_kwargs.pop(k) for k in ("backend", "gradient_backend") if k in sample_kwargs
        }
        compiled = nutpie.compile_pymc_model(model, initial_points=start, **compile_kwargs)
        sample_kwargs.setdefault("progress_bar", False)
        idata = nutpie.sample(
            compiled, draws=draws, tune=tune, chains=chains, seed=random_seed, **sample_kwargs
        )
    else:
        sample_kwargs.setdefault("progressbar", False)
        # PyMC's check is a linear R-hat, which warns falsely when mu0 straddles +-pi;
        # the circular one follows below.
        sample_kwargs.setdefault("compute_convergence_checks", not check)
        if sampler != "pymc":
            sample_kwargs["nuts_sampler"] = sampler
        if sampler == "numpyro" and groups is not None:  # as vm_ppl.numpyro's fit
            nuts = dict(sample_kwargs.get("nuts_sampler_kwargs") or {})
            nuts["nuts_kwargs"] = {"dense_mass": True, **(nuts.get("nuts_kwargs") or {})}
            sample_kwargs["nuts_sampler_kwargs"] = nuts
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                initvals=start,
                **sample_kwargs,
            )
    if check and idata.posterior.sizes["chain"] > 1:
        names = [v.name for v in model.free_RVs]
        diag = check_chains(idata.posterior, link=link, var_names=names, stacklevel=2)
        idata.posterior.attrs["multimodal"] = int(diag["multimodal"])
        if not diag["multimodal"]:  # mirrored modes are reported above, more precisely
            idata.posterior.attrs["r_hat_max_circular"] = diag["r_hat_max_circular"]
    if predictive:
        with model:
            idata.extend(pm.sample_prior_predictive(draws=500, random_seed=random_seed))
            pm.sample_posterior_predictive(
                idata, random_seed=random_seed, progressbar=False, extend_inferencedata=True
            )
            pm.compute_log_likelihood(idata, progressbar=False)
    return model, idata
