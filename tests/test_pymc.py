"""Tests of the PyMC adapter (vm_ppl.pymc) on the C, NUMBA, JAX and PyTorch backends.

Every op on every backend against the core: tests/test_pymc_backends.py.
"""

from __future__ import annotations

import functools
import warnings
from importlib.util import find_spec

import jax
import numpy as np
import nutpie
import pymc as pm
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
import scipy.stats as st

import vm_ppl

# PyMC float64 models on PyTensor's JAX backend run with x64 (see conftest.py).
JAX_X64 = True

# PyTensor's PyTorch backend (torch is in the test extra; skipped, visibly, without it).
PYTORCH = pytest.param(
    "PYTORCH", marks=pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")
)
BACKENDS = ["FAST_RUN", "NUMBA", "JAX", PYTORCH]


@pytest.fixture(scope="module", autouse=True)
def vmp():
    """Import the adapter lazily and restore jax_enable_x64 afterwards.

    Importing PyTensor's JAX dispatch sets x64 from floatX; other test modules in the
    same session expect JAX's float32 default.
    """
    before = jax.config.jax_enable_x64
    import vm_ppl.pymc as module

    if find_spec("torch") is not None:
        import vm_ppl.pymc.pytorch  # noqa: F401  (opt-in PyTorch registrations)

    yield module
    jax.config.update("jax_enable_x64", before)


@functools.cache  # one compilation per backend (PyTorch's takes about 10 s)
def _logp_and_grads(vmp, mode, floatX="float64"):
    with pytensor.config.change_flags(floatX=floatX):
        x = pt.vector("x")
        mu = pt.scalar("mu")
        k = pt.vector("k")
        lp = vmp.vonmises_logp(x, mu, k)
        grads = pytensor.grad(lp.sum(), [x, mu, k])
        return pytensor.function([x, mu, k], [lp, *grads], mode=mode)


def test_dk_no_cancellation(vmp):
    # At the mode d/dk logp = 1 - A(k) ~ 1/(2k): relative accuracy, not absolute.
    f = _logp_and_grads(vmp, "FAST_RUN")
    k = np.array([1e4, 1e6, 1e8])
    dk = f(np.zeros(3), 0.0, k)[3]
    np.testing.assert_allclose(dk, 1 / (2 * k) + 1 / (8 * k**2), rtol=1e-8)


