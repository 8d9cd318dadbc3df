"""What ``--dry-run`` says a plan costs, and on which device.

- CPU (smoke, quick, or ``--device cpu``): each entry's registry estimate
  (``Study.seconds``), scaled by how its committed runs in
  ``results/<profile>/`` compared with it (median of measured wall over
  estimate; those runs ran two single-thread processes on 2 cores), then
  divided among ``--jobs`` parallel workers for the wall time. Without
  committed runs, the registry estimate as it is.
- GPU (paper): a GPU time measured on a named device where the suite has one
  (:data:`GPU_MEASURED`, next to its source); otherwise "unmeasured". A CPU
  figure never stands in for GPU hours.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from . import results
from .results import format_seconds


@dataclasses.dataclass(frozen=True)
class GpuMeasure:
    """A run's wall time on one GPU: ``seconds`` per unit of the spec's
    ``unit`` field (steps or epochs), measured with ``shared`` runs side by
    side on that GPU (a run's wall holds for up to that many)."""

    device: str
    unit: str
    seconds: float
    shared: int
    source: str


_H200 = "benchmarks/measured/h200-2026-11-29"
GPU_MEASURED: dict[str, GpuMeasure] = {
    # 13 runner processes under CUDA MPS: the two fig2 runs that finished took 616 s for 100k steps
    # (results/paper/fig2.csv, wall_seconds); fig2-linear's run kept the same pace (45k steps in the same window)
    "fig2": GpuMeasure("NVIDIA H200", "steps", 616.4 / 100_000, 13, f"{_H200}, results/paper/fig2.csv"),
    "fig2-linear": GpuMeasure("NVIDIA H200", "steps", 616.4 / 100_000, 13, f"{_H200}/session.log"),
    # training steps only (bf16, the loader kept up; ImageNet without JPEG decoding), one run per GPU
    "cifar10-table": GpuMeasure("NVIDIA H200", "epochs", 2.7, 1, f"{_H200}/gpu_epoch_throughput.json"),
    "imagenet-table": GpuMeasure("NVIDIA H200", "epochs", 563.5, 1, f"{_H200}/gpu_epoch_throughput.json"),
}


def measured_scale(exp, results_dir: Path, profile: str) -> float | None:
    """Median of measured wall / registry estimate over ``exp``'s committed runs
    of its current grid in ``profile``; None without such runs."""
    try:
        df = results.load_experiment(results_dir, profile, exp.id)
    except results.CorruptResults:
        return None
    if df.empty or "wall_seconds" not in df:
        return None
    runs = df.drop_duplicates("run_key")
    specs = {s.key: s for s in exp.grid(profile, int(pd.to_numeric(runs["seed"]).max()) + 1)}
    ratios = [float(w) / exp.seconds(specs[k], profile) for k, w in zip(runs["run_key"].astype(str),
                                                                         pd.to_numeric(runs["wall_seconds"]))
              if k in specs and exp.seconds(specs[k], profile) > 0 and w == w]
    return float(pd.Series(ratios).median()) if ratios else None


def format_plan(runs: list, profile: str, results_dir: Path, jobs: int = 1, gpu: bool | None = None,
                runs_per_gpu: int = 8) -> str:
    """The plan table: runs done / to resume / new per entry and the compute
    left, on the device it is for. ``gpu``: estimate for GPUs (default: the
    paper profile)."""
    gpu = profile == "paper" if gpu is None else gpu
    by_exp: dict[str, list] = {}
    for r in runs:
        by_exp.setdefault(r.experiment.id, []).append(r)
    w = max([len("experiment")] + [len(e) for e in by_exp]) + 1
    head = "GPU time left" if gpu else "CPU time left, single-thread runs"
    lines = [f"{'experiment':<{w}} {'done':>5} {'resume':>6} {'new':>5}   {head} (profile {profile})"]
    cpu_total, gpu_total, unmeasured, devices = 0.0, 0.0, [], set()
    for eid, rs in by_exp.items():
        count = {s: sum(r.status == s for r in rs) for s in ("done", "resume", "new")}
        left = [r for r in rs if r.status != "done"]
        if gpu:
            what, seconds = _gpu_left(eid, left, runs_per_gpu)
            if seconds is None:
                unmeasured.append(f"{eid} ({len(left)})")
            else:
                gpu_total += seconds
                devices.add(GPU_MEASURED[eid].device)
        else:
            exp = rs[0].experiment
            scale = measured_scale(exp, results_dir, profile) if left else None
            seconds = sum(exp.seconds(r.spec, profile) for r in left) * (scale or 1.0)
            seconds = 0.0 if math.isnan(seconds) else seconds
            cpu_total += seconds
            what = f"{format_seconds(seconds)}" + (" (registry estimate)" if left and scale is None else "")
        lines.append(f"{eid:<{w}} {count['done']:>5} {count['resume']:>6} {count['new']:>5}   {what}")
    if gpu:
        lines.append(f"total GPU time left: {format_seconds(gpu_total)} on one {' / '.join(sorted(devices))}"
                     f" (measured entries)" if devices else "total GPU time left: no measured entry")
        if unmeasured:
            lines.append(f"unmeasured on GPU (no step time measured; not included): {', '.join(unmeasured)}")
    else:
        lines.append(f"total compute left (CPU): {format_seconds(cpu_total)} of single-thread runs, about "
                     f"{format_seconds(cpu_total / max(1, jobs))} wall at --jobs {jobs} (per-run times as measured "
                     f"with two runs sharing 2 cores)")
    return "\n".join(lines)


def _gpu_left(eid: str, left: list, runs_per_gpu: int) -> tuple[str, float | None]:
    """(the column's text, GPU seconds or None if unmeasured) for ``left`` runs of entry ``eid``."""
    if not left:
        return "0 s", 0.0
    m = GPU_MEASURED.get(eid)
    if m is None or any(getattr(r.spec, m.unit, None) is None for r in left):
        return "unmeasured", None
    run_seconds = sum(getattr(r.spec, m.unit) * m.seconds for r in left)
    side = min(runs_per_gpu, m.shared) if m.shared > 1 else 1
    gpu_seconds = run_seconds / side
    share = f", {side} runs per GPU" if side > 1 else ""
    return f"{format_seconds(gpu_seconds)} on one {m.device}{share} (measured)", gpu_seconds
