"""Dtype promotion and input validation shared by the core modules."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike


def promote_float(*args: ArrayLike) -> tuple[jnp.ndarray, ...]:
    """Convert ``args`` to arrays of one common floating dtype.

    Python scalars are weakly typed, so the result follows the array arguments, and
    defaults to float32 (float64 when ``jax_enable_x64`` is on). Integers become the
    default float dtype.
    """
    dtype = jnp.result_type(*args, float)
    return tuple(jnp.asarray(a, dtype) for a in args)


def valid_concentration(k: jnp.ndarray) -> jnp.ndarray:
    """Mask of usable concentrations: finite and >= 0 (NaN, inf and k < 0 are not)."""
    return (k >= 0) & jnp.isfinite(k)
