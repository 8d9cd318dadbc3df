"""The results table: long-format CSV, one row per metric per logged step,
each row carrying its run's spec, the protocol that produced it, and
provenance. Stored one file per run; the per-experiment CSV is derived.

Writes are atomic (temporary file, then rename) and serialised by a file lock,
so several processes can append runs at once without losing or duplicating a
row, and a killed writer never leaves a half-written file.
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


# pandas < 3 parses floats with its own fast routine by default, which can land
# one ulp away from the written value: the run digests (float.hex) of a file
# written on a pandas-2 machine then differ from a pandas-3 machine's, and every
# run reads as altered (seen on results from a GPU host's pandas 2). pandas 3
# parses exactly and deprecates the option.
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def load(path: Path, required: tuple[str, ...] = CORE_COLUMNS) -> pd.DataFrame:
    """Read one results CSV (an empty frame if it does not exist), checking
    that it parses and has the ``required`` columns."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(required))
    try:
        # a run key is a hex string; an all-digit or 'NNNeNNN' key must not become a number
        df = pd.read_csv(path, low_memory=False, dtype={"run_key": str}, **EXACT_FLOATS)
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


# ---------------------------------------------------------------- one file per run
# Each finished run's rows live in a file of their own,
# <profile>/<experiment>/<run key>.csv, written to a temporary name and
# renamed; the per-experiment long CSV users read, <profile>/<experiment>.csv,
# is derived from them (rebuilt after every run, and whenever it is missing,
# damaged or out of step), so damage to it costs nothing and damage to a run
# file costs that run alone. Beside them, <experiment>.runs.json holds each
# run's completion record -- row count and a hash of its rows as read back --
# and the order in which the runs finished (the long CSV keeps that order).
# A run whose file is unreadable, cut or altered is named and re-run alone.
# A long CSV without a run folder (from before the run files) is read as it
# is; the next run written splits it into run files.


def run_dir(path: Path) -> Path:
    """The folder of one experiment's run files, beside its long CSV."""
    return Path(path).with_suffix("")


def run_file(path: Path, key: str) -> Path:
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"run key {key!r} cannot name a file")
    return run_dir(path) / f"{key}.csv"


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


def _why_untrusted(rows: pd.DataFrame, rec: dict | None, unrecorded_ok: bool = False) -> str | None:
    if rec is None:
        # a run file is renamed into place only when its run has finished, so
        # one without a record (a lost records file) is trusted as written
        return None if unrecorded_ok else "no completion record"
    if len(rows) != rec["rows"]:
        return f"{len(rows)} of its {rec['rows']} rows"
    if run_digest(rows) != rec["sha256"]:
        return "rows altered since it finished"
    return None


def _in_order(keys, records: dict[str, dict]) -> list[str]:
    """Run keys in the order their runs finished (unrecorded ones last, by name)."""
    return sorted(keys, key=lambda k: (records.get(k, {}).get("seq", math.inf), k))


