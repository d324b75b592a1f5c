r"""The one regression layer shared by the NumPyro and PyMC adapters (framework-free:
NumPy and SciPy): link names, data checks, the multi-start maximum-likelihood start
(:func:`mle_init`, :class:`RegressionMLE`) and the chain-agreement check
(:func:`check_chains`, one warning, :class:`MultimodalPosteriorWarning`).

The model (both adapters, same sites and priors) is

.. math::
    y_i \sim \mathrm{VonMises}\bigl(\mu_0 + g(x_i^\top\beta + a_{j[i]}),\ \kappa_i\bigr),
    \qquad \log\kappa_i = \gamma_0 + z_i^\top\gamma + b_{j[i]},

with ``"tan_half"`` :math:`g(\eta) = 2\arctan\eta` (Fisher & Lee, 1992) or ``"identity"``
:math:`g(\eta) = \eta`; group-level intercepts :math:`a_j = \sigma_\mu u_j`,
:math:`b_j = \sigma_\kappa v_j` (non-centred, :math:`u_j, v_j \sim N(0, 1)`, groups
:math:`j = 0, \dots, G-1`) on the link scale of the mean direction and on the log scale of
the concentration. Without ``Z`` and without group effects on :math:`\kappa` there is one
:math:`\kappa` with its own prior, as before. See :data:`PRIORS`.
Data checks (:func:`check_regression_data`, on top of :func:`validate_data`; shared by
both adapters' model builders, ``mle_init`` and ``fit_circular_regression``): a NaN or
infinite entry of ``X``, ``Z``, ``groups`` or ``y`` raises a ``ValueError`` naming the
argument and the first bad index; lengths that differ from the rows of ``X`` raise a
``ValueError`` naming the argument; group indices that are not integers or lie outside
``0 .. G-1`` raise a ``ValueError`` naming ``groups``; angles that look like degrees warn
(:class:`~vm_ppl.validation.DegreesWarning`).

Covariate scale (:func:`covariate_scale`): the coefficient ``beta`` stays in the units of
``X``, with its prior, but the samplers move on :math:`s_j\beta_j`, with :math:`s_j` the
root mean square of column :math:`j` of ``X`` rounded to a power of 2 (the unconstrained
transform of ``beta``: an affine ``biject_to`` in NumPyro, ``ScaleTransform`` in PyMC;
none when every :math:`s_j = 1`, e.g. for standardised covariates, whose models are
unchanged). Since
:math:`X\beta = (X/s)(s\beta)`, the geometry is that of a standardised covariate while
the model, the priors and the reported ``beta`` are unchanged. Without it a covariate on
a scale of :math:`10^6` puts the coefficient at :math:`10^{-6}`, where starts and NUTS steps
of order 1 saturate the tan-half link (:math:`2\arctan` flat at :math:`\pm\pi`) and the
chains stick far from the posterior. Columns are not centred: with the tan-half link
centring is not a reparametrisation (:math:`2\arctan(\eta + c) \ne 2\arctan\eta + c'`), it
would change the model.

Its tan-half likelihood is multimodal when :math:`|\beta|` is large (a mode with
:math:`\mu_0` rotated by :math:`\pi` and :math:`\beta` of the other sign fits almost as
well), so chains can disagree: :func:`chain_disagreement` measures that, and
:func:`check_chains` warns and, when the chains agree, computes the largest R-hat with
:math:`\mu_0` on the circle.

Group intercepts of the mean direction (:data:`GROUP_MU_SITE`). With the tan-half link
they live on the link scale, :math:`a_j = \sigma_\mu u_j` with :math:`u_j \sim N(0, 1)`
(non-centred [2]_): :math:`2\arctan(\eta + a_j)` is monotone and bounded, so every
:math:`a_j` gives a different mean direction. With the identity link an intercept is
itself an angle, and a real-valued one has copies: :math:`a_j` and :math:`a_j + 2\pi` fit
the data alike. A chain that moves one of :math:`G` intercepts onto a copy (easy early in
warm-up, while :math:`\sigma_\mu` is large) cannot come back through the antipode, where
the group's likelihood is lowest; it settles with :math:`\mu_0` turned by about
:math:`2\pi/G` and a large :math:`\sigma_\mu`, and R-hat flags it. So the identity link
draws the intercepts on the circle, :math:`a_j \sim \mathrm{VonMises}(0, 1/\sigma_\mu^2)`
(:func:`group_offset_concentration`; centred and periodic in :math:`a_j`, so a copy is the
same point), which for small :math:`\sigma_\mu` is the wrapped normal with standard
deviation :math:`\sigma_\mu` to first order; :math:`\sigma_\mu` keeps its prior.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
.. [2] Papaspiliopoulos, O., Roberts, G. O. and Sköld, M. (2007). A general framework for
   the parametrization of hierarchical models. *Statistical Science* 22, 59-73
   (non-centred group effects).
.. [3] Bürkner, P.-C. (2017). brms: an R package for Bayesian multilevel models using
   Stan. *Journal of Statistical Software* 80(1) (von Mises family: log link for
   :math:`\kappa`, group-level effects).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import i0e, i1e

from .bessel import inv_bessel_ratio
from .validation import check_finite, warn_if_degrees

__all__ = [
    "GROUP_MU_SITE",
    "LINKS",
    "PRIORS",
    "MultimodalPosteriorWarning",
    "RegressionData",
    "RegressionMLE",
    "as_design",
    "chain_disagreement",
    "check_chains",
    "check_link",
    "check_regression_data",
    "covariate_scale",
    "group_offset_concentration",
    "kappa_is_modelled",
    "mle_init",
    "validate_data",
]

LINKS = ("tan_half", "identity")

#: The priors of both adapters (names of the sites; parameters as NumPyro and PyMC take
#: them). ``mu0``: uniform on the circle. ``beta``: Cauchy(0, 1) with the tan-half link
#: (with a standardised covariate :math:`2\arctan(x\beta)` is then uniform on the circle;
#: lighter tails make it bimodal, brms#1631), Normal(0, 1) with the identity link.
#: ``kappa`` (one concentration, no ``Z`` and no group effects on it): Gamma(2, rate 0.2),
#: mean 10, density 0 at :math:`\kappa = 0` (where :math:`\mu_0, \beta` are not
#: identified). ``gamma0`` (log-concentration intercept): Normal(2, 1), i.e. a median
#: :math:`\kappa` of 7.4 and 95 % between 1 and 52. ``gamma`` (coefficients of ``Z``):
#: Normal(0, 1). ``sigma_mu``, ``sigma_kappa`` (group-level scales): HalfNormal(1);
#: ``u_mu``, ``u_kappa`` (standardised group effects): Normal(0, 1); ``a_mu`` (the identity
#: link's group intercepts, angles): VonMises(0, 1 / sigma_mu^2) (module docstring).
PRIORS = {
    "beta_tan_half": ("Cauchy", 0.0, 1.0),
    "beta_identity": ("Normal", 0.0, 1.0),
    "kappa": ("Gamma", 2.0, 0.2),
    "gamma0": ("Normal", 2.0, 1.0),
    "gamma": ("Normal", 0.0, 1.0),
    "sigma_mu": ("HalfNormal", 1.0),
    "sigma_kappa": ("HalfNormal", 1.0),
}


#: The site of the group intercepts of the mean direction, per link: standardised
#: effects ``u_mu`` (tan-half) or angles ``a_mu`` (identity; module docstring).
GROUP_MU_SITE = {"tan_half": "u_mu", "identity": "a_mu"}


def group_offset_concentration(sigma_mu):
    r"""Concentration :math:`1/\sigma_\mu^2` of the identity link's group intercepts.

    :math:`a_j \sim \mathrm{VonMises}(0, 1/\sigma_\mu^2)`, whose circular variance
    :math:`1 - A(1/\sigma^2) = \sigma^2/2 + O(\sigma^4)` matches a wrapped normal's
    :math:`1 - e^{-\sigma^2/2}` to first order, so ``sigma_mu`` keeps the meaning of a
    standard deviation in radians for small values. Works on floats and NumPy, JAX or
    PyTensor values alike.
    """
    return 1.0 / (sigma_mu * sigma_mu)


class MultimodalPosteriorWarning(UserWarning):
    """Chains of a circular regression ended in different modes."""


def check_link(link: str) -> None:
    """Raise ``ValueError`` unless ``link`` is one of :data:`LINKS`."""
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")


def as_design(X: ArrayLike) -> np.ndarray:
    """Covariates as a float (n_obs, n_features) array; 1-d input is one feature."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 1-d or 2-d (n_obs, n_features), got shape {X.shape}")
    return X


