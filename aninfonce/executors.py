"""Where runs execute: in this process (``local``), in a pool of single-thread
worker processes on this machine (``pool``), or on a SLURM cluster through
submitit (``slurm``: single-device runs several to a GPU, one process each; a
data-parallel image run on N > 1 GPUs is one job of N tasks, each a rank of
:func:`aninfonce.torchrun.run_ranks`; submission returns and records what is
in flight, :mod:`aninfonce.slurm`).
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
from .lifecycle import (RunStopped, clear_stop, on_signal, pool_worker_start, progress_queue, request_stop,
                        stop_requested, watch_submitter)
from .progress import PoolProgress
from .runner import PlannedRun, execute, finished_line, format_seconds, run_one
from .slurm import InFlight, SlurmResources, ended

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
        from . import studies as _entries  # noqa: F401  (registers every study in this worker)
        from .registry import all_studies

        experiments = all_studies()
        if job.exp_id not in experiments:
            raise ValueError(f"experiment {job.exp_id!r} is not registered in the worker process; register it in a "
                             f"module that aninfonce.studies imports, or use --executor local")
        execute = experiments[job.exp_id].execute
    return PlannedRun(_Entry(job.exp_id, execute), job.spec, job.status, job.csv, job.checkpoint)


def _pool_job(job: Job) -> float | None:
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


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_pool(runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path, data_root: Path | None,
             jobs: int, log: Callable[[str], None] = print, progress_stream=None) -> None:
    """Independent runs in ``jobs`` processes, one torch thread each. On 2 CPU
    cores two single-thread processes of the synthetic model do about 1.5x the
    steps of one two-thread process. Progress: one line on ``progress_stream``
    (default stderr, :class:`PoolProgress`) and one line per finished run.

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
    progress = PoolProgress(todo, ctx.Queue(), progress_stream)
    log = progress.wrap(log)
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=pool_worker_start,
                                  initargs=(os.getpid(), 1, progress.queue))

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
            progress.finished(run.spec.key)
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
        progress.stop()
        request_stop()
        _signal_workers(pool, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if previous is not None:
            on_signal(signal.SIGTERM, previous)
    progress.stop()
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
              resources: SlurmResources | None = None, wait: bool = True) -> int:
    """Submit every run that is neither cached nor in flight as one job of a
    submitit job array (one array per set of resources; single-device GPU runs
    ``resources.runs_per_gpu`` to a job), record what is in flight under the
    profile's cache folder (:class:`aninfonce.slurm.InFlight`), and return the
    number of runs still in flight. A run recorded by an earlier call is
    shown, not resubmitted, while its job is queued or running; once its job
    ended its rows are there (gathered) or it failed (named with its log, and
    submitted again: a run cut off at its time limit resumes from its last
    checkpoint). ``wait`` blocks until every job ended and raises the first
    run's error (the Python API's default; the CLI's ``--wait``).
    ``cluster="local"`` is submitit's local executor (tests)."""
    import submitit

    resources = resources or SlurmResources(device=device.type if device is not None else "auto")
    folder = Path(folder or Path(results_dir) / ".cache" / profile / "submitit")
    book = InFlight(results_dir, profile)
    done = {r.spec.key for r in runs if r.status == "done"}
    gathered = [k for k in book.runs if k in done]
    for key in gathered:
        log(f"gathered {book.runs.pop(key)['label']} (finished on the cluster)")
    todo = [r for r in runs if r.status != "done"]
    recorded = [r for r in todo if r.spec.key in book.runs]
    states = book.states([r.spec.key for r in recorded])
    flying = [r for r in recorded if not ended(states[r.spec.key])]
    in_flight = {r.spec.key for r in flying}
    for r in recorded:
        if r.spec.key not in in_flight:  # ended without writing its rows: say where its log is, then submit it again
            log(f"{r.spec.label()} FAILED on the cluster ({_failure(book, r.spec.key, states[r.spec.key])}); "
                f"submitting it again")
            del book.runs[r.spec.key]
    fresh = [r for r in todo if r.spec.key not in in_flight]
    submitted = _submit(fresh, profile, results_dir, data_root, folder, cluster, slurm_params, resources, book)
    book.save()
    where = submitted[0][0].cluster if submitted else cluster or "slurm"
    if wait:
        return _wait(todo, submitted, book, where, folder, log)
    for executor, array in submitted:
        n_runs = sum(len(group) for group, _, _ in array)
        log(f"submitted array {array[0][1].job_id.split('_')[0]}: {n_runs} runs in {len(array)} jobs to "
            f"{executor.cluster}, each {_asks(array[0][0][0], resources)} (logs in {folder})")
    for r in flying:
        entry = book.runs[r.spec.key]
        log(f"in flight: {r.spec.label()} (job {entry['job_id']}, {states[r.spec.key].lower()}, "
            f"submitted {entry['submitted']})")
    if book.runs:
        log(f"{len(book.runs)} runs in flight on {where} (record: {book.path}); rerun the same command to "
            f"see them and gather finished ones (`squeue -u $USER` shows the queue)")
    return len(book.runs)


def _asks(run: PlannedRun, resources: SlurmResources) -> str:
    p = resources.parameters(run)
    gpus, pack = p.get("gpus_per_node", 0), resources.pack(run)
    what = f"{gpus} GPU{'s' if gpus != 1 else ''}" + (f" shared by up to {pack} runs" if pack > 1 else "")
    return f"{what}, {p.get('cpus_per_task', 'default')} CPUs, {p['timeout_min']} min"


