"""entropy, circular_variance, kl_divergence, circular summaries and fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from scipy.special import i0e, i1e

from vm_ppl.fitting import circular_mean, fit, mean_resultant_length
from vm_ppl.properties import circular_variance, entropy, kl_divergence


@pytest.mark.parametrize("k", [0.0, 1e-6, 0.3, 2.0, 40.0, 500.0])
def test_entropy_matches_scipy_and_quadrature(x64, k):
    ref = st.vonmises.entropy(k) if k > 0 else np.log(2 * np.pi)
    np.testing.assert_allclose(entropy(k), ref, rtol=1e-10)
    if k <= 40:
        quad = si.quad(
            lambda t: -st.vonmises.pdf(t, k) * st.vonmises.logpdf(t, k), -np.pi, np.pi, epsabs=1e-13
        )[0]
        np.testing.assert_allclose(entropy(k), quad, rtol=1e-9)


def test_entropy_large_k_float32():
    """Asymptotically 0.5 log(2 pi e / k); finite and accurate in float32 at k = 1e8."""
    k = 1e8
    np.testing.assert_allclose(
        entropy(jnp.float32(k)), 0.5 * np.log(2 * np.pi * np.e / k), rtol=1e-5
    )


def test_circular_variance(x64):
    ks = np.array([0.0, 0.5, 5.0, 1e3, 1e7])
    np.testing.assert_allclose(circular_variance(ks)[:3], 1 - i1e(ks[:3]) / i0e(ks[:3]), rtol=1e-13)
    np.testing.assert_allclose(circular_variance(1e7), 1 / 2e7 + 1 / 8e14, rtol=1e-12)


def _kl_quad(mp_, kp, mq, kq):
    def f(t):
        lp, lq = st.vonmises.logpdf(t, kp, loc=mp_), st.vonmises.logpdf(t, kq, loc=mq)
        return st.vonmises.pdf(t, kp, loc=mp_) * (lp - lq)

    return si.quad(f, -np.pi, np.pi, epsabs=1e-13, limit=200)[0]


@pytest.mark.parametrize(
    "args",
    [
        (0.0, 1.0, 0.0, 1.0),
        (0.3, 2.0, -1.0, 0.5),
        (2.0, 10.0, -2.5, 3.0),
        (0.0, 0.0, 1.0, 4.0),
        (1.0, 20.0, 1.1, 25.0),
    ],
)
def test_kl_matches_quadrature(x64, args):
    np.testing.assert_allclose(kl_divergence(*args), _kl_quad(*args), rtol=1e-8, atol=1e-12)


def test_kl_zero_for_equal_and_nan_for_bad():
    assert float(kl_divergence(0.4, 1e6, 0.4, 1e6)) == 0.0
    assert np.isnan(kl_divergence(0.0, -1.0, 0.0, 1.0))
    assert np.isnan(kl_divergence(0.0, 1.0, 0.0, np.nan))


@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf])
def test_bad_concentration(bad):
    assert np.isnan(entropy(bad)) and np.isnan(circular_variance(bad))


def test_circular_summaries(x64):
    rng = np.random.default_rng(1)
    x = rng.vonmises(2.0, 3.0, size=500)
    np.testing.assert_allclose(circular_mean(x), st.circmean(x, low=-np.pi, high=np.pi), rtol=1e-12)
    np.testing.assert_allclose(
        mean_resultant_length(x), np.abs(np.mean(np.exp(1j * x))), rtol=1e-12
    )
    # any window: shifting by 2 pi changes nothing
    np.testing.assert_allclose(circular_mean(x + 2 * np.pi), circular_mean(x), rtol=1e-12)


@pytest.mark.parametrize("seed,k", [(0, 0.5), (1, 2.0), (2, 15.0), (3, 300.0)])
def test_fit_matches_scipy(x64, seed, k):
    x = np.random.default_rng(seed).vonmises(-1.0, k, size=400)
    k_ref, loc_ref, _ = st.vonmises.fit(x, fscale=1)
    loc, kappa = jax.jit(fit)(x)
    np.testing.assert_allclose(kappa, k_ref, rtol=1e-6)
    np.testing.assert_allclose(np.angle(np.exp(1j * (loc - loc_ref))), 0.0, atol=1e-8)


def test_fit_axis_edges_and_float32():
    x = np.random.default_rng(5).vonmises(0.5, 4.0, size=(3, 2000))
    loc, k = fit(jnp.asarray(x, jnp.float32), axis=1)
    assert loc.shape == (3,) and k.dtype == jnp.float32
    np.testing.assert_allclose(loc, 0.5, atol=0.06)
    np.testing.assert_allclose(k, 4.0, rtol=0.1)
    loc, k = fit(jnp.full(10, 1.25))
    assert k == np.inf and np.isclose(loc, 1.25)
    assert np.all(np.isnan(fit(jnp.array([0.1, np.nan]))[1]))
    # differentiable: d kappa_hat / d data
    assert np.all(np.isfinite(jax.grad(lambda a: fit(a)[1])(jnp.asarray(x[0, :50]))))
