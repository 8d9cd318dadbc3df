"""Verdicts per seed, over training, at the printed precision."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import table_rows

from aninfonce import claims as C
from aninfonce.registry import Claim, ClaimResult
from aninfonce.verdicts import evaluate_claim, summary


def test_rounding_cannot_flip_a_comparison():
    # scipy's Spearman of a perfectly reversed 5-point sweep with one tie-free swap
    assert C.at_most(-0.7999999999999999, -0.8, places=2)
    assert C.at_least(0.8499999999999999, 0.85)
    assert not C.at_least(0.8494, 0.85)  # printed 0.849: below, and it says so
    assert not C.at_least(float("nan"), 0.0) and not C.at_most(float("nan"), 0.0)
    assert C.within(1.04999999, 1.0, 1.05, places=2) and not C.within(1.0551, 1.0, 1.05, places=2)


def _table(values: dict[int, list[float]]) -> pd.DataFrame:
    """One run per seed; ``values[seed][i]`` is metric x at step 1000 * i."""
    return pd.DataFrame([{"run_key": f"r{seed}", "seed": seed, "step": 1000 * i, "metric": "x", "value": v,
                          "protocol": None} for seed, vs in values.items() for i, v in enumerate(vs)])


def _analysis(runs, **fields):
    """An analysis whose plan (the manifest the producing half would write) lists ``runs``' two seeds."""
    from aninfonce.manifest import Plan
    from aninfonce.registry import Analysis

    return Analysis(plan=Plan.of(fields["id"], runs("quick", 2)), **fields)


def _claim(rule: str = "all") -> Claim:
    def check(df):
        v = C.final_value(df, "x", protocol=None)
        return ClaimResult(C.at_least(v, 0.5), f"x = {v:.3f}")
    return Claim("t.x", "x >= 0.5", check, rule=rule)


def test_seeds_are_counted_and_the_rule_decides():
    df = _table({0: [0, 1, 1, 1, 1, 1], 1: [0, 1, 1, 1, 1, 1], 2: [0, 0, 0, 0, 0, 0]})
    v = evaluate_claim("t", _claim("all"), df)
    assert (v.seeds_passed, v.n_seeds, v.status) == (2, 3, "FAIL")
    assert "seeds passing: 0, 1 of 0, 1, 2" in v.measured
    assert evaluate_claim("t", _claim("majority"), df).status == "PASS"
    # pooled: the check sees the mean over seeds (0.667 >= 0.5)
    assert evaluate_claim("t", _claim("pooled"), df).status == "PASS"


def test_since_which_step_a_verdict_holds():
    early = evaluate_claim("t", _claim(), _table({0: [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]}))
    assert (early.status, early.since_step, early.last_step) == ("PASS", 2000, 10_000)
    assert [ok for _, _, ok in early.history] == [False, False] + [True] * 9


@pytest.mark.parametrize("values, now", [
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], True),  # passes only from step 9,000 of 10,000
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], False),  # falls in the last fifth
])
def test_a_verdict_that_changes_in_the_last_fifth_is_not_settled(values, now):
    v = evaluate_claim("t", _claim(), _table({0: values}))
    assert v.status == "NOT SETTLED" and v.passed is None and v.final is now
    assert summary([v]) == "0 PASS, 0 FAIL, 1 NOT SETTLED, 0 NO DATA"


def test_a_claim_measured_only_after_training_is_judged_at_the_end():
    """The image tables measure probe and recovery once, after training; the
    steps before carry only the training loss. Judged at every step those
    steps would read as failures and any PASS as NOT SETTLED; judged at the
    final step (Analysis.judged_steps = "final") it is one evaluation."""
    df = _table({0: [1.0]}).assign(step=1000)  # x logged at the last step only
    loss = pd.DataFrame([{"run_key": "r0", "seed": 0, "step": s, "metric": "loss_train", "value": 1.0,
                          "protocol": None} for s in (0, 200, 400, 600, 800, 1000)])
    rows = pd.concat([loss, df])
    assert evaluate_claim("t", _claim(), rows).status == "NOT SETTLED"  # steps without x count as failing
    v = evaluate_claim("t", _claim(), rows, judged_steps="final")
    assert (v.status, v.since(), len(v.history)) == ("PASS", "1,000 (one evaluation)", 1)


