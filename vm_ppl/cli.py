"""``vm-ppl`` command line (also ``python -m vm_ppl``).

``vm-ppl demo``
    The main job on the embedded real data: the Col de la Roa wind directions fitted with
    one von Mises and with a two-component von Mises mixture (NumPyro NUTS through
    :mod:`vm_ppl.numpyro`), compared by PSIS-LOO (elpd difference and its SE); the one
    von Mises again with PyMC + nutpie through :mod:`vm_ppl.pymc`; a circular regression
    of the Milwaukee wind direction on ozone. For every sampler fit of the wind data:
    compile time and sampling time separately, ESS and R-hat with angles on the circle
    (:mod:`vm_ppl.diagnostics`), ESS/s over sampling time. A PNG with the posterior
    predictive check of both wind models (rose diagram + predictive bands, LOO-PIT ECDF)
    and the posterior of the mean direction.
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
import sys
import time
from pathlib import Path

import numpy as np

#: ``vm-ppl bench NAME`` -> module of :mod:`vm_ppl.bench` (each has ``main(argv)``).
BENCHMARKS = {
    "core": "core",
    "numpyro-ess": "numpyro_ess",
    "ess": "ess",
    "throughput": "throughput",
}


#: Initial values of the NUTS chains (same for every chain: no label switching between
#: chains of the mixture). Mixture: a concentrated and a broad component.
ONE_INIT = {"mu": 0.3, "kappa": 2.0}
MIXTURE_INIT = {
    "w": np.array([0.6, 0.4]),
    "mu": np.array([0.2, 1.5]),
    "kappa": np.array([8.0, 0.5]),
}


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


class _JaxCompileClock:
    """Seconds JAX spends tracing, lowering and compiling, from the ``jax.monitoring``
    duration events ``/jax/core/compile/*`` (measured directly, not as a difference of two
    runs). Events nest (tracing an outer function traces the inner ones), so each event
    becomes the interval ``[end - duration, end]`` and :meth:`seconds` is the length of
    their union within a window. One listener per process, registered on first use."""

    _intervals: list[tuple[float, float]] = []
    _registered = False

    @classmethod
    def start(cls) -> float:
        """Register the listener (once); returns the start of a window."""
        if not cls._registered:
            from jax import monitoring

            def listener(event: str, duration: float, **_) -> None:
                if event.startswith("/jax/core/compile/"):
                    end = time.perf_counter()
                    cls._intervals.append((end - duration, end))

            monitoring.register_event_duration_secs_listener(listener)
            cls._registered = True
        return time.perf_counter()

    @classmethod
    def seconds(cls, t0: float, t1: float) -> float:
        """Length of the union of the compile intervals, clipped to ``[t0, t1]``."""
        total, reach = 0.0, t0
        for a, b in sorted(cls._intervals):
            a, b = max(a, reach), min(b, t1)
            if b > a:
                total += b - a
                reach = b
        return total


def _report(label: str, idata, compile_s: float, sampling_s: float, var_names, circ) -> dict:
    """Print the summary (ESS and R-hat of ``circ`` on the circle) and one timing line."""
    from . import diagnostics as vd

    table = vd.summary(idata, var_names=var_names, circ_var_names=circ, round_to=3)
    print(f"{label} (ess_bulk, ess_tail, r_hat of {', '.join(circ)} computed on the circle):")
    print(table.to_string())
    per = [
        min(
            float(vd.ess(idata, var_names=var_names, circ_var_names=circ, method=m)[v].min())
            for m in ("bulk", "tail")
        )
        for v in var_names
    ]
    min_ess = min(per)
    print(
        f"  compile {compile_s:.1f} s | sampling {sampling_s:.2f} s | min ESS (bulk, tail; "
        f"circular for angles) {min_ess:.0f} | ESS/s (sampling time) "
        f"{min_ess / sampling_s:.0f}\n"
    )
    return {
        "sampler": label,
        "compile_s": compile_s,
        "sampling_s": sampling_s,
        "min_ess": min_ess,
        "ess_per_s": min_ess / sampling_s,
    }


def _timed_twice(fit, seed: int):
    """``fit(seed)`` twice: the first call compiles (``compile_s``: JAX compile events of
    that call, :class:`_JaxCompileClock`), the second (new seed, compiled executables
    from the persistent cache of :func:`vm_ppl.bench.ess.jax_compile_cache`) is timed as
    the sampling (``sampling_s``, an upper bound: it includes NumPyro's re-tracing and the
    cache look-up). Returns ``(result of the second call, compile_s, sampling_s)``."""
    import jax

    t0 = _JaxCompileClock.start()
    jax.block_until_ready(fit(seed).get_samples())
    compile_s = _JaxCompileClock.seconds(t0, time.perf_counter())
    t0 = time.perf_counter()
    mcmc = fit(seed + 1)
    jax.block_until_ready(mcmc.get_samples())
    return mcmc, compile_s, time.perf_counter() - t0


def _fit_numpyro(label, model, y, init, num_samples, num_warmup, chains, seed=0):
    """NUTS on a NumPyro model; returns (mcmc, compile_s, sampling_s) (:func:`_timed_twice`)."""
    import jax
    from numpyro.infer import MCMC, NUTS, init_to_value

    method = "parallel" if jax.local_device_count() >= chains else "vectorized"
    _progress(
        f"{label}: NumPyro NUTS, {chains} chains ({method}), {num_warmup} warm-up + "
        f"{num_samples} draws (compile run, then timed run) ..."
    )
    mcmc = MCMC(
        NUTS(model, init_strategy=init_to_value(values=init)),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=chains,
        chain_method=method,
        progress_bar=False,
    )

    def fit(s):
        mcmc.run(jax.random.key(s), y)
        return mcmc

    return _timed_twice(fit, seed)


def _demo_pymc_nutpie(wind, num_samples: int, num_warmup: int, chains: int) -> dict:
    """Fit the (mu, kappa) wind model with PyMC + nutpie (Numba) on ``vm_ppl.pymc``;
    compilation (``nutpie.compile_pymc_model``) and sampling are timed separately."""
    import nutpie
    import pymc as pm

    from . import pymc as vmp

    with pm.Model() as model:
        mu = pm.Uniform("mu", -np.pi, np.pi, default_transform=vmp.circular)
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        vmp.VonMises("y", mu, kappa, observed=np.asarray(wind, dtype=float))
    _progress(
        "one von Mises: PyMC model with vm_ppl.pymc.VonMises, compiling for nutpie (Numba) ..."
    )
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    compile_s = time.perf_counter() - t0
    _progress(f"nutpie NUTS, {chains} chains, {num_warmup} warm-up + {num_samples} draws ...")
    t0 = time.perf_counter()
    idata = nutpie.sample(
        compiled, draws=num_samples, tune=num_warmup, chains=chains, seed=0, progress_bar=False
    )
    wall = time.perf_counter() - t0
    return _report(
        "one von Mises, PyMC + nutpie (Numba)", idata, compile_s, wall, ["mu", "kappa"], ["mu"]
    )


def _mixture_mean_direction(samples) -> np.ndarray:
    """Mean direction of each draw's mixture: arg sum_k w_k A(kappa_k) exp(i mu_k)."""
    from .bessel import bessel_ratio

    a = np.asarray(bessel_ratio(samples["kappa"]))
    z = np.sum(np.asarray(samples["w"]) * a * np.exp(1j * np.asarray(samples["mu"])), -1)
    return np.angle(z)


def demo(out: Path, num_samples: int = 500, num_warmup: int = 500, chains: int = 4) -> Path:
    """Run the demo; returns the path of the saved figure."""
    t_start = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    from .bench.ess import jax_compile_cache

    out.mkdir(parents=True, exist_ok=True)
    with jax_compile_cache():
        path = _demo_body(out, num_samples, num_warmup, chains)
    _progress(f"Saved {path} (demo took {time.perf_counter() - t_start:.0f} s)")
    return path


def _demo_body(out: Path, num_samples: int, num_warmup: int, chains: int) -> Path:
    import arviz as az
    import jax
    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    from numpyro.infer import Predictive

    from . import datasets
    from . import diagnostics as vd
    from .numpyro import fit_circular_regression

    wind = datasets.load_wind()
    y = jnp.asarray(wind)
    _progress(f"Col de la Roa wind directions: {wind.size} angles in [0, 2 pi)")
    rows, fits = [], {}
    for label, model, init in (
        ("one von Mises", von_mises_model, ONE_INIT),
        ("two-component mixture", von_mises_mixture_model, MIXTURE_INIT),
    ):
        mcmc, compile_s, sampling_s = _fit_numpyro(
            label, model, y, init, num_samples, num_warmup, chains
        )
        post = mcmc.get_samples(group_by_chain=True)
        pred = Predictive(model, post, batch_ndims=2)(jax.random.key(1), n=wind.size)
        idata = az.from_numpyro(mcmc, posterior_predictive=pred)
        names = ["mu", "kappa"] + (["w"] if "w" in post else [])
        rows.append(_report(f"{label}, NumPyro", idata, compile_s, sampling_s, names, ["mu"]))
        fits[label] = (mcmc, idata)

    _progress("LOO (PSIS) model comparison ...")
    cmp = az.compare({k: v[1] for k, v in fits.items()})
    print("LOO comparison (elpd_loo: expected log predictive density; higher is better):")
    print(cmp[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "warning"]].to_string())
    worse = cmp.index[-1]
    print(
        f"  {cmp.index[0]} is better by elpd_diff {cmp.loc[worse, 'elpd_diff']:.1f} "
        f"(SE {cmp.loc[worse, 'dse']:.1f})\n"
    )

    rows.append(_demo_pymc_nutpie(wind, num_samples, num_warmup, chains))

    milw = datasets.load_milwaukee()
    ozone = (milw["ozone"] - milw["ozone"].mean()) / milw["ozone"].std()
    method = "parallel" if jax.local_device_count() >= chains else "vectorized"
    _progress(
        f"Circular regression of Milwaukee wind direction on ozone "
        f"({milw['direction'].size} obs, tan-half link, MLE-initialised chains) ..."
    )
    t0 = time.perf_counter()
    reg = fit_circular_regression(
        ozone,
        milw["direction"],
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=chains,
        chain_method=method,
    )
    wall = time.perf_counter() - t0
    idata_reg = az.from_numpyro(reg)
    print("circular regression, NumPyro (ess_bulk, ess_tail, r_hat of mu0 on the circle):")
    table = vd.summary(idata_reg, var_names=["mu0", "beta", "kappa"], circ_var_names=["mu0"])
    print(table.to_string())
    print(
        f"  {wall:.1f} s for MLE initialisation + compilation + sampling in one call (not "
        f"split, so no ESS/s); chains agree: {not reg.multimodality['multimodal']}\n"
    )

    print(
        "Samplers (compile: JAX trace + lower + XLA compile from jax.monitoring events, or "
        "nutpie.compile_pymc_model; ESS/s over sampling time only):"
    )
    for r in rows:
        print(
            f"  {r['sampler']:<62} compile {r['compile_s']:5.1f} s  sampling "
            f"{r['sampling_s']:6.2f} s  min ESS {r['min_ess']:6.0f}  ESS/s "
            f"{r['ess_per_s']:7.0f}"
        )

    _progress("Posterior predictive checks and the figure ...")
    fig = plt.figure(figsize=(15, 9.5))
    for i, (label, (mcmc, idata)) in enumerate(fits.items()):
        ax = fig.add_subplot(2, 3, 1 + i, projection="polar")
        vd.plot_circular_ppc(idata, "y", ax=ax, title=f"{label}: data and predictive")
        if i == 0:
            ax.legend(loc="lower left", bbox_to_anchor=(-0.25, -0.22), fontsize=7)
        s = mcmc.get_samples()
        pit = vd.loo_circular_pit(
            idata,
            "y",
            np.asarray(s["mu"]),
            np.asarray(s["kappa"]),
            mix_weights=np.asarray(s["w"]) if "w" in s else None,
        )
        vd.plot_pit_ecdf(
            pit,
            ax=fig.add_subplot(2, 3, 4 + i),
            label=f"{label}: LOO-PIT, ECDF - uniform, 94 % band",
        )
    ax = fig.add_subplot(2, 3, 3, projection="polar")
    one = np.asarray(fits["one von Mises"][0].get_samples()["mu"])
    mix = _mixture_mean_direction(fits["two-component mixture"][0].get_samples())
    for vals, color, lab in (
        (one, "C0", "one von Mises: mu"),
        (mix, "C1", "mixture: mean direction"),
    ):
        h, e = np.histogram(np.mod(vals, 2 * np.pi), bins=120, range=(0, 2 * np.pi), density=True)
        ax.bar(e[:-1], h, width=e[1] - e[0], align="edge", color=color, alpha=0.6, label=lab)
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    ax.set_title("posterior of the mean direction")
    ax.legend(loc="lower left", bbox_to_anchor=(-0.1, -0.22), fontsize=7)
    ax = fig.add_subplot(2, 3, 6)
    ax.axis("off")
    ax.text(
        0,
        0.9,
        "LOO comparison (PSIS)\n"
        + "\n".join(
            f"{k}: elpd_loo {cmp.loc[k, 'elpd_loo']:.1f}, diff {cmp.loc[k, 'elpd_diff']:.1f} "
            f"(SE {cmp.loc[k, 'dse']:.1f})"
            for k in cmp.index
        ),
        va="top",
        family="monospace",
        fontsize=9,
    )
    fig.tight_layout()
    path = out / "vm_ppl_demo.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
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

    if args.command == "demo":
        from .bench._devices import request_host_devices

        request_host_devices(4)  # parallel chains: one XLA host device each
        demo(args.out, num_samples=args.samples, num_warmup=args.warmup)
    elif args.command == "bench":
        import importlib

        importlib.import_module(f"vm_ppl.bench.{BENCHMARKS[args.name]}").main(args.rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
