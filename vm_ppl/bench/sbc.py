r"""Simulation-based calibration (Talts et al. 2018) of the group-effects circular regression.

``python -m vm_ppl.bench.sbc [--datasets 100] [--link tan_half|identity] [--chains C]
[--out DIR]`` (not part of the test suite).

For each of ``--datasets`` data sets: draw every parameter from the prior of
:func:`vm_ppl.numpyro.circular_regression_model` (``--link``, tan-half by default; two
predictors for the mean direction, one for :math:`\log\kappa`, random intercepts on both,
``group_kappa=True``; a fixed design: ``X``, ``Z`` standard normal, ``groups`` cycling
through ``0 .. G-1``),
simulate ``y``, fit it with NUTS started as :func:`vm_ppl.numpyro.fit_circular_regression`
starts it (``init="mle"``: the population-level parameters at the multi-start maximum
likelihood estimate :func:`vm_ppl.regression.mle_init`, the group-level ones uniform in
(-2, 2) on the unconstrained scale; dense mass matrix) with ``--chains`` chains per data
set (all data sets and chains vectorised into one compiled program with ``jax.vmap`` over
NumPyro's functional ``hmc`` kernel, each chain with its own step size and mass matrix;
``--init prior`` starts every site uniform in (-2, 2) instead, NumPyro's default) and
record the rank of the true value of every scalar quantity among ``L`` posterior draws,
the chains' draws pooled and thinned by ``--thin``. With several chains the report also
gives, per quantity, the number of data sets whose R-hat exceeds 1.01. If the sampler
computes the posterior correctly the ranks are uniform on ``0 .. L`` (Talts et al.,
theorem 1). The quantities are fixed functions of the parameters (the theorem needs
that): ``mu0`` as a number in :math:`[-\pi, \pi)`, :math:`\cos\mu_0`, ``beta[0]``,
``beta[1]``, ``gamma0``, ``gamma[0]``, ``sigma_mu``, ``sigma_kappa``, the first group's
intercept of the mean direction (``u_mu[0]``; with the identity link the angle
``a_mu[0]`` in :math:`[-\pi, \pi)`, see :mod:`vm_ppl.regression`) and ``u_kappa[0]``.

Uniformity is tested per quantity with a chi-square test on ``--bins`` equal bins of the
ranks and a Kolmogorov-Smirnov test of the ranks jittered to :math:`(r + U)/(L + 1)`; the
report lists both p-values, the share of divergent transitions, the bulk ESS of the
draws before thinning, and a rank-histogram figure with the 99 % band of a bin count
under uniformity (Binomial(N, 1/bins), no multiplicity correction).

References
----------
.. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018).
   Validating Bayesian inference algorithms with simulation-based calibration.
   arXiv:1804.06788.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from pathlib import Path

import numpy as np

from vm_ppl.regression import GROUP_MU_SITE

__all__ = [
    "CIRCULAR",
    "QUANTITIES",
    "main",
    "quantities",
    "rank_statistics",
    "run_sbc",
    "uniformity",
]

#: The ranked quantities per link (the group intercept's site: GROUP_MU_SITE).
QUANTITIES = {
    link: (
        "mu0",
        "cos_mu0",
        "beta[0]",
        "beta[1]",
        "gamma0",
        "gamma[0]",
        "sigma_mu",
        "sigma_kappa",
        f"{site}[0]",
        "u_kappa[0]",
    )
    for link, site in GROUP_MU_SITE.items()
}
#: Angles: their ESS and R-hat are computed on the circle.
CIRCULAR = ("mu0", f"{GROUP_MU_SITE['identity']}[0]")


def quantities(sites: dict) -> dict:
    """The ranked scalar quantities from sites with any leading batch axes."""
    mu_site = next(site for site in GROUP_MU_SITE.values() if site in sites)
    return {
        "mu0": np.asarray(sites["mu0"]),
        "cos_mu0": np.cos(np.asarray(sites["mu0"])),
        "beta[0]": np.asarray(sites["beta"])[..., 0],
        "beta[1]": np.asarray(sites["beta"])[..., 1],
        "gamma0": np.asarray(sites["gamma0"]),
        "gamma[0]": np.asarray(sites["gamma"])[..., 0],
        "sigma_mu": np.asarray(sites["sigma_mu"]),
        "sigma_kappa": np.asarray(sites["sigma_kappa"]),
        f"{mu_site}[0]": np.asarray(sites[mu_site])[..., 0],
        "u_kappa[0]": np.asarray(sites["u_kappa"])[..., 0],
    }


def rank_statistics(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank of each true value among its draws: ``#{draws < truth}``, in ``0 .. L``.

    Parameters
    ----------
    truth : array, shape (N,)
    draws : array, shape (N, L)
    """
    return np.sum(draws < truth[:, None], axis=1)


