"""The rows a claim is judged on over training (aninfonce.cuts): the end
states of each step's rows are what ``final_step`` keeps of them, a claim on
end states or with a one-pass history is judged as on the rows themselves,
and the authors' trajectories cut at a step are the trajectories of the rows
up to it. Real committed results where they are small enough to read fast."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aninfonce.analyses  # noqa: F401  (registers every analysis)
from aninfonce import cuts, manifest, report, verdicts
from aninfonce.analyses import authors
from aninfonce.frames import final_step
from aninfonce.registry import Claim, ClaimResult, all_analyses

RESULTS = Path(__file__).resolve().parent.parent / "results"


@pytest.fixture(scope="module")
def quick():
    """The committed quick entries of a few thousand rows each, bound to their manifests, and their rows."""
    ids = ("fig2-linear", "hardneg", "ensemble", "authors-logs")
    exps = manifest.bind([all_analyses()[i] for i in ids], RESULTS, "quick")
    return exps, report.load_all(exps, RESULTS, "quick")


def _steps(df: pd.DataFrame) -> list:
    return sorted(pd.to_numeric(df["step"]).dropna().unique().tolist())


def _awkward_table() -> pd.DataFrame:
    """Runs that log at different steps, one that stops early, a step logged twice, rows without a step
    or without a run key: every case a run's last step up to s has to get right."""
    rows = []
    for key, steps in (("a", [0, 10, 20, 30]), ("b", [0, 20]), ("c", [5, 10, 10, 40])):
        for i, s in enumerate(steps):
            rows += [{"run_key": key, "step": s, "metric": m, "value": float(i)} for m in ("x", "y")]
    rows += [{"run_key": "a", "step": np.nan, "metric": "x", "value": 9.0},
             {"run_key": None, "step": 10, "metric": "x", "value": 9.0}]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # the table's own row order must be kept


def test_end_states_at_each_step_are_final_step_of_the_rows_up_to_it(quick):
    exps, frames = quick
    tables = [_awkward_table(), *(verdicts.judged_table(frames[e.id]) for e in exps[:3])]
    for table in tables:
        steps = _steps(table)
        ends = cuts.step_cuts(steps, [table], "ends")
        rows = cuts.step_cuts(steps, [table], "rows")
        kept = None
        for (s, [end]), (_, [cut]) in zip(ends, rows):
            assert (end is None) == (cut is None)  # unchanged exactly where the rows up to s are
            kept = end if end is not None else kept
            pd.testing.assert_frame_equal(kept, final_step(table[table["step"] <= s]), check_exact=True)


def test_a_step_with_nothing_new_is_not_judged_again():
    table = _awkward_table()
    changed = [s for s, [c] in cuts.step_cuts([0, 5, 7, 10, 20, 25, 30, 40], [table], "changed") if c]
    assert changed == [0, 5, 10, 20, 30, 40]


def test_the_authors_trajectories_cut_at_a_step_are_the_trajectories_of_its_rows(quick):
    df = verdicts.judged_table(quick[1]["authors-logs"])
    for name in ("loss_train", "lambda_hat"):
        whole = authors.our_trajectory(df, "bimodal", name)
        for s in _steps(df)[::3]:
            pd.testing.assert_frame_equal(whole[whole.index <= s].dropna(axis=1, how="all"),
                                          authors.our_trajectory(df[df["step"] <= s], "bimodal", name),
                                          check_exact=True)


def _plainly(claim: Claim) -> Claim:
    return dataclasses.replace(claim, end_states=False, over_steps=None)


