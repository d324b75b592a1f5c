r"""Exact von Mises sampling with implicit reparameterisation gradients.

The sampler is Best & Fisher's (1979) rejection algorithm with a wrapped Cauchy
envelope, rewritten so that it is exact for every :math:`\kappa \ge 0` in float32 and
cheap to vectorise:

* The proposal is generated as :math:`\tan(\theta/2) = a \tan(\pi(u - \tfrac12))` with
  :math:`a = (1-\rho)/(1+\rho)`, a Möbius map of a uniform angle, which is the same wrapped
  Cauchy draw as Best-Fisher's :math:`f = (1 + rz)/(r + z)`, :math:`z = \cos \pi u`.
  All quantities are formed from :math:`1-\rho` and :math:`1-\cos\theta` directly, never
  as differences of numbers close to 1, so draws do not collapse onto ``loc`` at large
  :math:`\kappa` in float32 (NumPyro/TFP return exactly ``loc`` for 17 % of draws at
  :math:`\kappa = 10^6` and NaN at :math:`10^8`), and :math:`\rho = 2\kappa/(\tau +
  \sqrt{2\tau})` has no cancellation at tiny :math:`\kappa`; :math:`\kappa = 0` is the
  uniform distribution exactly (every proposal is accepted).
* The accept test is the exact one, :math:`u_2 \le c\,e^{1-c}` with
  :math:`c = \kappa(r - \cos\theta)` (the squeeze is pointless when vectorised).
* Instead of redrawing the whole array until its last element is accepted (NumPyro's
  ``while_loop``: ~13 passes for a million draws), each round draws one proposal per
  pending element and compacts the still-rejected ones into a statically sized buffer
  (acceptance is at least 65.77 %, so the buffers shrink geometrically). A final,
  bounded loop finishes the few left; everything is compiled once.
* Gradients are implicit (Figurnov et al., 2018):
  :math:`\partial z/\partial\kappa = -\partial_\kappa F(z;\kappa)/p(z;\kappa)`,
  :math:`\partial z/\partial\mu = 1`, in forward and reverse mode.

References
----------
.. [1] Best, D. J. and Fisher, N. I. (1979). Efficient simulation of the von Mises
   distribution. *Applied Statistics* 28, 152-157.
.. [2] Figurnov, M., Mohamed, S. and Mnih, A. (2018). Implicit reparameterization
   gradients. *NeurIPS* 31.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from ._fastmath import atan, tan_pi
from ._utils import promote_float, valid_concentration
from .cdf import cdf as _cdf
from .density import log_prob as _log_prob

__all__ = ["sample", "wrap_angle"]

# Worst-case rejection probability of Best-Fisher (acceptance >= 0.6577 near k = 1.2).
_REJECT_MAX = 0.3423
# Rounds stop compacting once the pending buffer is this small (or 2 % of the draws);
# a bounded loop finishes it.
_SMALL_BUFFER = 512
# Bound on that loop: P(an element is rejected 256 times) <= 0.3423**256 ~ 1e-119.
_MAX_FINAL_ROUNDS = 256


def wrap_angle(x: ArrayLike) -> jnp.ndarray:
    r"""Wrap angles to :math:`[-\pi, \pi)`.

    The derivative is 1 everywhere (the wrap is a piecewise shift), which is what the
    reparameterised gradient with respect to ``loc`` needs.
    """
    (x,) = promote_float(x)
    two_pi = 2 * math.pi
    y = x - two_pi * jnp.floor((x + math.pi) / two_pi)
    # Rounding can land exactly on +pi (or a hair below -pi); both are -pi on the circle.
    return jnp.where((y >= math.pi) | (y < -math.pi), -math.pi + 0.0 * y, y)


def _envelope(k: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Best-Fisher constants in cancellation-free form: (a, k (r - 1)).

    tau = 1 + sqrt(1 + 4k^2), rho = 2k / (tau + sqrt(2 tau)) (equal to Best-Fisher's
    (tau - sqrt(2 tau)) / 2k), 1 - rho = (1 + 1/(s + 2k) + sqrt(2 tau)) / (tau + sqrt(2 tau))
    with s = sqrt(1 + 4k^2), a = (1 - rho)/(1 + rho), and k (r - 1) = k (1 - rho)^2 / 2 rho
    = (tau + sqrt(2 tau)) (1 - rho)^2 / 4.
    """
    s = jnp.hypot(1.0, 2.0 * k)
    tau = 1.0 + s
    sq = jnp.sqrt(2.0 * tau)
    den = tau + sq
    rho = 2.0 * k / den
    one_m_rho = (1.0 + 1.0 / (s + 2.0 * k) + sq) / den
    return one_m_rho / (1.0 + rho), 0.25 * den * one_m_rho * one_m_rho


