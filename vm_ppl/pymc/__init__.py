r"""PyMC adapter for vm_ppl: a von Mises distribution that runs on every PyTensor backend.

>>> import pymc as pm
>>> import vm_ppl.pymc as vmp
>>> with pm.Model() as model:  # doctest: +SKIP
...     mu = pm.VonMises("mu", 0.0, 0.1)
...     kappa = pm.Gamma("kappa", 2.0, 0.2)
...     vmp.VonMises("y", mu, kappa, observed=angles_in_0_2pi)
...     idata = pm.sample(nuts_sampler="numpyro")

Modules: :mod:`.ops` (the ops and their symbolic wrappers), :mod:`._kernels` (the one
scalar source of every non-JAX backend), :mod:`.registry` (the backend implementations),
:mod:`.rewrites` (graph rewrites), :mod:`.random` (the random variable),
:mod:`.distribution` and :mod:`.regression`.

What importing it does to the process: it registers the C, Numba and JAX implementations
of its ops and random variable with PyTensor's dispatchers, and its graph rewrites in
PyTensor's ``optdb``; the rewrites return at once on graphs without a vm_ppl op, so other
models compile to the same graphs as before. Registering the JAX implementations imports
PyTensor's JAX dispatch, which sets ``jax_enable_x64`` to match
``pytensor.config.floatX`` (x64 under PyMC's default float64) for the whole process; PyMC's
JAX samplers do the same when they run. A program that needs JAX's float32 default
afterwards can set it back with ``jax.config.update("jax_enable_x64", False)``.
The PyTorch implementations are opt-in, ``import vm_ppl.pymc.pytorch`` (it imports torch).
It imports the core, never :mod:`vm_ppl.numpyro`.
"""

from . import registry, rewrites  # noqa: F401  (registration on import)
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