def _submit(todo: list[PlannedRun], profile: str, results_dir: Path, data_root: Path | None, folder: Path,
            cluster: str | None, slurm_params: dict | None, resources: SlurmResources, book: InFlight) -> list:
    """One submitit array per set of resources; returns (executor, [(runs, job, kind)]) per array."""
    import submitit

    groups: dict[tuple, list[PlannedRun]] = {}
    for run in todo:
        groups.setdefault(tuple(sorted(resources.parameters(run).items())), []).append(run)
    out = []
    for params, group in groups.items():  # an executor each: its parameters only accumulate
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        executor.update_parameters(**{**dict(params), **(slurm_params or {})})
        k = resources.pack(group[0])
        array = []
        with executor.batch():
            for i in range(0, len(group), k):
                chunk = group[i:i + k]
                jobs = [Job.of(r, profile, torch.device("cuda" if resources.gpus(r) else "cpu"), results_dir,
                               data_root) for r in chunk]
                if k > 1:
                    kind, job = "pack", executor.submit(_packed_job, jobs)
                else:
                    kind = "ranks" if resources.tasks(chunk[0]) > 1 else "single"
                    job = executor.submit(_rank_job if kind == "ranks" else _caught_job, jobs[0])
                array.append((chunk, job, kind))
        for chunk, job, kind in array:  # job ids exist once the batch is submitted
            for r in chunk:
                book.add(r, job, kind, folder, executor.cluster)
        out.append((executor, array))
    return out


def _wait(todo: list[PlannedRun], submitted: list, book: InFlight, where: str, folder: Path,
          log: Callable[[str], None]) -> int:
    """Block until every job ended (those of an earlier call too), log each run, raise the first error."""
    n = sum(len(chunk) for _, array in submitted for chunk, _, _ in array)
    if n:
        log(f"submitted {n} runs to {where} (logs in {folder})")
    live = {r.spec.key: job for _, array in submitted for chunk, job, _ in array for r in chunk}
    errors: list[BaseException] = []
    for i, r in enumerate(todo, 1):
        key = r.spec.key
        job = live.get(key) or book.job(key)  # this call's own job objects know their local processes
        wall, err = _outcome(job, book.runs[key]["kind"], key)
        if err is not None:
            errors.append(err)
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            log(f"[{i}/{len(todo)}] {r.spec.label()} FAILED (job {job.job_id}, log {job.paths.stderr}): {last[0]}")
        else:
            tasks = len(job.results()) if book.runs[key]["kind"] == "ranks" else 1
            log(f"[{i}/{len(todo)}] {r.spec.label()} finished in {format_seconds(wall)} (job {job.job_id}"
                f"{f', {tasks} tasks' if tasks > 1 else ''})")
        del book.runs[key]
        book.save()
    _raise_first(errors, len(todo))
    return 0


def _outcome(job, kind: str, key: str) -> tuple[float | None, BaseException | None]:
    """(wall, error) of run ``key`` in ``job``, waiting for the job to end."""
    try:
        results = job.results()  # one value per task
    except Exception as crash:  # the job died (killed, out of memory, timeout): submitit's error
        return None, crash
    if kind == "pack":
        return dict(results[0]).get(key, (None, RuntimeError(f"run {key} is missing from job {job.job_id}")))
    err = next((e for _, e in results if e is not None), None)
    return results[0][0], err


def _failure(book: InFlight, key: str, state: str) -> str:
    job = book.job(key)
    reason = f"job {job.job_id} {state.lower()}"
    if job.paths.result_pickle.exists():
        _, err = _outcome(job, book.runs[key]["kind"], key)
        if err is not None:
            reason += f": {(str(err).strip().splitlines() or [type(err).__name__])[-1]}"
    return f"{reason}; log {job.paths.stderr}"


def _packed_job(jobs: list[Job]) -> list[tuple[str, tuple[float | None, BaseException | None]]]:
    """Runs in one SLURM job on one GPU: its runs side by side, one process each
    (each a lone run's numbers: same code, same single-thread CPU setting as the
    pool), returning (run key, (wall, error)) per run."""
    if len(jobs) == 1:
        return [(jobs[0].spec.key, _caught_job(jobs[0]))]
    ctx = mp.get_context("spawn")
    # bound to this job's process; SLURM's SIGTERM reaches every process of the job: each run checkpoints
    with cf.ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx, initializer=pool_worker_start,
                                initargs=(os.getpid(), 1)) as pool:
        futures = [pool.submit(_caught_job, j) for j in jobs]
        out = []
        for j, fut in zip(jobs, futures):
            try:
                out.append((j.spec.key, fut.result()))
            except Exception as err:  # a worker process died (e.g. out of memory)
                out.append((j.spec.key, (None, _portable(err))))
    return out


def run_all(executor: str, runs: list[PlannedRun], profile: str, device: torch.device | None, results_dir: Path,
            data_root: Path | None, jobs: int | None, log: Callable[[str], None] = print,
            slurm: SlurmResources | None = None, wait: bool = False) -> int:
    """``device`` is this machine's (None for slurm: each job's follows the GPUs it
    asks for). Returns the number of runs still in flight (slurm without ``wait``)."""
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
        return run_slurm(runs, profile, device, results_dir, data_root, log, resources=slurm, wait=wait)
    else:
        raise BadInput(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    return 0
