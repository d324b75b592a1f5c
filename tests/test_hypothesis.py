"""Property-based tests of the public core API (Hypothesis), float32 and float64.

Deterministic: ``derandomize=True`` draws the same examples on every run and machine, and
there is no deadline (XLA compiles on first use). The example counts keep the module
under ~60 s on a 2-core CPU.

Strategies cover the whole domain: concentrations on a log scale from 0 to the dtype's
largest finite value, angles anywhere on the real line, probabilities in [0, 1] with
denormal tails. Tolerances are stated per property, in units that hold on any CPU: a few
ulp of the dtype, scaled by the quantity's natural magnitude.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vm_ppl

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
DTYPES = ["float32", "float64"]


def _finfo(dtype: str):
    return np.finfo(np.dtype(dtype))


def concentrations(dtype: str) -> st.SearchStrategy[float]:
    """0, or 10**u with u uniform from the smallest subnormal to the largest float."""
    fi = _finfo(dtype)
    lo, hi = math.log10(float(fi.smallest_subnormal)), math.log10(float(fi.max))

    def to_dtype(u: float) -> float:
        with np.errstate(over="ignore"):  # 10**hi may round past the largest float
            return float(np.minimum(np.power(10.0, u), fi.max).astype(dtype))

    return st.one_of(st.just(0.0), st.floats(lo, hi).map(to_dtype))


def angles(dtype: str, magnitude: float | None = None) -> st.SearchStrategy[float]:
    """Angles anywhere on the line (or within +-magnitude), exactly representable."""
    fi = _finfo(dtype)
    hi = float(fi.max) if magnitude is None else magnitude
    width = 32 if dtype == "float32" else 64
    return st.one_of(
        st.floats(-4.0, 4.0, width=width),
        st.floats(-hi, hi, width=width, allow_nan=False, allow_infinity=False),
    )


def probabilities(dtype: str) -> st.SearchStrategy[float]:
    """q in [0, 1], with denormal lower tails and upper tails within an ulp of 1."""
    fi = _finfo(dtype)
    width = 32 if dtype == "float32" else 64
    tiny = float(fi.tiny)
    small = float(np.asarray(1e-6, dtype))
    return st.one_of(
        st.floats(0.0, 1.0, width=width),
        st.floats(0.0, tiny, width=width),  # zero and subnormals
        st.floats(0.0, small, width=width),
        st.floats(float(np.asarray(1.0 - small, dtype)), 1.0, width=width),
        st.sampled_from([0.0, 1.0, 0.5, float(fi.smallest_subnormal)]),
    )


# Compiled once per dtype (eager calls of grad would re-trace on every example).
log_prob = jax.jit(vm_ppl.log_prob)
cdf = jax.jit(vm_ppl.cdf)
icdf = jax.jit(vm_ppl.icdf)
grad_log_prob = jax.jit(jax.grad(vm_ppl.log_prob, argnums=(0, 1, 2)))
grad_cdf = jax.jit(jax.grad(vm_ppl.cdf, argnums=(0, 1, 2)))
grad_icdf_q = jax.jit(jax.grad(vm_ppl.icdf))
entropy = jax.jit(vm_ppl.entropy)
circular_variance = jax.jit(vm_ppl.circular_variance)
kl_divergence = jax.jit(vm_ppl.kl_divergence)
bessel_ratio = jax.jit(vm_ppl.bessel_ratio)
log_i0e = jax.jit(vm_ppl.bessel.log_i0e)
grad_entropy = jax.jit(jax.grad(vm_ppl.entropy))
grad_circular_variance = jax.jit(jax.grad(vm_ppl.circular_variance))


def _arr(v: float, dtype: str) -> jnp.ndarray:
    return jnp.asarray(v, dtype)


def _eps(dtype: str) -> float:
    return float(_finfo(dtype).eps)


# ------------------------------------------------------------------------------------------
# log_prob


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_stays_in_the_density_range(dtype):
    @SETTINGS
    @given(x=angles(dtype), loc=angles(dtype), k=concentrations(dtype))
    def check(x, loc, k):
        lp = float(log_prob(_arr(x, dtype), _arr(loc, dtype), _arr(k, dtype)))
        k32 = float(_arr(k, dtype))
        log_norm = -math.log(2 * math.pi) - float(log_i0e(_arr(k32, dtype)))
        top, bottom = log_norm, log_norm - 2.0 * k32
        tol = 8 * _eps(dtype) * max(1.0, abs(bottom))
        assert bottom - tol <= lp <= top + tol, (x, loc, k, lp, bottom, top)

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_against_mpmath(dtype):
    """Spot values anywhere on the line: error relative to the density's scale, 2k + 1."""

    @SETTINGS
    @given(x=angles(dtype), loc=angles(dtype, 1e6), k=concentrations(dtype))
    def check(x, loc, k):
        xs, ls, ks = (_arr(v, dtype) for v in (x, loc, k))
        got = float(log_prob(xs, ls, ks))
        xm, lm, km = (mp.mpf(float(v)) for v in (xs, ls, ks))
        with mp.workdps(700):  # exact difference of floats up to 1e308
            ref = float(
                -2 * km * mp.sin((xm - lm) / 2) ** 2
                - mp.log(2 * mp.pi)
                - mp.log(mp.besseli(0, km))
                + km
            )
        tol = 16 * _eps(dtype) * (1.0 + abs(ref) + 2 * float(ks))
        assert abs(got - ref) <= tol, (x, loc, k, got, ref)

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_gradients_match_finite_differences(dtype):
    """Smooth in x, loc and k > 0: central differences in float64 (the reference), and the
    float32 gradient against the float64 one."""

    @SETTINGS
    @given(
        x=angles(dtype, 50.0),
        loc=angles(dtype, 50.0),
        k=st.floats(-3.0, 6.0).map(lambda u: float(np.asarray(10.0**u, dtype))),
    )
    def check(x, loc, k):
        with jax.enable_x64(True):
            f64 = lambda *a: log_prob(*(jnp.asarray(v, "float64") for v in a))  # noqa: E731
            fd = []
            for i, v in enumerate((x, loc, k)):
                h = 1e-6 * max(1.0, abs(v)) if i < 2 else 1e-6 * v
                up = [x, loc, k]
                dn = [x, loc, k]
                up[i] = v + h
                dn[i] = v - h
                fd.append((float(f64(*up)) - float(f64(*dn))) / (2 * h))
        grads = grad_log_prob(*(_arr(v, dtype) for v in (x, loc, k)))
        scales = (k, k, 1.0)  # |d/dx| <= k; |d/dk| <= 2
        rel = 1e-5 if dtype == "float64" else 1e-3
        for g, f, s in zip(grads, fd, scales, strict=True):
            assert np.isfinite(float(g))
            assert abs(float(g) - f) <= rel * (s + abs(f)) + 1e-6 * s, (x, loc, k, g, f)

    with jax.enable_x64(dtype == "float64"):
        check()


