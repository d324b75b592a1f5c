r"""``vm_ppl.numpyro.VonMises``: a drop-in for ``numpyro.distributions.VonMises``.

Differences from the built-in (numpyro 0.22):

* exact sampler for every :math:`\kappa \ge 0` with no collapse onto ``loc`` in float32,
  reparameterised in ``loc`` **and** ``concentration`` (implicit gradients), so SVI can
  learn :math:`\kappa` (the built-in fails: "Reverse-mode differentiation does not work
  for lax.while_loop");
* observed angles in any window (e.g. :math:`[0, 2\pi)`) give a finite, periodic
  ``log_prob`` also with ``validate_args=True`` (the built-in returns ``-inf``);
* latent sites use a periodic unconstrained map (:mod:`vm_ppl.numpyro.constraints`), so
  NUTS mixes over :math:`\pm\pi` with no reparam handler; models that keep a reparam
  handler use :class:`vm_ppl.numpyro.CircularReparam` (NumPyro's rejects this support);
* ``cdf``, ``icdf``, ``entropy``; ``validate_args`` rejects non-finite ``loc`` and
  :math:`\kappa \le 0`, NaN or ``inf`` with a ``ValueError`` naming the parameter;
* observed angles with a NaN or ``inf`` raise a ``ValueError`` (with the first bad index)
  when a model is traced, and angles that look like degrees warn
  (:class:`~vm_ppl.validation.DegreesWarning`); see :meth:`VonMises.log_prob`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import promote_shapes, validate_sample
from numpyro.util import not_jax_tracer

from .. import cdf as _cdf
from .. import entropy as _entropy
from .. import icdf as _icdf
from .. import log_prob as _log_prob
from .. import sample as _sample
from ..properties import circular_variance
from ..sampling import wrap_angle
from ..validation import check_finite, warn_if_degrees
from .constraints import circular, positive_finite

__all__ = ["CircularUniform", "VonMises"]


def _check_observed(value) -> None:
    check_finite(value, "VonMises: observed value")
    warn_if_degrees(value, "value", prefix="VonMises: observed ", stacklevel=3)


class VonMises(Distribution):
    r"""Von Mises distribution on the circle, backed by the ``vm_ppl`` kernel.

    .. math:: p(x \mid \mu, \kappa) = \frac{e^{\kappa\cos(x - \mu)}}{2\pi I_0(\kappa)}

    Parameters
    ----------
    loc : array_like
        Mean direction :math:`\mu` (any real; only :math:`\mu \bmod 2\pi` matters).
    concentration : array_like
        :math:`\kappa > 0` (finite). ``validate_args=True`` rejects other values with
        ``ValueError``; without validation, :math:`\kappa = 0` is the uniform law and
        negative or NaN values give NaN.
    validate_args : bool, optional
        Check parameters at construction and samples in ``log_prob``.

    Notes
    -----
    ``sample`` returns values in :math:`[-\pi, \pi)`; ``log_prob`` accepts any real angle.
    Observed data: when ``log_prob`` is traced (the parameters are JAX tracers, as in
    ``MCMC``, ``SVI`` or ``Predictive``) on concrete angles (model arguments closed over by
    the trace, NumPyro's default), a NaN or infinite angle raises ``ValueError`` with its
    index, whatever the chain method (NumPyro's own "Cannot find valid initial parameters"
    check is skipped under ``chain_method="parallel"``, where the chains would run with
    every transition divergent, issue #10), and angles beyond :math:`2\pi` warn
    (:class:`~vm_ppl.validation.DegreesWarning`). Checked once per trace, on the host, so
    the compiled log-density is unchanged. Not checked: angles that are themselves traced
    (``jit_model_args=True``, data passed as a ``jit`` argument) and eager calls with
    concrete parameters, where a NaN angle gives NaN like :func:`vm_ppl.log_prob` (or
    ``-inf`` with NumPyro's out-of-support warning when its validation is on). Missing
    observations: drop them, or mask them (``obs_mask``, ``numpyro.handlers.mask``; masked
    entries are not checked).
    ``cdf`` follows SciPy (:math:`F(\mu) = 1/2`, :math:`F(x + 2\pi) = F(x) + 1`)
    and ``icdf`` inverts it on :math:`[\mu - \pi, \mu + \pi]`.

    Examples
    --------
    >>> import jax, numpyro
    >>> from vm_ppl.numpyro import VonMises
    >>> def model(y):
    ...     mu = numpyro.sample("mu", VonMises(0.0, 0.5))
    ...     kappa = numpyro.sample("kappa", numpyro.distributions.Gamma(2.0, 0.5))
    ...     numpyro.sample("y", VonMises(mu, kappa), obs=y)
    """

    arg_constraints = {"loc": constraints.real, "concentration": positive_finite}
    reparametrized_params = ["loc", "concentration"]
    support = circular

    def __init__(self, loc, concentration, *, validate_args: bool | None = None):
        self.loc, self.concentration = promote_shapes(loc, concentration)
        batch_shape = lax.broadcast_shapes(jnp.shape(loc), jnp.shape(concentration))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape: tuple[int, ...] = ()):
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        return _sample(key, self.loc, self.concentration, shape=shape)

    def _check_observed_if_traced(self, value) -> None:
        if not_jax_tracer(value) and not (
            not_jax_tracer(self.loc) and not_jax_tracer(self.concentration)
        ):
            # Concrete angles, traced parameters: observed data of a model being traced
            # (MCMC, SVI, Predictive). Checked once, at trace time: no runtime cost.
            _check_observed(value)

    @validate_sample
    def log_prob(self, value):
        self._check_observed_if_traced(value)
        return _log_prob(value, self.loc, self.concentration)

    def cdf(self, value):
        return _cdf(value, self.loc, self.concentration)

    def icdf(self, q):
        return _icdf(q, self.loc, self.concentration)

    def entropy(self):
        return jnp.broadcast_to(_entropy(self.concentration), self.batch_shape)

    @property
    def mean(self):
        """Circular mean: ``loc`` wrapped to [-pi, pi)."""
        return jnp.broadcast_to(wrap_angle(self.loc), self.batch_shape)

    @property
    def variance(self):
        r"""Circular variance :math:`1 - I_1(\kappa)/I_0(\kappa)` (stable at large k)."""
        return jnp.broadcast_to(circular_variance(self.concentration), self.batch_shape)


class CircularUniform(Distribution):
    r"""Uniform distribution on the circle, density :math:`1/2\pi`, draws in
    :math:`[-\pi, \pi)`. A prior for a mean direction that NUTS can mix over (its support
    uses the same periodic map as :class:`VonMises`)."""

    arg_constraints = {}
    support = circular
    reparametrized_params = []

    def __init__(self, batch_shape: tuple[int, ...] = (), *, validate_args=None):
        super().__init__(batch_shape=tuple(batch_shape), validate_args=validate_args)

    def sample(self, key, sample_shape: tuple[int, ...] = ()):
        import jax

        shape = tuple(sample_shape) + self.batch_shape
        return jax.random.uniform(key, shape, minval=-jnp.pi, maxval=jnp.pi)

    @validate_sample
    def log_prob(self, value):
        return jnp.broadcast_to(-jnp.log(2 * jnp.pi), jnp.shape(value)).astype(
            jnp.result_type(value, float)
        )

    def tree_flatten(self):
        return (), (self.batch_shape,)

    @classmethod
    def tree_unflatten(cls, aux_data, params):
        return cls(aux_data[0])
