"""vm_ppl.pymc.bambi: the Bambi family on vm_ppl's VonMises, against Bambi's built-in one.

Posterior comparisons: two NUTS runs agree when, for every parameter,
|mean_1 - mean_2| < 4 * sqrt(mcse_1**2 + mcse_2**2) (ArviZ's MCSE of the mean; a false
alarm per parameter has probability about 6e-5 for Gaussian Monte Carlo error). Fixed seeds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

bmb = pytest.importorskip("bambi")

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from vm_ppl.pymc.bambi import FAMILY_NAME, von_mises_family  # noqa: E402

JAX_X64 = True  # PyMC's numpyro sampler runs the float64 model (see conftest)
README = Path(__file__).resolve().parents[1] / "README.md"
TWO_PI = 2.0 * np.pi
FIT = {"draws": 1000, "tune": 500, "chains": 2, "cores": 1, "progressbar": False}
QUICK = {"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False}
# The same priors for both families, so the posteriors must agree (kappa: our default).
PRIORS = {
    "Intercept": bmb.Prior("Normal", mu=0.0, sigma=1.0),
    "x": bmb.Prior("Normal", mu=0.0, sigma=1.0),
    "kappa": bmb.Prior("LogNormal", mu=1.0, sigma=2.0),
}
PARAMS = ("Intercept", "x", "kappa")


def _data(seed: int, n: int, kappa: float, link: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    eta = 0.4 + 0.5 * x
    mu = 2.0 * np.arctan(eta) if link == "tan_half" else eta
    y = np.angle(np.exp(1j * (mu + rng.vonmises(0.0, kappa, n))))  # in [-pi, pi]
    return pd.DataFrame({"x": x, "y": y})


def _fit(df, family, link, seed, **kw):
    model = bmb.Model("y ~ x", df, family=family, link=link, priors=PRIORS)
    return model, model.fit(random_seed=seed, **{**FIT, **kw})


def _agree(a, b, names=PARAMS):
    for name in names:
        ma, mb = (float(i.posterior[name].mean()) for i in (a, b))
        ea, eb = (
            float(az.mcse(i.posterior[name], method="mean").to_array().squeeze()) for i in (a, b)
        )
        assert abs(ma - mb) < 4.0 * np.hypot(ea, eb), (name, ma, mb, ea, eb)


# Moderate kappa, angles in [-pi, pi]: both links, ours against the built-in family.
@pytest.fixture(scope="module", params=["tan_half", "identity"])
def moderate(request):
    link = request.param
    df = _data(0, 80, 4.0, link)
    builtin_link = "tan_2" if link == "tan_half" else "identity"
    _, ref = _fit(df, "vonmises", builtin_link, seed=1)
    ours_model, ours = _fit(df, von_mises_family(link), link, seed=2)
    shifted_df = df.assign(y=np.mod(df["y"], TWO_PI))  # the same angles in [0, 2 pi)
    shifted_model, shifted = _fit(shifted_df, von_mises_family(link), link, seed=3)
    return link, df, shifted_df, ref, ours, ours_model, shifted, shifted_model


def test_matches_builtin_inside_pi(moderate):
    _, _, _, ref, ours, *_ = moderate
    _agree(ref, ours)


def test_shifted_data_same_posterior_builtin_fails(moderate):
    link, df, shifted_df, _, ours, ours_model, shifted, shifted_model = moderate
    assert (shifted_df["y"] > np.pi).sum() > 10
    # Ours: the same log-density at every point (the likelihood is 2 pi-periodic) ...
    f0, f1 = (m.backend.model.compile_logp() for m in (ours_model, shifted_model))
    rng = np.random.default_rng(5)
    for _ in range(5):
        point = {"Intercept": rng.normal(), "x": rng.normal(), "kappa_log__": rng.normal()}
        assert f1(point) == pytest.approx(f0(point), rel=1e-10, abs=1e-9)
    # ... and the same posterior from an independent run.
    _agree(ours, shifted)
    # The built-in family: the log-likelihood of the shifted data is -inf at every point
    # (pm.VonMises is -inf outside [-pi, pi]), so pm.sample cannot start.
    builtin = bmb.Model(
        "y ~ x",
        shifted_df,
        family="vonmises",
        link="tan_2" if link == "tan_half" else "identity",
        priors=PRIORS,
    )
    builtin.build()
    assert builtin.backend.model.point_logps()["y"] == -np.inf


def test_likelihood_against_scipy(moderate):
    # Our family's observed log-likelihood at a point equals scipy.stats.vonmises with
    # mu = g^{-1}(b0 + b1 x), for data in [-pi, pi] and in [0, 2 pi). (In the PyMC
    # model Bambi's intercept is that of the centred covariate.)
    link, df, shifted_df, _, _, ours_model, _, shifted_model = moderate
    b0, b1, kappa = 0.3, -0.7, 3.5
    x = df["x"].to_numpy()
    eta = b0 + b1 * (x - x.mean())
    mu = 2.0 * np.arctan(eta) if link == "tan_half" else eta
    expected = stats.vonmises.logpdf(df["y"].to_numpy(), kappa, loc=mu).sum()
    for model in (ours_model, shifted_model):
        pm_model = model.backend.model
        f = pm_model.compile_fn(pm_model.logp(vars=pm_model.observed_RVs), on_unused_input="ignore")
        got = f({"Intercept": b0, "x": b1, "kappa_log__": np.log(kappa)})
        assert got == pytest.approx(expected, rel=1e-12)


def test_predictions_wrapped(moderate):
    link, _, _, _, _, _, shifted, shifted_model = moderate
    idata = shifted_model.predict(shifted, kind="response_params", inplace=False)
    mu = idata.posterior["mu"].to_numpy()
    assert mu.min() >= -np.pi and mu.max() < np.pi
    # the mean direction is the inverse link of the linear predictor, wrapped
    post = shifted.posterior
    x = shifted_model.data["x"].to_numpy()
    eta = post["Intercept"].to_numpy()[..., None] + post["x"].to_numpy()[..., None] * x
    expected = 2.0 * np.arctan(eta) if link == "tan_half" else np.angle(np.exp(1j * eta))
    np.testing.assert_allclose(np.exp(1j * mu), np.exp(1j * expected), atol=1e-12)
    pps = shifted_model.predict(shifted, kind="response", inplace=False, random_seed=0)
    y = pps.posterior_predictive["y"].to_numpy()
    assert y.shape == mu.shape and y.min() >= -np.pi and y.max() < np.pi


# kappa above 1000: the built-in's log-density is -inf there, ours recovers kappa.
KAPPA_BIG = 2000.0


@pytest.fixture(scope="module")
def concentrated():
    df = _data(7, 60, KAPPA_BIG, "tan_half")
    builtin = bmb.Model("y ~ x", df, family="vonmises", link="tan_2", priors=PRIORS)
    builtin.build()
    ours_model, ours = _fit(df, von_mises_family("tan_half"), "tan_half", seed=9)
    return builtin, ours_model, ours


def test_large_kappa_builtin_fails_ours_recovers(concentrated):
    builtin, ours_model, ours = concentrated
    # pm.VonMises: log(i0(kappa)) overflows from kappa ~ 714, so the built-in's
    # log-density is -inf for every kappa above (its posterior cannot reach the truth),
    # while ours is finite there and larger at the truth than at kappa = 700.
    ref_logp = builtin.backend.model.compile_logp()
    our_logp = ours_model.backend.model.compile_logp()
    # the true coefficients (Bambi's PyMC model holds the centred covariate's intercept)
    point = {"Intercept": 0.4 + 0.5 * float(ours_model.data["x"].mean()), "x": 0.5}
    for k in (720.0, KAPPA_BIG, 1e4):
        assert ref_logp({**point, "kappa_log__": np.log(k)}) == -np.inf
        assert np.isfinite(our_logp({**point, "kappa_log__": np.log(k)}))
    assert our_logp({**point, "kappa_log__": np.log(KAPPA_BIG)}) > our_logp(
        {**point, "kappa_log__": np.log(700.0)}
    )
    # Ours: the truth inside the central 95 % interval, the whole interval above the
    # built-in's wall; chains agree.
    k = ours.posterior["kappa"].to_numpy().ravel()
    lo, hi = np.quantile(k, [0.025, 0.975])
    assert lo < KAPPA_BIG < hi and lo > 720.0, (lo, hi)
    assert float(az.rhat(ours, var_names=["kappa"])["kappa"]) < 1.05


# Group term, kappa formula, every NUTS backend (short runs: they must run and be sane).
@pytest.fixture(scope="module")
def grouped_data():
    rng = np.random.default_rng(11)
    n, groups = 120, 4
    g = rng.integers(0, groups, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    u = np.array([-0.3, 0.0, 0.2, 0.4])
    mu = 2.0 * np.arctan(0.3 + 0.6 * x + u[g])
    kappa = np.exp(1.5 + 0.5 * z)
    y = np.mod(mu + rng.vonmises(0.0, kappa), TWO_PI)  # recorded in [0, 2 pi)
    return pd.DataFrame({"y": y, "x": x, "z": z, "station": [f"s{i}" for i in g]})


@pytest.mark.parametrize("method", ["pymc", "numpyro", "nutpie"])
def test_group_term_kappa_formula_every_sampler(grouped_data, method):
    model = bmb.Model(
        bmb.Formula("y ~ x + (1|station)", "kappa ~ z"),
        grouped_data,
        family=von_mises_family("tan_half"),
    )
    idata = model.fit(inference_method=method, random_seed=12, **QUICK)
    post = idata.posterior
    assert post["1|station"].shape[-1] == 4
    assert np.isfinite(post["kappa_z"]).all()
    # 120 observations: slope and kappa slope land near the truth (0.6, 0.5)
    assert abs(float(post["x"].mean()) - 0.6) < 0.3
    assert abs(float(post["kappa_z"].mean()) - 0.5) < 0.3
    model.predict(idata, kind="response")
    y = idata.posterior_predictive["y"].to_numpy()
    assert y.min() >= -np.pi and y.max() < np.pi


def test_bad_link_and_no_global_change():
    with pytest.raises(ValueError, match="link"):
        von_mises_family("logit")
    df = pd.DataFrame({"y": [0.1, 0.2, 0.3], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="probit"):
        bmb.Model("y ~ x", df, family=von_mises_family(), link="probit")
    # Bambi's own tables and its built-in family are untouched by importing ours.
    from bambi.backend.pymc import PyMCModel
    from bambi.families.link import LINKS

    assert not [k for k in (*LINKS, *PyMCModel.INVLINKS) if k.startswith("vm_ppl")]
    builtin = bmb.Model("y ~ x", df, family="vonmises").family
    assert builtin.name == "vonmises" and builtin.likelihood.dist is None
    assert von_mises_family().name == FAMILY_NAME


def test_readme_quickstart_runs():
    text = README.read_text()
    m = re.search(r"<!-- quickstart-bambi:.*?-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README block quickstart-bambi not found"
    code = m.group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    exec(compile(code, "README:quickstart-bambi", "exec"), namespace)
    mu = namespace["idata"].posterior["mu"].to_numpy()
    assert mu.min() >= -np.pi and mu.max() < np.pi