def _uniform_open(bits: jnp.ndarray, dtype) -> jnp.ndarray:
    """Uniforms on the open interval (0, 1) from unsigned bits: (m + 1/2) 2^-p."""
    p = jnp.finfo(dtype).nmant + 1
    shift = bits.dtype.itemsize * 8 - p
    m = (bits >> shift).astype(dtype)
    return (m + 0.5) * (2.0**-p)


def _bits(key: jax.Array, n: int, dtype) -> jnp.ndarray:
    width = 64 if jnp.finfo(dtype).bits == 64 else 32
    return jax.random.bits(key, (2 * n,), dtype=jnp.dtype(f"uint{width}"))


def _propose(bits: jnp.ndarray, a, kr1, k, dtype):
    """One wrapped-Cauchy proposal per pair of words: returns (tan(theta/2), accepted)."""
    n = bits.shape[0] // 2
    u = _uniform_open(bits[:n], dtype)
    u2 = _uniform_open(bits[n:], dtype)
    w = a * tan_pi(u - 0.5)
    w2 = w * w
    # c = k (r - cos theta) = k (r - 1) + k (1 - cos theta), 1 - cos theta = 2w^2/(1+w^2)
    c = kr1 + 2.0 * k * w2 / (1.0 + w2)
    return w, u2 <= c * jnp.exp(1.0 - c)


