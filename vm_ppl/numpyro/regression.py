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
from numpyro.distributions.util import validate_sample
from numpyro.infer import MCMC, NUTS, init_to_value

from ..bessel import inv_bessel_ratio
from ..regression import (
    MultimodalPosteriorWarning,
    as_design,
    chain_disagreement,
    check_link,
)
from ..sampling import wrap_angle
from ..tan_half import tan_half_log_prob
from .distribution import CircularUniform, VonMises

__all__ = [
    "MultimodalPosteriorWarning",
    "TanHalfVonMises",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "mle_init",
]


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
        Covariates; standardise them (the default priors assume unit scale).
    y : array_like, shape (n_obs,), optional
        Observed angles in radians, any window. ``None`` for prior predictive draws.
    link : {"tan_half", "identity"}
        Link function (see the module docstring).
    record_mu : bool
        Also record ``mu``, the wrapped mean direction of every observation, as a
        deterministic site (n_obs values per draw: off by default for large data).

    Sites: ``mu0`` (circular), ``beta`` (n_features,), ``kappa``, optionally ``mu``, and
    ``y``. Predictive draws of ``y`` are in
    :math:`[-\pi, \pi)`.
    """
    check_link(link)
    X = _as_design(X)
    n, p = X.shape
    if y is not None and jnp.shape(y) != (n,):
        raise ValueError(f"y must have shape ({n},) to match X, got {jnp.shape(y)}")
    mu0 = numpyro.sample("mu0", CircularUniform())
    beta_prior = nd.Cauchy(0.0, 1.0) if link == "tan_half" else nd.Normal(0.0, 1.0)
    beta = numpyro.sample("beta", beta_prior.expand([p]).to_event(1))
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
    a fixed number of steps.
    """
    X = _as_design(X)
    y = jnp.asarray(y, X.dtype)
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
    return MLEInit(wrap_angle(mu0[best]), beta[best], inv_bessel_ratio(mean_cos), mean_cos)


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
    """Fit :func:`circular_regression_model` with NUTS, robustly initialised.

    ``init="mle"`` starts every chain at :func:`mle_init`'s estimate (jittered by NUTS's
    own warm-up), which avoids the mirrored modes of the tan-half link; ``init="prior"``
    uses NumPyro's default (``init_to_uniform``). After sampling, chains are checked with
    :func:`detect_multimodality` and a :class:`MultimodalPosteriorWarning` is issued if
    they disagree; the diagnosis is stored as ``mcmc.multimodality``.

    Returns
    -------
    numpyro.infer.MCMC
        The run MCMC object (``get_samples()``, ``print_summary()``, ArviZ's
        ``az.from_numpyro``).
    """
    X = _as_design(X)
    y = jnp.asarray(y, X.dtype)
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
    return mcmc
