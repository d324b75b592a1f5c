"""NUTS ESS per second on a circular regression: ``vm_ppl.numpyro.VonMises`` against
``numpyro.distributions.VonMises`` + ``CircularReparam``.

Run (one process, same data, seeds and settings for both; 4 chains)::

    vm-ppl bench numpyro-ess [--n 1000 100000] [--samples 500] [--warmup 500]
    python -m vm_ppl.bench.numpyro_ess ...

Each configuration runs twice on one ``MCMC`` object (the second run reuses the compiled
sampler); ``compile_s`` is the first run's wall time minus the second's, and
``ess_per_s`` is the minimum bulk/tail ESS over parameters (ArviZ) divided by the
second run's wall time. Prints a Markdown table; ``--json`` saves the records.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")


def _models():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd
    from numpyro import handlers
    from numpyro.infer.reparam import CircularReparam

    from vm_ppl.numpyro import CircularUniform, VonMises

    def ours(x, y):
        mu0 = numpyro.sample("mu0", CircularUniform())
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", x.shape[0]):
            numpyro.sample("y", VonMises(mu0 + 2 * jnp.arctan(beta * x), kappa), obs=y)

    def builtin(x, y):
        # Nearly uniform circular prior (the built-in needs k > 0) + CircularReparam.
        mu0 = numpyro.sample("mu0", nd.VonMises(0.0, 1e-4))
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", x.shape[0]):
            numpyro.sample("y", nd.VonMises(mu0 + 2 * jnp.arctan(beta * x), kappa), obs=y)

    return {"vm_ppl": ours,
            "builtin+CircularReparam": handlers.reparam(builtin,
                                                        config={"mu0": CircularReparam()})}


def run(n_obs: int, name: str, model, num_warmup: int, num_samples: int, seed: int = 0):
    import arviz as az
    import jax
    import numpy as np
    from numpyro.infer import MCMC, NUTS, init_to_value

    import vm_ppl

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_obs).astype(np.float32)
    y = np.asarray(vm_ppl.sample(jax.random.key(seed), 1.0 + 2 * np.arctan(0.8 * x), 5.0))
    init = {"mu0": 1.0, "beta": 0.8, "kappa": 5.0}
    if name != "vm_ppl":
        init = {"mu0_unwrapped": 1.0, "beta": 0.8, "kappa": 5.0}
    rec = {"implementation": name, "n_obs": n_obs, "sampler": "numpyro-nuts", "chains": 4}
    walls = []
    mcmc = MCMC(NUTS(model, init_strategy=init_to_value(values=init)),
                num_warmup=num_warmup, num_samples=num_samples, num_chains=4,
                chain_method="parallel", progress_bar=False, jit_model_args=True)
    for rep in range(2):
        # Same MCMC object: the second run reuses the compiled sampler.
        t0, c0 = time.perf_counter(), time.process_time()
        mcmc.run(jax.random.key(seed + 1 + rep), x, y)
        jax.block_until_ready(mcmc.get_samples())
        walls.append(time.perf_counter() - t0)
        rec["cpu_s"] = time.process_time() - c0
    idata = az.from_numpyro(mcmc)
    names = ["mu0", "beta", "kappa"]
    bulk = az.ess(idata, var_names=names, method="bulk")
    tail = az.ess(idata, var_names=names, method="tail")
    rec["min_ess"] = float(min(min(float(bulk[v]), float(tail[v])) for v in names))
    rec["wall_s"] = walls[1]
    rec["compile_s"] = walls[0] - walls[1]
    rec["ess_per_s"] = rec["min_ess"] / walls[1]
    rec["divergences"] = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    rec["r_hat_max"] = float(az.rhat(idata, var_names=names).to_array().max())
    post = mcmc.get_samples()
    rec["beta_mean"] = float(np.mean(post["beta"]))
    return rec


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import jax

    records = []
    for n_obs in args.n:
        for name, model in _models().items():
            rec = run(n_obs, name, model, args.warmup, args.samples)
            records.append(rec)
            print(rec, flush=True)
    lines = [f"device: {jax.devices()[0]} x{jax.local_device_count()}, float32, 4 chains "
             f"(parallel), {args.warmup} warm-up + {args.samples} draws each",
             "",
             "| n_obs | implementation | wall s (2nd run) | compile s | min ESS | ESS/s "
             "| divergences | max R-hat |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['n_obs']} | {r['implementation']} | {r['wall_s']:.1f} | "
                     f"{r['compile_s']:.1f} | {r['min_ess']:.0f} | {r['ess_per_s']:.1f} | "
                     f"{r['divergences']} | {r['r_hat_max']:.3f} |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=2)
    return records


if __name__ == "__main__":
    main()
