"""Cost of one logp + gradient evaluation inside nutpie's Numba backend, per implementation.

Run (one process, implementations interleaved, medians)::

    python -m vm_ppl.bench.nutpie_kernel [--n 1000 100000] [--batches 20]

For the benchmark circular regression of :mod:`vm_ppl.bench.ess` (tan-half link), it
builds the function nutpie samples with (``nutpie.compile_pymc._make_functions`` with
``mode="NUMBA"``, its ``vm.jit_fn``: no Python call overhead) for ``vm_ppl`` and for
``pm.VonMises``, then times batches of calls round-robin. The ``vm_ppl`` function is
built twice: as shipped, and with the rewrite that removes the link's per-observation
``arctan`` (:func:`vm_ppl.pymc.rewrites.local_tan_half_angle_atan_link`) excluded from the
``NUMBA`` mode, which isolates what that rewrite buys.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from .ess import _pymc_model, simulate

VARIANTS = ("vm_ppl", "vm_ppl without arctan rewrite", "pm.VonMises")
_EXCLUDE = "vonmises_tan_half_link_numba"


def _jit_fn(variant: str, n_obs: int):
    import pytensor
    from nutpie.compile_pymc import _make_functions
    from pymc.model.transform.optimization import freeze_dims_and_data

    impl = "builtin" if variant == "pm.VonMises" else "vm_ppl"
    model = freeze_dims_and_data(_pymc_model(simulate(n_obs, impl)))
    modes = pytensor.compile.mode.predefined_modes
    numba_mode = modes["NUMBA"]
    if variant.endswith("rewrite"):
        # nutpie asks for mode="NUMBA" by name; swap in the same mode minus the rewrite
        # for this one compilation (PyTensor's optimizer_excluding flag is read-only).
        modes["NUMBA"] = numba_mode.excluding(_EXCLUDE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logp_fn = _make_functions(
                model,
                mode="NUMBA",
                compute_grad=True,
                join_expanded=True,
                pymc_initial_point_fn=lambda seed: None,
            )[2]
    finally:
        modes["NUMBA"] = numba_mode
    return logp_fn.vm.jit_fn


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print a Markdown table and return its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args(argv)
    # Unconstrained point (mu0_circular__, beta, kappa_log__) near the truth.
    point = np.array([1.0, 0.8, np.log(5.0)])
    rows = []
    for n in args.n:
        fns = {v: _jit_fn(v, n) for v in VARIANTS}
        outs = {v: fn(point) for v, fn in fns.items()}
        for v in VARIANTS[1:]:  # the same log-density and gradient
            for a, b in zip(outs[v], outs[VARIANTS[0]], strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-9)
        calls = max(1, 2_000_000 // n)
        times: dict = {v: [] for v in VARIANTS}
        for _ in range(args.batches):
            for v, fn in fns.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn(point)
                times[v].append(1e6 * (time.perf_counter() - t0) / calls)
        for v in VARIANTS:
            rows.append({"n_obs": n, "variant": v, "us": float(np.median(times[v]))})
    print(
        f"nutpie Numba logp + gradient, tan-half regression, median of {args.batches} "
        f"batches ({os.cpu_count()} CPUs)\n"
    )
    print("| n_obs | implementation | us per evaluation | ratio to pm.VonMises |")
    print("|---|---|---:|---:|")
    for r in rows:
        ref = next(
            q["us"] for q in rows if q["n_obs"] == r["n_obs"] and q["variant"] == "pm.VonMises"
        )
        print(f"| {r['n_obs']} | {r['variant']} | {r['us']:.1f} | {r['us'] / ref:.2f} |")
    return rows


if __name__ == "__main__":
    main()
