"""Microbenchmark of the tan-half regression's log-density + gradient on the JAX routes.

Run (one process; the implementations of each table interleaved round-robin)::

    python -m vm_ppl.bench.tan_half [--n 10 1000 10000 100000] [--rounds 15]
                                    [--tables pymc pytensor_grad numpyro core density]
                                    [--json out.json]

Timed tables, each the median (and the 25-75 % range) over ``--rounds`` rounds of the
time per call of ``jax.jit(jax.value_and_grad(f))``, each round timing a batch of calls
sized to ~20 ms per implementation:

``pymc``
    ``pymc.sampling.jax.get_jaxified_logp`` of the tan-half regression
    ``y ~ VonMises(mu0 + 2 atan(x beta), kappa)`` (float64; what
    ``pm.sample(nuts_sampler="numpyro" | "blackjax")`` and nutpie's JAX backend
    differentiate): :func:`vm_ppl.pymc.circular_regression_model` (the fused
    :class:`~vm_ppl.pymc.ops.VonMisesTanHalfLogp`), the same model with the fusion
    rewrite excluded (``vonmises_logp`` of ``mu0 + 2 arctan``), and the same model with
    ``pm.VonMises`` (observations wrapped into ``[-pi, pi)``).
``pytensor_grad``
    the same three models' logp and PyTensor's symbolic gradient (``pytensor.grad``),
    rewritten and converted by PyTensor's JAX backend and jitted as one function: what
    nutpie's ``backend="jax"`` runs with its default ``gradient_backend="pytensor"``, and
    ``pm.sample(compile_kwargs={"mode": "JAX"})``. vm_ppl's gradient terms are ops
    (:class:`~vm_ppl.pymc.ops.VonMisesTanHalfSinSq`, ...) that run the density's own core
    computation, which XLA then evaluates once for value and gradient.
``numpyro``
    ``numpyro.infer.util.log_density`` of :func:`vm_ppl.numpyro.circular_regression_model`
    against the same model with ``numpyro.distributions.VonMises`` (float32 and float64).
``core``
    the summed :func:`vm_ppl.tan_half_log_prob` against :func:`vm_ppl.log_prob` of
    ``mu0 + 2 arctan(eta)`` and the naive expression
    ``k cos(y - mu0 - 2 arctan(eta)) - log(2 pi) - log(i0(k))`` (float64).
``density``
    the summed :func:`vm_ppl.log_prob` against ``k cos(y - mu) - log(2 pi) - log(i0(k))``
    (float64, no link).

``accuracy`` (not timed; needs mpmath)
    max |error| / (|log p| + |log normaliser|) against mpmath (40 digits, at the exact
    binary inputs) over 192 points per concentration (within 3 sd of the mode, at the
    mode, at the antipode, three 2 pi windows; the points of ``tests/test_tan_half.py``),
    for :func:`vm_ppl.tan_half_log_prob` (also called on ``SMALL_SIZE`` points at a time:
    the float64 small-array path, XLA's sin/cos) and for :func:`vm_ppl.log_prob` of the
    rounded ``mu0 + 2 arctan(eta)``, in float32 and float64.

``trace`` (not in the default set; timed per trace, not per call)
    the time of one fresh ``jax.make_jaxpr`` of the ``pymc`` table's ``value_and_grad``
    (:func:`table_trace`): paid per trace on every ``pm.sample`` call of PyMC's JAX
    samplers, before compilation.

Ratios are against the built-in (``pm.VonMises``, ``numpyro.distributions.VonMises``,
naive expression). Prints Markdown tables with the CPU model and versions.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import time
import warnings
from collections.abc import Callable

import numpy as np

from ._devices import request_host_devices

TRUE = {"mu0": 1.0, "beta": 0.8, "kappa": 5.0}


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rng.vonmises(TRUE["mu0"] + 2.0 * np.arctan(TRUE["beta"] * x), TRUE["kappa"])
    return x, np.mod(y, 2.0 * np.pi), np.mod(y + np.pi, 2.0 * np.pi) - np.pi


def _time_round(fn: Callable, arg, calls: int) -> float:
    import jax

    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn(arg)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / calls


def _in_loop(fn: Callable, calls: int) -> Callable:
    """``calls`` evaluations of ``fn`` (a value-and-gradient function) inside one compiled
    ``fori_loop``, each at a point moved by 1e-9 x the previous gradient (a true data
    dependency, so nothing is hoisted out of the loop). This is how NumPyro's and
    BlackJAX's NUTS (``pm.sample(nuts_sampler="numpyro" | "blackjax")``) call the
    gradient: inside one jitted program, with no per-call dispatch."""
    import jax

    def run(p):
        def body(_, carry):
            q, acc = carry
            v, g = fn(q)
            q = jax.tree_util.tree_map(lambda a, b: a + 1e-9 * b, q, g)
            return q, acc + v

        value = jax.eval_shape(fn, p)[0]  # the accumulator's type, without evaluating fn
        acc = jax.numpy.zeros(value.shape, value.dtype)
        return jax.lax.fori_loop(0, calls, body, (p, acc))[1]

    return jax.jit(run)


def xla_flops(fn: Callable, arg) -> float:
    """The flop count of XLA's cost analysis for the jitted ``fn`` at ``arg``: the number
    XLA's CPU client compares with 1,000 to run a program inline (:func:`_race`)."""
    cost = fn.lower(arg).compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"]