def uniformity(ranks: np.ndarray, n_draws: int, bins: int, seed: int = 0) -> dict:
    """Chi-square (``bins`` equal bins of ``0 .. n_draws``) and KS p-values of the ranks."""
    from scipy import stats

    counts = np.histogram(ranks, bins=bins, range=(0, n_draws + 1))[0]
    chi2 = stats.chisquare(counts)
    u = (ranks + np.random.default_rng(seed).uniform(size=ranks.shape)) / (n_draws + 1)
    ks = stats.kstest(u, "uniform")
    return {"counts": counts, "chi2_p": float(chi2.pvalue), "ks_p": float(ks.pvalue)}


def run_sbc(
    n_datasets: int = 100,
    n_obs: int = 60,
    n_groups: int = 6,
    num_warmup: int = 300,
    num_samples: int = 990,
    thin: int = 10,
    max_tree_depth: int = 8,
    seed: int = 0,
    init: str = "mle",
    link: str = "tan_half",
    chains: int = 1,
) -> dict:
    """Run SBC; return the ranks, the diagnostics and the settings (module docstring)."""
    import jax
    import jax.numpy as jnp
    from numpyro.handlers import seed as seed_handler
    from numpyro.infer import Predictive
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model, unconstrain_fn

    from vm_ppl.numpyro import circular_regression_model
    from vm_ppl.regression import mle_init

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_obs, 2))
    Z = rng.standard_normal((n_obs, 1))
    groups = np.arange(n_obs) % n_groups
    kwargs = {"link": link, "Z": Z, "groups": groups, "group_kappa": True}

    def model(y=None):
        circular_regression_model(X, y, **kwargs)

    k_prior, k_init, k_run = jax.random.split(jax.random.key(seed), 3)
    prior = Predictive(model, num_samples=n_datasets)(k_prior)
    ys = jnp.asarray(prior["y"])
    info = initialize_model(k_init, model, model_args=(ys[0],), dynamic_args=True)
    init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")
    template = info.param_info.z
    t0 = time.perf_counter()
    starts = {k: [] for k in ("mu0", "beta", "gamma0", "gamma")}
    for i in range(n_datasets if init == "mle" else 0):
        values = mle_init(X, np.asarray(ys[i]), link=link, Z=Z, seed=seed).initial_values(True)
        z = unconstrain_fn(
            seed_handler(model, 0), (ys[i],), {}, {k: jnp.asarray(v) for k, v in values.items()}
        )
        for k in starts:
            starts[k].append(z[k])
    starts = {k: jnp.stack(v) for k, v in starts.items() if v}
    mle_s = time.perf_counter() - t0

    def one(key, y, start):
        k_z, k_nuts = jax.random.split(key)
        leaves, treedef = jax.tree.flatten(template)
        keys = jax.random.split(k_z, len(leaves))
        z0 = jax.tree.unflatten(
            treedef,
            [
                jax.random.uniform(k, jnp.shape(v), jnp.result_type(v), -2.0, 2.0)
                for k, v in zip(keys, leaves, strict=True)
            ],
        )
        z0 = {**z0, **{k: v.astype(jnp.result_type(z0[k])) for k, v in start.items()}}
        state = init_kernel(
            z0,
            num_warmup=num_warmup,
            dense_mass=True,
            max_tree_depth=max_tree_depth,
            model_args=(y,),
            rng_key=k_nuts,
        )

        def step(state, _):
            state = sample_kernel(state, model_args=(y,))
            return state, (state.z, state.diverging, state.num_steps)

        _, (zs, div, steps) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        post = jax.tree.map(lambda a: a[num_warmup:], zs)
        constrain = info.postprocess_fn(y)
        return jax.vmap(constrain)(post), div[num_warmup:], steps[num_warmup:]

    t0 = time.perf_counter()
    keys = jax.random.split(k_run, (n_datasets, chains)).reshape(-1)
    # One vmap over (data set, chain) pairs: a vmap over chains nested in one over data
    # sets batches NUTS's while loops twice (the test's tiny settings, tests/
    # test_regression_models.py: 34 s nested, 26 s flat, 2026-12-05, this 2-core Xeon).
    per_chain = functools.partial(jnp.repeat, repeats=chains, axis=0)
    draws, div, steps = jax.jit(jax.vmap(one))(keys, per_chain(ys), jax.tree.map(per_chain, starts))
    draws = jax.tree.map(  # (N, C, S) per site
        lambda a: a.reshape(n_datasets, chains, *a.shape[1:]), jax.block_until_ready(draws)
    )
    wall = time.perf_counter() - t0

    from vm_ppl import diagnostics as vd

    q_true = quantities(prior)
    q_draws = quantities(draws)  # (N, C, S)
    ess, rhat = {}, {}
    for name, d in q_draws.items():
        circ = ["x"] if name in CIRCULAR else []  # angles: on the circle
        ess[name] = np.asarray(
            [float(vd.ess({"x": d[i]}, circ_var_names=circ)["x"]) for i in range(n_datasets)]
        )
        if chains > 1:
            rhat[name] = np.asarray(
                [float(vd.rhat({"x": d[i]}, circ_var_names=circ)["x"]) for i in range(n_datasets)]
            )
    thinned = {k: v.reshape(n_datasets, -1)[:, ::thin] for k, v in q_draws.items()}
    n_draws = next(iter(thinned.values())).shape[1]
    ranks = {k: rank_statistics(q_true[k], thinned[k]) for k in QUANTITIES[link]}
    return {
        "ranks": ranks,
        "n_draws": n_draws,
        "ess": ess,
        "rhat": rhat,
        "wall_s": wall,
        "mle_s": mle_s,
        "divergent_share": float(np.mean(np.asarray(div))),
        "mean_steps": float(np.mean(np.asarray(steps))),
        "max_depth_share": float(np.mean(np.asarray(steps) >= 2**max_tree_depth - 1)),
        "settings": {
            "n_datasets": n_datasets,
            "n_obs": n_obs,
            "n_groups": n_groups,
            "num_warmup": num_warmup,
            "num_samples": num_samples,
            "thin": thin,
            "max_tree_depth": max_tree_depth,
            "seed": seed,
            "init": init,
            "link": link,
            "chains": chains,
        },
    }


