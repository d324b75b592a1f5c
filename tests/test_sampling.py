"""Tests for vm_ppl.sampling: exactness, shapes, bad input, transformations, gradients.

Distributional tests use fixed seeds and require a Kolmogorov-Smirnov p-value > 0.01
against the exact cdf of the wrapped difference ``x - loc`` (SciPy's for k <= 5,
``vm_ppl.cdf`` in float64 above, where SciPy's normal approximation is off by ~3e-6).
The sampler is jitted once per (shape, transformation) with the concentration traced, so
varying k does not recompile.

x64 is switched on per test by the ``x64`` / ``dtype`` fixtures of ``conftest.py``
(function scoped, so it can leak neither into other files nor into the float32 tests of
this one).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from vm_ppl.cdf import cdf
from vm_ppl.sampling import sample, wrap_angle

N = 20_000
# KS threshold. Each check is a fixed-seed draw, so a correct sampler fails one with
# probability P_MIN whenever its random stream changes (as when the bits were made
# differently): with some 40 such checks in the suite, 0.01 would fail one of them 33 %
# of the time (1 - 0.99**40), 1e-3 about 4 %.
P_MIN = 1e-3
KS_KAPPAS = [0.0, 1e-6, 0.01, 0.5, 2.0, 10.0, 100.0, 1e4, 1e6, 1e8]
# loc values exactly representable in float32, so x - loc is exact in float64.
KS_LOCS = [2.5, 0.0, -1.0, 3.0, 2.5, -3.0, 2.5, 0.0, 2.5, 2.5]


def _np_dtype(name):
    return np.float32 if name == "float32" else np.float64


# ----------------------------------------------------------------------------- helpers


@functools.cache
def _sampler(shape):
    """``sample`` jitted for one static shape; key, loc and concentration are traced."""
    return jax.jit(functools.partial(sample, shape=shape))


# ``sample`` with static shape / dtype, jitted: eager dispatch of its ~200 ops is slow.
_jsample = jax.jit(sample, static_argnames=("shape", "dtype"))


@functools.cache
def _sampler_jvp(shape):
    """Forward mode, jitted: (draws, dz/dloc * t_loc + dz/dk * t_k)."""

    def f(key, loc, k, t_loc, t_k):
        return jax.jvp(lambda ll, kk: sample(key, ll, kk, shape=shape), (loc, k), (t_loc, t_k))

    return jax.jit(f)


def _sampler_dk(shape):
    """(draws, dz/dk) for a scalar concentration."""
    f = _sampler_jvp(shape)
    return lambda key, loc, k: f(key, loc, k, jnp.zeros_like(loc), jnp.ones_like(k))


@functools.cache
def _cdf64():
    return jax.jit(cdf)


def _draw(seed, loc, k, shape, dtype):
    d = _np_dtype(dtype)
    return np.asarray(_sampler(shape)(jax.random.key(seed), d(loc), d(k)))


def _wrapped_diff(x, loc):
    """x - loc wrapped to [-pi, pi), in float64 numpy."""
    d = np.asarray(x, np.float64) - np.float64(loc)
    return (d + np.pi) % (2 * np.pi) - np.pi


def _ref_cdf(d, k):
    """Exact cdf (loc 0, F(-pi) = 0) of float64 angles d in [-pi, pi)."""
    d = np.asarray(d, np.float64)
    if k == 0:
        return (d + np.pi) / (2 * np.pi)
    if k <= 5:
        return st.vonmises.cdf(d, k)
    with jax.enable_x64(True):
        return np.asarray(_cdf64()(jnp.asarray(d), 0.0, jnp.float64(k)))


def _ks_pvalue(d, k):
    u = _ref_cdf(d, k)
    return st.kstest(u, "uniform").pvalue


def _bessel_ratio(k):
    return sps.i1e(k) / sps.i0e(k)


def _dA_dk(k):
    """d/dk of A(k) = I1(k)/I0(k) = E[cos z]: 1 - A/k - A^2."""
    a = _bessel_ratio(k)
    return 1.0 - a / k - a * a


# ------------------------------------------------------------------- 1. exactness (KS)


@pytest.mark.parametrize(("k", "loc"), list(zip(KS_KAPPAS, KS_LOCS, strict=True)))
def test_ks_against_exact_cdf(dtype, k, loc):
    seed = 1000 + KS_KAPPAS.index(k)
    x = _draw(seed, loc, k, (N,), dtype)
    assert x.dtype == _np_dtype(dtype)
    assert not np.isnan(x).any()
    p = _ks_pvalue(_wrapped_diff(x, loc), k)
    assert p > P_MIN, f"KS p = {p:.3g} for k = {k}, loc = {loc}, {dtype}"


@pytest.mark.parametrize("k", [1e6, 1e8])
@pytest.mark.parametrize("loc", [2.5, 0.0])
def test_float32_large_kappa_does_not_collapse_onto_loc(k, loc):
    x = _draw(7, loc, k, (N,), "float32")
    assert not np.isnan(x).any()
    # Only rounding can put a draw exactly on loc: P(|theta| < ulp(loc)/2) ~ ulp * p(0),
    # ~1e-3 at k = 1e8, loc = 2.5 (NumPyro returns exactly loc for 17 % at k = 1e6).
    ulp = np.spacing(np.float32(abs(loc))) if loc else np.float32(0)
    expected = float(ulp) * math.sqrt(k / (2 * math.pi))
    frac = np.mean(x == np.float32(loc))
    assert frac <= 3 * expected + 5e-4, (frac, expected)
    # and the spread is right: sd of theta ~ 1/sqrt(k)
    sd = np.std(_wrapped_diff(x, loc)) * math.sqrt(k)
    assert abs(sd - 1.0) < 0.03


# ---------------------------------------------------------------------- 2. range, shape


@pytest.mark.parametrize(
    ("loc", "k"),
    [(0.0, 0.0), (3.0, 0.0), (-3.0, 0.5), (math.pi, 1e8), (-math.pi, 1e8), (math.pi, 1e4)],
)
def test_range(dtype, loc, k):
    d = _np_dtype(dtype)
    x = _draw(11, d(loc), k, (N,), dtype)
    assert x.dtype == d
    assert np.all(x >= d(-np.pi)), x.min()
    assert np.all(x < d(np.pi)), x.max()
    if k >= 1e4:
        # draws straddle the +-pi seam: both sides must be hit, and the wrapped
        # difference must still follow the exact distribution
        assert np.any(x > 0) and np.any(x < 0)
        assert _ks_pvalue(_wrapped_diff(x, d(loc)), k) > P_MIN


def test_wrap_angle_range_and_values(dtype):
    d = _np_dtype(dtype)
    pi = d(np.pi)
    x = jnp.asarray(
        [0.0, pi, -pi, np.nextafter(pi, d(0)), np.nextafter(-pi, d(-4)), 3 * pi, -7.0, 100.0],
        d,
    )
    y = np.asarray(wrap_angle(x))
    assert y.dtype == d
    assert np.all(y >= -pi) and np.all(y < pi)
    np.testing.assert_allclose(
        np.cos(y.astype(np.float64)),
        np.cos(np.asarray(x, np.float64)),
        atol=1e-5 if d is np.float32 else 1e-12,
    )
    assert y[1] == -pi and y[2] == -pi
    g = np.asarray(jax.grad(lambda t: wrap_angle(t).sum())(x[jnp.array([0, 1, 2, 4, 6, 7])]))
    np.testing.assert_array_equal(g, 1.0)


def test_wrap_angle_grad_is_one_where_rounding_hits_the_seam():
    # float32(3 pi) - 2 pi rounds to >= float32(pi), and in float64 the largest double
    # below pi, minus 2 pi, falls below -pi: both take the seam branch
    x = jnp.float32(3 * np.pi)
    assert wrap_angle(x) == -np.float32(np.pi)
    g32 = jax.grad(wrap_angle)(x)
    with jax.enable_x64(True):
        g64 = jax.grad(wrap_angle)(jnp.float64(np.nextafter(np.pi, 0.0)))
    assert g32 == 1.0 and g64 == 1.0


def _out(*args, **kw):
    """Shape and dtype of ``sample``'s output, traced without compiling."""
    return jax.eval_shape(functools.partial(sample, **kw), jax.random.key(0), *args)


