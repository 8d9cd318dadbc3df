"""Claim verdicts over seeds and over training.

A claim's ``check`` compares numbers from a results table. This module
evaluates it the way a reader needs:

- **per seed**: on each seed's runs alone, summarised as "k of n seeds"; the
  claim's ``rule`` (written beside it, before the runs) turns that into the
  verdict: ``all`` seeds, a ``majority``, or ``pooled`` (the check itself
  compares across seeds, e.g. a trajectory against our seeds' range);
- **on whole grids only**: a seed is judged once every run of its grid is
  in the results; a seed still partly run is left out (and named), and an
  entry with no complete seed has NO DATA -- a sweep judged on some of its
  points would compare what is there with what is missing;
- **over training**: at every logged step, on the rows up to that step (so
  "the last step" of each run is that step). The verdict *holds since* the
  first step from which it never changed again; one that still changed in
  the last fifth of training -- or whose count of passing seeds still did --
  is NOT SETTLED, counted apart from PASS / FAIL;
- **on settled training**: for an entry that names settle rules (a
  ``settle_metric``, the evaluation loss of the synthetic entries, or
  ``settle_lambda_rel``, the sorted learned Lambda^), every run the claim
  reads (``Claim.reads``; by default every run of the entry) must have
  settled by them (``aninfonce.settle``); otherwise each of its verdicts is
  NOT SETTLED -- a verdict that has not flipped yet says nothing while
  training is still under way.

Nothing here trains or reads torch: it reads results tables only.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .cuts import step_cuts
from .frames import run_keys
from .registry import Analysis, Claim, ClaimResult
from .results import PROVENANCE_COLUMNS
# the settle rules, also read from here by the entries' figures and the report
from .settle import (  # noqa: F401
    LAMBDA_RANK_FLOOR,
    SETTLE_WINDOW,
    SETTLED_FRACTION,
    breaches,
    lambda_scale_shape,
    moving_lambda,
    moving_runs,
    unsettled_runs,
)
from .table_markup import markdown

STATUSES = ("PASS", "FAIL", "NOT SETTLED", "NO DATA")


@dataclasses.dataclass(frozen=True)
class Verdict:
    experiment: str
    claim: str
    text: str
    rule: str
    status: str  # one of STATUSES
    measured: str  # the numbers at the last step (pooled over seeds), plus which seeds pass
    seeds_passed: int = 0
    n_seeds: int = 0
    since_step: int | None = None  # first logged step from which the final verdict held
    last_step: int | None = None
    history: tuple[tuple[int, float, bool], ...] = ()  # (step, fraction of seeds passing, rule verdict)
    short: str = ""  # the claim in a few words (Claim.short)

    @property
    def statement(self) -> str:
        """The claim in a few words, else its full text."""
        return self.short or self.text

    @property
    def passed(self) -> bool | None:
        """True / False for a settled verdict, None for NOT SETTLED or NO DATA."""
        return {"PASS": True, "FAIL": False}.get(self.status)

    @property
    def final(self) -> bool | None:
        """The verdict at the last step, settled or not."""
        return self.history[-1][2] if self.history else None

    def seeds(self) -> str:
        return f"{self.seeds_passed} of {self.n_seeds}" if self.n_seeds else "–"

    def since(self) -> str:
        if self.since_step is None:
            return "–"
        if len(self.history) == 1:
            return f"{self.since_step:,} (one evaluation)"
        return f"{self.since_step:,} (last {self.last_step:,})"


def _check(claim: Claim, df: pd.DataFrame) -> tuple[bool | None, str]:
    """(passed, measured); passed is None when the rows the claim needs are
    absent (e.g. a metric logged only by newer runs)."""
    return _judge(lambda: claim.check(df))


def _judge(run: Callable[[], ClaimResult]) -> tuple[bool | None, str]:
    """``run()``'s (passed, measured), an error in it a failure that says why."""
    res, err = _quietly(run)
    if err is not None:
        return False, f"could not evaluate: {type(err).__name__}: {err}"
    return (None if res.passed is None else bool(res.passed)), res.measured