def validate_data(
    X: ArrayLike, y: ArrayLike | None = None, *, warn_degrees: bool = True, stacklevel: int = 2
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check and convert the data of a circular regression.

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, n_features)
        Covariates.
    y : array_like, shape (n_obs,), optional
        Observed angles in radians.
    warn_degrees : bool
        Warn (:class:`~vm_ppl.validation.DegreesWarning`) when ``y`` looks like degrees.
    stacklevel : int
        Of that warning, relative to the caller of this function.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        ``X`` as float (n_obs, n_features), ``y`` as float (n_obs,).

    Raises
    ------
    ValueError
        ``X`` not 1-d or 2-d; a NaN or infinite entry in ``X`` or ``y`` (the message names
        the argument and the first bad index, in the shape given); ``y`` not of shape
        (n_obs,) (the message names both lengths).
    """
    X_in = np.asarray(X, dtype=float)
    X2 = as_design(X_in)
    check_finite(X_in, "X")
    if y is None:
        return X2, None
    y = np.asarray(y, dtype=float)
    n = X2.shape[0]
    if y.shape != (n,):
        raise ValueError(
            f"y must have shape ({n},) to match the {n} rows of X, got shape {y.shape}"
        )
    check_finite(y, "y")
    if warn_degrees:
        warn_if_degrees(y, "y", stacklevel=stacklevel + 1)
    return X2, y


def covariate_scale(X: ArrayLike) -> np.ndarray:
    r"""Root mean square of each column of the design matrix, rounded to a power of 2.

    The samplers move on :math:`s\beta` with this :math:`s` (module docstring): a change
    of the sampler's coordinates, not of the model. A power of 2 makes the change exact in
    floating point and the identity (:math:`s = 1`) for a column whose root mean square
    is within a factor :math:`\sqrt 2` of 1, e.g. a standardised covariate; an all-zero
    or non-finite column gets 1.
    """
    X = as_design(X)
    rms = np.sqrt(np.mean(X * X, axis=0)) if X.shape[0] else np.ones(X.shape[1])
    ok = np.isfinite(rms) & (rms > 0)
    return np.where(ok, np.exp2(np.round(np.log2(np.where(ok, rms, 1.0)))), 1.0)


def chain_disagreement(
    mu0: ArrayLike, beta: ArrayLike, *, mean_cos_tol: float = 0.02, beta_tol: float = 4.0
) -> dict:
    r"""Whether chains of a circular regression sit in different modes.

    Parameters
    ----------
    mu0 : array_like, shape (chains, draws)
        Intercept directions.
    beta : array_like, shape (chains, draws) or (chains, draws, p)
        Coefficients.
    mean_cos_tol : float
        A chain whose circular mean of ``mu0`` is off the pooled one by more than this
        in :math:`1 - \cos` is flagged (0.02 is about 11 degrees).
    beta_tol : float
        A chain whose mean ``beta`` is more than ``beta_tol`` posterior standard
        deviations from the median over chains is flagged.

    Returns
    -------
    dict
        ``{"multimodal": bool, "chain_mu0": (chains,), "chain_beta": (chains, p)}``.
    """
    mu0 = np.asarray(mu0)
    beta = np.asarray(beta)
    if beta.ndim == 2:
        beta = beta[..., None]
    chain_mu0 = np.angle(np.mean(np.exp(1j * mu0), axis=1))
    chain_beta = beta.mean(axis=1)
    ref = np.angle(np.mean(np.exp(1j * chain_mu0)))
    spread = 1.0 - np.cos(chain_mu0 - ref)
    sd = beta.std(axis=1).mean(axis=0) + 1e-12
    beta_gap = np.abs(chain_beta - np.median(chain_beta, axis=0)) / sd
    multimodal = bool(np.any(spread > mean_cos_tol) or np.any(beta_gap > beta_tol))
    return {"multimodal": multimodal, "chain_mu0": chain_mu0, "chain_beta": chain_beta}


class RegressionData(NamedTuple):
    """Checked data of a circular regression (:func:`check_regression_data`)."""

    X: np.ndarray  #: (n_obs, p) float
    y: np.ndarray | None  #: (n_obs,) float, or None
    Z: np.ndarray | None  #: (n_obs, q) float, or None
    groups: np.ndarray | None  #: (n_obs,) int in 0 .. n_groups - 1, or None
    n_groups: int  #: G (0 without groups)


def _check_groups(groups: ArrayLike, n: int, n_groups: int | None) -> tuple[np.ndarray, int]:
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise ValueError(
            f"groups must have shape ({n},) to match the {n} rows of X, got shape {g.shape}"
        )
    if g.dtype.kind == "b" or g.dtype.kind not in "iuf":
        raise ValueError(f"groups must be integer group indices 0 .. G-1, got dtype {g.dtype}")
    if g.dtype.kind == "f":
        check_finite(g, "groups")
        frac = np.flatnonzero(g != np.round(g))
        if frac.size:
            i = int(frac[0])
            raise ValueError(f"groups must be integer group indices, got {g[i]} at index {i}")
    g = g.astype(np.int64)
    if n_groups is None:
        n_groups = int(g.max()) + 1 if n else 0
    elif int(n_groups) != n_groups or n_groups < 1:
        raise ValueError(f"n_groups must be a positive integer, got {n_groups!r}")
    n_groups = int(n_groups)
    bad = np.flatnonzero((g < 0) | (g >= n_groups))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"groups must lie in 0 .. {n_groups - 1} (n_groups = {n_groups}), got "
            f"{g[i]} at index {i}"
        )
    return g, n_groups


def check_regression_data(
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    Z: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    n_groups: int | None = None,
    warn_degrees: bool = True,
    stacklevel: int = 2,
) -> RegressionData:
    """Check and convert all the data of a circular regression.

    Parameters
    ----------
    X : array_like, shape (n_obs,) or (n_obs, p)
        Covariates of the mean direction.
    y : array_like, shape (n_obs,), optional
        Observed angles in radians.
    Z : array_like, shape (n_obs,) or (n_obs, q), optional
        Covariates of the log-concentration.
    groups : array_like of int, shape (n_obs,), optional
        Group index of each observation, in ``0 .. n_groups - 1`` (integer dtype, or floats
        with integer values).
    n_groups : int, optional
        Number of groups :math:`G`; default ``max(groups) + 1``. Give it when some groups
        have no observation (e.g. to predict for them).
    warn_degrees, stacklevel : see :func:`validate_data`.

    Returns
    -------
    RegressionData

    Raises
    ------
    ValueError
        Naming the argument: ``X`` or ``Z`` not 1-d or 2-d; a NaN or infinite entry in
        ``X``, ``Z``, ``groups`` or ``y`` (with the first bad index); ``y``, ``Z`` or
        ``groups`` whose length is not the number of rows of ``X``; ``groups`` not integer
        or outside ``0 .. n_groups - 1``.
    """
    X2, y2 = validate_data(X, y, warn_degrees=warn_degrees, stacklevel=stacklevel + 1)
    n = X2.shape[0]
    Z2 = None
    if Z is not None:
        Z_in = np.asarray(Z, dtype=float)
        if Z_in.ndim not in (1, 2):
            raise ValueError(f"Z must be 1-d or 2-d (n_obs, q), got shape {Z_in.shape}")
        check_finite(Z_in, "Z")
        Z2 = as_design(Z_in)
        if Z2.shape[0] != n:
            raise ValueError(
                f"Z must have {n} rows to match the {n} rows of X, got shape {Z_in.shape}"
            )
    g, G = (None, 0) if groups is None else _check_groups(groups, n, n_groups)
    if groups is None and n_groups is not None:
        raise ValueError("n_groups is given but groups is None")
    return RegressionData(X2, y2, Z2, g, G)


def kappa_is_modelled(Z: ArrayLike | None, groups: ArrayLike | None, group_kappa: bool) -> bool:
    """Whether :math:`\\log\\kappa` has a linear model (``gamma0`` + ...) rather than one
    ``kappa`` site: with ``Z``, or with group effects on the concentration."""
    if group_kappa and groups is None:
        raise ValueError("group_kappa=True needs groups")
    return Z is not None or bool(group_kappa)


class RegressionMLE(NamedTuple):
    r"""Result of :func:`mle_init` (both adapters): maximum-likelihood values of the
    population-level parameters, in the units of ``X`` and ``Z``.

    Fields can also be read by name, ``start["beta"]``; :meth:`initial_values` gives the
    sites of the model (for ``init_to_value`` or ``pm.sample(initvals=...)``).
    """

    mu0: float
    beta: np.ndarray  #: (p,)
    kappa: float  #: the concentration at the mean cosine residual, :math:`A^{-1}(\bar c)`
    mean_cos: float  #: :math:`\bar c`, the best mean cosine residual
    gamma0: float  #: log-concentration intercept (``log(kappa)`` without ``Z``)
    gamma: np.ndarray | None  #: (q,) coefficients of ``Z``, or None

    def __getitem__(self, key):
        if isinstance(key, str):
            return getattr(self, key)
        return tuple.__getitem__(self, key)

    def initial_values(self, log_kappa_model: bool = False) -> dict:
        """Initial values of the model's population-level sites: ``mu0``, ``beta`` and
        ``kappa``, or ``gamma0`` (and ``gamma``) when :math:`\\log\\kappa` is modelled."""
        values = {"mu0": self.mu0, "beta": self.beta}
        if not log_kappa_model:
            values["kappa"] = self.kappa
        else:
            values["gamma0"] = self.gamma0
            if self.gamma is not None:
                values["gamma"] = self.gamma
        return values


def _g(eta, link):
    return 2.0 * np.arctan(eta) if link == "tan_half" else eta


def _dg(eta, link):
    return 2.0 / (1.0 + eta * eta) if link == "tan_half" else np.ones_like(eta)


def mle_init(
    X: ArrayLike,
    y: ArrayLike,
    *,
    link: str = "tan_half",
    Z: ArrayLike | None = None,
    n_starts: int = 16,
    seed: int = 0,
) -> RegressionMLE:
    r"""Multi-start maximum-likelihood estimate of the population-level parameters.

    1. For one :math:`\kappa` the likelihood in :math:`(\mu_0, \beta)` is maximised by
       maximising the mean cosine residual :math:`\bar c = n^{-1}\sum_i\cos(y_i - \mu_0 -
       g(x_i^\top\beta))` (the profile likelihood, for any :math:`\kappa`): BFGS from
       ``n_starts`` starts (``mu0`` spread round the circle, ``beta`` near 0: the tan-half
       likelihood has mirrored modes), keeping the best; :math:`\hat\kappa =
       A^{-1}(\bar c)`.
    2. With ``Z``: BFGS on the full von Mises log-likelihood in :math:`(\mu_0, \beta,
       \gamma_0, \gamma)`, :math:`\log\kappa_i = \gamma_0 + z_i^\top\gamma`, plus the
       log prior densities of :math:`\gamma_0` and :math:`\gamma` (:data:`PRIORS`), from
       step 1's best and :math:`(\log\hat\kappa, 0)`. The priors are what keeps this
       bounded: the likelihood alone grows without limit as the curve passes through
       one observation whose :math:`\kappa_i \to \infty` (a large :math:`\gamma` puts
       all the concentration there), and without the priors BFGS wandered to values
       whose :math:`\kappa` overflows (prior draws of the identity-link model with ``Z``:
       ``tests/test_regression_models.py::test_mle_init_with_Z_stays_bounded``).

    Float64 NumPy/SciPy (``scipy.special.i0e``, ``i1e`` for :math:`\log I_0` and
    :math:`A = I_1/I_0`), whatever JAX's precision; analytic gradients. Works on the
    covariates divided by :func:`covariate_scale` and returns coefficients in the units of
    ``X`` and ``Z``. Group effects are not estimated (the samplers start them at their
    defaults).

    Returns
    -------
    RegressionMLE

    Raises
    ------
    ValueError
        Unknown ``link``; bad ``X``, ``Z`` or ``y`` (:func:`check_regression_data`).
    """
    check_link(link)
    data = check_regression_data(X, y, Z=Z, warn_degrees=False)
    sx = covariate_scale(data.X)
    Xs, y = data.X / sx, data.y
    n, p = Xs.shape
    rng = np.random.default_rng(seed)

    def neg_mean_cos(theta):
        mu0, beta = theta[0], theta[1:]
        eta = Xs @ beta
        r = y - mu0 - _g(eta, link)
        s = np.sin(r)
        grad = np.concatenate([[-np.mean(s)], -(Xs.T @ (s * _dg(eta, link))) / n])
        return -np.mean(np.cos(r)), grad

    best = None
    for mu0 in np.linspace(-np.pi, np.pi, n_starts, endpoint=False):
        x0 = np.concatenate([[mu0], 0.5 * rng.standard_normal(p)])
        res = minimize(neg_mean_cos, x0, jac=True, method="BFGS")
        if best is None or res.fun < best.fun:
            best = res
    mean_cos = float(np.clip(-best.fun, 0.0, 1.0 - 1e-6))
    kappa = float(inv_bessel_ratio(mean_cos))
    theta = best.x
    gamma0, gamma = float(np.log(max(kappa, 1e-3))), None
    if data.Z is not None:
        sz = covariate_scale(data.Z)
        Zs = data.Z / sz
        q = Zs.shape[1]
        _, g0_mean, g0_sd = PRIORS["gamma0"]
        _, g_mean, g_sd = PRIORS["gamma"]
        g_sd = g_sd * sz  # the prior of gamma on the scaled coefficient gamma * sz

        def neg_loglik(t):
            mu0, beta, g0, gam = t[0], t[1 : p + 1], t[p + 1], t[p + 2 :]
            eta = Xs @ beta
            r = y - mu0 - _g(eta, link)
            log_k = np.clip(g0 + Zs @ gam, -10.0, 20.0)
            k = np.exp(log_k)
            c, s = np.cos(r), np.sin(r)
            # log I0(k) = log(i0e(k)) + k; d log I0 / d log k = k A(k), A = i1e / i0e.
            dg0, dg = (g0 - g0_mean) / g0_sd**2, (gam - g_mean * sz) / g_sd**2
            penalty = 0.5 * (g0 - g0_mean) * dg0 + 0.5 * np.sum((gam - g_mean * sz) * dg)
            val = (penalty - np.sum(k * c - np.log(i0e(k)) - k)) / n
            d_logk = k * (c - i1e(k) / i0e(k))
            grad = (
                np.concatenate(
                    [
                        [-np.sum(k * s)],
                        -Xs.T @ (k * s * _dg(eta, link)),
                        [dg0 - np.sum(d_logk)],
                        dg - Zs.T @ d_logk,
                    ]
                )
                / n
            )
            return val, grad

        t0 = np.concatenate([theta, [gamma0], np.zeros(q)])
        res = minimize(neg_loglik, t0, jac=True, method="BFGS")
        if np.all(np.isfinite(res.x)) and res.fun <= neg_loglik(t0)[0]:
            theta, gamma0, gamma = res.x[: p + 1], float(res.x[p + 1]), res.x[p + 2 :] / sz
    mu0 = float(np.angle(np.exp(1j * theta[0])))
    return RegressionMLE(mu0, theta[1:] / sx, kappa, mean_cos, gamma0, gamma)


def check_chains(
    posterior,
    *,
    link: str = "tan_half",
    var_names: list[str] | None = None,
    mean_cos_tol: float = 0.02,
    beta_tol: float = 4.0,
    warn: bool = True,
    stacklevel: int = 2,
) -> dict:
    r"""The post-sampling check of both adapters: do the chains agree, and their R-hat.

    Parameters
    ----------
    posterior : mapping
        Draws by chain: ``posterior["mu0"]`` (chains, draws), ``posterior["beta"]``
        (chains, draws[, p]) and the ``var_names`` (an ``xarray.Dataset`` or a dict of
        arrays).
    link : str
        Named in the warning.
    var_names : list of str, optional
        Sites for the R-hat (``mu0`` and ``a_mu`` on the circle); default ``mu0`` and
        ``beta``.
    mean_cos_tol, beta_tol : float
        See :func:`chain_disagreement`.
    warn : bool
        Warn :class:`MultimodalPosteriorWarning` when the chains sit in different modes,
        else :class:`vm_ppl.diagnostics.ConvergenceWarning` when the largest R-hat exceeds
        1.01.
    stacklevel : int
        Of the warning, relative to the caller of this function.

    Returns
    -------
    dict
        ``{"multimodal", "chain_mu0", "chain_beta"}`` (:func:`chain_disagreement`) and
        ``"r_hat_max_circular"`` (NaN when the chains disagree: the mirrored modes are
        reported, more precisely, instead).
    """
    diag = chain_disagreement(
        np.asarray(posterior["mu0"]),
        np.asarray(posterior["beta"]),
        mean_cos_tol=mean_cos_tol,
        beta_tol=beta_tol,
    )
    diag["r_hat_max_circular"] = float("nan")
    if diag["multimodal"]:
        if warn:
            warnings.warn(
                f"chains of the circular regression disagree (mirrored modes of the {link} "
                f"link?): per-chain mu0 {np.round(diag['chain_mu0'], 3).tolist()}, beta "
                f"{np.round(diag['chain_beta'], 3).tolist()}; the posterior is multimodal or "
                "the chains have not mixed: refit with init='mle' or more warm-up",
                MultimodalPosteriorWarning,
                stacklevel=stacklevel + 1,
            )
    else:
        from .diagnostics import check_convergence  # ArviZ: only when asked for

        names = list(var_names) if var_names is not None else ["mu0", "beta"]
        draws = {k: np.asarray(posterior[k]) for k in names}
        circular = [k for k in ("mu0", GROUP_MU_SITE["identity"]) if k in draws]
        diag["r_hat_max_circular"] = check_convergence(draws, circ_var_names=circular, warn=warn)
    return diag