def test_a_change_just_before_the_last_fifth_is_settled():
    v = evaluate_claim("t", _claim(), _table({0: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]}))
    assert (v.status, v.since_step) == ("PASS", 8000)


def test_a_check_that_raises_on_a_seed_counts_as_failing_there():
    df = _table({0: [1, 1], 1: [1, 1]})

    def check(df):
        if set(df["seed"]) == {1}:
            raise KeyError("missing rows")
        return ClaimResult(True, "ok")

    v = evaluate_claim("t", Claim("t.raise", "", check), df)
    assert (v.seeds_passed, v.status) == (1, "FAIL")


def test_no_rows_is_no_data():
    assert evaluate_claim("t", _claim(), pd.DataFrame()).status == "NO DATA"


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be one of"):
        Claim("t.bad", "", lambda df: ClaimResult(True, ""), rule="best-seed")


def test_fig4b_spearman_at_the_threshold_passes():
    """The fig4B case: a Spearman of -0.7999999999999999 is -0.80 as printed."""
    rho = C.spearman([1, 2, 3, 4, 5], [5, 4, 3, 1, 2]) * 0.8 / 0.9  # -0.8 up to the last bit
    assert np.isclose(rho, -0.8) and C.at_most(rho, -0.8, places=2)


def test_a_check_without_its_rows_is_no_data_not_fail():
    v = evaluate_claim("t", Claim("t.none", "", lambda df: ClaimResult(None, "no block rows")), _table({0: [1, 1]}))
    assert (v.status, v.measured) == ("NO DATA", "no block rows")


def test_golden_sanity_mode_accepts_chaotic_values_in_range_and_rejects_the_rest(tmp_path):
    """Tiny image runs are held to sanity ranges (report.SANITY_RANGES), the
    rest to float tolerance: a value that moved is fine only in the former."""
    from aninfonce import report

    def frame(exp, metric, value):
        return pd.DataFrame([{"experiment": exp, "run_key": "k", "step": 2, "metric": metric, "protocol": None,
                              "value": value}])

    gold = {"img": frame("img", "linear_top1", 0.875), "syn": frame("syn", "r2_all", 0.5)}
    path = tmp_path / "golden.csv"
    report.write_golden(gold, path)
    moved = {"img": frame("img", "linear_top1", 0.84375), "syn": frame("syn", "r2_all", 0.5)}
    assert report.compare_golden(moved, path, sanity=frozenset({"img"})) == []
    assert report.compare_golden(moved, path) != []  # exact mode sees the move
    broken = {"img": frame("img", "linear_top1", 1.5), "syn": frame("syn", "r2_all", 0.51)}
    problems = report.compare_golden(broken, path, sanity=frozenset({"img"}))
    assert len(problems) == 2 and "sanity range" in problems[0]
    lr = {"img": frame("img", "lr", 0.1), "syn": frame("syn", "r2_all", 0.5)}
    report.write_golden(lr, path)
    assert report.compare_golden({**lr, "img": frame("img", "lr", 0.2)}, path, sanity=frozenset({"img"})) != []


def test_seeds_still_crossing_over_in_the_last_fifth_is_not_settled():
    """The verdict (all seeds) stays FAIL, but a seed passes only from step
    9,000 of 10,000: another might follow, so the verdict is not settled."""
    df = _table({0: [0] * 9 + [1, 1], 1: [0] * 11})
    v = evaluate_claim("t", _claim("all"), df)
    assert (v.status, v.final, v.seeds_passed) == ("NOT SETTLED", False, 1)
    early = evaluate_claim("t", _claim("all"), _table({0: [0] * 3 + [1] * 8, 1: [0] * 11}))
    assert early.status == "FAIL"


