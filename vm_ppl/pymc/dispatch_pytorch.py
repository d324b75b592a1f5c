r"""PyTorch registrations (``mode="PYTORCH"``): torch transcriptions of :mod:`._kernels`.

The functions below are branch-free torch code (``torch.where``, fixed loop counts) that
broadcast like NumPy. They are registered twice: for the density's own
:class:`~.ops.VonMisesElemwise` nodes, called once on the inputs as they are (so the
Bessel normaliser is evaluated per ``k``, not per angle), and for the scalar ops, which
PyTensor ``torch.vmap``-s over the elements of a plain ``Elemwise`` (the gradient graphs).
PyTensor's PyTorch linker then ``torch.compile``-s the whole graph. The kernels compute in
float64, as the C and Numba kernels do, and cast to the output dtype, so that the
backends agree to rounding.

The Bessel functions are torch's own ``torch.special.i0e``/``i1e`` (Cephes, as
:mod:`._kernels`); above :math:`\kappa = 20`, :math:`1 - A` and :math:`A'` use the core's
asymptotic series (:data:`vm_ppl.bessel._EPS_ASYMPTOTIC`), so nothing cancels at large
:math:`\kappa`. The cdf and icdf follow :func:`._kernels.cdf` and :func:`._kernels.icdf`
(Hill's series below :math:`\kappa = 50`, the corrected normal approximation above, and a
bracketed Newton iteration for the quantile).

Unlike JAX, PyTorch cannot call the core kernels (they are JAX functions), so this is a
fourth transcription, tested against the C backend to 1e-9 (``tests/test_pymc.py``).

Not covered: random variables. PyTensor 2.38's PyTorch backend has no ``RandomVariable``
conversion at all (``pm.VonMises`` cannot be drawn in this mode either), so ``pm.draw``
and predictive sampling need another mode. Importing this module imports ``torch``;
:mod:`vm_ppl.pymc` imports it when PyTensor's PyTorch linker first converts a graph.
"""

from __future__ import annotations

import math

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from . import _kernels as K
from .ops import (
    BesselRatioDerivative,
    OneMinusBesselRatio,
    VonMisesCDF,
    VonMisesElemwise,
    VonMisesICDF,
    VonMisesLogNormaliser,
    VonMisesLogp,
)

__all__: list[str] = []

_F64 = torch.float64


