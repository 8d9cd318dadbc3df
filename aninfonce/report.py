"""Claim verdicts, golden-value regression checks and the paper-vs-reproduced
report. Everything here reads only the results CSVs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import results
from .frames import of_runs, run_keys
from .plots import Drawing, run_caption, setup_style
from . import manifest
from .registry import Analysis
from .report_sections import (  # noqa: F401  (the section helpers, re-exported)
    SECTIONS,
    ReportInputs,
    Section,
    headline,
    paper_notation,
    per_run_table,
    profile_timing,
    rule_changes_section,
    table_of_contents,
    title,
)
from .verdicts import (  # noqa: F401  (re-exported)
    Verdict, evaluate_claims, plot_verdicts, shown_rows, summary, verdict_table, verdicts_name,
)

GOLDEN_KEYS = ["experiment", "run_key", "step", "metric", "protocol"]
# smoke numbers are deterministic on one machine; the tolerance absorbs
# float differences between CPUs (different SIMD paths), not code changes
GOLDEN_RTOL, GOLDEN_ATOL = 1e-3, 1e-4


def load_all(experiments: list[Analysis], results_dir: Path, profile: str,
             speed: str = "exact", damaged: dict[str, str] | None = None,
             stale: dict[str, int] | None = None) -> dict[str, pd.DataFrame]:
    """Each experiment's rows, restricted to the runs of its plan (an analysis
    bound to its manifest; a study: its current grid): rows of a run the plan
    does not list (a changed grid or default) are stale and would silently mix
    two protocols in one figure; they are left out quietly (``--dry-run``
    counts them) and counted in ``stale`` (experiment -> runs) when given, and
    seeds beyond the manifest are named in a note (``manifest.beyond``). A run file that cannot prove itself (cut,
    garbled or edited since it finished) is left out and recorded in
    ``damaged`` ('experiment run_key' -> why) when given, else said."""
    frames = {}
    for e in experiments:
        df, bad = results.read_runs(results.csv_path(results_dir, profile, e.id))
        if damaged is not None:
            damaged.update({f"{e.id} {key}": why for key, why in bad.items()})
        if bad and damaged is None:  # a caller that takes ``damaged`` names them itself
            print(f"note: leaving out {len(bad)} incomplete run(s) of {e.id} ("
                  + "; ".join(f"{k}: {why}" for k, why in bad.items()) + "); rerun the experiment to complete them")
        if bad:
            df = df[~of_runs(df, bad)]
        beyond = manifest.beyond(getattr(e, "plan", None), df)
        if beyond:
            print(f"note: {e.id} has runs of seed(s) {', '.join(map(str, beyond))}, which its manifest does not list; "
                  f"left out as stale until `python reproduce.py {e.id} --profile {profile} --seeds {beyond[-1] + 1} "
                  "--dry-run` plans them")
        if not df.empty:
            old = ~of_runs(df, e.grid_keys(profile, df, speed))
            if old.any():
                if stale is not None:
                    stale[e.id] = df.loc[old, "run_key"].nunique()
                df = df[~old]
        frames[e.id] = df
    return frames


def stale_runs(experiments: list[Analysis], results_dir: Path, profile: str, speed: str = "exact") -> dict[str, int]:
    """Experiment id -> how many of its stored runs are stale (their spec is no longer in the grid)."""
    counts: dict[str, int] = {}
    load_all(experiments, results_dir, profile, speed, damaged={}, stale=counts)
    return counts


def missing_runs(experiments: list[Analysis], frames: dict[str, pd.DataFrame], profile: str,
                 n_seeds: int = 1) -> list[str]:
    """'experiment run_key' of every planned run that has no rows (an analysis: every run its manifest
    lists, or the entry itself when it has none; a study: the first ``n_seeds`` seeds' grid)."""
    out = []
    for e in experiments:
        if isinstance(e, Analysis) and e.plan is None:
            out.append(f"{e.id} (never planned: no {e.id}.plan.json)")
            continue
        have = run_keys(frames.get(e.id, pd.DataFrame({"run_key": []})))
        out += [f"{e.id} {s.key}" for s in e.grid(profile, n_seeds) if s.key not in have]
    return out


# ---------------------------------------------------------------- goldens
def golden_path(results_dir: Path, profile: str) -> Path:
    return Path(results_dir) / "golden" / f"{profile}.csv"


def _golden_view(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    parts = [df[GOLDEN_KEYS + ["value"]] for df in frames.values() if not df.empty]
    if not parts:
        return pd.DataFrame(columns=GOLDEN_KEYS + ["value"])
    df = pd.concat(parts, ignore_index=True)
    df["protocol"] = df["protocol"].fillna("")
    df["run_key"] = df["run_key"].astype(str)
    return df.sort_values(GOLDEN_KEYS).reset_index(drop=True)


def write_golden(frames: dict[str, pd.DataFrame], path: Path) -> int:
    df = _golden_view(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    results.write_atomic(df, path)
    return len(df)


# Sanity ranges for experiments with golden="sanity" (tiny image runs): on
# another CPU family (AMD EPYC vs Intel) their smoke numbers move far beyond
# float tolerance -- one of 32 test images flips linear_top1 from 0.875 to
# 0.844, an augmentation R^2 goes from -0.25 to 0.24 -- because a 2-step
# training run on 64 images is chaotic. Their configuration values stay exact.
SANITY_EXACT = ("lr", "eval_images")
SANITY_RANGES = {"linear_top1": (0, 1), "knn_top1": (0, 1), "aug_acc": (0, 1), "aug_majority": (0, 1),
                 "aug_r2": (-np.inf, 1), "aug_r2_mean": (-np.inf, 1), "lambda_hat_sorted": (0, np.inf),
                 "loss_train": (0, np.inf)}


def _sane(metric: str, golden: float, now: float) -> bool:
    name = metric.split("/")[0]
    if name in SANITY_EXACT:
        return bool(np.isclose(golden, now, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL))
    if math.isnan(golden) or math.isnan(now):
        return math.isnan(golden) and math.isnan(now)
    lo, hi = SANITY_RANGES.get(name, (-np.inf, np.inf))
    return lo <= now <= hi and math.isfinite(now) == math.isfinite(golden)


def compare_golden(frames: dict[str, pd.DataFrame], path: Path, sanity: frozenset[str] = frozenset()) -> list[str]:
    """Every metric that moved beyond float tolerance, or appeared / vanished,
    for the experiments in ``frames``; for the experiments in ``sanity`` a
    value only has to be sane (:data:`SANITY_RANGES`). Empty list = all match."""
    if not path.exists():
        return [f"no golden file at {path}; create it with --update-golden"]
    gold = results.load(path, required=tuple(GOLDEN_KEYS) + ("value",))
    gold["protocol"] = gold["protocol"].fillna("")
    gold["run_key"] = gold["run_key"].astype(str)
    gold = gold[gold["experiment"].isin(list(frames))]
    new = _golden_view(frames)
    merged = gold.merge(new, on=GOLDEN_KEYS, how="outer", suffixes=("_golden", "_now"), indicator=True)
    problems = []
    for _, r in merged.iterrows():
        where = f"{r['experiment']} run {r['run_key']} step {r['step']} {r['metric']}" + (f" [{r['protocol']}]" if r["protocol"] else "")
        if r["_merge"] == "left_only":
            problems.append(f"{where}: in the golden file but not produced now")
        elif r["_merge"] == "right_only":
            problems.append(f"{where}: produced now but not in the golden file")
        else:
            a, b = float(r["value_golden"]), float(r["value_now"])
            if r["experiment"] in sanity:
                if not _sane(r["metric"], a, b):
                    problems.append(f"{where}: golden {a:.6g}, now {b:.6g}, outside its sanity range")
            elif not (np.isclose(a, b, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL) or (math.isnan(a) and math.isnan(b))):
                problems.append(f"{where}: golden {a:.6g}, now {b:.6g}")
    return problems


# ---------------------------------------------------------------- report
def write_report(experiments: list[Analysis], frames: dict[str, pd.DataFrame], verdicts: list[Verdict],
                 figures: dict[str, list[Path]], out: Path, profile: str, speed: str = "exact",
                 sections: Sequence[Section] = SECTIONS, paper: list[Verdict] | None = None,
                 paper_results: str = "results/paper", written: dict[str, str] | None = None) -> Path:
    """REPORT.md: the title, the headline (what reproduces, what does not, what is undecided), a table of
    contents, then each of ``sections`` in turn, in the paper's notation (``paper_notation``); ``written``:
    the entries' sections written already (``report_sections.entry``; experiment id -> its text)."""
    inputs = ReportInputs(list(experiments), frames, list(verdicts), figures, profile, speed, paper, paper_results,
                          written or {})
    body = "\n".join(part for part in (section(inputs) for section in sections) if part)
    text = "\n".join([title(inputs), headline(inputs), table_of_contents(body), body])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "REPORT.md"
    path.write_text(paper_notation(text))
    return path


def paper_verdicts(experiments: list[Analysis], results_dir: Path, speed: str = "exact") -> list[Verdict] | None:
    """The paper profile's verdicts from ``results_dir``/paper, for the quick
    report's comparison; None when there are no paper results."""
    folder = Path(results_dir) / "paper"
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        return None
    experiments = manifest.bind(experiments, results_dir, "paper")
    return evaluate_claims(experiments, load_all(experiments, Path(results_dir), "paper", speed), "paper", speed)


def entry_figures(experiments: list[Analysis], frames: dict[str, pd.DataFrame], out: Path, profile: str,
                  drawing: Drawing, speed: str = "exact", results_dir: Path | None = None) -> tuple[dict, dict]:
    """({experiment id: the future of its figures' paths}, {experiment id: (the rows they draw, the note on
    what those leave out)}), each figure handed to ``drawing``. The figures draw the seeds the claims read
    (``shown_rows``), and the files its runs wrote beside their rows (each entry's run folder in
    ``results_dir``); they need no verdict, so they can be drawn while the claims are judged."""
    setup_style()
    pending, shown = {}, {}
    for exp in experiments:
        df, note = shown[exp.id] = shown_rows(exp, frames[exp.id], profile, speed)
        if note:
            print(f"note: {exp.id} figures: {note}")
        runs = results.run_dir(results.csv_path(results_dir, profile, exp.id)) if results_dir is not None else None
        pending[exp.id] = drawing.submit(exp.plot, df, out, profile, runs)
    return pending, shown


def verdict_figure(exp: Analysis, shown: dict, verdicts: list[Verdict], out: Path, profile: str) -> tuple | None:
    """The arguments of ``plot_verdicts`` for ``exp``'s claims over training (verdicts, out, name, title,
    caption; its files: ``plots.figure_paths(out, verdicts_name(name))``), None where none of its claims has
    data; ``shown``: :func:`entry_figures`' rows, which its caption describes."""
    mine = [v for v in verdicts if v.experiment == exp.id and v.history]
    if not mine:
        return None
    caption = run_caption("Colour: the fraction of seeds for which each claim holds at each logged step; dot: "
                          "the claim's rule passes there; [brackets]: its verdict", shown[exp.id][0], profile)
    return mine, out, exp.id.replace("-", "_"), f"{exp.paper_ref} ({exp.id}): claims over training", caption
