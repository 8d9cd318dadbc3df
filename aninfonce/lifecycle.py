"""How the runner's processes end, without importing torch: a pool worker
runs :func:`pool_worker_start` first, within a fraction of a second of its
start, so it is bound to the main process before its slow imports.

- **kill -9 of the main process**: its pool workers are killed by the kernel
  (PR_SET_PDEATHSIG), from their first moments on; a job of submitit's local
  executor ends within a second (:func:`watch_submitter`). They resume from
  their last checkpoints, like any killed run.
- **SIGTERM** (what SLURM sends before preemption or at a job's time limit):
  :func:`request_stop` asks the step loop to finish its step, checkpoint and
  raise :class:`RunStopped`; the main process forwards the signal to its
  workers and waits for their checkpoints.
- **Ctrl-C**: workers ignore SIGINT; the main process stops them as for
  SIGTERM and prints one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any


class RunStopped(RuntimeError):
    """A run ended on request (SIGTERM) after writing its checkpoint; the same
    command resumes it. The CLI exits with its own code for it."""


# set from a signal handler, so a plain flag: no lock a handler could find held
_stop = False


def request_stop(signum: int | None = None, frame: Any = None) -> None:
    """SIGTERM handler: let the current step finish, checkpoint, stop (trainers.loop.train_loop)."""
    global _stop
    _stop = True


def stop_requested() -> bool:
    return _stop


def clear_stop() -> None:
    """Forget a stop asked for earlier (a new command in the same process)."""
    global _stop
    _stop = False


def on_signal(sig: int, handler: Any) -> Any:
    """``signal.signal`` where this thread may install handlers (the main
    thread); elsewhere nothing is installed. Returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(sig, handler)


def die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies; if
    the parent died before that request (``os.getppid()`` is no longer
    ``parent_pid``), exit now: nothing outlives the main process."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


# in a pool worker: the queue its runs report their progress to (executors.run_pool), or None
_progress: Any = None


def progress_queue() -> Any:
    return _progress


def pool_worker_start(parent_pid: int, threads: int, progress: Any = None) -> None:
    """A pool worker's initializer: bound to the main process first, then
    stop on SIGTERM, ignore Ctrl-C (it reaches the whole process group; the
    main process handles it), and only then import torch. ``progress``: the
    queue the worker's runs report to."""
    global _progress
    die_with_parent(parent_pid)
    _progress = progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, request_stop)
    # the main process starts its workers with both blocked, so that one sent
    # before this point waits for these handlers instead of ending the worker
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    import torch

    torch.set_num_threads(threads)


def watch_submitter(pid: int, every: float = 0.5) -> None:
    """For a job of submitit's local executor (started by a controller process
    that outlives the submitter; never for a SLURM job, which must outlive
    it): end this process once process ``pid`` is gone."""
    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive (another user's process)
                pass
            time.sleep(every)

    threading.Thread(target=watch, name="watch-submitter", daemon=True).start()
