"""The authors' two logged runs, rerun at their exact setting (issue 10).

`reference/authors-logs.csv` holds every row the authors' two committed
training logs printed, every 250 steps [code]. This entry trains the same
setting with 3 seeds -- their encoder, optimiser, batch, loss form and
evaluation -- and holds our trajectory against theirs step by step. `quick`
stops at 10k steps (about 30 min a run on one CPU core), `paper` at the
length of their logs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import claims as C
from ..claims import KEPT
from ..frames import indexed_metric, metric
from ..metrics import SAME_SAMPLE
from ..plots import LOSS_COLORS, no_data, save
from ..reference import COLUMNS, authors_series
from ..registry import Claim, ClaimResult, Experiment, register
from ..trainers.synthetic import AUTHORS_SETTING, SyntheticSpec, train_synthetic
from .fig2 import BLOCK_LEAK, MINIMUM_TOLERANCE, block_orthogonal, linear_mcc, linear_ordering, reaches_minimum

# [code] the authors' setting: README runs 1 and 2 of brendel-group/AnInfoNCE
SETTINGS = {"bimodal-25-5": "bimodal", "linear-5-25": "linear"}
AUTHORS = dict(loss="aninfonce", lam1=5.0, lam2=25.0, eval_samples=4096, authors_quirk=True, **AUTHORS_SETTING)
# steps per profile and setting: paper = the length of the authors' logs
STEPS = {"paper": {"bimodal-25-5": 118_250, "linear-5-25": 102_250},
         "quick": {"bimodal-25-5": 10_000, "linear-5-25": 10_000},
         "smoke": {"bimodal-25-5": 40, "linear-5-25": 40}}
SMOKE = dict(batch=64, widths=(2, 2), eval_samples=512, mixing_draws=500)


def setting_of(lambda_kind: str) -> str:
    return {v: k for k, v in SETTINGS.items()}[lambda_kind]


def runs(profile: str, n_seeds: int) -> list[SyntheticSpec]:
    """Every 250 steps an evaluation, as in the logs. ``fast`` (fused Adam and
    the fused form of the authors' loss) is the numerics of these runs."""
    extra = SMOKE if profile == "smoke" else {}
    cadence = 20 if profile == "smoke" else 250
    return [SyntheticSpec(experiment="authors-logs", lambda_kind=kind, steps=STEPS[profile][name],
                          eval_every=cadence, seed=seed, fast=True, **{**AUTHORS, **extra})
            for seed in range(max(n_seeds, 1 if profile == "smoke" else 3)) for name, kind in SETTINGS.items()]


# ---------------------------------------------------------------- trajectories
# Tolerances of the trajectory claims, stated with issue 10 before any of these
# runs had finished. The authors' run is one unseeded draw (mixing g,
# initialisation, data); three seeds of ours span only part of the spread of
# such draws, so the band is our seeds' range widened by:
TOLERANCE = {
    "loss_train": 0.05,  # nats, ~1 % of the loss; a 250-step mean has sampling noise < 0.01
    "r2_all": 0.02,  # R^2 on 4096 samples; runs rise at different steps between 2k and 10k
    "mcc": 0.03,  # the MCC tolerance of the calibration criterion (issue 10)
    "lambda_hat": 0.10,  # relative, per sorted rank: the calibration's Lambda^ criterion
}
FROM_STEP = 2000  # before it every run is in its first transient [issue 10]
# decimals of the log: the comparison is made at the precision both sides are known to
PLACES = {"loss_train": 4, "r2_all": 4, "mcc": 4, "lambda_hat": 1}
LABELS = {"loss_train": "loss (mean of 250 steps)", "r2_all": "R² (all dims, same sample)", "mcc": "MCC",
          "lambda_hat": "learned Λ̂ (sorted)"}


def our_trajectory(df: pd.DataFrame, kind: str, metric_name: str) -> pd.DataFrame:
    """Step x seed for a scalar metric; step x (rank, seed) for the sorted
    Lambda^. R^2 under the authors' protocol (same sample)."""
    sel = df[df["lambda_kind"] == kind]
    if metric_name == "lambda_hat":
        lam = indexed_metric(sel, "lambda_hat").sort_values(["seed", "step", "value"])
        lam["rank"] = lam.groupby(["seed", "step"]).cumcount()
        return lam.pivot_table(index="step", columns=["rank", "seed"], values="value")
    rows = metric(sel, metric_name, SAME_SAMPLE if metric_name.startswith("r2") else None)
    return rows.pivot_table(index="step", columns="seed", values="value")


def _band(ours: pd.Series, name: str) -> tuple[float, float]:
    lo, hi = float(ours.min()), float(ours.max())
    tol = TOLERANCE[name]
    return (lo / (1 + tol), hi * (1 + tol)) if name == "lambda_hat" else (lo - tol, hi + tol)


def trajectory_check(setting: str, name: str):
    """The authors' value at every matched step from FROM_STEP on lies in our
    seeds' range widened by TOLERANCE[name] (for Lambda^: every sorted rank)."""
    def check(df: pd.DataFrame) -> ClaimResult:
        theirs = authors_series(setting)
        ours = our_trajectory(df, SETTINGS[setting], name)
        steps = [s for s in ours.index if s >= FROM_STEP and s in theirs.index]
        if not steps:
            return ClaimResult(False, f"no matched step from {FROM_STEP:,} on yet")
        misses = []
        for s in steps:
            if name == "lambda_hat":
                a = theirs.at[s, "lambda_sorted"]
                out = [r for r in range(len(a)) if not C.within(a[r], *_band(ours.loc[s, r], name), PLACES[name])]
                if out:
                    r = out[0]
                    lo, hi = ours.loc[s, r].min(), ours.loc[s, r].max()
                    misses.append(f"step {s:,} rank {r}: authors {a[r]:.1f}, ours {lo:.1f}-{hi:.1f}")
            else:
                a = float(theirs.at[s, COLUMNS[name]])
                if not C.within(a, *_band(ours.loc[s], name), PLACES[name]):
                    misses.append(f"step {s:,}: authors {a:.4f}, ours {ours.loc[s].min():.4f}-{ours.loc[s].max():.4f}")
        n_in = len(steps) - len(misses)
        text = (f"{n_in} of {len(steps)} matched steps ({steps[0]:,}-{steps[-1]:,}) inside our {ours.columns.get_level_values(-1).nunique()} "
                f"seeds' range ± {TOLERANCE[name]:g}{' (relative)' if name == 'lambda_hat' else ''}")
        if misses:
            text += "; first outside: " + "; ".join(misses[:2])
        return ClaimResult(not misses, text)
    return check


def _on(kind: str, check):
    return lambda df: check(C.select(df, lambda_kind=kind))


CLAIMS = (
    *(Claim(f"authors-logs.{setting}.{name}",
            f"{setting}: the authors' {LABELS[name]} at every matched step from {FROM_STEP:,} on lies within our seeds' "
            f"range ± {TOLERANCE[name]:g}{' (relative, per rank)' if name == 'lambda_hat' else ''}",
            trajectory_check(setting, name), rule="pooled")
      for setting in SETTINGS for name in TOLERANCE),
    Claim("authors-logs.bimodal-25-5.block-orthogonal",
          f"bimodal-25-5: each block from its own matched dims (R^2 >= {KEPT}), not from the other's "
          f"(<= {BLOCK_LEAK}), MCC <= 0.85 (authors at 118k: MCC 0.684)", _on("bimodal", block_orthogonal)),
    Claim("authors-logs.bimodal-25-5.reaches-minimum",
          f"bimodal-25-5: the loss ends within {MINIMUM_TOLERANCE} of the ground-truth minimum (authors' log: 4.37 at 118k, "
          "4.77 at 10k)", _on("bimodal", reaches_minimum)),
    Claim("authors-logs.linear-5-25.mcc", "linear-5-25: all Lambda differ, so MCC >= 0.9 (authors' log: 0.833 at 10k, 0.990 at 102k)",
          _on("linear", linear_mcc)),
    Claim("authors-logs.linear-5-25.ordering", "linear-5-25: learned Lambda^ in the true order (Spearman >= 0.95)",
          _on("linear", linear_ordering)),
)


# ---------------------------------------------------------------- figure and table
def plot(df: pd.DataFrame, out: Path, profile: str) -> list[Path]:
    """Our trajectory (each seed thin, the mean thick) over the authors' (black)
    for loss, R^2, MCC and the sorted Lambda^, one row per setting."""
    if df.empty:
        return no_data(out, "authors_logs", "no authors-setting runs yet")
    names = list(TOLERANCE)
    fig, axes = plt.subplots(len(SETTINGS), len(names), figsize=(18, 7.5), squeeze=False)
    color = LOSS_COLORS["aninfonce"]
    for i, (setting, kind) in enumerate(SETTINGS.items()):
        theirs = authors_series(setting)
        theirs = theirs[theirs.index > 0]
        for j, name in enumerate(names):
            ax = axes[i, j]
            ours = our_trajectory(df, kind, name)
            ours = ours[ours.index > 0]
            if name == "lambda_hat":
                lam = np.stack(theirs["lambda_sorted"].to_numpy())
                ranks = sorted(ours.columns.get_level_values(0).unique()) if len(ours) else []
                cols = plt.cm.viridis(np.linspace(0, 0.9, lam.shape[1]))
                for r in range(lam.shape[1]):
                    ax.plot(theirs.index, lam[:, r], color="k", lw=0.9)
                for r in ranks:
                    for seed in ours[r].columns:
                        ax.plot(ours.index, ours[r][seed], color=cols[r], lw=0.6, alpha=0.6)
                    ax.plot(ours.index, ours[r].mean(1), color=cols[r], lw=1.6)
            else:
                ax.plot(theirs.index, theirs[COLUMNS[name]], color="k", lw=1.2)
                for seed in ours.columns:
                    ax.plot(ours.index, ours[seed], color=color, lw=0.6, alpha=0.6)
                if len(ours):
                    ax.plot(ours.index, ours.mean(1), color=color, lw=1.8)
            if len(ours):
                ax.axvspan(ours.index.max(), theirs.index.max(), color="0.93", zorder=0)
            ax.axvline(FROM_STEP, color="0.6", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set(xlabel="training step", title=f"{setting}: {LABELS[name]}")
    handles = [plt.Line2D([], [], color="k", lw=1.2, label="authors' log (one unseeded run) [code]"),
               plt.Line2D([], [], color=color, lw=1.8, label="ours, mean over seeds"),
               plt.Line2D([], [], color=color, lw=0.6, label="ours, each seed (Λ̂: colour = rank)")]
    fig.legend(handles=handles, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 1.04))
    fig.suptitle(f"The authors' setting, step by step (profile: {profile}; grey: beyond our last step; "
                 f"dotted: claims judged from step {FROM_STEP:,})", y=1.08)
    fig.tight_layout()
    return save(fig, out, "authors_logs")


def _loss_lag(theirs: pd.DataFrame, ours: pd.DataFrame) -> str:
    """Where our mean loss at our last step sits on the authors' curve: the
    authors' step with the same 250-step mean loss (linear interpolation),
    i.e. how far ahead of or behind their one run ours is."""
    if ours.empty:
        return ""
    last = int(ours.index.max())
    mine = float(ours.loc[last].mean())
    curve = theirs["loss_mean_250"]
    curve = curve[curve.index > 0]
    below = curve[curve <= mine]
    if below.empty:
        return f"our loss {mine:.3f} at {last:,}: below anything the authors logged"
    t1 = int(below.index[0])
    prev = curve[curve.index < t1]
    if prev.empty:
        step = float(t1)
    else:
        t0, l0, l1 = int(prev.index[-1]), float(prev.iloc[-1]), float(curve.loc[t1])
        step = t0 + (t1 - t0) * (l0 - mine) / (l0 - l1)
    return f"loss-matched: our mean at {last:,} = the authors' at ~{step:,.0f} (ratio {last / step:.2f})"


def reference_table(df: pd.DataFrame) -> str:
    """Authors vs ours at matched steps (every 2,000 from FROM_STEP, and our
    last step), then the authors' final row as context."""
    lines = ["| setting | step | loss, authors / ours | R² (all, same sample), authors / ours | MCC, authors / ours | "
             "Λ̂ lowest … highest, authors / ours |", "|---|---|---|---|---|---|"]
    for setting, kind in SETTINGS.items():
        theirs = authors_series(setting)
        ours = {name: our_trajectory(df, kind, name) for name in TOLERANCE}
        if ours["r2_all"].empty:
            continue
        last = int(ours["r2_all"].index.max())
        steps = sorted({s for s in range(FROM_STEP, last + 1, 2000)} | {last})
        for s in [s for s in steps if s in theirs.index and s in ours["r2_all"].index]:
            cells = []
            for name, places in (("loss_train", 3), ("r2_all", 4), ("mcc", 3)):
                o = ours[name].loc[s]
                cells.append(f"{theirs.at[s, COLUMNS[name]]:.{places}f} / {o.mean():.{places}f} "
                             f"({o.min():.{places}f}–{o.max():.{places}f})")
            lam, a = ours["lambda_hat"].loc[s], theirs.at[s, "lambda_sorted"]
            top = lam.xs(lam.index.get_level_values(0).max(), level=0)
            cells.append(f"{a[0]:.1f} … {a[-1]:.1f} / {lam.xs(0, level=0).mean():.1f} … {top.mean():.1f}")
            lines.append(f"| {setting} | {s:,} | " + " | ".join(cells) + " |")
        lag = _loss_lag(theirs, ours["loss_train"])
        if lag:
            lines.append(f"| {setting} | {lag} | | | | |")
        end = theirs.iloc[-1]
        lines.append(f"| {setting} | authors' last, {int(theirs.index[-1]):,} [context] | {end['loss_mean_250']:.3f} | "
                     f"{end['r2_all_same_sample']:.4f} | {end['mcc']:.3f} | {end['lambda_sorted'][0]:.1f} … "
                     f"{end['lambda_sorted'][-1]:.1f} |")
    n = df["seed"].nunique()
    return "\n".join(lines + ["", f"Ours: mean over {n} seeds (min–max in brackets). Loss: the mean training loss of the "
                               "250 steps before the step, on both sides. The authors' step n is matched with our step n - 1."])


register(Experiment(
    id="authors-logs", title="The authors' two logged runs at their exact setting", paper_ref="authors' logs (README runs 1, 2)",
    source="code", runs=runs, execute=train_synthetic, plot=plot, claims=CLAIMS, reference=reference_table,
    # measured on 2 cores, two single-thread runs at a time: 34-47 min a run (0.2-0.28 s a step)
    seconds_per_run={"smoke": 2.0, "quick": 10_000 * 0.2, "paper": 110_000 * 0.2},
    notes="Everything [code]: encoder, optimiser, batch 1000, the authors' loss form, evaluation on 4096 samples "
          "fitted and scored on the same (plus held-out). Numerics: fused Adam and the fused loss (`fast`).",
))
