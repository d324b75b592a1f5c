r"""The von Mises log-density of a tan-half regression, fused with its link.

.. math::

    \log p(y \mid \mu_0 + 2\arctan\eta, \kappa)
    = -2\kappa\sin^2\!\tfrac{d}{2} - \log 2\pi - \log\mathrm{i0e}(\kappa),
    \qquad d = y - \mu_0 - 2\arctan\eta,

the likelihood of the circular regression of Fisher & Lee (1992) [1]_ with
:math:`\eta = x^\top\beta`. Evaluated as :func:`vm_ppl.log_prob` of
``mu0 + 2 * arctan(eta)`` it costs an ``arctan`` per observation on top of the
trigonometry of the density. Here the link is absorbed by the tangent subtraction
identity: with :math:`h = (y - \mu_0)/2`, :math:`\phi = \arctan\eta`,
:math:`s = \sin h`, :math:`c = \cos h`,

.. math::

    \tan\tfrac{d}{2} = \tan(h - \phi) = \frac{\tan h - \eta}{1 + \eta\tan h}
    = \frac{u}{v}, \quad u = s - \eta c, \quad v = c + \eta s,
    \quad u^2 + v^2 = 1 + \eta^2 =: w,

so that with :math:`t = \tan\frac{d}{2} = u/v`, :math:`\sin^2\frac{d}{2} = t^2/(1 + t^2)`
and :math:`\sin\frac{d}{2}\cos\frac{d}{2} = t/(1 + t^2)`. Each observation needs one
half-angle sine/cosine pair (the core's fused polynomials,
:func:`vm_ppl._fastmath.half_angle_sincos`, in double words in float32; XLA's
``sin``/``cos`` for float64 arrays of at most 16 elements,
:data:`vm_ppl._fastmath.SMALL_SIZE`) and three divisions; no ``tan``, no ``arctan``.
Written with :math:`s, c` instead of :math:`\tan h` (the same identity multiplied through
by :math:`c`), nothing is infinite at :math:`y - \mu_0 = \pm\pi`; at the antipode
:math:`d = \pm\pi`, where :math:`v` may round to 0, :math:`t` is clipped so that
:math:`t^2` stays finite.

Accuracy: near the mode :math:`u = s - \eta c` is a small difference of O(1) terms. In
float64 one rounding of each costs a few ulp of :math:`\sin\phi` in
:math:`\sin\frac{d}{2}` (exact relative accuracy as :math:`\eta \to 0`), far below
float64's needs; in float32 that would be a relative error of order
:math:`\sqrt{\kappa}\,\epsilon` in the log-density (6.4e-5 of its scale at
:math:`\kappa = 10^6`), so there :math:`s, c` and :math:`\eta c` are formed as double
words (Dekker 1971 [4]_) and the difference is exact. The rounding of :math:`y - \mu_0`
is compensated in both (error-free difference, ``TwoSum``). Errors against mpmath:
``python -m vm_ppl.bench.tan_half --tables accuracy``; tolerances in
``tests/test_tan_half.py``.

References
----------
.. [1] Fisher, N. I. and Lee, A. J. (1992). Regression models for an angular response.
   *Biometrics* 48, 665-677.
.. [2] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*, Wiley, sec. 3.5.4.
.. [3] Knuth, D. E. (1998). *The Art of Computer Programming* 2, 3rd ed., sec. 4.2.2
   (the error-free sum ``TwoSum``).
.. [4] Dekker, T. J. (1971). A floating-point technique for extending the available
   precision. *Numerische Mathematik* 18, 224-242.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from ._fastmath import (
    half_angle_sincos,
    half_angle_sincos_dd,
    split_prod,
    squared_sine_terms,
    use_xla_trig,
    whole_array,
)
from ._utils import promote_float, valid_concentration
from .bessel import log_i0e, one_minus_bessel_ratio

__all__ = ["tan_half_log_prob", "tan_half_terms"]

_LOG_2PI = math.log(2 * math.pi)


def _clip_eta(eta: jnp.ndarray) -> jnp.ndarray:
    # |eta| beyond 1e18 (float32) / 1e150 (float64) moves 2 atan(eta) by less than
    # 2/|eta|, far below an ulp of pi; clipping keeps eta**2 and u**2 finite (eta = +-inf
    # gives the limit mu0 +- pi). NaN stays NaN.
    big = 1e150 if eta.dtype == jnp.float64 else 1e18
    return jnp.clip(eta, -big, big)


def _terms_impl(y, mu0, eta):
    """``sin^2(d/2)``, ``sin(d/2) cos(d/2)`` (from ``tan(d/2) = u/v``) and ``1/(1 + eta^2)``."""
    eta = _clip_eta(eta)
    # Error-free difference y - mu0 = a + a_lo (Knuth's TwoSum, no branch).
    a = y - mu0
    b = a - y
    a_lo = (y - (a - b)) - (mu0 + b)
    if a.dtype == jnp.float32:
        u, v = _u_v_double_word(a, a_lo, eta)
    else:
        # A few elements: XLA's own sin/cos, counted as transcendentals by its cost
        # analysis, keep a call below the 1,000-flop line for inline execution
        # (vm_ppl._fastmath.SMALL_SIZE); at that size every flop counts, so the rounding
        # of y - mu0 (half an ulp of an angle) is not compensated there.
        small = use_xla_trig(a.dtype, a.shape, eta.shape)
        s, c = (jnp.sin(0.5 * a), jnp.cos(0.5 * a)) if small else half_angle_sincos(a)
        u = s - eta * c
        v = c + eta * s
        if not small:
            # sin(h + h_lo - phi) sqrt(w) = u + h_lo v to first order (h_lo = a_lo / 2).
            u = u + (0.5 * a_lo) * v
    # One division feeds the value and every gradient (see squared_sine_terms).
    s2, sc = squared_sine_terms(u, v)
    return s2, sc, 1.0 / (1.0 + eta * eta)


_terms = whole_array(_terms_impl)


def _u_v_double_word(a, a_lo, eta):
    """``u = s - eta c`` formed in double words (float32).

    Near the mode ``u`` is a small difference of two O(1) terms, so one rounding of ``s``
    or ``eta c`` is an absolute error of an ulp of 0.5, a relative error of order
    ``sqrt(kappa) eps`` in the log-density (6.4e-5 of its scale at ``kappa = 1e6`` when
    formed in single words). With ``s``, ``c`` as double words
    (:func:`~vm_ppl._fastmath.half_angle_sincos_dd`) and ``eta c_hi`` from exact partial
    products (:func:`~vm_ppl._fastmath.split_prod`), ``s_hi - p`` is exact (Sterbenz) and the
    remaining terms are small, so ``u`` keeps its relative accuracy (errors:
    ``python -m vm_ppl.bench.tan_half --tables accuracy``). Float64 needs none of this.
    """
    s_hi, s_lo, c_hi, c_lo = half_angle_sincos_dd(a, a_lo)
    p, p_lo = split_prod(eta, c_hi)
    u = ((s_hi - p) - p_lo) + (s_lo - eta * c_lo)
    # The high words alone are off by up to ~2e-2 (c_hi is 1 - z/2; the polynomial tails
    # are in the low words): v needs the full sine and cosine.
    v = (c_hi + c_lo) + eta * (s_hi + s_lo)
    return u, v


def _normaliser(k: jnp.ndarray) -> jnp.ndarray:
    # On the concentration's own shape: one Bessel evaluation per distinct k.
    return jnp.where(valid_concentration(k), -_LOG_2PI - log_i0e(k), jnp.nan)


@jax.custom_jvp
def _tan_half_log_prob(y, mu0, eta, k):
    s2, _, _ = _terms(y, mu0, eta)
    return _normaliser(k) - 2.0 * k * s2


def _is_zero(t) -> bool:
    return isinstance(t, SymbolicZero)


def _tan_half_log_prob_jvp(primals, tangents):
    y, mu0, eta, k = primals
    ty, tmu0, teta, tk = tangents
    s2, sc, q = _terms(y, mu0, eta)
    out = _normaliser(k) - 2.0 * k * s2
    tangent = jnp.zeros_like(out)
    if not (_is_zero(ty) and _is_zero(tmu0) and _is_zero(teta)):
        dy = -2.0 * k * sc  # d/dy = -k sin d = -d/dmu0
        if not _is_zero(ty):
            tangent = tangent + dy * ty
        if not _is_zero(tmu0):
            tangent = tangent - dy * tmu0
        if not _is_zero(teta):
            # dd/deta = -2 / (1 + eta^2)
            tangent = tangent - 2.0 * q * dy * teta
    if not _is_zero(tk):
        tangent = tangent + (one_minus_bessel_ratio(k) - 2.0 * s2) * tk
    # Invalid concentration: NaN derivatives as well (a multiplicative mask on k's own
    # shape, so the rule stays linear in the tangents and transposes for reverse mode; NaN
    # angles or eta give NaN derivatives by themselves).
    return out, tangent * jnp.where(valid_concentration(k), 1.0, jnp.nan)


_tan_half_log_prob.defjvp(_tan_half_log_prob_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _terms_diff(y, mu0, eta):
    s2, sc, _ = _terms(y, mu0, eta)
    return s2, sc


@_terms_diff.defjvp
def _terms_diff_jvp(primals, tangents):
    ty, tmu0, teta = tangents
    s2, sc, q = _terms(*primals)
    td = ty - tmu0 - 2.0 * q * teta  # dd = dy - dmu0 - 2 deta / (1 + eta^2)
    return (s2, sc), (sc * td, (0.5 - s2) * td)


def tan_half_terms(
    y: ArrayLike, loc0: ArrayLike, eta: ArrayLike
) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""The per-observation terms of :func:`tan_half_log_prob` and its derivatives,
    :math:`\sin^2\frac{d}{2}` and :math:`\sin\frac{d}{2}\cos\frac{d}{2}` with
    :math:`d = y - \mu_0 - 2\arctan\eta`, computed exactly as inside
    :func:`tan_half_log_prob`.

    For graphs that differentiate the density symbolically (PyTensor's gradient of a
    tan-half regression, run by its JAX backend): the same computation on the same
    inputs as the density's, so XLA evaluates it once for both
    (common-subexpression elimination). Differentiable (custom JVP).

    Parameters
    ----------
    y, loc0, eta : array_like
        Angles, intercept direction and linear predictor, broadcast together.

    Returns
    -------
    (sin2, sincos) : tuple of jax.Array
    """
    y, loc0, eta = promote_float(y, loc0, eta, names=("y", "loc0", "eta"))
    return _terms_diff(y, loc0, eta)


