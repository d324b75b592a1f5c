r"""Scalar von Mises kernels in plain Python (``math`` only), shared by three backends.

The same functions are (i) the ``impl`` of the PyTensor scalar ops (Python linker,
constant folding), (ii) compiled with ``numba.njit`` for the NUMBA backend, and (iii)
transcribed to C (:data:`C_SUPPORT_CODE`) from the same coefficient tuples for the default
C linker, so the three agree to rounding. (``register_jitable`` leaves them plain Python
functions while letting numba compile calls between them.) All arithmetic is in double precision.

:math:`\mathrm{i0e}` and :math:`\mathrm{i1e}` use Cephes' Chebyshev expansions on
:math:`[0, 8]` and :math:`(8, \infty)` [1]_; :math:`1 - A(\kappa)` and :math:`A'(\kappa)`
switch to the asymptotic series of the core (:mod:`vm_ppl.bessel`) above
:math:`\kappa = 20`, so there is no cancellation at large :math:`\kappa`.

References
----------
.. [1] Moshier, S. L. (1989). *Methods and Programs for Mathematical Functions*
   (Cephes Math Library, files ``i0.c``, ``i1.c``), Prentice-Hall.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

from ..bessel import _EPS_ASYMPTOTIC

__all__ = [
    "C_SUPPORT_CODE",
    "cdf",
    "i0e",
    "icdf",
    "i1e",
    "log_i0e",
    "log_normaliser",
    "logp",
    "ndtr",
    "ndtri",
    "one_minus_ratio",
    "ratio_derivative",
]

LOG_2PI = math.log(2.0 * math.pi)
ASYMPTOTIC_THRESHOLD = 20.0  # as the core's float64 branch

# Cephes coefficients, highest degree first (chbevl order).
I0E_A = (
    -4.41534164647933937950e-18, 3.33079451882223809783e-17, -2.43127984654795469359e-16,
    1.71539128555513303061e-15, -1.16853328779934516808e-14, 7.67618549860493561688e-14,
    -4.85644678311192946090e-13, 2.95505266312963983461e-12, -1.72682629144155570723e-11,
    9.67580903537323691224e-11, -5.18979560163526290666e-10, 2.65982372468238665035e-9,
    -1.30002500998624804212e-8, 6.04699502254191894932e-8, -2.67079385394061173391e-7,
    1.11738753912010371815e-6, -4.41673835845875056359e-6, 1.64484480707288970893e-5,
    -5.75419501008210370398e-5, 1.88502885095841655729e-4, -5.76375574538582365885e-4,
    1.63947561694133579842e-3, -4.32430999505057594430e-3, 1.05464603945949983183e-2,
    -2.37374148058994688156e-2, 4.93052842396707084878e-2, -9.49010970480476444210e-2,
    1.71620901522208775349e-1, -3.04682672343198398683e-1, 6.76795274409476084995e-1,
)
I0E_B = (
    -7.23318048787475395456e-18, -4.83050448594418207126e-18, 4.46562142029675999901e-17,
    3.46122286769746109310e-17, -2.82762398051658348494e-16, -3.42548561967721913462e-16,
    1.77256013305652638360e-15, 3.81168066935262242075e-15, -9.55484669882830764870e-15,
    -4.15056934728722208663e-14, 1.54008621752140982691e-14, 3.85277838274214270114e-13,
    7.18012445138366623367e-13, -1.79417853150680611778e-12, -1.32158118404477131188e-11,
    -3.14991652796324136454e-11, 1.18891471078464383424e-11, 4.94060238822496958910e-10,
    3.39623202570838634515e-9, 2.26666899049817806459e-8, 2.04891858946906374183e-7,
    2.89137052083475648297e-6, 6.88975834691682398426e-5, 3.36911647825569408990e-3,
    8.04490411014108831608e-1,
)
I1E_A = (
    2.77791411276104639959e-18, -2.11142121435816608115e-17, 1.55363195773620046921e-16,
    -1.10559694773538630805e-15, 7.60068429473540693410e-15, -5.04218550472791168711e-14,
    3.22379336594557470981e-13, -1.98397439776494371520e-12, 1.17361862988909016308e-11,
    -6.66348972350202774223e-11, 3.62559028155211703701e-10, -1.88724975172282928790e-9,
    9.38153738649577178388e-9, -4.44505912879632808065e-8, 2.00329475355213526229e-7,
    -8.56872026469545474066e-7, 3.47025130813767847674e-6, -1.32731636560394358279e-5,
    4.78156510755005422638e-5, -1.61760815825896745588e-4, 5.12285956168575772895e-4,
    -1.51357245063125314899e-3, 4.15642294431288815669e-3, -1.05640848946261981558e-2,
    2.47264490306265168283e-2, -5.29459812080949914269e-2, 1.02643658689847095384e-1,
    -1.76416518357834055153e-1, 2.52587186443633654823e-1,
)
I1E_B = (
    7.51729631084210481353e-18, 4.41434832307170791151e-18, -4.65030536848935832153e-17,
    -3.20952592199342395980e-17, 2.96262899764595013876e-16, 3.30820231092092828324e-16,
    -1.88035477551078244854e-15, -3.81440307243700780478e-15, 1.04202769841288027642e-14,
    4.27244001671195135429e-14, -2.10154184277266431302e-14, -4.08355111109219731823e-13,
    -7.19855177624590851209e-13, 2.03562854414708950722e-12, 1.41258074366137813316e-11,
    3.25260358301548823856e-11, -1.89749581235054123450e-11, -5.58974346219658380687e-10,
    -3.83538038596423702205e-9, -2.63146884688951950684e-8, -2.51223623787020892529e-7,
    -3.88256480887769039346e-6, -1.10588938762623716291e-4, -9.76109749136146840777e-3,
    7.78576235018280120474e-1,
)
# 1 - A(x) ~ sum_m c_m x^-m, and A'(x) ~ sum_m m c_m x^-(m+1) (the core's exact series).
OMB_SERIES = tuple(float(c) for c in _EPS_ASYMPTOTIC)
DERIV_SERIES = tuple(m * c for m, c in enumerate(OMB_SERIES, start=1))


@register_jitable
def _chbevl(x: float, coeffs: tuple[float, ...]) -> float:
    b0 = coeffs[0]
    b1 = 0.0
    b2 = 0.0
    for i in range(1, len(coeffs)):
        b2 = b1
        b1 = b0
        b0 = x * b1 - b2 + coeffs[i]
    return 0.5 * (b0 - b2)


@register_jitable
def _inv_series(x: float, coeffs: tuple[float, ...]) -> float:
    """sum_m coeffs[m-1] x^-m by Horner's rule in 1/x."""
    t = 1.0 / x
    acc = 0.0
    for i in range(len(coeffs) - 1, -1, -1):
        acc = (acc + coeffs[i]) * t
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
def log_i0e(x: float) -> float:
    r""":math:`\log\mathrm{i0e}(x)`, finite for every finite ``x``."""
    return math.log(i0e(x))


