"""Figure 5's runs (the analysis: :mod:`aninfonce.analyses.fig5`): the overlap
statistic at every concentration, on the circle and the sphere."""

from __future__ import annotations

from typing import Any

from ..analyses.fig5 import DRAW_SAMPLES, KAPPAS, LARGE, SMALL
from ..registry import Study, register
from ..specs import OverlapSpec

SAMPLES = {"paper": 20_000, "quick": 20_000, "smoke": 500}  # positives per anchor for the statistic


def _runs(profile: str, n_seeds: int) -> list[OverlapSpec]:
    return [OverlapSpec(experiment="fig5", d=d, kappa=k, samples=SAMPLES[profile], seed=seed)
            for seed in range(n_seeds) for d in (2, 3) for k in KAPPAS]


def overlap(spec: OverlapSpec, ctx: Any) -> list[dict[str, Any]]:
    """The run's rows; the seed-0 runs at the drawn concentrations also write the schematic's points
    beside them (``<run key>.points.npz``), so the figure is drawn from results alone."""
    from ..trainers.overlap import execute_overlap, write_drawing

    rows = execute_overlap(spec, ctx)
    if spec.seed == 0 and spec.kappa in (SMALL, LARGE) and getattr(ctx, "result_dir", None) is not None:
        write_drawing(ctx.result_dir / f"{spec.key}.points.npz", spec.d, spec.kappa, DRAW_SAMPLES)
    return rows


register(Study(id="fig5", runs=_runs, execute=overlap, seconds_per_run={"smoke": 0.1, "quick": 0.5, "paper": 0.5}))
