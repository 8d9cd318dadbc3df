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
    """The rows matching every column -> value of ``where`` (a float value
    within ``np.isclose``); ``df`` itself when ``where`` is empty."""
    return df[where_mask(df, **where)] if where else df


def where_mask(df: pd.DataFrame, **where) -> np.ndarray:
    """``select``'s rows as a boolean array over ``df``."""
    keep = np.ones(len(df), dtype=bool)
    for col, val in where.items():
        column = df[col]
        if not isinstance(val, float):
            keep &= equals(column, val)
        elif column.dtype == np.float64:
            keep &= np.isclose(column.to_numpy(), val)  # the values astype(float) gives, without a Series
        else:
            keep &= np.isclose(column.astype(float), val)
    return keep


def equals(column: pd.Series, value) -> np.ndarray:
    """``column == value`` as a boolean array. A categorical column (the
    judged tables store text so) is compared by its codes, a text column as
    an array of Python strings, without building a Series (a third of the
    time pandas' text comparison takes): the same answer, a missing value
    equal to nothing."""
    if isinstance(value, str):
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes, categories = column.array.codes, column.array.categories
            return codes == categories.get_loc(value) if value in categories else np.zeros(len(column), dtype=bool)
        if pd.api.types.is_string_dtype(column.dtype):
            return np.asarray(column.to_numpy(dtype=object) == value, dtype=bool)
    return np.asarray(column == value, dtype=bool)


def run_keys(df: pd.DataFrame) -> set:
    """``set(df["run_key"].astype(str))``: the runs ``df`` holds, each distinct key converted once (a
    results table holds a run's key on each of its thousands of rows)."""
    return set(df["run_key"].drop_duplicates().astype(str))


def of_runs(df: pd.DataFrame, keys) -> np.ndarray:
    """``df["run_key"].astype(str).isin(keys)`` as a boolean array, each distinct key looked up once."""
    codes, uniques = pd.factorize(df["run_key"], use_na_sentinel=False)
    return np.asarray(pd.Series(uniques).astype(str).isin(list(keys)), dtype=bool)[codes]


def final_step(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the last logged step of each run."""
    return df[last_step_mask(df)]


def last_step_mask(df: pd.DataFrame, among: np.ndarray | None = None) -> np.ndarray:
    """The rows of each run's last logged step as a boolean array over
    ``df``: ``final_step``'s rows, or with ``among`` (a boolean array), those
    of ``final_step(df[among])``. A row without a run key or a step is in no
    run's last step (as a groupby leaves such keys out and a missing step
    equals nothing); a run whose steps are all missing has none."""
    step, key = df["step"], df["run_key"]
    # a categorical key's codes name its runs as factorize would (by other numbers), -1 where missing
    run = key.array.codes if isinstance(key.dtype, pd.CategoricalDtype) else pd.factorize(key)[0]
    if isinstance(step.dtype, np.dtype) and step.dtype.kind in "iuf":  # plain numbers: no NaN scan for integers
        return _last_of_each_run(run, step.to_numpy().astype(float, copy=False), among)
    if not pd.api.types.is_numeric_dtype(step.dtype) or pd.api.types.is_bool_dtype(step.dtype):
        rows = np.arange(len(df)) if among is None else np.flatnonzero(among)  # the groupby, for other step types
        sub = df.iloc[rows]
        out = np.zeros(len(df), dtype=bool)
        out[rows] = np.asarray(sub["step"] == sub.groupby("run_key")["step"].transform("max"), dtype=bool)
        return out
    step = step.to_numpy(dtype=float, na_value=np.nan) if step.hasnans else step.to_numpy(dtype=float)
    return _last_of_each_run(run, step, among)


def _last_of_each_run(run: np.ndarray, step: np.ndarray, among: np.ndarray | None) -> np.ndarray:
    """:func:`last_step_mask` on each row's run number (-1: none) and step (NaN: none) as arrays."""
    keep = (run >= 0) & ~np.isnan(step)
    if among is not None:
        keep &= among
    top = np.full(max(run.max(initial=-1) + 1, 1), -np.inf)  # each run's last step among the kept rows
    np.maximum.at(top, run[keep], step[keep])
    return keep & (step == top[np.maximum(run, 0)])


def metric(df: pd.DataFrame, name: str, protocol: str | None = None) -> pd.DataFrame:
    sel = df[equals(df["metric"], name)]
    if protocol is not None:
        sel = sel[equals(sel["protocol"], protocol)]
    return sel


def indexed_metric(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rows of metrics named ``prefix/<i>`` with an integer ``dim`` column."""
    names = df["metric"]
    if isinstance(names.dtype, pd.CategoricalDtype):  # each distinct name read once, not once a row
        codes = names.array.codes
        hit = _prefixed(names.array.categories, prefix)
        keep = (codes >= 0) & hit[codes]
        sel = df[keep].copy()
        sel["dim"] = _prefixed(names.array.categories, prefix, tuple(np.unique(codes[keep]).tolist()))[codes[keep]]
        return sel
    sel = df[names.str.startswith(prefix + "/")].copy()
    sel["dim"] = sel["metric"].str.split("/").str[1].astype(int)
    return sel


# The categories of a judged table's metric column are one object shared by every table cut from it, so
# what a prefix picks among them is worked out once per (categories, prefix), kept by identity (each kept
# categories object is held, so no other can take its id).
_NAMES: OrderedDict = OrderedDict()


def _prefixed(categories: pd.Index, prefix: str, used=None):
    """Which of ``categories`` are named ``prefix/...`` (a boolean array), or with ``used`` (codes), the
    integer after ``prefix/`` of each of those categories, 0 elsewhere: only names some row carries are
    read, as the rows' own names would be."""
    key = (id(categories), prefix, used)
    if key not in _NAMES:
        names = pd.Series(categories)
        if used is None:
            answer = names.str.startswith(prefix + "/").to_numpy(dtype=bool)
        else:
            answer = np.zeros(len(categories), dtype=np.int64)
            answer[list(used)] = names.iloc[list(used)].str.split("/").str[1].astype(int).to_numpy()
        _NAMES[key] = (categories, answer)
        if len(_NAMES) > 256:
            _NAMES.popitem(last=False)
    return _NAMES[key][1]


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
