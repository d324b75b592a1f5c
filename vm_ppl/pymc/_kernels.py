r"""The scalar von Mises kernels of every non-JAX backend, written once in plain Python.

Each function takes and returns Python floats (double precision) and uses ``math`` only,
so that the same source is

* the ``impl`` of the PyTensor scalar ops (Python linker, constant folding),
* compiled by Numba (``njit``) for the NUMBA backend and the random variable,
* compiled by Numba to C-callable functions (``cfunc``) that the C backend calls
  (:meth:`vm_ppl.pymc.ops.KernelScalarOp.c_code`), and
* compiled by Numba to NumPy ufuncs for the PyTorch backend (:mod:`vm_ppl.pymc.pytorch`),

all from :mod:`vm_ppl.pymc.registry`. (``register_jitable`` leaves them plain Python
functions while letting Numba compile the calls between them.) The JAX backend runs the
core's own array kernels instead.

Constants and coefficient tables come from the core: the asymptotic series of
:math:`1 - A` (:mod:`vm_ppl.bessel`), the cdf's regimes, series length, restart anchors and
Newton step count (:mod:`vm_ppl.cdf`, float64 regime), the log-normaliser's
:math:`\log 2\pi` (:mod:`vm_ppl.density`), and the Chebyshev (Cephes ``i0e``/``i1e``) and
normal-quantile tables (:mod:`vm_ppl._tables`). The sampler is the core's Best-Fisher
proposal in its cancellation-free form (:mod:`vm_ppl.sampling`), exact for every
:math:`\kappa \ge 0`.
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable

from .. import _tables
from ..bessel import _EPS_ASYMPTOTIC, _asymptotic_setup
from ..cdf import _ANCHORS, _ICDF_STEPS_64, _INV_TWO_PI, _PARAMS_64, _SQRT_2_OVER_PI, _TWO_PI
from ..density import _LOG_2PI

__all__ = [
    "cdf",
    "draw",
    "half_sin_cos",
    "half_sin_sq",
    "icdf",
    "log_normaliser",
    "logp",
    "one_minus_ratio",
    "ratio_derivative",
    "tan_half_logp",
    "tan_half_sin_cos",
    "tan_half_sin_sq",
]

ASYMPTOTIC_THRESHOLD = _asymptotic_setup(np.float64)[0]
# 1 - A(x) ~ sum_m c_m x^-m, and A'(x) ~ sum_m m c_m x^-(m+1) (the core's exact series).
OMB_SERIES = tuple(float(c) for c in _EPS_ASYMPTOTIC)
DERIV_SERIES = tuple(m * c for m, c in enumerate(OMB_SERIES, start=1))
CDF_SWITCH, CDF_TERMS = _PARAMS_64
# The series' restart points (sin/cos recomputed there), highest first, down to 0.
CDF_SEGMENTS = (CDF_TERMS, *(a for a in _ANCHORS if a < CDF_TERMS), 0)
_TINY = float(np.finfo(np.float64).tiny)
# As arrays: Numba freezes a global array as read-only data (one static copy), where a
# global tuple is rebuilt on the stack at each call that indexes it.
I0E_A, I0E_B, I1E_A, I1E_B, NDTRI_A, NDTRI_B, NDTRI_C, NDTRI_D, OMB_ARRAY, DERIV_ARRAY = (
    np.array(t)
    for t in (
        _tables.I0E_A,
        _tables.I0E_B,
        _tables.I1E_A,
        _tables.I1E_B,
        _tables.NDTRI_A,
        _tables.NDTRI_B,
        _tables.NDTRI_C,
        _tables.NDTRI_D,
        OMB_SERIES,
        DERIV_SERIES,
    )
)


@register_jitable
def _chbevl(x: float, coeffs: np.ndarray) -> float:
    b0 = coeffs[0]
    b1 = 0.0
    b2 = 0.0
    for i in range(1, len(coeffs)):
        b2 = b1
        b1 = b0
        b0 = x * b1 - b2 + coeffs[i]
    return 0.5 * (b0 - b2)


@register_jitable
def _inv_series(x: float, coeffs: np.ndarray) -> float:
    """sum_m coeffs[m-1] x^-m by Horner's rule in 1/x."""
    t = 1.0 / x
    acc = 0.0
    for i in range(len(coeffs) - 1, -1, -1):
        acc = (acc + coeffs[i]) * t
    return acc