@register_jitable
def one_minus_ratio(x: float) -> float:
    r""":math:`1 - I_1(x)/I_0(x)` without cancellation (series above 20)."""
    if x > ASYMPTOTIC_THRESHOLD:
        return _inv_series(x, OMB_SERIES)
    a = i0e(x)
    return (a - i1e(x)) / a


@register_jitable
def ratio_derivative(x: float) -> float:
    r""":math:`A'(x) = 1 - A/x - A^2`, even; the series above 20, :math:`1/2` at 0."""
    ax = abs(x)
    if ax > ASYMPTOTIC_THRESHOLD:
        return _inv_series(ax, DERIV_SERIES) / ax
    if ax == 0.0:
        return 0.5
    a = i1e(ax) / i0e(ax)
    return 1.0 - a / ax - a * a


@register_jitable
def logp(x: float, mu: float, k: float) -> float:
    r"""Von Mises log-density, :math:`-2k\sin^2\frac{x-\mu}{2} - \log 2\pi - \log\mathrm{i0e}(k)`.

    NaN for a negative, NaN or infinite ``k`` (as the core). :math:`\sin^2(d/2)` has
    period :math:`2\pi` in ``d``, and libm reduces the argument exactly, so any angle
    window works.
    """
    if not (k >= 0.0) or math.isinf(k):
        return math.nan
    s = math.sin(0.5 * (x - mu))
    return -2.0 * k * (s * s) - LOG_2PI - math.log(i0e(k))


