"""Sampler comparison for a circular regression: ESS per second, every sampler x every
von Mises implementation.

Run (one process; writes ``DIR/ess.json``, ``DIR/ess.md``, ``DIR/ess.png``)::

    vm-ppl bench ess [--quick] [--out DIR] [--n 1000 100000] [--samplers pymc nutpie-jax]
                     [--repeats 3]
    python -m vm_ppl.bench.ess ...

Model (tan-half link, Fisher & Lee 1992), simulated with known parameters
``mu0 = 1, beta = 0.8, kappa = 5`` and standard normal ``x``::

    y ~ VonMises(mu0 + 2 atan(beta x), kappa),  mu0 ~ U(circle), beta ~ Cauchy(0, 1),
    kappa ~ Gamma(2, 0.2)

Samplers: ``pymc`` (default ``pm.sample``, PyMC's default ``cores``), ``pymc-numba``
(``compile_kwargs={"mode": "NUMBA"}``), ``pymc-jax`` (``compile_kwargs={"mode": "JAX"}``:
PyTensor's symbolic gradient run by its JAX backend), ``nutpie-numba``, ``nutpie-jax``
(``gradient_backend="jax"``), ``nutpie-jax-pytensor-grad`` (nutpie's default
``gradient_backend="pytensor"``), ``numpyro`` and
``blackjax`` (through PyMC, ``nuts_sampler=...``), and ``numpyro-native`` (a NumPyro
model). Implementations:
``vm_ppl`` (:func:`vm_ppl.pymc.circular_regression_model`, observations in
``[0, 2 pi)``; :class:`vm_ppl.numpyro.VonMises`) and ``builtin`` (``pm.VonMises`` /
``numpyro.distributions.VonMises`` + ``CircularReparam``, observations wrapped into
``[-pi, pi)`` since both give ``-inf`` outside).

Each configuration goes through three steps, the implementations interleaved:

1. **compile**: the sampler is prepared (model build, compilation where the sampler
   allows it) and run once with :data:`COMPILE_SETTINGS` (5 warm-up + 5 draws, so that
   the sampling itself takes a negligible time); ``compile_s`` is the wall time of this
   step, measured directly (an upper bound of the compilation time, never negative);
2. **warm**: prepared again with the real settings and run once, untimed (JAX samplers
   compile again for the new number of draws; the cache below serves the timed runs);
3. **timed**: ``--repeats`` runs (default 1) with new seeds.

``wall_s``, ``cpu_s``, the ESS and ``ess_per_s`` are medians over the timed runs, with
their min-max spread in ``*_range`` keys (``ess_per_s`` is the median of the per-run
ratios ``min_ess / wall_s``, sampling time only). ``cpu_s`` counts this process and its
descendants (:class:`CpuMeter`; PyMC's chain workers included); ``cpu_util = cpu_s /
wall_s`` is the CPU utilisation (cores busy on average), not a parallel efficiency.
ESS and R-hat of the angle ``mu0`` are computed on the circle
(:func:`vm_ppl.diagnostics.ess` / :func:`vm_ppl.diagnostics.rhat`, :data:`CIRCULAR`);
``min_ess`` is the minimum of bulk and tail ESS over all parameters, ``mean_ess`` the mean
over parameters of min(bulk, tail). ``steps_per_draw`` (median over the timed runs) is
the mean number of leapfrog steps, i.e. gradient evaluations, per draw after warm-up:
with the same posterior, ESS/s differs between implementations through the time per
gradient and, by chance of adaptation, through the steps per draw, which this separates.
A sampler that raises becomes a record with an
``error`` key; the run goes on. 4 chains, chains started at the true values (no jitter)
so that the mirrored tan-half mode is not visited.

``--model hierarchical`` (issue #14) runs the same comparison on a group-effects model:
:data:`HIER_GROUPS` groups of ``n_obs / HIER_GROUPS`` observations (default 20 x 50), two
standard normal predictors for the mean direction, one for the log-concentration, and
random intercepts for the mean direction on the link scale (non-centred)::

    y ~ VonMises(mu0 + 2 atan(x beta + sigma_mu u_mu[group]), exp(gamma0 + z gamma)),
    u_mu ~ N(0, 1), sigma_mu ~ HalfNormal(1), gamma0 ~ N(2, 1), gamma ~ N(0, 1)

simulated with :data:`HIER_TRUE`. ``vm_ppl`` is :func:`vm_ppl.pymc.circular_regression_model`
(``Z=``, ``groups=``) and :func:`vm_ppl.numpyro.circular_regression_model`; ``builtin`` the
same model with ``pm.VonMises`` / ``numpyro.distributions.VonMises`` (+ ``CircularReparam``
on ``mu0``, the one circular latent). Chains start at the true values, group effects
included; every sampler keeps its default (diagonal) mass matrix.

JAX-based samplers that rebuild their jitted function on every call (PyMC's ``numpyro`` /
``blackjax`` routes, NumPyro's ``MCMC.run`` with parallel chains) would recompile on the
second run too; the harness therefore enables JAX's persistent compilation cache in a
fresh temporary folder for the whole benchmark, so the first run compiles (cold cache)
and the second finds the compiled executables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._devices import request_host_devices

TRUE = {"mu0": 1.0, "beta": 0.8, "kappa": 5.0}
#: Parameters whose ESS and R-hat are reported (those in the posterior).
PARAMS = ("mu0", "beta", "kappa", "gamma0", "gamma", "sigma_mu", "u_mu")
MODELS = ("regression", "hierarchical")
#: Groups of the hierarchical model and its true population-level values.
HIER_GROUPS = 20
HIER_TRUE = {"mu0": 1.0, "beta": (0.8, -0.5), "gamma0": 1.6, "gamma": (0.5,), "sigma_mu": 0.5}
IMPLEMENTATIONS = ("vm_ppl", "builtin")
#: Angle parameters: ESS and R-hat on the circle.
CIRCULAR = ("mu0",)
RECORD_KEYS = (
    "sampler",
    "implementation",
    "n_obs",
    "wall_s",
    "cpu_s",
    "cpu_util",
    "compile_s",
    "min_ess",
    "mean_ess",
    "ess_per_s",
    "steps_per_draw",
    "divergences",
    "r_hat_max",
    "wall_s_range",
    "ess_per_s_range",
    "min_ess_range",
)
#: Keys summarised by their median (and min-max range where listed in RECORD_KEYS).
_MEDIAN_KEYS = (
    "wall_s",
    "cpu_s",
    "cpu_util",
    "min_ess",
    "mean_ess",
    "ess_per_s",
    "steps_per_draw",
    "beta_mean",
)


@dataclass(frozen=True)
class Settings:
    """Sampler settings shared by every configuration."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0


