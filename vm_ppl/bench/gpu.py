"""The GPU benchmark set, one prepared run (no PyMC needed).

Run on a machine with a GPU (JAX picks its default device; the device kind is
recorded)::

    python -m vm_ppl.bench.gpu OUT.json [--quick]

Sections, each timed as the median of ``--reps`` calls after one warm-up call (the
warm-up, compile included, is ``first_ms``):

``sample``
    Draws/s of ``vm_ppl.sample`` against ``numpyro.distributions.VonMises`` at 10^6,
    10^7 and 10^8 float32 draws, one shared kappa in {0.5, 5, 50}, and grouped kappa
    (shape (1000, 1) broadcast to (1000, N/1000)).
``predictive``
    Posterior predictive of 10^8 draws: NumPyro ``Predictive`` for 1000 posterior draws of
    (mu, kappa) x 100,000 observations, ``vm_ppl.numpyro.VonMises`` against the built-in.
``nuts``
    NUTS with ``chain_method="vectorized"`` (8 chains, 500 warm-up, 1000 draws) on a
    (mu, kappa) von Mises model of 1000 observations, ``vm_ppl.numpyro.VonMises``
    against the built-in: wall time (compile included) and the smallest bulk ESS per
    second (``numpyro.diagnostics.effective_sample_size``).

``tan_half``
    The fused tan-half regression log-density :func:`vm_ppl.tan_half_log_prob` in float32
    on the device: max error against the float64 kernel on the host CPU (relative to
    ``|log p| + |log normaliser|``, at the points of ``vm_ppl.bench.tan_half``'s accuracy
    table) for kappa in {10, 1e3, 1e6}, and the time of ``value_and_grad`` of the summed
    log-density at 10^6 observations against ``log_prob(mu0 + 2 arctan(eta))`` and
    NumPyro's ``VonMises(mu0 + 2 arctan(eta)).log_prob``.

``--reps`` defaults to 3 (2 with ``--quick``). ``--quick`` shrinks every size so that
the whole set runs in about a minute on a CPU (used by the tests). It prints Markdown
tables and writes every number to ``OUT.json`` (rewritten after each section, so a
time-out keeps what was measured); a failing section or implementation becomes a row
with ``error``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "numpyro", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _time(fn: Callable[[], object], reps: int) -> dict:
    """first_ms (compile included) and median/min/max ms of ``reps`` further calls."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = 1e3 * (time.perf_counter() - t0)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(1e3 * (time.perf_counter() - t0))
    return {"first_ms": first, "ms": float(np.median(ts)), "ms_min": min(ts), "ms_max": max(ts)}


def _guarded(row: dict, fn: Callable[[], dict]) -> dict:
    try:
        row.update(fn())
    except Exception as exc:  # noqa: BLE001  (a failure is a result)
        row["error"] = f"{type(exc).__name__}: {exc}".strip()[:400]
        row["traceback"] = traceback.format_exc(limit=4)[-1500:]
    return row


def sample_rows(ns, kappas, reps: int) -> list[dict]:
    import numpyro.distributions as nd

    import vm_ppl

    rows = []
    keys = iter(jax.random.split(jax.random.key(1), 10_000))
    for n in ns:
        for kind in ("shared", "grouped"):
            for kappa in kappas if kind == "shared" else kappas[1:2]:
                if kind == "shared":
                    shape, k = (n,), jnp.float32(kappa)
                else:
                    shape = (1000, n // 1000)
                    k = jnp.asarray(np.linspace(kappa / 2, 3 * kappa / 2, 1000), jnp.float32)
                    k = k.reshape(1000, 1)
                vm = jax.jit(lambda key, k, shape=shape: vm_ppl.sample(key, 0.0, k, shape=shape))
                npy = jax.jit(
                    lambda key, k, shape=shape: nd.VonMises(0.0, k).expand(shape).sample(key)
                )
                for name, f in (("vm_ppl", vm), ("numpyro", npy)):
                    row = {
                        "section": "sample",
                        "kind": kind,
                        "implementation": name,
                        "n": n,
                        "kappa": kappa,
                    }
                    rows.append(
                        _guarded(row, lambda f=f, k=k: _time(lambda: f(next(keys), k), reps))
                    )
                    if "ms" in row:
                        row["draws_per_s"] = n / row["ms"] * 1e3
                    print(
                        f"  sample {kind} {name} n={n} k={kappa}: {row.get('ms', 'error')}",
                        file=sys.stderr,
                        flush=True,
                    )
    return rows


def _model(dist, nobs: int, obs=None):
    import numpyro
    import numpyro.distributions as nd

    def model(obs=obs):
        mu = numpyro.sample("mu", nd.Uniform(-np.pi, np.pi))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.5))
        with numpyro.plate("obs", nobs):
            numpyro.sample("y", dist(mu, kappa), obs=obs)

    return model


