r"""Circular regression in NumPyro: :math:`y_i \sim \mathrm{VonMises}(\mu_0 + g(x_i^\top\beta),
\kappa)`.

Links
-----
``"tan_half"``
    :math:`g(\eta) = 2\arctan(\eta)` (Fisher & Lee, 1992): a monotone map of the real
    line onto :math:`(-\pi, \pi)`. With a standard Cauchy prior on :math:`\beta` (and a
    standardised covariate) :math:`2\arctan(x\beta)` is uniform on the circle; lighter
    tails put the prior mass of :math:`g` near 0 and make it bimodal on the circle
    only when too wide (brms#1631), so Cauchy(0, 1) is the default.
``"identity"``
    :math:`g(\eta) = \eta`, i.e. :math:`\mu = \mu_0 + x^\top\beta` wrapped onto the circle
    (a "spiral" or barber-pole regression); Normal(0, 1) prior on :math:`\beta`.

Richer models (same arguments, sites and priors as :mod:`vm_ppl.pymc`; the layer they share
is :mod:`vm_ppl.regression`): several predictors in ``X``; a log-linear model for the
concentration, :math:`\log\kappa_i = \gamma_0 + z_i^\top\gamma`, with its own design
matrix ``Z``; group-level random intercepts (``groups``, an integer index per observation)
on the link scale of the mean direction (non-centred, :math:`a_j = \sigma_\mu u_j`) and,
with ``group_kappa=True``, on :math:`\log\kappa`; pointwise log-likelihood and prior and
posterior predictive draws in :math:`[-\pi, \pi)` in an ArviZ ``InferenceData``
(:func:`inference_data`, or ``fit_circular_regression(..., predictive=True)``).

Priors: :math:`\mu_0` is uniform on the circle (:class:`~vm_ppl.numpyro.CircularUniform`,
whose periodic unconstrained map lets NUTS mix over it), and
:math:`\kappa \sim \mathrm{Gamma}(2, 0.2)`, whose density vanishes at 0 (keeps
:math:`\kappa` away from the uniform limit, where :math:`\mu_0` and :math:`\beta` are not
identified) and whose mean is 10.

Covariate scale
---------------
The site ``beta`` is in the units of ``X`` and carries the priors above, but NUTS moves on
:math:`u = s\beta`, with :math:`s` the root mean square of each column of ``X`` rounded to a
power of 2 (:func:`vm_ppl.regression.covariate_scale`): the support of ``beta`` is a real
constraint whose ``biject_to`` is the affine map :math:`u \mapsto u/s`. The model (sites,
priors, posterior) is the same for any units of ``X``; only the sampler's coordinates
change, so a covariate on a scale of :math:`10^6` is fitted as well as a standardised one
(without this its coefficient of order :math:`10^{-6}` sits where starts and steps of order
1 saturate the link, and the chains stick far from the posterior). ``Predictive`` at new
covariates uses the posterior ``beta`` as it is. For standardised covariates :math:`s = 1`
and the model is the plain one. The priors are on :math:`\beta` in the units of ``X``, so
they are weakly informative only for a covariate of unit scale; columns are not centred
(with the tan-half link centring would change the model).

Bad data
--------
A NaN or infinite value in ``X``, ``Z``, ``groups`` or ``y`` raises ``ValueError`` naming the
argument and the first bad index; ``y``, ``Z`` or ``groups`` whose length differs from the
rows of ``X``, and group indices that are not integers or lie outside ``0 .. G-1``, raise
``ValueError`` naming the argument (:func:`vm_ppl.regression.check_regression_data`), and
angles that look like degrees warn (:class:`vm_ppl.validation.DegreesWarning`), in the
model, :func:`mle_init` and :func:`fit_circular_regression`, whatever the chain method.

Multimodality
-------------
The tan-half likelihood is multimodal when :math:`|\beta|` is large: :math:`2\arctan`
saturates at :math:`\pm\pi`, and a mode with :math:`\mu_0` rotated by :math:`\pi` and
:math:`\beta` of the other sign can fit almost as well, so chains started at random can
settle in a mirrored mode. :func:`fit_circular_regression` therefore (1) initialises all
chains at the best of a multi-start maximum-likelihood fit (:func:`mle_init`) and (2)
checks after sampling whether chains disagree (:func:`detect_multimodality`), warning
with :class:`MultimodalPosteriorWarning` if they do.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
.. [2] Bürkner, P.-C. et al., brms issue #1631 (priors for the tan-half link).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
from numpyro.distributions import constraints
from numpyro.distributions.transforms import AffineTransform, biject_to
from numpyro.distributions.util import validate_sample
from numpyro.infer import MCMC, NUTS, Predictive, init_to_value
from numpyro.util import not_jax_tracer

from ..regression import (
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
from ..sampling import wrap_angle
from ..tan_half import tan_half_log_prob
from ..validation import DegreesWarning
from .distribution import CircularUniform, VonMises

__all__ = [
    "MultimodalPosteriorWarning",
    "RegressionMLE",
    "TanHalfVonMises",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "inference_data",
    "mle_init",
]


class _ScaledReal(constraints.Constraint):
    """The real line, whose unconstrained coordinate is ``value * scale`` (``biject_to``)."""

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return constraints.real(x)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype)

    def tree_flatten(self):
        return (self.scale,), (("scale",), {})

    def eq(self, other, static: bool = False):
        return isinstance(other, _ScaledReal) and bool(np.array_equal(self.scale, other.scale))


@biject_to.register(_ScaledReal)
def _biject_to_scaled_real(constraint):
    return AffineTransform(0.0, 1.0 / constraint.scale)


class _SampledOnScale(nd.Distribution):
    """``base`` (real support) with :class:`_ScaledReal` support: same density and draws,
    but NUTS and the other samplers move on ``value * scale``."""

    arg_constraints = {}
    pytree_data_fields = ("base", "scale")

    def __init__(self, base, scale, *, validate_args=None):
        self.base, self.scale = base, scale
        super().__init__(base.batch_shape, base.event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return _ScaledReal(self.scale)

    def sample(self, key, sample_shape=()):
        return self.base.sample(key, sample_shape)

    def log_prob(self, value):
        return self.base.log_prob(value)


class TanHalfVonMises(VonMises):
    r"""``VonMises(wrap(loc0 + 2 arctan(eta)), concentration)`` whose ``log_prob`` is
    :func:`vm_ppl.tan_half_log_prob`: the likelihood of the tan-half regression without an
    ``arctan`` per observation (the fused kernel of the core; its derivatives in ``loc0``,
    ``eta`` and ``concentration`` are analytic). ``loc`` (for ``sample``, ``mean`` and the
    ``mu`` site) is computed only where used: under ``jit`` an unused ``loc`` is dropped.

    Parameters
    ----------
    loc0 : array_like
        Intercept direction :math:`\mu_0`.
    eta : array_like
        Linear predictor :math:`x^\top\beta`.
    concentration : array_like
        :math:`\kappa > 0`.
    """

    pytree_data_fields = ("loc0", "eta")

    def __init__(self, loc0, eta, concentration, *, validate_args: bool | None = None):
        self.loc0, self.eta = loc0, eta
        super().__init__(
            wrap_angle(loc0 + 2.0 * jnp.arctan(eta)), concentration, validate_args=validate_args
        )

    @validate_sample
    def log_prob(self, value):
        self._check_observed_if_traced(value)  # NaN observations raise, as in VonMises
        return tan_half_log_prob(value, self.loc0, self.eta, self.concentration)


def _as_design(X) -> jnp.ndarray:
    # The default float dtype (float64 under x64): the sites of the model (e.g. mu0 from
    # jax.random.uniform) use it, so data and initial values must match.
    return jnp.asarray(X, dtype=float)


def _scaled(prior: nd.Distribution, scale: np.ndarray) -> nd.Distribution:
    """``prior`` (batch shape (p,)) sampled on ``value * scale`` unless every scale is 1."""
    if np.any(scale != 1.0):  # standardised covariates: s = 1, the plain prior
        prior = _SampledOnScale(prior, scale)
    return prior.to_event(1)


def _dist(spec: tuple) -> nd.Distribution:
    name, *args = spec
    return getattr(nd, name)(*args)


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
) -> None:
    r"""NumPyro model :math:`y_i \sim \mathrm{VonMises}(\mu_0 + g(x_i^\top\beta + a_{j[i]}),
    \kappa_i)`, :math:`\log\kappa_i = \gamma_0 + z_i^\top\gamma + b_{j[i]}`
    (:mod:`vm_ppl.regression`; the same sites and priors as :mod:`vm_ppl.pymc`).

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, p)
        Covariates of the mean direction, finite, any scale (module docstring); the
        default priors are weakly informative for unit scale.
    y : array_like, shape (n_obs,), optional
        Observed angles in radians, finite, any window. ``None`` for prior predictive
        draws.
    link : {"tan_half", "identity"}
        Link function (see the module docstring).
    Z : array_like, shape (n_obs,) or (n_obs, q), optional
        Covariates of :math:`\log\kappa` (sites ``gamma0``, ``gamma``; sampled on
        ``gamma`` times :func:`~vm_ppl.regression.covariate_scale` of ``Z``, like ``beta``).
    groups : array_like of int, shape (n_obs,), optional
        Group index of each observation in ``0 .. n_groups - 1``: random intercepts
        :math:`a_j` on the link scale of the mean direction, with scale ``sigma_mu``:
        tan-half :math:`a_j = \sigma_\mu u_j` (site ``u_mu``, non-centred); identity
        :math:`a_j \sim \mathrm{VonMises}(0, 1/\sigma_\mu^2)` (site ``a_mu``, angles;
        :mod:`vm_ppl.regression` says why).
    n_groups : int, optional
        :math:`G`; default ``max(groups) + 1``.
    group_kappa : bool
        Also random intercepts :math:`b_j = \sigma_\kappa v_j` on :math:`\log\kappa`
        (sites ``sigma_kappa``, ``u_kappa``).
    record_mu : bool
        Also record ``mu``, the wrapped mean direction of every observation, as a
        deterministic site (n_obs values per draw: off by default for large data).

    Sites: ``mu0`` (circular), ``beta`` (p,; unconstrained coordinate ``beta`` times
    :func:`~vm_ppl.regression.covariate_scale` of ``X``), then ``kappa`` (one
    concentration) or ``gamma0`` [, ``gamma``] (log-linear concentration, with ``Z`` or
    ``group_kappa``), [``sigma_mu``, ``u_mu`` or ``a_mu``], [``sigma_kappa``, ``u_kappa``],
    optionally ``mu``, and ``y`` (plate ``obs``). Priors:
    :data:`vm_ppl.regression.PRIORS`. Predictive draws of ``y`` are in
    :math:`[-\pi, \pi)`.

    Raises
    ------
    ValueError
        Unknown ``link``; ``group_kappa`` without ``groups``; bad ``X``, ``Z``,
        ``groups`` or (concrete) ``y``: non-finite, lengths that differ, group indices
        not integer or out of range (naming the argument;
        :func:`~vm_ppl.regression.check_regression_data`).
    """
    check_link(link)
    log_kappa_model = kappa_is_modelled(Z, groups, group_kappa)
    concrete_y = y is not None and not_jax_tracer(y)
    data = check_regression_data(
        X, y if concrete_y else None, Z=Z, groups=groups, n_groups=n_groups, warn_degrees=False
    )
    X = jnp.asarray(data.X, dtype=float)  # the default float dtype (_as_design)
    n, p = X.shape
    if y is not None and jnp.shape(y) != (n,):
        raise ValueError(
            f"y must have shape ({n},) to match the {n} rows of X, got shape {jnp.shape(y)}"
        )
    mu0 = numpyro.sample("mu0", CircularUniform())
    beta_prior = _dist(PRIORS["beta_tan_half" if link == "tan_half" else "beta_identity"])
    scale = covariate_scale(data.X).astype(X.dtype)
    beta = numpyro.sample("beta", _scaled(beta_prior.expand([p]), scale))
    eta = X @ beta
    if data.groups is not None:
        sigma_mu = numpyro.sample("sigma_mu", _dist(PRIORS["sigma_mu"]))
        with numpyro.plate("group", data.n_groups):
            if link == "tan_half":
                offsets = sigma_mu * numpyro.sample("u_mu", nd.Normal(0.0, 1.0))
            else:  # angles, on the circle (vm_ppl.regression: copies of a real offset)
                kappa_a = group_offset_concentration(sigma_mu)
                offsets = numpyro.sample("a_mu", VonMises(0.0, kappa_a))
        eta = eta + offsets[data.groups]
    if not log_kappa_model:
        kappa = numpyro.sample("kappa", _dist(PRIORS["kappa"]))
    else:
        log_kappa = numpyro.sample("gamma0", _dist(PRIORS["gamma0"]))
        if data.Z is not None:
            Zj = jnp.asarray(data.Z, dtype=X.dtype)
            zscale = covariate_scale(data.Z).astype(X.dtype)
            gamma = numpyro.sample(
                "gamma", _scaled(_dist(PRIORS["gamma"]).expand([Zj.shape[1]]), zscale)
            )
            log_kappa = log_kappa + Zj @ gamma
        if group_kappa:
            sigma_kappa = numpyro.sample("sigma_kappa", _dist(PRIORS["sigma_kappa"]))
            with numpyro.plate("group", data.n_groups):
                u_kappa = numpyro.sample("u_kappa", nd.Normal(0.0, 1.0))
            log_kappa = log_kappa + (sigma_kappa * u_kappa)[data.groups]
        kappa = jnp.exp(log_kappa)
    if link == "tan_half":
        # The fused link-density kernel (no arctan per observation in log_prob).
        likelihood = TanHalfVonMises(mu0, eta, kappa)
    else:
        likelihood = VonMises(wrap_angle(mu0 + eta), kappa)
    if record_mu:
        numpyro.deterministic("mu", likelihood.loc)
    with numpyro.plate("obs", n):
        numpyro.sample("y", likelihood, obs=y)


def mle_init(
    X, y, *, link: str = "tan_half", Z=None, n_starts: int = 16, seed: int = 0
) -> RegressionMLE:
    r"""Multi-start maximum-likelihood start of the regression:
    :func:`vm_ppl.regression.mle_init` (shared with :mod:`vm_ppl.pymc`).

    Returns
    -------
    vm_ppl.regression.RegressionMLE
        ``mu0``, ``beta`` (units of ``X``), ``kappa``, ``mean_cos``, ``gamma0``, ``gamma``;
        ``start.initial_values(...)`` gives the model's sites.

    Raises
    ------
    ValueError
        NaN or infinite ``X``, ``Z`` or ``y`` (with the first bad index), lengths that
        differ, an unknown ``link``.
    """
    return _core_mle_init(X, y, link=link, Z=Z, n_starts=n_starts, seed=seed)


def detect_multimodality(
    samples: dict, *, mean_cos_tol: float = 0.02, beta_tol: float = 4.0, warn: bool = True
) -> dict:
    r"""Check whether chains of a circular regression sit in different modes.

    :func:`vm_ppl.regression.check_chains` (the check of both adapters).

    Parameters
    ----------
    samples : dict
        ``mcmc.get_samples(group_by_chain=True)``: ``mu0`` (chains, draws), ``beta``
        (chains, draws, p).
    mean_cos_tol, beta_tol : float
        See :func:`vm_ppl.regression.chain_disagreement`.
    warn : bool
        Warn :class:`MultimodalPosteriorWarning` when flagged (or
        :class:`~vm_ppl.diagnostics.ConvergenceWarning` when the chains agree but the
        R-hat of ``mu0``, ``beta`` exceeds 1.01).

    Returns
    -------
    dict
        ``{"multimodal": bool, "chain_mu0": ..., "chain_beta": ..., "r_hat_max_circular"}``.
    """
    return check_chains(
        samples, mean_cos_tol=mean_cos_tol, beta_tol=beta_tol, warn=warn, stacklevel=2
    )


def _model_kwargs(link, Z, groups, n_groups, group_kappa) -> dict:
    return {
        "link": link,
        "Z": Z,
        "groups": groups,
        "n_groups": n_groups,
        "group_kappa": group_kappa,
    }


def inference_data(mcmc: MCMC, X, *, prior_draws: int = 500, seed: int = 0):
    r"""ArviZ ``InferenceData`` of a :func:`fit_circular_regression` run: posterior, sample
    stats, pointwise ``log_likelihood`` of ``y`` (for ``az.loo``), observed data, and
    prior and posterior predictive draws of ``y`` in :math:`[-\pi, \pi)` (``prior_draws``
    draws of the prior, one predictive draw per posterior draw).

    Parameters
    ----------
    mcmc : numpyro.infer.MCMC
        Returned by :func:`fit_circular_regression` (its model arguments are reused).
    X : array_like
        The covariates it was fitted on.
    """
    import arviz as az

    kwargs = mcmc.regression_kwargs
    k_prior, k_post = jax.random.split(jax.random.key(seed))
    prior = Predictive(circular_regression_model, num_samples=prior_draws)(k_prior, X, **kwargs)
    post = mcmc.get_samples(group_by_chain=True)
    pred = Predictive(circular_regression_model, post, batch_ndims=2, return_sites=["y"])(
        k_post, X, **kwargs
    )
    return az.from_numpyro(mcmc, prior=prior, posterior_predictive=pred)


def fit_circular_regression(
    X,
    y,
    *,
    link: str = "tan_half",
    Z=None,
    groups=None,
    n_groups: int | None = None,
    group_kappa: bool = False,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    chain_method: str = "parallel",
    seed: int = 0,
    init: str = "mle",
    predictive: bool = False,
    progress_bar: bool = False,
    **nuts_kwargs,
) -> MCMC:
    r"""Fit :func:`circular_regression_model` with NUTS, robustly initialised.

    ``init="mle"`` starts every chain at :func:`mle_init`'s estimate of the
    population-level parameters (jittered by NUTS's own warm-up; group effects start at
    NumPyro's default), which avoids the mirrored modes of the tan-half link;
    ``init="prior"`` uses NumPyro's default (``init_to_uniform``). After sampling, chains
    are checked with :func:`vm_ppl.regression.check_chains`, which warns
    :class:`MultimodalPosteriorWarning` if they disagree.

    ``X`` and ``Z`` may be on any scale (NUTS moves on the coefficients times the
    covariates' root mean square rounded to a power of 2; ``beta`` and ``gamma`` are in
    the units of ``X`` and ``Z``: module docstring).

    Parameters
    ----------
    X, y, link, Z, groups, n_groups, group_kappa
        As :func:`circular_regression_model`.
    num_warmup, num_samples, num_chains, chain_method, progress_bar
        As ``numpyro.infer.MCMC``.
    seed : int
        Of the MLE's starts, NUTS and the predictive draws.
    init : {"mle", "prior"}
        Initialisation (above).
    predictive : bool
        Also build ``mcmc.idata`` (:func:`inference_data`: pointwise log-likelihood, prior
        and posterior predictive draws).
    **nuts_kwargs
        Passed to ``numpyro.infer.NUTS`` (e.g. ``target_accept_prob``). With ``groups``,
        ``dense_mass`` defaults to True: the intercept ``mu0`` and the group intercepts
        trade off on the link scale, a correlation a diagonal mass matrix follows only
        with long trajectories.

    Raises
    ------
    ValueError
        Bad ``X``, ``Z``, ``groups`` or ``y`` (NaN or infinite, lengths that differ,
        group indices not integer or out of range: naming the argument), before
        anything is compiled.

    Warns
    -----
    vm_ppl.validation.DegreesWarning
        Once, when ``y`` looks like degrees (some :math:`|y| > 2\pi`).

    Returns
    -------
    numpyro.infer.MCMC
        The run MCMC object (``get_samples()``, ``print_summary()``, ArviZ's
        ``az.from_numpyro``). With several chains, ``mcmc.multimodality`` holds the
        chain-agreement diagnosis and, when the chains agree, ``mcmc.r_hat_max_circular``
        the largest R-hat with ``mu0`` on the circle
        (:func:`vm_ppl.diagnostics.check_convergence`, which warns
        :class:`~vm_ppl.diagnostics.ConvergenceWarning` above 1.01).
    """
    check_link(link)
    log_kappa_model = kappa_is_modelled(Z, groups, group_kappa)
    data = check_regression_data(X, y, Z=Z, groups=groups, n_groups=n_groups)  # warns once
    X = _as_design(data.X)
    y = jnp.asarray(data.y, X.dtype)
    kwargs = _model_kwargs(link, data.Z, data.groups, data.n_groups or None, group_kappa)
    if init == "mle":
        start = mle_init(data.X, data.y, link=link, Z=data.Z, seed=seed)
        values = {
            k: jnp.asarray(v, X.dtype) for k, v in start.initial_values(log_kappa_model).items()
        }
        nuts_kwargs["init_strategy"] = init_to_value(values=values)
    elif init != "prior":
        raise ValueError(f"init must be 'mle' or 'prior', got {init!r}")
    nuts_kwargs.setdefault("dense_mass", data.groups is not None)
    kernel = NUTS(circular_regression_model, **nuts_kwargs)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )
    with warnings.catch_warnings():  # the VonMises site would repeat the warning above
        warnings.simplefilter("ignore", DegreesWarning)
        mcmc.run(jax.random.key(seed), X, y, **kwargs)
    mcmc.regression_kwargs = kwargs
    if num_chains > 1:
        samples = mcmc.get_samples(group_by_chain=True)
        names = [
            k
            for k in (
                "mu0",
                "beta",
                "kappa",
                "gamma0",
                "gamma",
                "sigma_mu",
                "u_mu",
                "a_mu",
                "sigma_kappa",
                "u_kappa",
            )
            if k in samples
        ]
        diag = check_chains(samples, link=link, var_names=names, stacklevel=2)
        mcmc.multimodality = diag
        if not diag["multimodal"]:
            mcmc.r_hat_max_circular = diag["r_hat_max_circular"]
    if predictive:
        mcmc.idata = inference_data(mcmc, X, seed=seed)
    return mcmc
