"""Side-by-side CPU benchmark of the vm_ppl core against NumPy and NumPyro.

Run (one process, implementations interleaved, medians)::

    vm-ppl bench core [--n 1000000] [--reps 15] [--json out.json]
    python -m vm_ppl.bench.core ...

It prints Markdown tables with the date, CPU model and cache sizes (``lscpu``) and
versions: sampler throughput for k in {0.5, 5, 50} with one shared concentration
(float32 and float64), per-element concentrations and grouped ones (shape (1000, 1)
broadcast to (1000, n/1000), the posterior-predictive shape), each against
``numpy.random.Generator.vonmises`` and ``numpyro.distributions.VonMises`` (ratios of
medians, and the interquartile range of the per-rep ratio to NumPy); the first-call
time of the sampler (trace + compile + run); ``jax.value_and_grad`` of the summed
log-density over ``n`` observations (shared concentration, per-observation loc); and
the block size of the shared-concentration stream (``--blocks``, default 4096 8192
16384): one chunk of the stream at k = 5, float32, each block size against the
default ``vm_ppl.sampling._BLOCK``, interleaved (ratio of times, median and IQR); and
the CPU batch of per-element chunks (``--batches``, log2 of the elements per step,
default 16 17 18): ``n`` draws with per-element k = 5 (float32) for each batch against
the default of ``vm_ppl.sampling._batch_elems``, interleaved.
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


def block_rows(n: int, reps: int, blocks: list[int]) -> list[dict]:
    """Time one chunk (``min(n, _CHUNK)`` draws, k = 5, float32) of the shared-k stream
    for each block size in ``blocks`` and the default ``_BLOCK``, interleaved; each row
    has the median time and the median and IQR of its per-rep ratio to the default."""
    from vm_ppl import sampling

    length = min(n, sampling._CHUNK)
    k5 = jnp.float32(5.0)
    chunk = {
        b: jax.jit(lambda key, k, b=b: sampling._stream_chunk(key, k, length, b))
        for b in sorted(set(blocks) | {sampling._BLOCK})
    }
    for f in chunk.values():
        jax.block_until_ready(f(jax.random.key(0), k5))
    rows = _race_vs_default(chunk, k5, reps, seed=2, default=sampling._BLOCK)
    return [{"block": b, "chunk": length, **r} for b, r in rows.items()]


def _race_vs_default(fns: dict, arg, reps: int, seed: int, default) -> dict:
    """Call each compiled ``fns[b](key, arg)`` ``reps`` times, interleaved, with fresh
    keys; per ``b``, :func:`_ratio_row` against ``fns[default]``."""
    t = {b: [] for b in fns}
    keys = iter(jax.random.split(jax.random.key(seed), len(fns) * reps))
    for _ in range(reps):
        for b, f in fns.items():
            t[b].append(_once_ms(f, next(keys), arg))
    return {b: _ratio_row(v, t[default]) for b, v in t.items()}


def _ratio_row(v, base) -> dict:
    ratio = np.asarray(v) / np.asarray(base)
    return {
        "ms": float(np.median(v)),
        "vs_default": float(np.median(ratio)),
        "vs_default_iqr": [float(np.percentile(ratio, 25)), float(np.percentile(ratio, 75))],
    }


def _ratio_table(title: str, head: list[str], cells: list[list[str]], rows) -> list[str]:
    """Markdown lines: ``title``, then a table of ``cells`` with a last column of each
    row's time over the default (median, IQR over reps)."""
    lines = ["", title, "", "| " + " | ".join(head) + " | time / default (IQR over reps) |"]
    lines.append("|" + "---|" * (len(head) + 1))
    for c, r in zip(cells, rows, strict=True):
        lo, hi = r["vs_default_iqr"]
        lines.append("| " + " | ".join(c) + f" | {r['vs_default']:.2f} ({lo:.2f}-{hi:.2f}) |")
    return lines