def test_claims_are_judged_on_whole_grids_only():
    """A seed is judged once all its grid's runs are in; a partly run seed is
    left out and named; with no complete seed the claim has NO DATA."""
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import complete_seeds, evaluate_claims

    grid = lambda profile, n: [RunSpec(experiment="t", seed=s) for s in range(n)] + [  # noqa: E731
        RunSpec(experiment="u", seed=s) for s in range(n)]
    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=grid,
                     plot=lambda *a: [], claims=(_claim("all"),))
    keys = {(s.experiment, s.seed): s.key for s in grid("quick", 2)}
    rows = lambda key, seed, v: [{"run_key": key, "seed": seed, "step": 0, "metric": "x", "value": v,  # noqa: E731
                                  "protocol": None}]
    df = pd.DataFrame(rows(keys["t", 0], 0, 1.0) + rows(keys["u", 0], 0, 1.0) + rows(keys["t", 1], 1, 0.0))
    assert complete_seeds(exp, df, "quick") == ([0], "seed 1: 1 of 2 runs")
    (v,) = evaluate_claims([exp], {"t": df}, "quick")
    assert v.status == "PASS" and v.n_seeds == 1 and "left out until complete: seed 1: 1 of 2 runs" in v.measured
    (v,) = evaluate_claims([exp], {"t": df[df["seed"] == 1]}, "quick")
    assert v.status == "NO DATA" and "no seed has its whole grid yet" in v.measured


def _draw(exps, frames, out, verdicts) -> dict:
    """Each entry's figures and claims-over-training figure, drawn here (as the reading pass draws them)."""
    from aninfonce import report
    from aninfonce.plots import Drawing

    with Drawing(1, 1) as here:
        pending, shown = report.entry_figures(exps, frames, out, "quick", here)
        drawn = {key: future.result() for key, future in pending.items()}
    for exp in exps:
        args = report.verdict_figure(exp, shown, verdicts, out, "quick")
        if args is not None:
            drawn[f"{exp.id}:verdicts"] = report.plot_verdicts(*args)
    return drawn


def test_figures_and_report_draw_the_seeds_the_claims_read(tmp_path):
    """A partly run seed is left out of the figures and the report's tables as
    it is out of the verdicts, and the report says so; with no seed complete
    the figures show the first seed's progress and say no claim is judged."""
    from aninfonce import report
    from aninfonce.specs import RunSpec

    grid = lambda profile, n: [RunSpec(experiment="t", seed=s) for s in range(n)] + [
        RunSpec(experiment="u", seed=s) for s in range(n)]
    drawn = []
    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=grid,
                     plot=lambda df, out, profile, runs=None: drawn.append(sorted(set(df["seed"]))) or [], claims=(_claim("all"),))
    keys = {(s.experiment, s.seed): s.key for s in grid("quick", 2)}
    rows = lambda key, seed: [{"run_key": key, "seed": seed, "step": 0, "metric": "x", "value": 1.0,
                               "protocol": None, "wall_seconds": 1.0, "device": "cpu"}]
    df = pd.DataFrame(rows(keys["t", 0], 0) + rows(keys["u", 0], 0) + rows(keys["t", 1], 1))
    verdicts = report.evaluate_claims([exp], {"t": df}, "quick")
    figures = _draw([exp], {"t": df}, tmp_path, verdicts)
    assert drawn == [[0]]
    text = report.write_report([exp], {"t": df}, verdicts, figures, tmp_path, "quick").read_text()
    assert "> Figures and tables of this entry: left out until complete: seed 1: 1 of 2 runs." in text
    _draw([exp], {"t": df[df["seed"] == 1]}, tmp_path, [])
    assert drawn[-1] == [1]
    shown, note = report.shown_rows(exp, df[df["seed"] == 1], "quick")
    assert len(shown) == 1 and note.startswith("no seed has its whole grid yet (seed 1: 1 of 2 runs)")
    assert report.shown_rows(exp, df[df["seed"] == 0], "quick")[1] == ""