@register_jitable
def _poly(x: float, coeffs: np.ndarray) -> float:
    acc = 0.0
    for c in coeffs:
        acc = acc * x + c
    return acc


@register_jitable
def i0e(x: float) -> float:
    """Exponentially scaled modified Bessel function of order 0 (Cephes ``i0e``)."""
    ax = abs(x)
    if ax <= 8.0:
        return _chbevl(0.5 * ax - 2.0, I0E_A)
    return _chbevl(32.0 / ax - 2.0, I0E_B) / math.sqrt(ax)


@register_jitable
def i1e(x: float) -> float:
    """Exponentially scaled modified Bessel function of order 1 (Cephes ``i1e``), odd."""
    ax = abs(x)
    if ax <= 8.0:
        z = _chbevl(0.5 * ax - 2.0, I1E_A) * ax
    else:
        z = _chbevl(32.0 / ax - 2.0, I1E_B) / math.sqrt(ax)
    return -z if x < 0.0 else z


@register_jitable
def _invalid(k: float) -> bool:
    return not (k >= 0.0) or math.isinf(k)


@register_jitable
def log_normaliser(k: float) -> float:
    r""":math:`\log(2\pi\,\mathrm{i0e}(k))`; NaN for a negative, NaN or infinite ``k``."""
    if _invalid(k):
        return math.nan
    return _LOG_2PI + math.log(i0e(k))


@register_jitable
def logp(x: float, mu: float, k: float) -> float:
    r""":math:`-2k\sin^2\frac{x-\mu}{2} - \log(2\pi\,\mathrm{i0e}(k))`, NaN for an invalid ``k``.

    Only graphs that are not rewritten run it (``FAST_COMPILE``, the Python linker, the
    PyTorch backend); C and Numba graphs expand the density into standard ops plus
    :func:`log_normaliser` (:mod:`vm_ppl.pymc.rewrites`).
    """
    return -2.0 * k * half_sin_sq(x, mu) - log_normaliser(k)


@register_jitable
def one_minus_ratio(x: float) -> float:
    r""":math:`1 - I_1(x)/I_0(x)` without cancellation (the core's series above 20)."""
    if x > ASYMPTOTIC_THRESHOLD:
        return _inv_series(x, OMB_ARRAY)
    a = i0e(x)
    return (a - i1e(x)) / a


@register_jitable
def ratio_derivative(x: float) -> float:
    r""":math:`A'(x) = 1 - A/x - A^2`, even; the series above 20, :math:`1/2` at 0."""
    ax = abs(x)
    if ax > ASYMPTOTIC_THRESHOLD:
        return _inv_series(ax, DERIV_ARRAY) / ax
    if ax == 0.0:
        return 0.5
    a = i1e(ax) / i0e(ax)
    return 1.0 - a / ax - a * a


# --- cdf / icdf: vm_ppl.cdf's algorithm, float64 regime, one angle at a time ----------