def predictive_rows(draws: int, nobs: int, reps: int) -> list[dict]:
    import numpyro.distributions as nd
    from numpyro.infer import Predictive

    import vm_ppl.numpyro as vmn

    rng = np.random.default_rng(4)
    post = {
        "mu": jnp.asarray(rng.uniform(-np.pi, np.pi, draws), jnp.float32),
        "kappa": jnp.asarray(rng.gamma(4.0, 1.0, draws), jnp.float32),
    }
    rows = []
    keys = iter(jax.random.split(jax.random.key(5), 1000))
    for name, dist in (
        ("vm_ppl.numpyro.VonMises", vmn.VonMises),
        ("numpyro VonMises", nd.VonMises),
    ):
        pred = Predictive(_model(dist, nobs), posterior_samples=post, return_sites=["y"])
        f = jax.jit(lambda key, pred=pred: pred(key)["y"])
        row = {
            "section": "predictive",
            "implementation": name,
            "draws": draws,
            "nobs": nobs,
            "n": draws * nobs,
        }

        def run(f=f):
            out = _time(lambda: f(next(keys)), reps)
            y = np.asarray(f(next(keys)))
            out["shape"] = list(y.shape)
            out["nan"] = int(np.isnan(y).sum())
            return out

        rows.append(_guarded(row, run))
        if "ms" in row:
            row["draws_per_s"] = row["n"] / row["ms"] * 1e3
        print(f"  predictive {name}: {row.get('ms', 'error')}", file=sys.stderr, flush=True)
    return rows


def nuts_rows(nobs: int, chains: int, warmup: int, samples: int) -> list[dict]:
    import numpyro.distributions as nd
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS

    import vm_ppl.numpyro as vmn

    rng = np.random.default_rng(6)
    y = jnp.asarray(rng.vonmises(0.7, 3.0, nobs), jnp.float32)
    rows = []
    for name, dist in (
        ("vm_ppl.numpyro.VonMises", vmn.VonMises),
        ("numpyro VonMises", nd.VonMises),
    ):
        row = {
            "section": "nuts",
            "implementation": name,
            "nobs": nobs,
            "chains": chains,
            "warmup": warmup,
            "samples": samples,
            "chain_method": "vectorized",
        }

        def run(dist=dist):
            mcmc = MCMC(
                NUTS(_model(dist, nobs)),
                num_warmup=warmup,
                num_samples=samples,
                num_chains=chains,
                chain_method="vectorized",
                progress_bar=False,
            )
            t0 = time.perf_counter()
            mcmc.run(jax.random.key(7), obs=y)
            jax.block_until_ready(mcmc.get_samples())
            wall = time.perf_counter() - t0
            s = mcmc.get_samples(group_by_chain=True)
            # mu is circular: ESS of (cos, sin) of the draws; kappa as is
            ess = {
                "cos_mu": float(effective_sample_size(np.cos(np.asarray(s["mu"])))),
                "sin_mu": float(effective_sample_size(np.sin(np.asarray(s["mu"])))),
                "kappa": float(effective_sample_size(np.asarray(s["kappa"]))),
            }
            div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
            return {
                "wall_s": wall,
                "ess": ess,
                "min_ess": min(ess.values()),
                "min_ess_per_s": min(ess.values()) / wall,
                "divergences": div,
                "kappa_mean": float(np.mean(np.asarray(s["kappa"]))),
            }

        rows.append(_guarded(row, run))
        print(f"  nuts {name}: {row.get('wall_s', 'error')}", file=sys.stderr, flush=True)
    return rows


def tan_half_rows(nobs: int, reps: int) -> list[dict]:
    import numpyro.distributions as nd

    from vm_ppl import log_prob, tan_half_log_prob
    from vm_ppl.bench.tan_half import _accuracy_points

    rows = []
    cpu = jax.devices("cpu")[0]
    for k in (10.0, 1e3, 1e6):
        row = {"section": "tan_half", "what": "accuracy", "kappa": k}

        def acc(k=k):
            y, m0, eta = _accuracy_points(k, 256, np.float32, seed=5)
            out = np.asarray(tan_half_log_prob(y, m0, eta, np.float32(k)), np.float64)
            with jax.enable_x64(True), jax.default_device(cpu):
                args = [a.astype(np.float64) for a in (y, m0, eta)]
                ref = np.asarray(tan_half_log_prob(*args, np.float64(k)))
                norm = abs(float(tan_half_log_prob(0.0, 0.0, 0.0, np.float64(k))))
            return {"max_rel_err": float(np.max(np.abs(out - ref) / (np.abs(ref) + norm)))}

        rows.append(_guarded(row, acc))
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.standard_normal(nobs), jnp.float32)
    y = jnp.asarray(rng.vonmises(1.0 + 2 * np.arctan(0.8 * np.asarray(x)), 5.0), jnp.float32)
    fns = {
        "tan_half_log_prob": lambda p: tan_half_log_prob(y, p[0], p[1] * x, p[2]).sum(),
        "log_prob(mu0 + 2 atan)": lambda p: log_prob(
            y, p[0] + 2 * jnp.arctan(p[1] * x), p[2]
        ).sum(),
        "numpyro VonMises": lambda p: (
            nd.VonMises(p[0] + 2 * jnp.arctan(p[1] * x), p[2]).log_prob(y).sum()
        ),
    }
    p = jnp.asarray([0.9, 0.7, 4.0], jnp.float32)
    for name, f in fns.items():
        row = {
            "section": "tan_half",
            "what": "value_and_grad",
            "implementation": name,
            "nobs": nobs,
        }
        vg = jax.jit(jax.value_and_grad(f))
        rows.append(_guarded(row, lambda vg=vg: _time(lambda: vg(p), reps)))
    return rows


