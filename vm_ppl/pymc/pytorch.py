r"""PyTorch implementations of the von Mises ops (``mode="PYTORCH"``): opt in by importing.

>>> import vm_ppl.pymc.pytorch  # doctest: +SKIP  (needs torch; then mode="PYTORCH" works)

PyTensor's PyTorch dispatch imports torch (seconds), so ``import vm_ppl.pymc`` does not
register these; importing this module does, through PyTensor's ``pytorch_funcify``
(no patching). Each op runs its kernel from :mod:`._kernels`, compiled by Numba to a
NumPy ufunc (:func:`.registry.ufunc`), on the CPU, in float64, cast back to the graph's
dtype: the same source as the C and Numba backends, so they agree to rounding.
:class:`~.ops.VonMisesElemwise` nodes (every ``Elemwise`` of a vm_ppl op, see
:func:`.rewrites.local_vonmises_elemwise`) call the ufunc once on the inputs as they are,
so the normaliser is evaluated per ``k``, not per angle. The call is a graph break for
``torch.compile`` (``torch.compiler.disable``): torch cannot trace Numba code. Tensors
on another device are copied to the CPU and back.

Gradients are PyTensor's symbolic ones (graphs of these ops and standard ones), as on
every backend. Random variables: PyTensor 2.38's PyTorch backend has no
``RandomVariable`` conversion at all (``pm.VonMises`` cannot be drawn there either), so
``pm.draw`` and predictive sampling need another mode.
"""

from __future__ import annotations

import numpy as np
import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from .ops import VonMisesElemwise
from .registry import ufunc

__all__: list[str] = []


@pytorch_funcify.register(VonMisesElemwise)
def _pytorch_vonmises_elemwise(op, node, **kwargs):
    kernel = ufunc(op.scalar_op.kernel)
    dtype = getattr(torch, node.outputs[0].dtype)

    @torch.compiler.disable
    def elemwise(*inputs):
        device = next((i.device for i in inputs if isinstance(i, torch.Tensor)), None)
        arrays = [np.asarray(i.detach().cpu() if isinstance(i, torch.Tensor) else i,
                             dtype=np.float64) for i in inputs]
        with np.errstate(all="ignore"):  # as the C and Numba backends: no FP warnings
            out = torch.from_numpy(np.asarray(kernel(*arrays))).to(dtype)
        return out if device is None else out.to(device)

    return elemwise
