"""Plan, cache, checkpoint/resume, execute and record runs.

A run is *done* when its run file proves itself (rows are written only when
a run finishes), *resumable* when a checkpoint exists under the cache folder,
and *new* otherwise. A run being trained is locked (a lock file beside its
checkpoint, released by the kernel when its holder dies): a second process
that reaches it waits, then uses its rows. The runner owns all of this; an
experiment's ``execute`` only trains and evaluates through a
:class:`RunnerContext`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from . import analyses  # noqa: F401  (registers the analyses: their policies go into the manifests)
from . import manifest, results
from .provenance import provenance
from .errors import BadInput, UserError
from .frames import run_keys
from .lifecycle import RunStopped, stop_requested
from .registry import Study, all_analyses
from .results import format_seconds  # noqa: F401  (the CLI and executors use it from here)
from .specs import RunSpec


class CorruptCheckpoint(UserError, RuntimeError):
    pass


def cache_dir(results_dir: Path, profile: str) -> Path:
    """Checkpoints and shared artefacts (git-ignored)."""
    return Path(results_dir) / ".cache" / profile


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise BadInput(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checked(path: Path) -> Any:
    """A checkpoint or cached artefact, loaded with ``weights_only=True``:
    tensors, plain containers and numbers only, so a file from elsewhere
    cannot run code when loaded. A damaged or unsafe file is one clear error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):  # a pickled class or function: loading it would run code
            raise CorruptCheckpoint(f"{path} holds more than tensors and plain data (it could run code when loaded) "
                                    f"and is refused; delete it to rebuild it") from None
        raise CorruptCheckpoint(f"checkpoint {path} cannot be read (UnpicklingError); "
                                f"delete it to restart that run from scratch") from None
    except Exception as err:  # torch raises several types for a damaged file
        raise CorruptCheckpoint(f"checkpoint {path} cannot be read ({type(err).__name__}); "
                                f"delete it to restart that run from scratch") from None


