"""Where runs execute: in this process (``local``), in a pool of single-thread
worker processes on this machine (``pool``), or on a SLURM cluster through
submitit (``slurm``). Every executor calls :func:`runner.run_one`, which
appends a finished run's rows under a file lock, so concurrent runs never lose
or duplicate a row."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import BadInput
from .runner import PlannedRun, execute, format_seconds, run_one

EXECUTORS = ("local", "pool", "slurm")


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this worker when the main process dies,
    so a killed `reproduce.py` leaves no orphan workers still training (and
    writing rows of a grid that may have changed since)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a worker process needs to execute one planned run; it
    pickles, so it crosses the process (or SLURM) boundary as one object."""

    exp_id: str
    execute: Callable | None  # None: looked up in the worker's registry (a closure does not pickle)
    spec: Any
    status: str
    csv: Path
    checkpoint: Path
    profile: str
    device: str
    results_dir: Path
    data_root: Path | None

    @classmethod
    def of(cls, run: PlannedRun, profile: str, device: torch.device, results_dir: Path, data_root: Path | None) -> "Job":
        execute = run.experiment.execute
        return cls(run.experiment.id, execute if _picklable(execute) else None, run.spec, run.status, run.csv,
                   run.checkpoint, profile, str(device), results_dir, data_root)


def _pool_job(job: Job) -> float:
    """Runs in a worker process. ``run_one`` needs only the experiment's id and
    its ``execute``; that function crosses the process boundary when it pickles
    (a module-level function), otherwise (a closure) the entry is looked up
    again in the worker's registry by id."""
    execute = job.execute
    if execute is None:
        from . import experiments as _entries  # noqa: F401  (registers every entry in this worker)
        from .registry import all_experiments

        experiments = all_experiments()
        if job.exp_id not in experiments:
            raise ValueError(f"experiment {job.exp_id!r} is not registered in the worker process; register it in a "
                             f"module that aninfonce.experiments imports, or use --executor local")
        execute = experiments[job.exp_id].execute
    run = PlannedRun(_Entry(job.exp_id, execute), job.spec, job.status, job.csv, job.checkpoint)
    return run_one(run, job.profile, torch.device(job.device), job.results_dir, job.data_root, show_progress=False)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """The part of an Experiment that executing one run needs."""

    id: str
    execute: Callable


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # pickle raises several types for closures and local objects
        return False


def _caught_job(job: Job) -> tuple[float | None, BaseException | None]:
    """:func:`_pool_job` for submitit, which would wrap an error in its own
    FailedJobError: return the error instead, so the caller re-raises it with
    its type (the CLI prints known types as one sentence)."""
    try:
        return _pool_job(job), None
    except Exception as err:
        return None, err if _picklable(err) else RuntimeError(f"{type(err).__name__}: {err}")


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
    errors: list[BaseException] = []
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init,
                                  initargs=(1,))
    try:
        futures = {pool.submit(_pool_job, Job.of(r, profile, device, results_dir, data_root)): r for r in todo}
        for i, fut in enumerate(cf.as_completed(futures), 1):
            run = futures[fut]
            try:
                wall = fut.result()
            except Exception as err:  # the other runs are independent: finish them, then report
                errors.append(err)
                log(f"[{i}/{len(todo)}] {run.spec.label()} FAILED: {type(err).__name__}: {err}")
                continue
            log(f"[{i}/{len(todo)}] {run.spec.label()} finished in {format_seconds(wall)} -> {run.csv}")
    except BaseException:  # Ctrl-C: drop the queued runs; finished ones are saved, killed ones resume
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _raise_first(errors, len(todo))


def _raise_first(errors: list[BaseException], n: int) -> None:
    """Re-raise the first worker error, type kept (the CLI prints known types as
    one sentence), noting how many runs failed in all."""
    if not errors:
        return
    first = errors[0]
    if len(errors) > 1:
        try:
            first.args = (f"{first.args[0] if first.args else first} ({len(errors)} of {n} runs failed; "
                          f"rerun to retry only those)",) + tuple(first.args[1:])
        except Exception:  # an exception type with read-only args: raise it unchanged
            pass
    raise first


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
        jobs = [executor.submit(_caught_job, Job.of(r, profile, device, results_dir, data_root)) for r in todo]
    log(f"submitted {len(jobs)} runs to {executor.cluster} (logs in {folder})")
    errors: list[BaseException] = []
    for i, (job, run) in enumerate(zip(jobs, todo), 1):
        try:
            wall, err = job.result()
        except Exception as crash:  # the job died (killed, out of memory, timeout): submitit's FailedJobError
            wall, err = None, crash
        if err is not None:
            errors.append(err)
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            log(f"[{i}/{len(todo)}] {run.spec.label()} FAILED (job {job.job_id}, log {job.paths.stderr}): {last[0]}")
            continue
        log(f"[{i}/{len(todo)}] {run.spec.label()} finished in {format_seconds(wall)} (job {job.job_id})")
    _raise_first(errors, len(todo))


def run_all(executor: str, runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path,
            data_root: Path | None, jobs: int | None, log: Callable[[str], None] = print) -> None:
    if executor == "local":
        execute(runs, profile, device, results_dir, data_root, log=log)
    elif executor == "pool":
        run_pool(runs, profile, device, results_dir, data_root, jobs or default_jobs(), log)
    elif executor == "slurm":
        run_slurm(runs, profile, device, results_dir, data_root, log)
    else:
        raise BadInput(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
