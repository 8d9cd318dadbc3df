"""Where runs execute: in this process (``local``), in a pool of single-thread
worker processes on this machine (``pool``), or on a SLURM cluster through
submitit (``slurm``). Every executor calls :func:`runner.run_one`, which
appends a finished run's rows under a file lock, so concurrent runs never lose
or duplicate a row."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from pathlib import Path
from typing import Callable

import torch

from .runner import PlannedRun, execute, format_seconds, run_one

EXECUTORS = ("local", "pool", "slurm")


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _pool_job(exp_id: str, spec, status: str, csv: Path, ckpt: Path, profile: str, device: str,
              results_dir: Path, data_root: Path | None) -> float:
    """Runs in a worker: experiments hold closures (claims), so only the id and
    the spec cross the process boundary and the entry is looked up again."""
    from .registry import all_experiments

    run = PlannedRun(all_experiments()[exp_id], spec, status, csv, ckpt)
    return run_one(run, profile, torch.device(device), results_dir, data_root, show_progress=False)


def _job_args(run: PlannedRun) -> tuple:
    return (run.experiment.id, run.spec, run.status, run.csv, run.checkpoint)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_pool(runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path, data_root: Path | None,
             jobs: int, log: Callable[[str], None] = print) -> None:
    """Independent runs in ``jobs`` processes, one torch thread each. On 2 CPU
    cores two single-thread processes of the synthetic model do about 1.5x the
    steps of one two-thread process."""
    todo = [r for r in runs if r.status != "done"]
    if not todo:
        return
    ctx = mp.get_context("spawn")  # fork + torch threads is unsafe
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(1,)) as pool:
        futures = {pool.submit(_pool_job, *_job_args(r), profile, str(device), results_dir, data_root): r for r in todo}
        for i, fut in enumerate(cf.as_completed(futures), 1):
            run = futures[fut]
            wall = fut.result()  # re-raises a worker's error here
            log(f"[{i}/{len(todo)}] {run.spec.label()} finished in {format_seconds(wall)} -> {run.csv}")


def run_slurm(runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path, data_root: Path | None,
              log: Callable[[str], None] = print, folder: Path | None = None, cluster: str | None = None,
              slurm_params: dict | None = None) -> None:
    """Submit every run not yet cached as one job of a submitit job array, and
    wait for them. ``cluster="local"`` uses submitit's local executor (tests)."""
    import submitit

    todo = [r for r in runs if r.status != "done"]
    if not todo:
        return
    folder = folder or Path(results_dir) / ".cache" / profile / "submitit"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(timeout_min=24 * 60, **(slurm_params or {}))
    with executor.batch():
        jobs = [executor.submit(_pool_job, *_job_args(r), profile, str(device), results_dir, data_root) for r in todo]
    log(f"submitted {len(jobs)} runs to {executor.cluster} (logs in {folder})")
    for i, (job, run) in enumerate(zip(jobs, todo), 1):
        wall = job.result()
        log(f"[{i}/{len(todo)}] {run.spec.label()} finished in {format_seconds(wall)} (job {job.job_id})")


def run_all(executor: str, runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path,
            data_root: Path | None, jobs: int | None, log: Callable[[str], None] = print) -> None:
    if executor == "local":
        execute(runs, profile, device, results_dir, data_root, log=log)
    elif executor == "pool":
        run_pool(runs, profile, device, results_dir, data_root, jobs or default_jobs(), log)
    elif executor == "slurm":
        run_slurm(runs, profile, device, results_dir, data_root, log)
    else:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