def test_judging_on_end_states_and_in_one_pass_gives_the_same_verdicts(quick):
    """Every claim of these committed entries judged through its end states or its one pass, and on the
    rows up to each step as the check alone reads them: the same verdicts, history and all. (The judging
    benchmark compares every quick claim's history the same way.)"""
    exps, frames = quick
    for exp in exps:
        claims, rows = exp.claims, frames
        if exp.id == "authors-logs":  # one trajectory claim (the sorted Lambda^) and one on end states
            claims = tuple(c for c in claims if c.id in ("authors-logs.linear-5-25.lambda_hat-trajectory",
                                                         "authors-logs.linear-5-25.mcc"))
            rows = {exp.id: frames[exp.id][frames[exp.id]["step"] <= 4000]}  # its first 17 steps
        assert any(c.end_states or c.over_steps for c in claims)
        fast = verdicts.evaluate_claims([dataclasses.replace(exp, claims=claims)], rows, "quick")
        plain = verdicts.evaluate_claims([dataclasses.replace(exp, claims=tuple(map(_plainly, claims)))],
                                         rows, "quick")
        assert fast == plain and any(len(v.history) > 1 for v in fast)


def test_a_one_pass_history_that_fails_falls_back_to_the_rows_and_says_nothing_new():
    table = _awkward_table().dropna().assign(seed=0)

    def check(df):  # passes once run c has logged step 40
        return ClaimResult(bool((df["step"] == 40).any()), "")

    def broken(df):
        raise KeyError("no such column")

    for over in (broken, lambda df: (lambda s: check(df[df["step"] <= s]))):
        v = verdicts.evaluate_claim("x", Claim("x.y", "y", check, rule="pooled", over_steps=over), table)
        assert [ok for _, _, ok in v.history] == [False, False, False, False, False, True]


def test_a_claim_cannot_be_both_on_end_states_and_one_pass():
    with pytest.raises(ValueError, match="not both"):
        Claim("x.y", "y", lambda df: ClaimResult(True, ""), end_states=True, over_steps=lambda df: None)


@pytest.mark.parametrize("as_category", [False, True])
def test_run_keys_and_of_runs_answer_as_the_text_of_every_row(as_category):
    """frames.run_keys and frames.of_runs convert each distinct key once; they answer what converting every
    row's key gives, on text and categorical keys."""
    from aninfonce.frames import of_runs, run_keys

    keys = pd.Series(["0a1", "b2", "0a1", "c3", "b2"], dtype=object)
    df = pd.DataFrame({"run_key": keys.astype("category") if as_category else keys})
    assert run_keys(df) == set(df["run_key"].astype(str)) == {"0a1", "b2", "c3"}
    for wanted in ({"b2"}, {"0a1", "c3", "zz"}, set()):
        assert of_runs(df, wanted).tolist() == df["run_key"].astype(str).isin(wanted).tolist()
    assert run_keys(df.iloc[:0]) == set() and of_runs(df.iloc[:0], {"b2"}).tolist() == []


@pytest.mark.parametrize("steps", [
    [0, 250, 250, 500, 0, 250, 750, 500],  # integers
    [0.0, 250.0, np.nan, 500.0, 0.0, np.nan, 750.0, 500.0],  # floats, some missing
    pd.array([0, 250, None, 500, 0, 250, 750, None], dtype="Int64"),  # nullable integers
    ["0", "250", "250", "500", "0", "250", "750", "500"],  # text: the groupby path
])
def test_last_step_mask_keeps_each_runs_last_step_as_a_groupby_does(steps):
    """Each run's rows at its largest step (among the rows ``among`` keeps), whatever the step column's type;
    a row without a run key or a step is in no run's last step."""
    from aninfonce.frames import last_step_mask

    df = pd.DataFrame({"run_key": pd.Series(["a", "a", "a", "a", "b", "b", None, "b"], dtype=object),
                       "step": steps})
    for among in (None, np.array([True, True, True, False, True, True, True, False])):
        sub = df if among is None else df[among]
        grouped = sub.dropna(subset=["run_key", "step"])
        last = grouped["step"] == grouped.groupby("run_key")["step"].transform("max")
        want = df.index.isin(grouped.index[last.to_numpy(dtype=bool)])
        assert last_step_mask(df, among).tolist() == want.tolist()
