"""Claim verdicts, golden-value regression checks and the paper-vs-reproduced
report. Everything here reads only the results CSVs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import results
from .frames import final_step, indexed_metric
from .plots import setup_style
from .registry import Experiment
from .results import format_seconds
from .rule_changes import RULE_CHANGES
from .verdicts import LAMBDA_RANK_FLOOR, SETTLE_WINDOW, SETTLED_FRACTION, Verdict, evaluate_claims, moving_runs, plot_verdicts, shown_rows, summary, verdict_table  # noqa: F401  (re-exported)

GOLDEN_KEYS = ["experiment", "run_key", "step", "metric", "protocol"]
# smoke numbers are deterministic on one machine; the tolerance absorbs
# float differences between CPUs (different SIMD paths), not code changes
GOLDEN_RTOL, GOLDEN_ATOL = 1e-3, 1e-4


def load_all(experiments: list[Experiment], results_dir: Path, profile: str,
             speed: str = "exact", damaged: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Each experiment's rows, restricted to runs of its current grid: rows of
    a run whose spec is no longer in the registry (a changed grid or default)
    are stale and would silently mix two protocols in one figure. A run file
    that cannot prove itself (cut, garbled or edited since it finished) is
    left out, and recorded in ``damaged`` ('experiment run_key' -> why) when
    given."""
    frames = {}
    for e in experiments:
        df, bad = results.read_runs(results.csv_path(results_dir, profile, e.id))
        if damaged is not None:
            damaged.update({f"{e.id} {key}": why for key, why in bad.items()})
        if bad:
            print(f"note: leaving out {len(bad)} incomplete run(s) of {e.id} ("
                  + "; ".join(f"{k}: {why}" for k, why in bad.items()) + "); rerun the experiment to complete them")
            df = df[~df["run_key"].astype(str).isin(bad)]
        if not df.empty:
            stale = ~df["run_key"].astype(str).isin(e.grid_keys(profile, df, speed))
            if stale.any():
                print(f"note: ignoring {df.loc[stale, 'run_key'].nunique()} stale run(s) in {e.id} "
                      f"(spec no longer in the {profile} grid)")
                df = df[~stale]
        frames[e.id] = df
    return frames


def missing_runs(experiments: list[Experiment], frames: dict[str, pd.DataFrame], profile: str,
                 n_seeds: int = 1) -> list[str]:
    """'experiment run_key' of every run of the first ``n_seeds`` seeds' grids that has no rows."""
    out = []
    for e in experiments:
        have = set(frames.get(e.id, pd.DataFrame({"run_key": []}))["run_key"].astype(str))
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
def profile_timing(frames: dict[str, pd.DataFrame]) -> str:
    lines = ["| experiment | runs | total wall time | median steps/s (wall) | median steps/s (training) | device |",
             "|---|---|---|---|---|---|"]
    for eid, df in frames.items():
        if df.empty:
            continue
        per_run = df.drop_duplicates("run_key")
        medians = [_median(per_run, c) for c in ("steps_per_second", "train_steps_per_second")]
        lines.append(f"| {eid} | {len(per_run)} | {format_seconds(float(per_run['wall_seconds'].sum()))} | "
                     f"{' | '.join(medians)} | {', '.join(sorted(per_run['device'].astype(str).unique()))} |")
    return "\n".join(lines)


def _median(df: pd.DataFrame, column: str) -> str:
    values = pd.to_numeric(df[column], errors="coerce").dropna() if column in df else pd.Series(dtype=float)
    return f"{values.median():.1f}" if len(values) else "–"


def _number(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.1f}"


def per_run_table(frames: dict[str, pd.DataFrame]) -> str:
    """One line per run: what distinguishes it from the other runs of its
    experiment, its wall time and steps/s."""
    lines = ["| experiment | run | spec (fields that vary) | wall | steps/s (wall) | steps/s (training) | commit |",
             "|---|---|---|---|---|---|---|"]
    skip = set(results.CORE_COLUMNS) | set(results.PROVENANCE_COLUMNS) | {"profile", "python"}
    for eid, df in frames.items():
        if df.empty:
            continue
        runs = df.drop_duplicates("run_key")
        varying = [c for c in runs.columns if c not in skip and runs[c].astype(str).nunique() > 1]
        for _, r in runs.iterrows():
            desc = ", ".join(f"{c}={r[c]}" for c in varying) or "–"
            lines.append(f"| {eid} | `{r['run_key']}` | {desc} | {format_seconds(float(r['wall_seconds']))} | "
                         f"{_number(r.get('steps_per_second'))} | {_number(r.get('train_steps_per_second'))} | "
                         f"{r.get('git_commit', '')} |")
    return "\n".join(lines)


