r"""Graph rewrites of the von Mises ops, and their registration in PyTensor's ``optdb``.

C and Numba (speed, ``vm_ppl.bench.pymc_perf``):

* :func:`local_vonmises_split_normaliser` expands ``vonmises_logp`` into standard
  elementwise ops plus a normaliser evaluated once per ``k``, written like the gradient,
  so that the density and its gradients fuse into one loop with a single ``tan`` per
  angle (:func:`.ops.half_angle_terms`);
* :func:`local_tan_half_angle_atan_link` removes the per-observation ``arctan`` of a
  tan-half regression link (the tangent subtraction formula);
* :class:`MergeModuloSpecifyShape` keeps PyMC's ``SpecifyShape`` from splitting that loop.

JAX graphs keep the single op (the core :func:`vm_ppl.log_prob`); there a tan-half link is
fused with the density instead (:func:`local_vonmises_tan_half_fuse`, the core
:func:`vm_ppl.tan_half_log_prob`). PyTorch graphs get every ``Elemwise`` of a vm_ppl op
as a :class:`.ops.VonMisesElemwise` (:func:`local_vonmises_elemwise`), which the PyTorch
registration (:mod:`.pytorch`) converts without a per-element ``vmap``, and their sums and
products of three or more terms as chains of binary ones (:func:`local_binary_add_mul`).

Every registration is wrapped in :class:`OnlyWithVmPplOps`, which returns at once on a
graph without a vm_ppl op: ``import vm_ppl.pymc`` leaves every other model's compiled
graph as it was (``tests/test_pymc.py::test_pm_vonmises_graph_unchanged_by_import``).
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.features import ReplaceValidate
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import GraphRewriter, MergeOptimizer, in2out, node_rewriter
from pytensor.graph.utils import InconsistencyError
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.shape import SpecifyShape

from .ops import (
    KernelScalarOp,
    VonMisesElemwise,
    _vonmises_log_normaliser,
    half_angle_terms,
    half_sin_cos_scalar,
    half_sin_sq_scalar,
    split_logp,
    tan_half_sin_cos_scalar,
    tan_half_sin_sq_scalar,
    vonmises_logp_scalar,
    vonmises_tan_half_logp_scalar,
)

__all__ = [
    "MergeModuloSpecifyShape",
    "OnlyWithVmPplOps",
    "expand_logp",
    "has_vm_ppl_op",
    "local_binary_add_mul",
    "local_tan_half_angle_atan_link",
    "local_vonmises_elemwise",
    "local_vonmises_split_normaliser",
    "local_vonmises_tan_half_fuse",
]


def has_vm_ppl_op(fgraph: FunctionGraph) -> bool:
    """Whether ``fgraph`` has an ``Elemwise`` of a vm_ppl op (:class:`.ops.KernelScalarOp`)."""
    return any(
        isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, KernelScalarOp)
        for node in fgraph.apply_nodes
    )


class OnlyWithVmPplOps(GraphRewriter):
    """Run ``rewriter`` on graphs that contain a vm_ppl op (:func:`has_vm_ppl_op`) only.

    On any other graph it returns at once, before the wrapped rewriter attaches features
    or looks at a node. (The C/Numba graphs keep a vm_ppl op through all three rewrites:
    the expanded density's per-``k`` normaliser, and ``1 - A`` in its ``k``-gradient.)
    """

    def __init__(self, rewriter: GraphRewriter):
        self.rewriter = rewriter

    def apply(self, fgraph):
        if not has_vm_ppl_op(fgraph):
            return None
        self.rewriter.add_requirements(fgraph)
        return self.rewriter.apply(fgraph)

    def __str__(self) -> str:
        return f"OnlyWithVmPplOps({self.rewriter})"


def expand_logp(x, mu, k, dtype: str) -> pt.TensorVariable:
    r""":math:`-2k\sin^2\frac{x-\mu}{2} - \log(2\pi\,\mathrm{i0e}(k))` in ``dtype``, with the
    normaliser on ``k``'s own shape (:func:`local_vonmises_split_normaliser`)."""
    # In the output's precision (a Python-float kappa is a float32 constant, say).
    x, mu, k = (pt.cast(i, dtype) for i in (x, mu, k))
    return pt.cast(split_logp(x, mu, k, _vonmises_log_normaliser, pt), dtype)


def _same_broadcastable(new, out):
    if new.type.broadcastable != out.type.broadcastable:
        new = pt.specify_broadcastable(new, *[i for i, b in enumerate(out.type.broadcastable) if b])
    return new


@node_rewriter([Elemwise])
def local_vonmises_split_normaliser(fgraph, node):
    r"""``vonmises_logp(x, mu, k)`` -> standard elementwise ops minus a per-``k`` normaliser.

    :math:`-2k\sin^2\frac{x-\mu}{2} - \log(2\pi\,\mathrm{i0e}(k))`, with the normaliser
    (the only non-standard part, :class:`.ops.VonMisesLogNormaliser`, NaN for an invalid ``k``)
    evaluated on ``k``'s own shape: a scalar ``k`` and :math:`n` angles cost one Chebyshev
    series instead of :math:`n`. The per-angle part is plain ``tan``/``mul``/``add``/``sub``
    (:func:`.ops.half_angle_terms`); the gradients' terms ``half_sin_sq(x, mu)`` and
    ``half_sin_cos(x, mu)`` (:meth:`.ops.VonMisesLogp.L_op`) are expanded the same way, so
    that PyTensor merges the shared ``tan(d/2)`` and fuses density and gradients into a
    single loop, as for ``pm.VonMises``.

    Registered for the C and Numba backends only (in the ``optdb`` right after the first
    merges, before canonicalisation), so JAX graphs keep calling the core
    :func:`vm_ppl.log_prob` (and :func:`vm_ppl.density.half_angle_terms`).
    """
    scalar_op = node.op.scalar_op
    (out,) = node.outputs
    dtype = out.type.dtype
    if scalar_op is vonmises_logp_scalar:
        new = expand_logp(*node.inputs, dtype=dtype)
    elif scalar_op is half_sin_sq_scalar or scalar_op is half_sin_cos_scalar:
        x, mu = (pt.cast(i, dtype) for i in node.inputs)
        new = pt.cast(half_angle_terms(x, mu, pt)[scalar_op is half_sin_cos_scalar], dtype)
    else:
        return None
    return [_same_broadcastable(new, out)]


def _elemwise_inputs(var, scalar_type) -> list | None:
    """Inputs of ``var``'s owner if it is a two-input Elemwise of ``scalar_type``."""
    node = var.owner
    if (
        node is not None
        and isinstance(node.op, Elemwise)
        and isinstance(node.op.scalar_op, scalar_type)
        and len(node.inputs) == 2
    ):
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
        if (
            arctan is not None
            and arctan.owner is not None
            and isinstance(arctan.owner.op, Elemwise)
            and isinstance(arctan.owner.op.scalar_op, ps.ArcTan)
        ):
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
                    fgraph.replace_all_validate(
                        list(zip(client.outputs, twin.outputs, strict=True)),
                        reason="merge_modulo_specify_shape",
                    )
                    replaced = True
                except (TypeError, InconsistencyError):  # leave the graph as it is
                    continue
        if replaced:
            MergeOptimizer().rewrite(fgraph)


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


# vm_ppl ops of (an angle, mu, ...) -> their tan-half forms of (angle, mu0, eta, ...).
_TAN_HALF_FORMS = {
    vonmises_logp_scalar: vonmises_tan_half_logp_scalar,
    half_sin_sq_scalar: tan_half_sin_sq_scalar,
    half_sin_cos_scalar: tan_half_sin_cos_scalar,
}


@node_rewriter([Elemwise])
def local_vonmises_tan_half_fuse(fgraph, node):
    r"""``vonmises_logp(y, mu0 + 2 arctan(eta), k)`` -> ``vonmises_tan_half_logp(y, mu0, eta, k)``.

    Matches our :class:`~.ops.VonMisesLogp` whose ``mu`` is a two-input ``add`` of
    anything (``mu0``) and ``2 * arctan(eta)`` (either order of both products), i.e. the
    graph :func:`vm_ppl.pymc.circular_regression_model` builds, and likewise the terms of
    its symbolic gradient, ``half_sin_sq``/``half_sin_cos(y, mu)`` ->
    ``tan_half_sin_sq``/``tan_half_sin_cos(y, mu0, eta)``: density and gradient then run
    the same core computation, which XLA evaluates once. Graphs without these ops are
    never touched. The ``arctan`` node is left to the other clients it may have (e.g. a
    recorded ``mu``); when these ops were its only clients it is removed from the graph.
    """
    fused = _TAN_HALF_FORMS.get(node.op.scalar_op)
    if fused is None:
        return None
    y, mu, *rest = node.inputs
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
    op = VonMisesElemwise(fused, name=type(fused).__name__)
    new = pt.cast(op(y, mu0, eta, *rest), out.type.dtype)
    return [_same_broadcastable(new, out)]


@node_rewriter([Elemwise])
def local_binary_add_mul(fgraph, node):
    r"""An ``Elemwise`` ``Add``/``Mul`` of three or more inputs -> a chain of binary ones.

    For PyTorch: PyTensor's PyTorch backend lowers a variadic ``Add``/``Mul`` as
    ``torch.sum``/``torch.prod`` of ``torch.stack(torch.broadcast_tensors(...))``, which
    writes every broadcast scalar (``2``, ``k``, a NaN mask) out as a full-length array
    before the product; a gradient graph (``-2 k sin(d/2) cos(d/2)``) has several such
    products. Binary ``mul``/``add`` broadcast without copies and ``torch.compile`` fuses
    them into the loop over the angles: logp + dlogp went from 0.80x to 0.61x
    ``pm.VonMises`` (``python -m vm_ppl.bench.pymc_perf``, BENCHMARKS.md). Inputs with
    fewer non-broadcast dimensions are combined first, so scalars meet scalars. Registered
    after elementwise fusion (C and Numba graphs then hold ``Composite`` loops instead),
    on graphs with a vm_ppl op only (:class:`OnlyWithVmPplOps`), like every rewrite here.
    """
    if type(node.op) is not Elemwise or len(node.inputs) <= 2:
        return None
    scalar_op = node.op.scalar_op
    if isinstance(scalar_op, ps.Mul):
        binary = pt.mul
    elif isinstance(scalar_op, ps.Add):
        binary = pt.add
    else:
        return None
    (out,) = node.outputs
    inputs = sorted(node.inputs, key=lambda v: sum(not b for b in v.type.broadcastable))
    new = reduce(binary, inputs)
    if new.type.dtype != out.type.dtype or new.type.broadcastable != out.type.broadcastable:
        return None
    return [new]


@node_rewriter([Elemwise])
def local_vonmises_elemwise(fgraph, node):
    r"""A plain ``Elemwise`` of a vm_ppl scalar op -> the same as :class:`.ops.VonMisesElemwise`.

    Gradient graphs wrap scalar ops in plain ``Elemwise`` nodes; PyTensor's PyTorch
    backend would ``torch.vmap`` those element by element, which the Numba-compiled
    kernels (:mod:`.pytorch`) cannot run under. Every other backend computes the same.
    """
    if type(node.op) is not Elemwise or not isinstance(node.op.scalar_op, KernelScalarOp):
        return None
    return VonMisesElemwise(node.op.scalar_op, name=type(node.op.scalar_op).__name__)(
        *node.inputs, return_list=True
    )


def _register(name: str, rewriter: GraphRewriter, *tags: str, position: float) -> None:
    optdb.register(name, OnlyWithVmPplOps(rewriter), *tags, position=position)


# Positions 0.62-0.627: after ``merge1``/``useless``, before ``merge1.1`` and
# canonicalisation (which could merge the link's add into a larger one). Two rewriter
# objects for C and Numba: a DB drops an object from a query as soon as one of its tags
# is excluded, and NUMBA excludes ``cxx_only`` (one object tagged for both never ran there).
_register(
    "vonmises_expand_c",
    in2out(local_vonmises_split_normaliser, name="vonmises_expand_c"),
    "fast_run",
    "cxx_only",
    position=0.62,
)
_register(
    "vonmises_expand_numba",
    in2out(local_vonmises_split_normaliser, name="vonmises_expand_numba"),
    "numba",
    position=0.621,
)
_register(
    "vonmises_tan_half_link_c",
    in2out(local_tan_half_angle_atan_link, name="vonmises_tan_half_link_c"),
    "fast_run",
    "cxx_only",
    position=0.625,
)
_register(
    "vonmises_tan_half_link_numba",
    in2out(local_tan_half_angle_atan_link, name="vonmises_tan_half_link_numba"),
    "numba",
    position=0.626,
)
# JAX only: the "jax" tag is included by PyTensor's JAX mode and by no other mode.
_register(
    "vonmises_tan_half_fuse_jax",
    in2out(local_vonmises_tan_half_fuse, name="vonmises_tan_half_fuse_jax"),
    "jax",
    position=0.627,
)
# Every mode (PYTORCH has no tag of its own); after the gradient graph exists.
_register(
    "vonmises_elemwise",
    in2out(local_vonmises_elemwise, name="vonmises_elemwise"),
    "fast_run",
    "fast_compile",
    position=0.628,
)
# Just before elementwise fusion (position 49).
_register(
    "vonmises_merge_modulo_specify_shape", MergeModuloSpecifyShape(), "fast_run", position=48.5
)
# After it and after `add_mul_fusion` (48), which makes the variadic nodes; before the
# destroy handler (49.5) and the inplace rewrites. For the modes without fusion (PyTorch, JAX).
_register(
    "vonmises_binary_add_mul",
    in2out(local_binary_add_mul, name="vonmises_binary_add_mul"),
    "fast_run",
    position=49.4,
)
