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
* Random bits are JAX's Threefry-2x32 written out in :mod:`vm_ppl._bits`, so that XLA
  computes them inside the fusion that consumes them (JAX's CPU lowering is a rolled loop
  that materialises every round, and ``jax.random.bits`` keeps 32 of each hash's 64
  bits): 23 + 23 bits per float32 proposal, 52 + 52 per float64 one.
* Instead of redrawing the whole array until its last element is accepted (NumPyro's
  ``while_loop``: ~13 passes for a million draws), the output is made in chunks of at
  most ``2**16`` draws, chunk ``c`` with its own key ``fold_in(key, c)``, so the cost is
  linear in the number of draws and the values do not depend on how the chunks are
  scheduled (batch, device count):

  - draws that share one concentration (a scalar, or one broadcast along some axes,
    e.g. posterior draws of shape ``(S, 1)`` against ``N`` observations: each group of
    draws with one concentration is cut into chunks) do not need their own proposals,
    so a bounded loop streams cache-sized blocks of proposals (one fused kernel each)
    and appends the accepted ones to the chunk in place until it is full: about
    ``n / acceptance`` proposals for every :math:`\kappa`;
  - with per-element concentrations, round 1 of a chunk makes one proposal per element,
    the rejected ones (at most 34.23 %: acceptance is at least 65.77 %) are compacted
    into a static buffer that gets 2 proposals each, the still-rejected into smaller
    ones with 4 and then 16 each, and a bounded retry loop refills the rare leftovers
    with fresh independent passes. The buffers are sized for 15 % rejections when
    every concentration of the call is at most 1 (the rejection rate grows with
    :math:`\kappa`: 13.2 % at 1), and the later rounds' proposals are keyed by element,
    so the sizes change the work, not the values.

  Chunks are mapped with ``lax.map`` (a GPU maps many per step), and split into one
  contiguous part per device when the device count divides their number, so that under
  ``jit`` with sharded inputs or outputs each device draws its own part. Under ``vmap``
  (NumPyro ``Predictive`` maps the sampler over posterior draws) the mapped calls run in
  cache-sized batches too, with the values of the unmapped calls.
  Everything is compiled once per shape.
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
import operator
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.typing import ArrayLike, DTypeLike

from ._bits import key_words, uniform_pairs, uniform_pairs_at
from ._fastmath import atan, tan_pi
from ._utils import promote_float, valid_concentration
from .cdf import cdf as _cdf
from .density import log_prob as _log_prob

__all__ = ["sample", "wrap_angle"]

# Worst-case rejection probability of Best-Fisher (acceptance >= 0.6577, its limit as
# k -> infinity; the rejection probability grows with k).
_REJECT_MAX = 0.3423
# Per-element chunks whose concentrations are all <= _LOW_K size their later rounds for
# the rejection rate _REJECT_LOW instead (the rate is 0.132 at k = 1 and grows with k:
# SciPy quadrature of 1 - E[c e^(1-c)] in tests/test_sampling.py::
# test_rejection_rate_grows_with_k_and_fits_the_low_tier); the values do not depend on
# the sizes (proposals are keyed by element), only the work does.
_LOW_K = 1.0
_REJECT_LOW = 0.15
# Below this many draws there is no compaction: each element gets _K_SMALL proposals.
_SMALL = 4096
_K_SMALL = 6
# Proposals per element in the rounds of a chunk (the first accepted one is kept): an
# element is still pending after a round with probability <= 0.3423**K, after all four
# with <= 0.3423**23 ~ 2e-11. In a chunk of 2^16 the static buffers then hold 1.95
# proposals per element (_round_sizes), against 2.31 for the earlier (1, 3, 12).
_K_ROUNDS = (1, 2, 4, 16)
# Bound on the retry loop; each retry fails for a given element with probability
# <= 0.3423**6, so 64 retries never run out in practice (0.3423**384 ~ 1e-179).
_MAX_RETRIES = 64