def _quietly(run: Callable[[], Any]) -> tuple[Any, Exception | None]:
    """(``run()``, None), or (None, the error) where the rows a check reads cannot give its numbers;
    without the NaN warnings of early steps and single seeds (NaN never passes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return run(), None
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as err:
        return None, err


def _at_step(claim: Claim, df: pd.DataFrame, seeds: list,
             pooled_check: tuple[bool | None, str] | None = None) -> tuple[bool, int, str, list]:
    """(rule verdict, seeds passing, pooled measured string, seeds that pass)
    on the rows ``df`` (already truncated to a step); ``pooled_check`` is
    ``_check(claim, df)`` when the caller has it already."""
    pooled, measured = pooled_check or _check(claim, df)
    pooled = bool(pooled)
    if claim.rule == "pooled":
        return pooled, len(seeds) if pooled else 0, measured, list(seeds) if pooled else []
    passing = [s for s in seeds if _check(claim, df[df["seed"] == s])[0]]
    return _rule(claim, len(passing), len(seeds)), len(passing), measured, passing


def _rule(claim: Claim, k: int, n: int) -> bool:
    """The claim's rule on k of n seeds passing (``pooled`` claims count all or none)."""
    return k == n if claim.rule in ("all", "pooled") else k > n / 2


def _history(claim: Claim, df: pd.DataFrame, seeds: list, steps: list,
             shared: dict | None = None) -> list[tuple[int, float, bool]]:
    """(step, fraction of seeds passing, rule verdict) at each of ``steps`` but
    the last, judged on the rows up to that step: the pooled rows for a
    ``pooled`` rule, else each seed's rows. The table is split by seed once
    (not re-filtered at every step), only the rows the rule reads are judged
    (a seed-wise rule never judges the pooled rows before the last step, whose
    verdict it does not use), and a seed whose rows did not change since the
    step before keeps its verdict. A claim on run end states
    (``Claim.end_states``) is judged on the end states of the rows up to the
    step, one with ``Claim.over_steps`` from one pass over its rows
    (``aninfonce.cuts``). ``shared``: the tables shared with the claims
    reading the same rows."""
    names = [None] if claim.rule == "pooled" else seeds
    if shared is None:
        tables = [df if name is None else df[df["seed"] == name] for name in names]
    else:  # each seed's rows split once for every claim that shares them
        for name in names:
            if ("seed", name) not in shared:
                shared[("seed", name)] = df if name is None else df[df["seed"] == name]
        tables = [shared[("seed", name)] for name in names]
    judges = [_over_steps(claim, table) for table in tables] if claim.over_steps is not None else None
    kind = "changed" if judges else "ends" if claim.end_states else "rows"
    passed = [False] * len(tables)
    out = []
    for s, cuts in step_cuts(steps, tables, kind, shared, names):
        for i, cut in enumerate(cuts):
            if cut is None:
                continue
            if judges and judges[i] is not None:
                passed[i] = bool(_judge(lambda: judges[i](s))[0])
            else:  # the rows themselves (also where the one pass failed: each step then says why)
                cut = cut if kind != "changed" else tables[i][tables[i]["step"] <= s]
                passed[i] = bool(_check(claim, cut)[0])
        k = (len(seeds) if passed[0] else 0) if claim.rule == "pooled" else sum(passed)
        out.append((int(s), k / len(seeds), _rule(claim, k, len(seeds))))
    return out


def _over_steps(claim: Claim, table: pd.DataFrame) -> Callable[[float], ClaimResult] | None:
    """``claim.over_steps(table)``, or None where that pass fails (its rows
    are then judged step by step, as the check alone would)."""
    return _quietly(lambda: claim.over_steps(table))[0]


def evaluate_claim(exp_id: str, claim: Claim, df: pd.DataFrame, judged_steps: str = "every",
                   shared: dict | None = None) -> Verdict:
    """The claim's verdict on ``df``, re-judged at every logged step (or, with
    ``judged_steps="final"``, at the last one only) for its history;
    ``shared``: the cuts of ``df`` the claims reading the same rows share."""
    base = dict(experiment=exp_id, claim=claim.id, text=claim.text, rule=claim.rule, short=claim.short)
    if df.empty:
        return Verdict(**base, status="NO DATA", measured="no results")
    final = _check(claim, df)
    if final[0] is None:  # the rows it needs are not there: no verdict
        return Verdict(**base, status="NO DATA", measured=final[1])
    seeds = sorted(pd.to_numeric(df["seed"]).unique().tolist())
    steps = sorted(pd.to_numeric(df["step"]).dropna().unique().tolist())
    if judged_steps == "final":
        steps = steps[-1:]
    history = _history(claim, df, seeds, steps[:-1], shared)
    ok, k, measured, passing = _at_step(claim, df, seeds, final)
    history.append((int(steps[-1]), k / len(seeds), ok))
    since = history[-1][0]
    for step, _, v in reversed(history):
        if v != ok:
            break
        since = step
    last = history[-1][0]
    # settled: neither the verdict nor the number of seeds that pass changed in the
    # last fifth (seeds still crossing over mean the verdict can still flip)
    seeds_moved = max((s for (s, f, _), (_, f_prev, _) in zip(history[1:], history) if f != f_prev), default=0)
    settled = len(history) == 1 or max(since, seeds_moved) <= SETTLED_FRACTION * last
    if claim.rule != "pooled" and len(seeds) > 1:
        measured += f" — seeds passing: {', '.join(map(str, passing)) or 'none'} of {', '.join(map(str, seeds))}"
    status = ("PASS" if ok else "FAIL") if settled else "NOT SETTLED"
    return Verdict(**base, status=status, measured=measured, seeds_passed=k, n_seeds=len(seeds), since_step=since,
                   last_step=last, history=tuple(history))


