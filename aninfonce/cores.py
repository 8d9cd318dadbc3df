"""How many CPU cores this process may use (its affinity where the system
tells it, else the machine's count): the default number of training
processes, loader workers and figure-drawing processes. No torch."""

from __future__ import annotations

import os


def usable_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