def wrap_angle(x: ArrayLike) -> jnp.ndarray:
    r"""Wrap angles to :math:`[-\pi, \pi)`.

    The derivative is 1 everywhere (the wrap is a piecewise shift), which is what the
    reparameterised gradient with respect to ``loc`` needs.
    """
    (x,) = promote_float(x, names=("x",))
    two_pi = 2 * math.pi
    y = x - two_pi * jnp.floor((x + math.pi) / two_pi)
    # Rounding can land exactly on +pi (or a hair below -pi); both are -pi on the circle.
    # (y - stop_gradient(y)) is 0 but keeps the derivative 1 on that branch too.
    seam = -math.pi + (y - lax.stop_gradient(y))
    return jnp.where((y >= math.pi) | (y < -math.pi), seam, y)


def _envelope(k: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Best-Fisher constants in cancellation-free form: (a, k (r - 1)).

    With s = sqrt(1 + 4k^2), tau = 1 + s, q = sqrt(2 tau) and d = tau + q: rho = 2k / d
    (equal to Best-Fisher's (tau - q) / 2k), 1 - rho = v / d with
    v = 1 + 1/(s + 2k) + q, so a = (1 - rho)/(1 + rho) = v / (d + 2k) and
    k (r - 1) = k (1 - rho)^2 / 2 rho = v^2 / 4d: three divisions and two square roots
    per concentration (the per-element path computes them for every element).
    """
    # 4k^2 would overflow float32 beyond ~9e18; there sqrt(1 + 4k^2) is 2k to the last bit.
    big = k > 1e18
    s = jnp.where(big, 2.0 * k, jnp.sqrt(1.0 + 4.0 * jnp.square(jnp.where(big, 0.0, k))))
    q = jnp.sqrt(2.0 * (1.0 + s))
    d = 1.0 + s + q
    v = 1.0 + 1.0 / (s + 2.0 * k) + q
    return v / (d + 2.0 * k), 0.25 * v * v / d


def _proposals(u: jnp.ndarray, u2: jnp.ndarray, params) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Wrapped-Cauchy proposals ``w = tan(theta/2)`` and the exact accept test, elementwise
    (``params`` broadcast against ``u``)."""
    a, kr1, k = params
    w = a * tan_pi(u - 0.5)
    w2 = w * w
    # c = k (r - cos theta) = k (r - 1) + k (1 - cos theta), 1 - cos theta = 2w^2/(1+w^2)
    c = kr1 + 2.0 * k * w2 / (1.0 + w2)
    return w, u2 <= c * jnp.exp(1.0 - c)


def _first_accepted(w: jnp.ndarray, acc: jnp.ndarray, m: int):
    """Split flat proposals into ``K = len(w) / m`` per element; keep each element's first
    accepted one. Returns ``(w, accepted)`` (``w`` is garbage where none was)."""
    kk = w.shape[0] // m
    if kk == 1:
        return w, acc
    w, acc = w.reshape(kk, m), acc.reshape(kk, m)
    first = jnp.argmax(acc, axis=0)
    return jnp.take_along_axis(w, first[None], axis=0)[0], jnp.any(acc, axis=0)


def _propose(u: jnp.ndarray, u2: jnp.ndarray, params, m: int):
    """``K = len(u) / m`` proposals for each of ``m`` elements with per-element
    ``params`` (shape (m,) or (1,)); the first accepted one of each is kept."""
    kk = u.shape[0] // m
    w, acc = _proposals(u.reshape(kk, m), u2.reshape(kk, m), params)
    return _first_accepted(w.reshape(-1), acc.reshape(-1), m)


def _buffer_size(m: int, reject: float) -> int:
    """Static buffer for the elements of ``m`` still pending at rejection rate ``reject``:
    the mean plus 8 standard deviations (overflow ~1e-15, still handled exactly)."""
    return min(m, math.ceil(reject * m + 8.0 * math.sqrt(m * reject) + 32))


def _prefix_count(mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Exclusive prefix count of a 1-d bool ``mask`` (the rank of each True entry among
    the True entries) and the total count.

    Several times faster on CPU than ``jnp.cumsum`` over ``n`` elements: the cumulative
    sum runs over n/32 word counts, and the rank inside a word is a popcount of its
    lower bits.
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
    return (offsets[:, None] + rank).reshape(-1)[:n], offsets[-1] + counts[-1]


def _compact(mask: jnp.ndarray, size: int) -> jnp.ndarray:
    """Indices of the True entries of a 1-d ``mask``, in order, padded with len(mask):
    ``jnp.nonzero(mask, size=size, fill_value=len(mask))[0]``, via :func:`_prefix_count`.
    """
    n = mask.shape[0]
    rank, _ = _prefix_count(mask)
    # Entries beyond the buffer (an overflow, ~1e-15) go to the spare slot too.
    pos = jnp.where(mask & (rank < size), rank, size)
    src = jnp.arange(n, dtype=jnp.int32)
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


# Elements per independently keyed chunk. Fixed (not tuned to a machine or a backend) so
# that the draws for a key depend neither on the backend's schedule nor on the number of
# devices: chunk c always uses fold_in(key, c).
_CHUNK = 1 << 16
# Proposals per iteration of a shared-k stream. The random bits are made inside the
# block's proposal fusion (vm_ppl._bits), so a block's working set is a few arrays of
# `block` elements (w, the accept mask, its prefix ranks: ~10 bytes per proposal in
# float32, ~80 KiB), far inside a 1 MiB or 2 MiB L2 cache (the two CPUs of issue #12)
# together with the chunk's output (256 KiB): the size is not tied to one machine's
# cache. `python -m vm_ppl.bench.core` times half and double side by side (--blocks;
# table in BENCHMARKS.md); the cost per block is mostly the loop step, which favours
# larger blocks, and a block is wasted work at the end of each chunk, which favours
# smaller ones.
_BLOCK = 1 << 13
# A group of draws sharing one k uses the stream from this many draws on; smaller groups
# are drawn element by element (the stream would waste up to a block per group).
_STREAM_MIN = 256


def _batch_elems() -> int:
    # Chunks are mapped in steps of about this many elements (one vmapped step of
    # lax.map): one cache-sized chunk per step on CPU (two or four per-element chunks per
    # step measured slower: `python -m vm_ppl.bench.core --batches`, table in
    # BENCHMARKS.md), wide steps on a GPU. The batch changes only the schedule, never
    # the values.
    return 1 << 16 if jax.default_backend() == "cpu" else 1 << 22


def _map_chunks(fn, key: jax.Array, xs, nchunks: int, length: int) -> jnp.ndarray:
    """``fn(fold_in(key, c), xs[c])`` for every chunk ``c``, concatenated (flat).

    The chunks are split into ``P`` contiguous parts, ``P`` the number of devices when
    it divides the number of chunks (else 1). Parts are vmapped, so that when the output
    or the inputs are sharded over a mesh GSPMD places each part on its own device; the
    chunks of a part run in cache-sized batches with ``lax.map``. Chunk ``c`` always gets
    ``fold_in(key, c)``: the values depend neither on ``P`` nor on the batch.
    """
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(nchunks))
    if nchunks == 1:
        return fn(keys[0], xs[0])
    ndev = jax.device_count()
    parts = ndev if nchunks % ndev == 0 else 1
    per_part = nchunks // parts
    target = min(per_part, max(1, _batch_elems() // length))
    # Prefer a divisor of per_part (no remainder batch to compile) unless it is much
    # smaller than the target (1526 chunks of 10^8 draws would give batches of 14).
    batch = max(b for b in range(1, target + 1) if per_part % b == 0)
    if 2 * batch < target:
        batch = target

    def run_part(ks, xx):
        if per_part == 1:
            return fn(ks[0], xx[0])[None]
        if batch == 1:
            return lax.map(lambda a: fn(a[0], a[1]), (ks, xx))
        return lax.map(lambda a: fn(a[0], a[1]), (ks, xx), batch_size=batch)

    if parts == 1:
        return run_part(keys, xs).reshape(-1)
    ks = keys.reshape(parts, per_part, *keys.shape[1:])
    xx = xs.reshape(parts, per_part, *xs.shape[1:])
    return jax.vmap(run_part)(ks, xx).reshape(-1)


def _uses_rounds(g: int, m: int) -> bool:
    """Whether :func:`_standard_draws` draws ``g`` groups of ``m`` per element in rounds
    (the only path whose work depends on ``reject``)."""
    return not (m >= _STREAM_MIN or g == 1) and min(_CHUNK, g * m) > _SMALL


def _standard_draws(
    key: jax.Array, k: jnp.ndarray, m: int, reject: float = _REJECT_MAX
) -> jnp.ndarray:
    """Draws theta ~ VonMises(0, k[i]) in [-pi, pi]: ``m`` for each of the ``g``
    concentrations in ``k`` (shape (g,)), flat in group-major order (length ``g m``).

    Groups of at least ``_STREAM_MIN`` draws (and a single group of any size) are split
    into nearly equal chunks of at most ``_CHUNK`` draws, each filled by a shared-k
    stream (:func:`_stream_chunk`); smaller groups are flattened and drawn per element in
    chunks of ``_CHUNK`` (:func:`_draw_chunk`, its rounds sized for the rejection rate
    ``reject``). Either way the cost is linear in the number of draws and every chunk is
    keyed by its index.
    """
    g = k.shape[0]
    if m >= _STREAM_MIN or g == 1:
        q = -(-m // _CHUNK)
        length = -(-m // q)
        # Short chunks (groups of a few hundred draws) take blocks of about half the
        # chunk, so two or three loop steps fill them (a quarter, the earlier choice,
        # measured slower for 1000 groups of 1000 draws at k = 5 and 50).
        block = min(_BLOCK, 1 << max(6, math.ceil(math.log2(length / 2))))
        kc = jnp.repeat(k, q) if q > 1 else k
        fn = partial(_stream_chunk, length=length, block=block)
        out = _map_chunks(fn, key, kc, g * q, length)
        return out.reshape(g, q * length)[:, :m].reshape(-1)
    n = g * m
    kf = jnp.broadcast_to(k[:, None], (g, m)).reshape(-1)
    length = min(_CHUNK, n)
    nchunks = -(-n // length)
    kf = jnp.pad(kf, (0, nchunks * length - n), constant_values=1.0)
    fn = partial(_draw_chunk, n=length, reject=reject)
    out = _map_chunks(fn, key, kf.reshape(nchunks, length), nchunks, length)
    return out[:n]


def _mapped_draws(m: int):
    """:func:`_standard_draws` with ``m`` bound, batched in cache-sized groups.

    Under ``vmap`` (NumPyro ``Predictive`` maps the sampler over posterior draws; users
    map it over keys) each mapped call is still :func:`_standard_draws` of its own key
    and concentrations, so the values are those of the unmapped calls, but the calls run
    with ``lax.map`` in batches of about ``_batch_elems()`` draws rather than all at
    once: vmapping the whole sampler multiplies its cache-sized blocks by the batch.
    """

    def by_tier(k, draw):
        # Rounds sized for the lower rejection rate when every concentration allows it:
        # one decision for the whole call (or batch of calls), so that the rounds are
        # never vmapped over a per-chunk predicate (both branches would run). The values
        # are the same either way.
        if not _uses_rounds(k.shape[-1], m):
            return draw(_REJECT_MAX)
        low = jnp.all(k <= _LOW_K)
        return lax.cond(low, lambda: draw(_REJECT_LOW), lambda: draw(_REJECT_MAX))

    @custom_vmap
    def draws(key, k):
        return by_tier(k, partial(_standard_draws, key, k, m))

    @draws.def_vmap
    def _rule(axis_size, in_batched, key, k):
        key, k = (
            x if b else jnp.broadcast_to(x, (axis_size, *x.shape))
            for x, b in zip((key, k), in_batched, strict=True)
        )
        batch = max(1, min(axis_size, _batch_elems() // max(1, k.shape[1] * m)))

        def all_calls(reject):
            def one(a):
                return _standard_draws(a[0], a[1], m, reject)

            return lax.map(one, (key, k), batch_size=batch if batch > 1 else None)

        return by_tier(k, all_calls), True

    return draws


def _draw_chunk(key: jax.Array, k: jnp.ndarray, n: int, reject: float = _REJECT_MAX) -> jnp.ndarray:
    """``n`` draws theta ~ VonMises(0, k) for one chunk; ``k`` has size 1 or ``n``.

    The first pass sizes its rounds for the rejection rate ``reject``. A bounded retry
    loop around :func:`_draw_once`: slots that one pass leaves NaN (no
    accepted proposal, or a buffer overflow) are filled by a fresh, independent pass. The
    slots to refill are chosen before the new values are drawn, so every value is an
    exact draw. One pass almost always suffices, and the loop is a single compiled
    program (no separate fallback code).
    """
    dtype = k.dtype
    params = _envelope(k) + (k,)
    kw = key_words(key)

    def cond(state):
        i, out = state
        return (i < _MAX_RETRIES) & jnp.any(jnp.isnan(out))

    def body(state):
        i, out = state
        new = _draw_once(kw, i * len(_K_ROUNDS), params, n, dtype)
        return i + 1, jnp.where(jnp.isnan(out), new, out)

    # The first pass runs outside the loop (it always runs; no NaN-filled start).
    first = _draw_once(kw, 0, params, n, dtype, reject=reject)
    _, out = lax.while_loop(cond, body, (1, first))
    return 2.0 * atan(out)


def _stream_chunk(key: jax.Array, k: jnp.ndarray, length: int, block: int) -> jnp.ndarray:
    """``length`` draws theta ~ VonMises(0, k) for one concentration ``k`` (a scalar)
    shared by all of them.

    Proposals then do not depend on the element they serve, so the chunk is filled by a
    stream: each iteration makes ``block`` proposals in one fused kernel and appends the
    accepted ones (compaction by prefix counts, then an in-place scatter into a buffer
    with ``block`` spare slots) until ``length`` are filled: about ``length /
    acceptance`` proposals plus at most one block, for every ``k``. The loop is bounded
    (running out has probability < 1e-100 and would leave NaN, never a wrong value).
    """
    dtype = k.dtype
    params = _envelope(k) + (k,)
    size = length + block
    # At acceptance >= 0.6577 a block yields >= 0.6577 * block draws on average; allow
    # twice the expected number of blocks plus 64.
    max_iter = 2 * math.ceil(length / ((1 - _REJECT_MAX) * block)) + 64

    kw = key_words(key)

    def cond(state):
        i, filled, _ = state
        return (filled < length) & (i < max_iter)

    def body(state):
        i, filled, out = state
        # Block i owns the counters (i, 0...): the bits are made inside the block's fusion.
        u, u2 = uniform_pairs(kw, i, block, dtype)
        w, acc = _proposals(u, u2, params)
        rank, count = _prefix_count(acc)
        # filled < length, so accepted proposals land below length + block; rejected ones
        # go to the spare slot `size`. (Under vmap the body also runs for chunks already
        # full, whose writes are discarded: the bound keeps them in bounds.) The barrier
        # keeps XLA from fusing the index computation into the (scalar) scatter loop.
        dest = filled + rank
        pos = jnp.where(acc & (dest < size), dest, size)
        pos, w = lax.optimization_barrier((pos, w))
        return i + 1, filled + count, out.at[pos].set(w, mode="promise_in_bounds")

    out = jnp.full((size + 1,), jnp.nan, dtype)
    _, _, out = lax.while_loop(cond, body, (0, jnp.int32(0), out))
    return 2.0 * atan(out[:length])


def _round_sizes(n: int, ks: tuple[int, ...], reject: float = _REJECT_MAX) -> list[int]:
    """Element counts of the rounds: n, then each buffer sized for the previous round's
    rejections (K proposals per element fail together with probability reject**K)."""
    sizes = [n]
    for k_prev in ks[:-1]:
        sizes.append(_buffer_size(sizes[-1], reject**k_prev))
    return sizes


def _draw_once(
    kw, hi, params, n: int, dtype, ks: tuple[int, ...] | None = None, reject: float = _REJECT_MAX
) -> jnp.ndarray:
    """One pass of the sampler for a chunk; NaN where it did not produce a draw.

    Round 1 makes ``ks[0]`` proposals for every element. The elements none of whose
    proposals was accepted (at most ~34 % after one) are compacted into a static buffer
    for round 2 (``ks[1]`` proposals each), and so on; accepted values are scattered back
    from the last buffer to the first. Round ``r`` takes its bits from the counters
    ``hi + r`` of the key words ``kw``, inside its own fusion: round 1 in order
    (:func:`vm_ppl._bits.uniform_pairs`), later rounds at ``element * K + j`` for the
    ``j``-th proposal of an element (:func:`vm_ppl._bits.uniform_pairs_at`), so the
    values do not depend on the buffer sizes (``reject``, the rejection rate they are
    sized for) unless a buffer overflows (~1e-15; the element is then left NaN). Small
    chunks skip the compaction.
    """
    ks = _K_ROUNDS if ks is None else ks
    per_element = params[0].shape[0] != 1

    def take(prm, pos):
        if not per_element:
            return prm
        return tuple(p[jnp.minimum(pos, p.shape[0] - 1)] for p in prm)

    if n <= _SMALL:
        w, acc = _propose(*uniform_pairs(kw, hi, _K_SMALL * n, dtype), params, n)
        return jnp.where(acc, w, jnp.nan)

    sizes = _round_sizes(n, ks, reject)
    values, positions = [], []
    pending, prm, elem = None, params, None
    for r, m in enumerate(sizes):
        if r == 0:
            live = None
            u = uniform_pairs(kw, hi, ks[0] * m, dtype)
        else:
            pos = _compact(pending, m)
            live = pos < pending.shape[0]
            prm = take(prm, pos)
            positions.append(pos)
            # the chunk's element in each buffer slot (padding slots: any element)
            elem = pos if elem is None else elem[jnp.minimum(pos, elem.shape[0] - 1)]
            e = jnp.minimum(elem, n - 1).astype(jnp.uint32)
            j = jnp.arange(ks[r], dtype=jnp.uint32)[:, None]
            u = uniform_pairs_at(kw, hi + r, (e[None, :] * np.uint32(ks[r]) + j).reshape(-1), dtype)
        w, acc = _propose(*u, prm, m)
        ok = acc if live is None else live & acc
        values.append(jnp.where(ok, w, jnp.nan))
        pending = ~acc if live is None else live & ~acc
    # Scatter back from the last buffer to the first.
    for r in range(len(sizes) - 1, 0, -1):
        parent = values[r - 1]
        pos = jnp.where(positions[r - 1] < parent.shape[0], positions[r - 1], parent.shape[0])
        values[r - 1] = _scatter_drop(parent, pos, values[r])
    return values[0]


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
    shape: int | Sequence[int] | None = None,
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
    shape : int or sequence of int, optional
        Output shape (an int ``n`` means ``(n,)``, as in ``jax.random``); ``loc`` and
        ``concentration`` must broadcast to it. Default: their broadcast shape. Static (a
        change recompiles under ``jit``).
    dtype : dtype, optional
        Output float dtype. Default: the common dtype of ``loc`` and ``concentration``
        (float32 unless x64 is enabled).

    Returns
    -------
    jax.Array
        Exact draws (Best-Fisher rejection, see the module notes) for every finite
        :math:`\kappa \ge 0`, wrapped to :math:`[-\pi, \pi)`; NaN where the concentration
        is negative, NaN or infinite, or ``loc`` is NaN (and there the derivatives are
        NaN too).

    Notes
    -----
    Reparameterised: ``jax.grad`` and ``jax.jvp`` with respect to ``loc`` (derivative 1)
    and ``concentration`` (implicit, :math:`-\partial_\kappa F / p`) work, so SVI and
    neural-network losses can learn :math:`\kappa`. All loops are bounded and compiled
    once; ``vmap`` over keys or parameters works.

    The cost is linear in the number of draws. Draws that share a concentration (a scalar
    ``concentration``, or one broadcast along some axes, e.g. posterior draws of shape
    ``(S, 1)`` against ``N`` observations) are made by a stream of proposals per group,
    which needs fewer random bits than per-element draws. The output is made in
    independently keyed chunks of fixed size, so under ``jit`` with inputs or outputs
    sharded over a ``jax.sharding.Mesh`` each device draws its own part, and the values
    for a key do not depend on the number of devices.

    Examples
    --------
    >>> import jax
    >>> from vm_ppl import sample
    >>> x = sample(jax.random.key(0), 0.0, 2.0, shape=(1000,))
    >>> x.shape
    (1000,)
    """
    if dtype is None:
        loc, concentration = promote_float(loc, concentration, names=("loc", "concentration"))
    else:
        promote_float(jnp.zeros((), dtype), names=("dtype",))  # refuses half precision
        loc = jnp.asarray(loc, dtype)
        concentration = jnp.asarray(concentration, dtype)
    if shape is None:
        shape = jnp.broadcast_shapes(jnp.shape(loc), jnp.shape(concentration))
    try:
        shape = (operator.index(shape),)  # an int, as in jax.random
    except TypeError:
        shape = tuple(operator.index(s) for s in shape)
    if jnp.broadcast_shapes(shape, jnp.shape(loc), jnp.shape(concentration)) != shape:
        raise ValueError(
            f"loc {jnp.shape(loc)} and concentration {jnp.shape(concentration)} do not "
            f"broadcast to shape {shape}"
        )
    return _sample(key, loc, concentration, shape)


def _groups(shape: tuple[int, ...], k_shape: tuple[int, ...]) -> tuple[list[int], int, int]:
    """How draws share concentrations: ``(perm, g, m)``.

    ``perm`` puts the axes along which the concentration varies first, so that the
    transposed output is ``g`` groups (one per concentration) of ``m`` draws each.
    """
    nd = len(shape)
    ks = (1,) * (nd - len(k_shape)) + tuple(k_shape)
    varying = [i for i in range(nd) if ks[i] != 1]
    perm = varying + [i for i in range(nd) if ks[i] == 1]
    g = math.prod(shape[i] for i in varying)
    return perm, g, math.prod(shape) // max(g, 1)


@partial(jax.jit, static_argnames="shape")
def _sample(key, loc, concentration, shape: tuple[int, ...]) -> jnp.ndarray:
    # jit here so that eager calls hit the compilation cache (lax loops built from fresh
    # closures would otherwise be retraced and recompiled on every call).
    n = math.prod(shape)
    valid = valid_concentration(concentration)
    # Clamp finite huge k (the envelope's sqrt(2 tau) would overflow near finfo.max): any
    # k that large already puts every draw on loc to working precision.
    k_max = jnp.finfo(concentration.dtype).max / 16
    k = lax.stop_gradient(jnp.where(valid, jnp.minimum(concentration, k_max), 1.0))
    perm, g, m = _groups(shape, k.shape)
    if n == 0:
        theta = jnp.zeros(shape, loc.dtype)
    else:
        nd = len(shape)
        kg = k.reshape((1,) * (nd - k.ndim) + k.shape).transpose(perm).reshape(-1)
        # theta = 2 atan(w) is taken inside each chunk, while its w is in cache.
        theta = _mapped_draws(m)(key, kg).reshape([shape[i] for i in perm])
        if perm != list(range(nd)):
            theta = theta.transpose([perm.index(i) for i in range(nd)])
    theta = _implicit_reparam(theta, jnp.broadcast_to(concentration, shape))
    out = wrap_angle(loc + theta)
    # NaN where k is invalid, and NaN derivatives there too (a where would give 0).
    return out * lax.stop_gradient(jnp.where(valid, 1.0, jnp.nan)).astype(out.dtype)
