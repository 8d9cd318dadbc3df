"""The one step loop every trainer shares (issue 12): resume from a
checkpoint, step, evaluate every ``eval_every`` steps, check the loss is
finite, snapshot. The framework owns the cadence, timing and checkpoints; a
trainer only supplies ``step``, ``evaluate`` and its state."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..errors import UserError

if TYPE_CHECKING:
    from ..runner import RunContext


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite."""


def resume_or_start(ctx: "RunContext", modules: dict[str, Any], data_gen: torch.Generator,
                    first_rows: Callable[[], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """(rows so far, step to continue from): from the run's checkpoint, with
    the state dicts of ``modules`` (name -> module or optimiser) and the data
    generator restored, or ``(first_rows(), 0)`` for a fresh run. The
    checkpoint is the one :func:`train_loop` writes with :func:`snapshot`."""
    state = ctx.load_checkpoint()
    if state is None:
        return first_rows(), 0
    for name, module in modules.items():
        module.load_state_dict(state[name])
    data_gen.set_state(state["data_gen"])
    if hasattr(ctx, "restore_timing"):
        ctx.restore_timing(state.get("timing"))
    return state["rows"], state["step"]


def snapshot(modules: dict[str, Any], data_gen: torch.Generator) -> dict[str, Any]:
    """The state :func:`resume_or_start` restores (train_loop adds step and rows)."""
    return {"data_gen": data_gen.get_state(), **{name: m.state_dict() for name, m in modules.items()}}


def train_loop(ctx: "RunContext", label: str, steps: int, eval_every: int, start: int, rows: list[dict[str, Any]],
               step: Callable[[], torch.Tensor], evaluate: Callable[[int, float], list[dict[str, Any]]],
               state: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    """The step loop every trainer shares. ``step()`` does one optimisation
    step and returns the detached loss (summed on the device: no host sync per
    step). Every ``eval_every`` steps and at the last one: check the mean loss
    is finite, append ``evaluate(step, mean loss)``, and (before the last step)
    checkpoint ``state()`` plus the step and the rows so far, so a killed run
    resumes to exactly the rows an uninterrupted one writes."""
    loss_sum = torch.zeros((), device=ctx.device)
    eval_steps = set(range(eval_every, steps + 1, eval_every)) | {steps}
    since = 0
    with ctx.progress(total=steps, initial=start) as bar:
        t_train = time.perf_counter()
        for i in range(start + 1, steps + 1):
            loss_sum += step()
            since += 1
            if i in eval_steps:
                train_loss = float(loss_sum) / since  # the host sync: the steps before it are done
                ctx.train_steps += since
                ctx.train_seconds += time.perf_counter() - t_train
                if not math.isfinite(train_loss):
                    raise TrainingDiverged(f"{label} loss became {train_loss} before step {i}")
                rows += evaluate(i, train_loss)
                loss_sum.zero_()
                since = 0
                bar.update(i - bar.n)
                bar.set_postfix(loss=f"{train_loss:.3f}", refresh=False)
                if i < steps:
                    timing = ctx.timing() if hasattr(ctx, "timing") else {}
                    ctx.save_checkpoint({"step": i, "rows": rows, "timing": timing, **state()})
                t_train = time.perf_counter()
    return rows
