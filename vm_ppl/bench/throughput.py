"""Throughput of the von Mises kernels: draws/s and log-density(+gradient) evaluations/s.

Run (writes ``DIR/throughput.json``, ``DIR/throughput.md``, ``DIR/throughput.png``)::

    vm-ppl bench throughput [--quick] [--out DIR] [--n 10000 1000000] [--kappa 0.5 5 50]
                            [--reps 5] [--dtype float64] [--devices 1 2 4]
                            [--tasks sample logp+grad devices predictive scale]
    python -m vm_ppl.bench.throughput ...

Default tasks: sample, logp+grad, devices, predictive (``scale`` runs up to 10^8 draws).

Tasks, each over N and kappa (median of ``--reps`` calls after one warm-up call, whose
time, compile included, is ``first_ms``):

``sample``
    N draws at scalar (loc, kappa): ``vm_ppl.sample`` (jitted), NumPy
    ``Generator.vonmises``, SciPy ``stats.vonmises.rvs``, ``numpyro.distributions.VonMises``.
``sample-bulk``
    One draw per element of per-element ``loc``/``kappa`` arrays of size N (kappa spread
    over ``[kappa/2, 3 kappa/2]``); same implementations.
``sample-grouped``
    Posterior-predictive shape: kappa of shape (1000, 1) (spread as above) broadcast to
    (1000, N/1000): ``vm_ppl.sample``, NumPy, NumPyro (``expand``).
``sample sharded``, ``sample-grouped sharded`` (task ``devices``)
    ``vm_ppl.sample`` under ``jit`` with the output sharded by rows over 1, 2 and 4 host
    devices (``--devices``), each count in its own process.
``predictive numpyro``, ``predictive pymc JAX`` (task ``predictive``)
    Posterior predictive of 10,000 observations for 1000 posterior draws of (mu, kappa):
    NumPyro ``Predictive`` and PyMC ``sample_posterior_predictive(compile_kwargs=
    {"mode": "JAX"})``, vm_ppl's distribution against the built-in, float32.
``scale shared``, ``scale grouped``, ``scale per-element`` (task ``scale``)
    Time and XLA temporary memory of ``vm_ppl.sample`` at 10^6, 10^7 and 10^8 draws.
``logp+grad``
    Sum of the log-density of N observations (per-observation loc, shared kappa) and its
    gradient in loc and kappa: ``vm_ppl.log_prob`` and NumPyro under
    ``jax.value_and_grad``; ``pm.VonMises`` and ``vm_ppl.pymc.VonMises`` compiled to a
    PyTensor function of (logp, dlogp/dloc, dlogp/dkappa) with modes FAST_RUN (C),
    NUMBA and JAX; SciPy ``stats.vonmises.logpdf`` (value only, marked ``scipy (no grad)``).

JAX runs on its default device, a GPU when JAX sees one (selected and recorded); NumPy,
SciPy and the C/Numba PyTensor modes run on the CPU. Every row records its device; a
failing implementation becomes a row with ``error``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Timed = Callable[[], object]
PYTENSOR_MODES = ("FAST_RUN", "NUMBA", "JAX")


def select_device():
    """Make the first GPU (if JAX sees one) JAX's default device; return the device."""
    import jax

    try:
        dev = jax.devices("gpu")[0]
    except RuntimeError:
        dev = jax.devices()[0]
    jax.config.update("jax_default_device", dev)
    return dev


def _block(out):
    import jax

    return jax.block_until_ready(out)


def time_call(fn: Timed, reps: int) -> tuple[float, float]:
    """First-call and median wall time of ``fn()`` in ms (JAX results are waited for)."""
    t0 = time.perf_counter()
    _block(fn())
    first = 1e3 * (time.perf_counter() - t0)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        _block(fn())
        times.append(1e3 * (time.perf_counter() - t0))
    return first, float(np.median(times))


# ---------------------------------------------------------------------- candidates


