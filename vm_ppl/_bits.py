r"""Random bits for the sampler: Threefry-2x32 written out so that XLA fuses it.

``jax.random.bits`` costs the sampler more than everything else on CPU, for two reasons
that have nothing to do with the hash itself:

* JAX lowers ``threefry2x32`` on CPU as a *rolled* loop over its five groups of rounds
  (``_threefry2x32_cpu_lowering_rule`` in ``jax/_src/random/threefry2x32.py``, chosen
  to keep compile times low): every group is a separate XLA loop step that writes its
  state to memory, and inside the sampler's block loop each step pays the dispatch of
  its fusions.
* With ``jax_threefry_partitionable`` (the default), each 32-bit word is ``x0 ^ x1`` of
  its own hash, so half of every 64-bit hash is thrown away.

Here the 20 rounds are plain ``jnp`` integer operations, the same function as
:func:`jax.extend.random.threefry_2x32` (bit for bit; ``tests/test_sampling.py``
checks it), which XLA fuses with the uniforms and proposals that consume them, and
both words of every hash are used. Counters are ``(hi, lo + iota)``: callers give each
use of a key its own ``hi`` (a block or round index), so no two uses overlap.

References
----------
.. [1] Salmon, J. K., Moraes, M. A., Dror, R. O. and Shaw, D. E. (2011). Parallel random
   numbers: as easy as 1, 2, 3. *SC '11*.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["key_words", "threefry2x32", "uniform_pairs", "uniform_pairs_at"]

# Rotation constants of Threefry-2x32 (Salmon et al. 2011, Table 4), alternating per
# group of four rounds, and the key-schedule parity constant.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x: jnp.ndarray, d: int) -> jnp.ndarray:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(
    k0: jnp.ndarray, k1: jnp.ndarray, x0: jnp.ndarray, x1: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Threefry-2x32 with 20 rounds of the key ``(k0, k1)`` applied to the counters
    ``(x0, x1)`` (uint32, broadcast together); the two uint32 output words."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ _rotl(x1, r)
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _unit(j: jnp.ndarray, bits: int, dtype) -> jnp.ndarray:
    """``(j + 1/2) 2^-bits`` in ``dtype`` for a ``bits``-bit integer ``j`` (exact; in (0, 1))."""
    return (j.astype(dtype) + 0.5) * 2.0**-bits


def _j52(w0: jnp.ndarray, w1: jnp.ndarray, dtype) -> jnp.ndarray:
    """A 52-bit integer from two words: the top 20 of ``w0`` and all 32 of ``w1``,
    exact in float64."""
    return (w0 >> np.uint32(12)).astype(dtype) * 2.0**32 + w1.astype(dtype)


def key_words(key: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Two uint32 words derived from ``key`` (any PRNG implementation) that key
    :func:`uniform_pairs`."""
    w = jax.random.bits(key, (2,), jnp.uint32)
    return w[0], w[1]


def uniform_pairs(kw, hi, m: int, dtype) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Two independent arrays of ``m`` uniforms on the open interval (0, 1).

    ``kw`` is a pair of key words (:func:`key_words`) and ``hi`` (a uint32 scalar) the
    high counter word that this call owns. Each uniform is ``(j + 1/2) 2^-p`` with ``j``
    a uniform ``p``-bit integer, ``p = 23`` for float32 and 52 for float64: ``j + 1/2``
    then has ``p + 1`` significant bits, so the value is exact in the dtype, symmetric
    about 1/2 and never 0 or 1 (with one more bit, ``j + 1/2`` would round to even and
    ``j = 2^p - 1`` would give exactly 1). float32 takes three 64-bit hashes for four
    proposals (8 x 23 of 192 bits), float64 two hashes per proposal (2 x 52 of 128).
    """
    hi = jnp.asarray(hi, jnp.uint32)
    if jnp.finfo(dtype).bits == 64:
        lo = lax.iota(jnp.uint32, 2 * m)
        j = _j52(*threefry2x32(kw[0], kw[1], hi, lo), dtype)
        return _unit(j[:m], 52, dtype), _unit(j[m:], 52, dtype)
    h = -(-m // 4)
    w0, w1 = threefry2x32(kw[0], kw[1], hi, lax.iota(jnp.uint32, 3 * h))
    low = np.uint32(0x1FF)

    def twenty_three_bits(w):
        # Three proposals take the top 23 bits of a word each, the fourth 23 of the
        # 3 x 9 low bits left over.
        w = w.reshape(3, h)
        rest = (
            ((w[0] & low) << np.uint32(14))
            | ((w[1] & low) << np.uint32(5))
            | ((w[2] & low) >> np.uint32(4))
        )
        return jnp.concatenate([w >> np.uint32(9), rest[None]]).reshape(-1)[:m]

    return _unit(twenty_three_bits(w0), 23, dtype), _unit(twenty_three_bits(w1), 23, dtype)


def uniform_pairs_at(kw, hi, lo: jnp.ndarray, dtype) -> tuple[jnp.ndarray, jnp.ndarray]:
    """:func:`uniform_pairs` at explicit counters: two uniforms for each entry of the
    uint32 array ``lo`` (same shape), from the counters ``(hi, lo)`` in float32 (one hash
    per pair) and ``(hi, 2 lo)``, ``(hi, 2 lo + 1)`` in float64 (``lo < 2^31``).

    The sampler's later rounds key each proposal by its element and index, so that the
    values do not depend on where the element sits in a buffer.
    """
    hi = jnp.asarray(hi, jnp.uint32)
    lo = jnp.asarray(lo, jnp.uint32)
    if jnp.finfo(dtype).bits == 64:
        a = _j52(*threefry2x32(kw[0], kw[1], hi, lo << np.uint32(1)), dtype)
        b = _j52(*threefry2x32(kw[0], kw[1], hi, (lo << np.uint32(1)) | np.uint32(1)), dtype)
        return _unit(a, 52, dtype), _unit(b, 52, dtype)
    w0, w1 = threefry2x32(kw[0], kw[1], hi, lo)
    return _unit(w0 >> np.uint32(9), 23, dtype), _unit(w1 >> np.uint32(9), 23, dtype)
