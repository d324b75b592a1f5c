"""Branchless, fusible polynomial trigonometry for the von Mises hot paths.

On CPU, XLA lowers ``jnp.sin``/``cos``/``tan``/``arctan`` to scalar libm calls
(several ms per 1e6 elements), whereas a polynomial built only from arithmetic
and ``jnp.where`` fuses into a single vectorised loop (~10-20x faster).  Every
function here is elementwise, jit/vmap/grad friendly (plain autodiff through
the polynomials), free of gathers and lax control flow, and follows the input
dtype: float32 (JAX default) uses short float32-grade polynomials, float64
(``jax_enable_x64``) uses longer ones.  Degrees and constants are chosen
statically from the dtype.  float16/bfloat16 inputs are computed in float32
and cast back; integer inputs are promoted to the default float dtype.

Accuracy (max relative error, measured against mpmath in tests/test_fastmath.py)
is a few ulp in both dtypes; see the individual docstrings.
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

__all__ = [
    "atan",
    "half_angle_sincos",
    "half_angle_sincos_of_difference",
    "reduce_angle",
    "sincos",
    "squared_sine_terms",
    "tan_pi",
]

# pi to 70 significant digits (printed by mpmath with mp.dps = 70; checked
# against mpmath in the tests).  All constants below are derived from it with
# exact rational arithmetic and rounded once to the target dtype.
_PI_DECIMAL = "3.141592653589793238462643383279502884197169399375105820974944592307816"
_PI = Fraction(_PI_DECIMAL)


def _round_bits(q: Fraction, bits: int) -> Fraction:
    """Round ``q`` to ``bits`` significant bits (exactly, as a Fraction)."""
    m, e = np.frexp(float(q))  # |q| = m * 2**e with 0.5 <= |m| < 1 (float guess)
    scale = Fraction(2) ** (bits - int(e))
    return Fraction(round(q * scale)) / scale


def _cody_waite(x: Fraction, bits: int, dtype: type) -> tuple:
    """Split ``x`` as C1 + C2 + C3: C1, C2 have ``bits`` significant bits each
    (so n*C1 and n*C2 are exact for |n| < 2**(p - bits), p the dtype precision);
    C3 is the remainder rounded to the dtype."""
    c1 = _round_bits(x, bits)
    c2 = _round_bits(x - c1, bits)
    c3 = x - c1 - c2
    return dtype(float(c1)), dtype(float(c2)), dtype(float(c3))


def _consts(dtype: type) -> dict:
    f64 = dtype is np.float64
    # Cody-Waite bits: float64 p=53 -> 33-bit parts, exact n*C for |n| < 2**20;
    # float32 p=24 -> 12-bit parts, exact for |n| < 2**12.
    cw_bits = 33 if f64 else 12
    two_pi = 2 * _PI
    c = {}
    c["tp1"], c["tp2"], c["tp3"] = _cody_waite(two_pi, cw_bits, dtype)
    c["inv_2pi"] = dtype(float(1 / two_pi))
    c["pi"] = dtype(float(_PI))
    c["pio4"] = dtype(float(_PI / 4))
    # pi/2 = pio2_hi + pio2_lo, pio2_hi the dtype-rounded value.
    pio2_hi = dtype(float(_PI / 2))
    c["pio2_hi"] = pio2_hi
    c["pio2_lo"] = dtype(float(_PI / 2 - Fraction(float(pio2_hi))))
    pio4_hi = dtype(float(_PI / 4))
    c["pio4_hi"] = pio4_hi
    c["pio4_lo"] = dtype(float(_PI / 4 - Fraction(float(pio4_hi))))
    c["tan3pio8"] = dtype(2.414213562373095)  # 1 + sqrt(2); exact value not critical
    c["atan_mid"] = dtype(0.66)  # Cephes threshold (limits cancellation in pi/4 + atan(t))

    # Taylor coefficients for |x| <= pi/4 (truncation error bounded by the
    # first omitted term of the alternating series):
    #   float64: sin to x^17 (next term 1e-19 rel), cos to x^16 (next 2e-18)
    #   float32: sin to x^9  (next 2e-9 rel),     cos to x^10 (next 1e-10)
    ks = 8 if f64 else 4
    kc = 8 if f64 else 5
    # sin x = x * (1 + z * S(z)),  S(z) = sum_{k>=1} (-1)^k z^(k-1) / (2k+1)!
    c["sin"] = tuple(
        dtype(float(Fraction((-1) ** k, factorial(2 * k + 1)))) for k in range(1, ks + 1)
    )
    # cos x = 1 + z * C(z),  C(z) = sum_{k>=1} (-1)^k z^(k-1) / (2k)!
    c["cos"] = tuple(dtype(float(Fraction((-1) ** k, factorial(2 * k)))) for k in range(1, kc + 1))
    # Same series in u = x/pi (for tan_pi, so pi*u is never rounded):
    # sin(pi u) = u * sum_{k>=0} (-1)^k pi^(2k+1) v^k / (2k+1)!,  v = u^2
    c["sinpi"] = tuple(
        dtype(float((-1) ** k * _PI ** (2 * k + 1) / factorial(2 * k + 1)))
        for k in range(0, ks + 1)
    )
    # cos(pi u) = 1 + v * sum_{k>=1} (-1)^k pi^(2k) v^(k-1) / (2k)!
    c["cospi"] = tuple(
        dtype(float((-1) ** k * _PI ** (2 * k) / factorial(2 * k))) for k in range(1, kc + 1)
    )
    # atan(x) = x * (1 + z * A(z)), z = x^2 in [0, 0.66^2].  A(z) interpolates
    # (atan(x)/x - 1)/z at Chebyshev nodes of [0, 0.4356] (near-minimax),
    # computed with mpmath at 50 digits and rounded to the dtype; see
    # tests/test_fastmath.py::_fit_atan, which regenerates and checks them.
    # Degree 14 (float64): 8.5e-18 max rel; degree 6 (float32): 7.7e-9 max rel.
    if f64:
        atan_c = (
            -0.3333333333333333,
            0.19999999999998458,
            -0.14285714285448603,
            0.1111111109298794,
            -0.09090908440859424,
            0.07692293584058214,
            -0.0666646564159431,
            0.0588037381846034,
            -0.05249245606674334,
            0.04690618976510973,
            -0.04078361874157361,
            0.032440431711566076,
            -0.02124341168627798,
            0.009710654827910926,
            -0.002233190322634193,
        )
    else:
        atan_c = (
            -0.3333333134651184,
            0.19999852776527405,
            -0.1428021788597107,
            0.11032336205244064,
            -0.085364431142807,
            0.05569375306367874,
            -0.020601481199264526,
        )
    c["atan"] = tuple(dtype(v) for v in atan_c)
    return c


_CONSTS = {np.dtype(np.float32): _consts(np.float32), np.dtype(np.float64): _consts(np.float64)}


# Small arrays: XLA's CPU client runs a compiled program on the calling thread when its
# cost analysis counts fewer than 1,000 flops, and hands it to a thread pool otherwise,
# 10-20 µs more per call here (`cheap_computation_` in XLA's xla/pjrt/cpu/cpu_client.cc).
# XLA's sin/cos count as transcendentals, not flops, while the polynomials here cost ~100
# flops per element for a log-density + gradient: with them NumPyro's tan-half regression
# at ten observations counts 2,044 flops (float32) and takes 2.0x the built-in's time per
# call; in float64, with sin/cos, 774 flops and 0.97x, and the jaxified PyMC model 801
# flops and 0.98x pm.VonMises (`python -m vm_ppl.bench.tan_half --n 10`, BENCHMARKS.md).
# So in float64, where XLA's sin/cos are as accurate, arrays of at most SMALL_SIZE
# elements use them: per element slower, but such a call costs its dispatch, not its
# arithmetic. Float32 keeps the polynomials and double words everywhere (its accuracy
# rests on them).
SMALL_SIZE = 16


def use_xla_trig(dtype, *shapes: tuple[int, ...]) -> bool:
    """Whether a float64 elementwise kernel over ``shapes`` (broadcast) is small enough
    to use XLA's ``sin``/``cos`` instead of the fused polynomials (above). Call it inside a
    :func:`whole_array` function: under ``vmap`` the shapes a function is traced with are
    not the size it runs at."""
    size = int(np.prod(np.broadcast_shapes(*shapes)))
    return np.dtype(dtype) == np.float64 and size <= SMALL_SIZE


def whole_array(f):
    """``f``, elementwise in its array arguments, applied once to whole batched arrays
    under ``vmap`` (``custom_vmap``), so that a choice by size (:func:`use_xla_trig`)
    sees the arrays it runs on. PyTensor's JAX backend ``jnp.vectorize``-s fused
    elementwise graphs down to scalars; without this the kernel would take its small-array
    path at every size. Forward only: call it where no tangent flows through ``f`` (inside
    a custom JVP). ``f`` returns a tuple of arrays."""
    g = custom_vmap(f)

    @g.def_vmap
    def _batched(axis_size, in_batched, *args):
        # Batched arguments carry the batch axis in front: pad each to the per-example
        # rank, so that broadcasting lines the unbatched ones up with the trailing axes.
        rank = max(a.ndim - int(b) for a, b in zip(args, in_batched, strict=True))
        args = [
            jnp.reshape(a, (axis_size,) + (1,) * (rank - a.ndim + 1) + a.shape[1:]) if b else a
            for a, b in zip(args, in_batched, strict=True)
        ]
        out = g(*args)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return g


def _prep(x) -> tuple[jnp.ndarray, dict, np.dtype]:
    """Return (x in its compute dtype, constants for that dtype, output dtype)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    out = x.dtype
    if out not in _CONSTS:  # float16 / bfloat16: compute in float32
        x = x.astype(jnp.float32)
    return x, _CONSTS[np.dtype(x.dtype)], out