def test_default_dtypes():
    key = jax.random.key(0)

    # eval_shape traces without running: dtype logic only
    def dt(*args, **kw):
        return _out(*args, **kw).dtype

    assert dt(0.0, 1.0, shape=(3,)) == jnp.float32
    assert dt(0, 1, shape=(3,)) == jnp.float32
    assert _jsample(key, 0.0, 1.0, shape=(3,)).dtype == jnp.float32
    with jax.enable_x64(True):
        assert dt(0.0, 1.0, shape=(3,)) == jnp.float64
        assert dt(np.float32(0), np.float32(1), shape=(3,)) == jnp.float32
        assert dt(0.0, np.float32(1), shape=(3,)) == jnp.float32
        assert dt(0.0, 1.0, shape=(3,), dtype=jnp.float32) == jnp.float32
        assert _jsample(key, 0.0, 1.0, shape=(3,)).dtype == jnp.float64


def test_shapes():
    assert _out(0.0, 1.0).shape == ()
    assert _out(0.0, 1.0, shape=(7,)).shape == (7,)
    assert _out(0.0, 1.0, shape=[2, 3]).shape == (2, 3)
    loc = jnp.linspace(-1.0, 1.0, 3).reshape(3, 1)
    k = jnp.asarray([0.0, 1.0, 10.0, 100.0])
    assert _out(loc, k).shape == (3, 4)
    assert _out(loc, k, shape=(3, 4)).shape == (3, 4)
    assert _out(loc, k, shape=(0, 3, 4)).shape == (0, 3, 4)
    x = _jsample(jax.random.key(3), loc, k, shape=(5, 3, 4))
    assert x.shape == (5, 3, 4)
    assert not jnp.isnan(x).any()
    # the k = 100 column stays within ~6 sd of its loc, the k = 0 column does not
    d = _wrapped_diff(x, np.asarray(loc))
    assert np.all(np.abs(d[..., 3]) < 0.6)
    assert np.max(np.abs(d[..., 0])) > 1.0
    empty = sample(jax.random.key(3), 1.0, 2.0, shape=(0,))
    assert empty.shape == (0,) and empty.dtype == jnp.float32