def test_grad_matches_finite_differences(vmp):
    f = _logp_and_grads(vmp, "FAST_RUN")
    x, mu, k = np.array([0.3, 2.0, -3.0]), 0.5, np.array([0.5, 3.0, 30.0])
    _, gx, gmu, gk = f(x, mu, k)
    h = 1e-6
    lp = lambda x, mu, k: f(x, mu, k)[0]  # noqa: E731
    np.testing.assert_allclose(gx, (lp(x + h, mu, k) - lp(x - h, mu, k)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(gk, (lp(x, mu, k + h) - lp(x, mu, k - h)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(gmu, -gx.sum(), rtol=1e-12)


@pytest.mark.parametrize("mode", BACKENDS)
def test_float32_finite_at_large_kappa(vmp, mode):
    f = _logp_and_grads(vmp, mode, floatX="float32")
    k = np.array([1.0, 100.0, 1e3, 1e5, 1e6], dtype=np.float32)
    x = np.full(5, 0.7 + 2 * np.pi, dtype=np.float32)
    out = f(x, np.float32(0.7), k)
    for i, o in enumerate(out):
        # (PyTensor's JAX Sum keeps its float64 accumulator dtype: the mu gradient.)
        if i != 2:
            assert np.asarray(o).dtype == np.float32
        assert np.all(np.isfinite(o))
    np.testing.assert_allclose(out[0], st.vonmises.logpdf(0.0, k.astype(float)), rtol=2e-5)


def test_numba_no_object_mode(vmp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = _logp_and_grads(vmp, "NUMBA")
        f(np.array([0.1, 6.0]), 0.2, np.array([1.0, 1e6]))
        y = vmp.VonMises.dist(0.3, 2.0, size=10)
        draws = pm.draw(y, random_seed=1, mode="NUMBA")
    assert np.all((draws >= -np.pi) & (draws < np.pi))


def test_pymc_check_logp(vmp):
    from pymc.testing import Domain, R, Rplus, check_logp

    # Unbounded value domain: the density is periodic, so values outside [-pi, pi] (here
    # up to 7) are valid and must match SciPy (whose logpdf is periodic too).
    angles = Domain([-np.inf, -4.0, -2.1, -0.01, 0.0, 1.0, 3.0, 5.0, 7.0, np.inf])
    check_logp(
        vmp.VonMises,
        angles,
        {"mu": R, "kappa": Rplus},
        lambda value, mu, kappa: st.vonmises.logpdf(value, kappa, loc=mu),
        n_samples=20,
    )


def test_logp_periodic_and_pm_vonmises_comparison(vmp):
    angles = np.array([0.1, 3.5, 6.2])  # in [0, 2 pi)
    ours = pm.logp(vmp.VonMises.dist(0.5, 4.0), angles).eval()
    np.testing.assert_allclose(ours, st.vonmises.logpdf(angles, 4.0, loc=0.5), rtol=1e-12)
    big = pm.logp(vmp.VonMises.dist(0.5, 1e5), 0.5).eval()
    assert np.isfinite(big)


@pytest.mark.parametrize("mode", BACKENDS)
def test_logp_dlogp_graph_per_backend(vmp, mode):
    # Speed (vm_ppl.bench.pymc_perf): on C and Numba the density and both gradients are one
    # fused loop over the angles with a single tan per angle (pm.VonMises: sin and cos), the
    # normaliser and 1 - A(kappa) evaluated once per kappa; on JAX the density stays the
    # core op (vm_ppl.log_prob); on PyTorch it stays a VonMisesElemwise, converted to one
    # broadcasting torch call (no per-angle vmap of the normaliser). Graph inspection only:
    # nothing is run.
    from pytensor.scalar.basic import Composite, Cos, Sin, Tan
    from pytensor.tensor.elemwise import Elemwise

    x, mu, k = pt.dvector("x"), pt.dscalar("mu"), pt.dscalar("k")
    lp = pm.logp(vmp.VonMises.dist(mu, k, shape=(50,)), x).sum()
    f = pytensor.function([x, mu, k], [lp, *pytensor.grad(lp, [mu, k])], mode=mode)
    elemwise = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, Elemwise)]
    has_logp_op = any(n.op.scalar_op is vmp.ops.vonmises_logp_scalar for n in elemwise)
    if mode == "JAX":
        assert has_logp_op
        return
    if mode == "PYTORCH":
        assert any(
            isinstance(n.op, vmp.ops.VonMisesElemwise)
            and n.op.scalar_op is vmp.ops.vonmises_logp_scalar
            for n in elemwise
        )
        return
    assert not has_logp_op
    per_angle = [n for n in elemwise if n.outputs[0].type.broadcastable == (False,)]
    assert len(per_angle) == 1
    (loop,) = per_angle
    assert isinstance(loop.op.scalar_op, Composite) and len(loop.outputs) == 3
    inner = [type(n.op) for n in loop.op.scalar_op.fgraph.apply_nodes]
    assert inner.count(Tan) == 1 and Sin not in inner and Cos not in inner


def test_bad_parameters_raise(vmp):
    from pymc.logprob.utils import ParameterValueError

    for kappa in (0.0, -1.0):
        with pytest.raises(ParameterValueError, match="kappa > 0"):
            pm.logp(vmp.VonMises.dist(0.0, kappa), 0.1).eval()


def test_support_point_and_transform(vmp):
    with pm.Model() as model:
        vmp.VonMises("z", mu=1.0, kappa=2.0, shape=3)
    ip = model.initial_point()
    np.testing.assert_allclose(ip["z_circular__"], np.ones(3))
    tr = vmp.circular
    np.testing.assert_allclose(tr.backward(pt.as_tensor(7.0)).eval(), 7.0 - 2 * np.pi)


@pytest.mark.parametrize("mode", [None, "NUMBA", "JAX"])
@pytest.mark.parametrize("kappa", [0.0, 1e-9, 1.2, 1e7, 1e9])
def test_draws_ks(vmp, mode, kappa):
    # Exact on every backend for every kappa (no uniform or normal limit): the core's
    # Best-Fisher proposal (default backend and NUMBA: vm_ppl.pymc._kernels.draw; JAX:
    # vm_ppl.sample). Reference: the core cdf (SciPy's is off by 3e-6 above kappa = 50).
    d = vmp.VonMises.dist(1.0, kappa, size=10_000)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The RandomType SharedVariables")
        x = pm.draw(d, random_seed=3, mode=mode)
    assert np.all((x >= -np.pi) & (x < np.pi))
    # Compare on the circle cut at mu - pi (where the cdf runs from 0 to 1).
    u = np.mod(x - 1.0 + np.pi, 2 * np.pi) - np.pi + 1.0
    with jax.enable_x64(True):
        assert st.kstest(u, lambda t: np.asarray(vm_ppl.cdf(t, 1.0, kappa))).pvalue > 0.01


@pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")
def test_pytorch_mode_model_and_no_random_variables(vmp):
    # A whole PyMC model's logp and dlogp on PyTorch equal the C backend's; random draws
    # are not convertible (PyTensor has no PyTorch RandomVariable dispatch; pm.VonMises
    # fails the same way), and that surfaces as PyTensor's NotImplementedError.
    # (A HalfNormal prior: pm.Gamma's own logp fails to run on PyTensor 2.38's PyTorch
    # backend, "'bool' object has no attribute 'shape'", with or without vm_ppl.)
    angles = np.array([0.1, 3.5, 6.2, 4.0])  # in [0, 2 pi)
    with pm.Model() as model:
        mu = vmp.VonMises("mu", 0.0, 0.1)
        kappa = pm.HalfNormal("kappa", 5.0)
        vmp.VonMises("y", mu, kappa, observed=angles)
    ip = model.initial_point()
    for build in (model.compile_logp, model.compile_dlogp):
        np.testing.assert_allclose(build(mode="PYTORCH")(ip), build()(ip), rtol=1e-12)
    with pytest.raises(NotImplementedError):
        pm.draw(vmp.VonMises.dist(0.0, 1.0), mode="PYTORCH")


@pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")
def test_pytorch_ops_stay_inside_the_compiled_graph(vmp):
    # Each kernel is a torch operator with a fake implementation, so torch.compile keeps
    # it in the graph; a torch.compiler.disable'd call would break the graph around it
    # (slower: BENCHMARKS.md, PyMC per backend). PyMC's own Check/SpecifyShape still
    # break it, so only breaks that name our code count.
    import torch._dynamo.utils

    torch._dynamo.utils.counters.clear()
    x = pt.dvector("x")
    mu, kappa = pt.dscalars("mu", "kappa")
    lp = pm.logp(vmp.VonMises.dist(mu, kappa), x).sum()
    outputs = [lp, *pytensor.grad(lp, [mu, kappa]), vmp.vonmises_cdf(x, mu, kappa).sum()]
    fn = pytensor.function([x, mu, kappa], outputs, mode="PYTORCH")
    fn(np.linspace(-3.0, 3.0, 50), 0.3, 2.0)
    breaks = " ".join(torch._dynamo.utils.counters["graph_break"])
    assert breaks  # PyMC's own breaks were recorded, so ours would have been too
    for ours in ("compiler.disable", "_pytorch_vonmises_elemwise", "pymc/pytorch.py"):
        assert ours not in breaks, breaks


def test_pytorch_graph_has_only_binary_sums_and_products(vmp):
    # PyTensor's PyTorch backend lowers a variadic Add/Mul through stack + prod, writing
    # every broadcast scalar out at full length (rewrites.local_binary_add_mul); the
    # gradient of the density has such products until the rewrite splits them. The
    # compiled function must still agree with the C backend.
    from pytensor.tensor.elemwise import Elemwise

    x = pt.dvector("x")
    mu, kappa = pt.dscalars("mu", "kappa")
    lp = pm.logp(vmp.VonMises.dist(mu, kappa, shape=(50,)), x).sum()
    outputs = [lp, *pytensor.grad(lp, [mu, kappa])]
    fn = pytensor.function([x, mu, kappa], outputs, mode="PYTORCH")
    variadic = [
        node
        for node in fn.maker.fgraph.apply_nodes
        if isinstance(node.op, Elemwise)
        and isinstance(node.op.scalar_op, ps.Add | ps.Mul)
        and len(node.inputs) > 2
    ]
    assert not variadic, variadic
    args = (np.linspace(-3.0, 3.0, 50), 0.3, 2.0)
    reference = pytensor.function([x, mu, kappa], outputs, mode="FAST_RUN")(*args)
    np.testing.assert_allclose(fn(*args), reference, rtol=1e-12)


def _wind_model(vmp):
    from vm_ppl.datasets import load_wind

    angles = load_wind()  # 310 real wind directions in [0, 2 pi)
    with pm.Model() as model:
        mu = pm.Uniform("mu", -np.pi, np.pi, default_transform=vmp.circular)
        kappa = pm.Gamma("kappa", 2.0, 0.2)
        vmp.VonMises("y", mu, kappa, observed=angles)
    return model


DRAWS = {"draws": 200, "tune": 200, "chains": 2}
QUIET = {"progressbar": False, "compute_convergence_checks": False}


@pytest.fixture(scope="module")
def reference_posterior(vmp):
    with _wind_model(vmp):
        idata = pm.sample(**DRAWS, cores=1, random_seed=1, **QUIET)
    return idata.posterior


def _circ_mean(a: np.ndarray) -> float:
    return float(np.angle(np.mean(np.exp(1j * a))))


def _check_close(post, ref, names=("mu", "kappa"), circular=("mu", "mu0")):
    """Posterior means agree within 4 Monte Carlo standard errors (ESS >= 100 assumed)."""
    for name in names:
        a, b = np.asarray(post[name]).ravel(), np.asarray(ref[name]).ravel()
        if name in circular:
            diff = np.angle(np.exp(1j * (_circ_mean(a) - _circ_mean(b))))
            a, b = (
                np.angle(np.exp(1j * (a - _circ_mean(a)))),
                np.angle(np.exp(1j * (b - _circ_mean(b)))),
            )
        else:
            diff = a.mean() - b.mean()
        se = np.sqrt(a.var() / 100 + b.var() / 100)
        assert abs(diff) < 4 * se, (name, diff, se)


def test_sample_default(reference_posterior):
    # Real data in [0, 2 pi) with a mean direction near 0.29 rad (16.6 deg).
    assert abs(_circ_mean(np.asarray(reference_posterior["mu"])) - 0.29) < 0.1
    assert 1.0 < float(reference_posterior["kappa"].mean()) < 2.5


def _sample_numba_mode(model):
    with model, warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode")
        return pm.sample(
            **DRAWS, cores=1, random_seed=4, compile_kwargs={"mode": "NUMBA"}, **QUIET
        ).posterior


def _sample_jax(model, nuts_sampler, **kwargs):
    with model:
        return pm.sample(
            **DRAWS, nuts_sampler=nuts_sampler, random_seed=2, nuts_sampler_kwargs=kwargs, **QUIET
        ).posterior


def _sample_nutpie(model, backend, gradient_backend="pytensor"):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode")
        compiled = nutpie.compile_pymc_model(
            model, backend=backend, gradient_backend=gradient_backend
        )
    return nutpie.sample(
        compiled,
        draws=DRAWS["draws"],
        tune=DRAWS["tune"],
        chains=DRAWS["chains"],
        seed=3,
        progress_bar=False,
    ).posterior


SAMPLERS = {
    "pymc-numba-mode": _sample_numba_mode,
    # numpyro's "parallel" chains (pm.sample's default) on one CPU device run one after
    # the other through the kernel that "vectorized" vmaps; that default path runs in the
    # README's PyMC quickstart (test_readme.py), so only "vectorized" is compared here.
    "numpyro-vectorized": lambda m: _sample_jax(m, "numpyro", chain_method="vectorized"),
    # PyMC's blackjax path pmaps "parallel" chains without numpyro's fallback, which needs
    # one device per chain (PyMC asks XLA for 100 host devices, too late once JAX is up).
    "blackjax": lambda m: _sample_jax(m, "blackjax", chain_method="vectorized"),
    "nutpie-numba": lambda m: _sample_nutpie(m, "numba"),
    "nutpie-jax-pytensor-grad": lambda m: _sample_nutpie(m, "jax", "pytensor"),
    "nutpie-jax-jax-grad": lambda m: _sample_nutpie(m, "jax", "jax"),
}


# JAX samplers spend 10-20 s each compiling NUTS with XLA (as for pm.VonMises): marked slow
# (deselect with -m "not slow"), still small (200 + 200 draws, 2 chains).
SLOW = {"numpyro-vectorized", "blackjax"}


@pytest.mark.parametrize(
    "sampler", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in SAMPLERS]
)
def test_samplers_agree_on_wind_data(vmp, reference_posterior, sampler):
    if sampler == "blackjax":
        pytest.importorskip("blackjax")  # the optional [blackjax] extra
    _check_close(SAMPLERS[sampler](_wind_model(vmp)), reference_posterior)


def test_prior_and_posterior_predictive(vmp, reference_posterior):
    model = _wind_model(vmp)
    with model:
        prior = pm.sample_prior_predictive(50, random_seed=1)
        post = pm.sample_posterior_predictive(
            reference_posterior.sel(draw=slice(0, 20)), random_seed=1, progressbar=False
        )
        post_jax = pm.sample_posterior_predictive(
            reference_posterior.sel(draw=slice(0, 20)),
            random_seed=1,
            progressbar=False,
            compile_kwargs={"mode": "JAX"},
        )
    for y in (
        prior.prior_predictive["y"],
        post.posterior_predictive["y"],
        post_jax.posterior_predictive["y"],
    ):
        assert np.all((y >= -np.pi) & (y < np.pi))
        assert y.shape[-1] == 310


@pytest.mark.parametrize("link", ["tan_half", "identity"])
def test_circular_regression(vmp, link):
    rng = np.random.default_rng(0)
    X = rng.standard_normal(80)
    g = 2 * np.arctan(0.8 * X) if link == "tan_half" else 0.8 * X
    y = np.mod(1.0 + g + rng.vonmises(0.0, 8.0, size=80), 2 * np.pi)
    init = vmp.mle_init(X, y, link=link)
    assert abs(np.angle(np.exp(1j * (init["mu0"] - 1.0)))) < 0.2
    assert abs(init["beta"][0] - 0.8) < 0.2
    model = vmp.circular_regression_model(X, y, link=link)
    assert {v.name for v in model.free_RVs} == {"mu0", "beta", "kappa"}
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    with pytest.raises(ValueError, match="link"):
        vmp.circular_regression_model(X, y, link="logit")


def _milwaukee():
    from vm_ppl.datasets import load_milwaukee

    data = load_milwaukee()
    ozone = data["ozone"]
    return (ozone - ozone.mean()) / ozone.std(), data["direction"]


@pytest.fixture(scope="module")
def milwaukee_reference(vmp):
    X, y = _milwaukee()
    _, idata = vmp.fit_circular_regression(
        X, y, draws=200, tune=200, chains=2, cores=1, compute_convergence_checks=False
    )
    return idata.posterior


def test_fit_circular_regression_milwaukee(milwaukee_reference):
    post = milwaukee_reference
    assert post.attrs["multimodal"] == 0
    # Johnson & Wehrly's data: direction turns with ozone (beta > 0), mean near 10 deg.
    assert abs(_circ_mean(np.asarray(post["mu0"])) - 0.17) < 0.15
    assert 0.2 < float(post["beta"].mean()) < 0.9


@pytest.mark.parametrize("sampler", [pytest.param("numpyro", marks=pytest.mark.slow), "nutpie"])
def test_fit_circular_regression_samplers_agree(vmp, milwaukee_reference, sampler):
    X, y = _milwaukee()
    kwargs = (
        {"nuts_sampler_kwargs": {"chain_method": "vectorized"}, "compute_convergence_checks": False}
        if sampler == "numpyro"
        else {}
    )
    _, idata = vmp.fit_circular_regression(
        X, y, sampler=sampler, draws=200, tune=200, chains=2, random_seed=5, **kwargs
    )
    post = idata.posterior
    post["beta1"] = post["beta"].isel(feature=0)
    ref = milwaukee_reference.assign(beta1=milwaukee_reference["beta"].isel(feature=0))
    _check_close(post, ref, names=("mu0", "beta1", "kappa"))


def test_detect_multimodality(vmp):
    rng = np.random.default_rng(0)
    one = {
        "mu0": 0.1 * rng.standard_normal((4, 100)) + 3.1,
        "beta": 0.1 * rng.standard_normal((4, 100, 1)) + 1.0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not vmp.detect_multimodality(one)["multimodal"]  # mu0 straddles +-pi
    two = {"mu0": one["mu0"].copy(), "beta": one["beta"].copy()}
    two["mu0"][1] -= np.pi  # a mirrored mode: mu0 + pi, -beta
    two["beta"][1] *= -1
    with pytest.warns(vmp.MultimodalPosteriorWarning, match="disagree"):
        diag = vmp.detect_multimodality(two)
    assert diag["multimodal"]
    with pytest.raises(ValueError, match="sampler"):
        vmp.fit_circular_regression([0.0, 1.0], [0.0, 1.0], sampler="stan")


@pytest.mark.parametrize("mode", BACKENDS)
def test_logcdf_icdf_backends(vmp, mode):
    """logcdf is periodic (the window [mu - pi, mu + pi) holding the value), never positive,
    and icdf inverts it down to denormal tails, on every backend."""
    x, q, k = pt.dvector("x"), pt.dvector("q"), pt.dscalar("k")
    d = vmp.VonMises.dist(0.4, k)
    lc, ic = pm.logcdf(d, x), pm.icdf(d, q)
    with warnings.catch_warnings():
        # Native code on NUMBA: any object-mode fallback is an error.
        warnings.simplefilter("error" if mode == "NUMBA" else "ignore")
        f = pytensor.function([x, q, k], [lc, ic, pytensor.grad(lc.sum(), x)], mode=mode)
    # Data in [0, 2 pi) too: 2 pi and 5.5 lie outside [0.4 - pi, 0.4 + pi).
    xs = np.array([-2.0, 0.0, 0.4, 1.5, 3.0, 0.4 + 2 * np.pi, 2 * np.pi, 5.5])
    window = (xs - 0.4 + np.pi) % (2 * np.pi) - np.pi + 0.4
    qs = np.array([0.0, 5e-324, 1e-300, 1e-20, 1e-9, 0.3, 0.5, 0.9, 1 - 1e-12, 1.0])
    for kappa in (0.5, 3.0, 30.0, 80.0, 1e250):
        with np.errstate(divide="ignore", invalid="ignore"):  # d log F / dx at F = 0
            lcdf, quant, g = (np.asarray(o) for o in f(xs, qs, kappa))
        assert np.all(lcdf <= 0.0)
        with jax.enable_x64(True):  # the core (SciPy is off by 3e-6 above kappa = 50)
            ref = np.asarray(vm_ppl.cdf(window, 0.4, kappa))
            back = np.asarray(vm_ppl.cdf(quant, 0.4, kappa))
            # Rounding the angle to a double moves the cdf by up to pdf * ulp(x).
            pdf_q = np.exp(np.asarray(vm_ppl.log_prob(quant, 0.4, kappa)))
        np.testing.assert_allclose(np.exp(lcdf), ref, rtol=1e-12, atol=1e-14)
        assert np.all(np.abs(back - qs) <= 2e-15 + 1e-10 * qs + pdf_q * np.abs(np.spacing(quant)))
        np.testing.assert_allclose(np.asarray(quant)[[0, -1]], [0.4 - np.pi, 0.4 + np.pi])
        if kappa < 1e3:
            pdf = np.exp(st.vonmises.logpdf(xs, kappa, loc=0.4))
            np.testing.assert_allclose(g, pdf / np.exp(lcdf), rtol=1e-9)


def test_censored_on_data_in_zero_two_pi(vmp):
    """pm.Censored needs a log-probability cdf: data in [0, 2 pi) gave NaN before."""
    rng = np.random.default_rng(3)
    y = rng.vonmises(0.5, 2.0, 50) % (2 * np.pi)
    upper = 5.0
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.5, 1.0)
        pm.Censored(
            "y", vmp.VonMises.dist(mu, 2.0), lower=None, upper=upper, observed=np.minimum(y, upper)
        )
    logp = m.compile_logp()(m.initial_point())
    assert np.isfinite(logp)


def test_import_does_not_import_torch():
    # The PyTorch registrations are opt-in (import vm_ppl.pymc.pytorch).
    import subprocess
    import sys

    code = "import sys, vm_ppl.pymc; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def _tan_half_link_graph(vmp, mode):
    x, e, a, k = pt.dvector("x"), pt.dvector("e"), pt.dscalar("a"), pt.dscalar("k")
    lp = vmp.vonmises_logp(x, a + 2.0 * pt.arctan(e), k)
    grads = pytensor.grad(lp.sum(), [x, e, a, k])
    return pytensor.function([x, e, a, k], [lp, *grads], mode=mode)


def test_tan_half_link_rewrite_removes_arctan_and_agrees(vmp):
    # C and Numba rewrite tan((x - a - 2 atan e)/2) into (T - e)/(1 + e T) (no arctan per
    # observation); JAX keeps the core op and arctan. Same values to 1e-9, including at
    # the antipode, where 1 + e T is within rounding of 0 (T = tan(h), e = -1/T, for an h
    # where NumPy rounds 1 + e T to exactly 0; compiled code may round it otherwise, and
    # the rewrite clips t so that t^2 stays finite either way).
    from pytensor.scalar.basic import ArcTan, Composite

    h = next(h for h in np.linspace(0.2, 1.3, 2000) if 1.0 + (-1.0 / np.tan(h)) * np.tan(h) == 0.0)
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(0, 2 * np.pi, 7), [0.3 + 2 * h, 0.3 + 2 * h]])
    e = np.concatenate([rng.standard_normal(7), [-1.0 / np.tan(h), -1.0 / np.tan(h) + 1e-15]])
    ref = {}
    for kappa in (0.3, 5.0, 1e4):
        ref[kappa] = [np.asarray(o) for o in _tan_half_link_graph(vmp, "JAX")(x, e, 0.3, kappa)]
        np.testing.assert_allclose(
            ref[kappa][0],
            st.vonmises.logpdf(x, kappa, loc=0.3 + 2 * np.arctan(e)),
            rtol=1e-9,
            atol=1e-9,
        )
    for mode in ("FAST_RUN", "NUMBA"):
        f = _tan_half_link_graph(vmp, mode)
        inner = [
            type(n.op.scalar_op) for n in f.maker.fgraph.apply_nodes if hasattr(n.op, "scalar_op")
        ]
        inner += [
            type(m.op)
            for n in f.maker.fgraph.apply_nodes
            if isinstance(getattr(n.op, "scalar_op", None), Composite)
            for m in n.op.scalar_op.fgraph.apply_nodes
        ]
        assert ArcTan not in inner, mode
        for kappa, expected in ref.items():
            got = f(x, e, 0.3, kappa)
            for g, r in zip(got, expected, strict=True):
                assert np.all(np.isfinite(g))
                np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-9 * max(1.0, kappa))


