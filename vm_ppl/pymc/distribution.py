r"""``VonMises``: a drop-in for ``pm.VonMises`` built on the vm_ppl kernels.

Differences from ``pm.VonMises`` (PyMC 5.28):

- the log-density is stable for every :math:`\kappa` (``log i0e``; ``pm.VonMises``
  is ``-inf`` from :math:`\kappa \approx 714` in float64, :math:`\approx 89` in float32)
  and accurate near the mode (:math:`-2\kappa\sin^2(d/2)` instead of :math:`\kappa\cos d`);
- it is :math:`2\pi`-periodic in the value, so observed angles in :math:`[0, 2\pi)` (or
  any window) are fine (``pm.VonMises`` returns ``-inf`` outside :math:`[-\pi, \pi]`);
- JAX backends run the core :func:`vm_ppl.log_prob` / :func:`vm_ppl.sample` (no NumPyro),
  Numba runs native kernels (no object mode), the C backend compiled C;
- it has ``logcdf`` and ``icdf`` (the core's Hill 1977 cdf and its inverse).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
from pymc.distributions.continuous import Continuous
from pymc.distributions.dist_math import check_icdf_value, check_parameters
from pymc.distributions.shape_utils import rv_size_is_none
from pymc.distributions.transforms import Transform, _default_transform
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.jax.dispatch import jax_funcify
from pytensor.scalar.basic import upcast

from ..cdf import cdf as core_cdf
from ..cdf import icdf as core_icdf
from .ops import vonmises_logp
from .random import vonmises

__all__ = ["CircularTransform", "VonMises", "VonMisesCDF", "VonMisesICDF", "circular"]


class CircularTransform(Transform):
    r"""Unconstrained real line onto the circle: ``backward = atan2(sin, cos)``.

    The map is periodic, so a sampler moving on the real line passes through
    :math:`\pm\pi` without a boundary (unlike a sigmoid onto :math:`(-\pi, \pi)`, which
    splits a mode sitting at :math:`\pm\pi`). Its log-Jacobian is 0: the density on the
    line is the circular density repeated, an improper but harmless target for NUTS.
    """

    name = "circular"

    def backward(self, value, *inputs):
        return pt.arctan2(pt.sin(value), pt.cos(value))

    def forward(self, value, *inputs):
        return pt.as_tensor_variable(value)

    def log_jac_det(self, value, *inputs):
        return pt.zeros_like(value)


circular = CircularTransform()


class _CoreTernaryOp(Op):
    """Elementwise (broadcast, same-ndim) op evaluated by a vm_ppl core function.

    ``perform`` calls the jitted JAX core (with x64 enabled for float64); under JAX it
    is the core itself. No C or Numba implementation (NUMBA mode falls back to object
    mode for these ops only; the log-density never uses them).
    """

    __props__ = ()
    core_fn = None

    def make_node(self, a, b, c):
        a, b, c = (pt.as_tensor_variable(v) for v in (a, b, c))
        a, b, c = pt.broadcast_arrays(a, b, c)
        dtype = upcast(a.dtype, b.dtype, c.dtype, "float32")
        out = pt.tensor(dtype=dtype, shape=a.type.shape)
        return Apply(self, [a, b, c], [out])

    def perform(self, node, inputs, output_storage):
        dtype = node.outputs[0].dtype
        with jax.enable_x64(dtype == "float64"):
            args = [jnp.asarray(np.asarray(v, dtype)) for v in inputs]
            out = type(self).core_fn(*args)
        output_storage[0][0] = np.asarray(out, dtype=dtype)


class VonMisesCDF(_CoreTernaryOp):
    """:func:`vm_ppl.cdf` as a PyTensor op (SciPy's convention, :math:`F(\\mu) = 1/2`)."""

    core_fn = staticmethod(core_cdf)

    def L_op(self, inputs, outputs, output_grads):
        x, mu, k = inputs
        (gz,) = output_grads
        pdf = pt.exp(vonmises_logp(x, mu, k))
        return [gz * pdf, -gz * pdf, grad_not_implemented(self, 2, k)]


class VonMisesICDF(_CoreTernaryOp):
    """:func:`vm_ppl.icdf` as a PyTensor op."""

    core_fn = staticmethod(core_icdf)


vonmises_cdf = VonMisesCDF()
vonmises_icdf = VonMisesICDF()


@jax_funcify.register(VonMisesCDF)
def _jax_cdf(op, node=None, **kwargs):
    return core_cdf


@jax_funcify.register(VonMisesICDF)
def _jax_icdf(op, node=None, **kwargs):
    return core_icdf


class VonMises(Continuous):
    r"""Von Mises distribution on the circle (same signature as ``pm.VonMises``).

    .. math:: f(x \mid \mu, \kappa) = \frac{e^{\kappa\cos(x - \mu)}}{2\pi I_0(\kappa)}

    Parameters
    ----------
    mu : tensor_like of float, default 0.0
        Mean direction.
    kappa : tensor_like of float, default 1.0
        Concentration, :math:`\kappa > 0`.

    Notes
    -----
    Values may lie in any :math:`2\pi` window (the density is periodic); draws are in
    :math:`[-\pi, \pi)`. Latent variables get :data:`circular` as default transform.
    ``logcdf`` is :math:`\log F` with :math:`F(x) = \int_{\mu-\pi}^x f`
    (so :math:`F(\mu) = 1/2`, :math:`F(x + 2\pi) = F(x) + 1`, SciPy's convention);
    ``icdf`` is its inverse on :math:`[\mu - \pi, \mu + \pi)`.

    References
    ----------
    .. [1] Mardia, K. V. and Jupp, P. E. (2000). *Directional Statistics*. Wiley.
    .. [2] Hill, G. W. (1977). Algorithm 518: Incomplete Bessel function I0: the von
       Mises distribution. *ACM TOMS* 3, 279-284.
    """

    rv_op = vonmises

    @classmethod
    def dist(cls, mu=0.0, kappa=1.0, *args, **kwargs):
        mu = pt.as_tensor_variable(mu)
        kappa = pt.as_tensor_variable(kappa)
        return super().dist([mu, kappa], *args, **kwargs)

    def support_point(rv, size, mu, kappa):
        mu, _ = pt.broadcast_arrays(mu, kappa)
        if not rv_size_is_none(size):
            mu = pt.full(size, mu)
        return mu

    def logp(value, mu, kappa):
        return check_parameters(vonmises_logp(value, mu, kappa), kappa > 0, msg="kappa > 0")

    def logcdf(value, mu, kappa):
        return check_parameters(
            pt.log(vonmises_cdf(value, mu, kappa)), kappa > 0, msg="kappa > 0"
        )

    def icdf(value, mu, kappa):
        res = check_icdf_value(vonmises_icdf(value, mu, kappa), value)
        return check_parameters(res, kappa > 0, msg="kappa > 0")


@_default_transform.register(VonMises)
def _vonmises_default_transform(op, rv):
    return circular
