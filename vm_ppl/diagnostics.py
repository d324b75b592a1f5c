r"""Bayesian workflow on the circle: ESS and R-hat of angles, circular posterior predictive
checks (rose diagram, PIT / LOO-PIT) and the pieces ArviZ needs for model comparison.

Not imported by ``import vm_ppl`` (the core needs only jax, numpy and scipy); importing
this module imports ArviZ, and the plotting functions import matplotlib when called.

Why: ArviZ's ``az.summary(..., circ_var_names=...)`` (0.23) replaces only the mean, sd,
HDI and ``mcse_mean`` of a circular variable; ESS and R-hat stay on the raw, linear scale,
so a posterior of an angle centred at :math:`\pm\pi` gets a low ESS and a high R-hat from
draws that merely jump across the cut of the angle window. :func:`ess`, :func:`rhat` and
:func:`summary` compute them on the circle instead.

Construction
------------
Each circular variable (each element of it) is rotated so that its pooled circular mean
:math:`\bar\theta = \arg \sum_{c,s} e^{i\theta_{cs}}` (Fisher 1993, sec. 2.3.1) is at 0
and wrapped into :math:`[-\pi, \pi)`: :math:`\tilde\theta = \operatorname{wrap}(\theta -
\bar\theta)`. ArviZ's rank-normalised split R-hat and bulk / tail ESS (Vehtari, Gelman,
Simpson, Carpenter & Buerkner 2021) are then computed on :math:`\tilde\theta`. The cut of
the window then sits at the antipode of the mean direction, where a unimodal posterior
has the least mass, so draws cross it only if the posterior really spreads over the whole
circle. Rotating every draw by the same angle rotates :math:`\bar\theta` with them and
leaves :math:`\tilde\theta` unchanged, so the diagnostics are rotation invariant; for a
posterior away from the cut they equal ArviZ's on the raw draws. The alternative of
taking the worse of the diagnostics of :math:`\cos\theta` and :math:`\sin\theta` is not
rotation invariant (:math:`\cos(\theta + a)` mixes both), and near the mean direction
the cosine is even in :math:`\theta - \bar\theta`, so it cannot see slow mixing between
the two sides of the mean. Caveat: if the mean resultant length of the pooled draws is
small (a posterior spread over the whole circle, or chains stuck at different directions)
the circular mean is poorly defined; :func:`rhat` then still flags disagreeing chains, because their
centred draws differ.

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. & Buerkner, P.-C. (2021).
Rank-normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC. *Bayesian Analysis* 16(2), 667-718.
Fisher, N. I. (1993). *Statistical Analysis of Circular Data*. Cambridge University Press.
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. *Statistics and Computing* 27, 1413-1432.
Saeilynoja, T., Buerkner, P.-C. & Vehtari, A. (2022). Graphical test for discrete
uniformity and its applications in goodness-of-fit evaluation and multiple sample
comparison. *Statistics and Computing* 32, 32.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import arviz as az
import numpy as np
import xarray as xr

__all__ = [
    "ConvergenceWarning",
    "centre_circular",
    "check_convergence",
    "circular_pit",
    "ess",
    "loo_circular_pit",
    "plot_circular_ppc",
    "plot_pit_ecdf",
    "rhat",
    "summary",
]

TWO_PI = 2.0 * np.pi


def _wrap(x):
    return np.mod(x + np.pi, TWO_PI) - np.pi


def _as_names(names, argname: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    try:
        return list(names)
    except TypeError:
        raise TypeError(f"{argname} must be a string or a sequence of strings") from None


def _dataset(data, group: str = "posterior") -> xr.Dataset:
    return az.convert_to_dataset(data, group=group)


def centre_circular(
    data, circ_var_names: Sequence[str] | str = (), group: str = "posterior"
) -> xr.Dataset:
    """The dataset with every circular variable rotated to its circular mean and wrapped.

    Parameters
    ----------
    data : InferenceData, Dataset or array-like
        Anything :func:`arviz.convert_to_dataset` accepts (``(chain, draw, ...)`` arrays).
    circ_var_names : str or sequence of str
        Variables holding angles in radians (any window).
    group : str
        InferenceData group to read.

    Returns
    -------
    xarray.Dataset
        A copy; variable ``v`` in ``circ_var_names`` becomes ``wrap(v - circmean(v))`` in
        ``[-pi, pi)``, the circular mean taken over chains and draws for each element.

    Raises
    ------
    KeyError
        If a name in ``circ_var_names`` is not a variable of the data.
    """
    ds = _dataset(data, group).copy()
    for name in _as_names(circ_var_names, "circ_var_names"):
        if name not in ds.data_vars:
            raise KeyError(
                f"circ_var_names: {name!r} is not a variable of the data "
                f"(has {sorted(ds.data_vars)})"
            )
        x = ds[name]
        v = np.asarray(x.values, dtype=np.float64)  # float32 draws: centre in float64
        mean = np.angle(np.exp(1j * v).mean(axis=(0, 1), keepdims=True))
        ds[name] = x.copy(data=_wrap(v - mean))
    return ds


def ess(
    data,
    var_names: Sequence[str] | str | None = None,
    circ_var_names: Sequence[str] | str = (),
    method: str = "bulk",
    **kwargs,
) -> xr.Dataset:
    """Effective sample size, computed on the circle for circular variables.

    Parameters
    ----------
    data : InferenceData, Dataset or array-like
        Posterior draws (see :func:`arviz.ess`).
    var_names : str or sequence of str, optional
        Variables to report (default: all).
    circ_var_names : str or sequence of str
        Angles (radians): their ESS is ArviZ's on the draws centred at the circular mean
        (module docstring); other variables get exactly :func:`arviz.ess`.
    method : str
        ``"bulk"``, ``"tail"``, ``"mean"``, ... as in :func:`arviz.ess`.
    **kwargs
        Passed to :func:`arviz.ess` (``relative``, ``prob``).

    Returns
    -------
    xarray.Dataset
    """
    ds = centre_circular(data, circ_var_names)
    return az.ess(ds, var_names=var_names, method=method, **kwargs)


def rhat(
    data,
    var_names: Sequence[str] | str | None = None,
    circ_var_names: Sequence[str] | str = (),
    method: str = "rank",
) -> xr.Dataset:
    """R-hat, computed on the circle for circular variables.

    Parameters
    ----------
    data : InferenceData, Dataset or array-like
        Posterior draws with at least 2 chains (see :func:`arviz.rhat`).
    var_names : str or sequence of str, optional
        Variables to report (default: all).
    circ_var_names : str or sequence of str
        Angles (radians): R-hat of the draws centred at their pooled circular mean
        (module docstring); other variables get exactly :func:`arviz.rhat`.
    method : str
        As in :func:`arviz.rhat` (default ``"rank"``).

    Returns
    -------
    xarray.Dataset
    """
    ds = centre_circular(data, circ_var_names)
    return az.rhat(ds, var_names=var_names, method=method)


class ConvergenceWarning(UserWarning):
    """Issued by :func:`check_convergence` (and the regressions) when R-hat exceeds its bound."""


def check_convergence(
    data,
    circ_var_names: Sequence[str] | str = (),
    var_names: Sequence[str] | str | None = None,
    threshold: float = 1.01,
    warn: bool = True,
) -> float:
    r"""Largest R-hat over ``var_names``, on the circle for ``circ_var_names``.

    The check vm_ppl's regressions run after sampling (PyMC's own check, a linear R-hat,
    warns falsely for an angle whose chains straddle :math:`\pm\pi`).

    Parameters
    ----------
    data : InferenceData, Dataset or dict of arrays (chain, draw, ...)
        Posterior draws with at least 2 chains.
    circ_var_names, var_names : see :func:`rhat`.
    threshold : float
        Warn above this R-hat (1.01, Vehtari et al. 2021).
    warn : bool
        Issue a :class:`ConvergenceWarning` when the largest R-hat exceeds ``threshold``.

    Returns
    -------
    float
        The largest R-hat (NaN with fewer than 2 chains, and then no warning).
    """
    values = rhat(data, var_names=var_names, circ_var_names=circ_var_names)
    r_max = max((float(values[v].max()) for v in values.data_vars), default=float("nan"))
    if warn and r_max > threshold:
        circ = _as_names(circ_var_names, "circ_var_names")
        where = f" ({', '.join(circ)} on the circle)" if circ else ""
        warnings.warn(
            f"largest R-hat {r_max:.3f} > {threshold}{where}: the chains disagree; run "
            "longer or check the model (vm_ppl.diagnostics.summary)",
            ConvergenceWarning,
            stacklevel=2,
        )
    return r_max


def summary(
    data,
    var_names: Sequence[str] | str | None = None,
    circ_var_names: Sequence[str] | str = (),
    **kwargs,
):
    """:func:`arviz.summary` with ESS and R-hat of circular variables on the circle.

    ArviZ's circular mean, sd, HDI and ``mcse_mean`` are kept; ``ess_bulk``, ``ess_tail``
    and ``r_hat`` of the circular rows are replaced by :func:`ess` / :func:`rhat`.

    Parameters
    ----------
    data : InferenceData, Dataset or array-like
        Posterior draws.
    var_names : str or sequence of str, optional
        Variables to report.
    circ_var_names : str or sequence of str
        Angles in radians.
    **kwargs
        Passed to :func:`arviz.summary` (``kind``, ``hdi_prob``, ``round_to`` ...; the
        ``fmt`` must stay ``"wide"``).

    Returns
    -------
    pandas.DataFrame
        Its ``attrs["circular"]`` lists the variables whose ESS / R-hat are circular.
    """
    if kwargs.get("fmt", "wide") != "wide":
        raise ValueError("fmt: only 'wide' is supported")
    circ = _as_names(circ_var_names, "circ_var_names")
    centre_circular(data, circ)  # validates the names
    table = az.summary(data, var_names=var_names, circ_var_names=circ or None, **kwargs)
    names = _as_names(var_names, "var_names")
    circ_shown = [c for c in circ if not names or c in names]
    if circ_shown:
        ds = centre_circular(data, circ_shown)
        diag = az.summary(
            ds, var_names=circ_shown, kind="diagnostics", round_to=kwargs.get("round_to")
        )
        for col in ("ess_bulk", "ess_tail", "r_hat"):
            if col in table.columns:
                table.loc[diag.index, col] = diag[col].to_numpy()
    table.attrs["circular"] = circ_shown
    return table


# ------------------------------------------------------------------- calibration (PIT)


def circular_pit(y, loc, concentration, weights=None, mix_weights=None) -> np.ndarray:
    r"""PIT values of angles under a posterior (predictive) of von Mises (mixture) laws.

    For each posterior draw :math:`s` the predictive law is a von Mises, or a mixture of
    von Mises components (``mix_weights``); its CDF is taken on the window
    :math:`[c_s - \pi, c_s + \pi)` centred at the draw's predictive mean direction
    :math:`c_s = \arg \sum_k w_k A(\kappa_k) e^{i\mu_k}` (:math:`A = I_1/I_0`), with
    :func:`vm_ppl.cdf`, and the PIT of :math:`y_i` is its (weighted) average over draws:

    .. math:: u_i = \sum_s w_{is} \sum_k w_{sk}
       \left[F(c_s + \operatorname{wrap}(y_i - c_s); \mu_{sk}, \kappa_{sk})
       - F(c_s - \pi; \mu_{sk}, \kappa_{sk})\right].

    With ``weights`` the PSIS-LOO weights (:func:`loo_circular_pit`) this is LOO-PIT
    (Vehtari, Gelman & Gabry 2017); for a calibrated model the values are uniform.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observed angles (radians, any window).
    loc, concentration : array_like, shape (S,) or (S, n), or (S, K) / (S, n, K) with
        ``mix_weights``
        Posterior draws of the mean direction and concentration (per observation for a
        regression).
    weights : array_like, shape (S,) or (S, n), optional
        Normalised weights over draws (default: equal).
    mix_weights : array_like, shape (S, K) or (S, n, K), optional
        Mixture weights of ``K`` components (rows sum to 1).

    Returns
    -------
    ndarray, shape (n,)
        Values in [0, 1].
    """
    import jax

    from . import cdf as _cdf
    from .bessel import bessel_ratio

    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    loc = np.asarray(loc, dtype=float)
    kap = np.asarray(concentration, dtype=float)
    if np.any(~np.isfinite(kap)) or np.any(kap < 0):
        raise ValueError("concentration must be finite and >= 0")
    if mix_weights is None:
        loc, kap, mw = loc[..., None], kap[..., None], np.ones(1)
    else:
        mw = np.asarray(mix_weights, dtype=float)
    if loc.ndim == 2:  # (S, K) -> (S, 1, K): same law for every observation
        loc, kap = loc[:, None, :], kap[:, None, :]
    loc, kap = np.broadcast_arrays(loc, kap)
    if mw.ndim == 2:
        mw = mw[:, None, :]
    with jax.enable_x64(True):
        a = np.asarray(bessel_ratio(kap))
        centre = np.angle(np.sum(mw * a * np.exp(1j * loc), axis=-1, keepdims=True))
        x = centre + _wrap(y[None, :, None] - centre)
        f = np.asarray(_cdf(x, loc, kap)) - np.asarray(_cdf(centre - np.pi, loc, kap))
    per_draw = np.sum(mw * f, axis=-1)  # (S, n)
    s = per_draw.shape[0]
    w = np.full((s, 1), 1.0 / s) if weights is None else np.asarray(weights, dtype=float)
    if w.ndim == 1:
        w = w[:, None]
    return np.clip(np.sum(w * per_draw, axis=0), 0.0, 1.0)


def loo_circular_pit(idata, var_name: str, loc, concentration, mix_weights=None) -> np.ndarray:
    """LOO-PIT of circular observations with PSIS weights (Vehtari, Gelman & Gabry 2017).

    Parameters
    ----------
    idata : arviz.InferenceData
        With groups ``observed_data`` and ``log_likelihood`` holding ``var_name``
        (``(chain, draw, n)``).
    var_name : str
        The observed variable.
    loc, concentration, mix_weights : array_like
        Posterior draws, flattened over ``(chain, draw)`` in the same order as the
        log-likelihood (see :func:`circular_pit`).

    Returns
    -------
    ndarray, shape (n,)
    """
    for grp in ("observed_data", "log_likelihood"):
        if grp not in idata.groups() or var_name not in idata[grp]:
            raise KeyError(f"idata has no {grp!r} variable {var_name!r}")
    y = np.asarray(idata.observed_data[var_name]).ravel()
    ll = idata.log_likelihood[var_name].stack(__sample__=("chain", "draw"))
    ll = ll.transpose("__sample__", ...).values.reshape(ll.sizes["__sample__"], -1)
    lw, _ = az.psislw(-ll.T)  # (n, S): smoothed log weights, normalised
    return circular_pit(y, loc, concentration, weights=np.exp(lw).T, mix_weights=mix_weights)


def plot_pit_ecdf(pit, ax=None, ci_prob: float = 0.94, label: str | None = None, **kwargs):
    """ECDF-difference plot of PIT values with simultaneous bands (ArviZ's machinery).

    Uses :func:`arviz.plot_ecdf` with ``cdf`` the uniform CDF, ``difference=True`` and
    simultaneous ``confidence_bands`` (Saeilynoja, Buerkner & Vehtari 2022).

    Parameters
    ----------
    pit : array_like
        Values in [0, 1] (e.g. :func:`loo_circular_pit`).
    ax : matplotlib Axes, optional
    ci_prob : float
        Probability of the simultaneous band.
    label : str, optional
        Axes title.
    **kwargs
        Passed to :func:`arviz.plot_ecdf`.

    Returns
    -------
    matplotlib Axes
    """
    from scipy import stats

    pit = np.asarray(pit, dtype=float).ravel()

    def rvs(n, random_state=None):  # PIT values are continuous: calibrate bands on U(0, 1)
        return stats.uniform.rvs(size=n, random_state=random_state)

    ax = az.plot_ecdf(
        pit,
        eval_points=np.linspace(0.0, 1.0, 201),
        rvs=rvs,
        cdf=stats.uniform(0, 1).cdf,
        difference=True,
        confidence_bands=True,
        ci_prob=ci_prob,
        ax=ax,
        random_state=np.random.default_rng(0),
        **kwargs,
    )
    ax.set_xlabel("PIT")
    ax.set_ylabel("ECDF - uniform")
    if label:
        ax.set_title(label, fontsize=9)
    return ax


# ----------------------------------------------------------------------------- PPC


def plot_circular_ppc(
    data,
    var_name: str,
    *,
    ax=None,
    bins: int = 36,
    num_pp_samples: int | None = 200,
    degrees: bool = True,
    compass: bool = True,
    prob_outer: float = 0.9,
    prob_inner: float = 0.5,
    seed: int = 0,
    title: str | None = None,
):
    """Rose diagram of circular observations with the posterior predictive density.

    The observations are drawn as an area-proportional rose diagram: bar *radius* is the
    square root of the density per radian, so bar *area* is proportional to the count
    (a radius proportional to the count exaggerates the peaks; Fisher 1993, sec. 2.2).
    Each posterior predictive replicate is binned on the same bins; the median of its
    density per bin and the central ``prob_inner`` / ``prob_outer`` bands over replicates
    are drawn on the same square-root scale.

    Parameters
    ----------
    data : arviz.InferenceData
        With ``observed_data`` and ``posterior_predictive`` groups holding ``var_name``.
    var_name : str
        The observed angles (radians, any window).
    ax : matplotlib polar Axes, optional
        Created if not given.
    bins : int
        Number of equal bins over the circle.
    num_pp_samples : int or None
        Replicates drawn (without replacement, seed ``seed``); ``None``: all.
    degrees : bool
        Label the angular axis in degrees (else radians).
    compass : bool
        0 at North, clockwise (else 0 at East, counter-clockwise).
    prob_outer, prob_inner : float
        Band probabilities (``0 < prob_inner < prob_outer < 1``).
    seed : int
        Seed of the replicate subsample.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if not 0 < prob_inner < prob_outer < 1:
        raise ValueError("need 0 < prob_inner < prob_outer < 1")
    if bins < 2:
        raise ValueError("bins must be >= 2")
    for grp in ("observed_data", "posterior_predictive"):
        if grp not in data.groups() or var_name not in data[grp]:
            raise KeyError(f"data has no {grp!r} variable {var_name!r}")
    obs = np.mod(np.asarray(data.observed_data[var_name]).ravel(), TWO_PI)
    pp = data.posterior_predictive[var_name].stack(__sample__=("chain", "draw"))
    pp = np.mod(pp.transpose("__sample__", ...).values.reshape(pp.sizes["__sample__"], -1), TWO_PI)
    if num_pp_samples is not None and num_pp_samples < pp.shape[0]:
        idx = np.random.default_rng(seed).choice(pp.shape[0], num_pp_samples, replace=False)
        pp = pp[idx]
    edges = np.linspace(0.0, TWO_PI, bins + 1)
    width = edges[1] - edges[0]
    dens_obs = np.histogram(obs, edges)[0] / (obs.size * width)
    idx = np.minimum((pp / width).astype(int), bins - 1)
    counts = np.stack([np.bincount(row, minlength=bins) for row in idx])
    dens_pp = counts / (pp.shape[1] * width)
    lo_o, lo_i, med, hi_i, hi_o = np.quantile(
        dens_pp,
        [
            (1 - prob_outer) / 2,
            (1 - prob_inner) / 2,
            0.5,
            (1 + prob_inner) / 2,
            (1 + prob_outer) / 2,
        ],
        axis=0,
    )
    if ax is None:
        _, ax = plt.subplots(subplot_kw={"projection": "polar"})
    ax.bar(
        edges[:-1],
        np.sqrt(dens_obs),
        width=width,
        align="edge",
        color="0.75",
        edgecolor="k",
        lw=0.5,
        label=f"observed (n={obs.size})",
    )
    # step curves over the bins, closed around the circle
    theta = np.repeat(edges, 2)[1:-1]

    def steps(v):
        r = np.sqrt(np.repeat(v, 2))
        return np.append(theta, theta[0]), np.append(r, r[0])

    t, r_lo = steps(lo_o)
    _, r_hi = steps(hi_o)
    ax.fill_between(
        t, r_lo, r_hi, color="C3", alpha=0.2, lw=0, label=f"{prob_outer:.0%} predictive"
    )
    _, r_lo = steps(lo_i)
    _, r_hi = steps(hi_i)
    ax.fill_between(
        t, r_lo, r_hi, color="C3", alpha=0.4, lw=0, label=f"{prob_inner:.0%} predictive"
    )
    ax.plot(*steps(med), color="C3", lw=1.5, label="predictive median")
    if compass:
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
    ticks = np.arange(0, 360, 45)
    ax.set_xticks(np.deg2rad(ticks))
    if degrees:
        ax.set_xticklabels([f"{t}°" for t in ticks])
    else:
        ax.set_xticklabels(["0", "π/4", "π/2", "3π/4", "π", "5π/4", "3π/2", "7π/4"])
    rmax = float(np.sqrt(max(dens_obs.max(), hi_o.max())))
    rt = np.linspace(0, rmax, 4)[1:]
    ax.set_yticks(rt)
    ax.set_yticklabels([f"{v * v:.2g}" for v in rt], fontsize=7)
    ax.set_title(title or f"{var_name}: rose (area ∝ count) and posterior predictive")
    return ax
