r"""PyTorch implementations of the von Mises ops (``mode="PYTORCH"``): opt in by importing.

>>> import vm_ppl.pymc.pytorch  # doctest: +SKIP  (needs torch; then mode="PYTORCH" works)

PyTensor's PyTorch dispatch imports torch (seconds), so ``import vm_ppl.pymc`` does not
register these; importing this module does, through PyTensor's ``pytorch_funcify``
(no patching).

Each op's kernel from :mod:`._kernels` (the source the C and Numba backends compile),
compiled by Numba to a NumPy ufunc (:func:`.registry.ufunc`), is registered as a torch
operator ``torch.ops.vm_ppl.<kernel>`` through ``torch.library`` (CPU; tensors on another
device are copied to the CPU and back), with a fake (meta) implementation that gives
its shape: ``torch.compile``, which PyTensor's PyTorch linker applies to the whole graph,
keeps such an operator inside the compiled graph as one opaque call, where a
``torch.compiler.disable`` function would split the graph around every call (slower:
``python -m vm_ppl.bench.pymc_perf --modes PYTORCH``, BENCHMARKS.md). The kernels
compute in float64, as on C and Numba, and the result is cast to the graph's dtype.

:class:`~.ops.VonMisesElemwise` nodes (every ``Elemwise`` of a vm_ppl op, see
:func:`.rewrites.local_vonmises_elemwise`) call the operator once on the inputs as they
are, so the normaliser is evaluated per ``k``, not per angle; the density itself is
:func:`.ops.split_logp` in torch ops per angle, as the C and Numba graphs have it, and
so are its gradients' terms (``half_sin_sq``, ``half_sin_cos``). Sums and products of
three or more terms in such graphs become chains of binary ones
(:func:`.rewrites.local_binary_add_mul`), which ``torch.compile`` fuses into the loop over
the angles instead of stacking broadcast copies.

Gradients are PyTensor's symbolic ones (graphs of these ops and standard ones), as on
every backend. Random variables: PyTensor 2.38's PyTorch backend has no
``RandomVariable`` conversion at all (``pm.draw(pm.VonMises.dist(...))`` fails there
too), so ``pm.draw`` and predictive sampling need another mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from .ops import (
    VonMisesElemwise,
    half_angle_terms,
    half_sin_cos_scalar,
    half_sin_sq_scalar,
    split_logp,
    vonmises_log_normaliser_scalar,
    vonmises_logp_scalar,
)
from .registry import ufunc

__all__ = ["torch_kernel"]

_LIBRARY = torch.library.Library("vm_ppl", "DEF")
_OPERATORS: dict[str, Callable] = {}


def torch_kernel(kernel: Callable) -> Callable:
    """``kernel`` (a function of :mod:`._kernels`) as the torch operator ``vm_ppl::<name>``.

    Broadcasting, float64 out; defined on first use and reused.
    """
    name = kernel.__name__
    if name not in _OPERATORS:
        compiled = ufunc(kernel)
        args = ", ".join(f"Tensor {a}" for a in inspect.signature(kernel).parameters)
        _LIBRARY.define(f"{name}({args}) -> Tensor")

        def impl(*inputs: torch.Tensor) -> torch.Tensor:
            arrays = (i.detach().cpu().numpy() for i in inputs)
            with np.errstate(all="ignore"):  # as the C and Numba backends: no FP warnings
                out = np.asarray(compiled(*arrays), dtype=np.float64)
            return torch.from_numpy(out).to(inputs[0].device)

        def fake(*inputs: torch.Tensor) -> torch.Tensor:
            shape = torch.broadcast_shapes(*(i.shape for i in inputs))
            return inputs[0].new_empty(shape, dtype=torch.float64)

        for key in ("CPU", "CUDA"):
            _LIBRARY.impl(name, impl, key)
        torch.library.register_fake(f"vm_ppl::{name}", fake, lib=_LIBRARY)
        _OPERATORS[name] = getattr(torch.ops.vm_ppl, name).default
    return _OPERATORS[name]


def _elemwise(kernel: Callable, dtype: torch.dtype) -> Callable:
    operator = torch_kernel(kernel)

    def elemwise(*inputs):
        return operator(*(torch.as_tensor(i, dtype=torch.float64) for i in inputs)).to(dtype)

    return elemwise


@pytorch_funcify.register(VonMisesElemwise)
def _pytorch_vonmises_elemwise(op, node, **kwargs):
    dtype = getattr(torch, node.outputs[0].dtype)
    if op.scalar_op is half_sin_sq_scalar or op.scalar_op is half_sin_cos_scalar:
        index = int(op.scalar_op is half_sin_cos_scalar)

        def term(x, mu):
            # The gradient's terms in torch ops, as the density below: torch.compile
            # shares their tan(d/2) with it and fuses all into the loop over the angles.
            x, mu = (torch.as_tensor(i, dtype=dtype) for i in (x, mu))
            return half_angle_terms(x, mu, torch)[index]

        return term
    if op.scalar_op is not vonmises_logp_scalar:
        return _elemwise(op.scalar_op.kernel, dtype)
    log_normaliser = _elemwise(vonmises_log_normaliser_scalar.kernel, dtype)

    def logp(x, mu, k):
        # In the output's precision, as the C and Numba expansion (rewrites.expand_logp).
        x, mu, k = (torch.as_tensor(i, dtype=dtype) for i in (x, mu, k))
        return split_logp(x, mu, k, log_normaliser, torch)

    return logp
