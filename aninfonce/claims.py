"""Building blocks for claims: pull the numbers a claim compares out of a
results table. Each helper returns plain floats so a claim's ``measured``
string shows exactly what was compared."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .frames import equals, indexed_metric, last_step_mask, of_runs, only, run_keys, select, where_mask
from .protocols import HELD_OUT


def final_value(df: pd.DataFrame, metric: str, protocol: str | None = HELD_OUT, **where) -> float:
    """Mean over seeds of a metric at each run's last step, for runs matching ``where``.

    The rows that selecting the runs, then each run's last step, then the
    metric (and protocol) keep, found as one boolean array over ``df``: no
    table is built but the values' (a claim asks this thousands of times
    while it is judged over training)."""
    keep = where_mask(df, **where)
    keep &= last_step_mask(df, keep)
    keep &= equals(df["metric"], metric)
    if protocol is not None and metric.startswith(("r2", "r2/")):
        keep &= equals(df["protocol"], protocol)
    sel = df["value"][keep]
    return float(sel.mean()) if len(sel) else float("nan")


def final_lambda_hat(df: pd.DataFrame, matched: bool = False, **where) -> np.ndarray:
    """Learned Lambda^ per encoder dim at the last step, averaged over seeds.

    ``matched=True`` reorders it into latent-dim order through the Hungarian
    matching rows (``match/i``) of the same step, so entry j is the Lambda^ of
    the encoder dim that encodes latent j; NaN where no matching was logged.
    """
    keep = where_mask(df, **where)
    last = only(df, "run_key", "step", "metric", "value", *where)[keep & last_step_mask(df, keep)]
    lam = indexed_metric(last, "lambda_hat")
    if not matched:
        return lam.groupby("dim")["value"].mean().sort_index().to_numpy()
    match = indexed_metric(last, "match")
    if match.empty:
        return np.full(lam["dim"].nunique(), np.nan)
    # the latent each Lambda^ row's encoder dim is paired with (the first match row of its run and dim, as
    # frames.with_latent pairs them), looked up in a dict: a few hundred rows, at every logged step
    latent_of: dict = {}
    for key, dim, latent in zip(match["run_key"].tolist(), match["dim"].tolist(), match["value"].tolist()):
        latent_of.setdefault((key, dim), latent)
    latent = np.array([latent_of.get(pair, np.nan) for pair in zip(lam["run_key"].tolist(), lam["dim"].tolist())],
                      dtype=float)
    paired = ~np.isnan(latent)
    # the mean of each latent's rows in their order, as a groupby of the paired rows takes it
    out = pd.Series(lam["value"].to_numpy()[paired]).groupby(latent[paired].astype(int)).mean().sort_index()
    return out.reindex(range(lam["dim"].nunique())).to_numpy()


# Shared margin, set from the science before any quick run: R^2 >= 0.85 is
# "kept" (the mixing alone scores about 0.4-0.7). Figure 2, the hard negatives,
# the ensembles and the authors' setting all use it.
KEPT = 0.85


def runs_matching(*wheres: dict):
    """A ``Claim.reads``: every row of the runs that match any of ``wheres``
    (column -> value, as ``select``). A value may be a function of the whole
    table returning the value, e.g. the largest Lambda_2 the table sweeps."""
    def reads(df: pd.DataFrame) -> pd.DataFrame:
        keys: set[str] = set()
        for where in wheres:
            resolved = {col: val(df) if callable(val) else val for col, val in where.items()}
            keys |= run_keys(select(only(df, "run_key", *resolved), **resolved))
        return df[of_runs(df, keys)]
    reads.whole_runs = True  # every row of the runs it picks: claims picking the same runs read the same rows
    return reads


def at_least(value: float, threshold: float, places: int = 3) -> bool:
    """``value >= threshold`` at the precision the report prints (``places``
    decimals), so that float noise below the printed digits cannot flip a
    verdict (Spearman -0.7999999999999999 is -0.80). NaN never passes."""
    return bool(np.isfinite(value) and round(float(value), places) >= threshold)


def at_most(value: float, threshold: float, places: int = 3) -> bool:
    """``value <= threshold`` at the printed precision (see :func:`at_least`)."""
    return bool(np.isfinite(value) and round(float(value), places) <= threshold)


def within(value: float, low: float, high: float, places: int = 3) -> bool:
    """``low <= value <= high`` with all three rounded to ``places`` decimals."""
    if not np.isfinite([value, low, high]).all():
        return False
    v, lo, hi = (round(float(x), places) for x in (value, low, high))
    return lo <= v <= hi


def scipy_stats():
    """``scipy.stats``, imported at its first use: it is about half of what importing the CLI costs, which
    every command pays (a training run, ``--list``, each process the tests start), and only judging needs it."""
    import scipy.stats

    return scipy.stats


def spearman(x, y) -> float:
    """Spearman's rank correlation of ``x`` and ``y``: the correlation of their average ranks, as
    ``scipy.stats.spearmanr(x, y).statistic`` computes it (the same ranks, the same ``np.corrcoef``), without
    the p-value it works out too (a claim asks thousands of times while it is judged over training). NaN
    where it is undefined: a constant input (e.g. at step 0, before anything moved), fewer than two
    values, or a NaN among them -- NaN never passes."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(np.column_stack((average_ranks(x), average_ranks(y))), rowvar=False)[1, 0])


def average_ranks(values: np.ndarray) -> np.ndarray:
    """The 1-based ranks of ``values``, ties sharing the mean of the ranks they span (``scipy.stats.rankdata``'s
    default): exact halves, so the same floats however they are computed."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]  # where each run of ties starts
    tie = np.empty(len(values), dtype=np.intp)
    tie[order] = np.cumsum(new) - 1  # each value's run of ties
    bounds = np.r_[np.flatnonzero(new), len(values)]  # each run's first position, and the end
    return 0.5 * (bounds[tie] + bounds[tie + 1] + 1)


def prediction_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided prediction interval for one more draw of a normal sample (the trajectory rule)."""
    n = len(values)
    half = t_quantile(0.5 + level / 2, n - 1) * np.std(values, ddof=1) * np.sqrt(1 + 1 / n)
    return float(np.mean(values) - half), float(np.mean(values) + half)


@functools.lru_cache(maxsize=64)
def t_quantile(q: float, dof: int) -> float:
    """Student's t quantile (``scipy.stats.t.ppf``), worked out once per (q, dof): the trajectory rule asks
    for the same few at every logged step."""
    return scipy_stats().t.ppf(q, dof)


def fmt(**values: float) -> str:
    return ", ".join(f"{k} = {v:.3f}" for k, v in values.items())
