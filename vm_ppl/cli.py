"""``vm-ppl`` command line (also ``python -m vm_ppl``).

``vm-ppl demo``
    The main job on the embedded real data: a (mu, kappa) model of the Col de la Roa wind
    directions and a circular regression of the Milwaukee wind direction on ozone, fitted
    with NumPyro NUTS through :mod:`vm_ppl.numpyro`, and the wind model again with PyMC +
    nutpie through :mod:`vm_ppl.pymc`; ArviZ summaries with circular
    statistics and ESS per second; a PNG with a rose diagram of the data and posterior
    predictive and the posterior of the mean direction.
``vm-ppl bench core``
    The core kernel against NumPy and NumPyro (see :mod:`vm_ppl.bench.core`).
``vm-ppl bench numpyro-ess``
    NUTS ESS/s, vm_ppl vs the built-in + CircularReparam (:mod:`vm_ppl.bench.numpyro_ess`).
``vm-ppl bench ess [--quick] [--out DIR]``
    Every sampler (PyMC, nutpie, NumPyro, BlackJAX) x implementation (vm_ppl, built-in)
    on a circular regression; ``DIR/ess.json``, ``ess.md``, ``ess.png``
    (:mod:`vm_ppl.bench.ess`).
``vm-ppl bench throughput [--quick] [--out DIR]``
    Draws/s and log-density(+gradient) evaluations/s over N and kappa against NumPy,
    SciPy, NumPyro and ``pm.VonMises`` per PyTensor backend (:mod:`vm_ppl.bench.throughput`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

#: ``vm-ppl bench NAME`` -> module of :mod:`vm_ppl.bench` (each has ``main(argv)``).
BENCHMARKS = {"core": "core", "numpyro-ess": "numpyro_ess", "ess": "ess",
              "throughput": "throughput"}


#: Initial values of the NUTS chains (same for every chain: no label switching between
#: chains of the mixture). Mixture: a concentrated and a broad component.
ONE_INIT = {"mu": 0.3, "kappa": 2.0}
MIXTURE_INIT = {"w": np.array([0.6, 0.4]), "mu": np.array([0.2, 1.5]),
                "kappa": np.array([8.0, 0.5])}


def von_mises_model(y=None, n: int | None = None) -> None:
    """NumPyro model: ``y ~ VonMises(mu, kappa)``, ``mu ~ U(circle)``, ``kappa ~ Gamma(2,
    0.2)``; ``y`` may be ``None`` with ``n`` given (prior / posterior predictive)."""
    import numpyro
    import numpyro.distributions as nd

    from .numpyro import CircularUniform, VonMises

    mu = numpyro.sample("mu", CircularUniform())
    kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
    with numpyro.plate("obs", n if y is None else y.shape[0]):
        numpyro.sample("y", VonMises(mu, kappa), obs=y)


def von_mises_mixture_model(y=None, n: int | None = None) -> None:
    """NumPyro model: two-component von Mises mixture (``MixtureSameFamily`` of
    :class:`vm_ppl.numpyro.VonMises`), ``w ~ Dirichlet(2, 2)``, ``mu_k ~ U(circle)``,
    ``kappa_k ~ Gamma(2, 0.2)``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    from .numpyro import CircularUniform, VonMises

    w = numpyro.sample("w", nd.Dirichlet(jnp.full(2, 2.0)))
    mu = numpyro.sample("mu", CircularUniform((2,)).to_event(1))
    kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2).expand([2]).to_event(1))
    mix = nd.MixtureSameFamily(nd.Categorical(probs=w), VonMises(mu, kappa))
    with numpyro.plate("obs", n if y is None else y.shape[0]):
        numpyro.sample("y", mix, obs=y)


def _progress(msg: str) -> None:
    print(f"[vm-ppl {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _ess_per_second(idata, wall: float) -> tuple[float, float]:
    import arviz as az

    ess = az.ess(idata, method="bulk")
    min_ess = min(float(ess[v].min()) for v in ess.data_vars)
    return min_ess, min_ess / wall


def _demo_pymc_nutpie(wind, num_samples: int, num_warmup: int, chains: int) -> None:
    """Fit the (mu, kappa) wind model with PyMC + nutpie (Numba) on ``vm_ppl.pymc``.

    Prints the ArviZ summary (``mu`` as a circular variable) and the ESS per second of the
    sampling (the nutpie compilation is timed separately).
    """
    import arviz as az
    import numpy as np
    import nutpie
    import pymc as pm

    from . import pymc as vmp

    with pm.Model() as model:
        mu = pm.Uniform("mu", -np.pi, np.pi, default_transform=vmp.circular)
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        vmp.VonMises("y", mu, kappa, observed=np.asarray(wind, dtype=float))
    _progress("PyMC model with vm_ppl.pymc.VonMises: compiling for nutpie (Numba) ...")
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    compile_s = time.perf_counter() - t0
    _progress(f"nutpie NUTS, {chains} chains, {num_warmup} warm-up + {num_samples} draws ...")
    t0 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=num_samples, tune=num_warmup, chains=chains,
                          seed=0, progress_bar=False)
    wall = time.perf_counter() - t0
    print(az.summary(idata, var_names=["mu", "kappa"], circ_var_names=["mu"]).to_string())
    min_ess, ess_s = _ess_per_second(idata, wall)
    print(f"compile {compile_s:.1f} s, sampling wall {wall:.2f} s, min bulk ESS "
          f"{min_ess:.0f}, ESS/s {ess_s:.0f}\n")