def test_verdicts_wait_for_settled_training():
    """An entry with a settle_metric: a run whose loss still moved by more than
    settle_tol over its last fifth makes the entry's verdicts NOT SETTLED, even
    a verdict that has held since the first step."""
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import evaluate_claims, moving_runs

    spec = RunSpec(experiment="t", seed=0)
    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=lambda p, n: [spec],
                     plot=lambda *a: [], claims=(_claim("all"),), settle_metric="loss_eval", settle_tol=0.02)

    def table(losses):
        rows = [{"run_key": spec.key, "seed": 0, "step": 1000 * i, "metric": "x", "value": 1.0, "protocol": None}
                for i in range(len(losses))]
        rows += [{"run_key": spec.key, "seed": 0, "step": 1000 * i, "metric": "loss_eval", "value": v, "protocol": None}
                 for i, v in enumerate(losses)]
        return pd.DataFrame(rows)

    still_falling = table([5.0, 4.8, 4.6, 4.4, 4.2, 4.0])  # last fifth: step 4000 -> 5000, -0.2
    assert moving_runs(still_falling, "loss_eval", 0.02) == {spec.key: pytest.approx(-0.2)}
    (v,) = evaluate_claims([exp], {"t": still_falling}, "quick")
    assert v.status == "NOT SETTLED" and v.final is True and "training not settled" in v.measured
    flat = table([5.0, 4.0, 3.9, 3.9, 3.9, 3.89])
    assert moving_runs(flat, "loss_eval", 0.02) == {}
    (v,) = evaluate_claims([exp], {"t": flat}, "quick")
    assert v.status == "PASS"


def test_settle_rules_read_window_means_so_noise_is_not_a_trend():
    """Evaluation jitter of +-0.03 around a plateau (101 evaluations) moved two
    single points by 0.06, past a 0.02 tolerance; the window means (the last
    5 % of steps against the 5 % ending at 80 %) do not, while a trend of the
    same size is still caught, at its full size."""
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import moving_lambda, moving_runs

    key = RunSpec(experiment="t", seed=0).key
    steps = np.arange(101) * 100

    def table(values, metric="loss_eval"):
        return pd.DataFrame({"run_key": key, "seed": 0, "step": steps, "metric": metric, "value": values,
                             "protocol": None})

    # alternating signs, the phase shifted after step 8000 (still noise about a flat mean)
    sign = np.where(np.arange(101) <= 80, (-1.0) ** np.arange(101), -((-1.0) ** np.arange(101)))
    jitter = 3.0 + 0.03 * sign
    assert jitter[80] - jitter[-1] == pytest.approx(0.06)  # what the two-point rule saw
    assert moving_runs(table(jitter), "loss_eval", 0.02) == {}
    trend = jitter - np.clip(steps - 8000, 0, None) / 2000 * 0.1  # falls 0.1 over the last fifth
    assert moving_runs(table(trend), "loss_eval", 0.02) == {key: pytest.approx(-0.1, abs=0.02)}
    # the same for a Lambda^ rank that jitters by 20 % of itself around 5 beside a still top rank of 50
    # (two points: 6 -> 4, 50 % of the end value; window means 5.2 -> 4.8, 8 %)
    lam = pd.concat([table(5.0 * (1 + 0.2 * sign), "lambda_hat/0"),
                     table(np.full(101, 50.0), "lambda_hat/1")])
    assert moving_lambda(lam, 0.1) == {}
    assert moving_lambda(lam, 0.05) == {key: pytest.approx(0.4 / 4.8)}


