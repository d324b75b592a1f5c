"""Benchmark of logp + dlogp: ``vm_ppl.pymc.VonMises`` against ``pm.VonMises`` per backend.

Run (one process, implementations interleaved, medians)::

    python -m vm_ppl.bench.pymc_perf [--n 100000] [--reps 30] [--json out.json]
                                     [--per-observation-kappa]

For each PyTensor backend (``FAST_RUN``, i.e. the C linker; ``NUMBA``; ``JAX``; and
``PYTORCH`` when torch is installed) it compiles,
for both distributions, one function returning the summed log-density of ``n`` observed
angles (float64, in :math:`[-\\pi, \\pi)` so that ``pm.VonMises`` is finite) and its
gradient in ``(mu, kappa)``, then times the calls round-robin over the two
implementations, one backend after the other, and prints a Markdown table of median
milliseconds and the ratio vm_ppl / PyMC. ``--modes`` picks a subset of the backends;
``--per-observation-kappa`` gives every angle its own kappa (uniform on [0.1, 60]), so that
the Bessel normaliser and :math:`1 - A` run per angle instead of once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from importlib.util import find_spec

import numpy as np

MODES = ("FAST_RUN", "NUMBA", "JAX") + (("PYTORCH",) if find_spec("torch") else ())
IMPLS = ("vm_ppl", "pm.VonMises")


def _compile(impl: str, mode: str, n: int, per_observation_kappa: bool = False) -> Callable:
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    import vm_ppl.pymc as vmp

    if mode == "PYTORCH":
        import vm_ppl.pymc.pytorch  # noqa: F401  (opt-in PyTorch registrations)

    with pytensor.config.change_flags(floatX="float64"):
        x = pt.dvector("x")
        mu = pt.dscalar("mu")
        kappa = pt.dvector("kappa") if per_observation_kappa else pt.dscalar("kappa")
        dist = (vmp.VonMises if impl == "vm_ppl" else pm.VonMises).dist(mu, kappa, shape=(n,))
        lp = pm.logp(dist, x).sum()
        grads = pytensor.grad(lp, [mu, kappa])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # JAX: "Skipping Check{kappa > 0}"
            fn = pytensor.function([x, mu, kappa], [lp, *grads], mode=mode)
    return fn


def _time_ms(fn: Callable, args: tuple) -> float:
    t0 = time.perf_counter()
    out = fn(*args)
    np.asarray(out[-1])  # JAX: wait for the result
    return 1e3 * (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the Markdown table and return the results.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--n``, ``--reps``, ``--json``); ``sys.argv`` if None.

    Returns
    -------
    dict
        Environment, settings and ``rows``: per backend the median ms of each
        implementation and the ratio.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--json", default=None)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--per-observation-kappa",
        action="store_true",
        help="one kappa per angle (uniform on [0.1, 60]), not one shared",
    )
    args = parser.parse_args(argv)
    modes = tuple(args.modes)

    import pymc
    import pytensor

    rng = np.random.default_rng(0)
    x = np.angle(np.exp(1j * (0.5 + rng.vonmises(0.0, 4.0, size=args.n))))
    kappa = rng.uniform(0.1, 60.0, args.n) if args.per_observation_kappa else 3.5
    call_args = (x, 0.4, kappa)
    fns = {}
    compile_s = {}
    for mode in modes:
        for impl in IMPLS:
            t0 = time.perf_counter()
            fn = _compile(impl, mode, args.n, args.per_observation_kappa)
            _time_ms(fn, call_args)  # first call (JAX/NUMBA compile lazily)
            compile_s[(mode, impl)] = time.perf_counter() - t0
            fns[(mode, impl)] = fn
    # Same values from both implementations on every backend.
    for mode in modes:
        a, b = ([np.asarray(o) for o in fns[(mode, i)](*call_args)] for i in IMPLS)
        for a_out, b_out in zip(a, b, strict=True):
            np.testing.assert_allclose(a_out, b_out, rtol=1e-9)
    # Round-robin over the two implementations, one backend at a time: the backends'
    # thread pools (XLA's spin for a while after a call) would otherwise slow each other.
    times: dict = {key: [] for key in fns}
    for mode in modes:
        for _ in range(args.reps):
            for impl in IMPLS:
                times[(mode, impl)].append(_time_ms(fns[(mode, impl)], call_args))
    rows = []
    for mode in modes:
        ours, theirs = (float(np.median(times[(mode, i)])) for i in IMPLS)
        rows.append(
            {
                "backend": mode,
                "vm_ppl_ms": ours,
                "pymc_ms": theirs,
                "ratio": ours / theirs,
                "compile_s": {i: compile_s[(mode, i)] for i in IMPLS},
            }
        )
    results = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pymc": pymc.__version__,
        "pytensor": pytensor.__version__,
        "n": args.n,
        "reps": args.reps,
        "dtype": "float64",
        "per_observation_kappa": args.per_observation_kappa,
        "rows": rows,
    }
    what = "one kappa per angle" if args.per_observation_kappa else "one shared kappa"
    print(
        f"logp + dlogp(mu, kappa), n = {args.n}, {what}, float64, median of {args.reps} "
        f"(pymc {pymc.__version__}, pytensor {pytensor.__version__}, {os.cpu_count()} CPUs)\n"
    )
    print("| backend | vm_ppl.pymc.VonMises (ms) | pm.VonMises (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['vm_ppl_ms']:.3f} | {r['pymc_ms']:.3f} | {r['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
