"""Importing vm_ppl changes nobody else's state: the environment (``XLA_FLAGS``), JAX's
x64 flag and NumPyro's classes are as before (a fresh interpreter, so that nothing
imported by other tests hides a change)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, inspect, json, os, pkgutil, sys

import jax
import numpyro
import numpyro.distributions
import numpyro.distributions.constraints
import numpyro.distributions.transforms
import numpyro.handlers
import numpyro.infer
import numpyro.infer.reparam


def numpyro_classes():
    out = {}
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith("numpyro") or mod is None:
            continue
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and cls.__module__ == modname:
                out[f"{modname}.{name}"] = {k: id(v) for k, v in vars(cls).items()}
    return out


env0, x64_0, classes0 = dict(os.environ), jax.config.jax_enable_x64, numpyro_classes()
report = {"x64_before": x64_0}
import vm_ppl
import vm_ppl.diagnostics
import vm_ppl.numpyro
report["x64_after_core_numpyro"] = jax.config.jax_enable_x64
import vm_ppl.bench

bench = sorted(m.name for m in pkgutil.iter_modules(vm_ppl.bench.__path__))
for name in bench:
    importlib.import_module(f"vm_ppl.bench.{name}")
report["bench_modules"] = bench
report["env_changed"] = sorted(
    k for k in set(env0) | set(os.environ) if env0.get(k) != os.environ.get(k)
)
after = numpyro_classes()
report["numpyro_classes_checked"] = len(classes0)
report["numpyro_classes_changed"] = sorted(
    name for name, attrs in classes0.items() if after.get(name) != attrs
)
print(json.dumps(report))
"""


def test_importing_vm_ppl_leaves_environment_x64_and_numpyro_alone():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["x64_after_core_numpyro"] == report["x64_before"]
    assert {"ess", "numpyro_ess", "throughput"} <= set(report["bench_modules"])
    assert report["env_changed"] == []
    assert report["numpyro_classes_checked"] > 100
    assert report["numpyro_classes_changed"] == []


def test_bench_main_requests_host_devices_before_jax_starts():
    """What the benchmarks' ``main`` calls: XLA_FLAGS gains the device count (other flags
    kept) when JAX has not started, and a started JAX is reported, not silently used."""
    code = (
        "import os, warnings, jax\n"
        "from vm_ppl.bench._devices import request_host_devices\n"
        "n = request_host_devices(3)\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    request_host_devices(5)\n"
        "print(n, jax.local_device_count(), os.environ['XLA_FLAGS'], len(w))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["XLA_FLAGS"] = "--xla_cpu_enable_fast_math=false"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n, count, *flags, warned = out.stdout.split()
    assert (n, count, warned) == ("3", "3", "1")
    assert flags == ["--xla_cpu_enable_fast_math=false", "--xla_force_host_platform_device_count=3"]
