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
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to
from numpyro.infer import reparam as _reparam

from ..sampling import wrap_angle

__all__ = ["CircularReparam", "WrapTransform", "circular", "positive_finite"]


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


class CircularReparam(_reparam.CircularReparam):
    r"""NumPyro's ``CircularReparam`` that also accepts this package's :data:`circular`.

    ``numpyro.infer.reparam.CircularReparam`` asserts ``support is
    constraints.circular``, so it rejects :class:`vm_ppl.numpyro.VonMises` (whose support
    is the subclass :data:`circular`). This subclass applies the same reparametrisation
    (an improper uniform site ``{name}_unwrapped`` on the real line, wrapped into
    :math:`[-\pi, \pi)`, with ``fn.log_prob`` as a factor) to both supports and hands
    every other support to NumPyro's class unchanged. It is opt-in: importing
    ``vm_ppl`` leaves NumPyro's class as it is. :class:`vm_ppl.numpyro.VonMises` does
    not need it (its latent sites already use the periodic :class:`WrapTransform`);
    it is here for models written for the built-in that switch distributions.

    Examples
    --------
    >>> from numpyro import handlers
    >>> from vm_ppl.numpyro import CircularReparam
    >>> reparam_model = handlers.reparam(model, config={"mu": CircularReparam()})  # doctest: +SKIP
    """

    def __call__(
        self, name: str, fn: dist.Distribution, obs: jnp.ndarray | None
    ) -> tuple[None, jnp.ndarray]:
        support = fn.support
        if isinstance(support, constraints.independent):
            support = support.base_constraint
        if support is not circular:
            return super().__call__(name, fn, obs)
        # Same steps as numpyro.infer.reparam.CircularReparam.__call__ (numpyro 0.22),
        # whose support assertion is the only part that does not accept ours.
        if obs is not None:
            raise ValueError("CircularReparam does not support observe statements (obs)")
        new_fn = dist.ImproperUniform(constraints.real, fn.batch_shape, fn.event_shape)
        value = numpyro.sample(f"{name}_unwrapped", new_fn)
        value = jnp.remainder(value + math.pi, 2 * math.pi) - math.pi
        numpyro.factor(f"{name}_factor", fn.log_prob(value))
        return None, value
