"""log_prob against mpmath, periodicity, derivatives and bad input."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.stats as st

from vm_ppl.density import log_prob

KAPPAS = [0.0, 1e-8, 1e-4, 0.1, 1.0, 2.5, 10.0, 88.0, 100.0, 714.0, 1e3, 1e4, 1e6, 1e8]
XS = np.concatenate([np.linspace(-50.0, 50.0, 41), [-np.pi, np.pi, 1e-7, -3e-4, 2 * np.pi]])


def _mp_log_prob(x: float, loc: float, k: float) -> mp.mpf:
    x, loc, k = mp.mpf(x), mp.mpf(loc), mp.mpf(k)
    return k * mp.cos(x - loc) - mp.log(2 * mp.pi * mp.besseli(0, k))


@pytest.fixture(scope="module")
def reference():
    """log p at every (x, loc, k) of the grid, at 40 digits, for float32/float64 inputs."""
    mp.mp.dps = 40
    out = {}
    for name in ("float32", "float64"):
        x = XS.astype(name).astype(np.float64)
        loc = np.float64(np.array(0.7, name))
        ks = np.array(KAPPAS, name).astype(np.float64)
        out[name] = np.array([[float(_mp_log_prob(xi, loc, k)) for xi in x] for k in ks])
    return out


def test_log_prob_matches_mpmath(dtype, reference):
    """Relative error <= 1e-12 (float64) / 1e-5 (float32) for k in [1e-8, 1e8], x in
    [-50, 50]. Near a zero of log p the error is measured against max(|ref|, 1)."""
    rtol = 1e-12 if dtype == "float64" else 1e-5
    x = jnp.asarray(XS, dtype)
    k = jnp.asarray(KAPPAS, dtype)[:, None]
    got = jax.jit(log_prob)(x[None, :], jnp.asarray(0.7, dtype), k)
    assert got.dtype == jnp.dtype(dtype)
    ref = reference[dtype]
    err = np.abs(np.asarray(got, np.float64) - ref) / np.maximum(np.abs(ref), 1.0)
    assert err.max() <= rtol, (err.max(), np.unravel_index(err.argmax(), err.shape))


def test_agrees_with_scipy(x64):
    x = np.linspace(-3, 3, 101)
    for k in [0.01, 1.0, 30.0]:
        np.testing.assert_allclose(
            log_prob(x, 0.3, k), st.vonmises.logpdf(x, k, loc=0.3), rtol=1e-13, atol=1e-13
        )


def test_periodic_any_window(dtype):
    x = jnp.linspace(-np.pi, np.pi, 50, dtype=dtype)
    base = log_prob(x, 0.5, 3.0)
    tol = 1e-12 if dtype == "float64" else 2e-5
    for shift in (2 * np.pi, -2 * np.pi, 4 * np.pi):
        np.testing.assert_allclose(log_prob(x + shift, 0.5, 3.0), base, rtol=tol, atol=tol)
    # angles in [0, 2 pi): finite everywhere
    assert np.all(np.isfinite(log_prob(jnp.linspace(0, 2 * np.pi, 9, dtype=dtype), 1.0, 5.0)))


def test_uniform_at_zero_concentration(dtype):
    got = log_prob(jnp.linspace(-10, 10, 7, dtype=dtype), 0.3, 0.0)
    np.testing.assert_allclose(got, -np.log(2 * np.pi), rtol=1e-6)


def test_float32_large_concentration_keeps_mode_accuracy():
    """NumPyro's cos - 1 form loses 5e-3 at k = 1e6 in float32; we keep ~1e-6 relative."""
    mp.mp.dps = 30
    x = np.float32(1e-3)
    got = float(log_prob(x, np.float32(0.0), np.float32(1e6)))
    ref = float(_mp_log_prob(float(x), 0.0, 1e6))
    assert abs(got - ref) <= 1e-5 * abs(ref)


def test_dtype_follows_input(dtype):
    assert log_prob(jnp.zeros(3, dtype), 0.0, 1.0).dtype == jnp.dtype(dtype)
    assert log_prob(0, 0, 1).dtype == jnp.result_type(float)


def test_broadcasting():
    out = log_prob(jnp.zeros((5, 1, 1)), jnp.zeros((1, 4, 1)), jnp.ones(3))
    assert out.shape == (5, 4, 3)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_bad_concentration_is_nan(bad):
    assert np.isnan(log_prob(0.1, 0.0, bad))
    assert np.isnan(jax.grad(log_prob, argnums=2)(0.1, 0.0, bad))