def _inv_series(x: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    """sum_m coeffs[m-1] x^-m by Horner's rule in 1/x."""
    t = 1.0 / x
    acc = torch.zeros_like(x)
    for c in reversed(coeffs):
        acc = (acc + c) * t
    return acc


def _invalid_k(k: torch.Tensor) -> torch.Tensor:
    return ~(k >= 0.0) | torch.isinf(k)


def log_normaliser(k: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(2\pi\,\mathrm{i0e}(k))`, NaN for an invalid ``k``."""
    out = K.LOG_2PI + torch.log(torch.special.i0e(k))
    return torch.where(_invalid_k(k), math.nan, out)


def logp(x: torch.Tensor, mu: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    r""":math:`-2k\sin^2\frac{x-\mu}{2} - \log(2\pi\,\mathrm{i0e}(k))`, NaN for invalid ``k``."""
    s = torch.sin(0.5 * (x - mu))
    return -2.0 * k * (s * s) - log_normaliser(k)


def one_minus_ratio(k: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - I_1(k)/I_0(k)`, the asymptotic series above 20."""
    big = k > K.ASYMPTOTIC_THRESHOLD
    safe = torch.where(big, k, K.ASYMPTOTIC_THRESHOLD)  # no 1/0 in the unused branch
    a = torch.special.i0e(k)
    return torch.where(big, _inv_series(safe, K.OMB_SERIES), (a - torch.special.i1e(k)) / a)


def ratio_derivative(k: torch.Tensor) -> torch.Tensor:
    r""":math:`A'(k) = 1 - A/k - A^2`, even; the series above 20 and :math:`1/2` at 0."""
    ak = torch.abs(k)
    big = ak > K.ASYMPTOTIC_THRESHOLD
    safe_big = torch.where(big, ak, K.ASYMPTOTIC_THRESHOLD)
    safe_small = torch.where(ak == 0.0, 1.0, ak)
    a = torch.special.i1e(safe_small) / torch.special.i0e(safe_small)
    small = torch.where(ak == 0.0, 0.5, 1.0 - a / safe_small - a * a)
    return torch.where(big, _inv_series(safe_big, K.DERIV_SERIES) / safe_big, small)


def _pdf_std(r: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    s = torch.sin(0.5 * r)
    return torch.exp(-2.0 * ((k * s) * s) - torch.log(torch.special.i0e(k))) / K.TWO_PI


def _cdf_std(r: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Standard cdf on r in [-pi, pi] (unclipped), both branches of :func:`._kernels._cdf_std`."""
    s1, c1 = torch.sin(r), torch.cos(r)
    ratio = torch.zeros_like(r + k)
    v = torch.zeros_like(ratio)
    # Hill's backward recurrence, segments 64 -> 8 -> 1 -> 0 restarted from sin/cos.
    for top, bottom in ((K.CDF_TERMS, 8), (8, 1), (1, 0)):
        sn, cn = torch.sin(top * r), torch.cos(top * r)
        for n in range(top, bottom, -1):
            ratio = k / (2.0 * n + k * ratio)
            v = ratio * (sn / n + v)
            sn, cn = sn * c1 - cn * s1, cn * c1 + sn * s1
    series = 0.5 + r / K.TWO_PI + v / math.pi
    z = torch.clamp(K.SQRT_2_OVER_PI * torch.sin(0.5 * r) / torch.special.i0e(k), -40.0, 40.0)
    z2 = z * z
    c = 24.0 * k
    den = (c - 2.0 * z2 - 16.0) / 3.0 - (z2 * z2 + 1.75 * z2 + 83.5) / (c - 53.0 - z2)
    normal = torch.special.ndtr(z - z * z2 / (den * den))
    return torch.where(k < K.CDF_SWITCH, series, normal)


@torch.compiler.disable  # eager: the unrolled series would take torch.compile minutes
def cdf(x: torch.Tensor, mu: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    r"""Von Mises cdf, :math:`\int_{\mu-\pi}^x f` plus one per turn (as :func:`vm_ppl.cdf`)."""
    d = x - mu
    n = torch.floor(d / K.TWO_PI + 0.5)
    r = d - n * K.TWO_PI
    out = torch.clamp(_cdf_std(r, k), 0.0, 1.0) + n
    bad = _invalid_k(k) | torch.isnan(d) | torch.isinf(d)
    return torch.where(bad, math.nan, out)


@torch.compiler.disable  # eager: 8 Newton steps x 73 series terms, unrolled, would take
# torch.compile several minutes
def icdf(q: torch.Tensor, mu: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    r"""Inverse of :func:`cdf` on :math:`[\mu - \pi, \mu + \pi]` (as :func:`._kernels.icdf`)."""
    q, mu, k = torch.broadcast_tensors(q, mu, k)
    # Lower half, mirrored (1 - q is exact for q >= 1/2), as the core.
    upper = q > 0.5
    qq = torch.where(upper, 1.0 - q, q)
    qt = torch.clamp(qq, min=K._TINY)
    log_q = torch.log(qt)
    # Start, kappa < 1: the two-term Fourier model t = r + 2A sin r, three Newton steps.
    t = K.TWO_PI * qq - math.pi
    a2 = 2.0 * (1.0 - one_minus_ratio(k))
    r_fourier = t
    for _ in range(3):
        r_fourier = r_fourier - (r_fourier + a2 * torch.sin(r_fourier) - t) / (
            1.0 + a2 * torch.cos(r_fourier))
        r_fourier = torch.clamp(r_fourier, -math.pi, 0.0)
    # Start, kappa >= 1: the inverted leading normal term.
    s = torch.special.ndtri(qt) * torch.special.i0e(k) / K.SQRT_2_OVER_PI
    r_normal = 2.0 * torch.asin(torch.clamp(s, -1.0, 0.0))
    r = torch.where(k < 1.0, r_fourier, r_normal)
    lo = torch.full_like(r, -math.pi)
    hi = torch.zeros_like(r)
    for _ in range(K.ICDF_STEPS):
        f = _cdf_std(r, k)
        lo = torch.where(f <= qt, r, lo)
        hi = torch.where(f >= qt, r, hi)
        p = _pdf_std(r, k)
        # Newton on log F_0 right of the root, on F_0 left of it (see the core).
        log_step = r - (torch.log(torch.where(f > qt, f, 1.0)) - log_q) * f / p
        step = torch.where(f > qt, log_step, r - (f - qt) / p)
        inside = (step >= lo) & (step <= hi) & torch.isfinite(step)
        r = torch.where(inside, step, 0.5 * (lo + hi))
    r = torch.where(qq <= 0.0, -math.pi, r)
    out = torch.where(upper, -r, r) + mu
    bad = _invalid_k(k) | ~((q >= 0.0) & (q <= 1.0))
    return torch.where(bad, math.nan, out)


_KERNELS = {
    VonMisesLogp: logp,
    VonMisesLogNormaliser: log_normaliser,
    OneMinusBesselRatio: one_minus_ratio,
    BesselRatioDerivative: ratio_derivative,
    VonMisesCDF: cdf,
    VonMisesICDF: icdf,
}


def _typed(kernel, dtype: torch.dtype):
    def fn(*inputs):
        # float64 inside, as the C and Numba kernels; the output in the graph's dtype.
        return kernel(*(torch.as_tensor(i).to(_F64) for i in inputs)).to(dtype)

    return fn


def _register_scalar(op_class, kernel) -> None:
    # A plain ``Elemwise`` of the op (as the gradient graphs build): PyTensor broadcasts
    # the inputs and vmaps this function over the elements.
    @pytorch_funcify.register(op_class)
    def _funcify(op, node=None, **kwargs):
        dtype = getattr(torch, node.outputs[0].dtype) if node is not None else _F64
        return _typed(kernel, dtype)


for _op, _kernel in _KERNELS.items():
    _register_scalar(_op, _kernel)


@pytorch_funcify.register(VonMisesElemwise)
def _funcify_elemwise(op, node, **kwargs):
    """One call of the broadcasting kernel on the inputs as they are (no vmap)."""
    return _typed(_KERNELS[type(op.scalar_op)], getattr(torch, node.outputs[0].dtype))
