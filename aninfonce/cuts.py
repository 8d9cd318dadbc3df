"""The rows a claim is judged on at each logged step of its history.

A verdict's history (``aninfonce.verdicts``) judges a claim at every logged
step s on the rows logged up to s: the *cut* at s, ``table[table["step"] <=
s]``. A check that reads only each run's end state (``Claim.end_states``)
is handed instead the cut's *end states*: each run's rows at its last logged
step <= s, exactly what ``frames.final_step`` keeps of the cut (the same rows,
in the same order, with the same index and dtypes), a few hundred rows where
the cut holds up to a hundred thousand.

Why a check on run end states gives the same numbers on either table: its
helpers (``claims.final_value``, ``claims.final_lambda_hat``, the entries'
curves) first select runs by their settings -- columns constant within a
run, so a selection keeps or drops whole runs -- and then keep each run's
last step. Selecting whole runs commutes with keeping each run's last step,
and keeping the last step twice keeps the same rows as once; the set of runs
is the same in both tables (every run in the cut has an end state).

Both tables are built once per (table, step) and, with ``shared``, handed to
every claim reading the same table, so a helper several claims call on it
(``frames.per_table``) answers once per step. Reads results tables only.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

# what step_cuts yields for a table at a step: its cut, its end states, or only whether it changed
KINDS = ("rows", "ends", "changed")


def end_spans(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(from, until) for each row of ``table``: the row belongs to its run's
    end state at every step s with from <= s < until -- from is the row's
    step, until the run's next logged step after it (infinite after its
    last). A row without a step or a run key belongs to none, as
    ``frames.final_step`` keeps none of them."""
    step = pd.to_numeric(table["step"]).to_numpy(dtype=float)
    run = pd.factorize(table["run_key"])[0]
    ok = ~np.isnan(step) & (run >= 0)
    until = np.full(len(table), np.inf)
    order = np.flatnonzero(ok)
    order = order[np.lexsort((step[order], run[order]))]  # by run, then by step
    if len(order):
        r, s = run[order], step[order]
        starts = np.flatnonzero(np.r_[True, (r[1:] != r[:-1]) | (s[1:] != s[:-1])])  # each (run, step) block
        after = np.r_[starts[1:], len(order)]  # where the next block starts
        nxt = np.minimum(after, len(order) - 1)
        block_until = np.where((after < len(order)) & (r[nxt] == r[starts]), s[nxt], np.inf)
        until[order] = np.repeat(block_until, after - starts)
    start = np.where(ok, step, np.nan)  # NaN <= s is False: such rows are in no end state
    return start, until


def step_cuts(steps: list, tables: list[pd.DataFrame], kind: str = "rows", shared: dict | None = None,
              names: list | None = None) -> Iterator[tuple[float, list]]:
    """For each step s of ``steps`` (ascending): for each table of ``tables``,
    its cut at s (``kind="rows"``), its end states at s (``"ends"``), or True
    (``"changed"``); None where the table logged nothing since the step
    before, so a check on it cannot change and is not run again. With
    ``shared``, the table of ``tables[i]`` is taken from there under the name
    ``names[i]`` and its row count at s (kept there when new): claims reading
    the same rows are handed the same table object at each step."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    step_of = [pd.to_numeric(t["step"]).to_numpy(dtype=float) for t in tables]
    spans = [None] * len(tables)
    done = [-1] * len(tables)
    for s in steps:
        out = []
        for i, table in enumerate(tables):
            upto = step_of[i] <= s
            n = int(upto.sum())  # the cuts only grow, so the same count is the same rows
            if n == done[i]:
                out.append(None)
            elif kind == "changed":
                out.append(True)
            else:
                key = (kind, names[i] if names else i, n)
                made = shared.get(key) if shared is not None else None
                if made is None:
                    if kind == "ends":
                        if spans[i] is None:
                            spans[i] = _spans(table, shared, names[i] if names else i)
                        start, until = spans[i]
                        upto = (start <= s) & (s < until)
                    made = table[upto]
                    if shared is not None:
                        shared[key] = made
                out.append(made)
            done[i] = n
        yield s, out


def _spans(table: pd.DataFrame, shared: dict | None, name) -> tuple[np.ndarray, np.ndarray]:
    """``end_spans(table)``, kept in ``shared`` for the other claims reading it."""
    if shared is None:
        return end_spans(table)
    if ("spans", name) not in shared:
        shared[("spans", name)] = end_spans(table)
    return shared[("spans", name)]