def write_report(experiments: list[Experiment], frames: dict[str, pd.DataFrame], verdicts: list[Verdict],
                 figures: dict[str, list[Path]], out: Path, profile: str, speed: str = "exact") -> Path:
    where = f"results/{profile}/" if speed == "exact" else f"results/speed-{speed}/{profile}/"
    flag = "" if speed == "exact" else f" --speed {speed}"
    parts = [
        f"# Paper vs reproduced — profile `{profile}`" + ("" if speed == "exact" else f", speed preset `{speed}`"),
        "",
        "Rusak et al., *InfoNCE: Identifying the Gap Between Theory and Practice* (AISTATS 2025).",
        f"Generated by `python reproduce.py --plot-only --profile {profile}{flag}` from the CSVs in `{where}`.",
        "Source labels: [code] = the authors' public code and logs, [caption] = the paper's captions, "
        "[recon] = reconstructed here.",
        "",
    ]
    if speed != "exact":
        from .speed import PRESETS  # torch, only for a speed preset's report

        settings = ", ".join(f"{k}={v}" for k, v in PRESETS[speed].items())
        parts += [f"> Speed preset `{speed}` ({settings}) on the synthetic runs: other numerics than the default "
                  "(see aninfonce/speed.py), so these rows are kept apart from the default results.", ""]
    if profile == "smoke":
        parts += ["> Smoke profile: a few steps to exercise the plumbing. The numbers mean nothing scientifically; "
                  "they are pinned by golden values for CI.", ""]
    parts += [quick_setting_line(verdicts)] if profile == "quick" else []
    # the settle rules, one phrase per (metric, threshold) and per Lambda^ threshold, naming the entries
    rules = [f"its {'evaluation loss' if m == 'loss_eval' else m} by at most {t:g}"
             for m, t in dict.fromkeys((e.settle_metric, e.settle_tol) for e in experiments if e.settle_metric)]
    by_rel: dict[float, list[str]] = {}
    for e in experiments:
        if e.settle_lambda_rel is not None:
            by_rel.setdefault(e.settle_lambda_rel, []).append(f"`{e.id}`")
    rules += [f"in {' and '.join(ids)} its sorted learned Λ̂ by at most {rel:.0%}" for rel, ids in by_rel.items()]
    if by_rel:
        rules[-1] += f" (each rank against its final value, floored at {LAMBDA_RANK_FLOOR:.0%} of the top rank)"
    settle = (f"every run the claim reads moved {', and '.join(rules)} over its last fifth (the mean over its last "
              f"{SETTLE_WINDOW:.0%} of steps against the mean over the {SETTLE_WINDOW:.0%} ending at "
              f"{SETTLED_FRACTION:.0%}); else NOT SETTLED" if rules
              else "no settle rule in these entries")
    parts += [f"**Claims: {summary(verdicts)}.** Each claim is judged on the seeds whose whole grid has run (a "
              "seed still partly run is left out and named; none complete = NO DATA) and, where the entry says so, on settled "
              f"training ({settle}), per seed (\"k of n\", turned into a "
              "verdict by the rule written beside it: all seeds, a majority, or pooled over seeds) and at every "
              "logged step; it is NOT SETTLED when its verdict, or its count of passing seeds, still changed in the last fifth of training. "
              "Comparisons are made at the printed precision.", ""]
    if profile != "smoke":
        parts += [rule_changes_section(), ""]
    parts += ["## Wall time", "", profile_timing(frames), ""]
    for exp in experiments:
        df, left_out = shown_rows(exp, frames[exp.id], profile, speed)
        parts += [f"## {exp.paper_ref}: {exp.title} (`{exp.id}`, source [{exp.source}])", ""]
        if exp.notes:
            parts += [exp.notes, ""]
        if left_out:
            parts += [f"> Figures and tables of this entry: {left_out}.", ""]
        if exp.recipe is not None:
            parts += ["### Recipe and sources", "", exp.recipe(profile), ""]
        deviations = "" if exp.id == "calibration" else _deviations(exp, profile)
        if deviations:
            parts += [f"> **Not the authors' model or optimiser** in profile `{profile}`: {deviations}. The verdicts "
                      "below are about this setting; see `authors-logs` for the authors' own setting and "
                      "`calibration` for the search for a compressed schedule that stands for it.", ""]
        for p in figures.get(exp.id, []):
            if p.suffix == ".png":
                parts += [f"![{exp.id}]({p.name})", ""]
            elif p.suffix == ".md":
                parts += [p.read_text(), ""]
        mine = [v for v in verdicts if v.experiment == exp.id]
        if df.empty:
            parts += ["_No results for this profile yet._", ""]
            if mine:
                parts += ["### Claims", "", verdict_table(mine), ""]
            continue
        lost = lost_directions(df)
        if lost:
            parts += ["### Lost directions", "", lost, ""]
            moving = moving_runs(df, exp.settle_metric, exp.settle_tol) if exp.settle_metric else {}
            if moving:
                parts += [f"Training has not settled in {len(moving)} of {df['run_key'].nunique()} runs (their "
                          f"{exp.settle_metric} still moved by more than {exp.settle_tol:g} over the last fifth): a dim "
                          "below 0.9 there may still be on its way up, not lost.", ""]
        if exp.reference is not None:
            try:
                parts += ["### Reference numbers beside ours", "", exp.reference(df), ""]
            except (KeyError, IndexError, ValueError) as err:
                parts += [f"_reference table unavailable: {err}_", ""]
        if mine:
            parts += ["### Claims", "", verdict_table(mine), ""]
            for p in figures.get(f"{exp.id}:verdicts", []):
                if p.suffix == ".png":
                    parts += ["Verdict against training step:", "", f"![{exp.id} verdicts]({p.name})", ""]
    parts += ["## Every run", "", "Wall time and speed of each run (the CSVs' provenance columns): steps/s (wall) = steps / wall time, "
              "evaluation included; steps/s (training) = steps / training time, evaluation and checkpoints "
              "excluded ('–' for runs recorded before it was logged). Both cover every part of a resumed run (`resumes` in the CSVs counts its restarts; runs recorded before that counted only their last part).", "",
              per_run_table(frames), ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "REPORT.md"
    path.write_text("\n".join(parts))
    return path


LOST_DIM = 0.9  # a latent dim "lost" by a run that should keep it (the calibration's admission criterion)


def lost_directions(df: pd.DataFrame) -> str:
    """Per AnInfoNCE run at its last step: whether some latent dim has a
    held-out R^2 below LOST_DIM (the lost-direction plateau), with
    the per-dim R^2 of each run that has one. "" for entries without per-dim
    rows. InfoNCE runs are left out: losing style is what the paper says they do."""
    if df.empty or not df["metric"].astype(str).str.startswith("r2/").any():
        return ""
    sel = df[df["loss"] == "aninfonce"] if "loss" in df else df
    last = final_step(sel)
    dims = indexed_metric(last[last["protocol"] == "held-out"], "r2")
    if dims.empty:
        return ""
    table = dims.pivot_table(index="run_key", columns="dim", values="value").round(2)  # judged as printed
    lost = table[(table < LOST_DIM).any(axis=1)]
    head = (f"Lost directions (per-dim held-out R² < {LOST_DIM} at the last step) in AnInfoNCE runs: "
            f"**{len(lost)} of {len(table)}**.")
    if lost.empty:
        return head
    varying = [c for c in ("lam2", "lambda_kind", "hard_beta", "d", "kappa", "batch", "terms_used", "seed")
               if c in sel and sel[c].astype(str).nunique() > 1]
    spec = sel.drop_duplicates("run_key").set_index("run_key")
    if varying:  # rows in the order of the grid's variables, seeds last (not in run-key order)
        def grid_order(key):  # numbers by value, anything else (e.g. an ensemble's term list) as text
            vals = [spec.at[key, c] for c in varying]
            nums = [pd.to_numeric(v, errors="coerce") for v in vals]
            return tuple((0, n, "") if pd.notna(n) else (1, 0.0, str(v)) for n, v in zip(nums, vals))
        lost = lost.loc[sorted(lost.index, key=grid_order)]
    lines = [head, "", "| run | " + " | ".join(f"R² dim {d}" for d in table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]
    # an isotropic Lambda = lam2 * I (fig4) is a concentration kappa: named as the entry's text names it
    isotropic = "lambda_kind" in spec and (spec["lambda_kind"].astype(str) == "isotropic").all()
    label = {"lam2": "κ"} if isotropic else {}
    for key, row in lost.iterrows():
        name = ", ".join(f"{label.get(c, c)}={spec.at[key, c]}" for c in varying) or key
        cells = ("–" if pd.isna(v) else f"**{v:.2f}**" if v < LOST_DIM else f"{v:.2f}" for v in row)  # –: no such dim
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rule_changes_section() -> str:
    """The log of rules changed after the data they judge (aninfonce.rule_changes)."""
    lines = ["## Rule changes after data", "",
             "Every margin, tolerance, settle or judging rule changed after results it judges were committed, "
             "with the verdicts it changed under the old and the new rule. A rule stated before its runs is not "
             "listed.", ""]
    for c in RULE_CHANGES:
        lines += [f"### `{c.id}` ({c.when})", "", f"- Old rule: {c.old}.", f"- New rule: {c.new}.", f"- Why: {c.why}."]
        if c.unchanged:
            lines.append(f"- Otherwise: {c.unchanged}")
        if c.verdicts:
            lines += ["", "| claim | under the old rule | under the new rule |", "|---|---|---|"]
            lines += [f"| `{claim}` | {old} | {new} |" for claim, old, new in c.verdicts]
        lines.append("")
    return "\n".join(lines).rstrip()


def quick_setting_line(verdicts: list[Verdict]) -> str:
    """What the quick synthetic runs are, from the calibration entry's verdicts
    (``calibration.admission``: admitted, or admitted without MCC)."""
    from .experiments.calibration import admission

    statuses = {v.claim: v.status for v in verdicts if v.experiment == "calibration"}
    outcome = admission(statuses) if statuses else {}
    full = [c for c, a in outcome.items() if a == "admitted"]
    partial = [c for c, a in outcome.items() if a == "admitted without MCC"]
    if full:
        return (f"**Quick setting:** the calibrated schedule `{full[0]}` (admitted by `calibration`); "
                "the synthetic entries that use it say so below.\n")
    if partial:
        return (f"**Quick setting:** the calibrated schedule `{partial[0]}` is admitted without MCC by `calibration` "
                "(for the claims that read no MCC); the synthetic entries that use it say so below, the others run "
                "the authors' own model and optimiser for 10k of their ~100k steps.\n")
    return ("**Quick setting:** no time-compressed schedule was admitted by `calibration` "
            f"({len(outcome)} candidates, see that entry), so every synthetic quick run uses the "
            "authors' own model and optimiser, shortened to 10k of their ~100k steps: its verdicts say where "
            "training stands at 10k steps (NOT SETTLED while the loss still moves), not where it converges.\n")


def _deviations(exp: Experiment, profile: str) -> str:
    """The model / optimiser fields in which an entry's runs of ``profile``
    differ from the authors' (synthetic entries only; "" when none do)."""
    from .trainers.synthetic import SyntheticSpec, deviations_from_authors

    if profile == "smoke":
        return ""
    found: list[str] = []
    for spec in exp.runs(profile, 1):
        if isinstance(spec, SyntheticSpec):
            found += [d for d in deviations_from_authors(spec) if d not in found and d.split()[0] not in exp.swept]
    return "; ".join(found)


def make_figures(experiments: list[Experiment], frames: dict[str, pd.DataFrame], out: Path, profile: str,
                 verdicts: list[Verdict] = (), speed: str = "exact") -> dict[str, list[Path]]:
    """Each experiment's figures, plus (key ``<id>:verdicts``) its
    verdict-against-step figure where it has claims with data. The figures
    draw the seeds the claims read (``shown_rows``)."""
    setup_style()
    figures = {}
    for exp in experiments:
        df, note = shown_rows(exp, frames[exp.id], profile, speed)
        if note:
            print(f"note: {exp.id} figures: {note}")
        figures[exp.id] = exp.plot(df, out, profile)
    for exp in experiments:
        mine = [v for v in verdicts if v.experiment == exp.id and v.history]
        if mine:
            figures[f"{exp.id}:verdicts"] = plot_verdicts(mine, out, exp.id.replace("-", "_"))
    return figures