def complete_seeds(exp: Analysis, df: pd.DataFrame, profile: str, speed: str = "exact") -> tuple[list[int], str]:
    """(seeds whose every grid run is in ``df``, a note naming the seeds left
    out with how many of their runs are there)."""
    if df.empty:
        return [], ""
    n = int(pd.to_numeric(df["seed"]).max()) + 1
    want: dict[int, set[str]] = {}
    for spec in exp.grid(profile, n, speed):
        want.setdefault(int(spec.seed), set()).add(spec.key)
    have = run_keys(df)
    complete = sorted(s for s, keys in want.items() if keys <= have)
    partial = {s: (len(keys & have), len(keys)) for s, keys in want.items() if keys & have and not keys <= have}
    note = "; ".join(f"seed {s}: {k} of {m} runs" for s, (k, m) in sorted(partial.items()))
    return complete, note


def shown_rows(exp: Analysis, df: pd.DataFrame, profile: str, speed: str = "exact") -> tuple[pd.DataFrame, str]:
    """The rows the figures and the report's tables draw, with a note naming
    what they leave out: the seeds the claims are judged on (whole grids),
    so that no figure shows a seed its verdicts do not read. While no seed is
    complete they draw every row there is, a view of the first seed's
    progress, and the note says so."""
    if not exp.judge_whole_grids or df.empty:
        return df, ""
    complete, note = complete_seeds(exp, df, profile, speed)
    if not note:
        return df, ""
    if not complete:
        return df, f"no seed has its whole grid yet ({note}): drawn as far as it has run; no claim judged"
    return df[pd.to_numeric(df["seed"]).isin(complete)], f"left out until complete: {note}"