@pytest.mark.parametrize(
    ("loc_shape", "k_shape", "shape"),
    [((3,), (), (4,)), ((3, 1), (4,), (4, 3)), ((), (5,), (5, 2)), ((2,), (3,), None)],
)
def test_mismatched_shape_raises(loc_shape, k_shape, shape):
    with pytest.raises(ValueError):
        sample(jax.random.key(0), jnp.zeros(loc_shape), jnp.ones(k_shape), shape=shape)


def test_per_element_concentration(dtype):
    d = _np_dtype(dtype)
    ks = [0.0, 1e-6, 1.0, 1e8]
    locs = [0.0, 2.5, -1.0, 3.0]
    x = np.asarray(_sampler((N, 4))(jax.random.key(5), jnp.asarray(locs, d), jnp.asarray(ks, d)))
    assert x.dtype == d and x.shape == (N, 4)
    for j, (k, loc) in enumerate(zip(ks, locs, strict=True)):
        p = _ks_pvalue(_wrapped_diff(x[:, j], d(loc)), k)
        assert p > P_MIN, f"column {j}: k = {k}, p = {p:.3g}"


# -------------------------------------------------------------------------- 3. bad input


def test_bad_input_gives_nan(dtype):
    d = _np_dtype(dtype)
    k = jnp.asarray([1.0, -1.0, np.nan, np.inf, -np.inf, 2.0, 0.0, 1.0, -1.0], d)
    loc = jnp.asarray([0.5] * 7 + [np.nan, np.nan], d)
    x = np.asarray(_jsample(jax.random.key(0), loc, k, shape=(3, 9)))
    bad = np.array([False, True, True, True, True, False, False, True, True])
    assert np.isnan(x[:, bad]).all()
    assert not np.isnan(x[:, ~bad]).any()


def test_extreme_concentrations_return(dtype):
    d = _np_dtype(dtype)
    # k = 1e-30 is uniform for all practical purposes, k = 1e30 is a point mass at loc
    x = _draw(2, 1.0, 1e-30, (N,), dtype)
    assert np.all(np.isfinite(x)) and np.all((x >= d(-np.pi)) & (x < d(np.pi)))
    assert _ks_pvalue(_wrapped_diff(x, 1.0), 0.0) > P_MIN
    x = _draw(2, 1.0, 1e30, (N,), dtype)
    assert np.all(np.isfinite(x))
    # sd 1e-15: a point mass at loc in float32, ~5 ulp wide in float64
    assert np.max(np.abs(x - d(1.0))) <= max(8e-15, 2 * np.spacing(d(1.0)))


def test_finite_huge_concentration_is_not_nan():
    x32 = _jsample(jax.random.key(0), np.float32(0.5), np.float32(1e38), shape=(4,))
    with jax.enable_x64(True):
        x64 = _jsample(jax.random.key(0), 0.5, 1e308, shape=(4,))
    assert not np.isnan(np.asarray(x32)).any() and not np.isnan(np.asarray(x64)).any()


# ------------------------------------------------------------------------ 4. jit / vmap