#: Draws of the compile step (:func:`measure_group`): few enough that its wall time is
#: the compilation, enough for every sampler to accept them.
COMPILE_DRAWS = 5


@dataclass(frozen=True)
class Problem:
    """Simulated circular-regression data for one implementation.

    Attributes
    ----------
    x : ndarray
        Standard normal covariate, shape (n_obs,).
    y : ndarray
        Observed angles, in ``[0, 2 pi)`` for ``vm_ppl`` and ``[-pi, pi)`` for ``builtin``.
    implementation : str
        ``"vm_ppl"`` or ``"builtin"``.
    """

    x: np.ndarray
    y: np.ndarray
    implementation: str
    init: dict = field(default_factory=lambda: dict(TRUE))
    model: str = "regression"  #: or "hierarchical" (then ``x`` is (n_obs, 2))
    z: np.ndarray | None = None  #: (n_obs, 1) covariate of log kappa (hierarchical)
    groups: np.ndarray | None = None  #: (n_obs,) group index (hierarchical)


#: A sampler: ``prepare(problem, settings)`` returns ``run(seed) -> InferenceData``.
Runner = Callable[[int], object]
Sampler = Callable[[Problem, Settings], Runner]


def _window(y: np.ndarray, implementation: str) -> np.ndarray:
    if implementation == "vm_ppl":
        return np.mod(y, 2.0 * np.pi)
    return np.mod(y + np.pi, 2.0 * np.pi) - np.pi