# ------------------------------------------------------------------------------------------
# cdf / icdf


@pytest.mark.parametrize("dtype", DTYPES)
def test_cdf_monotone_and_one_per_turn(dtype):
    @SETTINGS
    @given(
        x=angles(dtype, 1e4),
        dx=st.floats(0.0, 7.0),
        loc=angles(dtype, 1e4),
        k=concentrations(dtype),
    )
    def check(x, dx, loc, k):
        xs, ls, ks = (_arr(v, dtype) for v in (x, loc, k))
        x2 = xs + _arr(dx, dtype)
        f1, f2 = float(cdf(xs, ls, ks)), float(cdf(x2, ls, ks))
        # Rounding noise of the series (~1 ulp of the value), never a real decrease.
        assert f2 >= f1 - 4 * _eps(dtype) * max(1.0, abs(f1)), (x, dx, loc, k, f1, f2)
        turn = float(cdf(xs + _arr(2 * math.pi, dtype), ls, ks))
        # x + 2pi is rounded to the dtype: allow the cdf's change over that rounding.
        slack = float(log_prob(ls, ls, ks))  # log of the density's maximum
        drift = math.exp(min(slack, 700.0)) * 4 * _eps(dtype) * (abs(x) + 7.0)
        assert abs(turn - f1 - 1.0) <= drift + 8 * _eps(dtype) * max(1.0, abs(f1)), (
            x,
            loc,
            k,
            f1,
            turn,
        )

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_icdf_cdf_round_trip(dtype):
    """cdf(icdf(q)) = q for every q in [0, 1], denormals included, and every concentration:
    to an absolute 2e-15 (float64) / 3e-7 (float32), plus what the rounding of the
    returned angle to the dtype can move the cdf (density times an ulp of x), as stated in
    :func:`vm_ppl.icdf`."""
    atol = 2e-15 if dtype == "float64" else 3e-7

    @SETTINGS
    @given(q=probabilities(dtype), loc=angles(dtype, 10.0), k=concentrations(dtype))
    def check(q, loc, k):
        qs, ls, ks = (_arr(v, dtype) for v in (q, loc, k))
        x = icdf(qs, ls, ks)
        assert float(ls) - math.pi - 1e-6 <= float(x) <= float(ls) + math.pi + 1e-6
        back = float(cdf(x, ls, ks))
        # The cdf of icdf(q) is the window's cdf (0 at loc - pi): no turn added.
        resolution = float(jnp.exp(log_prob(x, ls, ks))) * float(np.spacing(np.asarray(x)))
        assert abs(back - float(qs)) <= atol + resolution, (q, loc, k, float(x), back)

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_cdf_and_icdf_gradients(dtype):
    """dF/dx is the density and dx/dq its reciprocal (implicit function theorem), finite
    wherever the density is positive."""

    @SETTINGS
    @given(
        x=angles(dtype, 3.0),
        k=st.floats(-3.0, 3.0).map(lambda u: float(np.asarray(10.0**u, dtype))),
    )
    def check(x, k):
        xs, ks = _arr(x, dtype), _arr(k, dtype)
        zero = _arr(0.0, dtype)
        dens = float(jnp.exp(log_prob(xs, zero, ks)))
        dfdx = float(grad_cdf(xs, zero, ks)[0])
        assert abs(dfdx - dens) <= 1e-5 * dens + 1e-30
        q = cdf(xs, _arr(0.0, dtype), ks)
        if 1e-5 < float(q) < 1 - 1e-5:
            x_back = icdf(q, zero, ks)
            dxdq = float(grad_icdf_q(q, zero, ks))
            dens_back = float(jnp.exp(log_prob(x_back, zero, ks)))
            assert np.isfinite(dxdq)
            assert abs(dxdq * dens_back - 1.0) <= 1e-4
        for g in grad_cdf(xs, zero, ks)[1:]:
            assert np.isfinite(float(g))

    with jax.enable_x64(dtype == "float64"):
        check()


