"""pytest-benchmark setup: torch threads, and a plain-vs-fast summary.

Every benchmark is parametrised ``impl = plain | fast`` inside one group; the
plain variant runs first, the fast one stores ``speedup_vs_plain`` in its
``extra_info`` (kept in ``--benchmark-json`` / ``--benchmark-autosave``
files) and the session ends with a table of the ratios.

    flock /tmp/aninfonce-cpu.lock pytest benchmarks/ --benchmark-only
    ANINFONCE_BENCH_THREADS=1 pytest benchmarks/ --benchmark-only -k step
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The speed targets these benchmarks check are stated for the 2 CPU cores of the build machines.
THREADS = int(os.environ.get("ANINFONCE_BENCH_THREADS", "2"))
try:  # the reading benchmarks run where only pandas and matplotlib are installed
    import torch
except ImportError:
    torch = None
else:
    torch.set_num_threads(THREADS)

_MEDIANS: dict[str, dict[str, float]] = {}


@pytest.fixture
def compare(benchmark):
    """``compare(group, impl, fn, rounds)``: time ``fn`` with pytest-benchmark
    in ``group`` and, for every ``impl`` but ``"plain"``, record the ratio to
    the plain variant timed before it."""

    def run(group: str, impl: str, fn, rounds: int, warmup: int = 1, **info):
        benchmark.group = group
        benchmark.extra_info.update(impl=impl, torch_threads=torch.get_num_threads() if torch else None, **info)
        result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:  # None under --benchmark-disable
            median = stats.stats.median
            _MEDIANS.setdefault(group, {})[impl] = median
            plain = _MEDIANS[group].get("plain")
            if impl != "plain" and plain:
                benchmark.extra_info["speedup_vs_plain"] = round(plain / median, 2)
        return result

    return run


def pytest_terminal_summary(terminalreporter):
    rows = [(g, impl, m["plain"], t) for g, m in _MEDIANS.items() if "plain" in m
            for impl, t in m.items() if impl != "plain"]
    if not rows:
        return
    tr = terminalreporter
    tr.section(f"plain vs fast (median seconds, torch threads = {THREADS})")
    tr.write_line(f"{'benchmark':<34} {'impl':<12} {'plain':>10} {'this':>10} {'speed-up':>9}")
    for g, impl, plain, t in rows:
        tr.write_line(f"{g:<34} {impl:<12} {plain:>10.4f} {t:>10.4f} {plain / t:>8.2f}x")


@pytest.fixture(scope="module")
def bound_quick():
    """(every analysis bound to its committed quick manifest, the results folder, the profile): what the
    reading benchmarks read; skipped where no quick results are committed."""
    from aninfonce import analyses, manifest  # noqa: F401  (analyses: registers every analysis)
    from aninfonce.registry import all_analyses

    results, profile = ROOT / "results", "quick"
    if not (results / profile).is_dir():
        pytest.skip(f"no committed {profile} results in {results}")
    return manifest.bind(list(all_analyses().values()), results, profile), results, profile