@register_jitable
def _ndtr(x: float) -> float:
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@register_jitable
def _ndtri_start(p: float) -> float:
    """Normal quantile to ~1e-9 relative (:mod:`vm_ppl._tables`), ``p`` in (0, 1): only the
    start of :func:`icdf`'s Newton iteration, whose result does not depend on it."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        return _poly(q, NDTRI_C) / (_poly(q, NDTRI_D) * q + 1.0)
    if p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        return -_poly(q, NDTRI_C) / (_poly(q, NDTRI_D) * q + 1.0)
    q = p - 0.5
    r = q * q
    return _poly(r, NDTRI_A) * q / (_poly(r, NDTRI_B) * r + 1.0)


@register_jitable
def _pdf_std(r: float, k: float) -> float:
    s = math.sin(0.5 * r)
    return math.exp(-2.0 * ((k * s) * s) - math.log(i0e(k))) / _TWO_PI


@register_jitable
def _cdf_std(r: float, k: float) -> float:
    """Unclipped standard cdf on r in [-pi, pi]: Hill's series or corrected normal."""
    if k < CDF_SWITCH:
        s1 = math.sin(r)
        c1 = math.cos(r)
        ratio = 0.0
        v = 0.0
        for j in range(len(CDF_SEGMENTS) - 1):
            top = CDF_SEGMENTS[j]
            sn = math.sin(top * r)
            cn = math.cos(top * r)
            for n in range(top, CDF_SEGMENTS[j + 1], -1):
                ratio = k / (2.0 * n + k * ratio)
                v = ratio * (sn / n + v)
                sn, cn = sn * c1 - cn * s1, cn * c1 + sn * s1
        return 0.5 + r / _TWO_PI + v / math.pi
    # |z| <= 40 leaves Phi unchanged and keeps z^4 finite at huge k (as the core).
    z = min(40.0, max(-40.0, _SQRT_2_OVER_PI * math.sin(0.5 * r) / i0e(k)))
    z2 = z * z
    c = 24.0 * k
    den = (c - 2.0 * z2 - 16.0) / 3.0 - (z2 * z2 + 1.75 * z2 + 83.5) / (c - 53.0 - z2)
    return _ndtr(z - z * z2 / (den * den))


@register_jitable
def cdf(x: float, mu: float, k: float) -> float:
    r"""Von Mises cdf :math:`F(x) = \int_{\mu-\pi}^x f` (+1 per turn), as :func:`vm_ppl.cdf`."""
    d = x - mu
    if _invalid(k) or math.isnan(d) or math.isinf(d):
        return math.nan
    n = np.rint(d * _INV_TWO_PI)  # half to even, as the core's jnp.round
    r = d - n * _TWO_PI
    return min(1.0, max(0.0, _cdf_std(r, k))) + n


@register_jitable
def icdf(q: float, mu: float, k: float) -> float:
    r"""Inverse of :func:`cdf` on :math:`[\mu - \pi, \mu + \pi]`, as :func:`vm_ppl.icdf`.

    The lower half is solved and mirrored (``1 - q`` is exact for ``q >= 1/2``). Start
    from the inverted leading normal term (:math:`\kappa \ge 1`) or the two-term Fourier
    model (:math:`\kappa < 1`), then the core's number of bracketed Newton steps: on
    :math:`\log F_0` right of the root, on :math:`F_0` left of it (see the core).
    """
    if _invalid(k) or not (0.0 <= q <= 1.0):
        return math.nan
    upper = q > 0.5
    qq = 1.0 - q if upper else q
    if qq <= 0.0:
        r = -math.pi
    elif qq == 0.5:
        r = 0.0
    else:
        qt = max(qq, _TINY)
        log_q = math.log(qt)
        if k < 1.0:
            t = _TWO_PI * qq - math.pi
            a2 = 2.0 * (1.0 - one_minus_ratio(k))
            r = t
            for _ in range(3):
                r = r - (r + a2 * math.sin(r) - t) / (1.0 + a2 * math.cos(r))
                r = min(0.0, max(-math.pi, r))
        else:
            s = _ndtri_start(qt) * i0e(k) / _SQRT_2_OVER_PI
            r = 2.0 * math.asin(min(0.0, max(-1.0, s)))
        lo = -math.pi
        hi = 0.0
        for _ in range(_ICDF_STEPS_64):
            f = _cdf_std(r, k)
            if f <= qt:
                lo = r
            if f >= qt:
                hi = r
            p = _pdf_std(r, k)
            step = math.nan
            if p > 0.0:
                step = r - (math.log(f) - log_q) * f / p if f > qt else r - (f - qt) / p
            if lo <= step <= hi and not math.isinf(step):
                r = step
            else:
                r = 0.5 * (lo + hi)
    return mu - r if upper else mu + r


# --- random draws: the core's exact Best-Fisher proposal (vm_ppl.sampling) -----------