def simulate_hierarchical(n_obs: int, implementation: str, seed: int = 0) -> Problem:
    """Simulate the group-effects data (module docstring), :data:`HIER_GROUPS` groups of
    ``n_obs // HIER_GROUPS`` observations; same draws for both implementations."""
    rng = np.random.default_rng(seed)
    per = max(n_obs // HIER_GROUPS, 1)
    groups = np.repeat(np.arange(HIER_GROUPS), per)
    n = groups.size
    x = rng.standard_normal((n, 2))
    z = rng.standard_normal((n, 1))
    u_mu = rng.standard_normal(HIER_GROUPS)
    t = HIER_TRUE
    eta = x @ np.asarray(t["beta"]) + t["sigma_mu"] * u_mu[groups]
    kappa = np.exp(t["gamma0"] + z @ np.asarray(t["gamma"]))
    y = _window(rng.vonmises(t["mu0"] + 2.0 * np.arctan(eta), kappa), implementation)
    init = {
        "mu0": t["mu0"],
        "beta": np.asarray(t["beta"]),
        "gamma0": t["gamma0"],
        "gamma": np.asarray(t["gamma"]),
        "sigma_mu": t["sigma_mu"],
        "u_mu": u_mu,
    }
    return Problem(
        x=x, y=y, implementation=implementation, init=init, model="hierarchical", z=z, groups=groups
    )


def simulate(n_obs: int, implementation: str, seed: int = 0, model: str = "regression") -> Problem:
    """Simulate the regression data (same draws for both implementations).

    Parameters
    ----------
    n_obs : int
        Number of observations.
    implementation : str
        Decides the observation window (module docstring).
    seed : int
        NumPy seed.
    model : {"regression", "hierarchical"}
        :func:`simulate_hierarchical` for the latter.

    Returns
    -------
    Problem
    """
    if model == "hierarchical":
        return simulate_hierarchical(n_obs, implementation, seed)
    if model != "regression":
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_obs)
    mean = TRUE["mu0"] + 2.0 * np.arctan(TRUE["beta"] * x)
    y = rng.vonmises(mean, TRUE["kappa"])  # in [-pi, pi]
    if implementation == "vm_ppl":
        y = np.mod(y, 2.0 * np.pi)
    else:
        y = np.mod(y + np.pi, 2.0 * np.pi) - np.pi
    return Problem(x=x, y=y, implementation=implementation)


# --------------------------------------------------------------------------- models


