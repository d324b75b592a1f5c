r"""PyMC adapter for vm_ppl: a von Mises distribution that runs on every PyTensor backend.

>>> import pymc as pm
>>> import vm_ppl.pymc as vmp
>>> with pm.Model() as model:  # doctest: +SKIP
...     mu = pm.VonMises("mu", 0.0, 0.1)
...     kappa = pm.Gamma("kappa", 2.0, 0.2)
...     vmp.VonMises("y", mu, kappa, observed=angles_in_0_2pi)
...     idata = pm.sample(nuts_sampler="numpyro")

Importing this package registers the JAX (core kernels) and Numba (native) implementations
of its ops and random variable; the PyTorch implementations of its ops
(:mod:`.dispatch_pytorch`) are registered when PyTensor's PyTorch linker is first used.
It imports the core, never :mod:`vm_ppl.numpyro`.
"""

from . import dispatch_jax, dispatch_numba  # noqa: F401  (registration on import)
from ._pytorch_hook import register_pytorch_on_first_use
from .distribution import CircularTransform, VonMises, circular
from .ops import (
    bessel_ratio_derivative,
    one_minus_bessel_ratio,
    vonmises_cdf,
    vonmises_icdf,
    vonmises_logp,
)
from .random import VonMisesRV, vonmises
from .regression import (
    MultimodalPosteriorWarning,
    circular_regression_model,
    detect_multimodality,
    fit_circular_regression,
    mle_init,
)

register_pytorch_on_first_use()


__all__ = [
    "CircularTransform",
    "MultimodalPosteriorWarning",
    "VonMises",
    "VonMisesRV",
    "bessel_ratio_derivative",
    "circular",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "mle_init",
    "one_minus_bessel_ratio",
    "vonmises",
    "vonmises_cdf",
    "vonmises_icdf",
    "vonmises_logp",
]