def markdown(result: dict) -> str:
    lines = [
        f"device: {result['device_kind']} ({result['platform']}), {result['date']}; "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v),
        "",
    ]
    rows = result["rows"]
    lines += [
        "| draws | kappa | N | vm_ppl ms | numpyro ms | vm_ppl G draws/s | x numpyro |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {}
    for r in rows:
        if r["section"] == "sample":
            by.setdefault((r["kind"], r["kappa"], r["n"]), {})[r["implementation"]] = r
    for (kind, kappa, n), d in by.items():
        vm, npy = d.get("vm_ppl", {}), d.get("numpyro", {})
        if "ms" in vm and "ms" in npy:
            lines.append(
                f"| {kind} | {kappa:g} | {n:.0e} | {vm['ms']:.2f} | {npy['ms']:.2f} | "
                f"{vm['draws_per_s'] / 1e9:.2f} | {npy['ms'] / vm['ms']:.1f} |"
            )
        else:
            err = vm.get("error") or npy.get("error")
            lines.append(f"| {kind} | {kappa:g} | {n:.0e} | - | - | - | {err} |")
    lines += [
        "",
        "| posterior predictive | draws x obs | ms | first call ms | G draws/s | NaN | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["section"] == "predictive":
            lines.append(
                f"| {r['implementation']} | {r['draws']} x {r['nobs']} | "
                f"{r.get('ms', float('nan')):.1f} | {r.get('first_ms', float('nan')):.0f} | "
                f"{r.get('draws_per_s', float('nan')) / 1e9:.2f} | {r.get('nan', '-')} | "
                f"{r.get('error', '')} |"
            )
    lines += [
        "",
        "| NUTS vectorized | chains x draws | wall s (compile incl.) | min ESS "
        "| min ESS/s | divergences | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["section"] == "nuts":
            lines.append(
                f"| {r['implementation']} | {r['chains']} x {r['samples']} | "
                f"{r.get('wall_s', float('nan')):.1f} | {r.get('min_ess', float('nan')):.0f} | "
                f"{r.get('min_ess_per_s', float('nan')):.0f} | {r.get('divergences', '-')} | "
                f"{r.get('error', '')} |"
            )
    lines += [
        "",
        "| tan-half log-density, float32 on the device | kappa or n | max error / scale "
        "or ms | error |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["section"] == "tan_half" and r["what"] == "accuracy":
            lines.append(
                f"| accuracy vs float64 on the host CPU | {r['kappa']:g} | "
                f"{r.get('max_rel_err', float('nan')):.1e} | {r.get('error', '')} |"
            )
        elif r["section"] == "tan_half":
            lines.append(
                f"| value_and_grad, {r['implementation']} | {r['nobs']:.0e} | "
                f"{r.get('ms', float('nan')):.3f} | {r.get('error', '')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m vm_ppl.bench.gpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="JSON output path")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU check)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["sample", "predictive", "nuts", "tan_half"],
        choices=["sample", "predictive", "nuts", "tan_half"],
    )
    args = parser.parse_args(argv)
    quick = args.quick
    reps = args.reps or (2 if quick else 3)
    dev = jax.devices()[0]
    result = {
        "device_kind": dev.device_kind,
        "platform": dev.platform,
        "devices": [str(d) for d in jax.devices()],
        "quick": quick,
        "reps": reps,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": _versions(),
        "host": platform.platform(),
        "rows": [],
    }
    t_start = time.perf_counter()
    print(f"device: {dev.device_kind} ({dev.platform})", file=sys.stderr, flush=True)

    def save():
        result["total_s"] = time.perf_counter() - t_start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))

    if "sample" in args.sections:
        ns = (10_000,) if quick else (10**6, 10**7, 10**8)
        result["rows"] += sample_rows(ns, (0.5, 5.0, 50.0), reps)
        save()
    if "predictive" in args.sections:
        result["rows"] += predictive_rows(*((20, 500) if quick else (1000, 100_000)), reps)
        save()
    if "nuts" in args.sections:
        result["rows"] += nuts_rows(*((50, 2, 30, 30) if quick else (1000, 8, 500, 1000)))
        save()
    if "tan_half" in args.sections:
        result["rows"] += tan_half_rows(10_000 if quick else 10**6, max(reps, 10))
        save()
    md = markdown(result)
    result["markdown"] = md
    save()
    print(md)
    print(f"total {result['total_s']:.0f} s", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
