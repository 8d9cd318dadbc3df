"""Speed of the reading half of `python reproduce.py --profile quick
--plot-only` on the committed quick results: load every run file (each
verified against its completion record), judge every claim at every logged
step, and write REPORT.md; the figures are timed apart.

    pytest benchmarks/test_reading.py --benchmark-only
    pytest benchmarks/test_reading.py --benchmark-only -k figures

Measured (2 vCPUs, Intel Xeon, pandas 3.1.1, numpy 2.4.6, Python 3.11, user
CPU seconds, both cores shared with about eight other busy processes, so wall
time was 5-10x the CPU time and CPU time itself is inflated by the sharing):

| stage | before | after |
|---|---|---|
| load (read + verify the run files, drop stale runs) | 4.1 s | 4.8 s (code unchanged) |
| judge (80 verdicts, 1,601 (claim, step) pairs) | 141-152 s | 83 s (calibration 61 -> 6.7 s) |
| report | 3.8 s | not measured apart |
| figures (48 PNG + PDF files) | 65 s | code unchanged |

The at-most-10-s target on 2 idle cores is not met yet: authors-logs (27 s)
and fig3 (29 s) judge each claim at every logged step on their own rows.

The figures (23, each PNG + PDF; ``-k figures``: drawn here, then by two
worker processes), same machine, one of its 2 cores taken by a training run,
back to back (make_figures alone, judged verdicts given):

| figures | wall | user CPU (workers included) |
|---|---|---|
| before: 5 passes over each figure per save, one process | 48.9 s | 46.3 s |
| one tight box per figure (plots.save), one process | 34.2 s | 32.3 s |
| the same, two forked workers (plots.draw, as --plot-only) | 42.5 s | 39.5 s |

One tight box halves the whole draws (96 -> 48 ``Figure.draw`` calls, 69 ->
45 ``get_tightbbox``; 35.2 M -> 26.2 M Python calls, a count the busy machine
does not blur). Two workers on the one free core lose (each repeats the
first-figure warm-up and they share the core); under heavier load earlier
they took 100 s against 187 s for one process. This benchmark's process has
torch loaded (conftest), so its pool spawns workers that import the reading
half first: 54.8 s against 33.9 s for one process, on the one free core.
What remains per figure: the first layout pass (``tight_layout``, about 40 %
of authors-logs' time: ticks and text measured the first time), the
caption's and the file box's measures (15 %), one draw per file (20 %), the
data and the plot calls (25 %).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aninfonce import report

RESULTS = Path(__file__).resolve().parent.parent / "results"
PROFILE = "quick"


@pytest.fixture(scope="module")
def entries(bound_quick):
    return bound_quick[0]


def read_and_judge(exps, out: Path) -> list:
    """What --plot-only does but draw: load, judge (quick and paper), write the report."""
    frames = report.load_all(exps, RESULTS, PROFILE)
    verdicts = report.evaluate_claims(exps, frames, PROFILE)
    paper = report.paper_verdicts(exps, RESULTS)
    report.write_report(exps, frames, verdicts, {}, out, PROFILE, paper=paper, paper_results="results/paper")
    return verdicts


def test_read_judge_report_quick(benchmark, entries, tmp_path):
    benchmark.group = "reading half, quick results"
    verdicts = benchmark.pedantic(read_and_judge, args=(entries, tmp_path), rounds=1, iterations=1, warmup_rounds=0)
    assert len(verdicts) == sum(PROFILE in c.profiles for e in entries for c in e.claims)
    text = (tmp_path / "REPORT.md").read_text()
    assert all(f"`{v.claim}`" in text for v in verdicts), "the report leaves out a judged claim"


@pytest.fixture(scope="module")
def judged(entries):
    frames = report.load_all(entries, RESULTS, PROFILE)
    return frames, report.evaluate_claims(entries, frames, PROFILE)


@pytest.mark.parametrize("impl, jobs", [("plain", 1), ("pool", 2)])
def test_figures_quick(compare, entries, judged, tmp_path, impl, jobs):
    """All 23 figures (PNG + PDF) in this process (plain) and in a pool of two worker processes."""
    frames, verdicts = judged
    figures = compare("figures, quick results", impl,
                      lambda: report.make_figures(entries, frames, tmp_path, PROFILE, verdicts, results_dir=RESULTS,
                                                  jobs=jobs),
                      rounds=1, warmup=0, jobs=jobs)
    assert all(p.exists() for paths in figures.values() for p in paths)
