"""The ensemble study's runs (the analysis, with the design of its terms:
:mod:`aninfonce.analyses.ensemble`)."""

from __future__ import annotations

from ..analyses.ensemble import D, DESIGNS, FULL, term_precision
from ..registry import Study, register
from ..specs import AUTHORS_SETTING, EnsembleSpec
from .trainers import train_ensemble

PROFILE_SETTINGS: dict[str, dict] = {
    "paper": dict(batch=1000, steps=100_000, eval_every=5000, lr_f=1e-4, lr_metric=1e-3),  # [code] per term
    # the authors' model and optimiser (1000 pairs per term), 10k steps, as fig2 quick; the
    # plain float32 path (an ensemble has no fused one). The 4-term run draws 4000 pairs a step
    "quick": dict(AUTHORS_SETTING, steps=10_000, eval_every=1000),
    "smoke": dict(batch=32, steps=40, eval_every=20, widths=(2, 2), eval_samples=512, mixing_draws=500),
}
SMOKE_DESIGNS = ("t0", FULL)


def _runs(profile: str, n_seeds: int) -> list[EnsembleSpec]:
    names = SMOKE_DESIGNS if profile == "smoke" else tuple(DESIGNS)
    return [EnsembleSpec(experiment="ensemble", loss="aninfonce", lambda_kind="bimodal", d=D,
                         terms=tuple(term_precision(k) for k in DESIGNS[name]), terms_used=name, seed=seed,
                         **PROFILE_SETTINGS[profile])
            for seed in range(n_seeds) for name in names]


register(Study(
    id="ensemble", runs=_runs, execute=train_ensemble,
    # per term: each term draws and encodes its own 1000 pairs a step, so a run costs its number of terms
    # (quick: one term alone took 39-42 min on a core shared with one other run, ~0.25 s a step)
    seconds_per_run={"smoke": 2.0, "quick": 10_000 * 0.25, "paper": 100_000 * 0.3},
    run_cost=lambda spec, profile: len(spec.terms),
))