# --- cdf / icdf (a scalar transcription of vm_ppl.cdf, float64 regime) -------------------

TWO_PI = 2.0 * math.pi
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CDF_SWITCH = 50.0  # series below, Hill's corrected normal approximation above
CDF_TERMS = 64
ICDF_STEPS = 8
_TINY = 2.2250738585072014e-308
_EPSNEG = 1.1102230246251565e-16
# Acklam's rational approximation of the normal quantile (relative error 1.2e-9; it is
# only the start of icdf's safeguarded Newton iteration).
NDTRI_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
           1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
NDTRI_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
           6.680131188771972e01, -1.328068155288572e01)
NDTRI_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
           -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
NDTRI_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
           3.754408661907416e00)


@register_jitable
def _poly(x: float, coeffs: tuple[float, ...]) -> float:
    acc = 0.0
    for c in coeffs:
        acc = acc * x + c
    return acc


@register_jitable
def ndtr(x: float) -> float:
    r"""Standard normal cdf :math:`\Phi(x) = \tfrac12\mathrm{erfc}(-x/\sqrt2)`."""
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@register_jitable
def ndtri(p: float) -> float:
    r"""Standard normal quantile, Acklam's approximation (relative error ~1e-9), ``p`` in (0, 1)."""
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
    return math.exp(-2.0 * ((k * s) * s) - math.log(i0e(k))) / TWO_PI


@register_jitable
def _series_segment(r: float, k: float, top: int, bottom: int, ratio: float, v: float,
                    s1: float, c1: float) -> tuple[float, float]:
    sn = math.sin(top * r)
    cn = math.cos(top * r)
    for n in range(top, bottom, -1):
        ratio = k / (2.0 * n + k * ratio)
        v = ratio * (sn / n + v)
        sn, cn = sn * c1 - cn * s1, cn * c1 + sn * s1
    return ratio, v


@register_jitable
def _cdf_std(r: float, k: float) -> float:
    """Standard cdf on r in [-pi, pi] (unclipped): Hill's series or normal approximation."""
    if k < CDF_SWITCH:
        s1 = math.sin(r)
        c1 = math.cos(r)
        # Segments 64 -> 8 -> 1 -> 0, each restarted from sin/cos (as the core).
        ratio, v = _series_segment(r, k, CDF_TERMS, 8, 0.0, 0.0, s1, c1)
        ratio, v = _series_segment(r, k, 8, 1, ratio, v, s1, c1)
        ratio, v = _series_segment(r, k, 1, 0, ratio, v, s1, c1)
        return 0.5 + r / TWO_PI + v / math.pi
    # |z| <= 40 leaves Phi unchanged and keeps z^4 finite at huge k (as the core).
    z = min(40.0, max(-40.0, SQRT_2_OVER_PI * math.sin(0.5 * r) / i0e(k)))
    z2 = z * z
    c = 24.0 * k
    den = (c - 2.0 * z2 - 16.0) / 3.0 - (z2 * z2 + 1.75 * z2 + 83.5) / (c - 53.0 - z2)
    return ndtr(z - z * z2 / (den * den))


