"""Benchmark harness on tiny settings: ``vm-ppl bench ess`` and ``vm-ppl bench throughput``.

Run: ``python -m pytest -q tests/test_bench.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vm_ppl.bench import ess, throughput

TINY = ess.Settings(draws=30, tune=30, chains=4, seed=0)


def _broken(problem: ess.Problem, settings: ess.Settings) -> ess.Runner:
    def run(seed: int):
        raise RuntimeError("deliberately broken sampler")

    return run


# PyMC float64 models on PyTensor's JAX backend run with x64 (see conftest.py).
JAX_X64 = True


@pytest.fixture(scope="module")
def ess_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("ess")
    samplers = {"nutpie-numba": ess.SAMPLERS["nutpie-numba"], "broken": _broken}
    records = ess.run_ess(out, [50], TINY, samplers, repeats=2)
    return out, records


def test_simulate_windows():
    ours, builtin = ess.simulate(500, "vm_ppl"), ess.simulate(500, "builtin")
    np.testing.assert_array_equal(ours.x, builtin.x)
    assert ours.y.min() >= 0 and ours.y.max() < 2 * np.pi
    assert builtin.y.min() >= -np.pi and builtin.y.max() < np.pi
    np.testing.assert_allclose(np.cos(ours.y), np.cos(builtin.y), atol=1e-12)


def test_ess_files_written(ess_run):
    out, _ = ess_run
    for name in ("ess.json", "ess.md", "ess.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "ess.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "ess.md").read_text()
    assert "| sampler | implementation |" in md and "ESS/s (min-max)" in md
    assert "CPU utilisation" in md and "parallel eff" not in md
    assert "circular mu0" in md and "compile s: prepare + a 5 + 5-draw run" in md


def test_ess_record_schema(ess_run):
    out, records = ess_run
    assert json.loads((out / "ess.json").read_text()) == records
    assert len(records) == 4  # 2 samplers x 2 implementations x 1 n_obs
    ok = [r for r in records if "error" not in r]
    assert {(r["sampler"], r["implementation"]) for r in ok} == {
        ("nutpie-numba", "vm_ppl"),
        ("nutpie-numba", "builtin"),
    }
    for r in records:
        assert set(ess.RECORD_KEYS) <= set(r)
        assert r["n_obs"] == 50
    for r in ok:
        assert r["wall_s"] > 0 and r["cpu_s"] >= 0
        assert r["min_ess"] > 0 and r["mean_ess"] >= r["min_ess"]
        assert len(r["runs"]) == r["repeats"] == 2
        per_run = [run["min_ess"] / run["wall_s"] for run in r["runs"]]
        assert r["ess_per_s"] == pytest.approx(np.median(per_run))
        assert r["wall_s"] == pytest.approx(np.median([run["wall_s"] for run in r["runs"]]))
        assert isinstance(r["divergences"], int)
        assert np.isfinite(r["r_hat_max"])
        # leapfrog steps per draw after warm-up: nutpie's n_steps, at least one
        assert r["steps_per_draw"] >= 1
        assert r["steps_per_draw"] == pytest.approx(
            np.median([run["steps_per_draw"] for run in r["runs"]])
        )
        # compile time is measured by its own step, so it is never negative
        assert r["compile_s"] > 0
        assert r["cpu_util"] == pytest.approx(
            np.median([run["cpu_s"] / run["wall_s"] for run in r["runs"]])
        )
        for key in ("wall_s", "ess_per_s", "min_ess"):
            values = [run[key] for run in r["runs"]]
            assert r[f"{key}_range"] == [min(values), max(values)]
            assert min(values) <= r[key] <= max(values)


def test_failing_sampler_is_a_row(ess_run):
    out, records = ess_run
    failed = [r for r in records if r["sampler"] == "broken"]
    assert len(failed) == 2
    for r in failed:
        assert r["error"] == "RuntimeError: deliberately broken sampler"
        assert r["min_ess"] is None and r["ess_per_s"] is None
    assert "deliberately broken sampler" in (out / "ess.md").read_text()


def test_sampler_failing_in_a_timed_run_is_a_row():
    calls = []

    def flaky(problem, settings):
        def run(seed: int):
            calls.append(seed)
            if len(calls) > 1:  # the compiling run succeeds, the first timed run fails
                raise ValueError("lost the chain")

        return run

    # The error is recorded, the remaining repeats are skipped, no medians are made up.
    (rec,) = ess.measure_group("flaky", flaky, 20, ["vm_ppl"], TINY, repeats=3)
    assert rec["error"] == "ValueError: lost the chain"
    assert rec["ess_per_s"] is None and rec["runs"] == []
    assert len(calls) == 2


def test_compile_step_is_timed_directly():
    import time as _time

    settings_seen = []

    def slow_prepare(problem, settings):
        settings_seen.append((settings.tune, settings.draws))
        if settings.draws == ess.COMPILE_DRAWS:
            _time.sleep(0.3)  # "compilation" happens only in the compile step

        def run(seed: int):
            rng = np.random.default_rng(seed)
            import arviz as az

            return az.from_dict(
                posterior={
                    "mu0": rng.vonmises(np.pi, 20.0, (4, 30)),
                    "beta": rng.normal(size=(4, 30)),
                    "kappa": rng.gamma(5.0, size=(4, 30)),
                }
            )

        return run

    (rec,) = ess.measure_group("slow", slow_prepare, 20, ["vm_ppl"], TINY, repeats=2)
    assert settings_seen == [(ess.COMPILE_DRAWS, ess.COMPILE_DRAWS), (30, 30)]
    assert 0.3 <= rec["compile_s"] < 5.0
    assert rec["wall_s"] < 0.3  # the timed runs do not include it


def test_diagnostics_circular_mu0():
    # mu0 near pi: the harness reports the circular ESS / R-hat, beta and kappa ArviZ's.
    import arviz as az

    from vm_ppl import diagnostics as vd

    rng = np.random.default_rng(0)
    mu0 = (
        np.mod(
            np.pi
            + 0.3 * rng.standard_normal((4, 200)).cumsum(axis=1) * 0.05
            + 0.2 * rng.standard_normal((4, 200))
            + np.pi,
            2 * np.pi,
        )
        - np.pi
    )
    idata = az.from_dict(
        posterior={
            "mu0": mu0,
            "beta": rng.normal(size=(4, 200, 1)),
            "kappa": rng.gamma(5.0, size=(4, 200)),
        }
    )
    d = ess.diagnostics(idata)
    circ = {m: vd.ess(idata, circ_var_names="mu0", method=m) for m in ("bulk", "tail")}
    per = [
        min(float(circ["bulk"][v].min()), float(circ["tail"][v].min()))
        for v in ("mu0", "beta", "kappa")
    ]
    assert d["min_ess"] == pytest.approx(min(per))
    assert d["r_hat_max"] == pytest.approx(
        max(float(vd.rhat(idata, circ_var_names="mu0")[v].max()) for v in ("mu0", "beta", "kappa"))
    )


def test_registry_names():
    assert set(ess.SAMPLERS) == {
        "pymc",
        "pymc-numba",
        "pymc-jax",
        "nutpie-numba",
        "nutpie-jax",
        "nutpie-jax-pytensor-grad",
        "numpyro",
        "blackjax",
        "numpyro-native",
    }


def test_throughput_files_device_dtype(tmp_path):
    res = throughput.run_throughput(tmp_path, ns=[1000], kappas=[5.0], reps=1, dtype="float64")
    for name in ("throughput.json", "throughput.md", "throughput.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["dtype"] == "float64" and saved["device"] and saved["platform"]
    rows = saved["rows"]
    assert {r["task"] for r in rows} == {"sample", "sample-bulk", "sample-grouped", "logp+grad"}
    impls = {r["implementation"] for r in rows}
    assert {
        "vm_ppl",
        "numpy",
        "scipy",
        "numpyro",
        "pm.VonMises FAST_RUN",
        "pm.VonMises NUMBA",
        "pm.VonMises JAX",
        "vm_ppl.pymc JAX",
    } <= impls
    ok = {(r["task"], r["implementation"]) for r in rows if "error" not in r}
    assert ("sample", "vm_ppl") in ok and ("logp+grad", "vm_ppl") in ok
    assert all(r["per_s"] > 0 for r in rows if "error" not in r)
    assert res["device"] in (tmp_path / "throughput.md").read_text()


def test_nutpie_kernel_bench_rows():
    # The three variants compile, agree (checked inside main) and are timed.
    from vm_ppl.bench import nutpie_kernel

    rows = nutpie_kernel.main(["--n", "50", "--batches", "1"])
    assert [r["variant"] for r in rows] == list(nutpie_kernel.VARIANTS)
    assert all(r["us"] > 0 for r in rows)


def test_throughput_devices_predictive_scale(tmp_path):
    # tiny sizes: 2 host devices (in a subprocess), a 4 x 200 posterior predictive, 10^4
    res = throughput.run_throughput(
        tmp_path,
        ns=[],
        kappas=[2.0],
        reps=1,
        dtype="float32",
        tasks=("devices", "predictive", "scale"),
        devices=(2,),
        device_n=4 * 65536,
        predictive=(4, 200),
        scale_ns=(10**4,),
    )
    rows = res["rows"]
    sharded = [r for r in rows if r["task"].endswith("sharded")]
    assert {r["task"] for r in sharded} == {"sample sharded", "sample-grouped sharded"}
    assert all("error" not in r and r["shard_devices"] == 2 and r["per_s"] > 0 for r in sharded), (
        sharded
    )
    pred = {r["implementation"]: r for r in rows if r["task"].startswith("predictive")}
    assert {
        "vm_ppl.numpyro.VonMises",
        "numpyro VonMises",
        "vm_ppl.pymc.VonMises",
        "pm.VonMises",
    } <= set(pred)
    assert "error" not in pred["vm_ppl.numpyro.VonMises"]
    assert "error" not in pred["vm_ppl.pymc.VonMises"]
    scale = [r for r in rows if r["task"].startswith("scale")]
    assert len(scale) == 3 and all(r["temp_x_out"] > 0 and r["ms"] > 0 for r in scale)
    md = (tmp_path / "throughput.md").read_text()
    assert "Sharded over host devices" in md and "Posterior predictive" in md
    assert "Scaling" in md


def test_blackjax_sampler_names_the_extra_when_missing(monkeypatch):
    """blackjax is an optional extra: without it the "blackjax" sampler's record says
    which extra to install (``sys.modules[name] = None`` makes ``import name`` fail)."""
    monkeypatch.setitem(sys.modules, "blackjax", None)
    with pytest.raises(ImportError, match=r"vm_ppl\[blackjax\]"):
        ess.SAMPLERS["blackjax"](ess.simulate(20, "vm_ppl"), TINY)


def test_core_block_rows():
    from vm_ppl import sampling
    from vm_ppl.bench import core

    rows = core.block_rows(3000, 2, [4096])
    blocks = {r["block"]: r for r in rows}
    # the default block is always measured, and is the reference (ratio exactly 1)
    assert set(blocks) == {4096, sampling._BLOCK}
    assert blocks[sampling._BLOCK]["vs_default"] == 1.0
    assert blocks[4096]["vs_default"] > 0 and blocks[4096]["ms"] > 0
    assert all(r["chunk"] == 3000 for r in rows)


def test_core_batch_rows():
    from vm_ppl import sampling
    from vm_ppl.bench import core

    default = sampling._batch_elems()
    rows = core.batch_rows(2 * sampling._CHUNK, 1, [17])
    batches = {r["batch"]: r for r in rows}
    assert set(batches) == {1 << 17, default}
    assert batches[default]["vs_default"] == 1.0
    assert batches[1 << 17]["ms"] > 0
    # the patched schedule is restored
    assert sampling._batch_elems() == default


def test_tan_half_density_table_runs():
    # The comparison of issue #15 (log_prob + gradient against the naive expression), one
    # round at n = 10: a row per n with both implementations and their XLA flop counts.
    from vm_ppl.bench import tan_half

    table, _, reference = tan_half.TABLES["density"]
    (row,) = table([10], 1, "call")
    assert reference == "naive"
    assert row["n"] == 10 and set(row) == {"n", "log_prob", "naive"}
    assert row["log_prob"]["xla_flops"] < 1000 and row["log_prob"]["median_us"] > 0


def test_tan_half_trace_table_runs():
    # `python -m vm_ppl.bench.tan_half --tables trace` at one tiny size and two rounds: a
    # row with both PyMC models' trace times, printable as the other tables.
    from vm_ppl.bench import tan_half

    (row,) = tan_half.table_trace([10], 2)
    assert set(row) == {"n", "vm_ppl", "pm.VonMises"}
    assert all(row[k]["median_us"] > 0 for k in ("vm_ppl", "pm.VonMises"))
    assert "pm.VonMises µs" in tan_half.markdown("trace", [row], "pm.VonMises")


def test_tan_half_pytensor_gradient_table_runs():
    # `python -m vm_ppl.bench.tan_half --tables pytensor_grad` at n = 10, one round, both
    # timing modes (the loop feeds the PyTensor gradients back into the point): a row
    # with the three PyMC models, each time positive.
    from vm_ppl.bench import tan_half

    table, _, reference = tan_half.TABLES["pytensor_grad"]
    assert reference == "pm.VonMises"
    for mode in ("call", "loop"):
        (row,) = table([10], 1, mode)
        assert set(row) == {"n", "vm_ppl", "vm_ppl, no fusion", "pm.VonMises"}
        assert all(row[k]["median_us"] > 0 for k in set(row) - {"n"})
