"""Accuracy tests for vm_ppl._fastmath against mpmath (40 digits), float32 and float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from vm_ppl import _fastmath as _fm

mp.mp.dps = 40


class _Jitted:
    """The module's public functions, jitted (eager op-by-op dispatch is slow)."""

    def __init__(self, mod):
        self._mod = mod
        for name in mod.__all__:
            setattr(self, name, jax.jit(getattr(mod, name)))

    def __getattr__(self, name):  # private helpers / constants
        return getattr(self._mod, name)


fm = _Jitted(_fm)

# Max relative errors allowed (spec: f64 <= 2e-15, f32 <= 3e-7).
RTOL = {np.float32: 3e-7, np.float64: 2e-15}


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    """Run the test in float32, or float64 with x64 enabled only inside the test."""
    if request.param is np.float64:
        with jax.enable_x64(True):
            yield np.float64
    else:
        yield np.float32


def _mp_map(f, x) -> np.ndarray:
    """Apply an mpmath function to the exact values of float array ``x``."""
    return np.array([float(f(mp.mpf(float(v)))) for v in np.ravel(x)])


def _rel_err(got, ref) -> np.ndarray:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return np.abs(got - ref) / np.abs(ref)


def _nextafter(x, to, dtype):
    return np.nextafter(dtype(x), dtype(to))


# ----------------------------------------------------------------------------- constants


def test_pi_decimal_matches_mpmath():
    with mp.workdps(80):
        assert abs(mp.mpf(fm._PI_DECIMAL) - mp.pi) < mp.mpf(10) ** -69


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_cody_waite_split(dt):
    c = fm._CONSTS[np.dtype(dt)]
    bits = 33 if dt is np.float64 else 12
    total = sum(mp.mpf(float(c[k])) for k in ("tp1", "tp2", "tp3"))
    prec = 2 * bits + np.finfo(dt).nmant
    assert abs(total - 2 * mp.pi) < 2 * mp.pi * mp.mpf(2) ** (-prec + 1)
    for k in ("tp1", "tp2"):  # few enough significant bits for exact n * C
        m, _ = np.frexp(np.float64(c[k]))
        assert float(m * 2.0**bits) == int(m * 2.0**bits)


def _fit_atan(deg: int):
    """Regenerate the atan coefficients: interpolate (atan(x)/x - 1)/z, z = x^2,
    at Chebyshev nodes of [0, 0.66^2] in 50-digit arithmetic (monomial basis)."""
    with mp.workdps(50):
        zmax = mp.mpf("0.66") ** 2
        n = deg + 1
        nodes = [zmax / 2 * (1 + mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)) for k in range(n)]

        def r(z):
            x = mp.sqrt(z)
            return (mp.atan(x) / x - 1) / z

        a = mp.matrix([[z**j for j in range(n)] for z in nodes])
        b = mp.matrix([r(z) for z in nodes])
        sol = mp.lu_solve(a, b)
        return [float(sol[j]) for j in range(n)]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_atan_coefficients_regenerate(dt):
    stored = np.array(fm._CONSTS[np.dtype(dt)]["atan"], dtype=np.float64)
    fitted = np.array(_fit_atan(len(stored) - 1), dtype=dt).astype(np.float64)
    np.testing.assert_allclose(stored, fitted, rtol=4 * np.finfo(dt).eps, atol=0)


# ----------------------------------------------------------------------------- reduce_angle


def _reduction_ref(d: np.ndarray) -> list:
    out = []
    for v in np.ravel(d):
        x = mp.mpf(float(v))
        out.append(x - 2 * mp.pi * mp.nint(x / (2 * mp.pi)))
    return out


def _angle_grid(dtype) -> np.ndarray:
    lim = 1e4 if dtype is np.float64 else 200.0
    k = np.arange(-int(lim / np.pi), int(lim / np.pi) + 1)
    near = (k * np.pi).astype(dtype)  # near multiples of pi: r ~ 0 or r ~ +-pi
    d = np.concatenate(
        [
            np.linspace(-lim, lim, 10_001).astype(dtype),
            near,
            np.nextafter(near, dtype(np.inf)),
            np.nextafter(near, dtype(-np.inf)),
            np.array([0.0, -0.0, 1e-30, -1e-30, np.pi, -np.pi, 2 * np.pi], dtype=dtype),
        ]
    )
    # No subnormals: XLA on CPU flushes them to zero.
    return d[(d == 0) | (np.abs(d) >= np.finfo(dtype).tiny)]