def _grouped_samplers(n: int, kappa: float, dtype: str, groups: int = 1000) -> dict[str, Timed]:
    """Posterior-predictive shape: ``groups`` concentrations of shape (groups, 1) (spread
    over ``[kappa/2, 3 kappa/2]``), broadcast against ``n / groups`` observations."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as nd

    import vm_ppl

    rng = np.random.default_rng(0)
    m = max(1, n // groups)
    shape = (groups, m)
    k_np = (kappa * rng.uniform(0.5, 1.5, groups)).reshape(groups, 1)
    k = jnp.asarray(k_np, dtype)
    vm = jax.jit(lambda key, c: vm_ppl.sample(key, 0.0, c, shape=shape))
    npy = jax.jit(lambda key, c: nd.VonMises(0.0, c).expand(shape).sample(key))
    keys = iter(jax.random.split(jax.random.key(1), 10_000))
    return {
        "vm_ppl": lambda: vm(next(keys), k),
        "numpy": lambda: rng.vonmises(0.0, k_np, shape),
        "numpyro": lambda: npy(next(keys), k),
    }


def _samplers(n: int, kappa: float, dtype: str, bulk: bool) -> dict[str, Timed]:
    """Zero-argument callables drawing N angles, one per implementation."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as nd
    from scipy import stats

    import vm_ppl

    rng = np.random.default_rng(0)
    if bulk:
        loc_np = rng.uniform(-np.pi, np.pi, n)
        k_np = kappa * rng.uniform(0.5, 1.5, n)
    else:
        loc_np, k_np = 0.0, kappa
    loc, k = jnp.asarray(loc_np, dtype), jnp.asarray(k_np, dtype)
    shape = (n,)
    vm = jax.jit(lambda key, m, c: vm_ppl.sample(key, m, c, shape=shape))
    npy = jax.jit(lambda key, m, c: nd.VonMises(m, c).sample(key, () if bulk else shape))
    keys = iter(jax.random.split(jax.random.key(1), 10_000))
    return {
        "vm_ppl": lambda: vm(next(keys), loc, k),
        "numpy": lambda: rng.vonmises(loc_np, k_np, n),
        "scipy": lambda: stats.vonmises.rvs(k_np, loc=loc_np, size=n, random_state=rng),
        "numpyro": lambda: npy(next(keys), loc, k),
    }


def _jax_logp_grads(n: int, dtype: str) -> dict[str, Callable[[float], object]]:
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as nd

    import vm_ppl

    x, loc = _logp_data(n, dtype)
    x, loc = jnp.asarray(x), jnp.asarray(loc)

    def vm_loss(m, k):
        return jnp.sum(vm_ppl.log_prob(x, m, k))

    def npy_loss(m, k):
        return jnp.sum(nd.VonMises(m, k).log_prob(x))

    out = {}
    for name, loss in (("vm_ppl", vm_loss), ("numpyro", npy_loss)):
        vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        out[name] = (lambda f: lambda kappa: f(loc, jnp.asarray(kappa, dtype)))(vg)
    return out


