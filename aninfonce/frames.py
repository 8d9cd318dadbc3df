"""Selecting rows of a results table: the helpers that claims, figures and
the report share (they read the long CSV format of aninfonce.results)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable

import numpy as np
import pandas as pd


def only(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``df`` with only those of ``columns`` it has, in its own order: the
    same rows for a helper that reads no other column, and every row
    selection after it copies those columns only (a results table has about
    40, most of them provenance). A column it lacks is left for the helper's
    own lookup to report, as it would on the whole table."""
    wanted = set(columns)
    return df[[c for c in df.columns if c in wanted]]


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    for col, val in where.items():
        if isinstance(val, float):
            df = df[np.isclose(df[col].astype(float), val)]
        else:
            df = df[df[col] == val]
    return df


def final_step(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the last logged step of each run."""
    last = df.groupby("run_key")["step"].transform("max")
    return df[df["step"] == last]


def metric(df: pd.DataFrame, name: str, protocol: str | None = None) -> pd.DataFrame:
    sel = df[df["metric"] == name]
    if protocol is not None:
        sel = sel[sel["protocol"] == protocol]
    return sel


def indexed_metric(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rows of metrics named ``prefix/<i>`` with an integer ``dim`` column."""
    sel = df[df["metric"].str.startswith(prefix + "/")].copy()
    sel["dim"] = sel["metric"].str.split("/").str[1].astype(int)
    return sel


def with_latent(rows: pd.DataFrame, match: pd.DataFrame) -> pd.DataFrame:
    """Per-encoder-dim ``rows`` (``indexed_metric``) plus a ``latent`` column:
    the latent dim that the run's Hungarian matching (``match/i`` rows, one
    per run and dim) pairs with encoder dim ``dim``; NaN where it logged none."""
    latent = match[["run_key", "dim", "value"]].rename(columns={"value": "latent"}).drop_duplicates(["run_key", "dim"])
    return rows.merge(latent, on=["run_key", "dim"], how="left")


# How many (table, arguments) answers a ``per_table`` helper keeps: enough for one claim's pass over
# every logged step (Figure 3 logs 141), so the next claim reading the same rows finds them all.
PER_TABLE_KEPT = 160


def per_table(fn: Callable) -> Callable:
    """``fn(table, *args)`` remembered for the tables it was last given, by
    identity (each kept table is held, so no other table can take its id).
    The verdicts hand every claim that reads the same rows the same table at
    each logged step, so a helper that several claims call on it (each run's
    end state, say) runs once per step. Neither the table nor the answer may
    be changed in place by its callers."""
    kept: OrderedDict = OrderedDict()

    @functools.wraps(fn)
    def remembered(df: pd.DataFrame, *args):
        key = (id(df), args)
        if key in kept:
            kept.move_to_end(key)
            return kept[key][1]
        answer = fn(df, *args)
        kept[key] = (df, answer)
        if len(kept) > PER_TABLE_KEPT:
            kept.popitem(last=False)
        return answer

    return remembered
