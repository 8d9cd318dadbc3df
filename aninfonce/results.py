"""The results table: long-format CSV, one row per metric per logged step,
each row carrying its run's spec, the protocol that produced it, and
provenance. Stored one file per run; the per-experiment CSV is derived.

Writes are atomic (temporary file, then rename) and serialised by a file lock,
so several processes can append runs at once without losing or duplicating a
row, and a killed writer never leaves a half-written file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np
import pandas as pd

from .errors import UserError
from .frames import of_runs, run_keys

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


def _lock(path: str):
    """The writers' file lock (filelock, imported here: reading results needs only pandas)."""
    from filelock import FileLock

    return FileLock(path)


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
# Each finished run's rows live in <profile>/<experiment>/<run key>.csv, its
# completion record beside it in <run key>.json: row count, hash of its rows
# as read back, the order the runs finished in (the long CSV keeps it). The
# record is written before the run file is renamed into place, so every run
# file proves itself: one unreadable, cut, altered or without a record (it
# cannot be verified) is named and re-run alone, never recorded as good.
# Folders from before the records moved beside the run files keep them in
# <experiment>.runs.json, read for runs without a record of their own; the
# next write into such a folder turns its verified entries into records and
# removes it. The long CSV, <profile>/<experiment>.csv, is derived from the
# trusted run files: rebuilt after every run, and whenever a command plans and
# finds it missing, damaged or differing from them in a row or a value.
# Figures and --check read the run files, never it.


def run_dir(path: Path) -> Path:
    """The folder of one experiment's run files, beside its long CSV."""
    return Path(path).with_suffix("")


def run_file(path: Path, key: str) -> Path:
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"run key {key!r} cannot name a file")
    return run_dir(path) / f"{key}.csv"


def record_file(path: Path, key: str) -> Path:
    """The completion record of run ``key``, beside its run file."""
    return run_file(path, key).with_suffix(".json")


def records_path(path: Path) -> Path:
    """The completion records of a folder written before they moved beside the run files."""
    return Path(path).with_suffix(".runs.json")


def as_text(column: pd.Series) -> pd.Series:
    """``column`` as text, a missing value as "": a column that holds no value at all (a run that logged no
    protocol) reads back as float NaN, which cannot take "" in place (pandas 4 refuses it)."""
    return column.astype(object).fillna("").astype(str)


def run_digest(rows: pd.DataFrame) -> str:
    """Hash of one run's (step, metric, protocol, value) rows as read back from the CSV, values exact
    (float.hex): of the text pandas' ``to_csv(index=False)`` writes for those columns as text (a missing
    one empty), "\n" line ends on every system, written by the csv module as pandas writes it."""
    columns = {"step": rows["step"].astype(str), "metric": rows["metric"].astype(str),
               "protocol": as_text(rows["protocol"])}
    text = [[v if isinstance(v, str) else "" for v in column.tolist()] for column in columns.values()]
    text.append([float(v).hex() for v in pd.to_numeric(rows["value"]).tolist()])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, "value"])
    writer.writerows(zip(*text))
    return hashlib.sha256(out.getvalue().encode()).hexdigest()[:16]