def read_runs(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every readable row of one experiment, and run key -> why that run's
    rows cannot be trusted (unreadable, cut, altered, or unrecorded)."""
    path = Path(path)
    records = _read_records(path)
    folder = run_dir(path)
    if not folder.is_dir():  # a long CSV from before the run files
        df = load(path)
        if records is None or df.empty:
            return df, {}
        return df, {k: why for k, rows in df.groupby(df["run_key"].astype(str), sort=False)
                    if (why := _why_untrusted(rows, records.get(k))) is not None}
    records = records or {}
    frames, bad = [], {}
    for key in _in_order([f.stem for f in folder.glob("*.csv")], records):
        try:
            rows = load(run_file(path, key))
        except CorruptResults:
            bad[key] = "its run file cannot be read"
            continue
        if (why := _why_untrusted(rows, records.get(key), unrecorded_ok=True)) is not None:
            bad[key] = why
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=list(CORE_COLUMNS)), bad
    return pd.concat(frames, ignore_index=True), bad


def incomplete_runs(path: Path) -> dict[str, str]:
    """Run key -> why its rows cannot be trusted."""
    return read_runs(path)[1]


def run_status(path: Path) -> tuple[set[str], dict[str, str]]:
    """(runs whose rows are all there, incomplete run -> why), from one read."""
    df, bad = read_runs(path)
    return set(df["run_key"].astype(str)) - set(bad), bad


def done_keys(path: Path) -> set[str]:
    """Runs whose rows are all there, as their completion record says."""
    return run_status(path)[0]


def _load_text(path: Path) -> pd.DataFrame:
    """A results CSV as text, cell for cell: splitting and joining run files
    must not re-format a single value."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _split_legacy(path: Path) -> dict[str, dict]:
    """Split a long CSV from before the run files into run files, keeping its
    run order and its records (runs without one are recorded as they are)."""
    load(path)  # the checks and the clear message for a damaged file
    df, old = _load_text(path), _read_records(path)
    records = {}
    for seq, (key, rows) in enumerate(df.groupby("run_key", sort=False)):
        write_atomic(rows, run_file(path, key))
        old_rec = (old or {}).get(key)
        records[key] = {**old_rec, "seq": seq} if old_rec else _record(path, key, seq)
    return records


def export_csv(path: Path, bad: dict[str, str] | None = None) -> None:
    """Rebuild the long CSV from the run files (trusted runs only), in run
    order, joining their text as it is; ``bad`` is ``read_runs(path)[1]``
    when the caller has it."""
    bad = read_runs(path)[1] if bad is None else bad
    keys = [k for k in _in_order([f.stem for f in run_dir(path).glob("*.csv")], _read_records(path) or {})
            if k not in bad]
    frames = [_load_text(run_file(path, k)) for k in keys]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CORE_COLUMNS))
    front = [c for c in CORE_COLUMNS if c in df.columns]
    write_atomic(df[front + [c for c in df.columns if c not in front]], path)


def export_is_current(path: Path, df: pd.DataFrame, bad: dict[str, str]) -> bool:
    """Whether the long CSV exists, reads, and holds exactly the trusted runs'
    rows (``df, bad = read_runs(path)``)."""
    if not run_dir(path).is_dir():
        return True  # nothing to derive it from
    try:
        csv = load(path) if Path(path).exists() else None
    except CorruptResults:
        return False
    trusted = df[~df["run_key"].astype(str).isin(bad)]
    return csv is not None and len(csv) == len(trusted) and set(csv["run_key"].astype(str)) == set(trusted["run_key"].astype(str))


def refresh_export(path: Path, df: pd.DataFrame, bad: dict[str, str]) -> bool:
    """Rebuild the long CSV if it is missing, damaged or out of step with the
    run files (``df, bad = read_runs(path)``). Returns whether it was rebuilt."""
    if export_is_current(path, df, bad):
        return False
    with FileLock(str(path) + ".lock"):
        export_csv(path, bad)
    return True


class UnwritableResults(UserError, OSError):
    """The results folder cannot take a file (no permission, no space, not a folder)."""


