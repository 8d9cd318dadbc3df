"""Several synthetic runs as one batched model give each run's own rows."""

import dataclasses

import pytest
import torch

from aninfonce.runner import RunContext
from aninfonce.trainers.batched import batchable_groups, train_synthetic_batched
from aninfonce.trainers.synthetic import SyntheticSpec, train_synthetic

TINY = dict(batch=48, steps=40, eval_every=20, widths=(2, 2), eval_samples=256, mixing_draws=200, lr_f=1e-3,
            lr_metric=1e-2)


@pytest.mark.parametrize("fast", [False, True])
def test_batched_runs_match_separate_runs(fast, tmp_path):
    specs = [
        SyntheticSpec(experiment="b", loss="aninfonce", lam2=25.0, seed=0, **TINY),
        SyntheticSpec(experiment="b", loss="infonce-learned", lam2=50.0, seed=1, **TINY),
        SyntheticSpec(experiment="b", loss="infonce-tau0.1", lambda_kind="linear", seed=2, **TINY),
        SyntheticSpec(experiment="b", loss="aninfonce", hard_beta=1.0, seed=3, **TINY),
    ]
    specs = [dataclasses.replace(s, fast=fast) for s in specs]
    batched = train_synthetic_batched(specs)
    for spec, rows in zip(specs, batched):
        ctx = RunContext(torch.device("cpu"), tmp_path / f"{spec.key}.pt", tmp_path, show_progress=False)
        alone = train_synthetic(spec, ctx)
        assert [(r["step"], r["metric"], r.get("protocol")) for r in rows] == \
               [(r["step"], r["metric"], r.get("protocol")) for r in alone]
        got = [r["value"] for r in rows]
        want = [r["value"] for r in alone]
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5, nan_ok=True), spec.loss


def test_grid_is_split_where_runs_cannot_share_a_batch():
    a = SyntheticSpec(experiment="b", seed=0, **TINY)
    b = SyntheticSpec(experiment="b", seed=1, loss="infonce-tau1", **TINY)
    c = SyntheticSpec(experiment="b", seed=0, **{**TINY, "batch": 64})
    assert batchable_groups([a, b, c]) == [[a, b], [c]]
    with pytest.raises(ValueError, match="cannot share a batch"):
        train_synthetic_batched([a, c])
