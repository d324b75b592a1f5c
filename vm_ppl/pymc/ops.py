r"""PyTensor scalar ops for the von Mises log-density and its derivatives.

Three :class:`~pytensor.scalar.basic.ScalarOp`\ s, each wrapped in an
:class:`~pytensor.tensor.elemwise.Elemwise` so that PyTensor fuses them with the
surrounding arithmetic:

=========================  ======================================================
``vonmises_logp(x, mu, k)``  :math:`-2k\sin^2\frac{x-\mu}{2} - \log 2\pi - \log\mathrm{i0e}(k)`
``one_minus_bessel_ratio``   :math:`1 - A(k)`, :math:`A = I_1/I_0` (the d/dk of the normaliser)
``bessel_ratio_derivative``  :math:`A'(k) = 1 - A/k - A^2`
``vonmises_cdf(x, mu, k)``   :math:`F(x)` (Hill 1977; SciPy's convention, :math:`F(\mu) = 1/2`)
``vonmises_icdf(q, mu, k)``  :math:`F^{-1}(q)` on :math:`[\mu - \pi, \mu + \pi]`
=========================  ======================================================

Every op has a Python ``impl`` and C code (both from :mod:`._kernels`), a symbolic
gradient built from ops that exist on every backend (these ops, ``tan``, ``switch``,
arithmetic), and registrations for JAX (the :mod:`vm_ppl` core kernels, see
:mod:`.dispatch_jax`) and Numba (native ``njit`` kernels, see :mod:`.dispatch_numba`).

Performance (C and Numba backends): :func:`local_vonmises_split_normaliser` expands
``vonmises_logp`` into standard elementwise ops plus a normaliser evaluated once per
``k``, written like the gradient, so that the density and its gradients fuse into one
loop with a single ``tan`` per angle (:func:`_half_angle_terms`);
:class:`MergeModuloSpecifyShape` keeps PyMC's ``SpecifyShape`` from splitting that loop;
for a tan-half regression link, :func:`local_tan_half_angle_atan_link` removes the
per-observation ``arctan`` (the tangent subtraction formula).
JAX graphs keep the single op (the core :func:`vm_ppl.log_prob`); there a tan-half
link is fused with the density instead (:mod:`.tan_half`, the core
:func:`vm_ppl.tan_half_log_prob`).

Gradients (Mardia & Jupp 2000, sec. 3.5): with :math:`d = x - \mu`,
:math:`\partial_x = -k\sin d = -\partial_\mu` and
:math:`\partial_k = (1 - A(k)) - 2\sin^2(d/2)`, written so that nothing cancels near
the mode at large :math:`k`.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.gradient import grad_not_implemented
from pytensor.graph.features import ReplaceValidate
from pytensor.graph.rewriting.basic import GraphRewriter, MergeOptimizer, in2out, node_rewriter
from pytensor.graph.utils import InconsistencyError
from pytensor.scalar.basic import ScalarOp, UnaryScalarOp, float_types, upgrade_to_float
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.shape import SpecifyShape

from . import _kernels

__all__ = [
    "BesselRatioDerivative",
    "VonMisesCDF",
    "VonMisesElemwise",
    "VonMisesICDF",
    "OneMinusBesselRatio",
    "VonMisesLogNormaliser",
    "VonMisesLogp",
    "bessel_ratio_derivative",
    "one_minus_bessel_ratio",
    "vonmises_cdf",
    "vonmises_icdf",
    "vonmises_logp",
]

# Derived from the C source, so that an edit of the kernels can never reuse a stale
# compiled module from PyTensor's cache.
_C_VERSION = (3, zlib.crc32(_kernels.C_SUPPORT_CODE.encode()))


def _check_float(node) -> str:
    if any(i.type not in float_types for i in node.inputs) or (
        node.outputs[0].type not in float_types
    ):
        raise NotImplementedError("von Mises ops are implemented for float inputs only")
    return "npy_" + node.outputs[0].dtype


class _KernelOp:
    """``impl`` and C code of a scalar op from one kernel of :mod:`._kernels`: the Python
    function ``_kernels.<kernel>`` and the C function ``vm_ppl_<kernel>`` of its support
    code (both in double precision; the result is cast to the output dtype)."""

    kernel: str

    def impl(self, *inputs):
        return getattr(_kernels, self.kernel)(*(float(v) for v in inputs))

    def c_support_code(self, **kwargs) -> str:
        return _kernels.C_SUPPORT_CODE

    def c_code(self, node, name, inputs, outputs, sub) -> str:
        dtype = _check_float(node)
        (z,) = outputs
        args = ", ".join(f"(double) {v}" for v in inputs)
        return f"{z} = ({dtype}) vm_ppl_{self.kernel}({args});"

    def c_code_cache_version(self):
        return _C_VERSION


class OneMinusBesselRatio(_KernelOp, UnaryScalarOp):
    r""":math:`1 - I_1(k)/I_0(k)`, stable for all :math:`k` (asymptotic series above 20)."""

    kernel = "one_minus_ratio"

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        return [-gz * bessel_ratio_derivative_scalar(k)]


class BesselRatioDerivative(_KernelOp, UnaryScalarOp):
    r""":math:`A'(k) = 1 - A(k)/k - A(k)^2`, even, :math:`\sim 1/(2k^2)` at large :math:`k`.

    Its gradient, :math:`A'' = -A'/k + A/k^2 - 2AA'`, is a plain graph (used only for
    third derivatives of the log-density; it cancels at large :math:`k`).
    """

    kernel = "ratio_derivative"

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        (d1,) = outputs
        a = 1.0 - one_minus_bessel_ratio_scalar(k)
        safe = ps.switch(ps.eq(k, 0), 1.0, k)
        d2 = ps.switch(ps.eq(k, 0), 0.0, -d1 / safe + a / (safe * safe) - 2.0 * a * d1)
        return [gz * d2]


class VonMisesLogp(_KernelOp, ScalarOp):
    r"""Von Mises log-density :math:`\log p(x \mid \mu, k)`, periodic in ``x`` and ``mu``.

    NaN (value and gradient) for a negative, NaN or infinite ``k``, as
    :func:`vm_ppl.log_prob`; the PyMC distribution adds ``check_parameters`` on top.
    """

    kernel = "logp"

    nin = 3

    def L_op(self, inputs, outputs, output_grads):
        (out,) = outputs
        (gz,) = output_grads
        # In the output's precision, as the density (a Python-float k is a float32 constant).
        x, mu, k = (ps.cast(i, out.type.dtype) for i in inputs)
        # The same graph as the density's expansion (:func:`local_vonmises_split_normaliser`),
        # so that after merging density and gradients share one ``tan(d/2)`` and fuse into
        # one loop over the angles: ``sin^2(d/2) = t^2/(1+t^2)`` and
        # ``sin(d)/2 = t/(1+t^2)`` with ``t = tan(d/2)`` (one transcendental call per angle,
        # where ``sin(d/2)`` and ``sin(d)`` would take two).
        s2, sc = _half_angle_terms(x, mu, ps)
        # NaN gradients where the density is NaN (invalid k), never a plausible number.
        # (A test on k, not isnan(out): that would evaluate the density again.)
        bad = ps.or_(ps.invert(ps.ge(k, 0)), ps.isinf(k))
        gz = ps.switch(bad, ps.constant(np.nan, dtype=gz.type.dtype), gz)
        dx = gz * (-2.0 * k * sc)
        dk = gz * (one_minus_bessel_ratio_scalar(k) - 2.0 * s2)
        return [dx, -dx, dk]


class VonMisesLogNormaliser(_KernelOp, UnaryScalarOp):
    r""":math:`\log(2\pi\,\mathrm{i0e}(k))`, NaN for an invalid ``k``.

    Used by :func:`local_vonmises_split_normaliser` (C and Numba graphs): when ``k`` is
    broadcast against the angles the normaliser is computed once per ``k``, not per angle.
    """

    kernel = "log_normaliser"

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        return [-gz * one_minus_bessel_ratio_scalar(k)]


class VonMisesCDF(_KernelOp, ScalarOp):
    r"""Von Mises cdf :math:`F(x \mid \mu, k)`, a scalar transcription of :func:`vm_ppl.cdf`.

    Gradients: :math:`\partial_x F = p = -\partial_\mu F`; the :math:`k`-gradient is not
    implemented (the JAX backend, which runs :func:`vm_ppl.cdf` itself, has it).
    """

    kernel = "cdf"

    nin = 3

    def L_op(self, inputs, outputs, output_grads):
        x, mu, k = inputs
        (gz,) = output_grads
        pdf = ps.exp(vonmises_logp_scalar(x, mu, k))
        return [gz * pdf, -gz * pdf, grad_not_implemented(self, 2, k)]


class VonMisesICDF(_KernelOp, ScalarOp):
    r"""Von Mises quantile :math:`F^{-1}(q \mid \mu, k)`, as :func:`vm_ppl.icdf`.

    Gradients (implicit function theorem): :math:`\partial_q x = 1/p(x)`,
    :math:`\partial_\mu x = 1`; the :math:`k`-gradient is not implemented.
    """

    kernel = "icdf"

    nin = 3

    def L_op(self, inputs, outputs, output_grads):
        q, mu, k = inputs
        (out,) = outputs
        (gz,) = output_grads
        pdf = ps.exp(vonmises_logp_scalar(out, mu, k))
        return [gz / pdf, gz, grad_not_implemented(self, 2, k)]


one_minus_bessel_ratio_scalar = OneMinusBesselRatio(upgrade_to_float, name="one_minus_bessel_ratio")
bessel_ratio_derivative_scalar = BesselRatioDerivative(
    upgrade_to_float, name="bessel_ratio_derivative"
)
vonmises_logp_scalar = VonMisesLogp(upgrade_to_float, name="vonmises_logp")
vonmises_log_normaliser_scalar = VonMisesLogNormaliser(
    upgrade_to_float, name="vonmises_log_normaliser"
)
vonmises_cdf_scalar = VonMisesCDF(upgrade_to_float, name="vonmises_cdf")
vonmises_icdf_scalar = VonMisesICDF(upgrade_to_float, name="vonmises_icdf")



class VonMisesElemwise(Elemwise):
    """``Elemwise`` of one of the ops above, as a type of its own for the PyTorch backend.

    PyTensor's PyTorch conversion of a plain ``Elemwise`` broadcasts every input to the
    output shape and ``torch.vmap``-s the scalar function, so that the density would
    evaluate the Bessel normaliser once per angle. This type is converted to one call of
    the (broadcasting) torch kernel instead (:mod:`.dispatch_pytorch`), with ``k`` in its
    own shape. Every other backend treats it as the ``Elemwise`` it is.
    """


_one_minus_bessel_ratio = VonMisesElemwise(one_minus_bessel_ratio_scalar,
                                           name="OneMinusBesselRatio")
_bessel_ratio_derivative = VonMisesElemwise(bessel_ratio_derivative_scalar,
                                            name="BesselRatioDerivative")
_vonmises_logp = VonMisesElemwise(vonmises_logp_scalar, name="VonMisesLogp")
_vonmises_log_normaliser = VonMisesElemwise(vonmises_log_normaliser_scalar,
                                            name="VonMisesLogNormaliser")
_vonmises_cdf = VonMisesElemwise(vonmises_cdf_scalar, name="VonMisesCDF")
_vonmises_icdf = VonMisesElemwise(vonmises_icdf_scalar, name="VonMisesICDF")


def one_minus_bessel_ratio(k) -> pt.TensorVariable:
    r"""Elementwise :math:`1 - A(k)` (circular variance of a von Mises), symbolic."""
    return _one_minus_bessel_ratio(k)


def bessel_ratio_derivative(k) -> pt.TensorVariable:
    r"""Elementwise :math:`A'(k)`, symbolic."""
    return _bessel_ratio_derivative(k)


def vonmises_logp(x, mu, kappa) -> pt.TensorVariable:
    r"""Elementwise von Mises log-density (broadcasting), symbolic.

    Parameters
    ----------
    x, mu, kappa : tensor_like
        Angles (any window), mean direction, concentration :math:`\kappa \ge 0`.

    Returns
    -------
    TensorVariable
        :math:`-2\kappa\sin^2\frac{x-\mu}{2} - \log 2\pi - \log\mathrm{i0e}(\kappa)`.
    """
    return _vonmises_logp(x, mu, kappa)


def vonmises_cdf(x, mu, kappa) -> pt.TensorVariable:
    r"""Elementwise von Mises cdf (:func:`vm_ppl.cdf`'s convention), symbolic."""
    return _vonmises_cdf(x, mu, kappa)


def vonmises_icdf(q, mu, kappa) -> pt.TensorVariable:
    r"""Elementwise von Mises quantile function (:func:`vm_ppl.icdf`), symbolic."""
    return _vonmises_icdf(q, mu, kappa)


LOG_2PI = math.log(2 * math.pi)


def _half_angle_terms(x, mu, module):
    r"""``sin^2(d/2)`` and ``sin(d)/2`` (``d = x - mu``) from one ``t = tan(d/2)``.

    :math:`\sin^2(d/2) = t^2/(1 + t^2)` and :math:`\sin(d/2)\cos(d/2) = t/(1 + t^2)`:
    exact identities with no cancellation anywhere (a few ulps relative, as ``sin`` and
    ``sin * cos``; near the mode :math:`t \approx d/2`; at :math:`d = \pm\pi` ``t`` is
    large but finite, since no float is an odd multiple of :math:`\pi/2`), and one
    transcendental call per angle where ``sin(d/2)`` and ``sin(d)`` take two (``pm.VonMises``
    calls ``cos`` and ``sin``). ``module`` is ``ps`` (scalar graph, in
    :meth:`VonMisesLogp.L_op`) or ``pt`` (tensor graph, in the density's expansion); both
    build the same structure so that PyTensor merges them into one ``tan`` node.
    """
    t = module.tan(0.5 * (x - mu))
    t2 = t * t
    q = 1.0 / (1.0 + t2)
    return t2 * q, t * q


@node_rewriter([Elemwise])
def local_vonmises_split_normaliser(fgraph, node):
    r"""``vonmises_logp(x, mu, k)`` -> standard elementwise ops minus a per-``k`` normaliser.

    :math:`-2k\sin^2\frac{x-\mu}{2} - \log(2\pi\,\mathrm{i0e}(k))`, with the normaliser
    (the only non-standard part, :class:`VonMisesLogNormaliser`, NaN for an invalid ``k``)
    evaluated on ``k``'s own shape: a scalar ``k`` and :math:`n` angles cost one Chebyshev
    series instead of :math:`n`. The per-angle part is plain ``tan``/``mul``/``add``/``sub``
    (:func:`_half_angle_terms`), built like the gradient (:meth:`VonMisesLogp.L_op`), so
    that PyTensor merges the shared ``tan(d/2)`` and fuses density and gradients into a
    single loop, as for ``pm.VonMises``.

    Registered for the C and Numba backends only (in the ``optdb`` right after the first
    merges, before canonicalisation), so JAX graphs keep calling the core
    :func:`vm_ppl.log_prob`.
    """
    if node.op.scalar_op is not vonmises_logp_scalar:
        return None
    (out,) = node.outputs
    # In the output's precision (a Python-float kappa is a float32 constant, say).
    x, mu, k = (pt.cast(i, out.type.dtype) for i in node.inputs)
    s2, _ = _half_angle_terms(x, mu, pt)
    new = -2.0 * k * s2 - _vonmises_log_normaliser(k)
    new = pt.cast(new, out.type.dtype)
    if new.type.broadcastable != out.type.broadcastable:
        new = pt.specify_broadcastable(new, *[i for i, b in enumerate(out.type.broadcastable)
                                             if b])
    return [new]


# Two rewriter objects: a DB drops an object from a query as soon as one of its tags is
# excluded, and NUMBA excludes ``cxx_only`` (so one object tagged for both never ran there).
# Position 0.62: after ``merge1``/``useless``, before ``merge1.1`` and canonicalisation.
optdb.register(
    "vonmises_expand_c",
    in2out(local_vonmises_split_normaliser, name="vonmises_expand_c"),
    "fast_run",
    "cxx_only",
    position=0.62,
)
optdb.register(
    "vonmises_expand_numba",
    in2out(local_vonmises_split_normaliser, name="vonmises_expand_numba"),
    "numba",
    position=0.621,
)


def _elemwise_inputs(var, scalar_type) -> list | None:
    """Inputs of ``var``'s owner if it is a two-input Elemwise of ``scalar_type``."""
    node = var.owner
    if (node is not None and isinstance(node.op, Elemwise)
            and isinstance(node.op.scalar_op, scalar_type) and len(node.inputs) == 2):
        return list(node.inputs)
    return None


def _is_constant(var, value: float) -> bool:
    try:
        # (Looks through ExpandDims of a constant, as the gradient graph has.)
        return float(pt.get_underlying_scalar_constant_value(var, elemwise=False)) == value
    except NotScalarConstantError:
        return False


def _split_constant(inputs: list, value: float):
    """The other input of a two-input op one of whose inputs is the constant ``value``."""
    for i in (0, 1):
        if _is_constant(inputs[i], value):
            return inputs[1 - i]
    return None


@node_rewriter([Elemwise])
def local_tan_half_angle_atan_link(fgraph, node):
    r"""``tan((x - a - 2 arctan e)/2)`` -> ``(T - e) / (1 + e T)`` with ``T = tan((x - a)/2)``.

    The tangent subtraction formula with :math:`\tan(\arctan e) = e`: the per-angle term of
    a von Mises regression with the tan-half link (Fisher & Lee 1992,
    :math:`\mu = a + 2\arctan\eta`, :func:`vm_ppl.pymc.circular_regression_model`) then
    needs one ``tan`` and one division per observation instead of ``tan`` and ``arctan``
    (two libm calls, the cost of the whole fused loop). The gradient needs no ``arctan``
    either (:math:`d\mu/d\eta = 2/(1 + \eta^2)`), so it disappears from the graph.
    Exactness: an identity; near the mode :math:`T - e` loses absolute accuracy
    :math:`\epsilon |e|`, i.e. an error of order :math:`\sqrt{\kappa}\,\epsilon` in the
    log-density. Where ``1 + e T`` rounds to 0 (the antipode, where ``tan`` itself is
    finite) the clip keeps :math:`t^2` finite, so :math:`\sin^2(d/2) = t^2/(1+t^2)` is 1,
    not NaN. The identity holds for any such ``tan``, von Mises or not. Registered for C
    and Numba, next to :func:`local_vonmises_split_normaliser`.
    """
    if not isinstance(node.op.scalar_op, ps.Tan):
        return None
    mul = _elemwise_inputs(node.inputs[0], ps.Mul)
    diff = None if mul is None else _split_constant(mul, 0.5)
    sub = None if diff is None else _elemwise_inputs(diff, ps.Sub)
    add = None if sub is None else _elemwise_inputs(sub[1], ps.Add)
    if add is None:
        return None
    x = sub[0]
    for i in (0, 1):
        a, twice = add[i], _elemwise_inputs(add[1 - i], ps.Mul)
        arctan = None if twice is None else _split_constant(twice, 2.0)
        if (arctan is not None and arctan.owner is not None
                and isinstance(arctan.owner.op, Elemwise)
                and isinstance(arctan.owner.op.scalar_op, ps.ArcTan)):
            (e,) = arctan.owner.inputs
            break
    else:
        return None
    (out,) = node.outputs
    # t**2 stays finite. A typed constant: a Python float would be autocast by trying
    # float32 first, which overflows (RuntimeWarning) for 1e150.
    big = np.dtype(out.type.dtype).type(1e150 if out.type.dtype == "float64" else 1e18)
    t_a = pt.tan(0.5 * (x - a))
    t = pt.clip((t_a - e) / (1.0 + e * t_a), -big, big)
    t = pt.cast(t, out.type.dtype)
    if t.type.broadcastable != out.type.broadcastable:
        t = pt.specify_broadcastable(t, *[i for i, b in enumerate(out.type.broadcastable) if b])
    return [t]


# Tagged as the expansion above (two objects, see there), right after it.
optdb.register("vonmises_tan_half_link_c",
               in2out(local_tan_half_angle_atan_link, name="vonmises_tan_half_link_c"),
               "fast_run", "cxx_only", position=0.625)
optdb.register("vonmises_tan_half_link_numba",
               in2out(local_tan_half_angle_atan_link, name="vonmises_tan_half_link_numba"),
               "numba", position=0.626)


class MergeModuloSpecifyShape(GraphRewriter):
    r"""Merge ``f(..., v, ...)`` into an identical ``f(..., SpecifyShape(v), ...)`` (Elemwise).

    PyMC's ``logp`` ends in ``SpecifyShape``; in the gradient PyTensor lifts it
    (``local_specify_shape_lift``) down one chain of elementwise ops to the observed
    angles, rebuilding that chain on ``SpecifyShape(x)``. The density itself keeps the
    plain ``x``, so density and gradient would evaluate ``tan(d/2)`` on two different
    (equal) inputs and the fused loop would make two transcendental calls per angle
    instead of one. The twin nodes compute the same values, the ``SpecifyShape`` is in the
    graph anyway, and its (more specific) static shape is a valid replacement type; after
    the replacement ordinary merging shares the rest of the chain. Runs just before
    elementwise fusion (``optdb`` position 48.5).
    """

    def add_requirements(self, fgraph):
        fgraph.attach_feature(ReplaceValidate())

    def apply(self, fgraph):
        replaced = False
        for node in fgraph.toposort():
            if not isinstance(node.op, SpecifyShape):
                continue
            v, sv = node.inputs[0], node.outputs[0]
            twins = {}
            for client, _ in fgraph.clients.get(sv, ()):
                if isinstance(client.op, Elemwise):
                    twins.setdefault((client.op, tuple(client.inputs)), client)
            if not twins:
                continue
            for client, _ in list(fgraph.clients.get(v, ())):
                if client not in fgraph.apply_nodes or not isinstance(client.op, Elemwise):
                    continue
                key = (client.op, tuple(sv if i is v else i for i in client.inputs))
                twin = twins.get(key)
                if twin is None or twin is client or twin not in fgraph.apply_nodes:
                    continue
                try:
                    fgraph.replace_all_validate(list(zip(client.outputs, twin.outputs,
                                                         strict=True)),
                                                reason="merge_modulo_specify_shape")
                    replaced = True
                except (TypeError, InconsistencyError):  # leave the graph as it is
                    continue
        if replaced:
            MergeOptimizer().rewrite(fgraph)


optdb.register("vonmises_merge_modulo_specify_shape", MergeModuloSpecifyShape(), "fast_run",
               position=48.5)
