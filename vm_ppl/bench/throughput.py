"""Throughput of the von Mises kernels: draws/s and log-density(+gradient) evaluations/s.

Run (writes ``DIR/throughput.json``, ``DIR/throughput.md``, ``DIR/throughput.png``)::

    vm-ppl bench throughput [--quick] [--out DIR] [--n 10000 1000000] [--kappa 0.5 5 50]
                            [--reps 5] [--dtype float64]
    python -m vm_ppl.bench.throughput ...

Tasks, each over N and kappa (median of ``--reps`` calls after one warm-up call, whose
time, compile included, is ``first_ms``):

``sample``
    N draws at scalar (loc, kappa): ``vm_ppl.sample`` (jitted), NumPy
    ``Generator.vonmises``, SciPy ``stats.vonmises.rvs``, ``numpyro.distributions.VonMises``.
``sample-bulk``
    Posterior-predictive style: one draw per element of per-element ``loc``/``kappa``
    arrays of size N (kappa spread over ``[kappa/2, 3 kappa/2]``); same implementations.
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
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import numpy as np  # noqa: E402

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
    x, loc, k = pt.vector("x", dtype=dtype), pt.vector("loc", dtype=dtype), pt.scalar(
        "k", dtype=dtype)
    lp = pm.logp(dist_cls.dist(loc, k), x).sum()
    fn = pytensor.function([x, loc, k], [lp, *pytensor.grad(lp, [loc, k])], mode=mode)
    return lambda kappa: fn(x_np, loc_np, np.asarray(kappa, dtype))


def _logp_candidates(n: int, dtype: str) -> dict[str, Callable[[], Callable[[float], object]]]:
    """Builders (compiled lazily, so a failure is one row) of ``f(kappa)`` per name."""
    import pymc as pm
    from scipy import stats

    import vm_ppl.pymc as vmp

    x_np, loc_np = _logp_data(n, dtype)
    cands: dict = {name: (lambda name=name: _jax_logp_grads(n, dtype)[name])
                   for name in ("vm_ppl", "numpyro")}
    for mode in PYTENSOR_MODES:
        for label, cls in (("pm.VonMises", pm.VonMises), ("vm_ppl.pymc", vmp.VonMises)):
            cands[f"{label} {mode}"] = (
                lambda cls=cls, mode=mode: _pytensor_logp_grad(cls, mode, n, dtype))
    cands["scipy (no grad)"] = lambda: (
        lambda kappa: stats.vonmises.logpdf(x_np, kappa, loc=loc_np).sum())
    return cands


def _device_of(name: str, jax_device) -> str:
    on_jax = name in ("vm_ppl", "numpyro") or name.endswith(" JAX")
    return str(jax_device) if on_jax else "cpu (host)"


# ------------------------------------------------------------------------ running


def _row(task: str, name: str, n: int, kappa: float, device: str, fn: Timed,
         reps: int) -> dict:
    row = {"task": task, "implementation": name, "n": n, "kappa": kappa, "device": device}
    try:
        row["first_ms"], row["ms"] = time_call(fn, reps)
        row["per_s"] = n / row["ms"] * 1e3
    except Exception as exc:  # noqa: BLE001  (a failing implementation is a result)
        row["error"] = f"{type(exc).__name__}: {exc}".strip()[:300]
        row["traceback"] = traceback.format_exc(limit=4)[-1500:]
    return row


def _sampling_rows(n: int, kappas: Sequence[float], dtype: str, reps: int,
                   dev) -> list[dict]:
    rows = []
    for task, bulk in (("sample", False), ("sample-bulk", True)):
        for kappa in kappas:
            for name, fn in _samplers(n, kappa, dtype, bulk).items():
                rows.append(_row(task, name, n, kappa, _device_of(name, dev), fn, reps))
    return rows


def _logp_rows(n: int, kappas: Sequence[float], dtype: str, reps: int, dev) -> list[dict]:
    rows = []
    for name, build in _logp_candidates(n, dtype).items():
        try:
            f = build()
        except Exception as exc:  # noqa: BLE001
            rows += [{"task": "logp+grad", "implementation": name, "n": n, "kappa": k,
                      "device": _device_of(name, dev),
                      "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
                     for k in kappas]
            continue
        for kappa in kappas:
            rows.append(_row("logp+grad", name, n, kappa, _device_of(name, dev),
                             lambda f=f, kappa=kappa: f(kappa), reps))
    return rows


def run_throughput(out: Path, ns: Sequence[int] = (10_000, 1_000_000),
                   kappas: Sequence[float] = (0.5, 5.0, 50.0), reps: int = 5,
                   dtype: str = "float64", tasks: Sequence[str] = ("sample", "logp+grad"),
                   ) -> dict:
    """Measure every task; write throughput.json, throughput.md and throughput.png.

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
        ``"sample"`` (both sampling tasks) and/or ``"logp+grad"``.

    Returns
    -------
    dict
        ``device``, ``platform``, ``dtype``, ``cpus``, ``reps``, ``jax_devices``, ``rows``.
    """
    import jax

    from ._report import progress, throughput_markdown, throughput_plot

    out.mkdir(parents=True, exist_ok=True)
    import vm_ppl.pymc  # noqa: F401  (registers the PyTensor dispatch; toggles JAX x64)

    dev = select_device()
    result = {"device": str(dev), "platform": dev.platform, "dtype": dtype,
              "cpus": os.cpu_count(), "host": platform.platform(), "reps": reps,
              "jax_devices": [str(d) for d in jax.devices()], "rows": []}
    with jax.enable_x64(dtype == "float64"):
        for n in ns:
            if "sample" in tasks:
                progress(f"throughput: sampling, N={n} ...")
                result["rows"] += _sampling_rows(n, kappas, dtype, reps, dev)
            if "logp+grad" in tasks:
                progress(f"throughput: logp+grad, N={n} ...")
                result["rows"] += _logp_rows(n, kappas, dtype, reps, dev)
            (out / "throughput.json").write_text(json.dumps(result, indent=2))
    (out / "throughput.md").write_text(throughput_markdown(result))
    throughput_plot(result, out / "throughput.png")
    return result


def main(argv: list[str] | None = None) -> dict:
    """Command line entry point (module docstring)."""
    parser = argparse.ArgumentParser(prog="vm-ppl bench throughput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10^4 only, 3 reps")
    parser.add_argument("--out", type=Path, default=Path("bench_throughput"))
    parser.add_argument("--n", type=int, nargs="+", default=None)
    parser.add_argument("--kappa", type=float, nargs="+", default=[0.5, 5.0, 50.0])
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    args = parser.parse_args(argv)
    ns = args.n or ([10_000] if args.quick else [10_000, 1_000_000])
    reps = args.reps or (3 if args.quick else 5)
    result = run_throughput(args.out, ns, args.kappa, reps, args.dtype)
    print((args.out / "throughput.md").read_text())
    return result


if __name__ == "__main__":
    main()