def test_jit_matches_eager():
    key = jax.random.key(9)
    k = jnp.float32(2.0)
    eager = sample(key, 1.0, k, shape=(256,))
    jitted = _sampler((256,))(key, jnp.float32(1.0), k)
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=2e-6)


def test_vmap_over_keys_matches_loop():
    keys = jax.random.split(jax.random.key(10), 4)
    f = _sampler((N,))
    loc, k = jnp.float32(-2.0), jnp.float32(3.0)
    batched = jax.vmap(f, in_axes=(0, None, None))(keys, loc, k)
    assert batched.shape == (4, N)
    loop = jnp.stack([f(kk, loc, k) for kk in keys])
    np.testing.assert_allclose(batched, loop, rtol=0, atol=2e-6)


def test_vmap_over_concentration_matches_loop():
    key = jax.random.key(11)
    f = _sampler((N,))
    ks = jnp.asarray([0.0, 0.1, 1.0, 10.0, 1e6], jnp.float32)
    loc = jnp.float32(2.5)
    batched = jax.jit(jax.vmap(f, in_axes=(None, None, 0)))(key, loc, ks)
    loop = jnp.stack([f(key, loc, kk) for kk in ks])
    np.testing.assert_allclose(batched, loop, rtol=0, atol=2e-6)
    # and each row has its own distribution
    for row, kk in zip(np.asarray(batched), ks.tolist(), strict=True):
        assert _ks_pvalue(_wrapped_diff(row, 2.5), kk) > P_MIN


@pytest.mark.parametrize("shape", [(300,), (3, 400), (70000,), (5, 1)])
def test_vmap_over_keys_and_concentrations_matches_loop_exactly(shape):
    # Under vmap the draws run per mapped call in cache-sized batches (lax.map, vmapped
    # inside a batch): (300,) and (3, 400) are vmapped in one batch, (70000,) one call at
    # a time, (5, 1) per element; streams that finish early keep their values.
    keys = jax.random.split(jax.random.key(3), 5)
    ks = jnp.asarray([0.0, 1e-9, 5.0, 1e7, 2.0], jnp.float32)

    def f(key, k):
        return sample(key, 0.3, k, shape=shape)

    batched = jax.jit(jax.vmap(f))(keys, ks)
    loop = jnp.stack([jax.jit(f)(keys[i], ks[i]) for i in range(5)])
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(loop))


# --------------------------------------------------------------------------- 5. gradients


def test_grad_loc_is_one(dtype):
    d = _np_dtype(dtype)
    # loc near the seam, so that some draws wrap
    x, t = _sampler_jvp((N,))(jax.random.key(12), d(3.1), d(4.0), d(1.0), d(0.0))
    assert np.any(np.asarray(x) < 0)
    assert t.dtype == d
    np.testing.assert_array_equal(t, 1.0)
    # reverse mode with a broadcast loc: see test_forward_and_reverse_mode_agree


def _implicit_dz_dk_mpmath(z, k):
    """-dF/dk(z) / p(z) with F(z) - F(0) = int_0^z p, dF(0)/dk = 0 for every k."""
    with mp.workdps(30):
        k = mp.mpf(k)
        z = mp.mpf(z)
        a = mp.besseli(1, k) / mp.besseli(0, k)

        def scaled_p(t):  # p(t) * 2 pi I0e(k)
            return mp.exp(k * (mp.cos(t) - 1))

        dF = mp.quad(lambda t: (mp.cos(t) - a) * scaled_p(t), [0, z])
        return float(-dF / scaled_p(z))


@pytest.mark.parametrize("k", [0.1, 1.0, 10.0, 1e3])
def test_dz_dk_matches_implicit_identity(x64, k):
    x, dx = _sampler_dk((64,))(jax.random.key(13), jnp.float64(0.0), jnp.float64(k))
    x, dx = np.asarray(x), np.asarray(dx)
    # a handful of draws, including the two most extreme ones
    idx = [*range(4), int(np.argmax(x)), int(np.argmin(x))]
    for i in idx:
        ref = _implicit_dz_dk_mpmath(x[i], k)
        # observed relative error ~1e-14
        assert dx[i] == pytest.approx(ref, rel=1e-10, abs=1e-14 / k), (k, x[i])


def test_dz_dk_at_zero_concentration(x64):
    # k = 0: F(z) = (z + pi)/2pi, dF/dk = sin(z)/2pi, p = 1/2pi => dz/dk = -sin z
    x, dx = _sampler_dk((64,))(jax.random.key(14), jnp.float64(0.0), jnp.float64(0.0))
    np.testing.assert_allclose(dx, -np.sin(np.asarray(x)), rtol=1e-8, atol=1e-10)