def _buffer_sizes(n: int) -> list[int]:
    """Static sizes of the compacted buffers of pending elements, round by round.

    Each is the expected number of rejections of the previous buffer at the worst
    acceptance rate plus 8 standard deviations: overflow has probability ~1e-15 a round
    and is still handled exactly (by the fallback loop).
    """
    sizes = []
    m = n
    while m > max(_SMALL_BUFFER, n // 50):
        m = min(m, math.ceil(_REJECT_MAX * m + 8.0 * math.sqrt(m * _REJECT_MAX) + 32))
        sizes.append(m)
    return sizes


def _compact(mask: jnp.ndarray, size: int) -> jnp.ndarray:
    """Indices of the True entries of a 1-d ``mask``, in order, padded with len(mask).

    Same result as ``jnp.nonzero(mask, size=size, fill_value=len(mask))[0]``, ~4x faster
    on CPU: the prefix count is done on 32-bit words (a cumulative sum over n/32 row
    counts plus a popcount of each element's lower bits) instead of XLA's cumsum over n.
    """
    n = mask.shape[0]
    rows = -(-n // 32)
    m = jnp.pad(mask, (0, rows * 32 - n)).reshape(rows, 32).astype(jnp.uint32)
    lanes = jnp.arange(32, dtype=jnp.uint32)
    words = jnp.sum(m << lanes, axis=1, dtype=jnp.uint32)
    counts = lax.population_count(words).astype(jnp.int32)
    offsets = jnp.cumsum(counts) - counts
    below = (jnp.uint32(1) << lanes) - jnp.uint32(1)
    rank = lax.population_count(words[:, None] & below).astype(jnp.int32)
    pos = jnp.where(m.astype(bool), offsets[:, None] + rank, size).reshape(-1)
    src = jnp.arange(rows * 32, dtype=jnp.int32)
    return _scatter_drop(jnp.full((size,), n, jnp.int32), pos, src)


def _scatter_drop(target: jnp.ndarray, pos: jnp.ndarray, val: jnp.ndarray) -> jnp.ndarray:
    """``target.at[pos].set(val)``, skipping ``pos == len(target)``.

    Implemented with a spare slot and an in-bounds scatter: XLA's CPU scatter with
    ``mode="drop"`` is ~3.5x slower because it bounds-checks every update.
    """
    size = target.shape[0]
    # The barrier keeps XLA from fusing the index computation into the (scalar) scatter loop.
    pos, val = lax.optimization_barrier((pos, val))
    spare = jnp.concatenate([target, target[:1]])
    return spare.at[pos].set(val, mode="promise_in_bounds")[:size]


def _standard_draws(key: jax.Array, k: jnp.ndarray, n: int) -> jnp.ndarray:
    """``n`` draws of tan(theta/2), theta ~ VonMises(0, k); ``k`` has size 1 or ``n``."""
    dtype = k.dtype
    per_element = k.shape[0] != 1
    params = _envelope(k) + (k,)

    def take(prm, pos):
        if not per_element:
            return prm
        return tuple(p[jnp.minimum(pos, p.shape[0] - 1)] for p in prm)

    sizes = _buffer_sizes(n)
    # One call draws the bits of all compaction rounds (one threefry in the program).
    bits = _bits(jax.random.fold_in(key, 0), n + sum(sizes), dtype)
    starts = [0]
    for m in [n, *sizes]:
        starts.append(starts[-1] + 2 * m)
    # Round 1: one proposal for every element; NaN marks "still pending".
    w, acc = _propose(bits[: 2 * n], *params, dtype)
    values = [jnp.where(acc, w, jnp.nan)]
    positions = []
    pending = ~acc
    # Rounds 2..: compact the pending elements of the previous buffer into a smaller
    # static buffer and give each one new proposal there.
    for r, size in enumerate(sizes, start=1):
        pos = _compact(pending, size)
        live = pos < pending.shape[0]
        params = take(params, pos)
        w, acc = _propose(bits[starts[r] : starts[r + 1]], *params, dtype)
        values.append(jnp.where(live & acc, w, jnp.nan))
        positions.append(pos)
        pending = live & ~acc

    # The last buffer (at most _SMALL_BUFFER live elements) finishes in a bounded loop.
    def small_cond(state):
        i, pend, _ = state
        return (i < _MAX_FINAL_ROUNDS) & jnp.any(pend)

    def small_body(state):
        i, pend, val = state
        m = pend.shape[0]
        w, acc = _propose(_bits(jax.random.fold_in(key, 1000 + i), m, dtype), *params, dtype)
        take_new = pend & acc
        return i + 1, pend & ~acc, jnp.where(take_new, w, val)

    _, _, values[-1] = lax.while_loop(small_cond, small_body, (0, pending, values[-1]))

    # Write each buffer's accepted values back into its parent buffer, last to first.
    for r in range(len(positions), 0, -1):
        val, pos = values[r], positions[r - 1]
        parent = values[r - 1]
        pos = jnp.where(jnp.isnan(val), parent.shape[0], pos)
        values[r - 1] = _scatter_drop(parent, pos, val)
    out = values[0]

    # Exact fallback for a buffer overflow: whole-array rounds for whatever is still NaN.
    # Practically never runs (its condition is evaluated once).
    full = _envelope(k) + (k,)

    def full_cond(state):
        i, out = state
        return (i < _MAX_FINAL_ROUNDS) & jnp.any(jnp.isnan(out))

    def full_body(state):
        i, out = state
        w, acc = _propose(_bits(jax.random.fold_in(key, 2000 + i), n, dtype), *full, dtype)
        return i + 1, jnp.where(jnp.isnan(out) & acc, w, out)

    _, out = lax.while_loop(full_cond, full_body, (0, out))
    return out


@jax.custom_jvp
def _implicit_reparam(theta: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    return theta


@_implicit_reparam.defjvp
def _implicit_reparam_jvp(primals, tangents):
    theta, k = primals
    _, tk = tangents
    # Re-enter through _implicit_reparam so that higher derivatives see d theta/dk too.
    z = _implicit_reparam(theta, k)
    dcdf_dk = jax.jvp(lambda kk: _cdf(z, 0.0, kk), (k,), (jnp.ones_like(k),))[1]
    pdf = jnp.exp(_log_prob(z, 0.0, k))
    # Where the density underflows (draws ~40 sd out in float64) the ratio is 0/0.
    dz_dk = jnp.where(pdf > 0, -dcdf_dk / jnp.where(pdf > 0, pdf, 1.0), 0.0)
    return z, dz_dk * tk


def sample(
    key: jax.Array,
    loc: ArrayLike,
    concentration: ArrayLike,
    shape: Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
) -> jnp.ndarray:
    r"""Draw von Mises samples in :math:`[-\pi, \pi)`.

    Parameters
    ----------
    key : jax.Array
        A PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
    loc : array_like
        Mean direction :math:`\mu`.
    concentration : array_like
        :math:`\kappa \ge 0`. ``0`` gives the uniform distribution.
    shape : sequence of int, optional
        Output shape; ``loc`` and ``concentration`` must broadcast to it. Default: their
        broadcast shape. Static (a change recompiles under ``jit``).
    dtype : dtype, optional
        Output float dtype. Default: the common dtype of ``loc`` and ``concentration``
        (float32 unless x64 is enabled).

    Returns
    -------
    jax.Array
        Exact draws (Best-Fisher rejection, see the module notes) for every finite
        :math:`\kappa \ge 0`, wrapped to :math:`[-\pi, \pi)`; NaN where the concentration
        is negative, NaN or infinite, or ``loc`` is NaN.

    Notes
    -----
    Reparameterised: ``jax.grad`` and ``jax.jvp`` with respect to ``loc`` (derivative 1)
    and ``concentration`` (implicit, :math:`-\partial_\kappa F / p`) work, so SVI and
    neural-network losses can learn :math:`\kappa`. All loops are bounded and compiled
    once; ``vmap`` over keys or parameters works.

    Examples
    --------
    >>> import jax
    >>> from vm_ppl import sample
    >>> x = sample(jax.random.key(0), 0.0, 2.0, shape=(1000,))
    >>> x.shape
    (1000,)
    """
    if dtype is None:
        loc, concentration = promote_float(loc, concentration)
    else:
        loc = jnp.asarray(loc, dtype)
        concentration = jnp.asarray(concentration, dtype)
    if shape is None:
        shape = jnp.broadcast_shapes(jnp.shape(loc), jnp.shape(concentration))
    shape = tuple(shape)
    if jnp.broadcast_shapes(shape, jnp.shape(loc), jnp.shape(concentration)) != shape:
        raise ValueError(
            f"loc {jnp.shape(loc)} and concentration {jnp.shape(concentration)} do not "
            f"broadcast to shape {shape}"
        )
    n = math.prod(shape)
    valid = valid_concentration(concentration)
    k = lax.stop_gradient(jnp.where(valid, concentration, 1.0))
    k_flat = k.reshape(-1) if k.size == 1 else jnp.broadcast_to(k, shape).reshape(-1)
    if n == 0:
        w = jnp.zeros((0,), loc.dtype)
    else:
        w = _standard_draws(key, k_flat, n)
    theta = (2.0 * atan(w)).reshape(shape)
    theta = _implicit_reparam(theta, jnp.broadcast_to(concentration, shape))
    out = wrap_angle(loc + theta)
    return jnp.where(valid, out, jnp.nan)