_GRAPHS_BEFORE_AFTER_IMPORT = r"""
import io, itertools, re
import numpy as np, pymc as pm, pytensor, pytensor.tensor as pt
from pytensor.compile.function.types import add_supervisor_to_fgraph
from pytensor.compile.io import In
from pytensor.compile.mode import get_mode
from pytensor.graph import FunctionGraph

def graphs():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(20), rng.uniform(-3.0, 3.0, 20)
    with pm.Model() as m:
        mu0 = pm.VonMises("mu0", 0.0, 0.1)
        beta = pm.Normal("beta", 0.0, 1.0)
        kappa = pm.Gamma("kappa", 2.0, 0.2)
        pm.VonMises("y", mu0 + 2.0 * pt.arctan(beta * x), kappa, observed=y)  # tan-half link
        pm.VonMises("z", mu0, kappa, observed=y)
    # The benchmark's graph (vm_ppl.bench.pymc_perf), where MergeModuloSpecifyShape
    # would merge the tan of the density with the SpecifyShape-lifted one of the gradient.
    xv, mu, k = pt.dvector("x"), pt.dscalar("mu"), pt.dscalar("k")
    lp = pm.logp(pm.VonMises.dist(mu, k, shape=(50,)), xv).sum()
    graphs = {"model": (m.value_vars, [m.logp(), m.dlogp()]),
              "bench": ([xv, mu, k], [lp, *pytensor.grad(lp, [mu, k])])}
    out = {}
    for (mode, (name, (inputs, outputs))) in itertools.product(
            ("FAST_RUN", "NUMBA", "JAX"), graphs.items()):
        fg = FunctionGraph(inputs, outputs, clone=True)
        add_supervisor_to_fgraph(fg, [In(v) for v in inputs])
        get_mode(mode).optimizer.rewrite(fg)
        buf = io.StringIO()
        pytensor.dprint(fg, file=buf, print_type=True)
        # Inner variables of Composite ops get counter-based names ('t12'): not structure.
        out[mode, name] = re.sub(r" 't\d+'", "", buf.getvalue())
    return out

before = graphs()
import vm_ppl.pymc  # noqa
after = graphs()
for mode in before:
    assert "VonMises" not in before[mode], mode  # no vm_ppl op in the graph
    assert before[mode] == after[mode], mode
print("unchanged")
"""