def _logp_data(n: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.vonmises(0.3, 4.0, n).astype(dtype)  # in [-pi, pi]: fine for pm.VonMises
    loc = rng.uniform(-np.pi, np.pi, n).astype(dtype)
    return x, loc


def _pytensor_logp_grad(dist_cls, mode: str, n: int, dtype: str) -> Callable[[float], object]:
    """A compiled PyTensor function of (sum logp, d/dloc, d/dkappa) at the given kappa."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    x_np, loc_np = _logp_data(n, dtype)
    x, loc, k = (
        pt.vector("x", dtype=dtype),
        pt.vector("loc", dtype=dtype),
        pt.scalar("k", dtype=dtype),
    )
    lp = pm.logp(dist_cls.dist(loc, k), x).sum()
    fn = pytensor.function([x, loc, k], [lp, *pytensor.grad(lp, [loc, k])], mode=mode)
    return lambda kappa: fn(x_np, loc_np, np.asarray(kappa, dtype))


def _logp_candidates(n: int, dtype: str) -> dict[str, Callable[[], Callable[[float], object]]]:
    """Builders (compiled lazily, so a failure is one row) of ``f(kappa)`` per name."""
    import pymc as pm
    from scipy import stats

    import vm_ppl.pymc as vmp

    x_np, loc_np = _logp_data(n, dtype)
    cands: dict = {
        name: (lambda name=name: _jax_logp_grads(n, dtype)[name]) for name in ("vm_ppl", "numpyro")
    }
    for mode in PYTENSOR_MODES:
        for label, cls in (("pm.VonMises", pm.VonMises), ("vm_ppl.pymc", vmp.VonMises)):
            cands[f"{label} {mode}"] = lambda cls=cls, mode=mode: _pytensor_logp_grad(
                cls, mode, n, dtype
            )
    cands["scipy (no grad)"] = lambda: (
        lambda kappa: stats.vonmises.logpdf(x_np, kappa, loc=loc_np).sum()
    )
    return cands


def _device_of(name: str, jax_device) -> str:
    on_jax = name in ("vm_ppl", "numpyro") or name.endswith(" JAX")
    return str(jax_device) if on_jax else "cpu (host)"


# ------------------------------------------------------------------------ running


def _row(task: str, name: str, n: int, kappa: float, device: str, fn: Timed, reps: int) -> dict:
    row = {"task": task, "implementation": name, "n": n, "kappa": kappa, "device": device}
    try:
        row["first_ms"], row["ms"] = time_call(fn, reps)
        row["per_s"] = n / row["ms"] * 1e3
    except Exception as exc:  # noqa: BLE001  (a failing implementation is a result)
        row["error"] = f"{type(exc).__name__}: {exc}".strip()[:300]
        row["traceback"] = traceback.format_exc(limit=4)[-1500:]
    return row


def _sampling_rows(n: int, kappas: Sequence[float], dtype: str, reps: int, dev) -> list[dict]:
    rows = []
    for task, bulk in (("sample", False), ("sample-bulk", True), ("sample-grouped", None)):
        for kappa in kappas:
            if bulk is None:
                cands = _grouped_samplers(n, kappa, dtype)
            else:
                cands = _samplers(n, kappa, dtype, bulk)
            for name, fn in cands.items():
                rows.append(_row(task, name, n, kappa, _device_of(name, dev), fn, reps))
    return rows


def _logp_rows(n: int, kappas: Sequence[float], dtype: str, reps: int, dev) -> list[dict]:
    rows = []
    for name, build in _logp_candidates(n, dtype).items():
        try:
            f = build()
        except Exception as exc:  # noqa: BLE001
            rows += [
                {
                    "task": "logp+grad",
                    "implementation": name,
                    "n": n,
                    "kappa": k,
                    "device": _device_of(name, dev),
                    "error": f"{type(exc).__name__}: {exc}".strip()[:300],
                }
                for k in kappas
            ]
            continue
        for kappa in kappas:
            rows.append(
                _row(
                    "logp+grad",
                    name,
                    n,
                    kappa,
                    _device_of(name, dev),
                    lambda f=f, kappa=kappa: f(kappa),
                    reps,
                )
            )
    return rows


_DEVICES_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import vm_ppl

    n, reps, kappas = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    dtype = sys.argv[4]
    jax.config.update("jax_enable_x64", dtype == "float64")
    mesh = Mesh(np.array(jax.devices()), ("d",))
    rows = NamedSharding(mesh, P("d"))
    groups = 1000
    rng = np.random.default_rng(0)
    out = []
    for kappa in kappas:
        kg = jax.device_put(jnp.asarray(kappa * rng.uniform(0.5, 1.5, (groups, 1)), dtype), rows)
        cases = {
            "sample": (jax.jit(lambda key, k: vm_ppl.sample(key, 0.0, k, shape=(n,)),
                               out_shardings=rows), jnp.asarray(kappa, dtype)),
            "sample-grouped": (jax.jit(lambda key, k: vm_ppl.sample(
                key, 0.0, k, shape=(groups, n // groups)), out_shardings=rows), kg),
        }
        for task, (f, k) in cases.items():
            keys = jax.random.split(jax.random.key(3), reps + 1)
            t0 = time.perf_counter()
            jax.block_until_ready(f(keys[0], k))
            first = time.perf_counter() - t0
            ts = []
            for key in keys[1:]:
                t0 = time.perf_counter()
                x = jax.block_until_ready(f(key, k))
                ts.append(time.perf_counter() - t0)
            out.append({"task": task, "kappa": kappa, "first_ms": 1e3 * first,
                        "ms": 1e3 * float(np.median(ts)), "ms_min": 1e3 * min(ts),
                        "ms_max": 1e3 * max(ts), "n": n,
                        "shard_devices": len({s.device for s in x.addressable_shards})})
    print(json.dumps({"devices": [str(d) for d in jax.devices()], "rows": out}))
    """
)