def test_verdicts_wait_for_the_learned_lambda_to_settle():
    """An entry with settle_lambda_rel (Figure 3): a run whose sorted Lambda^ still moved
    by more than that fraction over its last fifth makes its verdicts NOT SETTLED, even
    with a flat loss; a permutation of the ranks is not a move (the ranks are sorted)."""
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import evaluate_claims, moving_lambda

    spec = RunSpec(experiment="t", seed=0)
    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=lambda p, n: [spec],
                     plot=lambda *a: [], claims=(_claim("all"),), settle_metric="loss_eval", settle_lambda_rel=0.1)

    def table(lams):  # lams[i] = the Lambda^ vector logged at step 1000 i; loss flat, x passing throughout
        rows = [{"run_key": spec.key, "seed": 0, "step": 1000 * i, "metric": m, "value": v, "protocol": None}
                for i in range(len(lams)) for m, v in (("x", 1.0), ("loss_eval", 3.0))]
        rows += [{"run_key": spec.key, "seed": 0, "step": 1000 * i, "metric": f"lambda_hat/{d}", "value": v,
                  "protocol": None} for i, lam in enumerate(lams) for d, v in enumerate(lam)]
        return pd.DataFrame(rows)

    growing = table([[1, 1], [5, 2], [10, 3], [15, 4], [20, 5], [25, 5]])  # top rank 20 -> 25 in the last fifth
    assert moving_lambda(growing, 0.1) == {spec.key: pytest.approx(0.2)}
    (v,) = evaluate_claims([exp], {"t": growing}, "quick")
    assert v.status == "NOT SETTLED" and "learned Λ̂ still moved" in v.measured and "20%" in v.measured
    settled = table([[1, 1], [5, 2], [10, 3], [20, 5], [5.1, 20.5], [21, 5]])  # 20.5 -> 21 (2 %), ranks swapped
    assert moving_lambda(settled, 0.1) == {}
    (v,) = evaluate_claims([exp], {"t": settled}, "quick")
    assert v.status == "PASS"
    # the image entries log the sorted Lambda^ as lambda_hat_sorted/i: the same rule reads them
    sorted_rows = growing.assign(metric=growing["metric"].str.replace("lambda_hat/", "lambda_hat_sorted/"))
    assert moving_lambda(sorted_rows, 0.1) == {spec.key: pytest.approx(0.2)}
    # a rank on its way to zero is measured against 1 % of the top rank (0.2), not against itself:
    # 0.5 -> 0.05 moved 0.45, nine times its end value but 225 % of the floor, so still a move...
    shrinking = table([[20, 5], [20, 3], [20, 1], [20, 0.9], [20, 0.5], [20, 0.05]])
    assert moving_lambda(shrinking, 0.1) == {spec.key: pytest.approx(0.45 / 0.2)}
    # ...while one already below the floor that keeps halving is no move: 0.02 -> 0.01 against 0.2
    vanished = table([[20, 5], [20, 1], [20, 0.1], [20, 0.04], [20, 0.02], [20, 0.01]])
    assert moving_lambda(vanished, 0.1) == {}
    assert moving_lambda(vanished, 0.04) == {spec.key: pytest.approx(0.05)}


