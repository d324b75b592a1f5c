"""Cost of von Mises draws on PyMC's default backend: vm_ppl's exact kernel against NumPy.

Run (one process, the two samplers interleaved, medians)::

    python -m vm_ppl.bench.pymc_draws [--n 1000000] [--reps 7] [--kappas 0.5 5 50]

Times ``n`` draws per call of :func:`vm_ppl.pymc.random.vonmises_draws` (what
``pm.draw(vm_ppl.pymc.VonMises.dist(...))`` runs on the default and NUMBA backends: the
core's Best-Fisher proposal compiled by Numba, exact for every kappa) and of NumPy's
``Generator.vonmises`` (approximate above kappa = 1e6), round-robin, and prints a Markdown
table of median milliseconds (min-max) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the Markdown table and return its rows.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--n``, ``--reps``, ``--kappas``); ``sys.argv`` if None.

    Returns
    -------
    list of dict
        Per kappa: median ms of each sampler, the spread (min, max) and the ratio.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--kappas", type=float, nargs="+", default=[0.5, 5.0, 50.0])
    args = parser.parse_args(argv)

    from vm_ppl.pymc.random import vonmises_draws

    samplers = {
        "vm_ppl (Numba kernel)": lambda rng, k: vonmises_draws(rng, 0.0, k, (args.n,)),
        "NumPy Generator.vonmises": lambda rng, k: rng.vonmises(0.0, k, size=args.n),
    }
    rng = np.random.default_rng(0)
    vonmises_draws(rng, 0.0, 1.0, (10,))  # compile (or load Numba's cache) first
    rows = []
    for kappa in args.kappas:
        times: dict[str, list[float]] = {name: [] for name in samplers}
        for _ in range(args.reps):
            for name, draw in samplers.items():
                t0 = time.perf_counter()
                draw(rng, kappa)
                times[name].append(1e3 * (time.perf_counter() - t0))
        med = {name: float(np.median(t)) for name, t in times.items()}
        ours, numpy_ = med.values()
        rows.append(
            {
                "kappa": kappa,
                "median_ms": med,
                "range_ms": {n: (min(t), max(t)) for n, t in times.items()},
                "ratio": ours / numpy_,
            }
        )
    print(
        f"{args.n} draws per call, median of {args.reps} interleaved calls "
        f"(numpy {np.__version__}, {platform.processor() or platform.machine()})\n"
    )
    names = list(samplers)
    print(f"| kappa | {names[0]} (ms) | {names[1]} (ms) | ratio |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        a, b = (
            f"{r['median_ms'][n]:.1f} ({r['range_ms'][n][0]:.1f}-{r['range_ms'][n][1]:.1f})"
            for n in names
        )
        print(f"| {r['kappa']:g} | {a} | {b} | {r['ratio']:.2f} |")
    return rows


if __name__ == "__main__":
    main()
