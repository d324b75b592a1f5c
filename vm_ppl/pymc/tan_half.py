r"""The tan-half link-density as one PyTensor op, and the rewrite that forms it.

A tan-half circular regression (:func:`vm_ppl.pymc.circular_regression_model`) builds
``vonmises_logp(y, mu0 + 2 * arctan(eta), kappa)``. On the JAX backend, which PyMC's
``nuts_sampler="numpyro"`` / ``"blackjax"`` and nutpie's ``backend="jax"`` use, that graph
would evaluate an ``arctan`` per observation and then the density.
:func:`local_vonmises_tan_half_fuse` recognises the pattern, rooted at our
:class:`~.ops.VonMisesLogp` (so it never fires on a graph without a vm_ppl op), and
replaces it by one :class:`VonMisesTanHalfLogp` node whose JAX implementation is the core
kernel :func:`vm_ppl.tan_half_log_prob` (tangent subtraction identity, no ``arctan``,
analytic derivatives in all four inputs).

The rewrite is registered for the JAX backend only (``optdb`` tag ``"jax"``, position
0.627). On the C and Numba backends the same pattern already becomes an arctan-free loop
through the existing rewrites of :mod:`.ops` (:func:`~.ops.local_vonmises_split_normaliser`
then :func:`~.ops.local_tan_half_angle_atan_link`), which fuse density and gradient into
one elementwise loop; the op here is not used there.

The op also has a Python ``impl`` (constant folding, the Python linker) and a symbolic
gradient, so a graph that contains it can still be differentiated by PyTensor.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.scalar.basic import ScalarOp, upgrade_to_float
from pytensor.tensor.elemwise import Elemwise

from . import _kernels
from .ops import (
    _elemwise_inputs,
    _split_constant,
    one_minus_bessel_ratio_scalar,
    vonmises_logp_scalar,
)

__all__ = ["VonMisesTanHalfLogp", "local_vonmises_tan_half_fuse", "vonmises_tan_half_logp"]


class VonMisesTanHalfLogp(ScalarOp):
    r""":math:`\log p(y \mid \mu_0 + 2\arctan\eta, k)`, inputs ``(y, mu0, eta, k)``.

    With :math:`h = (y - \mu_0)/2`, :math:`u = \sin h - \eta\cos h`,
    :math:`v = \cos h + \eta\sin h`, :math:`w = 1 + \eta^2`: :math:`\sin^2\frac{d}{2} =
    u^2/w` and :math:`\sin d = 2uv/w` for :math:`d = y - \mu_0 - 2\arctan\eta` (the tangent
    subtraction identity, see :mod:`vm_ppl.tan_half`). NaN (value and gradient) for a
    negative, NaN or infinite ``k``, as :func:`vm_ppl.tan_half_log_prob`.
    """

    nin = 4

    def impl(self, y, mu0, eta, k):
        y, mu0, eta, k = (float(v) for v in (y, mu0, eta, k))
        eta = min(max(eta, -1e150), 1e150)  # 2 atan(eta) is +-pi to double precision
        h = 0.5 * (y - mu0)
        s, c = math.sin(h), math.cos(h)
        u = s - eta * c
        return -2.0 * k * (u * u / (1.0 + eta * eta)) - _kernels.log_normaliser(k)

    def L_op(self, inputs, outputs, output_grads):
        (out,) = outputs
        (gz,) = output_grads
        y, mu0, eta, k = (ps.cast(i, out.type.dtype) for i in inputs)
        h = 0.5 * (y - mu0)
        s, c = ps.sin(h), ps.cos(h)
        u = s - eta * c
        v = c + eta * s
        q = 1.0 / (1.0 + eta * eta)
        sc = u * v * q  # sin(d/2) cos(d/2)
        s2 = u * u * q  # sin^2(d/2)
        bad = ps.or_(ps.invert(ps.ge(k, 0)), ps.isinf(k))
        gz = ps.switch(bad, ps.constant(np.nan, dtype=gz.type.dtype), gz)
        dy = gz * (-2.0 * k * sc)
        deta = -2.0 * q * dy  # dd/deta = -2 / (1 + eta^2)
        dk = gz * (one_minus_bessel_ratio_scalar(k) - 2.0 * s2)
        return [dy, -dy, deta, dk]


vonmises_tan_half_logp_scalar = VonMisesTanHalfLogp(upgrade_to_float, name="vonmises_tan_half_logp")
_vonmises_tan_half_logp = Elemwise(vonmises_tan_half_logp_scalar, name="VonMisesTanHalfLogp")


def vonmises_tan_half_logp(y, mu0, eta, kappa) -> pt.TensorVariable:
    r"""Elementwise :math:`\log p(y \mid \mu_0 + 2\arctan\eta, \kappa)`, symbolic."""
    return _vonmises_tan_half_logp(y, mu0, eta, kappa)


def _arctan_input(var):
    """``e`` if ``var`` is ``arctan(e)`` (an Elemwise), else ``None``."""
    node = var.owner
    if (
        node is not None
        and isinstance(node.op, Elemwise)
        and isinstance(node.op.scalar_op, ps.ArcTan)
    ):
        return node.inputs[0]
    return None


@node_rewriter([Elemwise])
def local_vonmises_tan_half_fuse(fgraph, node):
    r"""``vonmises_logp(y, mu0 + 2 arctan(eta), k)`` -> ``vonmises_tan_half_logp(y, mu0, eta, k)``.

    Matches our :class:`~.ops.VonMisesLogp` whose ``mu`` is a two-input ``add`` of
    anything (``mu0``) and ``2 * arctan(eta)`` (either order of both products), i.e. the
    graph :func:`vm_ppl.pymc.circular_regression_model` builds. Graphs without
    ``vonmises_logp`` are never touched. The ``arctan`` node is left to the other clients
    it may have (e.g. a recorded ``mu``); when the density was its only client it is
    removed from the graph.
    """
    if node.op.scalar_op is not vonmises_logp_scalar:
        return None
    y, mu, k = node.inputs
    add = _elemwise_inputs(mu, ps.Add)
    if add is None:
        return None
    for i in (0, 1):
        twice = _elemwise_inputs(add[1 - i], ps.Mul)
        arctan = None if twice is None else _split_constant(twice, 2.0)
        eta = None if arctan is None else _arctan_input(arctan)
        if eta is not None:
            mu0 = add[i]
            break
    else:
        return None
    (out,) = node.outputs
    new = pt.cast(_vonmises_tan_half_logp(y, mu0, eta, k), out.type.dtype)
    if new.type.broadcastable != out.type.broadcastable:
        new = pt.specify_broadcastable(new, *[i for i, b in enumerate(out.type.broadcastable) if b])
    return [new]


# JAX only (the C and Numba graphs expand vonmises_logp instead, see the module docstring):
# the "jax" tag is included by PyTensor's JAX mode and by no other mode. Before
# canonicalisation, which could merge the add into a larger one.
optdb.register(
    "vonmises_tan_half_fuse_jax",
    in2out(local_vonmises_tan_half_fuse, name="vonmises_tan_half_fuse_jax"),
    "jax",
    position=0.627,
)