def test_a_claim_waits_only_on_the_runs_it_reads():
    """Claim.reads scopes a verdict: the settle rules judge only the runs the
    claim reads (a claim on settled runs is not held NOT SETTLED by another
    run of the entry), and the check sees only those rows, so a scope that
    leaves out a run the check needs cannot pass. A claim-level
    judged_steps="final" judges a number measured once at the last step."""
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import evaluate_claims

    still, moving = RunSpec(experiment="t-still", seed=0), RunSpec(experiment="t-moving", seed=0)
    assert still.key != moving.key

    def run(spec, losses):
        return [{"run_key": spec.key, "seed": 0, "step": 1000 * i, "metric": m, "value": v, "protocol": None}
                for i, loss in enumerate(losses) for m, v in (("x", 1.0), ("loss_eval", loss))]

    df = pd.DataFrame(run(still, [5.0, 4.0, 3.9, 3.9, 3.9, 3.9]) + run(moving, [5.0, 4.8, 4.6, 4.4, 4.2, 4.0]))
    only = {k: (lambda d, k=k: d[d["run_key"] == k]) for k in (still.key, moving.key)}
    needs_both = Claim("both", "x of both runs >= 0.5", lambda d: ClaimResult(
        bool(d["run_key"].nunique() == 2 and d["value"][d["metric"] == "x"].min() >= 0.5), "m"))
    claims = (Claim("all-runs", "x >= 0.5", _claim().check), Claim("on-still", "x >= 0.5", _claim().check,
              reads=only[still.key]), Claim("on-moving", "x >= 0.5", _claim().check, reads=only[moving.key]),
              dataclasses.replace(needs_both, id="scoped-too-narrow", reads=only[still.key]))
    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=lambda p, n: [still, moving],
                     plot=lambda *a: [], claims=claims, settle_metric="loss_eval", settle_tol=0.02)
    v = {x.claim: x for x in evaluate_claims([exp], {"t": df}, "quick")}
    assert v["all-runs"].status == "NOT SETTLED" and "in 1 of 2 runs" in v["all-runs"].measured
    assert v["on-still"].status == "PASS"
    assert v["on-moving"].status == "NOT SETTLED" and "in 1 of 1 runs" in v["on-moving"].measured
    assert v["scoped-too-narrow"].status == "FAIL"  # the check saw one run only
    # a number logged only at the last step: over training its absence reads as failing steps
    # (NOT SETTLED, "holds since" the last step); judged at the end it is one evaluation
    last = df.assign(value=np.where((df["metric"] == "x") & (df["step"] < 5000), np.nan, df["value"]))
    last = last.dropna(subset=["value"])
    end_only = Claim("end", "x >= 0.5", _claim().check, reads=only[still.key])
    exp2 = dataclasses.replace(exp, claims=(end_only, dataclasses.replace(end_only, judged_steps="final")))
    over_training, at_end = evaluate_claims([exp2], {"t": last}, "quick")
    assert over_training.status == "NOT SETTLED" and over_training.since_step == 5000
    assert (at_end.status, at_end.since()) == ("PASS", "5,000 (one evaluation)")
    with pytest.raises(ValueError, match="judged_steps"):
        Claim("bad", "t", _claim().check, judged_steps="sometimes")


def test_the_report_names_the_quick_setting_from_the_calibration_verdicts():
    from aninfonce.analyses.calibration import CLAIMS, ROUND_2, quick_setting_line
    from aninfonce.verdicts import Verdict

    def verdicts(status_of):
        return [Verdict(experiment="calibration", claim=c.id, text="", rule="pooled", status=status_of(c.id), measured="")
                for c in CLAIMS]

    first, second = ROUND_2
    assert "no time-compressed schedule was admitted" in quick_setting_line(verdicts(lambda cid: "NO DATA"))
    # every claim of the second round-2 candidate passes but its linear MCC: admitted without MCC
    partial = verdicts(lambda cid: "FAIL" if not cid.startswith(f"calibration.{second}.")
                       else "FAIL" if cid == f"calibration.{second}.linear-5-25" else "PASS")
    assert f"`{second}` is admitted without MCC" in quick_setting_line(partial)
    full = verdicts(lambda cid: "PASS" if cid.startswith(f"calibration.{first}.") else "FAIL")
    assert f"the calibrated schedule `{first}` (admitted" in quick_setting_line(full)


