"""Damage to the results after a run finished costs that run only (issue 13):
every run leaves a completion record (row count + hash), a run whose rows
were cut or altered is named and re-run alone, and ends with the rows an
undisturbed run writes."""

import json
import re

import pandas as pd
import pytest

from aninfonce import results
from aninfonce.cli import main

pytestmark = pytest.mark.slow  # end to end through the CLI


@pytest.fixture
def finished(tmp_path):
    dirs = ["--results-dir", str(tmp_path / "results"), "--figures-dir", str(tmp_path / "figures")]
    assert main(["fig2", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    csv = tmp_path / "results" / "smoke" / "fig2.csv"
    return dirs, csv, pd.read_csv(csv, dtype={"run_key": str})


COLS = ["run_key", "step", "metric", "protocol", "value"]


def _rows(csv):
    df = pd.read_csv(csv, dtype={"run_key": str})
    return df[COLS].sort_values(COLS[:4]).reset_index(drop=True)


def test_every_run_has_a_completion_record(finished):
    _, csv, df = finished
    records = json.loads(results.records_path(csv).read_text())
    assert set(records) == set(df["run_key"]) and len(records) == 8
    assert results.incomplete_runs(csv) == {}


def test_cut_rows_are_found_and_that_run_alone_is_rerun(finished, capsys):
    dirs, csv, before = finished
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-10]))  # the last run loses its final rows
    last = before["run_key"].iloc[-1]
    assert results.incomplete_runs(csv) == {last: f"{(before['run_key'] == last).sum() - 10} of its "
                                                  f"{(before['run_key'] == last).sum()} rows"}
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--executor", "local", "--dry-run", *dirs]) == 0
    plan = capsys.readouterr().out
    assert f"run {last} is incomplete" in plan and re.search(r"^fig2\s+7\s+0\s+1\s", plan, re.M)
    assert main(["fig2", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    pd.testing.assert_frame_equal(_rows(csv), before[COLS].sort_values(COLS[:4]).reset_index(drop=True))
    assert results.incomplete_runs(csv) == {}


def test_an_altered_value_is_found(finished):
    _, csv, before = finished
    df = before.copy()
    key = df["run_key"].iloc[0]
    df.loc[df.index[5], "value"] += 1e-9  # below what a reader would see, not below the hash
    df.to_csv(csv, index=False)
    assert results.incomplete_runs(csv) == {key: "rows altered since it finished"}
    assert key not in results.done_keys(csv)


def test_the_report_leaves_an_incomplete_run_out(finished, capsys):
    dirs, csv, before = finished
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:-10]))
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--plot-only", *dirs]) == 0
    assert "leaving out 1 incomplete run(s) of fig2" in capsys.readouterr().out


def test_a_csv_from_before_the_records_counts_as_complete(finished):
    _, csv, before = finished
    results.records_path(csv).unlink()
    assert results.done_keys(csv) == set(before["run_key"])
