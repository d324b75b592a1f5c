r"""Checks of observed data shared by the adapters (framework-free: NumPy only).

* :func:`check_finite` raises a ``ValueError`` naming the argument and the first index
  of a NaN or infinite value (a NaN angle or covariate has no meaning for a sampler; it
  would otherwise give NaN log-densities, divergent chains or a failed start).
* :func:`warn_if_degrees` warns (:class:`DegreesWarning`) when angles that should be in
  radians look like degrees: some finite :math:`|y| > 2\pi` (to within
  :data:`DEGREES_RTOL`). Radians in any window inside :math:`[-2\pi, 2\pi]` (e.g.
  :math:`[-\pi, \pi)` or :math:`[0, 2\pi)`) never warn; degrees whose magnitudes are all
  below :math:`2\pi` (at most 6.28 degrees) cannot be told apart and do not warn.
  Radians in a window beyond :math:`2\pi` (e.g. :math:`[2\pi, 4\pi)` or unwrapped phases)
  do warn: wrap them with :func:`vm_ppl.wrap_angle`, or filter the warning by its class.

These run on concrete (host) arrays only, at model-build or trace time, never inside a
compiled log-density.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DEGREES_RTOL", "DegreesWarning", "check_finite", "first_nonfinite", "warn_if_degrees"]

#: Relative tolerance above :math:`2\pi` before angles are taken for degrees (float32
#: rounds :math:`2\pi` up by 3e-8 relative; wrapped data may touch it).
DEGREES_RTOL = 1e-4


class DegreesWarning(UserWarning):
    """Observed angles look like degrees, not radians."""


def first_nonfinite(value: ArrayLike) -> tuple[int, ...] | None:
    """Index (C order) of the first NaN or infinite entry of ``value``, or ``None``."""
    a = np.asarray(value)
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))


def _format_index(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else str(index)


def check_finite(value: ArrayLike, name: str) -> None:
    """Raise ``ValueError`` if ``value`` has a NaN or infinite entry.

    The message names ``name``, the first bad index in ``value``'s own shape (``3`` for a
    vector, ``(3, 1)`` for a matrix) and the value found there, e.g. ``"X contains a
    non-finite value at index (3, 1): nan"``.
    """
    a = np.asarray(value)
    index = first_nonfinite(a)
    if index is not None:
        raise ValueError(
            f"{name} contains a non-finite value at index {_format_index(index)}: {a[index]}"
        )


def warn_if_degrees(value: ArrayLike, name: str, *, prefix: str = "", stacklevel: int = 2) -> bool:
    r"""Warn (:class:`DegreesWarning`) if the angles ``value`` look like degrees.

    Parameters
    ----------
    value : array_like
        Angles that should be in radians. NaN entries are ignored here.
    name : str
        The argument's name, used in the message.
    prefix : str
        Put before the message (e.g. ``"VonMises: observed "``).
    stacklevel : int
        As :func:`warnings.warn` (relative to the caller of this function).

    Returns
    -------
    bool
        Whether it warned: some finite :math:`|v| > 2\pi\,(1 + 10^{-4})`.
    """
    a = np.abs(np.asarray(value, dtype=float))
    a = a[np.isfinite(a)]
    if a.size == 0:
        return False
    top = float(a.max())
    if top <= 2 * math.pi * (1 + DEGREES_RTOL):
        return False
    warnings.warn(
        f"{prefix}{name} looks like degrees (max |{name}| = {top:.6g} > 2π); convert with "
        "numpy.deg2rad (radians in a window beyond ±2π: wrap them with vm_ppl.wrap_angle)",
        DegreesWarning,
        stacklevel=stacklevel + 1,
    )
    return True