def test_nan_angle_is_nan():
    assert np.isnan(log_prob(np.nan, 0.0, 1.0))
    assert np.isnan(log_prob(0.0, np.nan, 1.0))


@pytest.mark.parametrize("k", [1e-3, 0.7, 5.0, 300.0, 1e5])
def test_gradients_match_finite_differences(x64, k):
    x, loc = 1.3, -0.4
    g = jax.grad(log_prob, argnums=(0, 1, 2))(x, loc, k)
    for i, h in enumerate([1e-6, 1e-6, 1e-6 * max(k, 1.0)]):
        args = [x, loc, k]
        up = list(args)
        dn = list(args)
        up[i] += h
        dn[i] -= h
        fd = (log_prob(*up) - log_prob(*dn)) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-9)


def test_gradient_formulas_exact(dtype):
    """d/dx = -k sin(x - loc), d/dloc = k sin(x - loc), d/dk = cos(x - loc) - A(k)."""
    from scipy.special import i0e, i1e

    x = jnp.linspace(-6, 6, 13, dtype=dtype)
    loc, k = 0.3, 4.0
    gx, gl, gk = jax.vmap(jax.grad(log_prob, argnums=(0, 1, 2)), (0, None, None))(x, loc, k)
    xs = np.asarray(x, np.float64)
    tol = 1e-12 if dtype == "float64" else 3e-5
    np.testing.assert_allclose(gx, -k * np.sin(xs - loc), rtol=tol, atol=tol)
    np.testing.assert_allclose(gl, k * np.sin(xs - loc), rtol=tol, atol=tol)
    np.testing.assert_allclose(gk, np.cos(xs - loc) - i1e(k) / i0e(k), rtol=tol, atol=tol)


def test_forward_and_reverse_mode_agree(x64):
    x = jnp.linspace(-3, 3, 11)
    f = lambda k: jnp.sum(log_prob(x, 0.2, k))  # noqa: E731
    _, fwd = jax.jvp(f, (2.0,), (1.0,))
    np.testing.assert_allclose(fwd, jax.grad(f)(2.0), rtol=1e-14)


def test_hessian_in_concentration(x64):
    """Second derivative in k is -A'(k) (per observation); finite via the custom rules."""
    from vm_ppl.bessel import bessel_ratio_derivative

    h = jax.hessian(log_prob, argnums=2)(0.4, 0.0, 3.0)
    np.testing.assert_allclose(h, -bessel_ratio_derivative(3.0), rtol=1e-12)


def test_vmap_and_jit():
    xs = jnp.linspace(-1, 1, 6)
    ks = jnp.array([0.5, 1.0, 2.0])
    f = jax.jit(jax.vmap(log_prob, in_axes=(None, None, 0)))
    np.testing.assert_allclose(f(xs, 0.0, ks), log_prob(xs[None], 0.0, ks[:, None]), rtol=1e-6)


def test_small_arrays_use_xla_trig_and_agree(reference):
    """Float64 arrays of at most SMALL_SIZE elements take XLA's sin/cos (below its
    1,000-flop line for inline execution, vm_ppl._fastmath.SMALL_SIZE); larger ones the
    polynomials. Both paths meet the mpmath tolerance of test_log_prob_matches_mpmath, and
    the small one keeps a value-and-gradient call at ten angles under the line."""
    from vm_ppl._fastmath import SMALL_SIZE
    from vm_ppl.bench.tan_half import xla_flops

    with jax.enable_x64(True):
        x = jnp.asarray(XS, jnp.float64)
        ref = reference["float64"]
        for i, k in enumerate(KAPPAS):
            rows = [
                np.asarray(jax.jit(log_prob)(x[j : j + SMALL_SIZE], 0.7, k))
                for j in range(0, x.size, SMALL_SIZE)
            ]
            err = np.abs(np.concatenate(rows) - ref[i]) / np.maximum(np.abs(ref[i]), 1.0)
            assert err.max() <= 1e-12, (k, err.max())
        y = x[:10]

        def value_and_grad(p):
            return jax.value_and_grad(lambda p: log_prob(y, p[0], p[1]).sum())(p)

        flops = xla_flops(jax.jit(value_and_grad), jnp.array([0.3, 5.0]))
        assert flops < 1000, flops
        big = jnp.concatenate([y, jnp.zeros(SMALL_SIZE)])
        g_small = jax.grad(lambda p: log_prob(y, p[0], p[1]).sum())(jnp.array([0.3, 5.0]))
        g_big = jax.grad(lambda p: log_prob(big, p[0], p[1])[:10].sum())(jnp.array([0.3, 5.0]))
        np.testing.assert_allclose(g_small, g_big, rtol=1e-13)
