r"""The von Mises log-density with analytic derivatives.

.. math::

    \log p(x \mid \mu, \kappa) = \kappa\cos(x-\mu) - \log(2\pi I_0(\kappa))
    = -2\kappa\sin^2\!\tfrac{x-\mu}{2} - \log 2\pi - \log\mathrm{i0e}(\kappa).

The second form is the one evaluated: the normaliser never overflows, and the near-mode
term has no ``cos - 1`` cancellation (NumPyro's form loses 5e-3 in float32 at
:math:`\kappa = 10^6`). The density is :math:`2\pi`-periodic in ``x`` and ``loc``, so
angles in :math:`[0, 2\pi)` or any other window are fine.

References
----------
.. [1] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*, Wiley, sec. 3.5.4.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from ._fastmath import half_angle_sincos_of_difference, squared_sine_terms
from ._utils import promote_float, valid_concentration
from .bessel import log_i0e, one_minus_bessel_ratio

__all__ = ["half_angle_terms", "log_prob"]

_LOG_2PI = math.log(2 * math.pi)


def _normaliser(k: jnp.ndarray) -> jnp.ndarray:
    # Evaluated on concentration's own shape: with one shared k and a million
    # observations the Bessel function runs once, not a million times.
    return jnp.where(valid_concentration(k), -_LOG_2PI - log_i0e(k), jnp.nan)


def _times_2k(k: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    # 2k * t, and 0 where t == 0 also when 2k overflows (k above half the dtype's max):
    # inf * 0 would be NaN at the mode. (2k is hoisted out of the elementwise loop and
    # sin^2 is shared with the k-derivative; a per-element (k s) s was measurably slower.)
    return jnp.where(t == 0, 0.0, (2.0 * k) * t)


def _half_angle_terms(x: jnp.ndarray, loc: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    # sin^2 h and sin h cos h (h = (x - loc)/2) through one division, so that the
    # polynomial runs once for the value and both gradients (squared_sine_terms).
    s, c = half_angle_sincos_of_difference(x, loc)
    return squared_sine_terms(s, c)


@jax.custom_jvp
def _log_prob(x: jnp.ndarray, loc: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    s2, _ = _half_angle_terms(x, loc)
    return _normaliser(k) - _times_2k(k, s2)


def _is_zero(t) -> bool:
    return isinstance(t, SymbolicZero)


def _log_prob_jvp(primals, tangents):
    x, loc, k = primals
    tx, tloc, tk = tangents
    s2, sc = _half_angle_terms(x, loc)
    out = _normaliser(k) - _times_2k(k, s2)
    tangent = jnp.zeros_like(out)
    if not (_is_zero(tx) and _is_zero(tloc)):
        dx = -_times_2k(k, sc)  # d/dx = -k sin(x - loc); d/dloc = -d/dx
        if not _is_zero(tx):
            tangent = tangent + dx * tx
        if not _is_zero(tloc):
            tangent = tangent - dx * tloc
    if not _is_zero(tk):
        # d/dk = cos(x - loc) - A(k) = (1 - A(k)) - 2 sin^2((x - loc)/2), without the
        # cancellation of cos - A near the mode at large k.
        tangent = tangent + (one_minus_bessel_ratio(k) - 2.0 * s2) * tk
    # Invalid concentration: NaN derivatives too, never a plausible-looking number.
    # (A multiplicative mask, so the rule stays linear and transposes for reverse mode.)
    return out, tangent * jnp.where(jnp.isnan(out), jnp.nan, 1.0)


_log_prob.defjvp(_log_prob_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _half_angle_terms_diff(x: jnp.ndarray, loc: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    return _half_angle_terms(x, loc)


@_half_angle_terms_diff.defjvp
def _half_angle_terms_jvp(primals, tangents):
    s2, sc = _half_angle_terms(*primals)
    td = tangents[0] - tangents[1]
    # d sin^2(d/2) = sin(d/2) cos(d/2) dd;  d (sin(d)/2) = (cos d)/2 dd = (1/2 - sin^2(d/2)) dd
    return (s2, sc), (sc * td, (0.5 - s2) * td)


def half_angle_terms(x: ArrayLike, loc: ArrayLike) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""The per-angle terms of :func:`log_prob` and its derivatives,
    :math:`\sin^2\frac{d}{2}` and :math:`\sin\frac{d}{2}\cos\frac{d}{2} = \frac{\sin d}{2}`
    with :math:`d = x - \mu`, computed exactly as inside :func:`log_prob`.

    For graphs that differentiate the density symbolically (PyTensor's gradient of
    :class:`vm_ppl.pymc.ops.VonMisesLogp` run by its JAX backend): the same computation on
    the same inputs as the density's, so XLA evaluates the half-angle polynomial once
    for both (common-subexpression elimination). Differentiable (custom JVP).

    Parameters
    ----------
    x, loc : array_like
        Angles and mean direction (any window), broadcast together.

    Returns
    -------
    (sin2, sincos) : tuple of jax.Array
    """
    x, loc = promote_float(x, loc, names=("x", "loc"))
    return _half_angle_terms_diff(x, loc)


def log_prob(x: ArrayLike, loc: ArrayLike, concentration: ArrayLike) -> jnp.ndarray:
    r"""Log-density of the von Mises distribution.

    .. math:: \log p(x) = -2\kappa\sin^2\!\tfrac{x-\mu}{2} - \log 2\pi
       - \log\mathrm{i0e}(\kappa)

    Parameters
    ----------
    x : array_like
        Angles (radians), any real value: the density is :math:`2\pi`-periodic.
    loc : array_like
        Mean direction :math:`\mu`.
    concentration : array_like
        :math:`\kappa \ge 0`. ``k = 0`` is the uniform density :math:`1/2\pi`.

    Returns
    -------
    jax.Array
        Broadcast of the three arguments, in their common float dtype. NaN where the
        concentration is negative, NaN or infinite, or where ``x`` or ``loc`` is NaN.

    Notes
    -----
    Derivatives are analytic (custom JVP, forward and reverse mode):
    :math:`\partial_x = -\kappa\sin(x-\mu) = -\partial_\mu` and
    :math:`\partial_\kappa = (1 - A(\kappa)) - 2\sin^2\frac{x-\mu}{2}` with
    :math:`A = I_1/I_0`. The angle difference is reduced modulo :math:`2\pi` with a
    Cody-Waite split of :math:`2\pi` and the half-angle sine/cosine are fused
    polynomials, several times faster on CPU than XLA's ``sin``/``cos``, except in float64
    arrays of at most 16 elements, where XLA's ``sin``/``cos`` keep a small program under
    XLA's line for inline execution (:data:`vm_ppl._fastmath.SMALL_SIZE`).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from vm_ppl import log_prob
    >>> float(log_prob(0.0, 0.0, 0.0))  # uniform: -log(2 pi)
    -1.8378770...
    """
    x, loc, concentration = promote_float(
        x, loc, concentration, names=("x", "loc", "concentration")
    )
    return _log_prob(x, loc, concentration)