def _horner(z: jnp.ndarray, coeffs: tuple) -> jnp.ndarray:
    p = coeffs[-1] * z + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        p = p * z + c
    return p


def _reduce_nowrap(d: jnp.ndarray, c: dict) -> jnp.ndarray:
    # n*C1, n*C2 are exact and d - n*C1 is exact (Sterbenz), so r carries
    # ~3 dtype-words of 2*pi and keeps relative accuracy even near multiples.
    n = jnp.round(d * c["inv_2pi"])
    return ((d - n * c["tp1"]) - n * c["tp2"]) - n * c["tp3"]


def _reduce(d: jnp.ndarray, c: dict) -> jnp.ndarray:
    r = _reduce_nowrap(d, c)
    # round(d/2pi) can be off by one when d/2pi is within rounding of a
    # half-integer, leaving |r| slightly above pi: wrap once more (exactly).
    # (k*C is used rather than the bare constants because XLA's algebraic
    # simplifier reassociates (x - C1) - C2 into x - (C1 + C2), which would
    # fold the split away.)
    k = jnp.where(r > c["pi"], 1.0, jnp.where(r < -c["pi"], -1.0, 0.0)).astype(d.dtype)
    return ((r - k * c["tp1"]) - k * c["tp2"]) - k * c["tp3"]