def test_reduce_angle(dtype):
    d = _angle_grid(dtype)
    r = np.asarray(fm.reduce_angle(jnp.asarray(d)))
    assert r.dtype == dtype
    assert np.all(np.abs(r) <= _nextafter(np.pi, np.inf, dtype))
    ref = _reduction_ref(d)
    eps = np.finfo(dtype).eps
    two_pi = 2 * mp.pi
    tail = 1e-28 if dtype is np.float64 else 1e-20
    for rv, refv in zip(r, ref, strict=True):
        diff = mp.mpf(float(rv)) - refv
        diff -= two_pi * mp.nint(diff / two_pi)  # either representative at +-pi is fine
        # ~1 ulp of |r| (relative, so also for r near 0); tail of the 3-part split.
        assert abs(diff) <= 2 * eps * abs(refv) + tail, (rv, refv)


def test_reduce_angle_special(dtype):
    x = jnp.asarray(np.array([np.nan, np.inf, -np.inf], dtype=dtype))
    assert np.all(np.isnan(np.asarray(fm.reduce_angle(x))))
    d = jnp.asarray(np.linspace(-50, 50, 11), dtype=dtype)
    g = jax.jit(jax.vmap(jax.grad(fm.reduce_angle)))(d)
    np.testing.assert_array_equal(np.asarray(g), 1.0)


# ----------------------------------------------------------------------------- sincos


def _small_edges(dtype) -> np.ndarray:
    # No subnormals: XLA on CPU flushes them to zero (as for jnp.sin etc).
    tiny = np.finfo(dtype).tiny
    return np.array([tiny, -tiny, 4 * tiny, 1e-30, -1e-30, 1e-20, 1e-8, -1e-8], dtype=dtype)


def test_sincos(dtype):
    pio2 = dtype(np.pi / 2)
    pio4 = dtype(np.pi / 4)
    h = np.concatenate(
        [
            np.linspace(-pio2, pio2, 10_001, dtype=dtype),
            _small_edges(dtype),
            np.array(
                [
                    pio2,
                    -pio2,
                    _nextafter(pio2, 0, dtype),
                    pio4,
                    _nextafter(pio4, 1, dtype),
                    _nextafter(pio4, 0, dtype),
                ],
                dtype=dtype,
            ),
        ]
    )
    s, c = (np.asarray(v) for v in fm.sincos(jnp.asarray(h)))
    assert s.dtype == dtype and c.dtype == dtype
    nz = h != 0
    assert _rel_err(s[nz], _mp_map(mp.sin, h[nz])).max() <= RTOL[dtype]
    # cos keeps relative accuracy even near +-pi/2 (evaluated as sin(pi/2 - |h|)).
    assert _rel_err(c, _mp_map(mp.cos, h)).max() <= RTOL[dtype]


