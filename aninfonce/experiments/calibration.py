"""A time-compressed setting for the synthetic sweeps, calibrated against the
authors' end state (issue 10).

The Lambda_2 sweep, fig4, the hard negatives and the ensembles need runs
that reach, within a CPU budget, the state the authors' runs reach after
~100k steps. A candidate keeps the authors' encoder (widths, activation,
initialisation), data process, batch and loss form, and changes only the
optimisation schedule and the step count. It is *admitted* when, with at
least 3 seeds, it reaches the authors' final logged state on both of their
settings -- R^2 (all, same sample) within 0.005, MCC within 0.03, every
sorted learned Lambda^ within 10 % -- and no seed loses a direction (every
per-dim R^2 >= 0.9). Criteria from issue 10, fixed before any candidate ran.

Why these candidates: Adam moves a parameter by about its learning rate per
step, and Lambda^ = softplus(theta) must travel to ~23, so at the authors'
lr 1e-3 it needs >= 23k steps; under a cosine decay (mean factor ~0.5) it
reaches 23 in 10k steps only with lr >= ~5e-3, hence 1e-2 for Lambda^. The
encoder is tried at 3x and 10x the authors' 1e-4 (10x with narrow widths is
where the old quick profile fell into the lost-direction plateau).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import claims as C
from ..frames import final_step, indexed_metric, metric
from ..plots import no_data, save
from ..reference import authors_series
from ..registry import Claim, ClaimResult, Experiment, register
from ..trainers.synthetic import SyntheticSpec, train_synthetic
from .authors import AUTHORS, SETTINGS, SMOKE, setting_of

# name -> the optimisation changes against the authors' setting [recon]
CANDIDATES: dict[str, dict] = {
    "enc3x-lam10x-cos10k": dict(lr_f=3e-4, lr_metric=1e-2, lr_schedule="cosine", warmup_steps=500, steps=10_000),
    "enc10x-lam10x-cos10k": dict(lr_f=1e-3, lr_metric=1e-2, lr_schedule="cosine", warmup_steps=500, steps=10_000),
}
MIN_SEEDS = 3
# admission tolerances against the authors' end state [issue 10]
R2_TOL, MCC_TOL, LAMBDA_REL, LOST_DIM = 0.005, 0.03, 0.10, 0.9
END_ROWS = 10  # the authors' end state: mean of their last 10 logged rows (2,500 steps), one row is noisy


def runs(profile: str, n_seeds: int) -> list[SyntheticSpec]:
    """Seed-major, so ``--seeds 1`` runs one seed of every candidate first."""
    out = []
    for seed in range(n_seeds):
        for changes in CANDIDATES.values():
            for kind in SETTINGS.values():
                extra = dict(SMOKE, steps=40, warmup_steps=5) if profile == "smoke" else {}
                out.append(SyntheticSpec(experiment="calibration", lambda_kind=kind, seed=seed, fast=True,
                                         eval_every=20 if profile == "smoke" else 500,
                                         **{**AUTHORS, **changes, **extra}))
    return out


def candidate_of(row: pd.Series | dict) -> str:
    """The candidate a results row belongs to, by its learning rates and schedule."""
    for name, c in CANDIDATES.items():
        if (np.isclose(float(row["lr_f"]), c["lr_f"]) and np.isclose(float(row["lr_metric"]), c["lr_metric"])
                and row["lr_schedule"] == c["lr_schedule"]):
            return name
    return "?"


def authors_end(setting: str) -> dict:
    tail = authors_series(setting).tail(END_ROWS)
    return {"r2_all": float(tail["r2_all_same_sample"].mean()), "mcc": float(tail["mcc"].mean()),
            "lambda": np.stack(tail["lambda_sorted"].to_numpy()).mean(0)}


def end_state(df: pd.DataFrame) -> pd.DataFrame:
    """Per run at its last step: R^2 (same sample), MCC, sorted Lambda^, the lowest per-dim R^2."""
    rows = []
    for key, run in final_step(df).groupby("run_key"):
        same = run[run["protocol"] == "same-sample"]
        r2_dims = indexed_metric(same, "r2")["value"]
        rows.append({"run_key": key, "seed": int(run["seed"].iloc[0]), "lambda_kind": run["lambda_kind"].iloc[0],
                     "candidate": candidate_of(run.iloc[0]), "step": int(run["step"].iloc[0]),
                     "r2_all": float(metric(same, "r2_all")["value"].iloc[0]),
                     "mcc": float(metric(run, "mcc")["value"].iloc[0]),
                     "lambda": np.sort(indexed_metric(run, "lambda_hat")["value"].to_numpy()),
                     "r2_min_dim": float(r2_dims.min())})
    return pd.DataFrame(rows)


def _reaches(candidate: str, setting: str):
    def check(df: pd.DataFrame) -> ClaimResult:
        end = end_state(df)
        end = end[(end["candidate"] == candidate) & (end["lambda_kind"] == SETTINGS[setting])]
        ref = authors_end(setting)
        if end.empty:
            return ClaimResult(None, f"no runs of {candidate} on {setting} yet")
        ok_seeds, parts = [], []
        for _, r in end.sort_values("seed").iterrows():
            lam_ok = all(C.within(v, a * (1 - LAMBDA_REL), a * (1 + LAMBDA_REL), 1) for v, a in zip(r["lambda"], ref["lambda"]))
            ok = (C.at_most(abs(r["r2_all"] - ref["r2_all"]), R2_TOL, 4) and C.at_most(abs(r["mcc"] - ref["mcc"]), MCC_TOL, 3)
                  and lam_ok)
            ok_seeds.append(ok)
            parts.append(f"seed {r['seed']}: R^2 {r['r2_all']:.4f}, MCC {r['mcc']:.3f}, Lambda^ {r['lambda'][0]:.1f}..{r['lambda'][-1]:.1f}"
                         f"{'' if lam_ok else ' (Lambda^ off)'}")
        text = (f"{sum(ok_seeds)} of {len(ok_seeds)} seeds reach the authors' end state (R^2 {ref['r2_all']:.4f}, MCC "
                f"{ref['mcc']:.3f}, Lambda^ {ref['lambda'][0]:.1f}..{ref['lambda'][-1]:.1f}); " + "; ".join(parts or ["no runs"]))
        if len(ok_seeds) < MIN_SEEDS:
            text += f"; needs {MIN_SEEDS} seeds"
        return ClaimResult(len(ok_seeds) >= MIN_SEEDS and all(ok_seeds), text)
    return check


def _no_lost_direction(candidate: str):
    def check(df: pd.DataFrame) -> ClaimResult:
        end = end_state(df)
        end = end[end["candidate"] == candidate]
        if end.empty:
            return ClaimResult(None, f"no runs of {candidate} yet")
        lost = end[~end["r2_min_dim"].map(lambda v: C.at_least(v, LOST_DIM))]
        text = (f"lowest per-dim R^2 over {len(end)} runs: {end['r2_min_dim'].min():.3f}"
                + ("" if lost.empty else "; lost in " + ", ".join(f"{setting_of(r.lambda_kind)} seed {r.seed} ({r.r2_min_dim:.3f})"
                                                                   for r in lost.itertuples())))
        return ClaimResult(len(end) > 0 and lost.empty, text)
    return check


CLAIMS = tuple(
    c for name in CANDIDATES for c in (
        *(Claim(f"calibration.{name}.{setting}", f"{name} reaches the authors' end state on {setting} in every one of "
                f">= {MIN_SEEDS} seeds (R^2 ± {R2_TOL}, MCC ± {MCC_TOL}, sorted Lambda^ ± {LAMBDA_REL:.0%})",
                _reaches(name, setting), rule="pooled") for setting in SETTINGS),
        Claim(f"calibration.{name}.no-lost-direction", f"{name}: no run loses a direction (every per-dim R^2 >= {LOST_DIM})",
              _no_lost_direction(name), rule="pooled"),
    ))


def plot(df: pd.DataFrame, out: Path, profile: str) -> list[Path]:
    if df.empty:
        return no_data(out, "calibration", "no calibration runs yet")
    end = end_state(df)
    names = list(CANDIDATES)
    fig, axes = plt.subplots(len(SETTINGS), 3, figsize=(14, 7), squeeze=False)
    for i, (setting, kind) in enumerate(SETTINGS.items()):
        ref = authors_end(setting)
        sel = end[end["lambda_kind"] == kind]
        for j, (col, tol, label) in enumerate((("r2_all", R2_TOL, "R² (all, same sample)"), ("mcc", MCC_TOL, "MCC"))):
            ax = axes[i, j]
            ax.axhspan(ref[col] - tol, ref[col] + tol, color="0.85")
            ax.axhline(ref[col], color="k", lw=1, label="authors' end state ± tolerance")
            for x, name in enumerate(names):
                v = sel[sel["candidate"] == name][col]
                ax.scatter(np.full(len(v), x), v, color="#c0392b", s=18)
            ax.set_xticks(range(len(names)), names, rotation=15, fontsize=7)
            ax.set(title=f"{setting}: {label} at the last step", xlim=(-0.5, len(names) - 0.5))
        ax = axes[i, 2]
        for r, a in enumerate(ref["lambda"]):
            ax.axhspan(a * (1 - LAMBDA_REL), a * (1 + LAMBDA_REL), color="0.88")
        for x, name in enumerate(names):
            for lam in sel[sel["candidate"] == name]["lambda"]:
                ax.scatter(np.full(len(lam), x), lam, color="#c0392b", s=10)
        ax.set_xticks(range(len(names)), names, rotation=15, fontsize=7)
        ax.set(title=f"{setting}: sorted Λ̂ (grey: authors ± 10 %)", xlim=(-0.5, len(names) - 0.5))
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Calibration of a time-compressed schedule against the authors' end state (profile: {profile}; dots: seeds)",
                 y=1.02)
    fig.tight_layout()
    return save(fig, out, "calibration")


register(Experiment(
    id="calibration", title="Time-compressed schedules against the authors' end state", paper_ref="authors' logs (end state)",
    source="recon", runs=runs, execute=train_synthetic, plot=plot, claims=CLAIMS, judge_whole_grids=False,
    seconds_per_run={"smoke": 2.0, "quick": 10_000 * 0.2, "paper": 10_000 * 0.2},  # as authors-logs: same model and batch
    notes="Encoder, data, batch, loss form: the authors' [code]. Learning rates, warm-up, cosine decay and step "
          "count: the candidates [recon], each admitted only on the criteria above. Outcome (seed 0 of each, 10k "
          "steps, ~1 h a run on a shared core): none admitted. enc3x-lam10x-cos10k reaches the bimodal end state "
          "(R² 0.994, MCC 0.658, Λ̂ 5.7 / 22.6) but its linear MCC is 0.888 (authors 0.989; where their run is at "
          "~20k steps); enc10x-lam10x-cos10k loses a direction on bimodal (R² 0.801, one dim at R² 0.43, Λ̂ 2.6) "
          "and reaches linear MCC 0.905. The linear MCC grows with the summed learning rate; 0.96+ would take the "
          "equivalent of >= 50k of the authors' steps, beyond this entry's budget, so the sweeps run at the "
          "authors' own setting (issue 10's rule when no schedule is admitted).",
))