def _pymc_hierarchical(problem: Problem):
    """The group-effects PyMC model of ``problem`` with its implementation's von Mises."""
    if problem.implementation == "vm_ppl":
        from vm_ppl.pymc import circular_regression_model

        return circular_regression_model(
            problem.x,
            problem.y,
            link="tan_half",
            Z=problem.z,
            groups=problem.groups,
            n_groups=HIER_GROUPS,
        )
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import circular

    n = problem.x.shape[0]
    coords = {
        "obs": np.arange(n),
        "feature": [0, 1],
        "kappa_feature": [0],
        "group": np.arange(HIER_GROUPS),
    }
    with pm.Model(coords=coords) as model:
        x = pm.Data("X", problem.x, dims=("obs", "feature"))
        z = pm.Data("Z", problem.z, dims=("obs", "kappa_feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        beta = pm.Cauchy("beta", 0.0, 1.0, dims="feature")
        sigma_mu = pm.HalfNormal("sigma_mu", 1.0)
        u_mu = pm.Normal("u_mu", 0.0, 1.0, dims="group")
        gamma0 = pm.Normal("gamma0", 2.0, 1.0)
        gamma = pm.Normal("gamma", 0.0, 1.0, dims="kappa_feature")
        eta = pt.dot(x, beta) + (sigma_mu * u_mu)[problem.groups]
        kappa = pt.exp(gamma0 + pt.dot(z, gamma))
        pm.VonMises("y", mu0 + 2.0 * pt.arctan(eta), kappa, observed=problem.y, dims="obs")
    return model


def _pymc_model(problem: Problem):
    """The PyMC model of ``problem`` with its implementation's von Mises."""
    if problem.model == "hierarchical":
        return _pymc_hierarchical(problem)
    if problem.implementation == "vm_ppl":
        from vm_ppl.pymc import circular_regression_model

        return circular_regression_model(problem.x, problem.y, link="tan_half")
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import circular

    n = problem.x.shape[0]
    with pm.Model(coords={"obs": np.arange(n), "feature": [0]}) as model:
        x = pm.Data("X", problem.x[:, None], dims=("obs", "feature"))
        mu0 = pm.Uniform("mu0", -np.pi, np.pi, default_transform=circular)
        beta = pm.Cauchy("beta", 0.0, 1.0, dims="feature")
        kappa = pm.Gamma("kappa", alpha=2.0, beta=0.2)
        mu = mu0 + 2.0 * pt.arctan(pt.dot(x, beta))
        pm.VonMises("y", mu, kappa, observed=problem.y, dims="obs")
    return model


def _pymc_init(problem: Problem) -> dict:
    if problem.model == "hierarchical":
        return {k: np.asarray(v, dtype=float) for k, v in problem.init.items()}
    return {
        "mu0": problem.init["mu0"],
        "beta": np.array([problem.init["beta"]]),
        "kappa": problem.init["kappa"],
    }


def _numpyro_hierarchical(implementation: str):
    """The group-effects NumPyro model ``model(x, z, groups, y)``: vm_ppl's
    :func:`~vm_ppl.numpyro.circular_regression_model`, or the same with the built-in
    ``VonMises`` and ``CircularReparam`` on ``mu0``."""
    if implementation == "vm_ppl":
        from vm_ppl.numpyro import circular_regression_model

        def ours(x, z, groups, y):
            circular_regression_model(
                x, y, link="tan_half", Z=z, groups=groups, n_groups=HIER_GROUPS
            )

        return ours
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd
    from numpyro import handlers
    from numpyro.infer.reparam import CircularReparam

    def builtin(x, z, groups, y):
        # Nearly uniform circular prior (the built-in needs k > 0) + CircularReparam.
        mu0 = numpyro.sample("mu0", nd.VonMises(0.0, 1e-4))
        beta = numpyro.sample("beta", nd.Cauchy(0.0, 1.0).expand([2]).to_event(1))
        sigma_mu = numpyro.sample("sigma_mu", nd.HalfNormal(1.0))
        with numpyro.plate("group", HIER_GROUPS):
            u_mu = numpyro.sample("u_mu", nd.Normal(0.0, 1.0))
        gamma0 = numpyro.sample("gamma0", nd.Normal(2.0, 1.0))
        gamma = numpyro.sample("gamma", nd.Normal(0.0, 1.0).expand([1]).to_event(1))
        eta = x @ beta + (sigma_mu * u_mu)[groups]
        kappa = jnp.exp(gamma0 + z @ gamma)
        with numpyro.plate("obs", x.shape[0]):
            numpyro.sample("y", nd.VonMises(mu0 + 2 * jnp.arctan(eta), kappa), obs=y)

    return handlers.reparam(builtin, config={"mu0": CircularReparam()})


def _numpyro_model(implementation: str):
    from .numpyro_ess import _models

    models = _models()
    return models["vm_ppl"] if implementation == "vm_ppl" else models["builtin+CircularReparam"]


# ------------------------------------------------------------------------- samplers


def require_blackjax() -> None:
    """Raise ``ImportError`` naming the extra to install when blackjax is missing
    (an optional dependency: ``pip install "vm_ppl[blackjax]"``)."""
    try:
        import blackjax  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'the "blackjax" sampler needs blackjax, an optional dependency: '
            'pip install "vm_ppl[blackjax]" (or "vm_ppl[all]")'
        ) from exc


def _pm_sample(**kwargs) -> Sampler:
    """A sampler calling ``pm.sample`` with extra keyword arguments."""

    def prepare(problem: Problem, settings: Settings) -> Runner:
        import pymc as pm

        if kwargs.get("nuts_sampler") == "blackjax":
            require_blackjax()
        model = _pymc_model(problem)
        extra = dict(kwargs)
        if extra.get("nuts_sampler") in ("numpyro", "blackjax"):
            extra["nuts_sampler_kwargs"] = {"jitter": False, "chain_method": "parallel"}
        else:
            # PyMC's default cores: without psutil it halves os.cpu_count() (so 2 CPUs run
            # the chains in 1 job); forcing cores=2 here costs ~4 s of worker start-up.
            extra["init"] = "adapt_diag"

        def run(seed: int):
            with model:
                return pm.sample(
                    draws=settings.draws,
                    tune=settings.tune,
                    chains=settings.chains,
                    random_seed=seed,
                    initvals=_pymc_init(problem),
                    progressbar=False,
                    compute_convergence_checks=False,
                    **extra,
                )

        return run

    return prepare


def _nutpie(backend: str, gradient_backend: str = "jax") -> Sampler:
    """A sampler compiling the PyMC model with nutpie once, then sampling.

    ``gradient_backend`` (JAX backend only): ``"jax"`` differentiates the jaxified logp
    with JAX; ``"pytensor"`` (nutpie's default) converts PyTensor's symbolic gradient.
    """

    def prepare(problem: Problem, settings: Settings) -> Runner:
        import nutpie

        model = _pymc_model(problem)
        kwargs = {"gradient_backend": gradient_backend} if backend == "jax" else {}
        compiled = nutpie.compile_pymc_model(
            model, backend=backend, initial_points=_pymc_init(problem), jitter_rvs=set(), **kwargs
        )

        def run(seed: int):
            return nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                seed=seed,
                progress_bar=False,
            )

        return run

    return prepare


