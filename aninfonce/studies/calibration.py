"""The calibration's candidate runs (the analysis, with the candidates and
their admission rule: :mod:`aninfonce.analyses.calibration`)."""

from __future__ import annotations

import dataclasses

from ..analyses.authors import SETTINGS, SMOKE
from ..analyses.calibration import CANDIDATES, FIRST_SEED, NOT_RUN, ROUND, candidate_spec
from ..registry import Study, register
from ..specs import SyntheticSpec
from .trainers import train_synthetic


def runs(profile: str, n_seeds: int) -> list[SyntheticSpec]:
    """Candidate-major, so a round's first candidate completes first. Round 1
    is closed at its one seed (seed 0); round 2 runs seeds 1 .. n_seeds."""
    out = []
    for name in (n for n in CANDIDATES if n not in NOT_RUN):
        first = FIRST_SEED[ROUND[name]]
        seeds = [first] if ROUND[name] == 1 else range(first, first + n_seeds)
        for seed in seeds:
            for kind in SETTINGS.values():
                spec = candidate_spec(name, kind, seed)
                if profile == "smoke":
                    spec = dataclasses.replace(spec, **SMOKE, steps=40, warmup_steps=5, eval_every=20)
                out.append(spec)
    return out


register(Study(
    id="calibration", runs=runs, execute=train_synthetic,
    run_when_named=True,  # a search: its open candidates cost hours, so `python reproduce.py` alone skips it
    # as authors-logs (same model and batch): 0.2 s a step on one core, per 10k steps
    seconds_per_run={"smoke": 2.0, "quick": 10_000 * 0.2, "paper": 10_000 * 0.2},
    run_cost=lambda spec, profile: 1.0 if profile == "smoke" else spec.steps / 10_000,
))