# ------------------------------------------------------------------------------------------
# NaN exactly where documented


def _bad_or_good_k(dtype: str) -> st.SearchStrategy[float]:
    return st.one_of(concentrations(dtype), st.sampled_from([-1.0, -1e-30, math.nan, math.inf]))


def _k_ok(k: float) -> bool:
    return math.isfinite(k) and k >= 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_exactly_where_documented(dtype):
    nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])

    @SETTINGS
    @given(
        x=st.one_of(angles(dtype), nonfinite),
        loc=st.one_of(angles(dtype, 1e3), nonfinite),
        q=st.one_of(probabilities(dtype), st.sampled_from([-0.1, 1.1, math.nan])),
        k=_bad_or_good_k(dtype),
    )
    def check(x, loc, q, k):
        xs, ls, qs, ks = (_arr(v, dtype) for v in (x, loc, q, k))
        finite_args = math.isfinite(x) and math.isfinite(loc)
        # log_prob, cdf: NaN iff the concentration is invalid or x/loc is NaN or infinite.
        assert bool(jnp.isnan(log_prob(xs, ls, ks))) == (not (_k_ok(k) and finite_args))
        assert bool(jnp.isnan(cdf(xs, ls, ks))) == (not (_k_ok(k) and finite_args))
        # icdf: NaN iff q is outside [0, 1] or NaN, the concentration invalid, or loc NaN.
        q_ok = 0.0 <= q <= 1.0
        assert bool(jnp.isnan(icdf(qs, ls, ks))) == (not (q_ok and _k_ok(k)) or math.isnan(loc))
        # Functions of the concentration alone: NaN iff it is invalid, gradient too.
        for f, g in ((entropy, grad_entropy), (circular_variance, grad_circular_variance)):
            assert bool(jnp.isnan(f(ks))) == (not _k_ok(k))
            assert bool(jnp.isnan(g(ks))) == (not _k_ok(k))
        kl = kl_divergence(ls, ks, _arr(0.0, dtype), _arr(1.0, dtype))
        assert bool(jnp.isnan(kl)) == (not (_k_ok(k) and math.isfinite(loc)))

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_invalid_concentration_gives_nan_gradients(dtype):
    with jax.enable_x64(dtype == "float64"):
        for k in (-1.0, math.nan, math.inf):
            ks = _arr(k, dtype)
            fns = {
                "log_prob": lambda kk: vm_ppl.log_prob(0.3, 0.0, kk),
                "cdf": lambda kk: vm_ppl.cdf(0.3, 0.0, kk),
                "icdf": lambda kk: vm_ppl.icdf(0.3, 0.0, kk),
                "entropy": vm_ppl.entropy,
                "circular_variance": vm_ppl.circular_variance,
                "kl_p": lambda kk: vm_ppl.kl_divergence(0.0, kk, 0.3, 1.0),
                "kl_q": lambda kk: vm_ppl.kl_divergence(0.0, 1.0, 0.3, kk),
            }
            for name, f in fns.items():
                assert np.isnan(float(jax.grad(f)(ks))), (name, k)