def _read_index(path: Path) -> dict[str, dict]:
    """The old layout's records (empty when there are none or they cannot be read)."""
    try:
        index = json.loads(records_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _record_of(path: Path, key: str, index: dict[str, dict]) -> dict | None:
    """Run ``key``'s completion record: its own file, else the old layout's
    entry, else None; ``{}`` for a record file that cannot be read."""
    f = record_file(path, key)
    if not f.exists():
        return index.get(key)
    try:
        rec = json.loads(f.read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) and {"rows", "sha256"} <= rec.keys() else {}


def _why_untrusted(rows: pd.DataFrame, rec: dict | None) -> str | None:
    if rec is None:
        return "no completion record, so it cannot be verified"
    if not rec:
        return "its completion record cannot be read"
    if len(rows) != rec["rows"]:
        return f"{len(rows)} of its {rec['rows']} rows"
    if run_digest(rows) != rec["sha256"]:
        return "rows altered since it finished"
    return None


def _keys_in_order(path: Path) -> tuple[list[str], dict[str, dict | None]]:
    """Run files' keys in the order their runs finished (unrecorded ones last,
    by name), and their records."""
    index = _read_index(path)
    recs = {f.stem: _record_of(path, f.stem, index) for f in run_dir(path).glob("*.csv")}
    return sorted(recs, key=lambda k: ((recs[k] or {}).get("seq", math.inf), k)), recs


def read_runs(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every readable row of one experiment, and run key -> why that run's
    rows cannot be trusted (unreadable, cut, altered, or unverifiable)."""
    path = Path(path)
    if not run_dir(path).is_dir() and path.exists() and not load(path).empty:  # load: one line for an unreadable file
        # a long CSV with rows but no run files beside it cannot prove a single row; it is never overwritten
        raise CorruptResults(f"results file {path} has rows but no run files beside it ({run_dir(path)}/), so none "
                             f"of them can be verified; move it aside and rerun to regenerate it")
    frames, bad = [], {}
    keys, recs = _keys_in_order(path) if run_dir(path).is_dir() else ([], {})
    for key in keys:
        try:
            rows = load(run_file(path, key))
        except CorruptResults:
            bad[key] = "its run file cannot be read"
            continue
        if (why := _why_untrusted(rows, recs[key])) is not None:
            bad[key] = why
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=list(CORE_COLUMNS)), bad
    return pd.concat(frames, ignore_index=True), bad


def run_is_done(path: Path, key: str) -> bool:
    """Whether run ``key`` of one experiment has a run file that proves itself
    (that run's files alone are read)."""
    try:
        rows = load(run_file(path, key)) if run_file(path, key).exists() else None
    except CorruptResults:
        return False
    return rows is not None and _why_untrusted(rows, _record_of(path, key, _read_index(path))) is None


def incomplete_runs(path: Path) -> dict[str, str]:
    """Run key -> why its rows cannot be trusted."""
    return read_runs(path)[1]


def done_keys(path: Path) -> set[str]:
    """Runs whose rows are all there, as their completion record says."""
    df, bad = read_runs(path)
    return run_keys(df) - set(bad)


def _load_text(path: Path) -> pd.DataFrame:
    """A results CSV as text, cell for cell: joining run files must not re-format a single value."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def export_csv(path: Path, bad: dict[str, str] | None = None) -> None:
    """Rebuild the long CSV from the run files (trusted runs only), in run
    order, joining their text as it is; ``bad`` is ``read_runs(path)[1]``
    when the caller has it."""
    bad = read_runs(path)[1] if bad is None else bad
    frames = [_load_text(run_file(path, k)) for k in _keys_in_order(path)[0] if k not in bad]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CORE_COLUMNS))
    front = [c for c in CORE_COLUMNS if c in df.columns]
    write_atomic(df[front + [c for c in df.columns if c not in front]], path)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two tables hold the same runs' rows in the same order, values exact."""
    if len(a) != len(b):
        return False
    for col in ("run_key", "metric", "protocol"):
        if (as_text(a[col]).to_numpy() != as_text(b[col]).to_numpy()).any():
            return False
    return all(np.array_equal(pd.to_numeric(a[col]).to_numpy(float), pd.to_numeric(b[col]).to_numpy(float),
                              equal_nan=True) for col in ("step", "value"))


def export_is_current(path: Path, df: pd.DataFrame, bad: dict[str, str]) -> bool:
    """Whether the long CSV exists, reads, and holds exactly the trusted runs'
    rows, value for value (``df, bad = read_runs(path)``)."""
    if not run_dir(path).is_dir():
        return True  # nothing to derive it from
    try:
        csv = load(path) if Path(path).exists() else None
    except CorruptResults:
        return False
    return csv is not None and _same_rows(csv, df[~of_runs(df, bad)])


def refresh_export(path: Path, df: pd.DataFrame, bad: dict[str, str]) -> bool:
    """Rebuild the long CSV if it is missing, damaged or differs from the
    trusted run files (``df, bad = read_runs(path)``). Returns whether it was rebuilt."""
    if export_is_current(path, df, bad):
        return False
    with _lock(str(path) + ".lock"):
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


def _write_run(path: Path, key: str, rows: pd.DataFrame, seq: int) -> None:
    """Write run ``key``'s file under a temporary name, read it back, write its
    completion record, then rename the file into place: a run file never
    stands without the record of what it should hold."""
    target = run_file(path, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            rows.to_csv(fh, index=False)
        back = load(Path(tmp))
        record = {"rows": len(back), "sha256": run_digest(back), "seq": seq}
        _replace_atomic(record_file(path, key), lambda fh: json.dump(record, fh, indent=0, sort_keys=True))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def migrate_index(path: Path) -> int:
    """Give every run of an old-layout folder that verifies against its
    <experiment>.runs.json a record of its own, then remove that file (runs
    that do not verify are left without a record: re-run). Call under the
    experiment's lock. Returns the number of records written."""
    index = _read_index(path)
    written = 0
    for key, rec in index.items():
        f = run_file(path, key)
        if record_file(path, key).exists() or not f.exists() or not {"rows", "sha256"} <= rec.keys():
            continue
        try:
            ok = _why_untrusted(load(f), rec) is None
        except CorruptResults:
            ok = False
        if ok:
            record = {k: rec[k] for k in ("rows", "sha256", "seq") if k in rec}
            _replace_atomic(record_file(path, key), lambda fh: json.dump(record, fh, indent=0, sort_keys=True))
            written += 1
    records_path(path).unlink(missing_ok=True)
    return written


def _next_seq(path: Path) -> int:
    recs = _keys_in_order(path)[1].values()
    return max(((r or {}).get("seq", -1) for r in recs), default=-1) + 1


def _append_run(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one finished run's rows (replacing any earlier rows of it) to its
    run file with its completion record, and rebuild the long CSV; atomically
    and under a lock, so concurrent writers lose and duplicate nothing."""
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    key = str(new["run_key"].iloc[0])
    front = [c for c in CORE_COLUMNS if c in new.columns]
    new = new[front + [c for c in new.columns if c not in front]]
    with _lock(str(path) + ".lock"):
        migrate_index(path)
        old = _record_of(path, key, {})
        _write_run(path, key, new, old["seq"] if old and "seq" in old else _next_seq(path))
        export_csv(path)


def adopt_runs(src: Path, dst: Path, keys: set[str] | None = None) -> list[str]:
    """Copy the finished runs of one experiment that prove themselves from
    another results folder (e.g. a worktree's long job, in either layout) into
    ``dst``, file for file, under ``dst``'s lock, each with its record; runs
    ``dst`` already holds intact are kept. ``keys`` limits it to those runs
    (e.g. the current grid). Returns the keys added."""
    src, dst = Path(src), Path(dst)
    df, bad = read_runs(src)
    wanted = [k for k in df["run_key"].astype(str).drop_duplicates() if k not in bad and (keys is None or k in keys)]
    added = []
    with _lock(str(dst) + ".lock"):
        migrate_index(dst)
        for key in wanted:
            if run_is_done(dst, key):
                continue
            _write_run(dst, key, _load_text(run_file(src, key)), _next_seq(dst))
            added.append(key)
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


def load_experiment(results_dir: Path, profile: str, experiment: str) -> pd.DataFrame:
    """Every readable row of one experiment (trusted or not; see ``read_runs``)."""
    return read_runs(csv_path(results_dir, profile, experiment))[0]


def format_seconds(s: float | None) -> str:
    if s is None or math.isnan(s):
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