def batch_rows(n: int, reps: int, log2_batches: list[int]) -> list[dict]:
    """Time ``n`` draws with per-element concentrations (k = 5 spread over [k/2, 3k/2],
    float32) for each CPU batch of per-element chunks (``2**b`` elements per step of
    ``lax.map``) and the default, interleaved; each row has the median time and the
    median and IQR of its per-rep ratio to the default."""
    from vm_ppl import sampling

    default = sampling._batch_elems()
    batches = sorted({1 << b for b in log2_batches} | {default})
    kk = jnp.asarray(5.0 * np.random.default_rng(0).uniform(0.5, 1.5, n), jnp.float32)
    loc = jnp.float32(0.0)
    original = sampling._batch_elems
    fns = {}
    try:
        for b in batches:
            # The batch is read while tracing: trace each variant with its own value
            # (through the unjitted body, so that _sample's cache is not reused).
            sampling._batch_elems = lambda b=b: b
            f = jax.jit(lambda key, k: sampling._sample.__wrapped__(key, loc, k, (n,)))
            jax.block_until_ready(f(jax.random.key(0), kk))
            fns[b] = f
    finally:
        sampling._batch_elems = original
    rows = _race_vs_default(fns, kk, reps, seed=3, default=default)
    return [{"batch": b, **r} for b, r in rows.items()]