def test_pm_vonmises_graph_unchanged_by_import():
    # A model without vm_ppl ops (pm.VonMises, tan-half link included) and the benchmark's
    # pm.VonMises logp + dlogp graph are rewritten to the same graphs on the C, Numba and
    # JAX backends before and after `import vm_ppl.pymc` (MergeModuloSpecifyShape changed
    # the latter before the rewrites were gated).
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", _GRAPHS_BEFORE_AFTER_IMPORT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and "unchanged" in res.stdout, res.stderr[-3000:]


def _jax_rewritten_logp(model):
    from pymc.sampling.jax import _replace_shared_variables
    from pytensor.compile import mode as pt_mode
    from pytensor.graph import FunctionGraph

    fg = FunctionGraph(model.value_vars, _replace_shared_variables([model.logp()]), clone=True)
    pt_mode.JAX.optimizer.rewrite(fg)
    return fg


def _scalar_op_types(fg) -> set:
    """Types of the scalar ops of ``fg``'s Elemwise nodes, inside Composites too."""
    from pytensor.scalar.basic import Composite

    nodes = fg.apply_nodes
    types = {type(n.op.scalar_op) for n in nodes if hasattr(n.op, "scalar_op")}
    return types | {
        type(m.op)
        for n in nodes
        if isinstance(getattr(n.op, "scalar_op", None), Composite)
        for m in n.op.scalar_op.fgraph.apply_nodes
    }