def _numpyro_native(problem: Problem, settings: Settings) -> Runner:
    """NumPyro NUTS on the NumPyro model; one ``MCMC`` object reused across runs."""
    import arviz as az
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS, init_to_value

    hier = problem.model == "hierarchical"
    init = {k: jnp.asarray(v) for k, v in problem.init.items()}
    if problem.implementation != "vm_ppl":
        init["mu0_unwrapped"] = init.pop("mu0")
    method = "parallel" if jax.local_device_count() >= settings.chains else "vectorized"
    model = (_numpyro_hierarchical if hier else _numpyro_model)(problem.implementation)
    mcmc = MCMC(
        NUTS(model, init_strategy=init_to_value(values=init)),
        num_warmup=settings.tune,
        num_samples=settings.draws,
        num_chains=settings.chains,
        chain_method=method,
        progress_bar=False,
        # vm_ppl's hierarchical model checks its data on the host (concrete arrays): its
        # data are not traced, and the persistent cache serves the recompilations.
        jit_model_args=not hier,
    )
    data = (problem.x, problem.z, problem.groups, problem.y) if hier else (problem.x, problem.y)
    data = tuple(np.asarray(a) if hier else jnp.asarray(a) for a in data)

    def run(seed: int):
        mcmc.run(jax.random.key(seed), *data, extra_fields=("diverging", "num_steps"))
        jax.block_until_ready(mcmc.get_samples())
        return az.from_numpyro(mcmc)

    return run


SAMPLERS: dict[str, Sampler] = {
    "pymc": _pm_sample(),
    "pymc-numba": _pm_sample(compile_kwargs={"mode": "NUMBA"}),
    "nutpie-numba": _nutpie("numba"),
    "nutpie-jax": _nutpie("jax"),
    "nutpie-jax-pytensor-grad": _nutpie("jax", gradient_backend="pytensor"),
    "pymc-jax": _pm_sample(compile_kwargs={"mode": "JAX"}),
    "numpyro": _pm_sample(nuts_sampler="numpyro"),
    "blackjax": _pm_sample(nuts_sampler="blackjax"),
    "numpyro-native": _numpyro_native,
}