def judged_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as the claims read it: without the provenance columns (how,
    where and when a run was made: no claim compares them) and with each text
    column a categorical (its text stored once per distinct value). The same
    rows and values; a selection then copies codes instead of some 40 columns
    of text, and a comparison or grouping on run key or metric compares
    codes."""
    view = df.drop(columns=[c for c in (*PROVENANCE_COLUMNS, "python") if c in df.columns])
    # copy(): the numeric columns of one dtype become one block, so a selection takes them in one pass
    return view.astype({c: "category" for c in view.columns if pd.api.types.is_string_dtype(view[c].dtype)}).copy()


def evaluate_claims(experiments: list[Analysis], frames: dict[str, pd.DataFrame], profile: str,
                    speed: str = "exact") -> list[Verdict]:
    out = []
    for exp in experiments:
        df = judged_table(frames[exp.id])
        note = ""
        if exp.judge_whole_grids and not df.empty:
            complete, note = complete_seeds(exp, df, profile, speed)
            df = df[pd.to_numeric(df["seed"]).isin(complete)]
        why_unsettled: dict[frozenset | None, str] = {}
        # claims reading the same whole runs read one table, cut once at each step for all of them
        same_read: dict[frozenset, tuple[pd.DataFrame, dict]] = {}
        for claim in exp.claims:
            if profile not in claim.profiles:
                continue
            if df.empty and note:
                out.append(Verdict(experiment=exp.id, claim=claim.id, text=claim.text, rule=claim.rule,
                                   short=claim.short, status="NO DATA", measured=f"no seed has its whole grid yet ({note})"))
                continue
            read = claim.reads(df) if claim.reads is not None and not df.empty else df
            # claims reading the same whole runs share one settle test (the rows are the same)
            same_rows = claim.reads is None or df.empty or getattr(claim.reads, "whole_runs", False)
            key = frozenset(run_keys(read)) if same_rows and not read.empty else None
            if key is None or key not in why_unsettled:
                why_unsettled[key] = "; ".join(why for _, why in breaches(exp, read))
            unsettled = why_unsettled[key]
            shared = None
            if key is not None:
                read, shared = same_read.setdefault(key, (read, {}))
            v = evaluate_claim(exp.id, claim, read, claim.judged_steps or exp.judged_steps, shared)
            if unsettled and v.status in ("PASS", "FAIL"):
                v = dataclasses.replace(v, status="NOT SETTLED",
                                        measured=f"{v.measured} [training not settled: {unsettled}]")
            if note:
                v = dataclasses.replace(v, measured=f"{v.measured} [left out until complete: {note}]")
            out.append(v)
    return out


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    return {s: sum(v.status == s for v in verdicts) for s in STATUSES}


def summary(verdicts: list[Verdict]) -> str:
    c = counts(verdicts)
    return ", ".join(f"{n} {s}" for s, n in c.items())


def verdict_table(verdicts: list[Verdict]) -> str:
    rows = []
    for v in verdicts:
        fin = "" if v.status != "NOT SETTLED" else f" (now {'PASS' if v.final else 'FAIL'})"
        rows.append([f"**{v.status}**{fin}", f"`{v.claim}`", v.text, f"{v.seeds()} ({v.rule})", v.since(), v.measured])
    return markdown(rows, ["verdict", "claim", "statement", "seeds (rule)", "holds since step", "measured (last step)"])


def verdict_grid(rows: list[Verdict]) -> tuple[list[int], np.ndarray, list[tuple[int, int]]]:
    """(the union of the claims' judged steps, fraction of seeds passing per claim and step, (column, row)
    of each step where the claim's rule passes). A claim judged at fewer steps than the others (one
    reading runs evaluated less often) keeps its colour from one of its steps to the next; before its
    first judged step it has none."""
    steps = sorted({s for v in rows for s, _, _ in v.history})
    col = {s: j for j, s in enumerate(steps)}
    frac = np.full((len(rows), len(steps)), np.nan)
    dots = []
    for i, v in enumerate(rows):
        for s, f, ok in v.history:
            frac[i, col[s]] = f
            if ok:
                dots.append((col[s], i))
        judged = np.flatnonzero(~np.isnan(frac[i]))
        frac[i, judged[0]:judged[-1] + 1] = pd.Series(frac[i, judged[0]:judged[-1] + 1]).ffill().to_numpy()
    return steps, frac, dots


def plot_verdicts(verdicts: list[Verdict], out: Path, name: str, title: str = "", caption: str = "") -> list[Path]:
    """One row per claim, labelled by its short statement and verdict, one
    column per logged step: the fraction of seeds that pass (colour) and the
    rule's verdict (a dot where it passes); ``caption``: plots.run_caption."""
    import matplotlib.pyplot as plt

    from .plots import save

    rows = [v for v in verdicts if v.history]
    if not rows:
        return []
    steps, frac, dots = verdict_grid(rows)
    # at least 4 x 2.2 in: an entry judged once, or with two claims, still has room for its colour key
    fig, ax = plt.subplots(figsize=(min(max(2 + 0.22 * len(steps), 4), 14), max(0.8 + 0.32 * len(rows), 2.2)))
    im = ax.imshow(frac, aspect="auto", cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
    if dots:
        xs, ys = zip(*dots)
        ax.scatter(xs, ys, s=6, color="k")
    stride = max(1, len(steps) // 12)
    ax.set_xticks(range(0, len(steps), stride), [f"{steps[j]:,}" for j in range(0, len(steps), stride)],
                  rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{v.statement} [{v.status}]" for v in rows], fontsize=7)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    if len(steps) > 1:
        ax.axvline(next((j for j, s in enumerate(steps) if s > SETTLED_FRACTION * steps[-1]), len(steps)) - 0.5,
                   color="k", lw=0.8, ls=":")
        ax.set_xlabel("logged step (dotted: start of the last fifth; dot: the claim's rule passes)")
    else:  # an entry judged once, after training (Analysis.judged_steps = "final")
        ax.set_xlabel("the one evaluation, after training (dot: the claim's rule passes)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).set_label("fraction of seeds passing", fontsize=8)
    return save(fig, out, verdicts_name(name), caption)


def verdicts_name(name: str) -> str:
    """The file name (no suffix) of :func:`plot_verdicts`'s figure for ``name``."""
    return f"{name}_verdicts"