@register_jitable
def draw(rng, mu: float, k: float) -> float:
    r"""One draw of :math:`\mathrm{VM}(\mu, k)` in :math:`[-\pi, \pi)`, exact for every
    :math:`k \ge 0` (uniform at 0); NaN for an invalid ``k`` or ``mu``.

    ``rng`` is a :class:`numpy.random.Generator` (Numba compiles its ``random()``).
    Best & Fisher (1979) with wrapped-Cauchy proposals :math:`w = \tan(\theta/2) =
    a\tan(\pi(u - 1/2))` and the accept test :math:`u_2 \le c\,e^{1-c}`,
    :math:`c = \kappa(r - 1) + 2\kappa w^2/(1 + w^2)`, in the core's cancellation-free
    form (:func:`vm_ppl.sampling._envelope`, :func:`vm_ppl.sampling._proposals`): no
    switch to a uniform or normal limit at small or large :math:`\kappa`.
    """
    if _invalid(k) or math.isnan(mu) or math.isinf(mu):
        return math.nan
    s = math.hypot(1.0, 2.0 * k)
    tau = 1.0 + s
    sq = math.sqrt(2.0 * tau)
    den = tau + sq
    rho = 2.0 * k / den
    one_m_rho = (1.0 + 1.0 / (s + 2.0 * k) + sq) / den
    a = one_m_rho / (1.0 + rho)
    kr1 = 0.25 * den * one_m_rho * one_m_rho
    while True:
        w = a * math.tan(math.pi * (rng.random() - 0.5))
        w2 = w * w
        c = kr1 + 2.0 * k * w2 / (1.0 + w2)
        if rng.random() <= c * math.exp(1.0 - c):
            break
    x = mu + 2.0 * math.atan(w)
    y = x - _TWO_PI * math.floor((x + math.pi) / _TWO_PI)
    # Rounding can land on +pi (or a hair below -pi): both are -pi on the circle.
    return -math.pi if (y >= math.pi or y < -math.pi) else y


@register_jitable
def tan_half_logp(y: float, mu0: float, eta: float, k: float) -> float:
    r""":math:`\log p(y \mid \mu_0 + 2\arctan\eta, k)` without ``arctan``, as
    :func:`vm_ppl.tan_half_log_prob`: :math:`\sin^2\frac{d}{2} = u^2/(1 + \eta^2)` with
    :math:`u = \sin h - \eta\cos h`, :math:`h = (y - \mu_0)/2`."""
    return -2.0 * k * tan_half_sin_sq(y, mu0, eta) - log_normaliser(k)


# The per-angle terms of the density's gradients (ops.VonMisesLogp.L_op): run only by
# graphs that are not rewritten (FAST_COMPILE, the Python linker). C and Numba graphs
# expand them into standard ops (rewrites.local_vonmises_split_normaliser), PyTorch
# converts them to torch ops (.pytorch), JAX runs the core (vm_ppl.density.half_angle_terms,
# vm_ppl.tan_half.tan_half_terms).
@register_jitable
def half_sin_sq(x: float, mu: float) -> float:
    r""":math:`\sin^2\frac{x-\mu}{2}`."""
    s = math.sin(0.5 * (x - mu))
    return s * s


@register_jitable
def half_sin_cos(x: float, mu: float) -> float:
    r""":math:`\sin\frac{x-\mu}{2}\cos\frac{x-\mu}{2}`."""
    h = 0.5 * (x - mu)
    return math.sin(h) * math.cos(h)


@register_jitable
def _tan_half_uvw(y: float, mu0: float, eta: float) -> tuple[float, float, float]:
    eta = min(max(eta, -1e150), 1e150)  # 2 atan(eta) is +-pi to double precision
    h = 0.5 * (y - mu0)
    s, c = math.sin(h), math.cos(h)
    return s - eta * c, c + eta * s, 1.0 + eta * eta


@register_jitable
def tan_half_sin_sq(y: float, mu0: float, eta: float) -> float:
    r""":math:`\sin^2\frac{d}{2}`, :math:`d = y - \mu_0 - 2\arctan\eta`."""
    u, _, w = _tan_half_uvw(y, mu0, eta)
    return u * u / w


@register_jitable
def tan_half_sin_cos(y: float, mu0: float, eta: float) -> float:
    r""":math:`\sin\frac{d}{2}\cos\frac{d}{2}`, :math:`d = y - \mu_0 - 2\arctan\eta`."""
    u, v, w = _tan_half_uvw(y, mu0, eta)
    return u * v / w