@register_jitable
def cdf(x: float, mu: float, k: float) -> float:
    r"""Von Mises cdf :math:`F(x) = \int_{\mu-\pi}^x f` (+1 per turn), as :func:`vm_ppl.cdf`."""
    if not (k >= 0.0) or math.isinf(k):
        return math.nan
    d = x - mu
    if math.isnan(d) or math.isinf(d):
        return math.nan
    n = math.floor(d / TWO_PI + 0.5)
    r = d - n * TWO_PI
    return min(1.0, max(0.0, _cdf_std(r, k))) + n


@register_jitable
def icdf(q: float, mu: float, k: float) -> float:
    r"""Inverse of :func:`cdf` on :math:`[\mu - \pi, \mu + \pi]`, as :func:`vm_ppl.icdf`.

    The lower half is solved and mirrored (``1 - q`` is exact for ``q >= 1/2``). Start
    from the inverted leading normal term (:math:`\kappa \ge 1`) or the two-term Fourier
    model (:math:`\kappa < 1`), then ``ICDF_STEPS`` bracketed Newton steps: on
    :math:`\log F_0` right of the root, on :math:`F_0` left of it (see the core).
    """
    if not (k >= 0.0) or math.isinf(k) or not (0.0 <= q <= 1.0):
        return math.nan
    if q <= 0.0:
        return mu - math.pi
    if q >= 1.0:
        return mu + math.pi
    upper = q > 0.5
    qq = 1.0 - q if upper else q
    qt = max(qq, _TINY)
    log_q = math.log(qt)
    if k < 1.0:
        t = TWO_PI * qq - math.pi
        a2 = 2.0 * (1.0 - one_minus_ratio(k))
        r = t
        for _ in range(3):
            r = r - (r + a2 * math.sin(r) - t) / (1.0 + a2 * math.cos(r))
            r = min(0.0, max(-math.pi, r))
    else:
        s = ndtri(qt) * i0e(k) / SQRT_2_OVER_PI
        r = 2.0 * math.asin(min(0.0, max(-1.0, s)))
    lo = -math.pi
    hi = 0.0
    for _ in range(ICDF_STEPS):
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


@register_jitable
def log_normaliser(k: float) -> float:
    r""":math:`\log(2\pi\,\mathrm{i0e}(k))`; NaN for a negative, NaN or infinite ``k``."""
    if not (k >= 0.0) or math.isinf(k):
        return math.nan
    return LOG_2PI + math.log(i0e(k))


def _c_array(name: str, coeffs: tuple[float, ...]) -> str:
    body = ", ".join(repr(float(c)) for c in coeffs)
    return f"static const double {name}[{len(coeffs)}] = {{{body}}};"


