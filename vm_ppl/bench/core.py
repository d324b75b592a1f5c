"""Side-by-side CPU benchmark of the vm_ppl core against NumPy and NumPyro.

Run (one process, implementations interleaved, medians)::

    vm-ppl bench core [--n 1000000] [--reps 15] [--json out.json]
    python -m vm_ppl.bench.core ...

It prints a Markdown table: sampler throughput (float32) for k in {0.5, 5, 50}, the
first-call time of the sampler (trace + compile + run), and ``jax.value_and_grad`` of
the summed log-density over ``n`` observations (shared concentration, per-observation
loc), each with the ratio to NumPy / NumPyro.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def _once_ms(fn, *args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return 1e3 * (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    import numpyro.distributions as nd

    import vm_ppl

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    n, reps = args.n, args.reps
    rng = np.random.default_rng(0)
    results: dict = {
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "n": n,
        "dtype": "float32",
        "sample": [],
    }

    # First call, compile included, on a fresh jitted function.
    t0 = time.perf_counter()
    first = jax.jit(lambda key, k: vm_ppl.sample(key, 0.0, k, shape=(n,)))
    jax.block_until_ready(first(jax.random.key(0), jnp.float32(5.0)))
    results["first_call_s"] = time.perf_counter() - t0

    vm = first
    npy = jax.jit(lambda key, k: nd.VonMises(0.0, k).sample(key, (n,)))
    uni = jax.jit(lambda key: jax.random.uniform(key, (n,)))
    jax.block_until_ready(npy(jax.random.key(0), jnp.float32(5.0)))
    jax.block_until_ready(uni(jax.random.key(0)))
    for k in (0.5, 5.0, 50.0):
        kk = jnp.float32(k)
        keys = iter(jax.random.split(jax.random.key(1), 10 * reps))
        row = {"k": k}
        # Interleave the implementations rep by rep so load changes hit all alike.
        t = {"vm_ppl": [], "numpy": [], "numpyro": [], "uniform": []}
        for _ in range(reps):
            t["vm_ppl"].append(_once_ms(vm, next(keys), kk))
            t["numpy"].append(_once_ms(rng.vonmises, 0.0, k, n))
            t["numpyro"].append(_once_ms(npy, next(keys), kk))
            t["uniform"].append(_once_ms(uni, next(keys)))
        for name, v in t.items():
            row[f"{name}_ms"] = float(np.median(v))
        row["vs_numpy"] = row["numpy_ms"] / row["vm_ppl_ms"]
        row["vs_numpyro"] = row["numpyro_ms"] / row["vm_ppl_ms"]
        results["sample"].append(row)

    # value_and_grad of the summed log-density: shared k, per-observation loc.
    x = jnp.asarray(rng.vonmises(0.3, 4.0, n), jnp.float32)
    loc = jnp.asarray(rng.uniform(-np.pi, np.pi, n), jnp.float32)

    def vm_loss(loc, k):
        return jnp.sum(vm_ppl.log_prob(x, loc, k))

    def npy_loss(loc, k):
        return jnp.sum(nd.VonMises(loc, k).log_prob(x))

    vg_vm = jax.jit(jax.value_and_grad(vm_loss, argnums=(0, 1)))
    vg_np = jax.jit(jax.value_and_grad(npy_loss, argnums=(0, 1)))
    k0 = jnp.float32(4.0)
    jax.block_until_ready(vg_vm(loc, k0))
    jax.block_until_ready(vg_np(loc, k0))
    t = {"vm_ppl": [], "numpyro": []}
    for _ in range(reps):
        t["vm_ppl"].append(_once_ms(vg_vm, loc, k0))
        t["numpyro"].append(_once_ms(vg_np, loc, k0))
    lp = {f"{name}_ms": float(np.median(v)) for name, v in t.items()}
    lp["vs_numpyro"] = lp["numpyro_ms"] / lp["vm_ppl_ms"]
    results["value_and_grad"] = lp

    lines = [
        f"device: {results['device']}, {results['cpus']} CPUs, n = {n}, float32, "
        f"median of {reps} interleaved reps",
        "",
        f"First call of `jit(sample)` at n = {n} (trace + compile + run): "
        f"{results['first_call_s']:.2f} s",
        "",
        "| k | vm_ppl ms | numpy ms | numpyro ms | jax uniform ms | vm_ppl M draws/s "
        "| x numpy | x numpyro |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sample"]:
        lines.append(
            f"| {r['k']:g} | {r['vm_ppl_ms']:.1f} | {r['numpy_ms']:.1f} | "
            f"{r['numpyro_ms']:.1f} | {r['uniform_ms']:.1f} | {n / r['vm_ppl_ms'] / 1e3:.0f} | "
            f"{r['vs_numpy']:.2f} | {r['vs_numpyro']:.2f} |"
        )
    lines += [
        "",
        "| value_and_grad of sum log_prob | vm_ppl ms | numpyro ms | x numpyro |",
        "|---|---|---|---|",
        f"| n = {n}, shared k, per-obs loc | {lp['vm_ppl_ms']:.1f} | {lp['numpyro_ms']:.1f} | "
        f"{lp['vs_numpyro']:.2f} |",
    ]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
