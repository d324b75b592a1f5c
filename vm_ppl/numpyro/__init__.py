"""NumPyro adapter: :class:`VonMises` and :class:`CircularUniform` distributions backed
by the ``vm_ppl`` core, the periodic circular constraint, and circular regression.

Importing this package registers the periodic transform for :data:`circular` with
``numpyro.distributions.transforms.biject_to``, NumPyro's registration API, for this
package's constraint only; nothing of NumPyro's is patched. Models written for
``numpyro.infer.reparam.CircularReparam`` use :class:`CircularReparam` from here, which
also accepts :data:`circular`.
"""

from .constraints import CircularReparam, WrapTransform, circular, positive_finite
from .distribution import CircularUniform, VonMises
from .regression import (
    MultimodalPosteriorWarning,
    circular_regression_model,
    detect_multimodality,
    fit_circular_regression,
    inference_data,
    mle_init,
)

__all__ = [
    "CircularReparam",
    "CircularUniform",
    "MultimodalPosteriorWarning",
    "VonMises",
    "WrapTransform",
    "circular",
    "circular_regression_model",
    "detect_multimodality",
    "fit_circular_regression",
    "inference_data",
    "mle_init",
    "positive_finite",
]
