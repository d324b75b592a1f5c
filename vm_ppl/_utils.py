"""Dtype promotion and input validation shared by the core modules."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def promote_float(*args: ArrayLike, names: tuple[str, ...] = ()) -> tuple[jnp.ndarray, ...]:
    """Convert ``args`` to arrays of one common floating dtype.

    Python scalars are weakly typed, so the result follows the array arguments, and
    defaults to float32 (float64 when ``jax_enable_x64`` is on). Integers become the
    default float dtype.

    Half precision (float16, bfloat16) is refused with a ``TypeError`` naming the
    argument (``names[i]`` for ``args[i]``, where given): its 10-bit (7-bit) mantissa
    cannot resolve the density's normaliser or the sampler's acceptance test, and
    silently computing in float32 would hide a 2x memory cost the caller asked to avoid.
    """
    for i, a in enumerate(args):
        dtype = getattr(a, "dtype", None)
        if dtype is not None and jnp.dtype(dtype) in _HALF:
            name = names[i] if i < len(names) else f"argument {i}"
            raise TypeError(
                f"{name} has dtype {jnp.dtype(dtype).name}; vm_ppl computes in float32 or "
                f"float64: convert it first, e.g. {name}.astype(jnp.float32)"
            )
    dtype = jnp.result_type(*args, float)
    return tuple(jnp.asarray(a, dtype) for a in args)


def valid_concentration(k: jnp.ndarray) -> jnp.ndarray:
    """Mask of usable concentrations: finite and >= 0 (NaN, inf and k < 0 are not)."""
    return (k >= 0) & jnp.isfinite(k)


def nan_unless_valid(value: jnp.ndarray, *concentrations: jnp.ndarray) -> jnp.ndarray:
    """``value`` where every concentration is valid, NaN elsewhere: value and derivatives.

    A multiplicative mask rather than ``jnp.where``: the derivative of ``where`` in its
    unselected branch is 0, which would report a plausible-looking zero gradient at an
    invalid concentration. ``value * nan`` is NaN in value and tangent alike, and the
    rule is linear, so reverse mode (its transpose) gets NaN too.
    """
    ok = valid_concentration(concentrations[0])
    for k in concentrations[1:]:
        ok = ok & valid_concentration(k)
    return value * jnp.where(ok, 1.0, jnp.nan)
