"""The GPU benchmark script (``python -m vm_ppl.bench.gpu``) on tiny CPU sizes: every
section runs, nothing fails, the JSON and the Markdown tables are written."""

from __future__ import annotations

import json

from vm_ppl.bench import gpu


def test_gpu_script_quick_runs_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    res = gpu.main([str(out), "--quick", "--reps", "1"])
    saved = json.loads(out.read_text())
    assert saved["device_kind"] and saved["versions"]["jax"]
    rows = saved["rows"]
    assert not [r for r in rows if "error" in r], [r.get("error") for r in rows]
    sections = {r["section"] for r in rows}
    assert sections == {"sample", "predictive", "nuts", "tan_half"}
    sample = [r for r in rows if r["section"] == "sample"]
    assert {(r["kind"], r["implementation"]) for r in sample} == {
        (kind, impl) for kind in ("shared", "grouped") for impl in ("vm_ppl", "numpyro")
    }
    assert all(r["draws_per_s"] > 0 for r in sample)
    pred = [r for r in rows if r["section"] == "predictive"]
    assert all(r["nan"] == 0 and r["shape"] == [r["draws"], r["nobs"]] for r in pred)
    nuts = [r for r in rows if r["section"] == "nuts"]
    assert all(r["min_ess"] > 0 and r["chain_method"] == "vectorized" for r in nuts)
    th = [r for r in rows if r["section"] == "tan_half"]
    # float32 on the device (here the CPU) against the float64 kernel: issue #15's 1e-5
    assert all(r["max_rel_err"] < 1e-5 for r in th if r["what"] == "accuracy")
    assert len([r for r in th if r["what"] == "value_and_grad" and r["ms"] > 0]) == 3
    assert "NUTS vectorized" in res["markdown"] and saved["device_kind"] in res["markdown"]