C_SUPPORT_CODE = f"""
#ifndef VM_PPL_KERNELS_DEFINED
#define VM_PPL_KERNELS_DEFINED
#include <math.h>
{_c_array("vm_ppl_i0e_a", I0E_A)}
{_c_array("vm_ppl_i0e_b", I0E_B)}
{_c_array("vm_ppl_i1e_a", I1E_A)}
{_c_array("vm_ppl_i1e_b", I1E_B)}
{_c_array("vm_ppl_omb", OMB_SERIES)}
{_c_array("vm_ppl_deriv", DERIV_SERIES)}
static double vm_ppl_chbevl(double x, const double *c, int n) {{
    double b0 = c[0], b1 = 0.0, b2 = 0.0;
    for (int i = 1; i < n; i++) {{ b2 = b1; b1 = b0; b0 = x * b1 - b2 + c[i]; }}
    return 0.5 * (b0 - b2);
}}
static double vm_ppl_inv_series(double x, const double *c, int n) {{
    double t = 1.0 / x, acc = 0.0;
    for (int i = n - 1; i >= 0; i--) acc = (acc + c[i]) * t;
    return acc;
}}
static double vm_ppl_i0e(double x) {{
    double ax = fabs(x);
    if (ax <= 8.0) return vm_ppl_chbevl(0.5 * ax - 2.0, vm_ppl_i0e_a, {len(I0E_A)});
    return vm_ppl_chbevl(32.0 / ax - 2.0, vm_ppl_i0e_b, {len(I0E_B)}) / sqrt(ax);
}}
static double vm_ppl_i1e(double x) {{
    double ax = fabs(x), z;
    if (ax <= 8.0) z = vm_ppl_chbevl(0.5 * ax - 2.0, vm_ppl_i1e_a, {len(I1E_A)}) * ax;
    else z = vm_ppl_chbevl(32.0 / ax - 2.0, vm_ppl_i1e_b, {len(I1E_B)}) / sqrt(ax);
    return x < 0.0 ? -z : z;
}}
static double vm_ppl_one_minus_ratio(double x) {{
    double a;
    if (x > {ASYMPTOTIC_THRESHOLD!r}) return vm_ppl_inv_series(x, vm_ppl_omb, {len(OMB_SERIES)});
    a = vm_ppl_i0e(x);
    return (a - vm_ppl_i1e(x)) / a;
}}
static double vm_ppl_ratio_derivative(double x) {{
    double ax = fabs(x), a;
    if (ax > {ASYMPTOTIC_THRESHOLD!r})
        return vm_ppl_inv_series(ax, vm_ppl_deriv, {len(DERIV_SERIES)}) / ax;
    if (ax == 0.0) return 0.5;
    a = vm_ppl_i1e(ax) / vm_ppl_i0e(ax);
    return 1.0 - a / ax - a * a;
}}
static double vm_ppl_log_normaliser(double k) {{
    if (!(k >= 0.0) || isinf(k)) return NAN;
    return {LOG_2PI!r} + log(vm_ppl_i0e(k));
}}
static double vm_ppl_logp(double x, double mu, double k) {{
    double s;
    if (!(k >= 0.0) || isinf(k)) return NAN;
    s = sin(0.5 * (x - mu));
    return -2.0 * k * (s * s) - {LOG_2PI!r} - log(vm_ppl_i0e(k));
}}
{_c_array("vm_ppl_ndtri_a", NDTRI_A)}
{_c_array("vm_ppl_ndtri_b", NDTRI_B)}
{_c_array("vm_ppl_ndtri_c", NDTRI_C)}
{_c_array("vm_ppl_ndtri_d", NDTRI_D)}
static double vm_ppl_poly(double x, const double *c, int n) {{
    double acc = 0.0;
    for (int i = 0; i < n; i++) acc = acc * x + c[i];
    return acc;
}}
static double vm_ppl_ndtr(double x) {{ return 0.5 * erfc(-x * 0.7071067811865476); }}
static double vm_ppl_ndtri(double p) {{
    double q, r;
    if (p < 0.02425) {{
        q = sqrt(-2.0 * log(p));
        return vm_ppl_poly(q, vm_ppl_ndtri_c, 6) / (vm_ppl_poly(q, vm_ppl_ndtri_d, 4) * q + 1.0);
    }}
    if (p > 1.0 - 0.02425) {{
        q = sqrt(-2.0 * log1p(-p));
        return -vm_ppl_poly(q, vm_ppl_ndtri_c, 6) / (vm_ppl_poly(q, vm_ppl_ndtri_d, 4) * q + 1.0);
    }}
    q = p - 0.5; r = q * q;
    return vm_ppl_poly(r, vm_ppl_ndtri_a, 6) * q / (vm_ppl_poly(r, vm_ppl_ndtri_b, 5) * r + 1.0);
}}
static double vm_ppl_pdf_std(double r, double k) {{
    double s = sin(0.5 * r);
    return exp(-2.0 * ((k * s) * s) - log(vm_ppl_i0e(k))) / {TWO_PI!r};
}}
static void vm_ppl_series_segment(double r, double k, int top, int bottom, double *ratio,
                                  double *v, double s1, double c1) {{
    double sn = sin(top * r), cn = cos(top * r), t;
    for (int n = top; n > bottom; n--) {{
        *ratio = k / (2.0 * n + k * *ratio);
        *v = *ratio * (sn / n + *v);
        t = sn * c1 - cn * s1; cn = cn * c1 + sn * s1; sn = t;
    }}
}}
static double vm_ppl_cdf_std(double r, double k) {{
    double z, z2, c, den;
    if (k < {CDF_SWITCH!r}) {{
        double s1 = sin(r), c1 = cos(r), ratio = 0.0, v = 0.0;
        vm_ppl_series_segment(r, k, {CDF_TERMS}, 8, &ratio, &v, s1, c1);
        vm_ppl_series_segment(r, k, 8, 1, &ratio, &v, s1, c1);
        vm_ppl_series_segment(r, k, 1, 0, &ratio, &v, s1, c1);
        return 0.5 + r / {TWO_PI!r} + v / M_PI;
    }}
    z = {SQRT_2_OVER_PI!r} * sin(0.5 * r) / vm_ppl_i0e(k);
    z = z < -40.0 ? -40.0 : (z > 40.0 ? 40.0 : z);
    z2 = z * z; c = 24.0 * k;
    den = (c - 2.0 * z2 - 16.0) / 3.0 - (z2 * z2 + 1.75 * z2 + 83.5) / (c - 53.0 - z2);
    return vm_ppl_ndtr(z - z * z2 / (den * den));
}}
static double vm_ppl_cdf(double x, double mu, double k) {{
    double d = x - mu, n, r, f;
    if (!(k >= 0.0) || isinf(k) || isnan(d) || isinf(d)) return NAN;
    n = floor(d / {TWO_PI!r} + 0.5);
    r = d - n * {TWO_PI!r};
    f = vm_ppl_cdf_std(r, k);
    return (f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f)) + n;
}}
static double vm_ppl_icdf(double q, double mu, double k) {{
    double r, lo = -M_PI, hi = 0.0, f, p, step, qq, qt, log_q;
    int upper;
    if (!(k >= 0.0) || isinf(k) || !(q >= 0.0 && q <= 1.0)) return NAN;
    if (q <= 0.0) return mu - M_PI;
    if (q >= 1.0) return mu + M_PI;
    upper = q > 0.5;
    qq = upper ? 1.0 - q : q;
    qt = qq < {_TINY!r} ? {_TINY!r} : qq;
    log_q = log(qt);
    if (k < 1.0) {{
        double t = {TWO_PI!r} * qq - M_PI, a2 = 2.0 * (1.0 - vm_ppl_one_minus_ratio(k));
        r = t;
        for (int i = 0; i < 3; i++) {{
            r = r - (r + a2 * sin(r) - t) / (1.0 + a2 * cos(r));
            r = r < -M_PI ? -M_PI : (r > 0.0 ? 0.0 : r);
        }}
    }} else {{
        double s = vm_ppl_ndtri(qt) * vm_ppl_i0e(k) / {SQRT_2_OVER_PI!r};
        r = 2.0 * asin(s < -1.0 ? -1.0 : (s > 0.0 ? 0.0 : s));
    }}
    for (int i = 0; i < {ICDF_STEPS}; i++) {{
        f = vm_ppl_cdf_std(r, k);
        if (f <= qt) lo = r;
        if (f >= qt) hi = r;
        p = vm_ppl_pdf_std(r, k);
        step = NAN;
        if (p > 0.0) step = f > qt ? r - (log(f) - log_q) * f / p : r - (f - qt) / p;
        r = (step >= lo && step <= hi && !isinf(step)) ? step : 0.5 * (lo + hi);
    }}
    return upper ? mu - r : mu + r;
}}
#endif
"""
