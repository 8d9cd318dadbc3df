"""Where runs execute: in this process (``local``), in a pool of single-thread
worker processes on this machine (``pool``), or on a SLURM cluster through
submitit (``slurm``: one job per run; a data-parallel image run on N > 1 GPUs
is one job of N tasks, each a rank of :func:`aninfonce.torchrun.run_ranks`).
Every executor calls :func:`runner.run_one` (on rank 0 only, for N ranks), which
appends a finished run's rows under a file lock, so concurrent runs never lose
or duplicate a row."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import pickle
import signal
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import BadInput
from .lifecycle import (RunStopped, clear_stop, on_signal, pool_worker_start, request_stop, stop_requested,
                        watch_submitter)
from .runner import PlannedRun, execute, finished_line, format_seconds, run_one

EXECUTORS = ("local", "pool", "slurm")


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
        from . import experiments as _entries  # noqa: F401  (registers every entry in this worker)
        from .registry import all_experiments

        experiments = all_experiments()
        if job.exp_id not in experiments:
            raise ValueError(f"experiment {job.exp_id!r} is not registered in the worker process; register it in a "
                             f"module that aninfonce.experiments imports, or use --executor local")
        execute = experiments[job.exp_id].execute
    return PlannedRun(_Entry(job.exp_id, execute), job.spec, job.status, job.csv, job.checkpoint)


def _pool_job(job: Job) -> float | None:
    """Runs in a worker process (a pool worker, or a single-task SLURM job)."""
    if os.environ.get("SUBMITIT_EXECUTOR") == "local" and job.submitter_pid:  # not on SLURM: jobs outlive their submitter
        watch_submitter(job.submitter_pid)
    return run_one(_planned(job), job.profile, torch.device(job.device), job.results_dir, job.data_root,
                   show_progress=False)


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
        return None, _portable(err)


def _rank_job(job: Job) -> tuple[float | None, BaseException | None]:
    """One task of a multi-task submitit job (one task per GPU; on CPU, gloo
    ranks): export the torch.distributed environment (MASTER_ADDR = the job's
    first node, MASTER_PORT drawn from the job id, RANK, WORLD_SIZE, LOCAL_RANK
    from SLURM's task variables, or submitit's local ones), then the per-rank
    body torchrun runs (:func:`aninfonce.torchrun.run_ranks`); rank 0 writes the
    rows. Every task returns (wall, error) like :func:`_caught_job`."""
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


def _portable(err: BaseException) -> BaseException:
    return err if _picklable(err) else RuntimeError(f"{type(err).__name__}: {err}")


@dataclasses.dataclass(frozen=True)
class SlurmResources:
    """What each SLURM job of ``--executor slurm`` asks for, as submitit's
    AutoExecutor parameters. A run that trains data-parallel (an image entry)
    with more than one GPU runs as one task per GPU (:func:`_rank_job`); any
    other run is one task on at most one GPU (:func:`_caught_job`)."""

    partition: str | None = None  # None: the cluster's default partition
    gpus_per_run: int | None = None  # None: from device (auto: 1 for an image run, 0 for the others)
    cpus_per_task: int | None = None  # None: the cluster's default
    time_min: int = 24 * 60
    device: str = "auto"  # the --device asked for: cuda = a GPU for every run, cpu = none
    tasks_per_run: int | None = None  # None: one per GPU; >1 without GPUs = gloo ranks on CPU (tests)

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise BadInput(f"unknown device {self.device!r}; choose auto, cpu or cuda")
        if self.device == "cpu" and self.gpus_per_run:
            raise BadInput("--device cpu contradicts --slurm-gpus-per-run above 0; drop one of them")
        for name, option, least in (("gpus_per_run", "--slurm-gpus-per-run", 0),
                                    ("cpus_per_task", "--slurm-cpus-per-task", 1),
                                    ("time_min", "--slurm-time-min", 1), ("tasks_per_run", "tasks_per_run", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise BadInput(f"{option} must be at least {least}, not {value}")

    def gpus(self, run: PlannedRun) -> int:
        parallel = _data_parallel(run)
        if self.gpus_per_run is not None:
            return self.gpus_per_run if parallel else min(self.gpus_per_run, 1)
        return 1 if self.device == "cuda" or (self.device == "auto" and parallel) else 0

    def tasks(self, run: PlannedRun) -> int:
        if not _data_parallel(run):
            return 1
        return self.tasks_per_run or max(1, self.gpus(run))

    def parameters(self, run: PlannedRun) -> dict[str, Any]:
        """submitit's names: the generic timeout_min, gpus_per_node, tasks_per_node and
        cpus_per_task, and slurm_partition (used on SLURM only). A default (no GPU, one
        task, the cluster's CPUs and partition) is left out of the sbatch file."""
        gpus, tasks = self.gpus(run), self.tasks(run)
        out = {"timeout_min": self.time_min, "gpus_per_node": gpus or None,
               "tasks_per_node": tasks if tasks > 1 else None, "cpus_per_task": self.cpus_per_task,
               "slurm_partition": self.partition}
        return {k: v for k, v in out.items() if v is not None}


def _data_parallel(run: PlannedRun) -> bool:
    """The image entries train data-parallel (aninfonce.trainers.simclr); the others on one device."""
    from .trainers.simclr import ImageSSLSpec

    return isinstance(run.spec, ImageSSLSpec)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_pool(runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path, data_root: Path | None,
             jobs: int, log: Callable[[str], None] = print) -> None:
    """Independent runs in ``jobs`` processes, one torch thread each. On 2 CPU
    cores two single-thread processes of the synthetic model do about 1.5x the
    steps of one two-thread process.

    The workers die with this process (:mod:`aninfonce.lifecycle`). SIGTERM
    here is forwarded to them: each checkpoints after its current step, and
    :class:`RunStopped` is raised once they have. Ctrl-C stops them the same
    way (they ignore SIGINT) before the KeyboardInterrupt goes on."""
    todo = [r for r in runs if r.status != "done"]
    if not todo:
        return
    ctx = mp.get_context("spawn")  # fork + torch threads is unsafe
    errors: list[BaseException] = []
    stopped = 0
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=pool_worker_start,
                                  initargs=(os.getpid(), 1))

    def forward_stop(signum: int, frame: Any) -> None:
        request_stop()
        _signal_workers(pool, signal.SIGTERM)

    previous = on_signal(signal.SIGTERM, forward_stop)
    try:
        # the workers start while the submissions are made, with SIGINT and SIGTERM blocked (a blocked
        # signal stays blocked across exec): one that arrives in a worker's first moments waits for its
        # initializer (Ctrl-C ignored, SIGTERM a stop). A Ctrl-C here waits until every worker has its
        # start-up data: cut off mid-way, a worker would print a traceback of its own
        ctrl_c: list[int] = []
        sigint = on_signal(signal.SIGINT, lambda signum, frame: ctrl_c.append(signum))
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            futures = {pool.submit(_pool_job, Job.of(r, profile, device, results_dir, data_root)): r for r in todo}
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if sigint is not None:
                on_signal(signal.SIGINT, sigint)
        if ctrl_c:
            raise KeyboardInterrupt
        for i, fut in enumerate(cf.as_completed(futures), 1):
            run = futures[fut]
            try:
                wall = fut.result()
            except RunStopped as err:
                stopped += 1
                log(f"[{i}/{len(todo)}] stopped: {err}")
                continue
            except Exception as err:  # the other runs are independent: finish them, then report
                if stop_requested():  # a worker ended by the stop before it could catch it
                    stopped += 1
                    continue
                errors.append(err)
                log(f"[{i}/{len(todo)}] {run.spec.label()} FAILED: {type(err).__name__}: {err}")
                continue
            log(finished_line(i, len(todo), run, wall))
    except BaseException:  # Ctrl-C: the workers checkpoint and stop; finished runs are saved
        request_stop()
        _signal_workers(pool, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if previous is not None:
            on_signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)
    if stop_requested():
        raise RunStopped(f"{stopped} of {len(todo)} run(s) stopped; each wrote a checkpoint")
    _raise_first(errors, len(todo))