def demo(out: Path, num_samples: int = 500, num_warmup: int = 500, chains: int = 4) -> Path:
    """Run the demo; returns the path of the saved figure."""
    import arviz as az
    import jax
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import numpyro
    import numpyro.distributions as nd
    from numpyro.infer import MCMC, NUTS, Predictive

    from . import datasets
    from .numpyro import CircularUniform, VonMises, fit_circular_regression

    out.mkdir(parents=True, exist_ok=True)
    wind = datasets.load_wind()
    _progress(f"Col de la Roa wind directions: {wind.size} angles in [0, 2 pi)")

    def wind_model(y=None):
        mu = numpyro.sample("mu", CircularUniform())
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", wind.size):
            numpyro.sample("y", VonMises(mu, kappa), obs=y)

    method = "parallel" if jax.local_device_count() >= chains else "vectorized"
    _progress(f"NUTS (NumPyro, vm_ppl.numpyro.VonMises), {chains} chains ({method}), "
              f"{num_warmup} warm-up + {num_samples} draws ...")
    mcmc = MCMC(NUTS(wind_model), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=chains, chain_method=method, progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.key(0), jnp.asarray(wind))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0
    idata = az.from_numpyro(mcmc)
    print(az.summary(idata, var_names=["mu", "kappa"], circ_var_names=["mu"]).to_string())
    min_ess, ess_s = _ess_per_second(idata, wall)
    print(f"wall {wall:.1f} s (compile included), min bulk ESS {min_ess:.0f}, "
          f"ESS/s {ess_s:.0f}\n")

    _demo_pymc_nutpie(wind, num_samples, num_warmup, chains)

    _progress("Posterior predictive of the wind directions ...")
    post = mcmc.get_samples()
    pred = Predictive(wind_model, post)(jax.random.key(1))["y"]

    milw = datasets.load_milwaukee()
    ozone = (milw["ozone"] - milw["ozone"].mean()) / milw["ozone"].std()
    _progress(f"Circular regression of Milwaukee wind direction on ozone "
              f"({milw['direction'].size} obs, tan-half link, MLE-initialised chains) ...")
    t0 = time.perf_counter()
    reg = fit_circular_regression(ozone, milw["direction"], num_warmup=num_warmup,
                                  num_samples=num_samples, num_chains=chains,
                                  chain_method=method)
    wall_reg = time.perf_counter() - t0
    idata_reg = az.from_numpyro(reg)
    print(az.summary(idata_reg, var_names=["mu0", "beta", "kappa"],
                     circ_var_names=["mu0"]).to_string())
    min_ess, ess_s = _ess_per_second(idata_reg, wall_reg)
    print(f"wall {wall_reg:.1f} s, min bulk ESS {min_ess:.0f}, ESS/s {ess_s:.0f}; "
          f"chains agree: {not reg.multimodality['multimodal']}\n")

    _progress("Drawing the figure ...")
    fig = plt.figure(figsize=(11, 5))
    ax = fig.add_subplot(1, 2, 1, projection="polar")
    bins = np.linspace(0, 2 * np.pi, 37)
    counts, _ = np.histogram(np.mod(wind, 2 * np.pi), bins)
    width = bins[1] - bins[0]
    ax.bar(bins[:-1], counts / counts.sum() / width, width=width, align="edge",
           alpha=0.5, edgecolor="k", label="data")
    pp, _ = np.histogram(np.mod(np.asarray(pred).ravel(), 2 * np.pi), bins, density=True)
    ax.plot(np.append(bins[:-1] + width / 2, bins[0] + width / 2), np.append(pp, pp[0]),
            color="C3", lw=2, label="posterior predictive")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    ax.set_title("Col de la Roa wind directions (density)")
    ax.legend(loc="lower left", bbox_to_anchor=(-0.1, -0.15))
    ax2 = fig.add_subplot(1, 2, 2, projection="polar")
    mu = np.mod(np.asarray(post["mu"]), 2 * np.pi)
    h, e = np.histogram(mu, bins=72, range=(0, 2 * np.pi), density=True)
    ax2.bar(e[:-1], h, width=e[1] - e[0], align="edge", color="C0")
    ax2.set_theta_zero_location("N")
    ax2.set_theta_direction(-1)
    ax2.set_title("posterior of the mean direction mu")
    fig.tight_layout()
    path = out / "vm_ppl_demo.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _progress(f"Saved {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vm-ppl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="fit circular models to the embedded wind data")
    p_demo.add_argument("--out", type=Path, default=Path("."), help="folder for the PNG")
    p_demo.add_argument("--samples", type=int, default=500)
    p_demo.add_argument("--warmup", type=int, default=500)
    p_bench = sub.add_parser("bench", help="benchmarks")
    p_bench.add_argument("name", choices=list(BENCHMARKS))
    p_bench.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    # Parallel chains need one XLA host device per chain; set before JAX starts.
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    if args.command == "demo":
        demo(args.out, num_samples=args.samples, num_warmup=args.warmup)
    elif args.command == "bench":
        import importlib

        importlib.import_module(f"vm_ppl.bench.{BENCHMARKS[args.name]}").main(args.rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