# ------------------------------------------------------------------------ measuring


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _proc_table() -> dict[int, tuple[int, float]]:
    """``pid -> (ppid, user + system CPU seconds)`` for every process in ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def _descendants_cpu(root: int) -> dict[int, float]:
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, stack = {}, list(kids.get(root, []))
    while stack:
        pid = stack.pop()
        out[pid] = table[pid][1]
        stack += kids.get(pid, [])
    return out


class CpuMeter:
    """CPU seconds of this process and its descendants over a ``with`` block.

    ``getrusage`` misses PyMC's chain workers (children of a forkserver, reaped by it),
    so on Linux a thread polls ``/proc`` every ``interval`` s and adds each descendant's
    CPU time as last seen (a descendant living less than one interval is missed);
    elsewhere only this process and its reaped children count.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.seconds = 0.0

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            for pid, cpu in _descendants_cpu(os.getpid()).items():
                self._last[pid] = cpu
                self._first.setdefault(pid, 0.0)

    def __enter__(self) -> CpuMeter:
        import threading

        self._use_proc = os.path.isdir("/proc/self")
        self._first = _descendants_cpu(os.getpid()) if self._use_proc else {}
        self._last = dict(self._first)
        self._kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._own0 = _own_cpu()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if self._use_proc:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._use_proc:
            self._thread.join()
            for pid, cpu in _descendants_cpu(os.getpid()).items():
                self._last[pid] = cpu
                self._first.setdefault(pid, 0.0)
            kids = sum(self._last[p] - self._first[p] for p in self._last)
        else:
            k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            kids = k1.ru_utime + k1.ru_stime - self._kids0.ru_utime - self._kids0.ru_stime
        self.seconds = _own_cpu() - self._own0 + kids


def diagnostics(idata) -> dict:
    """ESS (bulk and tail), divergences and max R-hat of an InferenceData; ESS and R-hat
    of the angles in :data:`CIRCULAR` on the circle (:mod:`vm_ppl.diagnostics`), the
    others exactly ArviZ's.

    Parameters
    ----------
    idata : arviz.InferenceData
        Posterior with ``mu0``, ``beta``, ``kappa``.

    Returns
    -------
    dict
        ``min_ess``, ``mean_ess``, ``divergences``, ``r_hat_max`` and ``steps_per_draw``,
        the mean number of leapfrog steps (gradient evaluations) per draw after warm-up
        (the ``n_steps`` statistic; ``None`` where the sampler does not report it).
    """
    from vm_ppl import diagnostics as vd

    names = [v for v in PARAMS if v in idata.posterior]
    circ = [v for v in CIRCULAR if v in names]
    bulk = vd.ess(idata, var_names=names, circ_var_names=circ, method="bulk")
    tail = vd.ess(idata, var_names=names, circ_var_names=circ, method="tail")
    per_param = np.concatenate([np.minimum(np.ravel(bulk[v]), np.ravel(tail[v])) for v in names])
    rhat = vd.rhat(idata, var_names=names, circ_var_names=circ)
    stats = getattr(idata, "sample_stats", None)
    div = stats["diverging"] if stats is not None and "diverging" in stats else 0
    steps = stats["n_steps"] if stats is not None and "n_steps" in stats else None
    return {
        "min_ess": float(per_param.min()),
        "mean_ess": float(per_param.mean()),
        "divergences": int(np.sum(div)),
        "r_hat_max": float(max(np.max(rhat[v]) for v in names)),
        "steps_per_draw": None if steps is None else float(np.mean(steps)),
    }


def _error(rec: dict, exc: Exception) -> None:
    rec["error"] = f"{type(exc).__name__}: {exc}".strip()[:500]
    rec["traceback"] = traceback.format_exc(limit=6)[-2000:]


