"""The hard-negative study's runs (the analysis, with its beta values:
:mod:`aninfonce.analyses.hardneg`)."""

from __future__ import annotations

from ..analyses.hardneg import BETAS, LAM1, LAM2
from ..registry import Study, register
from ..specs import AUTHORS_SETTING, SyntheticSpec
from .trainers import train_synthetic

PROFILE_SETTINGS: dict[str, dict] = {
    "paper": dict(AUTHORS_SETTING, steps=100_000, eval_every=5000, fast=True),  # [code], fused float32 path
    # the authors' model and optimiser, 10k of their ~100k steps, as fig2 quick
    "quick": dict(AUTHORS_SETTING, steps=10_000, eval_every=1000, fast=True),
    "smoke": dict(batch=64, steps=40, eval_every=20, widths=(2, 2), eval_samples=512, mixing_draws=500),
}


def _runs(profile: str, n_seeds: int) -> list[SyntheticSpec]:
    s = PROFILE_SETTINGS[profile]
    return [SyntheticSpec(experiment="hardneg", loss="aninfonce", lambda_kind="bimodal", lam1=LAM1, lam2=LAM2,
                          hard_beta=beta, seed=seed, **s)
            for seed in range(n_seeds) for beta in BETAS[profile]]


register(Study(id="hardneg", runs=_runs, execute=train_synthetic,
               seconds_per_run={"smoke": 1.0, "quick": 10_000 * 0.15, "paper": 100_000 * 0.12}))
