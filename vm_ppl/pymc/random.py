r"""A von Mises :class:`~pytensor.tensor.random.op.RandomVariable` for vm_ppl.

Its own class (not PyTensor's ``VonMisesRV``) so that the backends can be registered
without touching ``pm.VonMises``: the JAX implementation is the core sampler
(:func:`vm_ppl.sample`, exact, uniform at :math:`\kappa = 0`; no NumPyro), NUMBA mode a
native Best-Fisher kernel (:mod:`.dispatch_numba`), the default backend NumPy's
``Generator.vonmises``. Draws are wrapped to :math:`[-\pi, \pi)` on every backend.
"""

from __future__ import annotations

import numpy as np
from pytensor.tensor.random.op import RandomVariable

__all__ = ["VonMisesRV", "vonmises"]


class VonMisesRV(RandomVariable):
    r"""von Mises draws :math:`x \sim \mathrm{VM}(\mu, \kappa)` in :math:`[-\pi, \pi)`.

    Signature ``(), () -> ()``.
    """

    name = "vonmises_vm_ppl"
    signature = "(),()->()"
    dtype = "floatX"
    _print_name = ("VonMises", "\\operatorname{VonMises}")

    @classmethod
    def rng_fn(cls, rng: np.random.Generator, mu, kappa, size) -> np.ndarray:
        draws = rng.vonmises(mu, kappa, size=size)
        # NumPy returns [-pi, pi]; map the closed end onto the core's half-open window.
        return np.where(draws >= np.pi, draws - 2 * np.pi, draws)


vonmises = VonMisesRV()