def _sincos(h: jnp.ndarray, c: dict) -> tuple[jnp.ndarray, jnp.ndarray]:
    # For |h| > pi/4 evaluate at t = pi/2 - |h| (exact: Sterbenz + pi/2 split)
    # and swap sin/cos, so both outputs keep *relative* accuracy up to pi/2
    # (including cos near its zero) and the polynomials only cover [0, pi/4].
    a = jnp.abs(h)
    big = a > c["pio4"]
    # pio2_lo enters through a select: XLA's simplifier would otherwise fold
    # (C1 - a) + C2 into (C1 + C2) - a and silently drop the low part.
    lo = jnp.where(big, c["pio2_lo"], jnp.zeros_like(h))
    u = jnp.where(big, (c["pio2_hi"] - a) + lo, h)  # signed h keeps grad at 0
    z = u * u
    s = u * (1 + z * _horner(z, c["sin"]))  # multiplicative form keeps sin(-0) = -0
    co = 1 + z * _horner(z, c["cos"])
    sin_h = jnp.where(big, jnp.where(h < 0, -co, co), s)
    cos_h = jnp.where(big, s, co)
    return sin_h, cos_h


def reduce_angle(d: jnp.ndarray) -> jnp.ndarray:
    """Reduce an angle to ``r`` congruent to ``d`` modulo 2*pi with |r| <= pi.

    Uses ``n = round(d / (2 pi))`` and a 3-part Cody-Waite split of 2*pi
    (two 33-bit parts + a remainder in float64, two 12-bit parts + remainder
    in float32), so ``d - n * 2pi`` is computed to ~1 ulp of ``r`` (plus
    ``|n| * 2**-119`` resp. ``|n| * 2**-48``; relative accuracy is kept even
    when ``d`` is close to a multiple of 2*pi).

    Parameters
    ----------
    d : array_like
        Angles (float32 or float64; integers are promoted).

    Returns
    -------
    r : jax.Array
        Same shape/dtype as ``d``. ``|r| <= pi`` up to one ulp (the dtype's pi
        is not exactly pi).  Exactness of ``n * C1`` holds for
        ``|d| < 2**20 * 2pi ~ 6.6e6`` (float64) and ``|d| < 2**12 * 2pi ~ 2.6e4``
        (float32); beyond that accuracy degrades gradually.  ``+-inf`` and NaN
        give NaN.  The derivative dr/dd is 1.
    """
    x, c, out = _prep(d)
    return _reduce(x, c).astype(out)


