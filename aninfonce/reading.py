"""The reading pass of ``--plot-only`` and ``--check``: each entry read in one
task -- its rows loaded, its claims judged and (when drawing) its figures and
its section of the report written -- in a pool of forked workers; its
claims-over-training figure, which needs only its verdicts, is a task of its
own, handed to the pool when the entry's task is done.

The entries are independent: none reads another's rows, so their tasks can
run in any order on any worker, and what they give is put back in the
entries' order (their messages too), the same whichever process ran them.
The longest tasks go first and the claims-over-training figures (about 0.2 s
each) last, so the workers finish together. Reads results tables only."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Iterator

import pandas as pd

from . import results
from .plots import Drawing, figure_paths, setup_style
from .registry import Analysis
from .report import entry_figures, evaluate_claims, load_all, plot_verdicts, verdict_figure, verdicts_name
from .report_sections import ReportInputs, entry
from .verdicts import Verdict


@dataclasses.dataclass
class Reading:
    """What reading the entries gives: their rows, verdicts and figures (each experiment's, then its
    ``<id>:verdicts`` figure), the runs left out as damaged ('experiment run_key' -> why) and, where the
    figures were drawn, each entry's section of the report (``report_sections.entry``)."""

    frames: dict[str, pd.DataFrame]
    verdicts: list[Verdict]
    figures: dict[str, list[Path]]
    damaged: dict[str, str]
    sections: dict[str, str]


@dataclasses.dataclass
class EntryRead:
    """What reading one entry gives (:func:`read_entry`): sent back from the worker that read it."""

    frame: pd.DataFrame
    verdicts: list[Verdict]
    figures: dict[str, list[Path]]
    damaged: dict[str, str]
    said: str  # what it printed
    section: str  # its section of the report ("" when its figures were not drawn)
    verdicts_figure: tuple | None = None  # plot_verdicts' arguments for its claims over training, still to draw


@dataclasses.dataclass(frozen=True)
class _Task:
    experiments: tuple[Analysis, ...]
    results_dir: Path
    profile: str
    speed: str
    out: Path | None
    keep_damaged: bool


# The task the pool's workers read: set before the pool forks them, so each worker inherits it (an entry's
# claims hold closures, which could not be sent to a worker).
_TASK: list[_Task] = []


def read_entries(experiments: list[Analysis], results_dir: Path, profile: str, speed: str = "exact",
                 out: Path | None = None, jobs: int | None = None, keep_damaged: bool = False) -> Reading:
    """Each of ``experiments`` read in one task (:func:`read_entry`), by ``jobs`` forked workers (None: one per
    CPU core, 1: here, one after another; plots.Drawing), the entries with the most run-file bytes first (the
    longest to read); with ``out``, their figures are drawn into it, each entry's claims over training by a
    task handed to the workers once its own task is done (behind every entry still to read). A damaged run is
    named in a note, or with ``keep_damaged`` recorded in ``Reading.damaged`` instead (for a caller that names
    them itself)."""
    experiments = list(experiments)
    _TASK[:] = [_Task(tuple(experiments), Path(results_dir), profile, speed, out, keep_damaged)]
    order = sorted(range(len(experiments)), key=lambda i: -_size(experiments[i], results_dir, profile))
    if out is not None:
        setup_style()  # here, once, for the forked workers to inherit
    try:
        with _fewer_collections(), Drawing(jobs, len(experiments)) as pool:
            futures = {i: pool.submit(read_entry, i) for i in order}
            drawn = {i: pool.submit(plot_verdicts, *part.verdicts_figure)
                     for i, part in _as_done(futures) if part.verdicts_figure is not None}
            parts = [futures[i].result() for i in range(len(experiments))]
            for i, future in drawn.items():
                key = f"{experiments[i].id}:verdicts"
                if future.result() != parts[i].figures[key]:  # its section links the files it was to write
                    raise RuntimeError(f"{key}: drew {future.result()}, not {parts[i].figures[key]}")
    finally:
        _TASK.clear()
    for part in parts:
        print(part.said, end="")
    figures = {k: v for part in parts for k, v in part.figures.items() if not k.endswith(":verdicts")}
    figures.update({k: v for part in parts for k, v in part.figures.items() if k.endswith(":verdicts")})
    return Reading(frames={e.id: part.frame for e, part in zip(experiments, parts)},
                   verdicts=[v for part in parts for v in part.verdicts], figures=figures,
                   damaged={k: v for part in parts for k, v in part.damaged.items()},
                   sections={e.id: part.section for e, part in zip(experiments, parts) if part.section})


def read_entry(index: int) -> EntryRead:
    """Entry ``index`` of the current task, read (see :class:`EntryRead`)."""
    task = _TASK[0]
    exp = task.experiments[index]
    said = io.StringIO()
    damaged: dict[str, str] = {}
    with contextlib.redirect_stdout(said):
        frames = load_all([exp], task.results_dir, task.profile, task.speed, damaged if task.keep_damaged else None)
        verdicts = evaluate_claims([exp], frames, task.profile, task.speed)
        figures, section, later = {}, "", None
        if task.out is not None:
            with Drawing(1, 1) as here:
                pending, shown = entry_figures([exp], frames, task.out, task.profile, here, task.speed, task.results_dir)
                figures = {key: future.result() for key, future in pending.items()}
            later = verdict_figure(exp, shown, verdicts, task.out, task.profile)
            if later is not None:  # drawn by a task of its own (read_entries), into these files
                figures[f"{exp.id}:verdicts"] = figure_paths(task.out, verdicts_name(later[2]))
            section = entry(ReportInputs([exp], frames, verdicts, figures, task.profile, task.speed), exp)
    return EntryRead(frames[exp.id], verdicts, figures, damaged, said.getvalue(), section, later)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector, set for reading while this lasts: every object alive now (the
    libraries' own, some million) frozen out of its passes, and its youngest generation collected after
    5,000 new objects instead of 700. Reading makes and drops many objects (tables, figures); before, the
    collector's passes took about 7 % of its CPU (1.1 s of 15 s in one process), after, about 2 %, for
    about 50 MB more memory a process. Frozen before the workers are forked, as Python's gc docs advise:
    a worker's collections then leave the pages it shares with the main process alone. Nothing read or
    written depends on when garbage is collected."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(5000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen:  # a caller's own frozen objects (none in this suite) stay frozen, with ours
            gc.unfreeze()


def _as_done(futures: dict[int, Future]) -> Iterator[tuple[int, EntryRead]]:
    """(i, what ``futures[i]`` gives) as each is done: a worker's in the order they finish, one to be run
    here (plots.Drawing with one process) in the order given."""
    for i, future in futures.items():
        if not isinstance(future, Future):
            yield i, future.result()
    index = {future: i for i, future in futures.items() if isinstance(future, Future)}
    for future in as_completed(index):
        yield index[future], future.result()


def _size(exp: Analysis, results_dir: Path, profile: str) -> int:
    """The bytes of an entry's run files: how long reading it takes, roughly."""
    folder = results.run_dir(results.csv_path(results_dir, profile, exp.id))
    return sum(p.stat().st_size for p in folder.glob("*.csv")) if folder.is_dir() else 0
