"""Progress of a pool of worker processes, shown by the parent (no torch)."""

from __future__ import annotations

import queue as queue_mod
import sys
import threading
import time
from typing import Callable

from .results import format_seconds

LOG_EVERY = 60.0  # seconds between progress lines when stderr is not a terminal (a log file)


class PoolProgress:
    """The pool's progress as one line on ``stream``: runs running and finished,
    the workers' summed steps/s and the ETA of the steps left (runs of known
    length; the pool assumed to stay as busy). Workers put (run key, steps
    done, total) on ``queue`` at their evaluation points; a thread here reads
    them. On a terminal the line is redrawn in place every second; in a log
    file it is a new line every ``every`` seconds (default :data:`LOG_EVERY`)."""

    def __init__(self, runs: list, queue, stream=None, every: float | None = None):
        self.queue, self.stream, self.every = queue, stream or sys.stderr, every or LOG_EVERY
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = {r.spec.key: getattr(r.spec, "steps", None) for r in runs}
        self.first: dict[str, int] = {}
        self.now: dict[str, int] = {}
        self.ended: set[str] = set()
        self.t0 = self.shown = time.perf_counter()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                key, n, total = self.queue.get(timeout=0.5)
            except (queue_mod.Empty, OSError, EOFError):
                key = None
            with self._lock:
                if key is not None:
                    self.first.setdefault(key, n)
                    self.now[key] = n
                    self.total[key] = total or self.total.get(key)
                if time.perf_counter() - self.shown >= (1.0 if self.live else self.every):
                    self._show()

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = sum(self.now[k] - self.first[k] for k in self.now) / elapsed
        left = sum(max(0, (t or 0) - (0 if k in self.ended else self.now.get(k, 0)))
                   for k, t in self.total.items() if k not in self.ended)
        eta = format_seconds(left / rate) if rate > 0 else "unknown"
        running = len(set(self.now) - self.ended)
        return (f"pool: {running} running, {len(self.ended)}/{len(self.total)} finished, {rate:,.1f} steps/s, "
                f"ETA {eta} ({format_seconds(elapsed)} elapsed)")

    def _show(self) -> None:
        self.shown = time.perf_counter()
        self.stream.write(f"\r{self.line()}\033[K" if self.live else f"{self.line()}\n")
        self.stream.flush()

    def finished(self, key: str) -> None:
        with self._lock:
            self.ended.add(key)

    def wrap(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` that first clears the live line, so the two never share a row."""
        def cleared(msg: str) -> None:
            with self._lock:
                if self.live:
                    self.stream.write("\r\033[K")
                    self.stream.flush()
                log(msg)
        return cleared

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
