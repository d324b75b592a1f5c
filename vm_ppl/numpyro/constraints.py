r"""Constraints and transforms that make circular latent variables sample well.

NumPyro maps ``constraints.circular`` onto :math:`(-\pi, \pi)` with a sigmoid, so a
posterior mode at :math:`\pm\pi` is torn in two and NUTS cannot cross it (numpyro#1070,
#1080); users have to know about ``CircularReparam``. Here the support of
:class:`vm_ppl.numpyro.VonMises` is :data:`circular`, a subclass of NumPyro's circular
constraint whose unconstrained map is the periodic wrap
:math:`x \mapsto ((x + \pi) \bmod 2\pi) - \pi` with log-Jacobian 0 (PyMC's
``CircularTransform`` does the same): the sampler moves on the real line and every
point of the circle, :math:`\pm\pi` included, is an interior point. Its ``check``
accepts any finite angle, since the density is :math:`2\pi`-periodic (wind directions in
:math:`[0, 2\pi)` are valid observations).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to
from numpyro.infer import reparam as _reparam

from ..sampling import wrap_angle

__all__ = ["WrapTransform", "circular", "positive_finite"]


class _PeriodicCircular(type(constraints.circular)):
    """Angles: any finite real, identified modulo 2 pi; canonical window [-pi, pi)."""

    def __call__(self, x):
        return jnp.isfinite(x)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype)


class _PositiveFinite(type(constraints.positive)):
    """0 < x < inf (NumPyro's ``positive`` lets ``inf`` through)."""

    def __call__(self, x):
        return (x > 0) & jnp.isfinite(x)


circular = _PeriodicCircular()
positive_finite = _PositiveFinite()


class WrapTransform(Transform):
    r"""The periodic map :math:`\mathbb{R} \to [-\pi, \pi)`, log-Jacobian 0.

    Not injective: its "inverse" returns the wrapped angle itself, which is all the
    NUTS machinery needs (initial values, ``Predictive``, ``log_density``).
    """

    domain = constraints.real
    codomain = circular

    def __call__(self, x):
        return wrap_angle(x)

    def _inverse(self, y):
        return wrap_angle(y)

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        return jnp.zeros_like(x)

    def tree_flatten(self):
        return (), ((), {})

    def __eq__(self, other):
        return isinstance(other, WrapTransform)


@biject_to.register(_PeriodicCircular)
def _biject_to_circular(constraint):
    return WrapTransform()


@biject_to.register(_PositiveFinite)
def _biject_to_positive_finite(constraint):
    return biject_to(constraints.positive)


# numpyro.infer.reparam.CircularReparam asserts `support is constraints.circular`.
# Extend it, additively, to this subclass so that existing models with CircularReparam
# keep working after switching to vm_ppl.numpyro.VonMises; other supports go to the
# original code path unchanged.
_original_circular_reparam = _reparam.CircularReparam.__call__


def _circular_reparam_call(self, name, fn, obs):
    support = fn.support
    if isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is not circular:
        return _original_circular_reparam(self, name, fn, obs)
    import numpyro

    assert obs is None, "CircularReparam does not support observe statements"
    new_fn = dist.ImproperUniform(constraints.real, fn.batch_shape, fn.event_shape)
    value = numpyro.sample(f"{name}_unwrapped", new_fn)
    value = jnp.remainder(value + math.pi, 2 * math.pi) - math.pi
    numpyro.factor(f"{name}_factor", fn.log_prob(value))
    return None, value


if getattr(_reparam.CircularReparam.__call__, "__name__", "") != "_circular_reparam_call":
    _reparam.CircularReparam.__call__ = _circular_reparam_call
