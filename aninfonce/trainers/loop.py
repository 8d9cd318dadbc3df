"""The one step loop every trainer shares: resume from a
checkpoint, step, evaluate every ``eval_every`` steps, check the loss is
finite, snapshot. The framework owns the cadence, timing and checkpoints; a
trainer only supplies ``step``, ``evaluate`` and its state.

Three variants of the same loop, each asked for by an argument: epochs of a
data loader (``steps_per_epoch``, ``new_epoch``: the SimCLR trainer), several
runs trained as one batched model (a list of labels: one loss per run), and no
checkpoints (no ``state``; with :class:`BareContext`, training outside the
runner).

A stop asked for by SIGTERM (what SLURM sends before preemption or at a job's
time limit; :func:`request_stop` is the handler) ends the loop after the
current step with a checkpoint of exactly where it stood, the partial
evaluation interval included, so the resumed run writes the rows an
uninterrupted one writes; then :class:`~aninfonce.lifecycle.RunStopped` is raised."""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch
from tqdm.auto import tqdm

from ..errors import UserError
from ..lifecycle import RunStopped, stop_requested  # noqa: F401  (RunStopped re-exported)

if TYPE_CHECKING:
    from ..runner import RunContext


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite."""


class BareContext:
    """What :func:`train_loop` needs of a run context, for training outside the
    runner (a batched group of runs): the device, a silent progress bar and
    the step counters. It keeps no checkpoint."""

    def __init__(self, device: torch.device):
        self.device = device
        self.train_steps, self.train_seconds = 0, 0.0

    @contextlib.contextmanager
    def progress(self, total: int, initial: int = 0) -> Iterator[tqdm]:
        yield tqdm(total=total, initial=initial, disable=True)


def resume_or_start(ctx: "RunContext", modules: dict[str, Any], data_gen: torch.Generator | None,
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
        where = getattr(ctx, "checkpoint_path", "the checkpoint")
        raise UserError(f"checkpoint {where} does not fit this run ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'missing entry'}); delete it to restart "
                        "that run from scratch") from None
    if hasattr(ctx, "restore_timing"):
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


def _check_metrics(label: str | list[str], before: list[dict[str, Any]], new: list[dict[str, Any]], step: int) -> None:
    """An evaluation metric that was finite before and is NaN or inf now stops
    the run like a non-finite loss. A metric undefined by design (the style
    R^2 of a run with no style dims) is NaN from its first evaluation on and
    is left alone."""
    finite = {(r.get("run"), r["metric"], r.get("protocol")) for r in before
              if _numeric(r) is not None and math.isfinite(_numeric(r))}
    for r in new:
        v = _numeric(r)  # None for a row that is not a metric value
        if v is not None and not math.isfinite(v) and (r.get("run"), r["metric"], r.get("protocol")) in finite:
            name = label if isinstance(label, str) else r.get("run", ", ".join(label))
            raise TrainingDiverged(f"{name} evaluation metric {r['metric']} became {v} at step {step}")


def train_loop(ctx: "RunContext", label: str | list[str], steps: int, eval_every: int, start: int,
               rows: list[dict[str, Any]], step: Callable[[], torch.Tensor],
               evaluate: Callable[[int, Any], list[dict[str, Any]]],
               state: Callable[[], dict[str, Any]] | None = None, steps_per_epoch: int = 0,
               new_epoch: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The step loop every trainer shares. ``step()`` does one optimisation
    step and returns the detached loss (summed on the device: no host sync per
    step). Every ``eval_every`` steps and at the last one: check the mean loss
    is finite, append ``evaluate(step, mean loss)``, and (before the last step)
    checkpoint ``state()`` plus the step and the rows so far, so a killed run
    resumes to exactly the rows an uninterrupted one writes.

    ``label`` names the run in the divergence message. A list of labels (runs
    trained as one batched model): ``step()`` returns one loss per run and
    ``evaluate`` gets the list of their means. Without ``state``, nothing is
    checkpointed. With ``steps_per_epoch`` (a data loader's epochs),
    ``new_epoch(epoch)`` runs before an epoch's first step, every epoch's last
    step is evaluated too, and checkpoints (which then also hold the epoch)
    are written at epoch ends only: a loader's position inside an epoch is not
    saved, so a run resumes at an epoch boundary.

    After :func:`request_stop` (SIGTERM) the loop checkpoints after the
    current step, with the loss sum and step count of the interval it cut,
    and raises :class:`RunStopped`; the resumed run's rows are an
    uninterrupted run's. With epochs, or without ``state``, nothing more is
    saved: the run resumes from its last checkpoint (an epoch end)."""
    runs = None if isinstance(label, str) else list(label)
    loss_sum = torch.zeros(() if runs is None else len(runs), device=ctx.device)
    eval_steps = set(range(eval_every, steps + 1, eval_every)) | {steps}
    if steps_per_epoch:
        eval_steps |= set(range(steps_per_epoch, steps + 1, steps_per_epoch))
    since = 0
    cut = getattr(ctx, "interval", None) if start else None
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
                # the host sync: the steps before it are done
                train_loss = float(loss_sum) / since if runs is None else [s / since for s in loss_sum.cpu().tolist()]
                ctx.train_steps += since
                ctx.train_seconds += time.perf_counter() - t_train
                for name, loss in [(label, train_loss)] if runs is None else zip(runs, train_loss):
                    if not math.isfinite(loss):
                        raise TrainingDiverged(f"{name} loss became {loss} before step {i}")
                new_rows = evaluate(i, train_loss)
                _check_metrics(label, rows, new_rows, i)
                rows += new_rows
                loss_sum.zero_()
                since = 0
                bar.update(i - bar.n)
                shown = train_loss if runs is None else sum(train_loss) / len(train_loss)
                bar.set_postfix(loss=f"{shown:.3f}", refresh=False)
                if state is not None and i < steps and (not steps_per_epoch or i % steps_per_epoch == 0):
                    timing = ctx.timing() if hasattr(ctx, "timing") else {}
                    epoch = {"epoch": i // steps_per_epoch} if steps_per_epoch else {}
                    ctx.save_checkpoint({"step": i, **epoch, "rows": rows, "timing": timing, **state()})
                t_train = time.perf_counter()
            if i < steps and stop_requested():
                ctx.train_seconds += time.perf_counter() - t_train  # its steps are counted at the next evaluation
                where = "to resume from its last checkpoint"
                if state is not None and not steps_per_epoch:
                    timing = ctx.timing() if hasattr(ctx, "timing") else {}
                    ctx.save_checkpoint({"step": i, "rows": rows, "timing": timing,
                                         "interval": {"loss_sum": loss_sum.clone(), "since": since}, **state()})
                    where = "checkpoint written"
                raise RunStopped(f"{label if runs is None else ', '.join(runs)} at step {i} of {steps}, {where}")
    return rows