def test_sincos_special(dtype):
    s, c = fm.sincos(jnp.asarray(np.array([0.0, -0.0, np.nan], dtype=dtype)))
    s, c = np.asarray(s), np.asarray(c)
    assert s[0] == 0 and not np.signbit(s[0]) and np.signbit(s[1]) and s[1] == 0
    assert c[0] == 1 and c[1] == 1
    assert np.isnan(s[2]) and np.isnan(c[2])
    h = jnp.asarray(np.array([0.0, 0.3, -1.2, 1.5], dtype=dtype))
    ds = jax.jit(jax.vmap(jax.grad(lambda x: fm.sincos(x)[0])))(h)
    dc = jax.jit(jax.vmap(jax.grad(lambda x: fm.sincos(x)[1])))(h)
    np.testing.assert_allclose(ds, np.cos(np.asarray(h, np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dc, -np.sin(np.asarray(h, np.float64)), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- half_angle_sincos


def test_half_angle_sincos(dtype):
    d = _angle_grid(dtype)
    s, c = (np.asarray(v, dtype=np.float64) for v in fm.half_angle_sincos(jnp.asarray(d)))
    eps = np.finfo(dtype).eps
    rtol, atol = RTOL[dtype], eps * np.pi  # atol: cos(r/2) near r = +-pi (rounding of r)
    ref = _reduction_ref(d)
    ref_s = np.array([float(abs(mp.sin(r / 2))) for r in ref])
    ref_c = np.array([float(abs(mp.cos(r / 2))) for r in ref])
    ref_sin = np.array([float(mp.sin(mp.mpf(float(v)))) for v in d])
    nz = ref_s != 0
    # |sin(r/2)|: relative, also near multiples of 2 pi.
    assert _rel_err(np.abs(s[nz]), ref_s[nz]).max() <= rtol
    assert np.all(s[~nz] == 0)
    assert np.all(np.abs(np.abs(c) - ref_c) <= rtol * ref_c + atol)
    # No final wrap in half_angle_sincos: |r| may exceed pi by ~|d| eps, and
    # cos(r/2) be slightly negative.
    assert np.all(c >= -(atol + 2 * eps * np.abs(d)))
    assert np.all(np.abs(2 * s * c - ref_sin) <= 2 * rtol * np.abs(ref_sin) + 2 * atol)


def test_half_angle_sincos_special(dtype):
    x = jnp.asarray(np.array([np.nan, np.inf, -np.inf], dtype=dtype))
    assert all(np.all(np.isnan(np.asarray(v))) for v in fm.half_angle_sincos(x))
    d = jnp.asarray(np.array([0.0, 0.4, -2.5, 7.0, 100.0], dtype=dtype))
    g = jax.jit(jax.vmap(jax.grad(lambda x: fm.half_angle_sincos(x)[0] ** 2)))(d)
    np.testing.assert_allclose(g, 0.5 * np.sin(np.asarray(d, np.float64)), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- tan_pi


def test_tan_pi(dtype):
    half = dtype(0.5)
    q = dtype(0.25)
    edges = [
        _nextafter(half, 0, dtype),
        q,
        _nextafter(q, 0, dtype),
        _nextafter(q, 1, dtype),
        dtype(0.499999),
        dtype(1e-3),
    ]
    edges = np.array(edges + [-e for e in edges], dtype=dtype)
    s = np.concatenate(
        [np.linspace(-0.5, 0.5, 10_001, dtype=dtype)[1:-1], edges, _small_edges(dtype)]
    )
    s = s[s != 0]
    t = np.asarray(fm.tan_pi(jnp.asarray(s)))
    assert t.dtype == dtype
    ref = _mp_map(lambda x: mp.tan(mp.pi * x), s)
    assert _rel_err(t, ref).max() <= RTOL[dtype]


def test_tan_pi_special(dtype):
    t = np.asarray(fm.tan_pi(jnp.asarray(np.array([0.0, -0.0, 0.5, -0.5, np.nan], dtype=dtype))))
    assert t[0] == 0 and not np.signbit(t[0]) and t[1] == 0 and np.signbit(t[1])
    assert t[2] == np.inf and t[3] == -np.inf and np.isnan(t[4])
    s = jnp.asarray(np.array([0.0, 0.1, -0.3, 0.45], dtype=dtype))
    g = jax.jit(jax.vmap(jax.grad(fm.tan_pi)))(s)
    want = np.pi / np.cos(np.pi * np.asarray(s, np.float64)) ** 2
    np.testing.assert_allclose(g, want, rtol=1e-5)


# ----------------------------------------------------------------------------- atan


def test_atan(dtype):
    big = 1e300 if dtype is np.float64 else 1e37
    thr = [dtype(0.66), dtype(2.414213562373095), dtype(1.0), dtype(np.tan(np.pi / 8))]
    thr = thr + [_nextafter(t, np.inf, dtype) for t in thr] + [_nextafter(t, 0, dtype) for t in thr]
    pos = np.concatenate(
        [
            np.geomspace(1e-30, 1e30, 3_000),
            [big, np.finfo(dtype).max],
            _small_edges(dtype)[_small_edges(dtype) > 0],
            thr,
        ]
    ).astype(dtype)
    w = np.concatenate([np.linspace(-10, 10, 4_000, dtype=dtype), pos, -pos])
    w = w[w != 0]
    a = np.asarray(fm.atan(jnp.asarray(w)))
    assert a.dtype == dtype
    assert _rel_err(a, _mp_map(mp.atan, w)).max() <= RTOL[dtype]


def test_atan_special(dtype):
    w = jnp.asarray(np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype))
    a = np.asarray(fm.atan(w))
    assert a[0] == 0 and not np.signbit(a[0]) and a[1] == 0 and np.signbit(a[1])
    assert a[2] == dtype(np.pi / 2) and a[3] == -dtype(np.pi / 2) and np.isnan(a[4])
    x = jnp.asarray(np.array([0.0, 0.5, -0.8, 2.0, -3.0, 50.0], dtype=dtype))
    g = jax.jit(jax.vmap(jax.grad(fm.atan)))(x)
    np.testing.assert_allclose(g, 1 / (1 + np.asarray(x, np.float64) ** 2), rtol=1e-5)


# ----------------------------------------------------------------------------- dtype / transforms


def test_dtype_follows_input():
    x32 = jnp.linspace(-1.0, 1.0, 7, dtype=jnp.float32)
    for f in (fm.reduce_angle, fm.tan_pi, fm.atan):
        assert f(x32).dtype == jnp.float32
        assert f(x32.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert fm.atan(jnp.arange(3)).dtype == jnp.float32
    with jax.enable_x64(True):
        x64 = jnp.linspace(-1.0, 1.0, 7)
        assert x64.dtype == jnp.float64
        for f in (fm.reduce_angle, fm.tan_pi, fm.atan):
            assert f(x64).dtype == jnp.float64
        assert all(v.dtype == jnp.float64 for v in fm.half_angle_sincos(x64))
        # float32 inputs stay float32 (and use the float32 polynomials) under x64.
        assert fm.atan(x32).dtype == jnp.float32
    assert jnp.asarray(1.0).dtype == jnp.float32  # x64 did not leak


def test_jit_vmap_match_eager(dtype):
    x = jnp.asarray(np.linspace(-0.49, 0.49, 64).reshape(8, 8), dtype=dtype)
    for f in (
        _fm.tan_pi,
        _fm.atan,
        _fm.reduce_angle,
        lambda v: _fm.sincos(v)[1],
        lambda v: _fm.half_angle_sincos(10 * v)[0],
    ):
        want = np.asarray(jax.jit(f)(x))
        np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(f))(x)), want)
        np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(jax.vmap(f)))(x)), want)


