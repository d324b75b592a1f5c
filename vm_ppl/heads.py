r"""A von Mises output head for neural networks and policies with directional outputs.

A network emits three unconstrained numbers per direction, :math:`(a, b, c)`; the head
maps them to a mean direction :math:`\mu = \operatorname{atan2}(b, a)` (the angle of a
2-d vector, so the map has no seam at :math:`\pm\pi`) and a concentration
:math:`\kappa = \operatorname{softplus}(c) + \kappa_{\min}`, then either returns
:math:`\mu` (inference) or a reparameterised draw from
:math:`\mathrm{VonMises}(\mu, \kappa / T)` with temperature :math:`T` (training,
exploration). Gradients flow to :math:`a, b, c` through :func:`vm_ppl.sample`'s implicit
reparameterisation, so losses of the sampled angle train both the direction and the
concentration.

References
----------
.. [1] Figurnov, M., Mohamed, S. and Mnih, A. (2018). Implicit reparameterization
   gradients. *NeurIPS* 31.
.. [2] Prokudin, S., Gehler, P. and Nowozin, S. (2018). Deep directional statistics:
   pose estimation with uncertainty quantification. *ECCV*.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._utils import promote_float
from .sampling import sample

__all__ = ["DirectionalOutput", "directional_head"]


class DirectionalOutput(NamedTuple):
    """Output of :func:`directional_head`."""

    angle: jnp.ndarray  #: sampled angle (training) or the mean direction (inference)
    loc: jnp.ndarray  #: mean direction in [-pi, pi]
    concentration: jnp.ndarray  #: kappa before the temperature


def directional_head(
    outputs: ArrayLike,
    key: jax.Array | None = None,
    *,
    temperature: float | ArrayLike = 1.0,
    min_concentration: float = 1e-3,
) -> DirectionalOutput:
    r"""Map network outputs ``(..., 3)`` to a von Mises direction.

    Parameters
    ----------
    outputs : array_like, shape (..., 3)
        Unconstrained ``(a, b, c)``: :math:`\mu = \operatorname{atan2}(b, a)`,
        :math:`\kappa = \operatorname{softplus}(c) + \kappa_{\min}`.
    key : jax.Array, optional
        PRNG key. With a key, ``angle`` is a reparameterised draw from
        :math:`\mathrm{VonMises}(\mu, \kappa / T)`; without one (inference), ``angle``
        is the mean direction :math:`\mu`.
    temperature : float or array_like
        :math:`T > 0`; larger values spread the draws (exploration), ``T -> 0`` tends to
        the mean. Broadcast against the batch shape.
    min_concentration : float
        Floor added to the softplus, keeping :math:`\kappa` away from 0 (where the mean
        direction is not identified and gradients in :math:`a, b` vanish).

    Returns
    -------
    DirectionalOutput
        ``(angle, loc, concentration)``, each of the batch shape ``outputs.shape[:-1]``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from vm_ppl.heads import directional_head
    >>> out = directional_head(jnp.array([[1.0, 1.0, 2.0]]), jax.random.key(0))
    >>> out.angle.shape
    (1,)
    """
    (outputs,) = promote_float(outputs)
    if outputs.shape[-1:] != (3,):
        raise ValueError(f"outputs must have a last axis of size 3, got {outputs.shape}")
    a, b, c = outputs[..., 0], outputs[..., 1], outputs[..., 2]
    loc = jnp.arctan2(b, a)
    kappa = jax.nn.softplus(c) + min_concentration
    if key is None:
        return DirectionalOutput(loc, loc, kappa)
    angle = sample(key, loc, kappa / jnp.asarray(temperature, kappa.dtype), shape=loc.shape)
    return DirectionalOutput(angle, loc, kappa)