def _race(fns: dict[str, Callable], args: dict, rounds: int, mode: str = "call") -> dict:
    """Interleaved timing: per round, each function for a batch of calls (~20 ms).

    ``mode="call"``: one dispatched call of the jitted function per evaluation (what
    nutpie's JAX backend does per gradient); ``mode="loop"``: the evaluations run inside
    one compiled loop (:func:`_in_loop`; what NUTS in NumPyro/BlackJAX does). At small n
    a dispatched call is dominated by dispatch: XLA's CPU client runs a program on the
    calling thread when its cost analysis counts fewer than 1,000 flops, and hands it to a
    thread pool otherwise (``cheap_computation_`` in XLA's ``pjrt/cpu/cpu_client.cc``),
    which costs ~20-40 µs more here; ``call`` results record each program's count
    (``xla_flops``). ``loop`` times measure the computation.
    """
    import jax

    calls = {}
    flops = {}
    for name, fn in fns.items():
        jax.block_until_ready(fn(args[name]))  # compile
        if mode == "call":  # (lower().compile() compiles once more)
            flops[name] = xla_flops(fn, args[name])
        t = min(_time_round(fn, args[name], 1) for _ in range(3))
        calls[name] = int(max(1, min(2000, 0.02 / max(t, 1e-7))))
    if mode == "loop":
        fns = {name: _in_loop(fn, calls[name]) for name, fn in fns.items()}
        for name, fn in fns.items():
            jax.block_until_ready(fn(args[name]))  # compile
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if mode == "loop":  # one call of the loop = calls[name] evaluations
                times[name].append(_time_round(fn, args[name], 1) / calls[name])
            else:
                times[name].append(_time_round(fn, args[name], calls[name]))
    return {
        name: {
            **_quartiles_us(t),
            "calls_per_round": calls[name],
            **({"xla_flops": flops[name]} if mode == "call" else {}),
        }
        for name, t in times.items()
    }


def _quartiles_us(seconds: list[float]) -> dict:
    """Median and 25/75 % quantiles of times in seconds, in µs (the tables' cells)."""
    return {
        f"{key}_us": 1e6 * float(np.percentile(seconds, q))
        for key, q in (("median", 50), ("p25", 25), ("p75", 75))
    }


def _jaxified(model, exclude: tuple[str, ...] = (), pytensor_gradient: bool = False):
    """``get_jaxified_logp`` (optionally without some rewrites), as value_and_grad.

    With ``pytensor_gradient``: logp and PyTensor's symbolic gradient, rewritten and
    converted by PyTensor's JAX backend as one jitted function (what nutpie's
    ``backend="jax"`` runs with its default ``gradient_backend="pytensor"``, and
    ``pm.sample(compile_kwargs={"mode": "JAX"})``), returning ``(logp, [gradients])``.
    """
    import jax
    import pytensor.tensor as pt
    from pymc.sampling.jax import _replace_shared_variables, get_jaxified_logp
    from pytensor.compile import mode as pt_mode
    from pytensor.graph import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify

    point = model.initial_point()
    start = [np.asarray(point[v.name]) for v in model.value_vars]
    if not (exclude or pytensor_gradient):
        logp = get_jaxified_logp(model)  # (+logp, despite the flag's name)
        return jax.jit(jax.value_and_grad(logp)), start
    lp = model.logp()
    outputs = [lp, *pt.grad(lp, model.value_vars)] if pytensor_gradient else [lp]
    outputs = _replace_shared_variables(outputs)
    fgraph = FunctionGraph(inputs=model.value_vars, outputs=outputs, clone=True)
    pt_mode.JAX.excluding(*exclude).optimizer.rewrite(fgraph)
    graph_fn = jax_funcify(fgraph)
    if pytensor_gradient:

        def value_and_grad(v):
            out = graph_fn(*v)
            return out[0], list(out[1:])

        return jax.jit(value_and_grad), start

    def logp(v):
        return graph_fn(*v)[0]

    return jax.jit(jax.value_and_grad(logp)), start


