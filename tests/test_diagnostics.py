"""Circular diagnostics, PIT, PPC plot and LOO (:mod:`vm_ppl.diagnostics`).

Run: ``python -m pytest -q tests/test_diagnostics.py`` (about 40 s on 2 CPUs).
"""

from __future__ import annotations

import subprocess
import sys

import arviz as az
import numpy as np
import pytest
from scipy import integrate, stats

from vm_ppl import diagnostics as vd


def _ar1_angles(
    centre: float,
    chains: int = 4,
    draws: int = 800,
    phi: float = 0.7,
    sd: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """Autocorrelated draws of an angle around ``centre``, wrapped into [-pi, pi)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + sd * np.sqrt(1 - phi**2) * rng.standard_normal(chains)
    return np.mod(x + centre + np.pi, 2 * np.pi) - np.pi


@pytest.mark.parametrize("method", ["bulk", "tail", "mean"])
def test_ess_rhat_rotation_invariant(method):
    theta = _ar1_angles(0.3, sd=0.8)
    base_ess = vd.ess({"a": theta}, circ_var_names="a", method=method)["a"].item()
    base_rhat = vd.rhat({"a": theta}, circ_var_names=["a"])["a"].item()
    for rot in (1.0, np.pi - 0.3, 2.5, -2.0, 10.0):
        rotated = np.mod(theta + rot + np.pi, 2 * np.pi) - np.pi
        e = vd.ess({"a": rotated}, circ_var_names="a", method=method)["a"].item()
        r = vd.rhat({"a": rotated}, circ_var_names="a")["a"].item()
        assert e == pytest.approx(base_ess, rel=1e-9)
        assert r == pytest.approx(base_rhat, rel=1e-9)


def test_linear_variables_are_exactly_arviz():
    rng = np.random.default_rng(1)
    post = {
        "a": _ar1_angles(3.0),
        "b": rng.standard_normal((4, 800)).cumsum(axis=1) * 0.05,
        "c": rng.standard_normal((4, 800, 3)),
    }
    for method in ("bulk", "tail"):
        ours = vd.ess(post, circ_var_names="a", method=method)
        ref = az.ess(post, method=method)
        for v in ("b", "c"):
            np.testing.assert_array_equal(ours[v].values, ref[v].values)
    ours, ref = vd.rhat(post, circ_var_names="a"), az.rhat(post)
    for v in ("b", "c"):
        np.testing.assert_array_equal(ours[v].values, ref[v].values)


def test_chain_straddling_pi():
    # Draws around pi: raw values jump between -pi and pi, ArviZ's linear ESS sees two
    # clusters; ours equals ArviZ's ESS of the same draws rotated to be centred at 0.
    theta = _ar1_angles(np.pi, sd=0.4, seed=3)
    assert np.mean(theta > 0) == pytest.approx(0.5, abs=0.15)  # really straddles
    rotated = np.mod(theta, 2 * np.pi) - np.pi  # theta - pi, wrapped: no crossing
    assert np.abs(rotated).max() < 2.5
    for method in ("bulk", "tail"):
        raw = az.ess({"a": theta}, method=method)["a"].item()
        ours = vd.ess({"a": theta}, circ_var_names="a", method=method)["a"].item()
        ref = az.ess({"a": rotated}, method=method)["a"].item()
        assert ours == pytest.approx(ref, rel=1e-9)
        assert abs(raw - ours) > 0.05 * ours, (raw, ours)
    ours_r = vd.rhat({"a": theta}, circ_var_names="a")["a"].item()
    assert ours_r == pytest.approx(az.rhat({"a": rotated})["a"].item(), rel=1e-9)
    assert ours_r < 1.01


def test_rhat_flags_chains_at_different_directions():
    theta = _ar1_angles(0.0, sd=0.2)
    theta[:2] = np.mod(theta[:2] + 1.5 + np.pi, 2 * np.pi) - np.pi
    assert vd.rhat({"a": theta}, circ_var_names="a")["a"].item() > 1.5


def test_check_convergence_warns_on_the_circle_only():
    import warnings

    straddling = {"a": _ar1_angles(np.pi, sd=0.4, seed=3)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vd.check_convergence(straddling, circ_var_names="a") < 1.01
    split = _ar1_angles(0.0, sd=0.2)
    split[:2] = np.mod(split[:2] + 1.5 + np.pi, 2 * np.pi) - np.pi
    with pytest.warns(vd.ConvergenceWarning, match="a on the circle"):
        assert vd.check_convergence({"a": split}, circ_var_names=["a"]) > 1.5


def test_summary_replaces_circular_ess_rhat_only():
    rng = np.random.default_rng(2)
    post = {"mu": _ar1_angles(np.pi, sd=0.4, seed=4), "k": rng.gamma(5.0, 1.0, (4, 800))}
    ours = vd.summary(post, circ_var_names=["mu"])
    ref = az.summary(post, circ_var_names=["mu"])
    assert ours.attrs["circular"] == ["mu"]
    np.testing.assert_array_equal(ours.loc["k"].to_numpy(), ref.loc["k"].to_numpy())
    for col in ("mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean"):
        assert ours.loc["mu", col] == ref.loc["mu", col]
    e = vd.ess(post, circ_var_names="mu")["mu"].item()
    assert ours.loc["mu", "ess_bulk"] == pytest.approx(round(e), abs=1)
    assert ours.loc["mu", "ess_bulk"] != ref.loc["mu", "ess_bulk"]
    with pytest.raises(KeyError, match="circ_var_names"):
        vd.summary(post, circ_var_names=["nope"])


def test_circular_pit_matches_scipy_and_quadrature():
    y = np.array([-3.0, -1.0, 0.2, 2.0, 3.1, 6.0])
    mu, kappa = 2.5, 3.0
    c = mu  # predictive mean direction of one von Mises
    x = c + np.mod(y - c + np.pi, 2 * np.pi) - np.pi
    ref = stats.vonmises.cdf(x, kappa, loc=mu) - stats.vonmises.cdf(c - np.pi, kappa, loc=mu)
    np.testing.assert_allclose(vd.circular_pit(y, [mu], [kappa]), ref, atol=1e-7)
    # a two-component mixture, window centred at its mean direction, against quadrature
    loc, kap, w = np.array([[0.3, 2.0]]), np.array([[8.0, 0.7]]), np.array([[0.6, 0.4]])
    from scipy.special import i0e, i1e

    a = i1e(kap[0]) / i0e(kap[0])
    cm = np.angle(np.sum(w[0] * a * np.exp(1j * loc[0])))

    def dens(t):
        return sum(
            wk * stats.vonmises.pdf(t, kk, loc=lk)
            for wk, kk, lk in zip(w[0], kap[0], loc[0], strict=True)
        )

    xq = cm + np.mod(y - cm + np.pi, 2 * np.pi) - np.pi
    quad = [integrate.quad(dens, cm - np.pi, xi, epsabs=1e-12)[0] for xi in xq]
    np.testing.assert_allclose(vd.circular_pit(y, loc, kap, mix_weights=w), quad, atol=1e-7)
    with pytest.raises(ValueError, match="concentration"):
        vd.circular_pit(y, [mu], [-1.0])


# ------------------------------------------------------------- fitted models (NumPyro)


def _mcmc(model, init, draws=200):
    from numpyro.infer import MCMC, NUTS, init_to_value

    # jit_model_args: one compilation serves several data sets of the same size
    return MCMC(
        NUTS(model, init_strategy=init_to_value(values=init)),
        num_warmup=draws,
        num_samples=draws,
        num_chains=2,
        chain_method="sequential",
        progress_bar=False,
        jit_model_args=True,
    )


@pytest.fixture(scope="module")
def fits():
    """name -> (y, idata, samples, mcmc); "good" keeps its MCMC for the PPC test."""
    import jax
    import jax.numpy as jnp

    from vm_ppl.cli import MIXTURE_INIT, ONE_INIT, von_mises_mixture_model, von_mises_model

    rng = np.random.default_rng(7)
    n = 200
    good = np.mod(rng.vonmises(1.0, 4.0, n), 2 * np.pi)
    comp = rng.random(n) < 0.6
    mix = np.where(comp, rng.vonmises(0.3, 20.0, n), rng.vonmises(2.5, 1.0, n))
    mix = np.mod(mix, 2 * np.pi)
    out = {}
    one = _mcmc(von_mises_model, ONE_INIT)
    two = _mcmc(von_mises_mixture_model, MIXTURE_INIT)
    for name, mcmc, y in (("misfit", one, mix), ("mixture", two, mix), ("good", one, good)):
        mcmc.run(jax.random.key(0), jnp.asarray(y))
        out[name] = (y, az.from_numpyro(mcmc), mcmc.get_samples(), mcmc)
    return out


def _loo_pit(fit, mixture=False):
    _, idata, s, _ = fit
    return vd.loo_circular_pit(
        idata,
        "y",
        np.asarray(s["mu"]),
        np.asarray(s["kappa"]),
        mix_weights=np.asarray(s["w"]) if mixture else None,
    )


def test_loo_pit_uniform_for_fitted_model_not_for_misfit(fits):
    # KS tests at fixed seeds; measured p-values 0.98 (fitted), 0.74 (mixture), 1e-6 (misfit)
    pit_good = _loo_pit(fits["good"])
    pit_bad = _loo_pit(fits["misfit"])
    pit_mix = _loo_pit(fits["mixture"], mixture=True)
    assert stats.kstest(pit_good, "uniform").pvalue > 0.05
    assert stats.kstest(pit_mix, "uniform").pvalue > 0.05
    assert stats.kstest(pit_bad, "uniform").pvalue < 1e-4


def test_loo_prefers_mixture_on_mixture_data(fits):
    one, two = fits["misfit"][1], fits["mixture"][1]
    assert one.log_likelihood["y"].shape == (2, 200, 200)
    cmp = az.compare({"one": one, "mixture": two})
    assert cmp.index[0] == "mixture"
    assert cmp.loc["one", "elpd_diff"] > 4 * cmp.loc["one", "dse"]


def test_plot_circular_ppc_area_proportional(fits):
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from numpyro.infer import Predictive

    from vm_ppl.cli import von_mises_model

    y, _, _, mcmc = fits["good"]
    pred = Predictive(von_mises_model, mcmc.get_samples(group_by_chain=True), batch_ndims=2)(
        jax.random.key(1), n=y.size
    )
    idata = az.from_numpyro(mcmc, posterior_predictive=pred)
    ax = vd.plot_circular_ppc(idata, "y", bins=24, num_pp_samples=100, degrees=False, compass=False)
    heights = np.array([p.get_height() for p in ax.patches[:24]])
    counts = np.histogram(y, np.linspace(0, 2 * np.pi, 25))[0]
    np.testing.assert_allclose(heights**2 * 200 * (2 * np.pi / 24), counts, atol=1e-9)
    assert ax.get_theta_direction() == 1
    with pytest.raises(KeyError, match="posterior_predictive"):
        vd.plot_circular_ppc(az.from_numpyro(mcmc), "y")
    ax2 = vd.plot_pit_ecdf(_loo_pit(fits["good"]))
    assert ax2.get_xlabel() == "PIT"
    plt.close("all")


# -------------------------------------------------------- log_likelihood (PyMC, nutpie)


@pytest.fixture(scope="module")
def pymc_model():
    import pymc as pm

    import vm_ppl.pymc as vmp

    rng = np.random.default_rng(3)
    y = np.mod(rng.vonmises(2.0, 3.0, 60), 2 * np.pi)
    with pm.Model() as model:
        mu = pm.Uniform("mu", -np.pi, np.pi, default_transform=vmp.circular)
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        vmp.VonMises("y", mu, kappa, observed=y)
    return model


def test_loo_pymc_log_likelihood(pymc_model):
    import pymc as pm

    with pymc_model:
        idata = pm.sample(
            draws=150,
            tune=150,
            chains=2,
            cores=1,
            random_seed=0,
            progressbar=False,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": True},
        )
    assert idata.log_likelihood["y"].shape == (2, 150, 60)
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.p_loo < 5


def test_loo_nutpie_log_likelihood(pymc_model):
    import nutpie
    import pymc as pm

    compiled = nutpie.compile_pymc_model(pymc_model, backend="numba")
    idata = nutpie.sample(compiled, draws=150, tune=150, chains=2, seed=0, progress_bar=False)
    pm.compute_log_likelihood(idata, model=pymc_model, progressbar=False)
    assert idata.log_likelihood["y"].shape == (2, 150, 60)
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.p_loo < 5


def test_demo_compile_clock_merges_nested_events(monkeypatch):
    # nested / overlapping compile events count once; only the part inside the window counts
    from vm_ppl.cli import _JaxCompileClock

    monkeypatch.setattr(
        _JaxCompileClock,
        "_intervals",
        [(1.0, 3.0), (1.5, 2.0), (2.5, 4.0), (6.0, 7.0), (9.0, 12.0)],
    )
    assert _JaxCompileClock.seconds(0.0, 10.0) == pytest.approx(3.0 + 1.0 + 1.0)
    assert _JaxCompileClock.seconds(2.0, 6.5) == pytest.approx(2.0 + 0.5)


def test_import_vm_ppl_does_not_import_arviz_or_matplotlib():
    code = (
        "import sys, vm_ppl; bad = [m for m in ('arviz', 'matplotlib', 'xarray') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
