"""``vm_ppl.sample`` across devices: JAX sharding over 4 host devices.

The host device count is fixed when JAX starts, so each configuration runs in its own
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` set in that
subprocess's environment only (this process and the other test files are untouched).
The child writes its draws and facts about the compiled program to an ``.npz`` file;
the checks are made here:

* the draws for a key are the same with 1 and with 4 devices (bit for bit);
* with 4 devices, each shard of a sharded output lives on its own device and the
  compiled program moves no draws between devices (no all-gather, all-to-all or
  collective-permute; the only collective allowed is the scalar all-reduce that ends the
  shared while loop);
* the draws are exact: Kolmogorov-Smirnov p > 0.01 per concentration (fixed seed);
* the same holds for the README recipe, a NumPyro ``Predictive(parallel=True)`` under
  ``jit`` with the posterior draws and the output sharded over the devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
from test_sampling import P_MIN  # the suite's KS threshold (its comment says why)

ROOT = Path(__file__).resolve().parents[1]
S, N = 8, 4096  # grouped: 8 posterior draws of kappa x 4096 observations
KAPPAS = np.linspace(0.5, 8.0, S).astype(np.float32)

CHILD = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from vm_ppl import sample

    S, N = {S}, {N}
    ndev = jax.device_count()
    mesh = Mesh(np.array(jax.devices()), ("d",))
    rows = NamedSharding(mesh, P("d"))
    key = jax.random.key(2024)
    out, facts = {{}}, {{"ndev": ndev}}

    def run(name, f, *args):
        c = f.lower(*args).compile()
        hlo = c.as_text()
        x = c(*args)
        out[name] = np.asarray(x)
        # one shard per device, each holding its own rows
        facts[name + "_devices"] = sorted(s.device.id for s in x.addressable_shards)
        facts[name + "_shard_rows"] = [s.data.shape[0] for s in x.addressable_shards]
        facts[name + "_shards_match"] = all(
            np.array_equal(np.asarray(s.data), out[name][s.index])
            for s in x.addressable_shards)
        for op in ("all-gather", "all-to-all", "collective-permute"):
            facts[name + "_" + op] = hlo.count(op + "(") + hlo.count(op + "-start(")
        ar = [ln for ln in hlo.splitlines() if "all-reduce(" in ln or "all-reduce-start(" in ln]
        facts[name + "_big_all_reduce"] = sum("pred[]" not in ln for ln in ar)

    # grouped kappa (posterior predictive): kappa (S, 1) sharded by rows, output follows
    k = jax.device_put(jnp.asarray({kappas}, jnp.float32).reshape(S, 1), rows)
    run("grouped", jax.jit(lambda key, k: sample(key, 0.0, k, shape=(S, N))), key, k)
    # one shared kappa, output sharded by out_shardings
    run("shared", jax.jit(lambda key: sample(key, 1.0, 3.0, shape=(S, 65536)),
                          out_shardings=rows), key)
    # per-element kappa, sharded input and output
    kpe = jax.device_put(jnp.tile(jnp.asarray([0.0, 0.2, 2.0, 5.0], jnp.float32),
                                  (S, 8192)), rows)
    run("per_element", jax.jit(lambda key, k: sample(key, 0.0, k), out_shardings=rows),
        key, kpe)
    out["per_element_kappa"] = np.asarray(kpe)

    # the README recipe: a sharded posterior predictive of a NumPyro model
    import numpyro, numpyro.distributions as dist
    from numpyro.infer import Predictive
    from vm_ppl.numpyro import VonMises

    def model(n_obs):
        mu = numpyro.sample("mu", dist.Uniform(-np.pi, np.pi))
        kappa = numpyro.sample("kappa", dist.Gamma(2.0, 0.5))
        with numpyro.plate("obs", n_obs):
            numpyro.sample("y", VonMises(mu, kappa))

    post = jax.device_put({{"mu": jnp.linspace(-3.0, 3.0, S),
                           "kappa": jnp.asarray({kappas}, jnp.float32)}}, rows)
    predict = jax.jit(lambda key, post: Predictive(model, post, parallel=True)(key, N)["y"],
                      out_shardings=rows)
    run("predictive", predict, jax.random.key(1), post)
    np.savez(sys.argv[1], **out, **{{"fact_" + k: np.asarray(v) for k, v in facts.items()}})
    """
).format(S=S, N=N, kappas=KAPPAS.tolist())


def _run_child(ndev: int, tmp_path: Path) -> dict:
    path = tmp_path / f"draws_{ndev}.npz"
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={ndev}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    return {d: _run_child(d, tmp) for d in (1, 4)}


NAMES = ("grouped", "shared", "per_element", "predictive")


def test_device_counts(runs):
    assert int(runs[1]["fact_ndev"]) == 1
    assert int(runs[4]["fact_ndev"]) == 4


@pytest.mark.parametrize("name", NAMES)
def test_same_draws_on_1_and_4_devices(runs, name):
    a, b = runs[1][name], runs[4][name]
    assert a.shape == b.shape and not np.isnan(a).any()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_shards_on_their_own_devices_without_gather(runs, name):
    r = runs[4]
    assert list(r[f"fact_{name}_devices"]) == [0, 1, 2, 3]
    assert list(r[f"fact_{name}_shard_rows"]) == [S // 4] * 4
    assert bool(r[f"fact_{name}_shards_match"])
    for op in ("all-gather", "all-to-all", "collective-permute", "big_all_reduce"):
        assert int(r[f"fact_{name}_{op}"]) == 0, op


def _ks(x, k, loc=0.0):
    d = (np.asarray(x, np.float64) - loc + np.pi) % (2 * np.pi) - np.pi
    u = (d + np.pi) / (2 * np.pi) if k == 0 else st.vonmises.cdf(d, float(k))
    return st.kstest(u, "uniform").pvalue


def test_sharded_draws_are_exact(runs):
    r = runs[4]
    for i, k in enumerate(KAPPAS):
        assert _ks(r["grouped"][i], k) > P_MIN, (i, k)
    assert _ks(r["shared"].ravel()[:100_000], 3.0, loc=1.0) > P_MIN
    locs = np.linspace(-3.0, 3.0, S, dtype=np.float32)
    for i, k in enumerate(KAPPAS):
        assert _ks(r["predictive"][i], k, loc=locs[i]) > P_MIN, ("predictive", i, k)
    x, kk = r["per_element"], r["per_element_kappa"]
    # k <= 5 only: SciPy's cdf is its series there (test_sampling.py covers large k)
    for k in (0.0, 0.2, 2.0, 5.0):
        sel = kk == np.float32(k)
        assert _ks(x[sel][:50_000], k) > P_MIN, k