def test_panel_a_draws_the_points_of_unsettled_runs_hollow():
    """A run whose loss still moves is drawn hollow in the R^2-vs-Lambda_2 panels (fig2, fig3), one
    that has settled stays filled."""
    import matplotlib.pyplot as plt

    from aninfonce.plots import r2_groups_against
    from aninfonce.specs import RunSpec
    from aninfonce.verdicts import unsettled_runs

    exp = _analysis(id="t", title="t", paper_ref="t", source="recon", runs=lambda p, n: [RunSpec(experiment="t")],
                     plot=lambda *a: [], claims=(), settle_metric="loss_eval")
    rows = []
    for key, lam2, losses in (("moving", 100.0, [5.0, 4.0, 3.0, 2.0, 1.5, 1.0]), ("flat", 5.0, [5.0] * 6)):
        for i, v in enumerate(losses):
            rows += [{"run_key": key, "seed": 0, "loss": "aninfonce", "lam2": lam2, "step": 1000 * i, "metric": m,
                      "value": val, "protocol": None} for m, val in (("loss_eval", v), ("r2_content", 0.9), ("r2_style", 0.5))]
    df = pd.DataFrame(rows)
    assert unsettled_runs(exp, df) == {"moving"}
    fig, ax = plt.subplots()
    assert r2_groups_against(ax, df, ["aninfonce"], unsettled=unsettled_runs(exp, df))
    hollow = [c for c in ax.collections if c.get_sizes()[0] == 42]
    assert len(hollow) == 2 and all(c.get_offsets()[:, 0].tolist() == [100.0] for c in hollow)  # content and style
    assert all(tuple(c.get_facecolors()[0]) == (1.0, 1.0, 1.0, 1.0) for c in hollow)
    fig2, ax2 = plt.subplots()
    assert not r2_groups_against(ax2, df[df["run_key"] == "flat"], ["aninfonce"], unsettled=unsettled_runs(exp, df))
    plt.close("all")


