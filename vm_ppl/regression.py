r"""Framework-free pieces of circular regression shared by the NumPyro and PyMC adapters:
link names, design-matrix checks and the detection of chains stuck in mirrored modes.

The model is :math:`y_i \sim \mathrm{VonMises}(\mu_0 + g(x_i^\top\beta), \kappa)` with
``"tan_half"`` :math:`g(\eta) = 2\arctan\eta` (Fisher & Lee, 1992) or ``"identity"``.
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

__all__ = ["LINKS", "MultimodalPosteriorWarning", "as_design", "chain_disagreement",
           "check_link"]

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