def measure_group(
    name: str,
    sampler: Sampler,
    n_obs: int,
    implementations: Sequence[str],
    settings: Settings,
    repeats: int = 1,
    model: str = "regression",
) -> list[dict]:
    """Run one sampler on every implementation of ``model`` (:data:`MODELS`): a compile
    step (prepare + a run of :data:`COMPILE_DRAWS` warm-up + draws, timed: ``compile_s``),
    an untimed warm run with the real settings, then ``repeats`` timed runs, each step
    interleaved across implementations so that a change of machine load hits all of them
    alike. A raised exception becomes the record's ``error``.

    Returns
    -------
    list of dict
        One record per implementation with :data:`RECORD_KEYS` (``None`` where not
        measured): medians over the timed runs (``ess_per_s`` is the median of the per-run
        ratios), ``*_range`` the per-run (min, max), ``divergences`` and ``r_hat_max`` the
        largest, ``runs`` the per-run values; on failure ``error`` (``"Type: message"``)
        and ``traceback``.
    """
    import jax

    small = Settings(
        draws=COMPILE_DRAWS, tune=COMPILE_DRAWS, chains=settings.chains, seed=settings.seed
    )
    recs, runners, problems = {}, {}, {}
    for impl in implementations:
        rec: dict = dict.fromkeys(RECORD_KEYS)
        rec.update(
            sampler=name,
            implementation=impl,
            model=model,
            n_obs=n_obs,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            repeats=repeats,
            runs=[],
        )
        recs[impl] = rec
        try:
            problems[impl] = simulate(n_obs, impl, settings.seed, model)
            t0 = time.perf_counter()
            sampler(problems[impl], small)(settings.seed + 1)
            rec["compile_s"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001  (a failing sampler is a result)
            _error(rec, exc)
    for impl in implementations:
        if "error" in recs[impl]:
            continue
        try:
            runners[impl] = sampler(problems[impl], settings)
            runners[impl](settings.seed + 1)
        except Exception as exc:  # noqa: BLE001
            _error(recs[impl], exc)
            runners.pop(impl, None)
    for r in range(repeats):
        for impl in list(runners):
            rec = recs[impl]
            try:
                with CpuMeter() as cpu:
                    t0 = time.perf_counter()
                    idata = runners[impl](settings.seed + 2 + r)
                    wall = time.perf_counter() - t0
                run = {
                    "wall_s": wall,
                    "cpu_s": cpu.seconds,
                    "cpu_util": cpu.seconds / wall,
                    **diagnostics(idata),
                }
                run["ess_per_s"] = run["min_ess"] / wall
                run["beta_mean"] = float(np.mean(idata.posterior["beta"]))
                rec["runs"].append(run)
            except Exception as exc:  # noqa: BLE001
                _error(rec, exc)
                runners.pop(impl)
    for rec in recs.values():
        runs = rec["runs"]
        if "error" in rec or not runs:
            continue
        for key in _MEDIAN_KEYS:
            values = [run[key] for run in runs]
            if None in values:  # not reported by this sampler
                continue
            rec[key] = float(np.median(values))
            if f"{key}_range" in RECORD_KEYS:
                rec[f"{key}_range"] = [float(min(values)), float(max(values))]
        rec["divergences"] = max(run["divergences"] for run in runs)
        rec["r_hat_max"] = max(run["r_hat_max"] for run in runs)
        rec["jax_x64"] = bool(jax.config.jax_enable_x64)
        rec["jax_devices"] = jax.local_device_count()
    return [recs[impl] for impl in implementations]


@contextlib.contextmanager
def jax_compile_cache() -> Iterator[str]:
    """Enable JAX's persistent compilation cache in a fresh temporary folder.

    Yields
    ------
    str
        The cache folder; the previous settings are restored on exit.
    """
    import jax

    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    old = {k: getattr(jax.config, k) for k in names}
    with tempfile.TemporaryDirectory(prefix="vm_ppl_jax_cache_") as folder:
        for k, v in zip(names, (folder, 0.0, -1), strict=True):
            jax.config.update(k, v)
        try:
            yield folder
        finally:
            for k, v in old.items():
                jax.config.update(k, v)


def _summary(rec: dict) -> str:
    if "error" in rec:
        return f"FAILED {rec['error'][:200]}"
    return (
        f"compile {rec['compile_s']:.1f} s, sampling wall {rec['wall_s']:.1f} s, "
        f"min ESS {rec['min_ess']:.0f} (mu0 on the circle), ESS/s {rec['ess_per_s']:.1f}"
    )


def run_ess(
    out: Path,
    n_obs: Sequence[int],
    settings: Settings,
    samplers: Mapping[str, Sampler] | None = None,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    repeats: int = 1,
    model: str = "regression",
) -> list[dict]:
    """Run every sampler x implementation x ``n_obs``; write ess.json, ess.md, ess.png.

    Parameters
    ----------
    out : Path
        Output folder (created).
    n_obs : sequence of int
        Data sizes.
    settings : Settings
        Draws, warm-up, chains, seed.
    samplers : mapping, optional
        Name to :data:`Sampler`; defaults to :data:`SAMPLERS` (tests inject their own).
    implementations : sequence of str
        Subset of :data:`IMPLEMENTATIONS`.
    repeats : int
        Timed runs per configuration (:func:`measure_group`).
    model : {"regression", "hierarchical"}
        The benchmark model (module docstring).

    Returns
    -------
    list of dict
        The records (also in ``out / "ess.json"``).
    """
    from ._report import ess_markdown, ess_plot, progress

    samplers = SAMPLERS if samplers is None else samplers
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    with jax_compile_cache():
        for n in n_obs:
            for name, sampler in samplers.items():
                progress(f"ess: {name} / {', '.join(implementations)} / n_obs={n} ...")
                for rec in measure_group(
                    name, sampler, n, implementations, settings, repeats, model
                ):
                    records.append(rec)
                    progress(f"  {rec['implementation']}: " + _summary(rec))
                # Written after every sampler: an interrupted run keeps what it measured.
                (out / "ess.json").write_text(json.dumps(records, indent=2))
    header = (
        f"{model} model, {settings.chains} chains, {settings.tune} warm-up + "
        f"{settings.draws} draws, {os.cpu_count()} CPUs"
    )
    if repeats > 1:
        header += f", medians (min-max) of {repeats} timed runs interleaved across implementations"
    header += (
        f". compile s: prepare + a {COMPILE_DRAWS} + {COMPILE_DRAWS}-draw run; "
        f"wall s and ESS/s: sampling only; ESS and R-hat of "
        f"{', '.join(CIRCULAR)} on the circle (vm_ppl.diagnostics)"
    )
    (out / "ess.md").write_text(ess_markdown(records, header))
    ess_plot(records, out / "ess.png")
    return records


def main(argv: list[str] | None = None) -> list[dict]:
    """Command line entry point (module docstring)."""
    parser = argparse.ArgumentParser(prog="vm-ppl bench ess", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one small N and few draws (a few minutes on 2 CPUs)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_ess"))
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="regression",
        help="regression: one predictor; hierarchical: 20 groups, 2 + 1 predictors",
    )
    parser.add_argument("--n", type=int, nargs="+", default=None)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS), default=None)
    parser.add_argument(
        "--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS)
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed runs per configuration, interleaved (medians reported)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    request_host_devices(Settings.chains)  # parallel chains: one XLA host device each
    if args.model == "hierarchical":
        n_obs = args.n or ([HIER_GROUPS * 10] if args.quick else [HIER_GROUPS * 50])
    else:
        n_obs = args.n or ([200] if args.quick else [1000, 100_000])
    default_draws = 150 if args.quick else 1000
    settings = Settings(draws=args.draws or default_draws, tune=args.tune or default_draws)
    samplers = SAMPLERS if args.samplers is None else {k: SAMPLERS[k] for k in args.samplers}
    records = run_ess(
        args.out, n_obs, settings, samplers, args.implementations, args.repeats, args.model
    )
    print((args.out / "ess.md").read_text())
    return records


if __name__ == "__main__":
    main()
