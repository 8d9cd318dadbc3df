"""The one step loop every trainer shares: resume from a
checkpoint, step, evaluate every ``eval_every`` steps, check the loss is
finite, snapshot. The framework owns the cadence, timing and checkpoints; a
trainer only supplies ``step``, ``evaluate`` and its state.

What a trainer and the loop see of the framework is one declared interface,
:class:`RunContext`: the runner's context (:class:`aninfonce.runner.RunnerContext`)
and a data-parallel job's non-zero ranks (:mod:`aninfonce.torchrun`) implement
it. A variant of the loop is asked for by an argument: epochs of a data loader
(``steps_per_epoch``, ``new_epoch``: the SimCLR trainer), and no checkpoints
(no ``state``).

A stop asked for by SIGTERM (what SLURM sends before preemption or at a job's
time limit; :func:`request_stop` is the handler) ends the loop after the
current step with a checkpoint of exactly where it stood, the partial
evaluation interval included, so the resumed run writes the rows an
uninterrupted one writes; then :class:`~aninfonce.lifecycle.RunStopped` is raised."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from ..errors import UserError
from ..lifecycle import RunStopped, stop_requested


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite."""


@runtime_checkable
class RunContext(Protocol):
    """What a trainer and :func:`train_loop` need of the framework for one run.

    The run's ``device``, its ``data_root`` (None: the default) and
    ``artifact_dir`` (shared artefacts of the profile, built once by
    ``cached``); its checkpoint (``checkpoint_path``, ``load_checkpoint``:
    None for a fresh run, ``save_checkpoint``); a ``progress`` bar. The loop
    counts the optimisation steps and their seconds into ``train_steps`` and
    ``train_seconds``, stores ``timing()`` in each checkpoint and hands it back
    to ``restore_timing`` on resume (so a resumed run's totals cover all its
    parts), and sets ``interval`` to the evaluation interval a stop cut, read
    back when the loop resumes."""

    device: torch.device
    data_root: Path | None
    artifact_dir: Path
    checkpoint_path: Path
    train_steps: int
    train_seconds: float
    interval: dict | None

    def load_checkpoint(self) -> Any | None: ...

    def save_checkpoint(self, state: Any) -> None: ...

    def cached(self, name: str, build: Callable[[], Any]) -> Any: ...

    def progress(self, total: int, initial: int = 0) -> ContextManager[tqdm]: ...

    def timing(self) -> dict[str, float]: ...

    def restore_timing(self, timing: dict[str, float] | None) -> None: ...


