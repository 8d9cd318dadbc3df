"""The synthetic runs' optimisation schedules, in a module the reading half
can import (no torch): the authors' setting [code], the learning-rate factor
per step, how far a schedule can carry the learned Lambda^ (its travel
bound), and the phrase a figure title uses to name a run's schedule. The
trainer builds its specs and its learning-rate schedule from here."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd

# [code] Adam with these rates, batch 1000, constant rate, Lambda^ = softplus(theta)
AUTHORS_OPTIMISER = {"batch": 1000, "lr_f": 1e-4, "lr_metric": 1e-3, "lr_schedule": "constant", "warmup_steps": 0,
                     "lambda_param": "softplus"}
AUTHORS_STEPS = 100_000  # nominal length of their runs; their logs stop at 102k-118k


SCHEDULES = ("constant", "cosine")
# The largest initial Lambda^: softplus(0.5), theta's init drawn N(0, 0.1^2) being 5 sd below it
LAMBDA_INIT_MAX = math.log1p(math.exp(0.5))


def lr_factor(s, step: int) -> float:
    """The learning-rate multiplier after ``step`` updates of a run with the
    schedule fields of ``s`` (a spec, or :func:`schedule_of` a results row):
    linear warm-up over ``warmup_steps``, then constant [code] or a cosine
    decay to zero at ``steps``."""
    if s.warmup_steps and step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    if s.lr_schedule == "cosine":
        done = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
    return 1.0


def travel_curve(s) -> np.ndarray:
    """The largest learned Lambda^ (or scalar) reachable after 0 .. steps updates.

    Adam moves a parameter by at most about its learning rate per step (when
    the gradient keeps its sign), so theta travels at most lr_metric x the
    summed schedule factors. Under softplus, whose slope is below 1, Lambda^
    travels at most as far as theta; under the log parametrisation it grows by
    at most exp(that distance).
    """
    factors = np.array([lr_factor(s, t) for t in range(s.steps)])
    distance = s.lr_metric * np.concatenate([[0.0], np.cumsum(factors)])
    if s.lambda_param == "log":
        return LAMBDA_INIT_MAX * np.exp(np.minimum(distance, 700.0))
    return LAMBDA_INIT_MAX + distance


def travel_bound(s) -> float:
    """The largest Lambda^ the whole schedule can reach."""
    return float(travel_curve(s)[-1])


def schedule_of(row: pd.Series | dict) -> SimpleNamespace:
    """A results row's schedule fields; a column the table predates holds the
    field's default (the authors' value)."""
    get = lambda col: AUTHORS_OPTIMISER[col] if col not in row or pd.isna(row[col]) else row[col]  # noqa: E731
    return SimpleNamespace(lr_f=float(get("lr_f")), lr_metric=float(get("lr_metric")), lr_schedule=get("lr_schedule"),
                           warmup_steps=int(get("warmup_steps")), lambda_param=get("lambda_param"), steps=int(row["steps"]))


def _k(steps: int) -> str:
    return f"{steps / 1000:g}k"


def schedule_phrase(df: pd.DataFrame) -> str:
    """How the runs in ``df`` were trained, for a figure title: "the authors'
    schedule, 10k of their ~100k steps", or the compressed schedule's rates
    and length. Several settings in one table are each named."""
    if df.empty or "lr_f" not in df:
        return ""
    cols = [c for c in ("lr_f", "lr_metric", "lr_schedule", "warmup_steps", "lambda_param", "steps") if c in df]
    phrases = []
    for _, r in df[cols].drop_duplicates().iterrows():
        s = schedule_of(r)
        authors = (math.isclose(s.lr_f, AUTHORS_OPTIMISER["lr_f"]) and math.isclose(s.lr_metric, AUTHORS_OPTIMISER["lr_metric"])
                   and s.lr_schedule == "constant" and s.warmup_steps == 0 and s.lambda_param == "softplus")
        if authors:
            phrases.append(f"the authors' schedule, {_k(s.steps)} of their ~{_k(AUTHORS_STEPS)} steps"
                           if s.steps < AUTHORS_STEPS else f"the authors' schedule, {_k(s.steps)} steps")
        else:
            phrases.append(f"compressed schedule (encoder lr {s.lr_f:g}, Λ̂ lr {s.lr_metric:g}"
                           f"{' on log Λ̂' if s.lambda_param == 'log' else ''}, {s.lr_schedule}), {_k(s.steps)} steps")
    return "; ".join(dict.fromkeys(phrases))