def test_dz_dk_float32_matches_implicit_identity(x64):
    # float32 draws and derivatives (x64 is on only for the float64 reference)
    key = jax.random.key(15)
    for k in (0.1, 1.0, 10.0, 1e3):
        x32, d32 = _sampler_dk((64,))(key, jnp.float32(0.0), jnp.float32(k))
        assert d32.dtype == jnp.float32
        ref = np.array([_implicit_dz_dk_mpmath(float(z), k) for z in np.asarray(x32)[:8]])
        scale = np.max(np.abs(ref))
        # observed relative error <= 1e-6
        np.testing.assert_allclose(np.asarray(d32)[:8], ref, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("k", [0.5, 2.0, 10.0, 100.0])
def test_grad_expected_cos_is_unbiased(dtype, k):
    """mean of d cos(z)/dk over N draws vs. d/dk A(k), within 3.5 standard errors."""
    d = _np_dtype(dtype)
    key = jax.random.key(16 + int(k))
    x, dx = _sampler_dk((N,))(key, d(0.0), d(k))
    g = -np.sin(np.asarray(x, np.float64)) * np.asarray(dx, np.float64)
    se = g.std() / math.sqrt(N)
    assert abs(g.mean() - _dA_dk(k)) < 3.5 * se, (g.mean(), _dA_dk(k), se)


def test_forward_and_reverse_mode_agree(dtype):
    d = _np_dtype(dtype)
    key = jax.random.key(17)
    ks = jnp.asarray([0.0, 0.3, 3.0, 300.0], d)
    locs = jnp.asarray([0.0, 2.5, -1.0, 3.0], d)

    def loss(loc, k):
        z = sample(key, loc, k, shape=(50, 4))
        return jnp.sum(jnp.sin(z) + 0.3 * z**2), z

    (g_loc, g_k), z = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(locs, ks)
    (f_loc, f_k), _ = jax.jit(jax.jacfwd(loss, argnums=(0, 1), has_aux=True))(locs, ks)
    rtol = 1e-4 if d is np.float32 else 1e-10
    np.testing.assert_allclose(g_k, f_k, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(g_loc, f_loc, rtol=rtol, atol=rtol)
    # dz/dloc = 1 per element, summed over the broadcast rows
    z = np.asarray(z, np.float64)
    np.testing.assert_allclose(g_loc, np.sum(np.cos(z) + 0.6 * z, axis=0), rtol=rtol, atol=rtol)
    assert np.all(np.isfinite(np.asarray(g_k))) and np.any(np.asarray(g_k) != 0)

    if d is np.float32:
        return
    # jacfwd / jacrev of the draws themselves (a per-element concentration), float64 only

    def draws(kk):
        return sample(key, 0.0, kk, shape=(6,))

    k6 = jnp.asarray([0.0, 0.5, 1.0, 2.0, 50.0, 1e4], d)
    jf = jax.jit(jax.jacfwd(draws))(k6)
    jr = jax.jit(jax.jacrev(draws))(k6)
    np.testing.assert_allclose(jf, jr, rtol=rtol, atol=rtol * 1e-4)
    off_diag = np.asarray(jf) * (1 - np.eye(6))
    assert np.all(off_diag == 0)


def test_grad_under_jit_and_vmap(x64):
    def loss(key, loc, k):
        z = sample(key, loc, k, shape=(64,))
        return jnp.mean(jnp.cos(z - loc))

    grad = jax.grad(loss, argnums=(1, 2))
    jitted = jax.jit(grad)
    keys = jax.random.split(jax.random.key(18), 3)
    loc, k = jnp.float64(1.0), jnp.float64(2.0)
    jl, jk = jitted(keys[0], loc, k)
    assert abs(float(jl)) < 1e-12  # cos(z - loc) does not depend on loc
    z, dz = _sampler_dk((64,))(keys[0], jnp.float64(0.0), k)
    assert float(jk) == pytest.approx(float(jnp.mean(-jnp.sin(z) * dz)), rel=1e-10)
    loop = [float(jitted(kk, loc, k)[1]) for kk in keys]
    vl, vk = jax.jit(jax.vmap(grad, in_axes=(0, None, None)))(keys, loc, k)
    np.testing.assert_allclose(vk, loop, rtol=1e-10)
    np.testing.assert_allclose(vl, 0.0, atol=1e-12)
    # vmap over concentration
    ks = jnp.asarray([0.5, 2.0, 8.0])
    vk = jax.jit(jax.vmap(lambda kk: grad(keys[0], loc, kk)[1]))(ks)
    loop = [float(jitted(keys[0], loc, kk)[1]) for kk in ks]
    np.testing.assert_allclose(vk, loop, rtol=1e-10)
    assert np.all(np.isfinite(vk))


# ------------------------------------------------------------------------ 6. determinism


def test_determinism(dtype):
    f = _sampler((N,))
    d = _np_dtype(dtype)
    a = f(jax.random.key(42), d(1.0), d(3.0))
    b = f(jax.random.key(42), d(1.0), d(3.0))
    np.testing.assert_array_equal(a, b)
    c = f(jax.random.key(43), d(1.0), d(3.0))
    assert np.mean(np.asarray(a) == np.asarray(c)) < 1e-3
    # legacy uint32 keys work too
    e = _jsample(jax.random.PRNGKey(42), d(1.0), d(3.0), shape=(8,))
    assert e.shape == (8,) and not np.isnan(np.asarray(e)).any()


# ------------------------------------------------------- 7. shapes and bad-input gradients


def test_int_shape_like_jax_random():
    key = jax.random.key(0)
    assert sample(key, 0.0, 1.0, shape=5).shape == (5,)
    assert sample(key, 0.0, 1.0, shape=np.int64(3)).shape == (3,)
    np.testing.assert_array_equal(sample(key, 0.0, 1.0, shape=5), sample(key, 0.0, 1.0, shape=(5,)))
    with pytest.raises(TypeError):
        sample(key, 0.0, 1.0, shape=2.5)


@functools.cache
def _bad_input_grads():
    """Jitted (draws, reverse-mode grads, forward tangent, scalar-k loc grad)."""
    key = jax.random.key(19)

    def draws(loc, k):
        return sample(key, loc, k, shape=(4, 3))

    def f(loc, k, k0):
        grads = jax.grad(lambda a, b: draws(a, b).sum(), argnums=(0, 1))(loc, k)
        _, t = jax.jvp(draws, (loc, k), (jnp.zeros_like(loc), jnp.ones_like(k)))
        g0 = jax.grad(lambda a: sample(key, a, k0, shape=(3,)).sum())(loc[0])
        return draws(loc, k), grads, t, g0

    return jax.jit(f)


def test_gradients_at_invalid_concentration_are_nan(dtype):
    d = _np_dtype(dtype)
    loc = jnp.asarray([0.3, 0.3, -1.0], d)
    for bad in (-1.0, np.nan, np.inf):
        k = jnp.asarray([2.0, bad, 0.5], d)
        x, (g_loc, g_k), t, g0 = map(np.asarray, _bad_input_grads()(loc, k, d(bad)))
        assert np.isnan(x[:, 1]).all() and not np.isnan(x[:, [0, 2]]).any()
        # reverse mode, per element (summed over the 4 rows): NaN only at the bad k
        for g in (np.asarray(g_loc), np.asarray(g_k)):
            assert np.isnan(g[1]) and np.isfinite(g[[0, 2]]).all(), (bad, g)
        # forward mode
        assert np.isnan(t[:, 1]).all() and np.isfinite(t[:, [0, 2]]).all(), bad
        # a scalar invalid concentration: the loc derivative is NaN too
        assert np.isnan(g0), bad


# ----------------------------------------------- 8. chunks, grouped concentrations, scale


def test_many_chunks_shared_concentration(dtype):
    # 3 chunks of 2^16 draws, each with its own key: exact overall and not repeated
    from vm_ppl.sampling import _CHUNK

    n = 3 * _CHUNK - 5
    x = _draw(20, 0.5, 2.0, (n,), dtype)
    assert not np.isnan(x).any()
    assert _ks_pvalue(_wrapped_diff(x, 0.5), 2.0) > P_MIN
    c = _CHUNK - 2  # the chunks are nearly equal: n split in 3 of ~n/3
    assert not np.array_equal(x[:100], x[c : c + 100])


@pytest.mark.parametrize("kshape", [(6, 1), (6,)])
def test_grouped_concentrations_are_exact(dtype, kshape):
    # kappa broadcast from (6, 1) to (6, m) (posterior predictive), or from (6,) to
    # (m, 6) (a transposed layout): each group is a stream of shared-k draws
    d = _np_dtype(dtype)
    ks = np.asarray([0.0, 1e-3, 0.7, 4.0, 60.0, 1e5], d)
    m = 5000
    shape = (6, m) if kshape == (6, 1) else (m, 6)
    x = np.asarray(
        _jsample(jax.random.key(21), d(1.0), jnp.asarray(ks.reshape(kshape)), shape=shape)
    )
    cols = x if kshape == (6, 1) else x.T
    assert x.dtype == d and not np.isnan(x).any()
    for row, k in zip(cols, ks, strict=True):
        assert _ks_pvalue(_wrapped_diff(row, 1.0), float(k)) > P_MIN, k
    # the groups are not copies of each other's stream
    assert not np.array_equal(cols[0][:50], cols[1][:50])


def test_per_element_concentrations_over_many_chunks(dtype):
    # every element its own k (no grouping): chunked per-element draws
    d = _np_dtype(dtype)
    ks = np.tile(np.asarray([0.0, 0.3, 3.0, 30.0], d), 40_000)
    x = np.asarray(_jsample(jax.random.key(22), d(-2.0), jnp.asarray(ks)))
    assert not np.isnan(x).any()
    for j, k in enumerate([0.0, 0.3, 3.0, 30.0]):
        assert _ks_pvalue(_wrapped_diff(x[j::4], -2.0), k) > P_MIN, k


def test_values_do_not_depend_on_the_batch_schedule(monkeypatch):
    # chunks are keyed by their index: mapping them in other batches (as on a GPU) or in
    # one part per device gives the same draws
    import vm_ppl.sampling as s

    key, k = jax.random.key(23), jnp.asarray([[0.5], [2.0], [9.0]], jnp.float32)

    def draw():
        return np.asarray(s._sample(key, jnp.float32(0.0), k, (3, 70_000)))

    ref = draw()
    monkeypatch.setattr(s, "_batch_elems", lambda: 1 << 18)
    s._sample.clear_cache()
    other = draw()
    monkeypatch.setattr(s.jax, "device_count", lambda: 3)
    s._sample.clear_cache()
    parts = draw()
    s._sample.clear_cache()
    np.testing.assert_array_equal(ref, other)
    np.testing.assert_array_equal(ref, parts)
    # 7 chunks (groups of 300 draws) in batches of 4: a remainder batch of 3
    k7 = jnp.linspace(0.5, 5.0, 7, dtype=jnp.float32).reshape(7, 1)
    monkeypatch.setattr(s.jax, "device_count", lambda: 1)
    ref7 = np.asarray(s._sample(key, jnp.float32(0.0), k7, (7, 300)))
    monkeypatch.setattr(s, "_batch_elems", lambda: 4 * 300)
    s._sample.clear_cache()
    rem7 = np.asarray(s._sample(key, jnp.float32(0.0), k7, (7, 300)))
    s._sample.clear_cache()
    np.testing.assert_array_equal(ref7, rem7)


@pytest.mark.parametrize("kind", ["shared", "grouped", "per_element"])
def test_memory_is_a_small_multiple_of_the_output(kind):
    # compiled, not run: XLA's buffer assignment for 10^7 float32 draws
    n = 10**7
    k = {
        "shared": jnp.float32(2.0),
        "grouped": jnp.ones((1000, 1), jnp.float32),
        "per_element": jnp.ones((1000, n // 1000), jnp.float32),
    }[kind]
    f = jax.jit(lambda key, k: sample(key, 0.0, k, shape=(1000, n // 1000)))
    mem = f.lower(jax.random.key(0), k).compile().memory_analysis()
    out_bytes = 4 * n
    # measured on the 2-core CPU: temporaries 1.01x (shared), 1.02x (grouped), 2.16x
    # (per-element) the output
    assert mem.output_size_in_bytes == out_bytes
    assert mem.temp_size_in_bytes <= 3 * out_bytes, mem.temp_size_in_bytes / out_bytes


# ----------------------------------------------------------------------- random bits


def test_threefry_matches_jax_bit_for_bit():
    """vm_ppl._bits.threefry2x32 is JAX's Threefry-2x32 (written out so XLA fuses it)."""
    from jax.extend.random import threefry_2x32

    from vm_ppl._bits import threefry2x32

    rng = np.random.default_rng(0)
    for _ in range(3):
        key = jnp.asarray(rng.integers(0, 2**32, 2, dtype=np.uint64), jnp.uint32)
        x = jnp.asarray(rng.integers(0, 2**32, 2 * 4096, dtype=np.uint64), jnp.uint32)
        ref = np.asarray(threefry_2x32(key, x))
        x0, x1 = jax.jit(threefry2x32)(key[0], key[1], x[:4096], x[4096:])
        np.testing.assert_array_equal(np.concatenate([x0, x1]), ref)


@pytest.mark.parametrize("m", [1, 5, 4096, 10_001])
def test_uniform_pairs_are_exact_open_uniforms(dtype, m):
    """(j + 1/2) 2^-p with j a p-bit integer: in (0, 1), exactly on the grid (the
    previous 24-bit float32 version rounded j + 1/2 and could return 1), uniform (KS),
    the two arrays and different counters independent (no repeated values)."""
    from vm_ppl._bits import key_words, uniform_pairs

    p = 52 if dtype == "float64" else 23
    with jax.enable_x64(dtype == "float64"):
        kw = key_words(jax.random.key(3))
        u, u2 = uniform_pairs(kw, 0, m, _np_dtype(dtype))
        v, _ = uniform_pairs(kw, 1, m, _np_dtype(dtype))
    u, u2, v = (np.asarray(a, np.float64) for a in (u, u2, v))
    assert u.shape == u2.shape == (m,) and u.dtype == np.float64
    for a in (u, u2, v):
        assert ((a > 0) & (a < 1)).all()
        j = a * 2.0**p - 0.5
        np.testing.assert_array_equal(j, np.round(j))
    if m > 1000:
        for a in (u, u2, v):
            assert st.kstest(a, "uniform").pvalue > P_MIN
        # 23-bit values collide by chance (~m^2 / 2^23 = 12 pairs at m = 10,001); a
        # shared stream would repeat them all.
        assert len(np.intersect1d(u, u2)) < 40 and len(np.intersect1d(u, v)) < 40
        assert abs(np.corrcoef(u, u2)[0, 1]) < 0.05


def test_round_sizes_change_the_work_not_the_values(monkeypatch):
    """Per-element chunks with every k <= _LOW_K size their later rounds for a lower
    rejection rate; the proposals are keyed by element, so the draws are the same as
    with the default sizes (forced here by lowering _LOW_K), and still exact."""
    import vm_ppl.sampling as s

    k = jnp.asarray(np.linspace(0.05, s._LOW_K, 3 * s._CHUNK // 2), jnp.float32)
    key = jax.random.key(12)
    low = np.asarray(jax.jit(lambda key, k: sample(key, 0.0, k))(key, k))
    assert s._round_sizes(s._CHUNK, s._K_ROUNDS, s._REJECT_LOW)[1] < (
        s._round_sizes(s._CHUNK, s._K_ROUNDS)[1] // 2
    )
    monkeypatch.setattr(s, "_LOW_K", -1.0)
    default = np.asarray(
        jax.jit(lambda key, k: s._sample.__wrapped__(key, 0.0, k, k.shape))(key, k)
    )
    np.testing.assert_array_equal(low, default)
    assert not np.isnan(low).any()
    # exactness at the tier's edge: k = 1 everywhere
    x = np.asarray(sample(jax.random.key(13), 0.0, jnp.full((N,), 1.0, jnp.float32)))
    assert _ks_pvalue(_wrapped_diff(x, 0.0), 1.0) > P_MIN


def test_rejection_rate_grows_with_k_and_fits_the_low_tier():
    """The rejection rate of the exact test, 1 - E[c e^(1-c)] over the wrapped-Cauchy
    proposal (SciPy quadrature, float64), grows with k from 0 to 0.3423 (_REJECT_MAX),
    and is 0.132 at k = _LOW_K = 1, below the low tier's 0.15 (_REJECT_LOW)."""
    from scipy import integrate

    import vm_ppl.sampling as s

    def reject(k):
        with jax.enable_x64(True):
            a, kr1 = (float(v) for v in s._envelope(jnp.float64(k)))

        def accept(u):
            w = a * np.tan(np.pi * (u - 0.5))
            c = kr1 + 2.0 * k * w * w / (1.0 + w * w)
            return c * np.exp(1.0 - c)

        return 1.0 - integrate.quad(accept, 0.0, 1.0, limit=500, epsabs=1e-12)[0]

    ks = [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 50.0, 1e3, 1e5]
    r = [reject(k) for k in ks]
    assert all(a < b for a, b in zip(r, r[1:], strict=False)), r
    assert r[-1] <= s._REJECT_MAX and s._REJECT_MAX - r[-1] < 1e-3
    assert abs(reject(s._LOW_K) - 0.132) < 5e-4 and reject(s._LOW_K) < s._REJECT_LOW