def sincos(h: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``(sin h, cos h)`` for ``|h| <= pi/2`` via Taylor polynomials.

    Accuracy: both outputs have small *relative* error over the whole range
    (about 2 ulp: <= ~3e-16 float64, <= ~1.2e-7 float32), including ``sin``
    near 0 (``sin(-0) = -0``) and ``cos`` near ``+-pi/2``.  The result stays
    accurate up to ``|h| <= 3pi/4``; beyond that it is meaningless (no range
    reduction is done; use :func:`half_angle_sincos` / :func:`reduce_angle`).
    NaN in gives NaN out.

    Parameters
    ----------
    h : array_like
        Angles with ``|h| <= pi/2``.

    Returns
    -------
    (sin_h, cos_h) : tuple of jax.Array
    """
    x, c, out = _prep(h)
    s, co = _sincos(x, c)
    return s.astype(out), co.astype(out)


@jax.jit  # traced once per shape and dtype (see vm_ppl.bessel._i0e_i1e); XLA inlines it
def half_angle_sincos(d: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``(sin(r/2), cos(r/2))`` with ``r = d - 2 pi round(d / 2pi)``, for any real ``d``.

    ``r`` is :func:`reduce_angle` without its final one-step wrap (for speed):
    ``|r| <= pi`` except that, when ``d / 2pi`` is within rounding of a
    half-integer, ``|r|`` may exceed ``pi`` by ~``|d| eps`` (then ``r`` is the
    other representative and ``cos(r/2)`` may be ``-tiny`` instead of
    ``+tiny``).  In all cases ``sin(r/2)**2 == sin(d/2)**2``,
    ``cos(r/2)**2 == cos(d/2)**2`` and
    ``2 sin(r/2) cos(r/2) == sin(d)``.  This is the hot path of the von Mises
    log-density (``1 - cos d = 2 sin(d/2)**2`` without cancellation).

    Accuracy: ``sin(r/2)`` to a few ulp relative (also near multiples of 2*pi);
    ``cos(r/2)`` to a few ulp relative plus ~0.5 ulp(pi)/2 absolute near
    ``r = +-pi`` (from the rounding of ``r``).  Valid range as for
    :func:`reduce_angle`.  NaN/inf give NaN.

    Parameters
    ----------
    d : array_like
        Angles.

    Returns
    -------
    (s, c) : tuple of jax.Array
    """
    x, c, out = _prep(d)
    # The final wrap of reduce_angle is skipped here: it doubles the cost of
    # the fused loop, and _sincos stays accurate up to |h| <= 3pi/4 anyway.
    s, co = _sincos(0.5 * _reduce_nowrap(x, c), c)
    return s.astype(out), co.astype(out)


# Angles within +-_FAST_LIMIT (four turns) go straight into the fused reduction of
# x - loc: |x - loc| <= 8 turns, where the rounding of the difference is at most half an
# ulp of 8 turns (8 ulp of pi). Larger ones are first reduced exactly, on their own shape.
_FAST_LIMIT = 4 * 2 * np.pi


def _principal(a):
    # XLA's sin/cos reduce any argument exactly (Payne-Hanek), and atan2 of the pair is
    # the representative in [-pi, pi] of the exact float a, to an ulp.
    return jnp.where(jnp.abs(a) > _FAST_LIMIT, jnp.arctan2(jnp.sin(a), jnp.cos(a)), a)


def _principal_if_needed(a):
    # One test over the array and a branch whose false side returns the array itself:
    # the common case (every angle within four turns) pays one reduction over the data,
    # and the elementwise loop that follows still fuses. Off CPU a conditional waits for
    # its predicate on the host (a sync per call, inside every NUTS step), while sin/cos
    # are cheap there: a select costs less.
    def on_cpu(a):
        return lax.cond(jnp.any(jnp.abs(a) > _FAST_LIMIT), _principal, lambda a: a, a)

    return lax.platform_dependent(a, cpu=on_cpu, default=_principal)


# Under vmap a batched lax.cond predicate turns into a select that runs both branches
# for every element (NumPyro's vectorized chains would pay sin/cos always). The batching
# rule applies the same function to the whole batch instead: one predicate.
_principal_vmap = custom_vmap(_principal_if_needed)


@_principal_vmap.def_vmap
def _principal_batched(axis_size, in_batched, a):
    return _principal_vmap(a), in_batched[0]


def _half_sincos_impl(d: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    if use_xla_trig(d.dtype, d.shape):
        return jnp.sin(0.5 * d), jnp.cos(0.5 * d)
    return half_angle_sincos(d)


_half_sincos = whole_array(_half_sincos_impl)


@jax.custom_jvp
def _half_angle_diff(x: jnp.ndarray, loc: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    return _half_sincos(_principal_vmap(x) - _principal_vmap(loc))


@_half_angle_diff.defjvp
def _half_angle_diff_jvp(primals, tangents):
    # d/dx (sin h, cos h) with h = (x - loc)/2; custom_vmap has no reverse mode, so the
    # rule is given here (linear in the tangents: transposes for reverse mode).
    s, c = _half_angle_diff(*primals)
    th = 0.5 * (tangents[0] - tangents[1])
    return (s, c), (c * th, -s * th)


def half_angle_sincos_of_difference(
    x: jnp.ndarray, loc: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``(sin(h), cos(h))`` with ``h = (x - loc)/2`` for any real ``x`` and ``loc``.

    :func:`half_angle_sincos` of ``x - loc`` while both are within four turns (the
    rounding of ``x - loc`` is then at most 8 ulp of pi). An array with a larger angle is
    first reduced to ``[-pi, pi]`` on its own shape (``atan2`` of XLA's exactly reduced
    ``sin``/``cos``; one test over the array, then a branch), so the result is the
    half-angle of the exact difference of the two floats up to a few ulp, for every
    float: at ``x = 2.3e8`` in float32 the plain reduction left the principal range (and
    the density its range). Checked against mpmath through :func:`vm_ppl.log_prob`,
    angles anywhere on the line (tests/test_hypothesis.py::test_log_prob_against_mpmath).
    NaN/inf give NaN.
    """
    x, _, _ = _prep(x)
    loc = jnp.asarray(loc, x.dtype)
    return _half_angle_diff(x, loc)


def squared_sine_terms(u: jnp.ndarray, v: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""``(sin^2 a, sin a cos a)`` of the angle ``a`` with ``tan a = u / v``.

    With :math:`t = u/v`: :math:`\sin^2 a = t^2/(1 + t^2)` and
    :math:`\sin a\cos a = t/(1 + t^2)`, for either sign of ``v``; both keep the relative
    accuracy of ``u`` and ``v`` (near ``a = 0`` that of ``u``). ``|t|`` is clipped (1e150
    in float64, 1e18 in float32) so that ``t*t`` stays finite where ``v`` rounds to 0:
    there the terms are 1 and ~0.

    The kernels' hot paths (:func:`vm_ppl.log_prob`, :func:`vm_ppl.tan_half_log_prob`)
    feed everything through this one division, and that is the point: XLA copies a chain
    of cheap operations (a sine/cosine polynomial is one) into every fused loop that
    consumes it, but computes an expensive one (a division) once. Through ``u / v`` the
    polynomial runs once per element for the value and every gradient; through ``u*u/w``
    and ``u*v/w`` the compiled tan-half logp + gradient held two copies of the polynomial
    loop. XLA's flop counts of logp + gradient at n = 1,000 went from 163,446 to 103,444
    (tan-half) and from 193,418 to 96,418 (``log_prob``, through ``s*s`` and ``s*c``
    before): ``python -m vm_ppl.bench.tan_half``, BENCHMARKS.md.
    """
    big = 1e150 if u.dtype == jnp.float64 else 1e18
    t = jnp.clip(u / v, -big, big)
    q = 1.0 / (1.0 + t * t)
    return (t * t) * q, t * q


def tan_pi(s: jnp.ndarray) -> jnp.ndarray:
    """``tan(pi * s)`` for ``s`` in ``(-1/2, 1/2)``.

    For ``|s| <= 1/4`` evaluates ``sin(pi s) / cos(pi s)`` from polynomials in
    ``s`` (``pi * s`` is never rounded).  For ``|s| > 1/4`` uses
    ``tan(pi s) = sign(s) cos(pi u) / sin(pi u)`` with ``u = 1/2 - |s|``, which
    is exact there, so both tails keep relative accuracy, including ``s``
    within one ulp of ``+-1/2``.  One division in total.

    Accuracy: max relative error ~3 ulp (<= ~6e-16 float64, <= ~2.5e-7
    float32) over the open interval.  ``tan_pi(+-1/2) = +-inf``;
    ``tan_pi(-0) = -0``; results for ``|s| > 3/4`` are meaningless.  NaN in
    gives NaN out.

    Parameters
    ----------
    s : array_like

    Returns
    -------
    jax.Array
    """
    x, c, out = _prep(s)
    a = jnp.abs(x)
    big = a > 0.25
    u = jnp.where(big, 0.5 - a, x)
    v = u * u
    sn = u * _horner(v, c["sinpi"])
    cs = 1 + v * _horner(v, c["cospi"])
    num = jnp.where(big, jnp.where(x < 0, -cs, cs), sn)
    den = jnp.where(big, sn, cs)
    return (num / den).astype(out)


def atan(w: jnp.ndarray) -> jnp.ndarray:
    """``arctan(w)`` for all real ``w`` (including ``+-inf`` and ``+-0``).

    Cephes-style reduction, done on the signed argument (so the gradient at
    0 is 1):

    * ``|w| > tan(3pi/8)``: ``atan w = sign(w) pi/2 + atan(-1/w)``
    * ``|w| > 0.66``: ``atan w = sign(w) pi/4 + atan((|w| - 1)/(|w| + 1) sign(w))``
    * else: ``atan w`` directly,

    followed by ``x (1 + z A(z))``, ``z = x**2 <= 0.4356``, with ``A`` a
    fitted near-minimax polynomial (degree 14 float64, 6 float32).  The
    reductions share a single division.

    Accuracy: max relative error ~2 ulp (<= ~4e-16 float64, <= ~1.2e-7
    float32).  ``atan(+-inf) = +-pi/2``, ``atan(-0) = -0``, NaN -> NaN.

    Parameters
    ----------
    w : array_like

    Returns
    -------
    jax.Array
    """
    x, c, out = _prep(w)
    a = jnp.abs(x)
    neg = jnp.signbit(x)
    big = a > c["tan3pio8"]
    mid = a > c["atan_mid"]
    one = jnp.ones_like(x)
    sgn = jnp.where(neg, -one, one)
    num = jnp.where(big, -one, jnp.where(mid, x - sgn, x))
    den = jnp.where(big, x, jnp.where(mid, 1 + a, one))
    t = num / den
    z = t * t
    p = t * (1 + z * _horner(z, c["atan"]))
    zero = jnp.zeros_like(x)
    y0 = jnp.where(big, c["pio2_hi"], jnp.where(mid, c["pio4_hi"], zero))
    y0_lo = jnp.where(big, c["pio2_lo"], jnp.where(mid, c["pio4_lo"], zero))
    # signed zeros: y0 = -0 for w = -0 keeps the result -0.
    y0 = jnp.where(neg, -y0, y0)
    y0_lo = jnp.where(neg, -y0_lo, y0_lo)
    return (y0 + (y0_lo + p)).astype(out)


# --- double-word (hi + lo) arithmetic, for results that cancel in the working precision ---
#
# Under jit, XLA's CPU compiler may contract a product feeding a sum into a fused
# multiply-add, and its simplifier folds constants through sums ((1 + b) - 1 -> b): a
# Fast2Sum whose summand was a rounded product, or whose other term was the constant 1,
# lost its exactness under jit while op-by-op evaluation kept it (2026-12-04). Everything
# below is written so that neither can change a value: every product that feeds a sum is
# exact (halves from a bit-mask split, or a power of two), and no error-free sum has a
# constant operand. tests/test_fastmath.py compares jitted and op-by-op results.


def split_halves(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``x = hi + lo`` exactly, ``hi`` with 12 (float32) or 26 (float64) significant bits.

    A bit mask on the significand (no arithmetic, so no rounding or contraction can
    interfere), then ``lo = x - hi`` (exact). Products of two halves are exact in float32
    (at most 24 bits) and, except ``lo * lo``, in float64.
    """
    if x.dtype == jnp.float32:
        bits = lax.bitcast_convert_type(x, jnp.uint32) & jnp.uint32(0xFFFFF000)
        hi = lax.bitcast_convert_type(bits, jnp.float32)
    else:
        bits = lax.bitcast_convert_type(x, jnp.uint64) & jnp.uint64(0xFFFFFFFFF8000000)
        hi = lax.bitcast_convert_type(bits, jnp.float64)
    return hi, x - hi


def split_prod(a: jnp.ndarray, b: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``a b = p_hi + p_lo`` as a double word from exact partial products (Dekker 1971).

    ``p_hi = a_hi b_hi`` is exact; ``p_lo`` is the rounded sum of the three other partial
    products, so ``|p_hi + p_lo - a b| <= 2**-34 |a b|`` in float32. ``p_hi`` is not the
    rounded product (it differs from it by ~2**-11 relative), which is all that the
    exact differences ``s - p_hi`` below need (Sterbenz). Finite inputs only.

    References
    ----------
    .. [1] Dekker, T. J. (1971). A floating-point technique for extending the available
       precision. *Numerische Mathematik* 18, 224-242.
    """
    ah, al = split_halves(a)
    bh, bl = split_halves(b)
    return ah * bh, (ah * bl + al * bh) + al * bl


def _fast_two_sum(a: jnp.ndarray, b: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    # s + e = a + b exactly when |a| >= |b| (Dekker).
    s = a + b
    return s, b - (s - a)


def half_angle_sincos_dd(
    d: jnp.ndarray, d_lo: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    r"""``sin(r/2)`` and ``cos(r/2)`` of ``r = d + d_lo`` (mod 2 pi) as double words.

    Returns ``(s_hi, s_lo, c_hi, c_lo)``: ``s_hi + s_lo`` and ``c_hi + c_lo`` are the sine
    and cosine of the half angle to an absolute error far below an ulp of the high words
    (float32: bounded by the rounding of the ``z^2/24`` term, ~2e-9 against an ulp of 0.5
    of 6e-8; tests/test_fastmath.py), enough for a difference such as ``s - eta * c``
    near its zero to keep its relative accuracy when formed in double words
    (:func:`vm_ppl.tan_half_log_prob` in float32).

    How: the reduction ``d - n 2\pi`` keeps its Cody-Waite tail as a low word; on
    :math:`|t| \le \pi/4` (after :math:`t = \pi/2 - |h|` where needed, exact by Sterbenz),
    with :math:`z = t^2` as a double word, :math:`\sin t = t - t\,z/6 + t z^2 S_2(z)`
    where ``t z / 6`` is formed from exact partial products and an exact division
    remainder and summed error-free into the high word, and
    :math:`\cos t = (1 - z/2) + z^2 D(z)` with ``1 - z/2`` formed exactly; the low words
    of the argument enter to first order. Same Taylor coefficients and constants as
    :func:`half_angle_sincos`; valid range as there (float32: ``|d|`` up to ~2.6e4).
    """
    x, c, out = _prep(d)
    x_lo = jnp.asarray(d_lo, x.dtype)
    n = jnp.round(x * c["inv_2pi"])
    r_hi = x - n * c["tp1"]  # exact (n * tp1 exact, Sterbenz)
    r_lo = (x_lo - n * c["tp2"]) - n * c["tp3"]
    r, r_tail = _fast_two_sum(r_hi, r_lo)
    h, h_lo = 0.5 * r, 0.5 * r_tail
    a = jnp.abs(h)
    big = a > c["pio4"]
    sign = jnp.where(h < 0, -1.0, 1.0).astype(x.dtype)
    # t = pi/2 - |h| (exact high part) or h, and its low part.
    lo_big = jnp.where(big, c["pio2_lo"], jnp.zeros_like(h))
    t = jnp.where(big, c["pio2_hi"] - a, h)
    t_lo = jnp.where(big, lo_big - sign * h_lo, h_lo)
    th, tl = split_halves(t)
    z = th * th  # z + z_lo = t^2 exactly; zf = t^2 to float precision, for the polynomials
    z_lo = 2.0 * (th * tl) + tl * tl
    zf = z + z_lo
    # z / 6 = q + q_lo: 6 q_hi and 6 q_lo are exact and z - 6 q_hi is exact (Sterbenz).
    q = z / 6.0
    qh, ql = split_halves(q)
    q_lo = (((z - 6.0 * qh) - 6.0 * ql) + z_lo) / 6.0
    # sin t = t - t (q + q_lo) + t z^2 S2(z)  (+ cos(t) t_lo to first order)
    tq = th * qh
    s_hi, s_err = _fast_two_sum(t, -tq)
    tq_lo = (th * ql + tl * qh) + tl * ql
    s_lo = ((s_err - tq_lo) - t * q_lo) + t * zf * zf * _horner(zf, c["sin"][1:])
    s_lo = s_lo + t_lo * (1.0 - 0.5 * zf)
    # cos t = (1 - t^2/2) + z^2 D(z)  (- sin(t) t_lo), D = (C(z) + 1/2) / z.
    # 1 - t^2/2 lies in [0.69, 1], on the grid of ulp = 2**-p there: rounding t^2/2 to that
    # grid first makes the subtraction exact, and the rounding (hz_hi - z/2, Sterbenz) and
    # z_lo/2 go to the low word. (Not Fast2Sum(1, -z/2): XLA folds the constant through
    # (1 + b) - 1 and returns a zero tail.)
    grid = 2.0 ** (-24 if x.dtype == jnp.float32 else -53)
    hz_hi = jnp.round((0.5 * zf) * (1.0 / grid)) * grid
    c_hi = 1.0 - hz_hi
    c_lo = ((hz_hi - 0.5 * z) - 0.5 * z_lo) + zf * zf * _horner(zf, c["cos"][1:]) - t * t_lo
    sin_hi = jnp.where(big, sign * c_hi, s_hi)
    sin_lo = jnp.where(big, sign * c_lo, s_lo)
    cos_hi = jnp.where(big, s_hi, c_hi)
    cos_lo = jnp.where(big, s_lo, c_lo)
    return tuple(v.astype(out) for v in (sin_hi, sin_lo, cos_hi, cos_lo))
