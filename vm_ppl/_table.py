r"""Exact table-based rejection sampler for draws that share one concentration.

The target is :math:`|\theta|` on :math:`[0, \pi]` with density proportional to
:math:`f(t) = e^{\kappa(\cos t - 1)} = e^{-2\kappa \sin^2(t/2)}`, which decreases on
that interval; the sign of :math:`\theta` is an independent fair bit.

* **Bins of equal envelope mass.** :math:`B` bins (``B`` a power of 2) with edges
  :math:`x_0 = 0`, :math:`x_{j+1} = \min(\pi, x_j + K / f(x_j))`, the last edge
  :math:`\pi`, so that every bin's box :math:`[x_j, x_{j+1}] \times [0, f(x_j)]` has
  mass :math:`K` (the last one at most :math:`K` when the recursion reaches
  :math:`\pi` in time, which :math:`K = \pi\,\mathrm{i0e}(\kappa)/(B - 6)` ensures
  for every :math:`\kappa`; the empty bins left then cost about 6/B of the
  proposals). The edges are built inside ``jit`` by a ``lax.scan`` of ``B - 1`` steps
  from the traced :math:`\kappa`, vectorised over many concentrations. They only affect
  the efficiency, never the distribution.
* **Boxes.** Each bin is one slot of :math:`S = 2^{31}/B` counts, selected by
  :math:`\log_2 B` random bits. Its box is split into a *rectangle* under
  :math:`f(x_{j+1})` (every point accepted: :math:`f` decreases; Marsaglia and Tsang
  2000), a *cap* from :math:`f(x_{j+1})` up to :math:`f(x_j)` (a point :math:`(x, y)`
  is accepted iff :math:`y \le f(x)`) and a *null* rest (rejected). The counts are
  integers: the rectangle rounded down and the rectangle plus cap rounded up, each with
  a relative margin of :math:`2^{-12}` (far above the few-ulp error of evaluating
  :math:`f`), so the rectangle lies under :math:`f` and the cap reaches above it
  whatever the rounding. Accepted points are therefore exactly distributed as
  :math:`f` whatever the edges and counts.
* **Bits.** One 32-bit word gives the sign (1 bit), the bin and a position among its
  :math:`S` counts, which selects rectangle, cap or null and the position in it: a
  proposal costs one word, its position has :math:`2^{-31}` resolution in proposal
  probability (finer than a 24-bit uniform), and only cap proposals (1-3 %) need a
  second word, for :math:`y`. In float64 a proposal takes 64 bits (the low 32 refine
  the position) and :math:`y` has 53 bits.

References
----------
.. [1] Marsaglia, G. and Tsang, W. W. (2000). The ziggurat method for generating random
   variables. *J. Stat. Softw.* 5(8).
.. [2] Best, D. J. and Fisher, N. I. (1979). Efficient simulation of the von Mises
   distribution. *Applied Statistics* 28, 152-157 (the sampler this replaces for
   shared concentrations; it needs about 3 words per draw).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

from ._fastmath import sincos
from .bessel import log_i0e

_TOTAL = 1 << 31  # counts of a table: 1 sign bit + 31 bits of bin and position
# Relative safety margin of the integer box masses (see the module notes).
_MARGIN = 2.0**-12
# Lanes per group sharing _Y_WORDS random words for the y of their cap proposals.
_GROUP = 8
_Y_WORDS = 3
# Bins the recursion is allowed to need beyond the exact-integral estimate (caps).
_SLACK = 6


class Table(NamedTuple):
    """Bins for one concentration (leading axes allowed, e.g. one per group).

    Bin ``j`` covers ``[left[j], left[j] + width)``; positions ``r < n_rect[j]`` of its
    slot are its rectangle (``x = left + rect_scale (r + 1/2)``, accepted), positions
    ``n_rect <= r < n_top`` its cap (``x = left + cap_scale (r - n_rect + 1/2)``,
    accepted iff ``lo + y span <= f(x)``), the rest null (rejected).
    """

    n_rect: jnp.ndarray  # uint32 (..., B)
    n_top: jnp.ndarray  # uint32
    left: jnp.ndarray
    rect_scale: jnp.ndarray
    cap_scale: jnp.ndarray
    lo: jnp.ndarray
    span: jnp.ndarray


@custom_vmap
def _take(a: jnp.ndarray, idx: jnp.ndarray) -> jnp.ndarray:
    """``a[idx]`` (rows of ``a`` along its first axis) for in-range integer ``idx``.

    Under ``vmap`` with a batched ``a`` (one table per group or chunk) the rows are
    flattened and offset, so XLA sees a plain 1-d gather that fuses into the
    surrounding loop; its batched gather is several times slower on CPU.
    """
    return a[idx]


@_take.def_vmap
def _take_vmap(axis_size, in_batched, a, idx):
    a_b, i_b = in_batched
    if not a_b:
        return _take(a, idx), i_b
    if not i_b:
        idx = jnp.broadcast_to(idx, (axis_size, *idx.shape))
    off = (jnp.arange(axis_size, dtype=idx.dtype) * a.shape[1]).reshape(
        (axis_size,) + (1,) * (idx.ndim - 1)
    )
    return _take(a.reshape(-1, *a.shape[2:]), idx + off), True


def _density(x: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """f(x) = exp(-2 k sin^2(x/2)) for x in [0, pi] (1 at x = 0 and at k = 0).

    Formed as ``exp(-q^2)`` with ``q = sin(x/2) sqrt(2k)``: at the largest ``k`` the draws
    are ~1e-19 and ``sin^2`` alone would underflow in float32."""
    s, _ = sincos(0.5 * x)
    q = s * jnp.sqrt(2.0 * k)
    return jnp.exp(-(q * q))


def build(k: jnp.ndarray, dtype, bins: int = 256) -> Table:
    """The table for one concentration ``k`` (a scalar; ``vmap`` for several), with
    ``bins`` bins (a power of 2, at least 16)."""
    dt = jnp.dtype(dtype)
    k = jnp.asarray(k, dt)
    per_slot = _TOTAL // bins
    # Integral of f over [0, pi] is pi i0e(k); K leaves _SLACK bins for the caps.
    big_k = math.pi * jnp.exp(log_i0e(k)) / (bins - _SLACK)

    def step(x, _):
        nxt = jnp.minimum(x + big_k / _density(x, k), math.pi)
        return nxt, nxt

    _, inner = lax.scan(step, jnp.zeros((), dt), None, length=bins - 1)
    edges = jnp.concatenate([jnp.zeros((1,), dt), inner, jnp.full((1,), math.pi, dt)])
    left = edges[:-1]
    h = edges[1:] - left
    fe = _density(edges, k)
    upper = h * fe[:-1]
    c = (per_slot * (1.0 - 2.0**-9)) / jnp.max(upper)
    n_rect = jnp.floor(c * h * fe[1:] * (1.0 - _MARGIN)).astype(jnp.uint32)
    n_top = jnp.where(h > 0, jnp.ceil(c * upper * (1.0 + _MARGIN)) + 1.0, 0.0)
    n_top = jnp.minimum(n_top, per_slot).astype(jnp.uint32)
    n_cap = n_top - n_rect
    # Heights in units of f: rectangle up to n_rect / (c h), cap n_cap / (c h) above it.
    ch = jnp.where(h > 0, c * h, 1.0)
    return Table(
        n_rect,
        n_top,
        left,
        h / jnp.maximum(n_rect, 1).astype(dt),
        h / jnp.maximum(n_cap, 1).astype(dt),
        n_rect.astype(dt) / ch,
        n_cap.astype(dt) / ch,
    )


def propose(
    tab: Table, k: jnp.ndarray, key: jax.Array, n: int, dtype
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``n`` proposals for each of the ``R`` rows of ``tab`` (arrays of shape (R, B)), with
    concentrations ``k`` (shape (R,)): ``(theta, accepted)`` of shape (R, n); the accepted
    ones are exact, independent draws of theta ~ VonMises(0, k[row])."""
    dt = jnp.dtype(dtype)
    f64 = dt.itemsize == 8
    rows, bins = tab.n_rect.shape
    k_main, k_y = jax.random.split(key)
    if f64:
        w64 = jax.random.bits(k_main, (rows, n), jnp.uint64)
        word = (w64 >> 32).astype(jnp.uint32)
        fine = ((w64 & jnp.uint64(0xFFFFFFFF)).astype(dt) + 0.5) * 2.0**-32
    else:
        word = jax.random.bits(k_main, (rows, n), jnp.uint32)
        fine = 0.5
    pos_bits = 31 - (bins.bit_length() - 1)
    negative = (word >> 31) == 1
    j = ((word >> pos_bits) & (bins - 1)).astype(jnp.int32)
    r = word & ((1 << pos_bits) - 1)
    if rows > 1:
        j = j + (jnp.arange(rows, dtype=jnp.int32) * bins)[:, None]

    def col(a):  # separate 1-d gathers: a gather of packed rows is several times slower
        return _take(a.reshape(-1), j)

    n_rect = col(tab.n_rect)
    cap = r >= n_rect
    # r - n_rect in integers: exact offsets into the cap.
    off = jnp.where(cap, r - n_rect, r).astype(dt) + fine
    x = col(tab.left) + jnp.where(cap, col(tab.cap_scale), col(tab.rect_scale)) * off
    null = r >= col(tab.n_top)
    cap = cap & ~null
    # y for the cap proposals (1-3 %) without compaction: each group of _GROUP lanes has
    # _Y_WORDS words, the i-th cap of the group takes word i; a group with more caps
    # (probability ~1e-4 per block) takes one fresh word per lane instead. Which word a
    # cap gets depends only on which lanes are caps, so every y is a fresh uniform.
    ubits = jnp.uint64 if f64 else jnp.uint32
    shift, yscale = (11, 2.0**-53) if f64 else (8, 2.0**-24)
    lanes = rows * n
    capg = cap.reshape(lanes // _GROUP, _GROUP)
    ci = capg.astype(jnp.int32)
    crank = jnp.cumsum(ci, axis=1) - ci
    words = jax.random.bits(k_y, (lanes // _GROUP, _Y_WORDS), ubits)
    u = words[:, _Y_WORDS - 1 :]
    for i in range(_Y_WORDS - 2, -1, -1):
        u = jnp.where(crank == i, words[:, i : i + 1], u)
    over = capg & (crank >= _Y_WORDS)
    u = lax.cond(
        jnp.any(over),
        lambda: jnp.where(over, jax.random.bits(jax.random.fold_in(k_y, 1), capg.shape, ubits), u),
        lambda: jnp.broadcast_to(u, capg.shape),
    )
    y = ((u.reshape(rows, n) >> shift).astype(dt) + 0.5) * yscale
    ok = col(tab.lo) + y * col(tab.span) <= _density(x, k[:, None])
    acc = ~null & (~cap | ok)
    return jnp.where(negative, -x, x), acc


def acceptance(bins: int) -> float:
    """A lower bound on the acceptance rate of a ``bins``-bin table at every k: the empty
    bins (at most ``_SLACK``), the null share and the cap rejections (measured 0.974 for
    256 bins and 0.905 for 64, flat in k: tests/test_sampling.py)."""
    return 1.0 - (_SLACK + 2.0) / bins - 0.01


# Bound on the refill passes of :func:`fill` (each fails for a row with probability far
# below 1e-3; 64 never run out in practice, and running out leaves NaN, never a wrong
# value).
_MAX_PASSES = 64


def fill(key: jax.Array, tab: Table, k: jnp.ndarray, m: int, dtype) -> jnp.ndarray:
    """``m`` draws of theta ~ VonMises(0, k[row]) for each of the ``R`` rows of ``tab``:
    shape (R, m).

    One pass makes ``m / acceptance + 3 sqrt(m) + 8`` proposals per row (a row falls
    short with probability ~1e-3) and keeps each row's first ``m`` accepted ones in
    order (prefix counts, then one scatter); a bounded loop of small passes
    (``m / 8 + 32`` proposals per row) tops up the rows that fell short. Taking the
    first ``m`` accepted proposals of an i.i.d. stream in order is exact.
    """
    rows, bins = tab.n_rect.shape
    from .sampling import _prefix_count

    size = rows * m
    row_start = (jnp.arange(rows, dtype=jnp.int32) * m)[:, None]

    def one_pass(i, n, filled, out):
        theta, acc = propose(tab, k, jax.random.fold_in(key, i), n, dtype)
        rank, _ = _prefix_count(acc.reshape(-1))
        rank = rank.reshape(rows, n)
        count = rank[:, -1] + acc[:, -1] - rank[:, 0]
        dest = rank - rank[:, :1] + filled[:, None]
        keep = acc & (dest < m)
        pos = jnp.where(keep, row_start + dest, size).reshape(-1)
        # The barrier keeps XLA from fusing the index computation into the scatter loop.
        pos, theta = lax.optimization_barrier((pos, theta.reshape(-1)))
        out = out.at[pos].set(theta, mode="promise_in_bounds")
        return jnp.minimum(filled + count, m), out

    # Multiples of 32: other lengths make XLA pad the masks of the prefix counts and
    # break the fusions (3x slower).
    n0 = 32 * math.ceil((m / acceptance(bins) + 3.0 * math.sqrt(m) + 8) / 32)
    n1 = 32 * math.ceil((m / 8 + 32) / 32)
    out = jnp.full((size + 1,), jnp.nan, dtype)
    filled, out = one_pass(0, n0, jnp.zeros((rows,), jnp.int32), out)

    def short(state):
        i, filled, _ = state
        return jnp.any(filled < m) & (i <= _MAX_PASSES)

    def top_up(state):
        i, filled, out = state
        return (i + 1, *one_pass(i, n1, filled, out))

    _, _, out = lax.while_loop(short, top_up, (jnp.int32(1), filled, out))
    return out[:size].reshape(rows, m)