@dataclasses.dataclass
class RunnerContext:
    """What a run sees of the framework: the runner's implementation of the step
    loop's declared interface, :class:`~aninfonce.trainers.loop.RunContext`."""

    device: torch.device
    checkpoint_path: Path
    artifact_dir: Path
    data_root: Path | None = None
    # the run's folder in the results (beside its rows): files a figure draws from (Figure 3's generator
    # grids, Figure 5's drawn points), written before the rows; None = the run writes none
    result_dir: Path | None = None
    show_progress: bool = True
    label: str = ""
    # (steps done, total) at each progress update, for a parent process that shows its workers' progress
    # (executors.run_pool); it replaces the bar, which is then not drawn
    report: Callable[[int, int | None], None] | None = None
    # filled by train_loop: optimisation steps run and their time (evaluation and
    # checkpoints excluded), for the train_steps_per_second column; a resumed run
    # carries them over from its checkpoint, with the wall time of its earlier
    # parts and the number of resumes, so provenance describes the whole run
    train_steps: int = 0
    train_seconds: float = 0.0
    wall_before: float = 0.0
    resumes: int = 0
    interval: dict | None = None  # set by resume_or_start: the evaluation interval a stop cut (train_loop)
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def timing(self) -> dict[str, float]:
        """What a checkpoint stores so the run's totals survive a kill."""
        return {"train_steps": self.train_steps, "train_seconds": self.train_seconds,
                "wall_seconds": self.wall_before + time.perf_counter() - self.started, "resumes": self.resumes}

    def restore_timing(self, timing: dict[str, float] | None) -> None:
        if timing:
            self.train_steps, self.train_seconds = int(timing["train_steps"]), float(timing["train_seconds"])
            self.wall_before, self.resumes = float(timing["wall_seconds"]), int(timing["resumes"]) + 1
            self.started = time.perf_counter()

    def load_checkpoint(self) -> Any | None:
        if not self.checkpoint_path.exists():
            return None
        state = load_checked(self.checkpoint_path)
        return _to_device(state, self.device)

    def save_checkpoint(self, state: Any) -> None:
        _save_atomic(state, self.checkpoint_path)

    def cached(self, name: str, build: Callable[[], Any]) -> Any:
        """A shared artefact (e.g. a trained VAE) built once per profile and reused."""
        path = self.artifact_dir / f"{name}.pt"
        if path.exists():
            try:
                return _to_device(load_checked(path), self.device)
            except CorruptCheckpoint as err:  # derived, so rebuilt rather than a stop
                print(f"note: rebuilding a damaged cache: {err}", file=sys.stderr)
        obj = build()
        _save_atomic(obj, path)
        return obj

    @contextlib.contextmanager
    def progress(self, total: int, initial: int = 0) -> Iterator[tqdm]:
        if self.report is not None:
            bar = _ReportingBar(self.report, total=total, initial=initial)
        else:
            bar = tqdm(total=total, initial=initial, desc=self.label, leave=False, disable=not self.show_progress,
                       dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
        try:
            yield bar
        finally:
            bar.close()


class _ReportingBar(tqdm):
    """A bar that draws nothing and hands its count to ``report`` at each
    update (the loops update at evaluation points, not every step)."""

    def __init__(self, report: Callable[[int, int | None], None], total: int, initial: int = 0):
        super().__init__(total=total, initial=initial, disable=True)
        self.n, self._report = initial, report
        report(initial, total)

    def update(self, n: float | None = 1) -> None:
        self.n += n or 0
        self._report(int(self.n), self.total)


def _to_device(state: Any, device: torch.device) -> Any:
    """Move tensors in a checkpoint to the device, except generator states (CPU byte tensors)."""
    if isinstance(state, dict):
        return {k: v if isinstance(k, str) and k.endswith("_gen") else _to_device(v, device) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_device(v, device) for v in state]
    if isinstance(state, torch.Tensor) and state.dtype != torch.uint8:
        return state.to(device)
    return state


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    experiment: Study
    spec: RunSpec
    status: str  # done / resume / new
    csv: Path
    checkpoint: Path


def plan(experiments: list[Study], profile: str, n_seeds: int, results_dir: Path,
         speed: str = "exact", dry_run: bool = False) -> list[PlannedRun]:
    """Every run of each study's grid with its status (done / resume / new); each study's manifest
    (``<experiment>.plan.json``) is written on the way, so the reading half knows the plan, and a long
    CSV out of step with its run files is rebuilt. A ``dry_run`` writes nothing: it says what it would
    rebuild."""
    out = []
    for exp in experiments:
        csv = results.csv_path(results_dir, profile, exp.id)
        df, incomplete = results.read_runs(csv)  # one read serves the plan and the long CSV's check
        if dry_run and not results.export_is_current(csv, df, incomplete):
            print(f"note: {csv} is missing, damaged or out of step with its run files; a run rebuilds it")
        elif not dry_run and results.refresh_export(csv, df, incomplete):
            print(f"note: rebuilt {csv} from its run files (it was missing, damaged or out of step)")
        done = run_keys(df) - set(incomplete)
        if not results.run_dir(csv).is_dir() and csv.exists():
            print(f"note: {csv} has no run files beside it; its rows cannot be verified and are not used")
        for key, why in incomplete.items():
            print(f"note: {exp.id} run {key} is incomplete in {csv.name} ({why}); it will be re-run")
        if not dry_run:
            manifest.write(exp, all_analyses().get(exp.id), results_dir, profile, n_seeds, speed, stored=df)
        for spec in exp.grid(profile, n_seeds, speed):
            ckpt = cache_dir(results_dir, profile) / exp.id / f"{spec.key}.pt"
            status = "done" if spec.key in done else "resume" if ckpt.exists() else "new"
            out.append(PlannedRun(exp, spec, status, csv, ckpt))
    return out


@contextlib.contextmanager
def run_lock(run: PlannedRun) -> Iterator[None]:
    """Hold run ``run``'s lock (<cache>/<experiment>/<key>.lock) while it
    trains, so two processes on one results folder never train it both; the
    kernel releases it when the holder dies. A process that finds it held
    says so in one line and waits (a stop request ends the wait)."""
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.checkpoint.with_suffix(".lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"{run.spec.label()} is being trained by another process; waiting for it", flush=True)
        while True:
            if stop_requested():
                raise RunStopped(f"{run.spec.label()} not started (it waited for another process)") from None
            try:
                lock.acquire(timeout=1.0)
                break
            except Timeout:
                continue
    try:
        yield
    finally:
        lock.release()


def run_one(run: PlannedRun, profile: str, device: torch.device, results_dir: Path,
            data_root: Path | None = None, show_progress: bool = True,
            report: Callable[[int, int | None], None] | None = None) -> float | None:
    """Execute one run under its lock, append its rows to its CSV, drop its
    checkpoint. Returns wall seconds, or None when another process trained it
    (its run file proved itself once the lock was free): nothing is trained twice.
    ``report``: see :attr:`RunnerContext.report`."""
    if stop_requested():
        raise RunStopped(f"{run.spec.label()} not started")
    with run_lock(run):
        if results.run_is_done(run.csv, run.spec.key):
            return None
        return _train_and_record(run, profile, device, results_dir, data_root, show_progress, report)


def _train_and_record(run: PlannedRun, profile: str, device: torch.device, results_dir: Path,
                      data_root: Path | None, show_progress: bool,
                      report: Callable[[int, int | None], None] | None = None) -> float:
    ctx = RunnerContext(device=device, checkpoint_path=run.checkpoint,
                        artifact_dir=cache_dir(results_dir, profile) / run.experiment.id / "artifacts",
                        data_root=data_root, result_dir=results.run_dir(run.csv), show_progress=show_progress,
                        label=run.spec.label(), report=report)
    metric_rows = run.experiment.execute(run.spec, ctx)
    wall = ctx.wall_before + time.perf_counter() - ctx.started  # the whole run, over all its parts
    steps = getattr(run.spec, "steps", None)
    train_sps = ctx.train_steps / ctx.train_seconds if ctx.train_seconds > 0 else None  # set by train_loop
    common = {
        "experiment": run.experiment.id, "run_key": run.spec.key, "profile": profile, **run.spec.columns(),
        **provenance(), "device": str(device), "wall_seconds": round(wall, 3),
        "steps_per_second": round(steps / wall, 2) if steps else None,
        "train_steps_per_second": round(train_sps, 2) if train_sps else None, "resumes": ctx.resumes,
    }
    rows = [{**common, "protocol": None, **r} for r in metric_rows]
    results.append_run(run.csv, rows)
    run.checkpoint.unlink(missing_ok=True)
    return wall


def finished_line(i: int, n: int, run: PlannedRun, wall: float | None) -> str:
    """The one line per finished run the executors print."""
    if wall is None:
        return f"[{i}/{n}] {run.spec.label()} was trained by another process -> {run.csv}"
    steps = getattr(run.spec, "steps", None)
    rate = f", {steps / wall:,.1f} steps/s" if steps and wall > 0 else ""
    return (f"[{i}/{n}] {run.spec.label()} {'resumed' if run.status == 'resume' else 'finished'} "
            f"in {format_seconds(wall)}{rate} -> {run.csv}")


def execute(runs: list[PlannedRun], profile: str, device: torch.device, results_dir: Path,
            data_root: Path | None = None, show_progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Run every planned run that is not done, one after another, in this process."""
    todo = [r for r in runs if r.status != "done"]
    for i, run in enumerate(todo, 1):
        log(finished_line(i, len(todo), run, run_one(run, profile, device, results_dir, data_root, show_progress)))
