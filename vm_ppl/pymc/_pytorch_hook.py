"""Deferred registration of the PyTorch implementations (:mod:`.dispatch_pytorch`).

PyTensor's PyTorch dispatch imports torch (about 2 s), so ``import vm_ppl.pymc`` only wraps
:meth:`PytorchLinker.fgraph_convert`, which imports :mod:`.dispatch_pytorch` (registering
the ops) the first time a graph is compiled with ``mode="PYTORCH"``. Calling
``pytorch_funcify`` directly, outside the linker, needs ``import vm_ppl.pymc.dispatch_pytorch``.
"""

from __future__ import annotations

import sys

__all__ = ["register_pytorch_on_first_use"]


def register_pytorch_on_first_use() -> None:
    """Register the PyTorch implementations (:mod:`.dispatch_pytorch`) when PyTensor's
    PyTorch linker first converts a graph, so that ``import vm_ppl.pymc`` does not import
    torch (about 2 s) for the users who never select ``mode="PYTORCH"``."""
    if "pytensor.link.pytorch.dispatch" in sys.modules:  # torch in use already
        from . import dispatch_pytorch  # noqa: F401

        return
    from pytensor.link.pytorch.linker import PytorchLinker  # no torch import

    convert = PytorchLinker.fgraph_convert
    if getattr(convert, "_vm_ppl_hook", False):
        return

    def fgraph_convert(self, *args, **kwargs):
        from . import dispatch_pytorch  # noqa: F401  (needs torch, as the linker does)

        return convert(self, *args, **kwargs)

    fgraph_convert._vm_ppl_hook = True
    fgraph_convert.__doc__ = convert.__doc__
    PytorchLinker.fgraph_convert = fgraph_convert
