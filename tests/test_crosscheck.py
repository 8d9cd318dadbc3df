"""The paper profile's verdicts beside quick's: every claim decided in the
paper profile is shown, and a disagreement is named, never hidden."""

from conftest import table_rows

from aninfonce import crosscheck
from aninfonce.verdicts import Verdict


def _v(claim: str, status: str, passed: int = 3, n: int = 3) -> Verdict:
    return Verdict("fig2", claim, "text", "all", status, "style R^2 0.8 — seeds", passed, n)


def test_disagreement_is_named_and_undecided_paper_claims_are_left_out():
    quick = [_v("a", "PASS"), _v("b", "PASS"), _v("c", "NOT SETTLED"), _v("d", "FAIL")]
    paper = [_v("a", "PASS"), _v("b", "FAIL", 0), _v("c", "PASS"), _v("d", "NOT SETTLED")]
    pairs = crosscheck.pair_up(quick, paper)
    assert [q.claim for q, _ in pairs] == ["a", "b", "c"]  # d is undecided in paper: nothing to compare
    assert [crosscheck.agreement(q, p) for q, p in pairs] == ["agree", "**DISAGREE**", "quick NOT SETTLED: not comparable yet"]
    text = crosscheck.section(quick, paper, "results/paper")
    assert "quick agrees on 1, disagrees on 1 (`b`)" in text
    assert ["`b`", "PASS (3 of 3)", "FAIL (0 of 3; style R^2 0.8)", "**DISAGREE**"] in table_rows(text)


def test_no_paper_results_or_no_decided_claim_says_so():
    assert "missing or empty" in crosscheck.section([_v("a", "PASS")], None, "results/paper")
    text = crosscheck.section([_v("a", "PASS")], [_v("a", "NO DATA", 0, 0)], "results/paper")
    assert "No claim is decided in the paper profile yet" in text and "1 NO DATA" in text


def test_cut_off_rows_are_shown_as_not_results():
    table = crosscheck.cut_off_table()
    assert table.startswith("Not results:")
    assert ["100", "aninfonce", "0", "95,000"] in [row[:4] for row in table_rows(table)]
