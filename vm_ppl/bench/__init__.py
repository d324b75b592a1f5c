"""Benchmarks, runnable as ``vm-ppl bench NAME`` or ``python -m vm_ppl.bench.NAME``."""
