"""Every vm_ppl PyTensor op on every backend against the JAX core, values and gradients.

One compiled function per backend evaluates all ops and the PyTensor gradients of each
(the symbolic ``L_op`` graphs: on C and Numba after the density's expansion, see
``vm_ppl.pymc.rewrites``) at the same points: concentrations from 1e-8 to 1e8 on both
sides of every regime switch of the kernels (20: asymptotic series; 50: cdf's normal
approximation; 1: icdf's starting guess), angles around the mode and in the tails,
shifted by -2 pi, 0 and +2 pi. The reference is the core (``vm_ppl.log_prob``,
``vm_ppl.cdf``, ``vm_ppl.icdf``, ``vm_ppl.bessel``, ``vm_ppl.tan_half_log_prob``) and
its JAX derivatives (custom JVPs, analytic), in float64.
"""

from __future__ import annotations

import functools
import warnings
from importlib.util import find_spec

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import vm_ppl
from vm_ppl.bessel import bessel_ratio_derivative, one_minus_bessel_ratio

# PyTensor's JAX backend with float64 graphs runs with x64 (see conftest.py).
JAX_X64 = True

PYTORCH = pytest.param(
    "PYTORCH", marks=pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")
)
MODES = ["FAST_RUN", "NUMBA", "JAX", PYTORCH, "FAST_COMPILE"]

KAPPAS = np.array(
    [1e-8, 1e-3, 0.5, 0.99, 1.01, 2.0, 8.0, 19.9, 20.1, 49.9, 50.1, 700.0, 1e4, 1e6, 1e8]
)
SHIFTS = (-2 * np.pi, 0.0, 2 * np.pi)


@pytest.fixture(scope="module")
def vmp():
    import vm_ppl.pymc as module

    if find_spec("torch") is not None:
        import vm_ppl.pymc.pytorch  # noqa: F401  (opt-in PyTorch registrations)
    return module


def _points():
    """Per-element inputs: every kappa with an angle near the mode (1/sqrt(k) away), one
    in the tail (1.5 rad away), a quantile, and a regression predictor, each shifted."""
    rng = np.random.default_rng(0)
    n = KAPPAS.size
    k = np.tile(KAPPAS, 2)
    spread = np.minimum(3.0, 1.0 / np.sqrt(KAPPAS))
    d = np.concatenate([rng.standard_normal(n) * spread, np.where(KAPPAS < 1e6, 1.5, 0.01)])
    mu = rng.uniform(-3.0, 3.0, k.size)
    q = np.concatenate([rng.uniform(0.0, 1.0, n), [1e-12, 1e-3, 0.999, 0.5, 1 - 1e-9] * 3])
    eta = rng.standard_normal(k.size)
    x = np.concatenate([mu + d + s for s in SHIFTS])
    tile = lambda v: np.tile(v, len(SHIFTS))  # noqa: E731
    return x, tile(mu), tile(k), tile(q), tile(eta)


@functools.cache
def _compiled(vmp, mode):
    from vm_ppl.pymc import ops

    x, mu, k, q, eta = (pt.dvector(n) for n in ("x", "mu", "k", "q", "eta"))
    outs = []
    for out, wrt in (
        (ops.vonmises_logp(x, mu, k), [x, mu, k]),
        (ops.vonmises_log_normaliser(k), [k]),
        (ops.one_minus_bessel_ratio(k), [k]),
        (ops.bessel_ratio_derivative(k), [k]),
        (ops.vonmises_cdf(x, mu, k), [x, mu]),
        (ops.vonmises_icdf(q, mu, k), [q, mu]),
        (ops.vonmises_tan_half_logp(x, mu, eta, k), [x, mu, eta, k]),
    ):
        outs += [out, *pytensor.grad(out.sum(), wrt)]
    with warnings.catch_warnings():
        # Native code on NUMBA: any object-mode fallback is an error.
        warnings.simplefilter("error" if mode == "NUMBA" else "ignore")
        return pytensor.function([x, mu, k, q, eta], outs, mode=mode, on_unused_input="ignore")


