"""Where runs execute: in this process (``local``), in a pool of single-thread
worker processes on this machine (``pool``), or on a SLURM cluster through
submitit (``slurm``: :mod:`aninfonce.slurm`). A worker process executes a
:class:`~aninfonce.jobs.Job` (:mod:`aninfonce.jobs`); every executor ends in
:func:`runner.run_one`, which appends a finished run's rows under a file lock,
so concurrent runs never lose or duplicate a row."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
from pathlib import Path
from typing import Any, Callable

import torch

from .cores import usable_cores
from .errors import BadInput
from .jobs import Job, raise_first, run_job
from .lifecycle import RunStopped, clear_stop, on_signal, pool_worker_start, request_stop, stop_requested
from .progress import PoolProgress
from .runner import PlannedRun, execute, finished_line
from .slurm import SlurmResources, run_slurm

EXECUTORS = ("local", "pool", "slurm")


def default_jobs() -> int:
    return usable_cores()


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
            futures = {pool.submit(run_job, Job.of(r, profile, device, results_dir, data_root)): r for r in todo}
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
    raise_first(errors, len(todo))


def _signal_workers(pool: cf.ProcessPoolExecutor, sig: int) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            os.kill(proc.pid, sig)
        except (ProcessLookupError, TypeError):  # gone, or not started (pid None)
            pass


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