def tan_half_log_prob(
    x: ArrayLike, loc0: ArrayLike, eta: ArrayLike, concentration: ArrayLike
) -> jnp.ndarray:
    r"""Von Mises log-density with the tan-half link, :math:`\log p(x \mid \mu_0 +
    2\arctan\eta, \kappa)`, without an ``arctan``.

    Equal to ``vm_ppl.log_prob(x, loc0 + 2 * jnp.arctan(eta), concentration)`` (up to
    rounding; in float32 within 1.0e-6 of the log-density's scale up to a concentration
    of 1e6, 7-160x more accurate than that route from 10 to 1e6:
    ``python -m vm_ppl.bench.tan_half --tables accuracy``), at the cost of one half-angle
    sine/cosine (in double words in float32) and three divisions per element (module
    docstring).

    Parameters
    ----------
    x : array_like
        Angles (radians), any window: the density is :math:`2\pi`-periodic.
    loc0 : array_like
        Intercept direction :math:`\mu_0`.
    eta : array_like
        Linear predictor :math:`\eta = x^\top\beta`; ``+-inf`` is the limit
        :math:`\mu_0 \pm \pi`.
    concentration : array_like
        :math:`\kappa \ge 0`.

    Returns
    -------
    jax.Array
        Broadcast of the four arguments in their common float dtype; NaN where the
        concentration is negative, NaN or infinite, or where an angle or ``eta`` is NaN.

    Notes
    -----
    Analytic derivatives (custom JVP, forward and reverse mode), with
    :math:`d = x - \mu_0 - 2\arctan\eta`: :math:`\partial_x = -\kappa\sin d =
    -\partial_{\mu_0}`, :math:`\partial_\eta = 2\kappa\sin d/(1 + \eta^2)`,
    :math:`\partial_\kappa = (1 - A(\kappa)) - 2\sin^2\frac{d}{2}`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from vm_ppl import log_prob, tan_half_log_prob
    >>> a = float(tan_half_log_prob(1.0, 0.5, 0.3, 4.0))
    >>> b = float(log_prob(1.0, 0.5 + 2 * jnp.arctan(0.3), 4.0))
    >>> abs(a - b) < 1e-5
    True
    """
    x, loc0, eta, concentration = promote_float(x, loc0, eta, concentration)
    return _tan_half_log_prob(x, loc0, eta, concentration)