def _reference(x, mu, k, q, eta):
    """The core's values and derivatives, in the order of ``_compiled``'s outputs."""
    with jax.enable_x64(True):
        x, mu, k, q, eta = (jnp.asarray(v) for v in (x, mu, k, q, eta))

        def value_and_grads(f, args, argnums):
            out = f(*args)
            grads = jax.grad(lambda *a: f(*a).sum(), argnums=argnums)(*args)
            return [out, *grads]

        def log_normaliser(k):
            return -vm_ppl.log_prob(0.0, 0.0, k)

        ref = []
        ref += value_and_grads(vm_ppl.log_prob, (x, mu, k), (0, 1, 2))
        ref += value_and_grads(log_normaliser, (k,), (0,))
        ref += value_and_grads(one_minus_bessel_ratio, (k,), (0,))
        ref += value_and_grads(bessel_ratio_derivative, (k,), (0,))
        ref += value_and_grads(vm_ppl.cdf, (x, mu, k), (0, 1))
        ref += value_and_grads(vm_ppl.icdf, (q, mu, k), (0, 1))
        ref += value_and_grads(vm_ppl.tan_half_log_prob, (x, mu, eta, k), (0, 1, 2, 3))
        ref = [np.asarray(r) for r in ref]
    # A'' from mpmath: the core's autodiff of A' cancels below k ~ 1e-3 (-2.2e-8 at
    # k = 1e-8, where A'' = -3.75e-9), so it is no reference there.
    ref[NAMES.index("A'") + 1] = np.array([_a_second_derivative(float(kk)) for kk in k])
    return ref


@functools.cache
def _a_second_derivative(k: float) -> float:
    a = lambda t: mpmath.besseli(1, t) / mpmath.besseli(0, t)  # noqa: E731
    return float(mpmath.diff(a, mpmath.mpf(k), 2))


ANGLE_DERIVATIVES = {"dlogp/dx", "dlogp/dmu", "d/dy", "d/dmu0", "d/deta"}
NAMES = [
    "logp",
    "dlogp/dx",
    "dlogp/dmu",
    "dlogp/dk",
    "log_normaliser",
    "d/dk",
    "1 - A",
    "d/dk",
    "A'",
    "d/dk",
    "cdf",
    "dcdf/dx",
    "dcdf/dmu",
    "icdf",
    "dicdf/dq",
    "dicdf/dmu",
    "tan_half_logp",
    "d/dy",
    "d/dmu0",
    "d/deta",
    "d/dk",
]


@pytest.mark.parametrize("mode", MODES)
def test_every_op_on_every_backend_against_core(vmp, mode):
    args = _points()
    got = _compiled(vmp, mode)(*args)
    ref = _reference(*args)
    assert len(got) == len(ref) == len(NAMES)
    k = args[2]
    for name, g, r in zip(NAMES, got, ref, strict=True):
        g = np.asarray(g, dtype=np.float64)
        assert g.shape == r.shape, name
        assert np.all(np.isfinite(g)), (mode, name)
        # Relative 1e-9, and absolute 1e-9 on the scale of the term (k for the angle
        # derivatives of the densities, which are k sin d).
        tol = 1e-9 * np.abs(r) + 1e-9 * (np.maximum(1.0, k) if name in ANGLE_DERIVATIVES else 1.0)
        if name.startswith(("icdf", "dicdf/dq")):
            # The quantile is determined up to the cdf's absolute accuracy (~1e-16):
            # dx = 4e-16 dx/dq, which moves the density, hence dx/dq = 1/p, by k |sin| dx.
            dx = 4e-16 * np.abs(ref[NAMES.index("dicdf/dq")])
            slope = k * np.abs(np.sin(ref[NAMES.index("icdf")] - args[1]))
            tol += dx if name == "icdf" else np.abs(r) * slope * dx
        bad = ~(np.abs(g - r) <= tol)
        assert not bad.any(), (mode, name, k[bad], g[bad], r[bad])
