"""The results table: long-format CSV, one file per experiment and profile,
one row per metric per logged step, each row carrying its run's spec, the
protocol that produced it, and provenance.

Writes are atomic (temporary file, then rename) and serialised by a file lock,
so several processes can append runs at once without losing or duplicating a
row, and a killed writer never leaves a half-written CSV.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, TextIO

import pandas as pd
from filelock import FileLock

from .errors import UserError

# columns every row has, in this order; the spec's own fields follow
CORE_COLUMNS = ("experiment", "run_key", "seed", "step", "metric", "value", "protocol")
# steps_per_second = steps / wall (evaluation included); train_steps_per_second
# = steps / training time (evaluation and checkpoints excluded; rows from
# before it was added lack it); wall time and both rates cover every part of a
# resumed run, ``resumes`` counts its restarts
PROVENANCE_COLUMNS = ("git_commit", "git_dirty", "torch", "numpy", "sklearn", "device", "date", "wall_seconds",
                      "steps_per_second", "train_steps_per_second", "resumes")


class CorruptResults(UserError, RuntimeError):
    """A results CSV that cannot be read or lacks the core columns."""


def csv_path(results_dir: Path, profile: str, experiment: str) -> Path:
    return Path(results_dir) / profile / f"{experiment}.csv"


def load(path: Path, required: tuple[str, ...] = CORE_COLUMNS) -> pd.DataFrame:
    """Read one results CSV (an empty frame if it does not exist), checking
    that it parses and has the ``required`` columns."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(required))
    try:
        # a run key is a hex string; an all-digit or 'NNNeNNN' key must not become a number
        df = pd.read_csv(path, low_memory=False, dtype={"run_key": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CorruptResults(f"results file {path} cannot be read ({type(err).__name__}); "
                             f"move it aside and rerun to regenerate it") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CorruptResults(f"results file {path} lacks columns {missing}; move it aside and rerun to regenerate it")
    try:
        df["value"] = pd.to_numeric(df["value"], errors="raise")
    except (ValueError, TypeError):
        raise CorruptResults(f"results file {path} has non-numeric values; move it aside and rerun") from None
    return df


# ---------------------------------------------------------------- completion records
# Every run that finishes leaves a completion record beside the CSV
# (<experiment>.runs.json: run key -> row count and a hash of its rows), so a
# run whose rows were cut or altered afterwards is found, named and re-run
# alone. A CSV without any record file predates the records: its runs count
# as complete, and the next append writes records for all of them.


def records_path(path: Path) -> Path:
    return Path(path).with_suffix(".runs.json")


def run_digest(rows: pd.DataFrame) -> str:
    """Hash of one run's (step, metric, protocol, value) rows as read back
    from the CSV, values exact (float.hex)."""
    canon = pd.DataFrame({
        "step": rows["step"].astype(str), "metric": rows["metric"].astype(str),
        "protocol": rows["protocol"].fillna("").astype(str),
        "value": pd.to_numeric(rows["value"]).map(lambda v: float(v).hex()),
    })
    return hashlib.sha256(canon.to_csv(index=False).encode()).hexdigest()[:16]


def _read_records(path: Path) -> dict[str, dict] | None:
    rp = records_path(path)
    if not rp.exists():
        return None
    try:
        return json.loads(rp.read_text())
    except (OSError, ValueError):
        return {}  # a damaged record file: every run is re-checked as unrecorded


def incomplete_runs(path: Path, df: pd.DataFrame | None = None) -> dict[str, str]:
    """Run key -> why its rows in ``path`` cannot be trusted (rows missing or
    altered since the run finished, or no completion record)."""
    df = load(path) if df is None else df
    records = _read_records(path)
    if records is None or df.empty:
        return {}
    out = {}
    for key, rows in df.groupby(df["run_key"].astype(str), sort=False):
        rec = records.get(key)
        if rec is None:
            out[key] = "no completion record"
        elif len(rows) != rec["rows"]:
            out[key] = f"{len(rows)} of its {rec['rows']} rows"
        elif run_digest(rows) != rec["sha256"]:
            out[key] = "rows altered since it finished"
    return out


def run_status(path: Path) -> tuple[set[str], dict[str, str]]:
    """(runs whose rows are all there, incomplete run -> why), from one read."""
    df = load(path)
    bad = incomplete_runs(path, df)
    return set(df["run_key"].astype(str)) - set(bad), bad


def done_keys(path: Path) -> set[str]:
    """Runs whose rows are all there, as their completion record says."""
    return run_status(path)[0]


def _write_records(path: Path, df: pd.DataFrame, new_key: str, old: dict[str, dict] | None) -> None:
    """Records for ``new_key`` (just written) and, the first time, for every
    run already in the file; an existing record is never overwritten, so a
    damaged run stays visible until it is re-run."""
    records = dict(old or {})
    for key, rows in df.groupby(df["run_key"].astype(str), sort=False):
        if key == new_key or (old is None and key not in records):
            records[key] = {"rows": len(rows), "sha256": run_digest(rows)}
    records = {k: v for k, v in records.items() if k in set(df["run_key"].astype(str))}
    _replace_atomic(records_path(path), lambda fh: json.dump(records, fh, indent=0, sort_keys=True))


def append_run(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace any rows of this run with ``rows`` (all of one run), atomically."""
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    key = str(new["run_key"].iloc[0])
    with FileLock(str(path) + ".lock"):
        old = load(path)
        old = old[old["run_key"].astype(str) != key]
        df = new if old.empty else pd.concat([old, new], ignore_index=True)
        front = [c for c in CORE_COLUMNS if c in df.columns]
        df = df[front + [c for c in df.columns if c not in front]]
        records = _read_records(path) if path.exists() else {}
        write_atomic(df, path)
        _write_records(path, load(path), key, records)  # hashed as read back: what a later load sees


def write_atomic(df: pd.DataFrame, path: Path) -> None:
    _replace_atomic(path, lambda fh: df.to_csv(fh, index=False))


def _replace_atomic(path: Path, write: Callable[[TextIO], Any]) -> None:
    """``write`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_PROVENANCE: dict[str, Any] | None = None


def provenance() -> dict[str, Any]:
    """Git commit and dirty flag, library versions, date. Cached per process."""
    global _PROVENANCE
    if _PROVENANCE is None:
        import numpy
        import sklearn
        import torch

        root = Path(__file__).resolve().parent.parent
        def git(*args: str) -> str:
            try:
                return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return ""
        _PROVENANCE = {
            "git_commit": git("rev-parse", "--short=12", "HEAD") or "unknown",
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "torch": torch.__version__, "numpy": numpy.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version(),
        }
    return {**_PROVENANCE, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def load_experiment(results_dir: Path, profile: str, experiment: str) -> pd.DataFrame:
    return load(csv_path(results_dir, profile, experiment))


def format_seconds(s: float) -> str:
    if math.isnan(s):
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
