"""Whether training has settled: the rules a verdict waits on.

An entry that names a ``settle_metric`` (the evaluation loss of the synthetic
entries) holds its verdicts NOT SETTLED while a run the claim reads still
moved that metric by more than ``settle_tol`` over its last fifth of steps;
one that names ``settle_lambda_rel`` does the same for the sorted learned
Lambda^ (each rank against its final value). Both compare window means
(``SETTLE_WINDOW``), so evaluation noise does not pass for a trend.
``aninfonce.verdicts`` applies them; the entries' figures draw the runs they
name (hollow points, traces). Reads results tables only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .registry import Analysis

SETTLED_FRACTION = 0.8  # a verdict must hold over the last fifth of training


def moving_runs(df: pd.DataFrame, metric: str, tol: float) -> dict[str, float]:
    """Run key -> how far ``metric`` moved over the run's last fifth of
    logged steps (window means, ``SETTLE_WINDOW``), for runs where that
    exceeds ``tol``."""
    out = {}
    rows = df[(df["metric"] == metric) & df["protocol"].isna()] if "protocol" in df else df[df["metric"] == metric]
    for key, run in rows.groupby(rows["run_key"].astype(str)):
        series = run.groupby(pd.to_numeric(run["step"]))["value"].mean().sort_index()
        ends = _window_ends(series)
        if ends is not None and abs(ends[1] - ends[0]) > tol:
            out[key] = float(ends[1] - ends[0])
    return out


# The settle rules compare the mean over a window of evaluations (the last SETTLE_WINDOW of the run's steps,
# at least one evaluation) with the mean over the same-length window ending at SETTLED_FRACTION of them.
# For a trend that is the two points' difference (the windows are the same shape, a fifth apart); for
# evaluation noise it is smaller by about the square root of the window's evaluations. Comparing two single
# evaluations, as the rules first did, failed a stationary trace whenever its evaluation-to-evaluation
# jitter came near the tolerance, at any length of training (Figure 3's linear runs at 20,000 steps: over
# the last fifth the smallest Lambda^ rank at Lambda^ lr 0.2 wandered 5.3-6.5 and 4.3-7.0, sd 5 % and 14 % of
# its mean, with no trend; evaluation-to-evaluation changes up to 16 % and 28 %).
# Changed after those runs, with every verdict it re-judged listed in its commit.
SETTLE_WINDOW = 0.05


def _window_ends(table: pd.DataFrame | pd.Series) -> tuple | None:
    """(mean over the window ending at SETTLED_FRACTION of the last step, mean
    over the final window), or None if no evaluation lies at or before that
    fraction."""
    steps = table.index.to_numpy(dtype=float)
    last = steps[-1]
    cut = SETTLED_FRACTION * last
    if not (steps <= cut).any():
        return None
    width = SETTLE_WINDOW * last
    end = table[steps > last - width] if (steps > last - width).any() else table.iloc[[-1]]
    upto = steps <= cut
    mid = table[upto & (steps > cut - width)]
    if mid.empty:
        mid = table[upto].iloc[[-1]]
    return mid.mean(), end.mean()


# A rank's change is measured against its final value, but never against less than this fraction of
# the run's largest rank: a rank that softplus drives towards zero shrinks geometrically and so changes
# by a large fraction of itself at any length of training, while a change below 1 % of the top rank is
# no change to the metric's shape a reader could see in the panel. Stated before the 10-epoch MNIST
# stand-in runs; the 4-epoch runs fail the rule with or without the floor (11-43 % over
# the ranks above it).
LAMBDA_RANK_FLOOR = 0.01


def _rank_change(start: np.ndarray, end: np.ndarray) -> float:
    """The largest change of a rank from ``start`` to ``end``, each against its
    final value floored at ``LAMBDA_RANK_FLOOR`` of the largest rank."""
    return float(np.max(np.abs(end - start) / np.maximum(np.abs(end), LAMBDA_RANK_FLOOR * np.max(np.abs(end)))))


def moving_lambda(df: pd.DataFrame, rel: float) -> dict[str, float]:
    """Run key -> the largest relative change of the run's sorted learned
    Lambda^ (``lambda_hat/i`` or, from the image entries, ``lambda_hat_sorted/i``
    rows; change / final value, that value floored at ``LAMBDA_RANK_FLOOR`` of
    the largest rank, over the ranks) over its last fifth of logged steps
    (window means of each rank, ``SETTLE_WINDOW``), for runs where that
    exceeds ``rel``."""
    out = {}
    lam = df[df["metric"].astype(str).str.match(r"lambda_hat(_sorted)?/")]
    for key, run in lam.groupby(lam["run_key"].astype(str)):
        table = run.pivot_table(index=pd.to_numeric(run["step"]), columns="metric", values="value").sort_index()
        ranks = pd.DataFrame(np.sort(table.to_numpy(), axis=1), index=table.index)  # sorted at each step
        ends = _window_ends(ranks)
        if ends is None:
            continue
        change = _rank_change(ends[0].to_numpy(), ends[1].to_numpy())
        if change > rel:
            out[key] = change
    return out


def lambda_scale_shape(df: pd.DataFrame) -> pd.DataFrame:
    """A sensitivity check beside the Lambda^ settle rule, never in its place:
    per run, how far the sorted learned Lambda^ moved over its last fifth,
    split into its scale (the median, relative to its final value) and its
    shape (Lambda^ / sum Lambda^, each rank against its final value floored at
    ``LAMBDA_RANK_FLOOR`` of the largest, the largest change), besides the
    rule's own number (``moving_lambda``). A learned temperature's scale
    drifting with a fixed shape breaks the rule without any rank moving
    relative to the others. Columns: run_key, rule, scale, shape."""
    out = []
    lam = df[df["metric"].astype(str).str.match(r"lambda_hat(_sorted)?/")]
    for key, run in lam.groupby(lam["run_key"].astype(str)):
        table = run.pivot_table(index=pd.to_numeric(run["step"]), columns="metric", values="value").sort_index()
        ranks = pd.DataFrame(np.sort(table.to_numpy(), axis=1), index=table.index)
        shape = ranks.div(ranks.sum(axis=1), axis=0)
        ends, shape_ends = _window_ends(ranks), _window_ends(shape)
        if ends is None or shape_ends is None:
            continue
        start, end = ends[0].to_numpy(), ends[1].to_numpy()
        rule = _rank_change(start, end)
        med0, med1 = float(np.median(start)), float(np.median(end))
        shape_change = _rank_change(shape_ends[0].to_numpy(), shape_ends[1].to_numpy())
        out.append({"run_key": key, "rule": rule, "scale": abs(med1 - med0) / abs(med1) if med1 else np.nan,
                    "shape": shape_change})
    return pd.DataFrame(out, columns=["run_key", "rule", "scale", "shape"])


def breaches(exp: Analysis, df: pd.DataFrame) -> list[tuple[dict[str, float], str]]:
    """For each settle rule the entry names and some run breaks: (run key ->
    how far it moved, why in words)."""
    if df.empty:
        return []
    n_runs = df["run_key"].nunique()
    out = []
    if exp.settle_metric:
        moving = moving_runs(df, exp.settle_metric, exp.settle_tol)
        if moving:
            out.append((moving, f"{exp.settle_metric} still moved by more than {exp.settle_tol:g} over the last fifth "
                                f"in {len(moving)} of {n_runs} runs, by up to {max(moving.values(), key=abs):+.3f}"))
    if exp.settle_lambda_rel is not None:
        moving = moving_lambda(df, exp.settle_lambda_rel)
        if moving:
            out.append((moving, f"the sorted learned Λ̂ still moved by more than {exp.settle_lambda_rel:.0%} over the "
                                f"last fifth in {len(moving)} of {n_runs} runs, by up to {max(moving.values()):.0%}"))
    return out


def unsettled_runs(exp: Analysis, df: pd.DataFrame) -> frozenset[str]:
    """Keys of the runs whose training has not settled by the entry's rules
    (``settle_metric`` / ``settle_lambda_rel``); empty when it names none."""
    return frozenset(key for moving, _ in breaches(exp, df) for key in moving)
