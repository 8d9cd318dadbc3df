"""Building blocks for claims: pull the numbers a claim compares out of a
results table. Each helper returns plain floats so a claim's ``measured``
string shows exactly what was compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .metrics import HELD_OUT
from .plots import final_step, indexed_metric


def final_value(df: pd.DataFrame, metric: str, protocol: str | None = HELD_OUT, **where) -> float:
    """Mean over seeds of a metric at each run's last step, for runs matching ``where``."""
    sel = final_step(select(df, **where))
    sel = sel[sel["metric"] == metric]
    if protocol is not None and metric.startswith(("r2", "r2/")):
        sel = sel[sel["protocol"] == protocol]
    return float(sel["value"].mean()) if len(sel) else float("nan")


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    for col, val in where.items():
        if isinstance(val, float):
            df = df[np.isclose(df[col].astype(float), val)]
        else:
            df = df[df[col] == val]
    return df


def final_lambda_hat(df: pd.DataFrame, **where) -> np.ndarray:
    """Learned Lambda^ per dim at the last step, averaged over seeds."""
    sel = indexed_metric(final_step(select(df, **where)), "lambda_hat")
    return sel.groupby("dim")["value"].mean().sort_index().to_numpy()


def spearman(x, y) -> float:
    return float(spearmanr(x, y).statistic)


def fmt(**values: float) -> str:
    return ", ".join(f"{k} = {v:.3f}" for k, v in values.items())
