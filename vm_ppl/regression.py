r"""Framework-free pieces of circular regression shared by the NumPyro and PyMC adapters:
link names, design-matrix checks and the detection of chains stuck in mirrored modes.

The model is :math:`y_i \sim \mathrm{VonMises}(\mu_0 + g(x_i^\top\beta), \kappa)` with
``"tan_half"`` :math:`g(\eta) = 2\arctan\eta` (Fisher & Lee, 1992) or ``"identity"``.
Data checks (:func:`validate_data`, shared by both adapters' model builders, ``mle_init``
and ``fit_circular_regression``): a NaN or infinite covariate or angle raises a
``ValueError`` naming the argument and the first bad index; ``X`` and ``y`` of different
lengths raise a ``ValueError`` naming both; angles that look like degrees warn
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
well), so chains can disagree: :func:`chain_disagreement` measures that.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .validation import check_finite, warn_if_degrees

__all__ = ["LINKS", "MultimodalPosteriorWarning", "as_design", "chain_disagreement",
           "check_link", "covariate_scale", "validate_data"]

LINKS = ("tan_half", "identity")


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


def validate_data(X: ArrayLike, y: ArrayLike | None = None, *, warn_degrees: bool = True,
                  stacklevel: int = 2) -> tuple[np.ndarray, np.ndarray | None]:
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
        raise ValueError(f"y must have shape ({n},) to match the {n} rows of X, got shape "
                         f"{y.shape}")
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


def chain_disagreement(mu0: ArrayLike, beta: ArrayLike, *, mean_cos_tol: float = 0.02,
                       beta_tol: float = 4.0) -> dict:
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
