r"""PyTorch implementations of the von Mises ops (``mode="PYTORCH"``): opt in by importing.

>>> import vm_ppl.pymc.pytorch  # doctest: +SKIP  (needs torch; then mode="PYTORCH" works)

PyTensor's PyTorch dispatch imports torch (seconds), so ``import vm_ppl.pymc`` does not
register these; importing this module does, through PyTensor's ``pytorch_funcify``
(no patching). Each op runs its kernel from :mod:`._kernels`, compiled by Numba to a
NumPy ufunc (:func:`.registry.ufunc`), on the CPU, in float64, cast back to the graph's
dtype: the same source as the C and Numba backends, so they agree to rounding.
:class:`~.ops.VonMisesElemwise` nodes (every ``Elemwise`` of a vm_ppl op, see
:func:`.rewrites.local_vonmises_elemwise`) call the ufunc once on the inputs as they are,
so the normaliser is evaluated per ``k``, not per angle; the density itself runs as the C
and Numba graphs have it (:func:`.rewrites.expand_logp`: torch ops per angle, the
normaliser's ufunc once per ``k``). The ufunc call is a graph break for
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
from pytensor.graph.fg import FunctionGraph
from pytensor.link.pytorch.dispatch import pytorch_funcify

from .ops import VonMisesElemwise, vonmises_logp_scalar
from .registry import ufunc
from .rewrites import expand_logp

__all__: list[str] = []


@pytorch_funcify.register(VonMisesElemwise)
def _pytorch_vonmises_elemwise(op, node, **kwargs):
    if op.scalar_op is vonmises_logp_scalar:
        # The density as the C and Numba graphs have it (torch ops per angle, the
        # normaliser once per k), converted by PyTensor itself.
        inputs = [i.type() for i in node.inputs]
        fgraph = FunctionGraph(inputs, [expand_logp(*inputs, dtype=node.outputs[0].dtype)])
        expanded = pytorch_funcify(fgraph)

        def logp(*inputs):
            return expanded(*inputs)[0]

        return logp
    kernel = ufunc(op.scalar_op.kernel)
    dtype = getattr(torch, node.outputs[0].dtype)

    @torch.compiler.disable
    def elemwise(*inputs):
        device = next((i.device for i in inputs if isinstance(i, torch.Tensor)), None)
        arrays = [
            np.asarray(i.detach().cpu() if isinstance(i, torch.Tensor) else i, dtype=np.float64)
            for i in inputs
        ]
        with np.errstate(all="ignore"):  # as the C and Numba backends: no FP warnings
            out = torch.from_numpy(np.asarray(kernel(*arrays))).to(dtype)
        return out if device is None else out.to(device)

    return elemwise