def _signal_workers(pool: cf.ProcessPoolExecutor, sig: int) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            os.kill(proc.pid, sig)
        except (ProcessLookupError, TypeError):  # gone, or not started (pid None)
            pass


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


def run_slurm(runs: list[PlannedRun], profile: str, device: torch.device | None, results_dir: Path,
              data_root: Path | None, log: Callable[[str], None] = print, folder: Path | None = None,
              cluster: str | None = None, slurm_params: dict | None = None,
              resources: SlurmResources | None = None) -> None:
    """Submit every run not yet cached as one job of a submitit job array (one
    array per set of resources), and wait for them. ``cluster="local"`` uses
    submitit's local executor (tests). Without ``resources``, every run asks for
    a GPU iff ``device`` is CUDA; ``slurm_params`` are further submitit parameters."""
    import submitit

    todo = [r for r in runs if r.status != "done"]
    if not todo:
        return
    resources = resources or SlurmResources(device=device.type if device is not None else "auto")
    folder = folder or Path(results_dir) / ".cache" / profile / "submitit"
    groups: dict[tuple, list[PlannedRun]] = {}
    for run in todo:
        groups.setdefault(tuple(sorted(resources.parameters(run).items())), []).append(run)
    jobs, order = [], []
    for params, group in groups.items():  # an executor each: its parameters only accumulate
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        executor.update_parameters(**{**dict(params), **(slurm_params or {})})
        with executor.batch():
            for r in group:
                job = Job.of(r, profile, torch.device("cuda" if resources.gpus(r) else "cpu"), results_dir, data_root)
                jobs.append(executor.submit(_rank_job if resources.tasks(r) > 1 else _caught_job, job))
        order += group
    log(f"submitted {len(jobs)} runs to {executor.cluster} (logs in {folder})")
    errors: list[BaseException] = []
    for i, (job, run) in enumerate(zip(jobs, order), 1):
        try:
            outcomes = job.results()  # one (wall, error) per task; rank 0's wall
        except Exception as crash:  # the job died (killed, out of memory, timeout): submitit's FailedJobError
            outcomes = [(None, crash)]
        err = next((e for _, e in outcomes if e is not None), None)
        if err is not None:
            errors.append(err)
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            log(f"[{i}/{len(todo)}] {run.spec.label()} FAILED (job {job.job_id}, log {job.paths.stderr}): {last[0]}")
            continue
        log(f"[{i}/{len(todo)}] {run.spec.label()} finished in {format_seconds(outcomes[0][0])} (job {job.job_id}"
            f"{f', {len(outcomes)} tasks' if len(outcomes) > 1 else ''})")
    _raise_first(errors, len(todo))


def run_all(executor: str, runs: list[PlannedRun], profile: str, device: torch.device | None, results_dir: Path,
            data_root: Path | None, jobs: int | None, log: Callable[[str], None] = print,
            slurm: SlurmResources | None = None) -> None:
    """``device`` is this machine's (None for slurm: each job's follows the GPUs it asks for)."""
    clear_stop()
    if executor == "local":  # SIGTERM: the run in this process checkpoints and stops (RunStopped)
        previous = on_signal(signal.SIGTERM, request_stop)
        try:
            execute(runs, profile, device, results_dir, data_root, log=log)
        finally:
            if previous is not None:
                on_signal(signal.SIGTERM, previous)
    elif executor == "pool":
        run_pool(runs, profile, device, results_dir, data_root, jobs or default_jobs(), log)
    elif executor == "slurm":
        run_slurm(runs, profile, device, results_dir, data_root, log, resources=slurm)
    else:
        raise BadInput(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