def main(argv: list[str] | None = None) -> dict:
    import numpyro.distributions as nd

    import vm_ppl
    from vm_ppl import sampling

    from .throughput import cpu_info, versions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", default=None)
    parser.add_argument("--blocks", type=int, nargs="*", default=[4096, 8192, 16384])
    parser.add_argument("--batches", type=int, nargs="*", default=[16, 17, 18])
    args = parser.parse_args(argv)
    n, reps = args.n, args.reps
    rng = np.random.default_rng(0)
    results: dict = {
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "n": n,
        "cpu": cpu_info(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sample": [],
    }

    # First call, compile included, on a fresh jitted function.
    t0 = time.perf_counter()
    first = jax.jit(lambda key, k: vm_ppl.sample(key, 0.0, k, shape=(n,)))
    jax.block_until_ready(first(jax.random.key(0), jnp.float32(5.0)))
    results["first_call_s"] = time.perf_counter() - t0

    # Sampling cases, each timed side by side with NumPy (and NumPyro) in this process,
    # interleaved rep by rep so that load changes hit all alike.
    g = 1000
    cases = [
        ("shared", "float32"),
        ("per-element", "float32"),
        ("grouped", "float32"),
        ("shared", "float64"),
    ]
    uni = jax.jit(lambda key: jax.random.uniform(key, (n,)))
    jax.block_until_ready(uni(jax.random.key(0)))
    for kind, dtype in cases:
        with jax.enable_x64(dtype == "float64"):
            for k in (0.5, 5.0, 50.0):
                if kind == "shared":
                    shape, k_np = (n,), np.float64(k)
                elif kind == "per-element":
                    shape, k_np = (n,), k * rng.uniform(0.5, 1.5, n)
                else:
                    shape, k_np = (g, n // g), (k * rng.uniform(0.5, 1.5, g)).reshape(g, 1)
                kk = jnp.asarray(k_np, dtype)
                vm = jax.jit(lambda key, c, shape=shape: vm_ppl.sample(key, 0.0, c, shape=shape))
                npy = jax.jit(
                    lambda key, c, shape=shape: nd.VonMises(0.0, c).expand(shape).sample(key)
                )
                jax.block_until_ready(vm(jax.random.key(0), kk))
                jax.block_until_ready(npy(jax.random.key(0), kk))
                keys = iter(jax.random.split(jax.random.key(1), 10 * reps))
                row = {"kind": kind, "dtype": dtype, "k": k}
                t = {"vm_ppl": [], "numpy": [], "numpyro": [], "uniform": []}
                for _ in range(reps):
                    t["vm_ppl"].append(_once_ms(vm, next(keys), kk))
                    t["numpy"].append(_once_ms(rng.vonmises, 0.0, k_np, shape))
                    t["numpyro"].append(_once_ms(npy, next(keys), kk))
                    if kind == "shared" and dtype == "float32":
                        t["uniform"].append(_once_ms(uni, next(keys)))
                for name, v in t.items():
                    if v:
                        row[f"{name}_ms"] = float(np.median(v))
                        row[f"{name}_iqr_ms"] = [
                            float(np.percentile(v, 25)),
                            float(np.percentile(v, 75)),
                        ]
                row["vs_numpy"] = row["numpy_ms"] / row["vm_ppl_ms"]
                row["vs_numpyro"] = row["numpyro_ms"] / row["vm_ppl_ms"]
                # the same ratio rep by rep (each rep's pair ran back to back)
                ratios = np.asarray(t["numpy"]) / np.asarray(t["vm_ppl"])
                row["vs_numpy_iqr"] = [
                    float(np.percentile(ratios, 25)),
                    float(np.percentile(ratios, 75)),
                ]
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

    results["blocks"] = block_rows(n, 3 * reps, args.blocks)
    results["batches"] = batch_rows(n, reps, args.batches)
    length = results["blocks"][0]["chunk"]

    cpu = results["cpu"]
    lines = [
        f"{results['date']}; CPU: {cpu.get('Model name', '?')}, {cpu.get('CPU(s)', '?')} CPUs, "
        f"L1d {cpu.get('L1d cache', '?')}, L2 {cpu.get('L2 cache', '?')}, "
        f"L3 {cpu.get('L3 cache', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v),
        f"device: {results['device']}, n = {n}, median of {reps} interleaved reps; grouped: "
        f"kappa of shape (1000, 1) broadcast to (1000, n/1000); per-element and grouped "
        f"kappa spread over [k/2, 3k/2]",
        "",
        f"First call of `jit(sample)` at n = {n} (trace + compile + run): "
        f"{results['first_call_s']:.2f} s",
        "",
        "| concentration | dtype | k | vm_ppl ms | numpy ms | numpyro ms | vm_ppl M draws/s "
        "| x numpy (IQR over reps) | x numpyro |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sample"]:
        lo, hi = r["vs_numpy_iqr"]
        lines.append(
            f"| {r['kind']} | {r['dtype']} | {r['k']:g} | {r['vm_ppl_ms']:.1f} | "
            f"{r['numpy_ms']:.1f} | {r['numpyro_ms']:.1f} | {n / r['vm_ppl_ms'] / 1e3:.0f} | "
            f"{r['vs_numpy']:.2f} ({lo:.2f}-{hi:.2f}) | {r['vs_numpyro']:.2f} |"
        )
    lines += [
        "",
        "| value_and_grad of sum log_prob | vm_ppl ms | numpyro ms | x numpyro |",
        "|---|---|---|---|",
        f"| n = {n}, shared k, per-obs loc | {lp['vm_ppl_ms']:.1f} | {lp['numpyro_ms']:.1f} | "
        f"{lp['vs_numpyro']:.2f} |",
    ]
    lines += _ratio_table(
        f"Block size of the shared-k stream (one chunk of {length} draws, k = 5, float32, "
        f"median of {3 * reps} interleaved reps; default {sampling._BLOCK}):",
        ["block", "ms per chunk"],
        [[str(r["block"]), f"{r['ms']:.2f}"] for r in results["blocks"]],
        results["blocks"],
    )
    lines += _ratio_table(
        f"CPU batch of per-element chunks ({n} draws, per-element k = 5, float32, median of "
        f"{reps} interleaved reps; default {sampling._batch_elems()} "
        "elements per step):",
        ["elements per step", "chunks per step", "ms"],
        [
            [str(r["batch"]), str(max(1, r["batch"] // sampling._CHUNK)), f"{r['ms']:.1f}"]
            for r in results["batches"]
        ],
        results["batches"],
    )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
