r"""PyTensor scalar ops of the von Mises distribution, and their symbolic wrappers.

=============================  ==================================================
``vonmises_logp(x, mu, k)``    :math:`-2k\sin^2\frac{x-\mu}{2} - \log 2\pi - \log\mathrm{i0e}(k)`
``vonmises_log_normaliser``    :math:`\log(2\pi\,\mathrm{i0e}(k))` (of the expanded density)
``one_minus_bessel_ratio``     :math:`1 - A(k)`, :math:`A = I_1/I_0` (d/dk of the normaliser)
``bessel_ratio_derivative``    :math:`A'(k) = 1 - A/k - A^2`
``vonmises_cdf(x, mu, k)``     :math:`F(x)` (Hill 1977; SciPy's convention, :math:`F(\mu) = 1/2`)
``vonmises_icdf(q, mu, k)``    :math:`F^{-1}(q)` on :math:`[\mu - \pi, \mu + \pi]`
``vonmises_tan_half_logp``     :math:`\log p(y \mid \mu_0 + 2\arctan\eta, k)` (JAX graphs)
``half_sin_sq(x, mu)``         :math:`\sin^2\frac{d}{2}`, :math:`d = x - \mu` (in gradients)
``half_sin_cos(x, mu)``        :math:`\sin\frac{d}{2}\cos\frac{d}{2}` (in gradients)
``tan_half_sin_sq``, ``_cos``  the same for :math:`d = y - \mu_0 - 2\arctan\eta` (JAX graphs)
=============================  ==================================================

Every op is a :class:`KernelScalarOp` that names its two implementations, and that pair
is the one registry of the adapter: ``kernel``, the scalar function of
:mod:`._kernels` from which the Python ``impl``, the C code (below), the Numba and the
PyTorch implementations are all derived (:mod:`.registry`), and ``core``, the
:mod:`vm_ppl` array function that the JAX backend runs. Each op has a symbolic gradient
built from ops that exist on every backend (these ops, ``tan``, ``switch``, arithmetic).
The graph rewrites that make the C and Numba graphs fast are in :mod:`.rewrites`.

C code: the op calls its kernel compiled by Numba to a C function (``numba.cfunc``,
cached on disk), through a pointer fetched once per compiled module from
:func:`.registry.c_address`; so the C backend runs the same source as every other
non-JAX backend and PyTensor's C cache never holds a copy of the math.

Gradients (Mardia & Jupp 2000, sec. 3.5): with :math:`d = x - \mu`,
:math:`\partial_x = -k\sin d = -\partial_\mu` and
:math:`\partial_k = (1 - A(k)) - 2\sin^2(d/2)`, written so that nothing cancels near
the mode at large :math:`k`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.scalar.basic import ScalarOp, float_types, upgrade_to_float
from pytensor.tensor.elemwise import Elemwise

from ..bessel import bessel_ratio_derivative as _core_bessel_ratio_derivative
from ..bessel import one_minus_bessel_ratio as _core_one_minus_bessel_ratio
from ..cdf import cdf as _core_cdf
from ..cdf import icdf as _core_icdf
from ..density import half_angle_terms as _core_half_angle_terms
from ..density import log_prob as _core_log_prob
from ..tan_half import tan_half_log_prob as _core_tan_half_log_prob
from ..tan_half import tan_half_terms as _core_tan_half_terms
from . import _kernels

__all__ = [
    "BesselRatioDerivative",
    "KernelScalarOp",
    "OneMinusBesselRatio",
    "VonMisesCDF",
    "VonMisesElemwise",
    "VonMisesHalfSinCos",
    "VonMisesHalfSinSq",
    "VonMisesICDF",
    "VonMisesLogNormaliser",
    "VonMisesLogp",
    "VonMisesTanHalfLogp",
    "VonMisesTanHalfSinCos",
    "VonMisesTanHalfSinSq",
    "bessel_ratio_derivative",
    "half_angle_terms",
    "one_minus_bessel_ratio",
    "split_logp",
    "vonmises_cdf",
    "vonmises_icdf",
    "vonmises_log_normaliser",
    "vonmises_logp",
    "vonmises_tan_half_logp",
]


def _core_log_normaliser(k):
    return -_core_log_prob(0.0, 0.0, k)


class KernelScalarOp(ScalarOp):
    """A scalar op whose implementations all come from ``kernel`` (a function of
    :mod:`._kernels`, in double precision; results are cast to the output dtype), except
    the JAX one, ``core`` (a :mod:`vm_ppl` array function)."""

    kernel: Callable[..., float]
    core: Callable

    def impl(self, *inputs):
        return self.kernel(*(float(v) for v in inputs))

    def c_code(self, node, name, inputs, outputs, sub) -> str:
        if any(i.type not in float_types for i in node.inputs) or (
            node.outputs[0].type not in float_types
        ):
            raise NotImplementedError("von Mises ops are implemented for float inputs only")
        (z,) = outputs
        signature = ", ".join(["double"] * len(inputs))
        args = ", ".join(f"(double) {v}" for v in inputs)
        fail = sub["fail"]
        # The kernel's address is fetched from Python once per compiled module (PyTensor
        # runs C thunks holding the GIL; PyGILState_Ensure makes that explicit). Inline,
        # not in support code: a CAReduce fused with this op (``sum(op(x))``) compiles the
        # scalar code without its scalar ops' support code. On failure the Python error
        # stays set and the code jumps to PyTensor's failure label.
        return f"""{{
    static double (*kernel)({signature}) = NULL;
    if (kernel == NULL) {{
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject *module = PyImport_ImportModule("vm_ppl.pymc.registry");
        if (module != NULL) {{
            PyObject *value = PyObject_CallMethod(
                module, "c_address", "s", "{self.kernel.__name__}");
            if (value != NULL) {{
                kernel = (double (*)({signature})) PyLong_AsVoidPtr(value);
                Py_DECREF(value);
            }}
            Py_DECREF(module);
        }}
        PyGILState_Release(gil);
        if (kernel == NULL) {{ {fail} }}
    }}
    {z} = (npy_{node.outputs[0].dtype}) kernel({args});
}}"""

    def c_code_cache_version(self):
        return (5,)


class OneMinusBesselRatio(KernelScalarOp):
    r""":math:`1 - I_1(k)/I_0(k)`, stable for all :math:`k` (asymptotic series above 20)."""

    nin = 1
    kernel = staticmethod(_kernels.one_minus_ratio)
    core = staticmethod(_core_one_minus_bessel_ratio)

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        return [-gz * bessel_ratio_derivative_scalar(k)]


class BesselRatioDerivative(KernelScalarOp):
    r""":math:`A'(k) = 1 - A(k)/k - A(k)^2`, even, :math:`\sim 1/(2k^2)` at large :math:`k`.

    Its gradient :math:`A''` (used only for third derivatives of the log-density) is a
    plain graph in three pieces, each free of cancellation where it is used: the Taylor
    series :math:`-3k/8 + 5k^3/24 - 77k^5/1024` below :math:`k = 0.01` (relative error
    6e-14 there), :math:`-A'/k + A/k^2 - 2AA'` up to 20, and above 20 the derivative of
    the core's asymptotic series of :math:`A'`, :math:`-\sum_m m(m+1)c_m k^{-(m+2)}`.
    """

    nin = 1
    kernel = staticmethod(_kernels.ratio_derivative)
    core = staticmethod(_core_bessel_ratio_derivative)

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        (d1,) = outputs
        a = 1.0 - one_minus_bessel_ratio_scalar(k)
        small = ps.lt(abs(k), 0.01)
        big = ps.gt(k, _kernels.ASYMPTOTIC_THRESHOLD)
        safe = ps.switch(small, 1.0, k)
        middle = -d1 / safe + a / (safe * safe) - 2.0 * a * d1
        k2 = k * k
        taylor = k * (-0.375 + k2 * (5.0 / 24.0 - k2 * (77.0 / 1024.0)))
        t = 1.0 / ps.switch(big, k, _kernels.ASYMPTOTIC_THRESHOLD)
        acc = 0.0
        for m in range(len(_kernels.OMB_SERIES), 0, -1):
            acc = (acc + m * (m + 1) * _kernels.OMB_SERIES[m - 1]) * t
        d2 = ps.switch(small, taylor, ps.switch(big, -acc * t * t, middle))
        return [gz * d2]


def half_angle_terms(x, mu, module):
    r"""``sin^2(d/2)`` and ``sin(d)/2`` (``d = x - mu``) from one ``t = tan(d/2)``.

    :math:`\sin^2(d/2) = t^2/(1 + t^2)` and :math:`\sin(d/2)\cos(d/2) = t/(1 + t^2)`:
    exact identities with no cancellation anywhere (a few ulps relative, as ``sin`` and
    ``sin * cos``; near the mode :math:`t \approx d/2`; at :math:`d = \pm\pi` ``t`` is
    large but finite, since no float is an odd multiple of :math:`\pi/2`), and one
    transcendental call per angle where ``sin(d/2)`` and ``sin(d)`` take two (``pm.VonMises``
    calls ``cos`` and ``sin``). ``module`` is ``pt`` (the C and Numba expansion of the
    density and of :class:`VonMisesHalfSinSq`/:class:`VonMisesHalfSinCos`, its gradients'
    terms, :mod:`.rewrites`; both build the same structure, so that PyTensor merges them
    into one ``tan`` node) or ``torch`` (:mod:`.pytorch`).
    """
    t = module.tan(0.5 * (x - mu))
    t2 = t * t
    q = 1.0 / (1.0 + t2)
    return t2 * q, t * q


def split_logp(x, mu, k, log_normaliser, module):
    r""":math:`-2k\sin^2\frac{x-\mu}{2} - \mathrm{log\_normaliser}(k)`: the density with
    its normaliser evaluated on ``k``'s own shape, in ``module``'s ops (``pt``: the C and
    Numba expansion, :func:`.rewrites.expand_logp`; ``torch``: :mod:`.pytorch`)."""
    s2, _ = half_angle_terms(x, mu, module)
    return -2.0 * k * s2 - log_normaliser(k)


def _nan_if_invalid_k(k, gz):
    # NaN gradients where the density is NaN (invalid k), never a plausible number.
    # (A test on k, not isnan(out): that would evaluate the density again.)
    bad = ps.or_(ps.invert(ps.ge(k, 0)), ps.isinf(k))
    return ps.switch(bad, ps.constant(np.nan, dtype=gz.type.dtype), gz)


class VonMisesLogp(KernelScalarOp):
    r"""Von Mises log-density :math:`\log p(x \mid \mu, k)`, periodic in ``x`` and ``mu``.

    NaN (value and gradient) for a negative, NaN or infinite ``k``, as
    :func:`vm_ppl.log_prob`; the PyMC distribution adds ``check_parameters`` on top.
    """

    nin = 3
    kernel = staticmethod(_kernels.logp)
    core = staticmethod(_core_log_prob)

    def L_op(self, inputs, outputs, output_grads):
        (out,) = outputs
        (gz,) = output_grads
        # In the output's precision, as the density (a Python-float k is a float32 constant).
        x, mu, k = (ps.cast(i, out.type.dtype) for i in inputs)
        # Ops of their own: C and Numba expand them like the density (one shared
        # ``tan(d/2)``, one loop over the angles; rewrites.local_vonmises_split_normaliser),
        # JAX runs the core's terms, which XLA shares with the density's kernel.
        s2 = half_sin_sq_scalar(x, mu)
        sc = half_sin_cos_scalar(x, mu)
        gz = _nan_if_invalid_k(k, gz)
        dx = gz * (-2.0 * k * sc)
        dk = gz * (one_minus_bessel_ratio_scalar(k) - 2.0 * s2)
        return [dx, -dx, dk]


class VonMisesLogNormaliser(KernelScalarOp):
    r""":math:`\log(2\pi\,\mathrm{i0e}(k))`, NaN for an invalid ``k``.

    Used by :func:`.rewrites.local_vonmises_split_normaliser` (C and Numba graphs): when
    ``k`` is broadcast against the angles the normaliser is computed once per ``k``.
    """

    nin = 1
    kernel = staticmethod(_kernels.log_normaliser)
    core = staticmethod(_core_log_normaliser)

    def L_op(self, inputs, outputs, output_grads):
        (k,) = inputs
        (gz,) = output_grads
        return [-gz * one_minus_bessel_ratio_scalar(k)]


class VonMisesCDF(KernelScalarOp):
    r"""Von Mises cdf :math:`F(x \mid \mu, k)`, as :func:`vm_ppl.cdf`.

    Gradients: :math:`\partial_x F = p = -\partial_\mu F`; the :math:`k`-gradient is not
    implemented (the JAX backend, which runs :func:`vm_ppl.cdf` itself, has it).
    """

    nin = 3
    kernel = staticmethod(_kernels.cdf)
    core = staticmethod(_core_cdf)

    def L_op(self, inputs, outputs, output_grads):
        x, mu, k = inputs
        (gz,) = output_grads
        pdf = ps.exp(vonmises_logp_scalar(x, mu, k))
        return [gz * pdf, -gz * pdf, grad_not_implemented(self, 2, k)]


class VonMisesICDF(KernelScalarOp):
    r"""Von Mises quantile :math:`F^{-1}(q \mid \mu, k)`, as :func:`vm_ppl.icdf`.

    Gradients (implicit function theorem): :math:`\partial_q x = 1/p(x)`,
    :math:`\partial_\mu x = 1`; the :math:`k`-gradient is not implemented.
    """

    nin = 3
    kernel = staticmethod(_kernels.icdf)
    core = staticmethod(_core_icdf)

    def L_op(self, inputs, outputs, output_grads):
        q, mu, k = inputs
        (out,) = outputs
        (gz,) = output_grads
        pdf = ps.exp(vonmises_logp_scalar(out, mu, k))
        return [gz / pdf, gz, grad_not_implemented(self, 2, k)]


class VonMisesTanHalfLogp(KernelScalarOp):
    r""":math:`\log p(y \mid \mu_0 + 2\arctan\eta, k)`, inputs ``(y, mu0, eta, k)``.

    Formed on JAX graphs only (:func:`.rewrites.local_vonmises_tan_half_fuse`), where it
    runs the core kernel :func:`vm_ppl.tan_half_log_prob`. With :math:`h = (y - \mu_0)/2`,
    :math:`u = \sin h - \eta\cos h`, :math:`v = \cos h + \eta\sin h`,
    :math:`w = 1 + \eta^2`: :math:`\sin^2\frac{d}{2} = u^2/w` and :math:`\sin d = 2uv/w`
    for :math:`d = y - \mu_0 - 2\arctan\eta` (see :mod:`vm_ppl.tan_half`). NaN (value and
    gradient) for a negative, NaN or infinite ``k``.
    """

    nin = 4
    kernel = staticmethod(_kernels.tan_half_logp)
    core = staticmethod(_core_tan_half_log_prob)

    def L_op(self, inputs, outputs, output_grads):
        (out,) = outputs
        (gz,) = output_grads
        y, mu0, eta, k = (ps.cast(i, out.type.dtype) for i in inputs)
        gz = _nan_if_invalid_k(k, gz)
        dy = gz * (-2.0 * k * tan_half_sin_cos_scalar(y, mu0, eta))  # -2k sin(d/2) cos(d/2)
        deta = -2.0 * dy / (1.0 + eta * eta)  # dd/deta = -2 / (1 + eta^2)
        dk = gz * (one_minus_bessel_ratio_scalar(k) - 2.0 * tan_half_sin_sq_scalar(y, mu0, eta))
        return [dy, -dy, deta, dk]


class _GradientTerm(KernelScalarOp):
    r"""Base of the gradients' per-angle terms: term ``index`` of the core's ``terms``
    (0: :math:`\sin^2\frac{d}{2}`, 1: :math:`\sin\frac{d}{2}\cos\frac{d}{2}`), built by
    the densities' ``L_op``. C and Numba graphs expand the two-input ones into standard ops
    (:func:`.rewrites.local_vonmises_split_normaliser`); JAX graphs run ``terms``, the
    density's own computation, which XLA then shares with the density's kernel.

    Their gradients: :math:`\partial_d` of term 0 is term 1 and of term 1
    :math:`\frac{1}{2} - \sin^2\frac{d}{2}`; :math:`\partial d/\partial x = 1 =
    -\partial d/\partial\mu` and, for the tan-half forms (third input :math:`\eta`),
    :math:`\partial d/\partial\eta = -2/(1 + \eta^2)`.
    """

    index: int
    terms: Callable

    def core(self, *args):
        return self.terms(*args)[self.index]

    def L_op(self, inputs, outputs, output_grads):
        (gz,) = output_grads
        sin_sq, sin_cos = _GRADIENT_TERMS[self.nin]
        g = gz * (sin_cos(*inputs) if self.index == 0 else 0.5 - sin_sq(*inputs))
        grads = [g, -g]
        if self.nin == 3:
            eta = inputs[2]
            grads.append(-2.0 * g / (1.0 + eta * eta))
        return grads


class VonMisesHalfSinSq(_GradientTerm):
    r""":math:`\sin^2\frac{d}{2}`, :math:`d = x - \mu`: the ``k``-gradient's per-angle term
    (:meth:`VonMisesLogp.L_op`); JAX: :func:`vm_ppl.density.half_angle_terms`."""

    nin, index = 2, 0
    kernel = staticmethod(_kernels.half_sin_sq)
    terms = staticmethod(_core_half_angle_terms)


class VonMisesHalfSinCos(_GradientTerm):
    r""":math:`\sin\frac{d}{2}\cos\frac{d}{2} = \frac{\sin d}{2}`, :math:`d = x - \mu`:
    the angle gradients' per-angle term (as :class:`VonMisesHalfSinSq`)."""

    nin, index = 2, 1
    kernel = staticmethod(_kernels.half_sin_cos)
    terms = staticmethod(_core_half_angle_terms)


class VonMisesTanHalfSinSq(_GradientTerm):
    r""":math:`\sin^2\frac{d}{2}`, :math:`d = y - \mu_0 - 2\arctan\eta`, inputs
    ``(y, mu0, eta)``: formed on JAX graphs only, from :class:`VonMisesHalfSinSq` of a
    tan-half link (:func:`.rewrites.local_vonmises_tan_half_fuse`), and by
    :meth:`VonMisesTanHalfLogp.L_op`; JAX: :func:`vm_ppl.tan_half.tan_half_terms`, the
    computation of the fused density."""

    nin, index = 3, 0
    kernel = staticmethod(_kernels.tan_half_sin_sq)
    terms = staticmethod(_core_tan_half_terms)


class VonMisesTanHalfSinCos(_GradientTerm):
    r""":math:`\sin\frac{d}{2}\cos\frac{d}{2}`, :math:`d = y - \mu_0 - 2\arctan\eta`
    (as :class:`VonMisesTanHalfSinSq`)."""

    nin, index = 3, 1
    kernel = staticmethod(_kernels.tan_half_sin_cos)
    terms = staticmethod(_core_tan_half_terms)


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
vonmises_tan_half_logp_scalar = VonMisesTanHalfLogp(upgrade_to_float, name="vonmises_tan_half_logp")
half_sin_sq_scalar = VonMisesHalfSinSq(upgrade_to_float, name="half_sin_sq")
half_sin_cos_scalar = VonMisesHalfSinCos(upgrade_to_float, name="half_sin_cos")
tan_half_sin_sq_scalar = VonMisesTanHalfSinSq(upgrade_to_float, name="tan_half_sin_sq")
tan_half_sin_cos_scalar = VonMisesTanHalfSinCos(upgrade_to_float, name="tan_half_sin_cos")
# Number of inputs -> (sin^2, sin cos) term ops (_GradientTerm.L_op).
_GRADIENT_TERMS = {
    2: (half_sin_sq_scalar, half_sin_cos_scalar),
    3: (tan_half_sin_sq_scalar, tan_half_sin_cos_scalar),
}


class VonMisesElemwise(Elemwise):
    """``Elemwise`` of a :class:`KernelScalarOp`, as a type of its own for PyTorch.

    PyTensor's PyTorch conversion of a plain ``Elemwise`` broadcasts every input to the
    output shape and ``torch.vmap``-s the scalar function; this type is converted to one
    call of the kernel's torch operator on the inputs as they are instead (:mod:`.pytorch`), so
    that the normaliser is evaluated per ``k``, not per angle. Every other backend treats
    it as the ``Elemwise`` it is.
    """


_one_minus_bessel_ratio = VonMisesElemwise(
    one_minus_bessel_ratio_scalar, name="OneMinusBesselRatio"
)
_bessel_ratio_derivative = VonMisesElemwise(
    bessel_ratio_derivative_scalar, name="BesselRatioDerivative"
)
_vonmises_logp = VonMisesElemwise(vonmises_logp_scalar, name="VonMisesLogp")
_vonmises_log_normaliser = VonMisesElemwise(
    vonmises_log_normaliser_scalar, name="VonMisesLogNormaliser"
)
_vonmises_cdf = VonMisesElemwise(vonmises_cdf_scalar, name="VonMisesCDF")
_vonmises_icdf = VonMisesElemwise(vonmises_icdf_scalar, name="VonMisesICDF")
_vonmises_tan_half_logp = VonMisesElemwise(
    vonmises_tan_half_logp_scalar, name="VonMisesTanHalfLogp"
)


def one_minus_bessel_ratio(k) -> pt.TensorVariable:
    r"""Elementwise :math:`1 - A(k)` (circular variance of a von Mises), symbolic."""
    return _one_minus_bessel_ratio(k)


def bessel_ratio_derivative(k) -> pt.TensorVariable:
    r"""Elementwise :math:`A'(k)`, symbolic."""
    return _bessel_ratio_derivative(k)


def vonmises_log_normaliser(k) -> pt.TensorVariable:
    r"""Elementwise :math:`\log(2\pi\,\mathrm{i0e}(k))`, symbolic."""
    return _vonmises_log_normaliser(k)


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


def vonmises_tan_half_logp(y, mu0, eta, kappa) -> pt.TensorVariable:
    r"""Elementwise :math:`\log p(y \mid \mu_0 + 2\arctan\eta, \kappa)`, symbolic."""
    return _vonmises_tan_half_logp(y, mu0, eta, kappa)