def _figure(result: dict, bins: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    n = result["settings"]["n_datasets"]
    lo, hi = stats.binom(n, 1 / bins).ppf([0.005, 0.995])
    fig, axes = plt.subplots(2, 5, figsize=(15, 5.5), sharey=True)
    for ax, name in zip(axes.ravel(), result["ranks"], strict=True):
        ax.axhspan(lo, hi, color="0.85", label="99 % band")
        ax.hist(
            result["ranks"][name],
            bins=bins,
            range=(0, result["n_draws"] + 1),
            color="C0",
            edgecolor="white",
        )
        ax.axhline(n / bins, color="k", lw=0.8)
        ax.set_title(name)
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"SBC rank histograms: {n} data sets, {result['n_draws']} thinned draws each")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(result: dict, bins: int, command: str, figure: str) -> str:
    import jax
    import numpyro

    s = result["settings"]
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    lines = [
        "## Simulation-based calibration: group-effects circular regression (NumPyro NUTS)",
        "",
        f"Command: `{command}`; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{cpu}; jax {jax.__version__}, numpyro {numpyro.__version__}; "
        f"{result['wall_s']:.0f} s for the vectorised fits (compile included), "
        f"{result['mle_s']:.0f} s for the maximum-likelihood starts.",
        "",
        f"Model: `vm_ppl.numpyro.circular_regression_model(X, y, link={s['link']!r}, Z=Z, "
        f"groups=groups, group_kappa=True)` with its default priors; {s['n_obs']} observations, "
        f"{s['n_groups']} groups, X: 2 columns, Z: 1 column (standard normal, fixed). "
        f"{s['n_datasets']} data sets drawn from the prior; {s['chains']} NUTS chain(s) each "
        f"(init {s['init']!r}, dense mass "
        f"matrix, {s['num_warmup']} warm-up, {s['num_samples']} draws per chain, max tree "
        f"depth {s['max_tree_depth']}), pooled and thinned by {s['thin']} to L = "
        f"{result['n_draws']} draws; "
        f"ranks in 0 .. {result['n_draws']}. Divergent transitions: "
        f"{100 * result['divergent_share']:.2f} % of post-warm-up draws; mean leapfrog steps "
        f"per draw {result['mean_steps']:.1f}; draws at the maximum tree depth: "
        f"{100 * result['max_depth_share']:.2f} %.",
        "",
        f"| quantity | chi-square p ({bins} bins) | KS p | bulk ESS before thinning: "
        "median (5 % quantile) over data sets |"
        + (" data sets with R-hat > 1.01 |" if result["rhat"] else ""),
        "|---|---|---|---|" + ("---|" if result["rhat"] else ""),
    ]
    for name in result["ranks"]:
        u = uniformity(result["ranks"][name], result["n_draws"], bins)
        e = result["ess"][name]
        row = (
            f"| {name} | {u['chi2_p']:.3f} | {u['ks_p']:.3f} | "
            f"{np.median(e):.0f} ({np.quantile(e, 0.05):.0f}) |"
        )
        if result["rhat"]:
            row += f" {int(np.sum(result['rhat'][name] > 1.01))} |"
        lines.append(row)
    lines += ["", f"![SBC rank histograms]({figure})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run SBC and write ``sbc.md`` and ``sbc_ranks.png`` to ``--out``."""
    p = argparse.ArgumentParser(
        prog="python -m vm_ppl.bench.sbc", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--datasets", type=int, default=100)
    p.add_argument("--n-obs", type=int, default=60)
    p.add_argument("--groups", type=int, default=6)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--samples", type=int, default=990)
    p.add_argument("--thin", type=int, default=10)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=("mle", "prior"), default="mle")
    p.add_argument("--link", choices=("tan_half", "identity"), default="tan_half")
    p.add_argument("--chains", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("sbc_out"))
    args = p.parse_args(argv)
    result = run_sbc(
        args.datasets,
        args.n_obs,
        args.groups,
        args.warmup,
        args.samples,
        args.thin,
        seed=args.seed,
        init=args.init,
        link=args.link,
        chains=args.chains,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    _figure(result, args.bins, args.out / "sbc_ranks.png")
    command = "python -m vm_ppl.bench.sbc " + " ".join(argv if argv is not None else [])
    text = _markdown(result, args.bins, command.strip(), "sbc_ranks.png")
    (args.out / "sbc.md").write_text(text)
    np.savez(
        args.out / "sbc_ranks.npz",
        **{k.replace("[", "_").replace("]", ""): v for k, v in result["ranks"].items()},
    )
    print(text)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