# ------------------------------------------------------------------------------------------
# Functions of the concentration: range, and the derivative at k = 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_concentration_functions_in_range(dtype):
    @SETTINGS
    @given(k=concentrations(dtype), k2=concentrations(dtype), d=angles(dtype, 10.0))
    def check(k, k2, d):
        ks, k2s = _arr(k, dtype), _arr(k2, dtype)
        tol = 8 * _eps(dtype)
        h = float(entropy(ks))
        assert h <= math.log(2 * math.pi) * (1 + tol)
        cv = float(circular_variance(ks))
        assert -tol <= cv <= 1 + tol
        kl = float(kl_divergence(_arr(d, dtype), ks, _arr(0.0, dtype), k2s))
        assert kl >= -tol * max(1.0, abs(kl)) and not math.isnan(kl)
        r = float(bessel_ratio(ks))
        assert -tol <= r <= 1 + tol

    with jax.enable_x64(dtype == "float64"):
        check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_derivatives_at_zero_concentration(dtype):
    """Exact one-sided derivatives at k = 0 (the domain's edge) for every function of k.

    Closed forms: H'(0) = 0 (H' = -k A'); circular variance' = -A'(0) = -1/2;
    d KL/d k_p at k_p = 0 is -k_q cos(d)/2, d KL/d k_q at k_q = 0 is -A(k_p) cos(d);
    d log p/dk at 0 is cos(x - mu); d log I0 = A(0) = 0; dA = 1/2; d A^{-1}/dr at 0 = 2.
    """
    with jax.enable_x64(dtype == "float64"):
        z = _arr(0.0, dtype)
        d = 0.7
        a1 = float(vm_ppl.bessel_ratio(_arr(1.5, dtype)))
        cases = [
            (jax.grad(vm_ppl.entropy)(z), 0.0),
            (jax.grad(vm_ppl.circular_variance)(z), -0.5),
            (jax.grad(lambda k: vm_ppl.kl_divergence(d, k, 0.0, 2.0))(z), -np.cos(d)),
            (jax.grad(lambda k: vm_ppl.kl_divergence(d, 1.5, 0.0, k))(z), -a1 * np.cos(d)),
            (jax.grad(lambda k: vm_ppl.log_prob(d, 0.0, k))(z), np.cos(d)),
            (jax.grad(vm_ppl.log_i0)(z), 0.0),
            (jax.grad(vm_ppl.bessel_ratio)(z), 0.5),
            (jax.grad(vm_ppl.inv_bessel_ratio)(z), 2.0),
        ]
        for got, want in cases:
            assert abs(float(got) - want) <= 1e-6, (float(got), want)
        # The cdf's and icdf's k-derivatives at 0 against one-sided differences.
        for f in (lambda k: vm_ppl.cdf(d, 0.0, k), lambda k: vm_ppl.icdf(0.3, 0.0, k)):
            h = 1e-3 if dtype == "float32" else 1e-7
            fd = (float(f(_arr(h, dtype))) - float(f(z))) / h
            assert abs(float(jax.grad(f)(z)) - fd) <= 2e-3 * max(1.0, abs(fd))


# ------------------------------------------------------------------------------------------
# Bad dtypes and shapes


def test_half_precision_is_refused_by_name():
    for dt in (jnp.float16, jnp.bfloat16):
        h = jnp.ones(3, dt)
        for call, args, name in (
            (vm_ppl.log_prob, (h, 0.0, 1.0), "x"),
            (vm_ppl.cdf, (0.0, h, 1.0), "loc"),
            (vm_ppl.icdf, (0.5, 0.0, h), "concentration"),
            (vm_ppl.sample, (jax.random.key(0), 0.0, h), "concentration"),
            (vm_ppl.entropy, (h,), "concentration"),
        ):
            with pytest.raises(TypeError, match=name):
                call(*args)