def check_writable(folder: Path) -> None:
    """Fail before any training if ``folder`` cannot take a results file."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test.", suffix=".tmp"):
            pass
    except OSError as err:
        raise UnwritableResults(f"cannot write results to {folder} ({err.strerror or type(err).__name__}); "
                                f"choose another --results-dir or free it") from None


def append_run(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        _append_run(path, rows)
    except UserError:
        raise
    except OSError as err:  # a full disk or a folder gone read-only after the run: say so, keep what was written
        raise UnwritableResults(f"cannot write results to {Path(path).parent} ({err.strerror or type(err).__name__}); "
                                f"every file already written is intact and the run's last checkpoint is kept: "
                                f"free space and rerun the same command") from None


def _records_to_extend(path: Path) -> dict[str, dict]:
    """The records a writer extends (under the lock): a long CSV from before
    the run files is split into them first."""
    if not run_dir(path).is_dir() and path.exists():
        return _split_legacy(path)
    return _read_records(path) or {}


def _record(path: Path, key: str, seq: int) -> dict:
    """The completion record of run file ``key``, hashed as read back: what a later load sees."""
    rows = load(run_file(path, key))
    return {"rows": len(rows), "sha256": run_digest(rows), "seq": seq}


def _next_seq(records: dict[str, dict]) -> int:
    return max((r.get("seq", -1) for r in records.values()), default=-1) + 1


def _append_run(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one finished run's rows (replacing any earlier rows of it) to its
    run file, record its completion, and rebuild the long CSV; atomically and
    under a lock, so concurrent writers lose and duplicate nothing."""
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    key = str(new["run_key"].iloc[0])
    front = [c for c in CORE_COLUMNS if c in new.columns]
    new = new[front + [c for c in new.columns if c not in front]]
    with FileLock(str(path) + ".lock"):
        records = _records_to_extend(path)
        write_atomic(new, run_file(path, key))
        records[key] = _record(path, key, records.get(key, {}).get("seq", _next_seq(records)))
        on_disk = {f.stem for f in run_dir(path).glob("*.csv")}
        records = {k: v for k, v in records.items() if k in on_disk}
        for k in sorted(on_disk - set(records)):  # trusted unrecorded files (see _why_untrusted) get their record
            try:
                records[k] = _record(path, k, _next_seq(records))
            except CorruptResults:
                pass  # stays unrecorded and unreadable: named as incomplete, re-run
        _replace_atomic(records_path(path), lambda fh: json.dump(records, fh, indent=0, sort_keys=True))
        export_csv(path)


def adopt_runs(src: Path, dst: Path, keys: set[str] | None = None) -> list[str]:
    """Copy the finished, intact runs of one experiment from another results
    folder (e.g. a worktree's long job) into ``dst``, file for file, under
    ``dst``'s lock, and record them; runs ``dst`` already holds are kept.
    ``keys`` limits it to those runs (e.g. the current grid). Returns the keys added."""
    src, dst = Path(src), Path(dst)
    df, bad = read_runs(src)
    wanted = [k for k in df["run_key"].astype(str).drop_duplicates() if k not in bad and (keys is None or k in keys)]
    added = []
    with FileLock(str(dst) + ".lock"):
        records = _records_to_extend(dst)
        for key in wanted:
            if key in records:
                continue
            if run_dir(src).is_dir():
                rows = _load_text(run_file(src, key))
            else:  # a long CSV from before the run files
                text = _load_text(src)
                rows = text[text["run_key"] == key]
            write_atomic(rows, run_file(dst, key))
            records[key] = _record(dst, key, _next_seq(records))
            added.append(key)
        _replace_atomic(records_path(dst), lambda fh: json.dump(records, fh, indent=0, sort_keys=True))
        export_csv(dst)
    return added


def write_atomic(df: pd.DataFrame, path: Path) -> None:
    _replace_atomic(path, lambda fh: df.to_csv(fh, index=False))


def _replace_atomic(path: Path, write: Callable[[TextIO], Any]) -> None:
    """``write`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_PROVENANCE: dict[str, Any] | None = None


# results/ and figures/ are outputs: another run writing its rows into a tracked CSV of the same checkout
# must not mark this run's code dirty
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude)figures")


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_dirty(root: Path) -> bool:
    """Whether tracked files outside the outputs differ from the checkout's commit."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUT_PATHSPECS))


def provenance() -> dict[str, Any]:
    """Git commit and dirty flag (of the code, not of results/ or figures/), library versions, date.
    Cached per process."""
    global _PROVENANCE
    if _PROVENANCE is None:
        import numpy
        import sklearn
        import torch

        root = Path(__file__).resolve().parent.parent
        _PROVENANCE = {
            "git_commit": _git(root, "rev-parse", "--short=12", "HEAD") or "unknown",
            "git_dirty": code_dirty(root),
            "torch": torch.__version__, "numpy": numpy.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version(),
        }
    return {**_PROVENANCE, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def load_experiment(results_dir: Path, profile: str, experiment: str) -> pd.DataFrame:
    """Every readable row of one experiment (trusted or not; see ``read_runs``)."""
    return read_runs(csv_path(results_dir, profile, experiment))[0]


def format_seconds(s: float) -> str:
    if math.isnan(s):
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