def table_trace(ns, rounds: int) -> list[dict]:
    """Time of one fresh trace (``jax.make_jaxpr``) of the jaxified PyMC logp + gradient.

    What every ``pm.sample(nuts_sampler="numpyro" | "blackjax")`` call pays per trace of
    the model before XLA's compilation (BlackJAX traces it several times per call; a
    persistent compilation cache does not save it). Each round jaxifies both models anew
    (the PyTensor graph is rewritten and converted again, untimed) and times the trace of
    ``value_and_grad``; rounds interleave the two.
    """
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    import vm_ppl.pymc as vmp

    rows = []
    for n in ns:
        x, y_ours, y_builtin = _data(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = {
                "vm_ppl": vmp.circular_regression_model(x, y_ours),
                "pm.VonMises": _builtin_pymc_model(x, y_builtin),
            }
        starts = {
            k: [jax.numpy.asarray(m.initial_point()[v.name]) for v in m.value_vars]
            for k, m in models.items()
        }
        times: dict[str, list[float]] = {k: [] for k in models}
        for _ in range(rounds + 1):  # the first round traces the helpers once: dropped
            for name, model in models.items():
                logp = get_jaxified_logp(model)
                t0 = time.perf_counter()
                jax.make_jaxpr(jax.value_and_grad(logp))(starts[name])
                times[name].append(time.perf_counter() - t0)
        rows.append({"n": n, **{k: _quartiles_us(t[1:]) for k, t in times.items()}})
    return rows


def _builtin_pymc_model(x, y):
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import circular

    with pm.Model(coords={"obs": np.arange(x.size), "feature": [0]}) as model:
        xd = pm.Data("X", x[:, None], dims=("obs", "feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        beta = pm.Cauchy("beta", 0.0, 1.0, dims="feature")
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        pm.VonMises("y", mu0 + 2.0 * pt.arctan(pt.dot(xd, beta)), kappa, observed=y, dims="obs")
    return model


def table_pymc(ns, rounds: int, mode: str = "call", pytensor_gradient: bool = False) -> list[dict]:
    import jax

    import vm_ppl.pymc as vmp

    jaxified = functools.partial(_jaxified, pytensor_gradient=pytensor_gradient)
    rows = []
    for n in ns:
        x, y_ours, y_builtin = _data(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = vmp.circular_regression_model(x, y_ours)
            fns = {
                "vm_ppl": jaxified(ours),
                "vm_ppl, no fusion": jaxified(ours, ("vonmises_tan_half_fuse_jax",)),
                "pm.VonMises": jaxified(_builtin_pymc_model(x, y_builtin)),
            }
        res = _race(
            {k: f for k, (f, _) in fns.items()},
            {k: [jax.numpy.asarray(a) for a in s] for k, (_, s) in fns.items()},
            rounds,
            mode,
        )
        rows.append({"n": n, **res})
    return rows


def _numpyro_models():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    from vm_ppl.numpyro import circular_regression_model

    def builtin(X, y):
        mu0 = numpyro.sample("mu0", nd.VonMises(0.0, 1e-4))
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0).expand([1]).to_event(1))
        kappa = numpyro.sample("kappa", nd.Gamma(2.0, 0.2))
        with numpyro.plate("obs", X.shape[0]):
            numpyro.sample("y", nd.VonMises(mu0 + 2.0 * jnp.arctan(X @ beta), kappa), obs=y)

    return {"vm_ppl": circular_regression_model, "numpyro VonMises": builtin}


def table_numpyro(ns, rounds: int, mode: str = "call") -> list[dict]:
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    rows = []
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            for n in ns:
                x, y_ours, y_builtin = _data(n)
                X = jnp.asarray(x[:, None], dtype)
                fns, args = {}, {}
                for name, model in _numpyro_models().items():
                    y = jnp.asarray(y_ours if name == "vm_ppl" else y_builtin, dtype)

                    def lp(p, model=model, X=X, y=y):
                        params = {"mu0": p[0], "beta": p[1:2], "kappa": p[2]}
                        return log_density(model, (X, y), {}, params)[0]

                    fns[name] = jax.jit(jax.value_and_grad(lp))
                    args[name] = jnp.asarray([0.9, 0.7, 4.0], dtype)
                rows.append({"n": n, "dtype": dtype, **_race(fns, args, rounds, mode)})
    return rows


def _core_fns(x, y) -> dict[str, Callable]:
    import jax.numpy as jnp
    from jax.scipy.special import i0

    from vm_ppl import log_prob, tan_half_log_prob

    def fused(p):
        return tan_half_log_prob(y, p[0], p[1] * x, p[2]).sum()

    def arctan_route(p):
        return log_prob(y, p[0] + 2 * jnp.arctan(p[1] * x), p[2]).sum()

    def naive(p):
        mu = p[0] + 2 * jnp.arctan(p[1] * x)
        return (p[2] * jnp.cos(y - mu) - jnp.log(2 * jnp.pi) - jnp.log(i0(p[2]))).sum()

    return {"tan_half_log_prob": fused, "log_prob(mu0 + 2 atan)": arctan_route, "naive": naive}


def _density_fns(x, y) -> dict[str, Callable]:
    """No link: the comparison of issue #15 (``p[1]``, the slope, is unused)."""
    import jax.numpy as jnp
    from jax.scipy.special import i0

    from vm_ppl import log_prob

    def ours(p):
        return log_prob(y, p[0], p[2]).sum()

    def naive(p):
        return (p[2] * jnp.cos(y - p[0]) - jnp.log(2 * jnp.pi) - jnp.log(i0(p[2]))).sum()

    return {"log_prob": ours, "naive": naive}


def table_core(ns, rounds: int, mode: str = "call", build=_core_fns) -> list[dict]:
    import jax
    import jax.numpy as jnp

    rows = []
    with jax.enable_x64(True):
        for n in ns:
            x, y, _ = _data(n)
            fs = build(jnp.asarray(x), jnp.asarray(y))
            fns = {k: jax.jit(jax.value_and_grad(f)) for k, f in fs.items()}
            p = jnp.asarray([0.9, 0.7, 4.0])
            rows.append({"n": n, **_race(fns, dict.fromkeys(fns, p), rounds, mode)})
    return rows


def _accuracy_points(k: float, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    m0 = rng.uniform(-np.pi, np.pi, n)
    eta = rng.standard_cauchy(n)
    d = rng.normal(0.0, 3.0 / np.sqrt(max(k, 1e-2)), n)
    d[::4] = np.pi + rng.normal(0.0, 1e-3, d[::4].shape)  # antipode
    d[1::8] = 0.0  # the mode
    y = m0 + 2 * np.arctan(eta) + d + 2 * np.pi * rng.integers(-1, 2, n)
    return tuple(a.astype(dtype) for a in (y, m0, eta))


def _mp_log_prob(y, m0, eta, k) -> float:
    import mpmath as mp

    with mp.workdps(40):
        y, m0, eta, k = (mp.mpf(float(v)) for v in (y, m0, eta, k))
        d = y - m0 - 2 * mp.atan(eta)
        return float(
            -2 * k * mp.sin(d / 2) ** 2 - mp.log(2 * mp.pi) - mp.log(mp.besseli(0, k) * mp.exp(-k))
        )


def table_accuracy(
    kappas=(0.5, 10.0, 1e3, 1e4, 1e5, 1e6), n: int = 64, seeds=(0, 1, 2)
) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from vm_ppl import log_prob, tan_half_log_prob
    from vm_ppl._fastmath import SMALL_SIZE

    m = SMALL_SIZE
    small = f"tan_half_log_prob, {m} per call"
    rows = []
    with jax.enable_x64(True):
        for dtype in (np.float32, np.float64):
            for k in kappas:
                err = dict.fromkeys(("tan_half_log_prob", small, "log_prob(mu0 + 2 atan)"), 0.0)
                for seed in seeds:
                    y, m0, eta = _accuracy_points(k, n, dtype, seed)
                    ref = np.array([_mp_log_prob(*a, k) for a in zip(y, m0, eta, strict=True)])
                    scale = np.abs(ref) + abs(_mp_log_prob(0.0, 0.0, 0.0, k))
                    kk = dtype(k)
                    outs = {
                        "tan_half_log_prob": tan_half_log_prob(y, m0, eta, kk),
                        # arrays of SMALL_SIZE: XLA's sin/cos in float64
                        small: np.concatenate(
                            [
                                tan_half_log_prob(y[j : j + m], m0[j : j + m], eta[j : j + m], kk)
                                for j in range(0, n, m)
                            ]
                        ),
                        "log_prob(mu0 + 2 atan)": log_prob(y, m0 + 2 * jnp.arctan(eta), kk),
                    }
                    for name, out in outs.items():
                        e = np.max(np.abs(np.asarray(out, np.float64) - ref) / scale)
                        err[name] = max(err[name], float(e))
                rows.append({"dtype": np.dtype(dtype).name, "kappa": k, **err})
    return rows


def accuracy_markdown(rows: list[dict]) -> str:
    names = [k for k in rows[0] if k not in ("dtype", "kappa")]
    lines = [
        "### max |error| / (|log p| + |log normaliser|) against mpmath",
        "",
        "| dtype | kappa | " + " | ".join(names) + " |",
        "|" + "---|" * (2 + len(names)),
    ]
    for r in rows:
        lines.append(
            f"| {r['dtype']} | {r['kappa']:g} | " + " | ".join(f"{r[k]:.1e}" for k in names) + " |"
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    from importlib.metadata import version

    pkgs = ("jax", "numpyro", "pymc", "pytensor")
    return ", ".join(f"{p} {version(p)}" for p in pkgs)


def markdown(name: str, rows: list[dict], reference: str) -> str:
    impls = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    lead = ["n"] + (["dtype"] if "dtype" in rows[0] else [])
    head = lead + [f"{k} µs (25-75 %)" for k in impls]
    head += [f"{k} / {reference}" for k in impls if k != reference]
    lines = [f"### {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r[k]:,}" if k == "n" else str(r[k]) for k in lead]
        cells += [
            f"{r[k]['median_us']:.1f} ({r[k]['p25_us']:.1f}-{r[k]['p75_us']:.1f})" for k in impls
        ]
        ref = r[reference]["median_us"]
        cells += [f"{r[k]['median_us'] / ref:.2f}" for k in impls if k != reference]
        if "xla_flops" in r[reference]:
            cells.append(" / ".join(f"{r[k]['xla_flops']:,.0f}" for k in impls))
        lines.append("| " + " | ".join(cells) + " |")
    if "xla_flops" in rows[0][reference]:
        lines[2] = lines[2][:-1] + "| XLA flops (" + " / ".join(impls) + ") |"
        lines[3] += "---|"
    return "\n".join(lines)


TABLES = {
    "pymc": (table_pymc, "jaxified PyMC logp + gradient (float64)", "pm.VonMises"),
    "pytensor_grad": (
        functools.partial(table_pymc, pytensor_gradient=True),
        "PyMC logp + PyTensor's symbolic gradient on the JAX backend (float64)",
        "pm.VonMises",
    ),
    "numpyro": (table_numpyro, "native NumPyro log_density + gradient", "numpyro VonMises"),
    "core": (table_core, "core kernel, value_and_grad of the sum (float64)", "naive"),
    "density": (
        functools.partial(table_core, build=_density_fns),
        "core log_prob without a link, value_and_grad of the sum (float64)",
        "naive",
    ),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 1000, 10000, 100000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--tables", nargs="+", choices=(*TABLES, "accuracy", "trace"), default=list(TABLES)
    )
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=("call", "loop"),
        default=["call", "loop"],
        help="time dispatched calls, evaluations inside one compiled loop, or both",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=1,
        help="host devices JAX starts with (parallel chains run on 4 in `vm-ppl bench ess`)",
    )
    parser.add_argument("--json", default=None, help="save the records to this file")
    args = parser.parse_args(argv)
    # Start JAX's CPU backend now, with the devices asked for: importing
    # pymc.sampling.jax (the pymc table) before it has started sets XLA_FLAGS to 100 host
    # devices. XLA splits costly loops into parallel tasks, which run slower when host
    # devices share the cores.
    devices = request_host_devices(args.devices)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {_cpu_model()}; "
        f"{_versions()}; {devices} host device(s); median of {args.rounds} interleaved "
        "rounds\n"
    )
    result = {}
    for name in args.tables:
        if name == "accuracy":
            result[name] = table_accuracy()
            print(accuracy_markdown(result[name]) + "\n", flush=True)
            continue
        if name == "trace":
            result[name] = table_trace(args.n, args.rounds)
            title = "fresh trace of the jaxified PyMC logp + gradient (jax.make_jaxpr)"
            print(markdown(title, result[name], "pm.VonMises") + "\n", flush=True)
            continue
        fn, title, ref = TABLES[name]
        for mode in args.mode:
            key = name if mode == "call" else f"{name} (loop)"
            result[key] = fn(args.n, args.rounds, mode)
            how = "per dispatched call" if mode == "call" else "inside a compiled loop"
            print(markdown(f"{title}, {how}", result[key], ref) + "\n", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
