"""NUTS ESS per second on a circular regression: ``vm_ppl.numpyro.VonMises`` against
``numpyro.distributions.VonMises`` + ``CircularReparam``.

Run (one process, same data, seeds and settings for both; 4 chains)::

    vm-ppl bench numpyro-ess [--n 1000 100000] [--samples 500] [--warmup 500]
                             [--repeats 3]
    python -m vm_ppl.bench.numpyro_ess ...

Each configuration runs once to compile, then ``--repeats`` times (new seeds, the two
implementations interleaved) on one ``MCMC`` object that reuses the compiled sampler;
``compile_s`` is the first run's wall time minus the median of the others, and
``ess_per_s`` is the median over the timed runs of the minimum bulk/tail ESS over
parameters (ArviZ) divided by that run's wall time. Prints a Markdown table; ``--json``
saves the records.
"""

from __future__ import annotations

import argparse
import json
import time

from ._devices import request_host_devices


def _models():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd
    from numpyro import handlers
    from numpyro.infer.reparam import CircularReparam

    from vm_ppl.numpyro import CircularUniform
    from vm_ppl.numpyro.regression import TanHalfVonMises

    def ours(x, y):
        mu0 = numpyro.sample("mu0", CircularUniform())
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", x.shape[0]):
            # The fused link-density kernel, as vm_ppl.numpyro.circular_regression_model.
            numpyro.sample("y", TanHalfVonMises(mu0, beta * x, kappa), obs=y)

    def builtin(x, y):
        # Nearly uniform circular prior (the built-in needs k > 0) + CircularReparam.
        mu0 = numpyro.sample("mu0", nd.VonMises(0.0, 1e-4))
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", x.shape[0]):
            numpyro.sample("y", nd.VonMises(mu0 + 2 * jnp.arctan(beta * x), kappa), obs=y)

    return {
        "vm_ppl": ours,
        "builtin+CircularReparam": handlers.reparam(builtin, config={"mu0": CircularReparam()}),
    }


def prepare(n_obs: int, name: str, model, num_warmup: int, num_samples: int, seed: int = 0):
    """Simulated tan-half regression data (mu0 = 1, beta = 0.8, kappa = 5) and an
    ``MCMC`` object started at the true values; returns ``(mcmc, x, y)``."""
    import jax
    import numpy as np
    from numpyro.infer import MCMC, NUTS, init_to_value

    import vm_ppl

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_obs).astype(np.float32)
    y = np.asarray(vm_ppl.sample(jax.random.key(seed), 1.0 + 2 * np.arctan(0.8 * x), 5.0))
    first = "mu0" if name == "vm_ppl" else "mu0_unwrapped"
    init = {first: 1.0, "beta": 0.8, "kappa": 5.0}
    mcmc = MCMC(
        NUTS(model, init_strategy=init_to_value(values=init)),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=4,
        chain_method="parallel",
        progress_bar=False,
        jit_model_args=True,
    )
    return mcmc, x, y


def run_once(mcmc, x, y, seed: int) -> dict:
    """One timed ``mcmc.run`` (the compiled sampler is reused after the first) and its
    diagnostics: minimum bulk/tail ESS over parameters (ArviZ; mu0 on the circle),
    divergences, R-hat."""
    import arviz as az
    import jax
    import numpy as np

    from vm_ppl import diagnostics as vd

    t0, c0 = time.perf_counter(), time.process_time()
    mcmc.run(jax.random.key(seed), x, y)
    jax.block_until_ready(mcmc.get_samples())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    idata = az.from_numpyro(mcmc)
    names = ["mu0", "beta", "kappa"]
    # mu0 is an angle: ESS and R-hat on the circle (vm_ppl.diagnostics).
    bulk = vd.ess(idata, var_names=names, circ_var_names=["mu0"], method="bulk")
    tail = vd.ess(idata, var_names=names, circ_var_names=["mu0"], method="tail")
    min_ess = float(min(min(float(bulk[v]), float(tail[v])) for v in names))
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "min_ess": min_ess,
        "ess_per_s": min_ess / wall,
        "divergences": int(np.sum(mcmc.get_extra_fields()["diverging"])),
        "r_hat_max": float(
            vd.rhat(idata, var_names=names, circ_var_names=["mu0"]).to_array().max()
        ),
        "beta_mean": float(np.mean(mcmc.get_samples()["beta"])),
    }


def run(n_obs: int, models: dict, num_warmup: int, num_samples: int, repeats: int) -> list:
    """Both implementations on the same data: a first (compiling) run each, then
    ``repeats`` timed runs with new seeds, interleaved so that load changes on a shared
    machine hit both alike. Records hold medians over the timed runs."""
    import numpy as np

    setups = {name: prepare(n_obs, name, m, num_warmup, num_samples) for name, m in models.items()}
    first = {name: run_once(*setup, seed=1) for name, setup in setups.items()}
    runs = {name: [] for name in setups}
    for r in range(repeats):
        for name, setup in setups.items():
            runs[name].append(run_once(*setup, seed=2 + r))
    records = []
    for name, rs in runs.items():
        rec = {
            "implementation": name,
            "n_obs": n_obs,
            "sampler": "numpyro-nuts",
            "chains": 4,
            "repeats": repeats,
        }
        for key in ("wall_s", "cpu_s", "min_ess", "ess_per_s", "r_hat_max", "beta_mean"):
            rec[key] = float(np.median([x[key] for x in rs]))
        rec["divergences"] = int(sum(x["divergences"] for x in rs))
        rec["compile_s"] = first[name]["wall_s"] - rec["wall_s"]
        rec["ess_per_s_runs"] = [x["ess_per_s"] for x in rs]
        records.append(rec)
    return records


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    request_host_devices(4)  # 4 parallel chains: one XLA host device each
    import jax

    records = []
    for n_obs in args.n:
        for rec in run(n_obs, _models(), args.warmup, args.samples, args.repeats):
            records.append(rec)
            print(rec, flush=True)
    lines = [
        f"device: {jax.devices()[0]} x{jax.local_device_count()}, float32, 4 chains "
        f"(parallel), {args.warmup} warm-up + {args.samples} draws each; medians of "
        f"{args.repeats} timed runs per implementation, interleaved",
        "",
        "| n_obs | implementation | wall s | compile s | min ESS (circular mu0) "
        "| ESS/s (median) | ESS/s per run | divergences | max R-hat (circular mu0) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        per_run = ", ".join(f"{v:.0f}" for v in r["ess_per_s_runs"])
        lines.append(
            f"| {r['n_obs']} | {r['implementation']} | {r['wall_s']:.1f} | "
            f"{r['compile_s']:.1f} | {r['min_ess']:.0f} | {r['ess_per_s']:.1f} | "
            f"{per_run} | {r['divergences']} | {r['r_hat_max']:.3f} |"
        )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=2)
    return records


if __name__ == "__main__":
    main()
