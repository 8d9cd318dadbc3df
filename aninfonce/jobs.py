"""What runs on the far side of a process boundary: a :class:`Job` (one
planned run, in a form that pickles) and the bodies that execute it in a pool
worker (:func:`run_job`) or in a submitit job: one run (:func:`caught_job`),
one rank of a data-parallel run (:func:`rank_job`), or several runs side by
side on one GPU (:func:`packed_job`). Each calls :func:`runner.run_one`, which
appends a finished run's rows under a file lock, so concurrent runs never lose
or duplicate a row. The executors that start them are in
:mod:`aninfonce.executors` (local, pool) and :mod:`aninfonce.slurm`."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import torch

from .lifecycle import pool_worker_start, progress_queue, watch_submitter
from .runner import PlannedRun, run_one


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
    submitter_pid: int | None = None  # a job of submitit's local executor ends when this process is gone

    @classmethod
    def of(cls, run: PlannedRun, profile: str, device: torch.device, results_dir: Path, data_root: Path | None) -> "Job":
        execute = run.experiment.execute
        return cls(run.experiment.id, execute if _picklable(execute) else None, run.spec, run.status, run.csv,
                   run.checkpoint, profile, str(device), results_dir, data_root, os.getpid())


def _planned(job: Job) -> PlannedRun:
    """The job's run in a worker process. ``run_one`` needs only the experiment's
    id and its ``execute``; that function crosses the process boundary when it
    pickles (a module-level function), otherwise (a closure) the entry is looked
    up again in the worker's registry by id."""
    execute = job.execute
    if execute is None:
        from . import studies as _entries  # noqa: F401  (registers every study in this worker)
        from .registry import all_studies

        experiments = all_studies()
        if job.exp_id not in experiments:
            raise ValueError(f"experiment {job.exp_id!r} is not registered in the worker process; register it in a "
                             f"module that aninfonce.studies imports, or use --executor local")
        execute = experiments[job.exp_id].execute
    return PlannedRun(_Entry(job.exp_id, execute), job.spec, job.status, job.csv, job.checkpoint)


def run_job(job: Job) -> float | None:
    """Runs in a worker process (a pool worker, or a single-task SLURM job). In
    a pool, the run's progress goes to the parent at each of its progress
    updates (evaluation points: no extra host sync in the step loop)."""
    if os.environ.get("SUBMITIT_EXECUTOR") == "local" and job.submitter_pid:  # not on SLURM: jobs outlive their submitter
        watch_submitter(job.submitter_pid)
    report, queue = None, progress_queue()
    if queue is not None:
        key = job.spec.key

        def report(n: int, total: int | None) -> None:
            queue.put_nowait((key, n, total))
    return run_one(_planned(job), job.profile, torch.device(job.device), job.results_dir, job.data_root,
                   show_progress=False, report=report)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """The part of a Study that executing one run needs."""

    id: str
    execute: Callable


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # pickle raises several types for closures and local objects
        return False


def caught_job(job: Job) -> tuple[float | None, BaseException | None]:
    """:func:`run_job` for submitit, which would wrap an error in its own
    FailedJobError: return the error instead, so the caller re-raises it with
    its type (the CLI prints known types as one sentence)."""
    try:
        return run_job(job), None
    except Exception as err:
        return None, _portable(err)


def rank_job(job: Job) -> tuple[float | None, BaseException | None]:
    """One task of a multi-task submitit job (one task per GPU; on CPU, gloo
    ranks): export the torch.distributed environment (MASTER_ADDR = the job's
    first node, MASTER_PORT drawn from the job id, RANK, WORLD_SIZE, LOCAL_RANK
    from SLURM's task variables, or submitit's local ones), then the per-rank
    body torchrun runs (:func:`aninfonce.torchrun.run_ranks`); rank 0 writes the
    rows. Every task returns (wall, error) like :func:`caught_job`."""
    try:
        import submitit

        from .torchrun import run_ranks

        if os.environ.get("SUBMITIT_EXECUTOR") == "local" and job.submitter_pid:
            watch_submitter(job.submitter_pid)

        # overwrite: a job submitted from inside a torchrun job inherits its RANK, WORLD_SIZE, ...;
        # CUDA_VISIBLE_DEVICES is left as SLURM set it (run_ranks picks this rank's GPU among those)
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        return run_ranks([_planned(job)], job.profile, job.results_dir, job.data_root, job.device,
                         show_progress=False), None
    except Exception as err:
        return None, _portable(err)


def packed_job(jobs: list[Job]) -> list[tuple[str, tuple[float | None, BaseException | None]]]:
    """Runs in one SLURM job on one GPU: its runs side by side, one process each
    (each a lone run's numbers: same code, same single-thread CPU setting as the
    pool), returning (run key, (wall, error)) per run."""
    if len(jobs) == 1:
        return [(jobs[0].spec.key, caught_job(jobs[0]))]
    ctx = mp.get_context("spawn")
    # bound to this job's process; SLURM's SIGTERM reaches every process of the job: each run checkpoints
    with cf.ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx, initializer=pool_worker_start,
                                initargs=(os.getpid(), 1)) as pool:
        futures = [pool.submit(caught_job, j) for j in jobs]
        out = []
        for j, fut in zip(jobs, futures):
            try:
                out.append((j.spec.key, fut.result()))
            except Exception as err:  # a worker process died (e.g. out of memory)
                out.append((j.spec.key, (None, _portable(err))))
    return out


def _portable(err: BaseException) -> BaseException:
    return err if _picklable(err) else RuntimeError(f"{type(err).__name__}: {err}")


def raise_first(errors: list[BaseException], n: int) -> None:
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