def test_split_prod_double_word():
    """hi + lo is a * b to 2**-32 relative (float32) and 2**-58 (float64), exact rational
    arithmetic as reference, under jit (where XLA may contract products into sums)."""
    from fractions import Fraction

    rng = np.random.default_rng(7)
    for dtype, x64, bound in ((np.float32, False, 2.0**-32), (np.float64, True, 2.0**-58)):
        a = (rng.standard_normal(300) * 10.0 ** rng.integers(-6, 6, 300)).astype(dtype)
        b = (rng.standard_normal(300) * 10.0 ** rng.integers(-6, 6, 300)).astype(dtype)
        with jax.enable_x64(x64):
            hi, lo = jax.jit(_fm.split_prod)(jnp.asarray(a), jnp.asarray(b))
        for ai, bi, h, lo_ in zip(a, b, np.asarray(hi), np.asarray(lo), strict=True):
            exact = Fraction(float(ai)) * Fraction(float(bi))
            err = abs(Fraction(float(h)) + Fraction(float(lo_)) - exact)
            assert err <= Fraction(bound) * abs(exact), (ai, bi)


def test_half_angle_sincos_dd_against_mpmath():
    """float32 double words: |s_hi + s_lo - sin(r/2)| <= 1.2e-8 (an ulp of 0.5 is 6e-8) for
    angles in three turns either side of 0 given as a float32 pair d + d_lo (measured max
    7.0e-9, 2026-12-04: the rounding of the z^2 terms); cos likewise. Jitted and op-by-op
    evaluation give the same high words and low words equal to rounding, so XLA's
    contraction of products into sums (which broke an earlier version under jit) does not
    change the result."""
    rng = np.random.default_rng(3)
    d = rng.uniform(-6 * np.pi, 6 * np.pi, 400).astype(np.float32)
    d_lo = (rng.uniform(-1, 1, 400) * np.spacing(np.abs(d)) / 2).astype(np.float32)
    args = (jnp.asarray(d), jnp.asarray(d_lo))
    jitted = [np.asarray(v) for v in jax.jit(_fm.half_angle_sincos_dd)(*args)]
    with jax.disable_jit():
        eager = [np.asarray(v) for v in _fm.half_angle_sincos_dd(*args)]
    for j, e in zip(jitted[::2], eager[::2], strict=True):  # high words: identical
        np.testing.assert_array_equal(j, e)
    for j, e in zip(jitted[1::2], eager[1::2], strict=True):  # low words: to rounding
        np.testing.assert_allclose(j, e, rtol=0, atol=1e-9)
    s_hi, s_lo, c_hi, c_lo = (v.astype(np.float64) for v in jitted)
    err_s = err_c = 0.0
    with mp.workdps(40):
        for i in range(d.size):
            r = mp.mpf(float(d[i])) + mp.mpf(float(d_lo[i]))
            r = r - 2 * mp.pi * mp.nint(r / (2 * mp.pi))
            err_s = max(err_s, abs(float(mp.mpf(s_hi[i]) + mp.mpf(s_lo[i]) - mp.sin(r / 2))))
            err_c = max(err_c, abs(float(mp.mpf(c_hi[i]) + mp.mpf(c_lo[i]) - mp.cos(r / 2))))
    assert err_s <= 1.2e-8, err_s
    assert err_c <= 1.2e-8, err_c
