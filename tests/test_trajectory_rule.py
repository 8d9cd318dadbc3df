"""The trajectory rule that holds our seeds against the authors' reference runs
(aninfonce/analyses/authors.py): a faithful run passes it most of the time,
a run that is clearly off fails it, and its false-FAIL rate is measured."""

import numpy as np
import pandas as pd
import pytest

from aninfonce.analyses.authors import ALPHA, COLUMNS, false_fail_rate, hold_against, slower_than_theirs
from aninfonce.claims import prediction_interval
from aninfonce.reference import LOGGED, reference_runs

STEPS = list(range(0, 10_001, 250))


def _ours(values_by_seed: dict[int, np.ndarray]) -> pd.DataFrame:
    """step x seed, as our_trajectory gives for a scalar metric."""
    return pd.DataFrame(values_by_seed, index=STEPS).rename_axis(columns="seed")


def _ref(values: np.ndarray, name: str = "loss_train") -> pd.DataFrame:
    return pd.DataFrame({COLUMNS[name]: values}, index=STEPS)


def _curve(offset: float) -> np.ndarray:
    return 7.0 - 2.0 * np.log1p(np.array(STEPS) / 2000) + offset


def test_prediction_interval_is_the_t_interval_for_one_more_draw():
    lo, hi = prediction_interval(np.array([1.0, 2.0, 3.0]), 0.95)
    # mean 2, sd 1, t(0.975, 2) = 4.3027, sqrt(1 + 1/3)
    assert (lo, hi) == pytest.approx((2 - 4.3027 * np.sqrt(4 / 3), 2 + 4.3027 * np.sqrt(4 / 3)), abs=1e-3)


def test_a_reference_inside_the_spread_passes_and_one_far_off_fails():
    ours = _ours({s: _curve(off) for s, off in enumerate((-0.1, 0.0, 0.1, 0.05, -0.05))})
    ok, lines = hold_against(ours, {"ref": _ref(_curve(0.02))}, "loss_train")
    assert ok is True and "in [" in lines[0]
    ok, lines = hold_against(ours, {"ref": _ref(_curve(0.8))}, "loss_train")
    assert ok is False and "OUTSIDE" in lines[0]


def test_one_seed_cannot_be_judged():
    ok, lines = hold_against(_ours({0: _curve(0.0)}), {"ref": _ref(_curve(0.0))}, "loss_train")
    assert ok is None and "needs >= 2 seeds" in lines[0]


def test_the_rule_rarely_fails_an_exchangeable_run():
    """Draws of one process (each run a curve shifted by a normal offset): the
    reference run is one more such draw. Over many trials the rule fails it at
    about its nominal rate ALPHA; the old rule (inside the range of three at
    every step) failed it about half the time."""
    rng = np.random.default_rng(0)
    fails, trials = 0, 400
    for _ in range(trials):
        offsets = rng.normal(0, 0.1, 4)
        ours = _ours({s: _curve(o) + rng.normal(0, 0.01, len(STEPS)) for s, o in enumerate(offsets[:3])})
        ok, _ = hold_against(ours, {"ref": _ref(_curve(offsets[3]) + rng.normal(0, 0.01, len(STEPS)))}, "loss_train")
        fails += ok is False
    assert fails / trials <= 2 * ALPHA


def test_false_fail_rate_lets_each_seed_play_the_reference():
    ours = _ours({s: _curve(off) for s, off in enumerate((-0.1, 0.0, 0.1, 2.0))})  # seed 3 is far off
    fails, trials = false_fail_rate(ours, {"ref": _ref(_curve(0.0))}, "loss_train")
    assert trials == 4 and fails >= 1
    assert false_fail_rate(ours.iloc[:, :2], {"ref": _ref(_curve(0.0))}, "loss_train") == (0, 0)


def _as_ours(offsets: tuple[float, ...]) -> pd.DataFrame:
    """Rows of our results table: the authors' logged linear loss shifted by each seed's offset."""
    log = reference_runs("linear-5-25")[LOGGED]
    log = log[log.index <= 10_000]
    return pd.DataFrame([{"lambda_kind": "linear", "seed": seed, "step": step, "metric": "loss_train",
                          "value": v + off, "protocol": np.nan}
                         for seed, off in enumerate(offsets) for step, v in log[COLUMNS["loss_train"]].items()])


def test_slower_than_theirs_answers_from_the_loss_difference():
    slower = slower_than_theirs(_as_ours((0.5, 0.55, 0.6, 0.52)), "linear-5-25")
    assert slower["answer"].startswith("yes") and slower["ci"][0] > 0 and slower["diff"] == pytest.approx(0.5425)
    alike = slower_than_theirs(_as_ours((-0.1, 0.05, 0.1, -0.02)), "linear-5-25")
    assert alike["answer"].startswith("not at 95 %")


def test_a_settings_claims_count_the_seeds_that_ran_it():
    """The linear setting runs fewer seeds than the bimodal one (the draws): a seed that ran only the
    bimodal setting is no seed of a linear claim, passing or failing (judged on the committed quick runs)."""
    from pathlib import Path

    import aninfonce.analyses  # noqa: F401  (registers every analysis)
    from aninfonce import manifest, report
    from aninfonce.registry import all_analyses

    results = Path(__file__).resolve().parent.parent / "results"
    [exp] = manifest.bind([all_analyses()["authors-logs"]], results, "quick")
    df = report.load_all([exp], results, "quick")["authors-logs"]
    seeds = {kind: df.loc[df["lambda_kind"] == kind, "seed"].nunique() for kind in ("bimodal", "linear")}
    assert seeds["bimodal"] > seeds["linear"] >= 3, "the committed draws no longer differ: the test would test nothing"
    verdicts = report.evaluate_claims([exp], {exp.id: df}, "quick")
    for v in verdicts:
        kind = "linear" if ".linear-5-25." in v.claim else "bimodal"
        assert v.n_seeds == seeds[kind], (v.claim, v.n_seeds, seeds)