def _devices_rows(
    n: int, kappas: Sequence[float], dtype: str, reps: int, devices: Sequence[int]
) -> list[dict]:
    """Draws/s of ``vm_ppl.sample`` with the output sharded over 1, 2, 4, ... host devices.

    Each device count runs in its own subprocess with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` in that subprocess's
    environment only (JAX fixes the device count at start-up). On a machine with C
    cores, D host devices share them: the figures show the overhead of sharding, and a
    speed-up only as far as the cores allow.
    """
    rows = []
    for d in devices:
        env = dict(os.environ)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
        env["JAX_PLATFORMS"] = "cpu"
        base = {"implementation": f"vm_ppl sharded, {d} host device(s)", "device": f"cpu x {d}"}
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _DEVICES_CHILD,
                    str(n),
                    str(reps),
                    json.dumps(list(kappas)),
                    dtype,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
                check=True,
            )
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        except Exception as exc:  # noqa: BLE001  (a failure is a result)
            err = getattr(exc, "stderr", "") or ""
            rows += [
                dict(
                    base,
                    task=f"{t} sharded",
                    n=n,
                    kappa=k,
                    error=f"{type(exc).__name__}: {exc} {err[-300:]}".strip()[:400],
                )
                for t in ("sample", "sample-grouped")
                for k in kappas
            ]
            continue
        for r in res["rows"]:
            r = dict(base, **r, devices=d)
            r["task"] = f"{r['task']} sharded"
            r["per_s"] = r["n"] / r["ms"] * 1e3
            rows.append(r)
    return rows