def resume_or_start(ctx: RunContext, modules: dict[str, Any], data_gen: torch.Generator | None,
                    first_rows: Callable[[], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """(rows so far, step to continue from): from the run's checkpoint, with
    the state dicts of ``modules`` (name -> module, optimiser or schedule) and
    the data generator restored, or ``(first_rows(), 0)`` for a fresh run. The
    checkpoint is the one :func:`train_loop` writes with :func:`snapshot`.
    ``data_gen`` is None for a trainer that draws its data without a
    generator of its own (SimCLR seeds every view by epoch and index)."""
    state = ctx.load_checkpoint()
    if state is None:
        return first_rows(), 0
    try:
        for name, module in modules.items():
            module.load_state_dict(state[name])
        if data_gen is not None:
            data_gen.set_state(state["data_gen"])
        rows, step = state["rows"], state["step"]
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # a readable file that is not this run's
        raise UserError(f"checkpoint {ctx.checkpoint_path} does not fit this run ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'missing entry'}); delete it to restart "
                        "that run from scratch") from None
    ctx.restore_timing(state.get("timing"))
    ctx.interval = state.get("interval")  # a stop's checkpoint: the evaluation interval it cut (train_loop)
    return rows, step


def snapshot(modules: dict[str, Any], data_gen: torch.Generator | None) -> dict[str, Any]:
    """The state :func:`resume_or_start` restores (train_loop adds step and rows)."""
    gen = {} if data_gen is None else {"data_gen": data_gen.get_state()}
    return {**gen, **{name: m.state_dict() for name, m in modules.items()}}


def _numeric(row: Any) -> float | None:
    v = row.get("value") if isinstance(row, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _check_metrics(label: str, before: list[dict[str, Any]], new: list[dict[str, Any]], step: int) -> None:
    """An evaluation metric that was finite before and is NaN or inf now stops
    the run like a non-finite loss. A metric undefined by design (the style
    R^2 of a run with no style dims) is NaN from its first evaluation on and
    is left alone."""
    finite = {(r["metric"], r.get("protocol")) for r in before
              if _numeric(r) is not None and math.isfinite(_numeric(r))}
    for r in new:
        v = _numeric(r)  # None for a row that is not a metric value
        if v is not None and not math.isfinite(v) and (r["metric"], r.get("protocol")) in finite:
            raise TrainingDiverged(f"{label} evaluation metric {r['metric']} became {v} at step {step}")


def train_loop(ctx: RunContext, label: str, steps: int, eval_every: int, start: int,
               rows: list[dict[str, Any]], step: Callable[[], torch.Tensor],
               evaluate: Callable[[int, float], list[dict[str, Any]]],
               state: Callable[[], dict[str, Any]] | None = None, steps_per_epoch: int = 0,
               new_epoch: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The step loop every trainer shares. ``step()`` does one optimisation
    step and returns the detached loss (summed on the device: no host sync per
    step). Every ``eval_every`` steps and at the last one: check the mean loss
    is finite, append ``evaluate(step, mean loss)``, and (before the last step)
    checkpoint ``state()`` plus the step and the rows so far, so a killed run
    resumes to exactly the rows an uninterrupted one writes.

    ``label`` names the run in the divergence message. Without ``state``,
    nothing is checkpointed. With ``steps_per_epoch`` (a data loader's epochs),
    ``new_epoch(epoch)`` runs before an epoch's first step, every epoch's last
    step is evaluated too, and checkpoints (which then also hold the epoch)
    are written at epoch ends only: a loader's position inside an epoch is not
    saved, so a run resumes at an epoch boundary.

    After :func:`request_stop` (SIGTERM) the loop checkpoints after the
    current step, with the loss sum and step count of the interval it cut,
    and raises :class:`RunStopped`; the resumed run's rows are an
    uninterrupted run's. With epochs, or without ``state``, nothing more is
    saved: the run resumes from its last checkpoint (an epoch end)."""
    loss_sum = torch.zeros((), device=ctx.device)
    eval_steps = set(range(eval_every, steps + 1, eval_every)) | {steps}
    if steps_per_epoch:
        eval_steps |= set(range(steps_per_epoch, steps + 1, steps_per_epoch))
    since = 0
    cut = ctx.interval if start else None
    if cut and not steps_per_epoch:  # resuming a stop's checkpoint: the interval goes on where it was cut
        loss_sum += cut["loss_sum"].to(loss_sum.device)
        since = int(cut["since"])
    with ctx.progress(total=steps, initial=start) as bar:
        t_train = time.perf_counter()
        for i in range(start + 1, steps + 1):
            if steps_per_epoch and new_epoch is not None and (i - 1) % steps_per_epoch == 0:
                new_epoch((i - 1) // steps_per_epoch)
            loss_sum += step()
            since += 1
            if i in eval_steps:
                train_loss = float(loss_sum) / since  # the host sync: the steps before it are done
                ctx.train_steps += since
                ctx.train_seconds += time.perf_counter() - t_train
                if not math.isfinite(train_loss):
                    raise TrainingDiverged(f"{label} loss became {train_loss} before step {i}")
                new_rows = evaluate(i, train_loss)
                _check_metrics(label, rows, new_rows, i)
                rows += new_rows
                loss_sum.zero_()
                since = 0
                bar.update(i - bar.n)
                bar.set_postfix(loss=f"{train_loss:.3f}", refresh=False)
                if state is not None and i < steps and (not steps_per_epoch or i % steps_per_epoch == 0):
                    epoch = {"epoch": i // steps_per_epoch} if steps_per_epoch else {}
                    ctx.save_checkpoint({"step": i, **epoch, "rows": rows, "timing": ctx.timing(), **state()})
                t_train = time.perf_counter()
            if i < steps and stop_requested():
                ctx.train_seconds += time.perf_counter() - t_train  # its steps are counted at the next evaluation
                where = "to resume from its last checkpoint"
                if state is not None and not steps_per_epoch:
                    ctx.save_checkpoint({"step": i, "rows": rows, "timing": ctx.timing(),
                                         "interval": {"loss_sum": loss_sum.clone(), "since": since}, **state()})
                    where = "checkpoint written"
                raise RunStopped(f"{label} at step {i} of {steps}, {where}")
    return rows