def test_the_verdict_figure_holds_a_claims_colour_between_its_judged_steps():
    """Figure 3's linear runs log every 200 steps beside the bimodal runs' 100: a claim on them is judged
    at every other column of the entry's heat map. Its colour holds to its next judged step (the figure
    was striped), it has none before its first one, and its dots mark only the steps it was judged at."""
    from aninfonce.verdicts import Verdict, verdict_grid

    every = Verdict("t", "a", "a", "all", "PASS", "m", history=((0, 0.0, False), (100, 1.0, True), (200, 1.0, True)))
    sparse = Verdict("t", "b", "b", "all", "PASS", "m", history=((100, 0.5, False), (200, 1.0, True)))
    end_only = Verdict("t", "c", "c", "all", "PASS", "m", history=((150, 1.0, True),))
    steps, frac, dots = verdict_grid([every, sparse, end_only])
    assert steps == [0, 100, 150, 200]
    np.testing.assert_array_equal(frac[0], [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(frac[1], [np.nan, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(frac[2], [np.nan, np.nan, 1.0, np.nan])
    assert sorted(dots) == [(1, 0), (2, 2), (3, 0), (3, 1)]


def test_lost_directions_lists_the_runs_with_a_dim_below_the_line_in_grid_order():
    """The report's lost-direction table: AnInfoNCE runs only, a run listed when one of its
    held-out per-dim R^2 is below 0.9 at its last step, the dim in bold, rows in the grid's numeric order
    with seeds last (Lambda_2 = 25 before 100, not as strings)."""
    from aninfonce.analyses.common import lost_directions

    def run(key, loss, lam2, seed, dims):
        rows = [{"run_key": key, "loss": loss, "lam2": lam2, "seed": seed, "step": step, "metric": f"r2/{i}",
                 "value": v if step else 0.0, "protocol": "held-out"} for step in (0, 1000) for i, v in enumerate(dims)]
        return rows

    df = pd.DataFrame(run("k1", "aninfonce", 100.0, 0, [0.95, 0.50]) + run("k2", "aninfonce", 25.0, 1, [0.95, 0.80])
                      + run("k3", "aninfonce", 25.0, 0, [0.40, 0.97]) + run("k4", "aninfonce", 5.0, 0, [0.99, 0.99])
                      + run("k5", "infonce-tau1", 100.0, 0, [0.99, 0.01]))
    text = lost_directions(df)
    assert "**3 of 4**" in text
    assert table_rows(text) == [["run", "R² dim 0", "R² dim 1"], ["lam2=25.0, seed=0", "**0.40**", "0.97"],
                                ["lam2=25.0, seed=1", "0.95", "**0.80**"], ["lam2=100.0, seed=0", "0.95", "**0.50**"]]
    wider = pd.DataFrame(run("k6", "aninfonce", 50.0, 0, [0.95, 0.50, 0.30]))
    rows = table_rows(lost_directions(pd.concat([df, wider])))[1:]
    assert rows[0] == ["lam2=25.0, seed=0", "**0.40**", "0.97", "–"]  # a run without dim 2 shows no number there
    assert rows[2] == ["lam2=50.0, seed=0", "0.95", "**0.50**", "**0.30**"]
    iso = pd.DataFrame(run("k7", "aninfonce", 25.0, 0, [0.5, 0.9]) + run("k8", "aninfonce", 50.0, 0, [0.5, 0.9])
                       ).assign(lambda_kind="isotropic")  # fig4: Lambda = kappa * I, lam2 holds kappa
    assert [row[0] for row in table_rows(lost_directions(iso))[1:]] == ["κ=25.0", "κ=50.0"]


def test_every_claim_id_is_unique_across_the_registry():
    """A claim id names one statement: the report, the verdict maps and the
    rule-change log look claims up by id."""
    from collections import Counter

    import aninfonce.analyses  # noqa: F401  (registers every analysis)
    from aninfonce.registry import all_analyses

    ids = Counter(c.id for exp in all_analyses().values() for c in exp.claims)
    assert [i for i, n in ids.items() if n > 1] == []
    assert len(ids) > 50


def test_the_rule_change_log_is_complete_and_printed():
    """Each entry states the old and new rule, why, and either the verdicts it changed or what did not
    change; ids are unique; the report prints every entry with its verdict table."""
    from aninfonce.report import rule_changes_section
    from aninfonce.rule_changes import RULE_CHANGES

    assert len({c.id for c in RULE_CHANGES}) == len(RULE_CHANGES) >= 3
    for c in RULE_CHANGES:
        assert c.old and c.new and c.why and c.when and (c.verdicts or c.unchanged), c.id
        assert all(len(v) == 3 and all(v) for v in c.verdicts), c.id
    text = rule_changes_section()
    assert text.startswith("## Rule changes after data")
    assert all(f"### `{c.id}`" in text for c in RULE_CHANGES)
    assert ["`authors-logs.bimodal-25-5.mcc`", "FAIL (28 of 33)", "PASS"] in table_rows(text)


def test_lambda_scale_shape_splits_a_drifting_scale_from_a_moving_shape():
    """A Lambda^ whose every rank grows by the same factor moves in scale only;
    one whose ranks trade places moves in shape; the settle rule sees both."""
    from aninfonce.verdicts import lambda_scale_shape

    rows = []
    for key, at in (("scale", lambda step, i: (1 + step / 25) * (i + 1)),
                    ("shape", lambda step, i: (i + 1) + (step / 25) * (i == 0))):
        for step in range(0, 101, 10):
            rows += [{"run_key": key, "step": step, "metric": f"lambda_hat/{i}", "value": at(step, i)} for i in range(4)]
    moved = lambda_scale_shape(pd.DataFrame(rows)).set_index("run_key")
    assert moved.loc["scale", "rule"] > 0.1 and moved.loc["scale", "scale"] > 0.1
    assert moved.loc["scale", "shape"] < 1e-9
    assert moved.loc["shape", "rule"] > 0.1 and moved.loc["shape", "shape"] > 0.1


def test_per_table_answers_once_per_table_and_never_for_another():
    import pandas as pd

    from aninfonce.frames import per_table

    calls = []

    @per_table
    def rows(df, metric):
        calls.append(metric)
        return int((df["metric"] == metric).sum())

    a = pd.DataFrame({"metric": ["x", "x", "y"]})
    b = pd.DataFrame({"metric": ["x", "x", "y"]})
    assert rows(a, "x") == 2 and rows(a, "x") == 2 and calls == ["x"]  # the same table: remembered
    assert rows(b, "x") == 2 and calls == ["x", "x"]  # an equal but other table is asked again
    assert rows(a, "y") == 1 and calls == ["x", "x", "y"]  # other arguments are asked again