def _predictive_rows(draws: int, nobs: int, reps: int, dev) -> list[dict]:
    """Posterior predictive of ``nobs`` observations for ``draws`` posterior draws of
    (mu, kappa): NumPyro ``Predictive`` with ``vm_ppl.numpyro.VonMises`` and with the
    built-in ``numpyro.distributions.VonMises``; PyMC ``sample_posterior_predictive``
    compiled with ``mode="JAX"`` for ``vm_ppl.pymc.VonMises`` and ``pm.VonMises``."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd
    from numpyro.infer import Predictive

    import vm_ppl.numpyro as vmn

    rng = np.random.default_rng(4)
    post = {
        "mu": rng.uniform(-np.pi, np.pi, draws).astype(np.float32),
        "kappa": rng.gamma(4.0, 1.0, draws).astype(np.float32),
    }
    post_j = {k: jnp.asarray(v) for k, v in post.items()}
    n_total = draws * nobs
    rows = []
    for label, dist in (
        ("vm_ppl.numpyro.VonMises", vmn.VonMises),
        ("numpyro VonMises", nd.VonMises),
    ):

        def model(dist=dist):
            mu = numpyro.sample("mu", nd.Uniform(-np.pi, np.pi))
            kappa = numpyro.sample("kappa", nd.Gamma(4.0, 1.0))
            with numpyro.plate("obs", nobs):
                numpyro.sample("y", dist(mu, kappa))

        pred = Predictive(model, posterior_samples=post_j, return_sites=["y"])
        f = jax.jit(lambda key, pred=pred: pred(key)["y"])
        keys = iter(jax.random.split(jax.random.key(5), 1000))
        rows.append(
            _row(
                "predictive numpyro",
                label,
                n_total,
                float("nan"),
                str(dev),
                lambda f=f, keys=keys: f(next(keys)),
                reps,
            )
        )
    try:
        import arviz as az
        import pymc as pm

        import vm_ppl.pymc as vmp
    except ImportError as exc:
        return rows + [
            {
                "task": "predictive pymc JAX",
                "implementation": "-",
                "n": n_total,
                "kappa": float("nan"),
                "device": "-",
                "error": str(exc),
            }
        ]
    idata = az.from_dict(posterior={k: v[None, :].astype(np.float64) for k, v in post.items()})
    for label, cls in (("vm_ppl.pymc.VonMises", vmp.VonMises), ("pm.VonMises", pm.VonMises)):

        def run(cls=cls):
            with pm.Model():
                mu = pm.Uniform("mu", -np.pi, np.pi)
                kappa = pm.Gamma("kappa", 4.0, 1.0)
                cls("y", mu, kappa, shape=nobs)
                return pm.sample_posterior_predictive(
                    idata,
                    var_names=["y"],
                    progressbar=False,
                    random_seed=6,
                    compile_kwargs={"mode": "JAX"},
                )

        rows.append(
            _row(
                "predictive pymc JAX",
                label,
                n_total,
                float("nan"),
                str(dev),
                run,
                max(1, reps // 2),
            )
        )
    return rows


def _scale_rows(ns: Sequence[int], dtype: str, reps: int, dev) -> list[dict]:
    """Time and XLA buffer sizes of ``vm_ppl.sample`` from 10^6 to 10^8 draws, for one
    shared kappa (5), grouped (1000, 1) and per-element concentrations; ``temp_x_out``
    is XLA's temporary buffer size over the output size (peak memory beyond in- and
    outputs)."""
    import jax
    import jax.numpy as jnp

    import vm_ppl

    rows = []
    for n in ns:
        for kind in ("shared", "grouped", "per-element"):
            shape = (1000, n // 1000)
            if kind == "shared":
                k = jnp.asarray(5.0, dtype)
            elif kind == "grouped":
                k = jnp.asarray(np.linspace(0.5, 50, 1000).reshape(1000, 1), dtype)
            else:
                k = jnp.full(shape, 5.0, dtype)
            f = jax.jit(lambda key, c, shape=shape: vm_ppl.sample(key, 0.0, c, shape=shape))
            mem = f.lower(jax.random.key(0), k).compile().memory_analysis()
            keys = iter(jax.random.split(jax.random.key(7), 100))
            row = _row(
                f"scale {kind}",
                "vm_ppl",
                n,
                5.0,
                str(dev),
                lambda f=f, k=k, keys=keys: f(next(keys), k),
                reps,
            )
            row["temp_x_out"] = mem.temp_size_in_bytes / mem.output_size_in_bytes
            rows.append(row)
            del k
    return rows


def extra_markdown(result: dict) -> str:
    """Tables of the sharded, predictive and scale rows (draws/s, ratios)."""
    rows = result["rows"]
    lines = []
    sh = [r for r in rows if r["task"].endswith("sharded")]
    if sh:
        lines += [
            "",
            "Sharded over host devices (output sharded by rows; each device count in "
            "its own process)",
            "",
            "| task | devices | kappa | N | ms (median) | min-max ms | M draws/s | error |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in sh:
            rate = r["per_s"] / 1e6 if r.get("per_s") else None
            spread = f"{r['ms_min']:.1f}-{r['ms_max']:.1f}" if "ms_min" in r else "-"
            lines.append(
                f"| {r['task']} | {r.get('devices', r['device'])} | {r['kappa']:g} | "
                f"{r['n']} | {r.get('ms', float('nan')):.1f} | {spread} | "
                f"{rate if rate is None else f'{rate:.1f}'} | {r.get('error', '')} |"
            )
    pr = [r for r in rows if r["task"].startswith("predictive")]
    if pr:
        lines += [
            "",
            "Posterior predictive (draws x observations = N)",
            "",
            "| task | implementation | N | ms | first call ms | M draws/s | error |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in pr:
            ok = "ms" in r
            lines.append(
                f"| {r['task']} | {r['implementation']} | {r['n']} | "
                f"{r['ms']:.1f} | {r['first_ms']:.0f} | {r['per_s'] / 1e6:.1f} | |"
                if ok
                else f"| {r['task']} | {r['implementation']} | {r['n']} | - | - "
                f"| - | {r.get('error', '')[:150]} |"
            )
    sc = [r for r in rows if r["task"].startswith("scale")]
    if sc:
        lines += [
            "",
            "Scaling (kappa = 5; grouped: 1000 kappas in [0.5, 50] of shape (1000, 1))",
            "",
            "| kind | N | ms | ns per draw | temp / output bytes |",
            "|---|---|---|---|---|",
        ]
        for r in sc:
            if "ms" not in r:
                lines.append(f"| {r['task']} | {r['n']} | error: {r.get('error')} | | |")
                continue
            lines.append(
                f"| {r['task'][6:]} | {r['n']:.0e} | {r['ms']:.1f} | "
                f"{1e6 * r['ms'] / r['n']:.2f} | {r['temp_x_out']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def cpu_info() -> dict:
    """CPU model and cache sizes from ``lscpu`` (empty where it is not available)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    keep = ("Model name", "CPU(s)", "L1d cache", "L2 cache", "L3 cache")
    info = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def versions() -> dict:
    """Versions of the packages measured."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "numpyro", "numpy", "scipy", "pymc", "pytensor"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


TASKS = ("sample", "logp+grad", "devices", "predictive", "scale")


def run_throughput(
    out: Path,
    ns: Sequence[int] = (10_000, 1_000_000),
    kappas: Sequence[float] = (0.5, 5.0, 50.0),
    reps: int = 5,
    dtype: str = "float64",
    tasks: Sequence[str] = ("sample", "logp+grad"),
    devices: Sequence[int] = (1, 2, 4),
    device_n: int = 1_000_000,
    predictive: tuple[int, int] = (1000, 10_000),
    scale_ns: Sequence[int] = (10**6, 10**7, 10**8),
) -> dict:
    """Measure the tasks; write throughput.json, throughput.md and throughput.png.

    Parameters
    ----------
    out : Path
        Output folder (created).
    ns, kappas : sequences
        Sizes and concentrations.
    reps : int
        Timed calls per measurement (median reported).
    dtype : {"float32", "float64"}
        Floating dtype of every input (JAX x64 is set to match for the run).
    tasks : sequence of str
        Any of ``TASKS``: ``"sample"`` (shared, per-element and grouped concentrations),
        ``"logp+grad"``, ``"devices"`` (draws/s sharded over each count in ``devices`` of
        host devices, ``device_n`` draws, each count in a subprocess), ``"predictive"``
        (NumPyro ``Predictive`` and PyMC ``sample_posterior_predictive`` in JAX mode,
        ``predictive = (posterior draws, observations)``, float32) and ``"scale"``
        (``scale_ns`` draws: time and memory, in ``dtype``).

    Returns
    -------
    dict
        ``device``, ``platform``, ``dtype``, ``cpus``, ``cpu``, ``versions``, ``reps``,
        ``jax_devices``, ``rows``.
    """
    import jax

    from ._report import progress, throughput_markdown, throughput_plot

    out.mkdir(parents=True, exist_ok=True)
    import vm_ppl.pymc  # noqa: F401  (registers the PyTensor dispatch; toggles JAX x64)

    dev = select_device()
    result = {
        "device": str(dev),
        "platform": dev.platform,
        "dtype": dtype,
        "cpus": os.cpu_count(),
        "cpu": cpu_info(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": platform.platform(),
        "reps": reps,
        "jax_devices": [str(d) for d in jax.devices()],
        "rows": [],
    }

    def save():
        (out / "throughput.json").write_text(json.dumps(result, indent=2))

    with jax.enable_x64(dtype == "float64"):
        for n in ns:
            if "sample" in tasks:
                progress(f"throughput: sampling, N={n} ...")
                result["rows"] += _sampling_rows(n, kappas, dtype, reps, dev)
            if "logp+grad" in tasks:
                progress(f"throughput: logp+grad, N={n} ...")
                result["rows"] += _logp_rows(n, kappas, dtype, reps, dev)
            save()
        if "scale" in tasks:
            progress(f"throughput: scale, N={list(scale_ns)} ...")
            result["rows"] += _scale_rows(scale_ns, dtype, reps, dev)
            save()
    if "devices" in tasks:
        progress(f"throughput: sharded over {list(devices)} host devices ...")
        result["rows"] += _devices_rows(device_n, kappas, dtype, reps, devices)
        save()
    if "predictive" in tasks:
        progress(f"throughput: posterior predictive {predictive} ...")
        with jax.enable_x64(False):
            result["rows"] += _predictive_rows(*predictive, reps, dev)
        save()
    md = throughput_markdown(result)
    cpu = result["cpu"]
    md = (
        f"{result['date']}; CPU: {cpu.get('Model name', '?')}, {cpu.get('CPU(s)', '?')} "
        f"CPUs, L1d {cpu.get('L1d cache', '?')}, L2 {cpu.get('L2 cache', '?')}, "
        f"L3 {cpu.get('L3 cache', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v)
        + "\n\n"
        + md
        + extra_markdown(result)
    )
    (out / "throughput.md").write_text(md)
    throughput_plot(result, out / "throughput.png")
    return result


def main(argv: list[str] | None = None) -> dict:
    """Command line entry point (module docstring)."""
    parser = argparse.ArgumentParser(
        prog="vm-ppl bench throughput", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="N = 10^4, 3 reps, small device/predictive/scale sizes"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_throughput"))
    parser.add_argument("--n", type=int, nargs="+", default=None)
    parser.add_argument("--kappa", type=float, nargs="+", default=[0.5, 5.0, 50.0])
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=["sample", "logp+grad", "devices", "predictive"],
    )
    parser.add_argument(
        "--devices",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="host device counts for the sharded task",
    )
    args = parser.parse_args(argv)
    ns = args.n or ([10_000] if args.quick else [10_000, 1_000_000])
    reps = args.reps or (3 if args.quick else 5)
    kw = {}
    if args.quick:
        kw = {"device_n": 65536 * 4, "predictive": (40, 1000), "scale_ns": (10**5, 10**6)}
    result = run_throughput(
        args.out, ns, args.kappa, reps, args.dtype, args.tasks, args.devices, **kw
    )
    print((args.out / "throughput.md").read_text())
    return result


if __name__ == "__main__":
    main()
