"""Markdown tables, figures and progress lines shared by :mod:`vm_ppl.bench.ess` and
:mod:`vm_ppl.bench.throughput` (no command of its own; used by ``vm-ppl bench ess`` and
``vm-ppl bench throughput``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path


def progress(msg: str) -> None:
    """Print a time-stamped progress line (flushed)."""
    print(f"[vm-ppl {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _sort_key(rec: dict) -> float:
    eps = rec.get("ess_per_s")
    return -eps if isinstance(eps, int | float) and math.isfinite(eps) else math.inf


def ess_markdown(records: Sequence[dict], header: str = "") -> str:
    """Markdown table of ESS records sorted by ESS/s (failures last, with their error).

    Parameters
    ----------
    records : sequence of dict
        Records of :func:`vm_ppl.bench.ess.measure_group`.
    header : str
        A line printed above the table.

    Returns
    -------
    str
    """
    lines = [header, ""] if header else []
    lines += [
        "| sampler | implementation | n_obs | compile s | wall s (min-max) | CPU s "
        "| CPU utilisation | min ESS, circular mu0 (min-max) | mean ESS "
        "| ESS/s (min-max) | leapfrog steps per draw | divergences "
        "| max R-hat, circular mu0 | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=_sort_key):
        wall, cpu = r.get("wall_s"), r.get("cpu_s")
        util = r.get("cpu_util")
        if util is None and wall and cpu is not None:
            util = cpu / wall
        err = (r.get("error") or "").replace("|", "/").replace("\n", " ")[:120]
        lines.append(
            f"| {r['sampler']} | {r['implementation']} | {r['n_obs']} "
            f"| {_fmt(r.get('compile_s'), '.1f')} "
            f"| {_fmt(wall, '.2f')}{_range(r.get('wall_s_range'), '.2f')} "
            f"| {_fmt(cpu, '.1f')} | {_fmt(util, '.2f')} "
            f"| {_fmt(r.get('min_ess'), '.0f')}{_range(r.get('min_ess_range'), '.0f')} "
            f"| {_fmt(r.get('mean_ess'), '.0f')} "
            f"| {_fmt(r.get('ess_per_s'), '.1f')}{_range(r.get('ess_per_s_range'), '.1f')} "
            f"| {_fmt(r.get('steps_per_draw'), '.2f')} "
            f"| {_fmt(r.get('divergences'), 'd')} "
            f"| {_fmt(r.get('r_hat_max'), '.3f')} | {err} |"
        )
    return "\n".join(lines) + "\n"


def _range(pair, spec: str) -> str:
    """`` (lo-hi)`` of a per-run (min, max) pair; empty if missing or a single run."""
    if not pair or pair[0] is None or pair[0] == pair[1]:
        return ""
    return f" ({format(pair[0], spec)}-{format(pair[1], spec)})"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ess_plot(records: Sequence[dict], path: Path) -> Path:
    """Bar charts of wall time, min ESS and ESS/s, and a wall-time vs ESS scatter.

    Failed records are left out (a figure with a note is written if none succeeded).
    """
    plt = _pyplot()
    ok = sorted([r for r in records if "error" not in r], key=_sort_key)
    labels = [f"{r['sampler']}\n{r['implementation']} n={r['n_obs']}" for r in ok]
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    colors = ["C0" if r["implementation"] == "vm_ppl" else "C1" for r in ok]
    for ax, key, title in zip(
        axes.flat[:3],
        ("wall_s", "min_ess", "ess_per_s"),
        ("sampling wall time (s)", "min ESS (bulk, tail; mu0 circular)", "ESS / s (sampling time)"),
        strict=True,
    ):
        ax.barh(range(len(ok)), [r[key] for r in ok], color=colors)
        ax.set_yticks(range(len(ok)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title)
    ax = axes.flat[3]
    for r, c in zip(ok, colors, strict=True):
        ax.scatter(r["wall_s"], r["min_ess"], color=c)
        ax.annotate(f"{r['sampler']} ({r['n_obs']})", (r["wall_s"], r["min_ess"]), fontsize=7)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("min ESS")
    ax.set_title("time vs ESS (blue: vm_ppl, orange: builtin)")
    if not ok:
        fig.suptitle("no successful runs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def throughput_markdown(result: dict) -> str:
    """Markdown tables (sampling, log-density + gradient) of a throughput result."""
    lines = [
        f"device: {result['device']} (platform {result['platform']}), dtype "
        f"{result['dtype']}, {result['cpus']} CPUs, median of {result['reps']} reps",
        "",
        "| task | implementation | N | kappa | ms | M evals/s | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        err = (r.get("error") or "").replace("|", "/").replace("\n", " ")[:100]
        rate = r["n"] / r["ms"] / 1e3 if r.get("ms") else None
        lines.append(
            f"| {r['task']} | {r['implementation']} | {r['n']} | {r['kappa']:g} | "
            f"{_fmt(r.get('ms'), '.3f')} | {_fmt(rate, '.2f')} | {err} |"
        )
    return "\n".join(lines) + "\n"


def throughput_plot(result: dict, path: Path) -> Path:
    """One panel per task: evaluations/s against N (log-log), a line per implementation
    and kappa."""
    plt = _pyplot()
    rows = [r for r in result["rows"] if r.get("ms")]
    tasks = sorted({r["task"] for r in result["rows"]})
    fig, axes = plt.subplots(
        1, max(len(tasks), 1), figsize=(5 * max(len(tasks), 1), 4.5), squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=False):
        groups: dict = {}
        for r in rows:
            if r["task"] == task:
                groups.setdefault((r["implementation"], r["kappa"]), []).append(r)
        for (impl, kappa), rs in sorted(groups.items()):
            rs = sorted(rs, key=lambda r: r["n"])
            ax.plot(
                [r["n"] for r in rs],
                [r["n"] / r["ms"] * 1e3 for r in rs],
                marker="o",
                label=f"{impl} k={kappa:g}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("evaluations / s")
        ax.set_title(task)
        ax.legend(fontsize=6)
    fig.suptitle(f"{result['device']}, {result['dtype']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
