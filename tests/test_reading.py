"""The reading pass: each entry read (loaded, judged, drawn, its report section written) in one task, and a
pool of forked workers giving what one process gives, in the entries' order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# two small committed entries, listed in an order their sizes would not choose (the pool reads the largest first)
ENTRIES = ("fig2-linear", "hardneg")


def _in_a_process_without_torch(check: str, tmp_path: Path) -> None:
    """Run ``test_reading.<check>(tmp_path)`` where the pool runs: a process without torch (``--plot-only``;
    this test process has torch loaded, so it would read every entry itself)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_reading; "
            f"from pathlib import Path; test_reading.{check}(Path({str(tmp_path)!r})); "
            "assert 'torch' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr


def test_a_pool_reads_what_one_process_reads(tmp_path):
    _in_a_process_without_torch("pool_matches_alone", tmp_path)


def test_an_entry_that_cannot_be_read_stops_the_pool_with_its_own_error(tmp_path):
    _in_a_process_without_torch("pool_raises_the_entrys_error", tmp_path)


def pool_matches_alone(tmp_path: Path) -> None:
    import contextlib
    import io

    import aninfonce.analyses  # noqa: F401  (registers every analysis)
    from aninfonce import manifest, plots
    from aninfonce.reading import read_entries
    from aninfonce.registry import all_analyses

    assert plots.drawing_jobs(2, 2) == 2, "no pool here: the comparison would test nothing"
    exps = manifest.bind([all_analyses()[e] for e in ENTRIES], ROOT / "results", "quick")
    said, reads = {}, {}
    for jobs in (1, 2):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            reads[jobs] = read_entries(exps, ROOT / "results", "quick", out=tmp_path / str(jobs), jobs=jobs)
        said[jobs] = buf.getvalue()
    alone, pooled = reads[1], reads[2]
    assert said[1] == said[2]
    assert list(pooled.frames) == list(ENTRIES)
    for e in ENTRIES:
        assert alone.frames[e].equals(pooled.frames[e]) and len(alone.frames[e])
    assert alone.verdicts == pooled.verdicts and {v.experiment for v in pooled.verdicts} == set(ENTRIES)
    # each entry's figures, then each one's claims-over-training figure
    assert list(pooled.figures) == [*ENTRIES, *(f"{e}:verdicts" for e in ENTRIES)]
    for key, paths in alone.figures.items():
        assert [p.name for p in paths] == [p.name for p in pooled.figures[key]]
        for p, q in zip(paths, pooled.figures[key]):
            assert p.read_bytes() == q.read_bytes(), p.name
    assert alone.sections == pooled.sections and list(pooled.sections) == list(ENTRIES)
    assert all(f"(`{e}`, source" in pooled.sections[e] for e in ENTRIES)


def pool_raises_the_entrys_error(tmp_path: Path) -> None:
    """A worker's error comes back as itself (the CLI says it in one line and exits 2): here a long CSV
    whose run files are gone, which no row of can be verified."""
    import shutil

    import pytest

    import aninfonce.analyses  # noqa: F401  (registers every analysis)
    from aninfonce import manifest
    from aninfonce.reading import read_entries
    from aninfonce.registry import all_analyses
    from aninfonce.results import CorruptResults

    results = tmp_path / "results"
    (results / "quick").mkdir(parents=True)
    for e in ENTRIES:
        for name in (f"{e}.csv", f"{e}.plan.json", e):
            (shutil.copytree if name == e else shutil.copy)(ROOT / "results" / "quick" / name, results / "quick" / name)
    exps = manifest.bind([all_analyses()[e] for e in ENTRIES], results, "quick")
    shutil.rmtree(results / "quick" / "hardneg")
    with pytest.raises(CorruptResults, match="hardneg.csv has rows but no run files"):
        read_entries(exps, results, "quick", out=tmp_path / "figures", jobs=2)


def test_reading_leaves_the_garbage_collector_as_it_found_it(monkeypatch):
    """The reading pass collects garbage less often while it reads (reading._fewer_collections); after it,
    even after an entry's error, the collector's thresholds and frozen objects are what they were."""
    import gc

    import pytest

    import aninfonce.analyses  # noqa: F401  (registers every analysis)
    from aninfonce import manifest, reading
    from aninfonce.registry import all_analyses

    before = gc.get_threshold(), gc.get_freeze_count()
    exps = manifest.bind([all_analyses()[e] for e in ENTRIES], ROOT / "results", "quick")
    read = reading.read_entries(exps, ROOT / "results", "quick", jobs=1)
    assert {v.experiment for v in read.verdicts} == set(ENTRIES)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before

    def unreadable(*args, **kwargs):
        raise OSError("a run file cannot be read")

    monkeypatch.setattr(reading, "load_all", unreadable)
    with pytest.raises(OSError, match="cannot be read"):
        reading.read_entries(exps, ROOT / "results", "quick", jobs=1)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
