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
A NaN or infinite value in ``X`` or ``y`` raises ``ValueError`` naming the argument and the
first bad index, ``X`` and ``y`` of different lengths raise ``ValueError`` naming both
(:func:`vm_ppl.regression.validate_data`), and angles that look like degrees warn
(:class:`vm_ppl.validation.DegreesWarning`), in the model, :func:`mle_init` and
:func:`fit_circular_regression`, whatever the chain method.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
from numpyro.distributions import constraints
from numpyro.distributions.transforms import AffineTransform, biject_to
from numpyro.distributions.util import validate_sample
from numpyro.infer import MCMC, NUTS, init_to_value
from numpyro.util import not_jax_tracer

from ..bessel import inv_bessel_ratio
from ..regression import (
    MultimodalPosteriorWarning,
    as_design,
    chain_disagreement,
    check_link,
    covariate_scale,
    validate_data,
)
from ..sampling import wrap_angle
from ..tan_half import tan_half_log_prob
from ..validation import DegreesWarning
from .distribution import CircularUniform, VonMises

__all__ = [
    "MultimodalPosteriorWarning",
    "TanHalfVonMises",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
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


def _link(eta: jnp.ndarray, link: str) -> jnp.ndarray:
    check_link(link)
    return 2.0 * jnp.arctan(eta) if link == "tan_half" else eta


def _as_design(X) -> jnp.ndarray:
    # The default float dtype (float64 under x64): the sites of the model (e.g. mu0 from
    # jax.random.uniform) use it, so data and initial values must match.
    return jnp.asarray(as_design(X), dtype=float)


def circular_regression_model(X, y=None, *, link: str = "tan_half",
                              record_mu: bool = False) -> None:
    r"""NumPyro model :math:`y \sim \mathrm{VonMises}(\mu_0 + g(X\beta), \kappa)`.

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, n_features)
        Covariates, finite, any scale (module docstring); the default priors are weakly
        informative for unit scale.
    y : array_like, shape (n_obs,), optional
        Observed angles in radians, finite, any window. ``None`` for prior predictive
        draws.
    link : {"tan_half", "identity"}
        Link function (see the module docstring).
    record_mu : bool
        Also record ``mu``, the wrapped mean direction of every observation, as a
        deterministic site (n_obs values per draw: off by default for large data).

    Sites: ``mu0`` (circular), ``beta`` (n_features,; unconstrained coordinate ``beta``
    times :func:`~vm_ppl.regression.covariate_scale` of ``X``, the root mean square of each
    column rounded to a power of 2), ``kappa``, optionally ``mu``, and ``y``. Predictive
    draws of ``y`` are in :math:`[-\pi, \pi)`.

    Raises
    ------
    ValueError
        Unknown ``link``; NaN or infinite ``X`` or (concrete) ``y``, with the first bad
        index; lengths of ``X`` and ``y`` that differ.
    """
    check_link(link)
    concrete_y = y is not None and not_jax_tracer(y)
    X_np, _ = validate_data(X, y if concrete_y else None, warn_degrees=False)
    X = jnp.asarray(X_np, dtype=float)  # the default float dtype (see _as_design)
    n, p = X.shape
    if y is not None and jnp.shape(y) != (n,):
        raise ValueError(f"y must have shape ({n},) to match the {n} rows of X, got shape "
                         f"{jnp.shape(y)}")
    scale = covariate_scale(X_np).astype(X.dtype)
    mu0 = numpyro.sample("mu0", CircularUniform())
    beta_prior = nd.Cauchy(0.0, 1.0) if link == "tan_half" else nd.Normal(0.0, 1.0)
    beta_prior = beta_prior.expand([p])
    if np.any(scale != 1.0):  # standardised covariates: s = 1, the plain prior
        beta_prior = _SampledOnScale(beta_prior, scale)
    beta_prior = beta_prior.to_event(1)
    beta = numpyro.sample("beta", beta_prior)
    kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
    eta = X @ beta
    if link == "tan_half":
        # The fused link-density kernel (no arctan per observation in log_prob).
        likelihood = TanHalfVonMises(mu0, eta, kappa)
    else:
        likelihood = VonMises(wrap_angle(mu0 + eta), kappa)
    if record_mu:
        numpyro.deterministic("mu", likelihood.loc)
    with numpyro.plate("obs", n):
        numpyro.sample("y", likelihood, obs=y)


class MLEInit(NamedTuple):
    """Result of :func:`mle_init`: the best start and its mean cosine residual."""

    mu0: jnp.ndarray
    beta: jnp.ndarray
    kappa: jnp.ndarray
    mean_cos: jnp.ndarray


def mle_init(X, y, *, link: str = "tan_half", n_starts: int = 16, steps: int = 300,
             seed: int = 0) -> MLEInit:
    r"""Multi-start maximum-likelihood fit of the circular regression.

    For fixed :math:`\kappa` the likelihood in :math:`(\mu_0, \beta)` is maximised by
    maximising :math:`\sum_i \cos(y_i - \mu_0 - g(x_i^\top\beta))` (the mean cosine
    residual), so this maximises that by Adam from ``n_starts`` starts (``mu0`` spread
    round the circle, ``beta`` around 0), keeps the best, and sets
    :math:`\hat\kappa = A^{-1}(\text{mean cosine})`. Jitted and ``vmap``-ed over starts;
    a fixed number of steps. Works on the covariates divided by
    :func:`~vm_ppl.regression.covariate_scale` (module docstring) and returns ``beta`` in
    the units of ``X``.

    Raises
    ------
    ValueError
        NaN or infinite ``X`` or ``y`` (with the first bad index), lengths that differ.
    """
    X_np, y_np = validate_data(X, y, warn_degrees=False)
    scale = covariate_scale(X_np)
    X = _as_design(X_np / scale)
    y = jnp.asarray(y_np, X.dtype)
    p = X.shape[1]

    def objective(params):
        mu0, beta = params
        return jnp.mean(jnp.cos(y - mu0 - _link(X @ beta, link)))

    grad = jax.grad(objective)

    def run(params):
        # Plain Adam (no optax dependency): a smooth, bounded objective.
        m = jax.tree.map(jnp.zeros_like, params)
        v = jax.tree.map(jnp.zeros_like, params)

        def step(i, state):
            params, m, v = state
            g = grad(params)
            m = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
            v = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
            t = i + 1.0
            upd = jax.tree.map(
                lambda a, b: 0.05 * (a / (1 - 0.9**t)) / (jnp.sqrt(b / (1 - 0.999**t)) + 1e-8),
                m, v,
            )
            return jax.tree.map(lambda a, b: a + b, params, upd), m, v

        params, _, _ = jax.lax.fori_loop(0, steps, step, (params, m, v))
        return params, objective(params)

    key = jax.random.key(seed)
    mu0s = jnp.linspace(-jnp.pi, jnp.pi, n_starts, endpoint=False)
    betas = 0.5 * jax.random.normal(key, (n_starts, p), X.dtype)
    (mu0, beta), score = jax.jit(jax.vmap(run))((mu0s, betas))
    best = jnp.argmax(score)
    mean_cos = jnp.clip(score[best], 0.0, 1.0 - 1e-6)
    return MLEInit(wrap_angle(mu0[best]), beta[best] / jnp.asarray(scale, X.dtype),
                   inv_bessel_ratio(mean_cos), mean_cos)


def detect_multimodality(samples: dict, *, mean_cos_tol: float = 0.02) -> dict:
    r"""Check whether chains of a circular regression sit in different modes.

    Parameters
    ----------
    samples : dict
        ``mcmc.get_samples(group_by_chain=True)``: ``mu0`` (chains, draws), ``beta``
        (chains, draws, p), ``kappa``.
    mean_cos_tol : float
        Chains whose mean circular fit (mean of :math:`\cos(\mu_0^{(c)} - \bar\mu_0)`)
        or whose ``beta`` signs disagree are flagged.

    Returns
    -------
    dict
        ``{"multimodal": bool, "chain_mu0": ..., "chain_beta": ...}`` with per-chain
        circular means of ``mu0`` and means of ``beta``.
    """
    return chain_disagreement(samples["mu0"], samples["beta"], mean_cos_tol=mean_cos_tol)


def fit_circular_regression(
    X,
    y,
    *,
    link: str = "tan_half",
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    chain_method: str = "parallel",
    seed: int = 0,
    init: str = "mle",
    progress_bar: bool = False,
) -> MCMC:
    r"""Fit :func:`circular_regression_model` with NUTS, robustly initialised.

    ``init="mle"`` starts every chain at :func:`mle_init`'s estimate (jittered by NUTS's
    own warm-up), which avoids the mirrored modes of the tan-half link; ``init="prior"``
    uses NumPyro's default (``init_to_uniform``). After sampling, chains are checked with
    :func:`detect_multimodality` and a :class:`MultimodalPosteriorWarning` is issued if
    they disagree; the diagnosis is stored as ``mcmc.multimodality``.

    ``X`` may be on any scale (NUTS moves on ``beta`` times the covariates' root mean
    square rounded to a power of 2; ``beta`` is in the units of ``X``: module docstring).

    Raises
    ------
    ValueError
        NaN or infinite ``X`` or ``y`` (naming the argument and the first bad index) or
        lengths that differ, before anything is compiled.

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
    X_np, y_np = validate_data(X, y)  # raises on bad data, warns once on degrees
    X = _as_design(X_np)
    y = jnp.asarray(y_np, X.dtype)
    kwargs = {}
    if init == "mle":
        start = mle_init(X, y, link=link, seed=seed)
        kwargs["init_strategy"] = init_to_value(
            values={"mu0": start.mu0, "beta": start.beta, "kappa": start.kappa}
        )
    elif init != "prior":
        raise ValueError(f"init must be 'mle' or 'prior', got {init!r}")
    kernel = NUTS(circular_regression_model, **kwargs)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples,
                num_chains=num_chains, chain_method=chain_method, progress_bar=progress_bar)
    with warnings.catch_warnings():  # the VonMises site would repeat the warning above
        warnings.simplefilter("ignore", DegreesWarning)
        mcmc.run(jax.random.key(seed), X, y, link=link)
    if num_chains > 1:
        diag = detect_multimodality(mcmc.get_samples(group_by_chain=True))
        mcmc.multimodality = diag
        if diag["multimodal"]:
            warnings.warn(
                "Chains of the circular regression disagree (mirrored modes of the "
                f"{link} link?): per-chain mu0 {np.round(diag['chain_mu0'], 3)}, beta "
                f"{np.round(diag['chain_beta'], 3)}. Use init='mle' or more warm-up.",
                MultimodalPosteriorWarning,
                stacklevel=2,
            )
        else:  # mirrored modes are reported above, more precisely
            from ..diagnostics import check_convergence  # ArviZ, only when asked for

            samples = mcmc.get_samples(group_by_chain=True)
            mcmc.r_hat_max_circular = check_convergence(
                {k: samples[k] for k in ("mu0", "beta", "kappa")}, circ_var_names=["mu0"]
            )
    return mcmc