def _regression_model(vmp, link: str, seed: int):
    """vm_ppl's regression on 40 simulated angles with two covariates."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 2))
    y = np.mod(1.0 + 2 * np.arctan(X @ [0.8, -0.5]) + rng.vonmises(0.0, 6.0, 40), 2 * np.pi)
    return vmp.circular_regression_model(X, y, link=link)


def _regression_point(model) -> dict:
    point = model.initial_point()
    point.update(
        {
            "mu0_circular__": np.float64(2.0),
            "beta": np.array([0.6, -0.3]),
            "kappa_log__": np.float64(1.5),
        }
    )
    return point


@pytest.mark.parametrize("link", ["tan_half", "identity"])
def test_tan_half_fusion_on_jax(vmp, link):
    # JAX mode: vonmises_logp(y, mu0 + 2 arctan(eta), k) becomes one VonMisesTanHalfLogp
    # (the core's tan_half_log_prob), with no arctan left; the identity link is not touched.
    # logp and its JAX gradient (what pm.sample(nuts_sampler="numpyro") uses) agree with
    # the C backend's logp and symbolic dlogp.
    from pymc.sampling.jax import get_jaxified_logp
    from pytensor.scalar.basic import ArcTan

    from vm_ppl.pymc.ops import VonMisesLogp, VonMisesTanHalfLogp

    model = _regression_model(vmp, link, seed=3)
    scalar_ops = _scalar_op_types(_jax_rewritten_logp(model))
    if link == "tan_half":
        assert VonMisesTanHalfLogp in scalar_ops
        assert VonMisesLogp not in scalar_ops and ArcTan not in scalar_ops
    else:
        assert VonMisesLogp in scalar_ops and VonMisesTanHalfLogp not in scalar_ops
    point = _regression_point(model)
    values = [np.asarray(point[v.name]) for v in model.value_vars]
    lp, grad = jax.value_and_grad(get_jaxified_logp(model))(values)  # (+logp)
    np.testing.assert_allclose(lp, model.compile_logp()(point), rtol=1e-12)
    dlogp = model.compile_dlogp()(point)
    np.testing.assert_allclose(np.concatenate([np.ravel(g) for g in grad]), dlogp, rtol=1e-9)


@pytest.mark.parametrize("link", ["tan_half", "identity"])
def test_pytensor_gradient_on_jax_runs_the_core_terms(vmp, link):
    # PyTensor's symbolic gradient converted by its JAX backend (nutpie backend="jax" with
    # its default gradient_backend="pytensor"; compile_kwargs={"mode": "JAX"}): the
    # gradient's per-angle terms are vm_ppl ops running the density's own core computation
    # (no tan or arctan left; tan-half terms on the tan-half link), XLA evaluates that
    # computation once for value and gradient (one Cody-Waite rounding in the compiled
    # program), and logp and gradient agree with the C backend's.
    from pymc.sampling.jax import _replace_shared_variables
    from pytensor.compile import mode as pt_mode
    from pytensor.graph import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.scalar.basic import ArcTan, Tan

    from vm_ppl.pymc import ops

    model = _regression_model(vmp, link, seed=4)
    lp = model.logp()
    outputs = _replace_shared_variables([lp, *pytensor.grad(lp, model.value_vars)])
    fg = FunctionGraph(model.value_vars, outputs, clone=True)
    pt_mode.JAX.optimizer.rewrite(fg)
    scalar_ops = _scalar_op_types(fg)
    assert Tan not in scalar_ops and ArcTan not in scalar_ops
    terms = {ops.VonMisesHalfSinSq, ops.VonMisesHalfSinCos}
    tan_half_terms = {ops.VonMisesTanHalfSinSq, ops.VonMisesTanHalfSinCos}
    if link == "tan_half":
        assert tan_half_terms <= scalar_ops and not terms & scalar_ops
    else:
        assert terms <= scalar_ops and not tan_half_terms & scalar_ops
    point = _regression_point(model)
    values = [jax.numpy.asarray(point[v.name]) for v in model.value_vars]
    fn = jax.jit(jax_funcify(fg))
    assert fn.lower(*values).compile().as_text().count("round-nearest-even(") == 1
    out = fn(*values)
    np.testing.assert_allclose(out[0], model.compile_logp()(point), rtol=1e-12)
    grad = np.concatenate([np.ravel(g) for g in out[1:]])
    np.testing.assert_allclose(grad, model.compile_dlogp()(point), rtol=1e-9)


@pytest.mark.parametrize(
    "name", ["half_sin_sq", "half_sin_cos", "tan_half_sin_sq", "tan_half_sin_cos"]
)
def test_gradient_term_ops_and_their_gradients(vmp, name):
    # The gradient-term ops on the backends that run their kernels or core directly
    # (C through FAST_COMPILE's unrewritten graph, JAX), against NumPy; their own symbolic
    # gradients (second derivatives of the density) against finite differences.
    from pytensor.gradient import verify_grad

    from vm_ppl.pymc import ops

    op = pt.elemwise.Elemwise(getattr(ops, f"{name}_scalar"))
    rng = np.random.default_rng(8)
    x = rng.uniform(-7.0, 7.0, 9)
    mu = rng.uniform(-3.0, 3.0, 9)
    eta = rng.standard_normal(9) * 2.0
    d = x - mu - (2 * np.arctan(eta) if name.startswith("tan_half") else 0.0)
    expected = np.sin(d / 2) ** 2 if name.endswith("sq") else np.sin(d) / 2
    args = [x, mu, eta] if name.startswith("tan_half") else [x, mu]
    inputs = [pt.dvector() for _ in args]
    for mode in ("FAST_COMPILE", "JAX"):
        got = pytensor.function(inputs, op(*inputs), mode=mode)(*args)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    verify_grad(op, args, rng=rng, mode="FAST_RUN", abs_tol=1e-6, rel_tol=1e-6)


def test_ops_fused_into_a_sum_compile_on_the_c_backend(vmp):
    """``sum(op(x))``: PyTensor fuses the op into a CAReduce, whose C code is compiled
    without the scalar op's support code (that used to fail: undeclared kernel-address
    helper); each op must compile and match its elementwise evaluation."""
    x = pt.dvector("x")
    xs = np.array([0.3, 1.7, 4.0, 40.0])
    for expr in (
        vmp.one_minus_bessel_ratio(x),
        vmp.bessel_ratio_derivative(x),
        vmp.vonmises_cdf(x, 0.1, 2.0),
        vmp.vonmises_logp(x, 0.1, x),
    ):
        total = pytensor.function([x], expr.sum(), mode="FAST_RUN")(xs)
        each = pytensor.function([x], expr, mode="FAST_RUN")(xs)
        np.testing.assert_allclose(total, each.sum(), rtol=1e-13)
