"""Damage to the results costs the damaged run only: every run is
stored in its own file with a completion record (row count + hash); a run
whose file was cut, altered or garbled is named and re-run alone; the long
per-experiment CSV is derived and rebuilt, never a reason to retrain; kills
at random points end in the rows of an undisturbed run; an unwritable
results folder is one clear message before any training."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from test_cli import KILL_SCRIPT, ROOT

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


def _same_rows(csv, before):
    pd.testing.assert_frame_equal(_rows(csv), before[COLS].sort_values(COLS[:4]).reset_index(drop=True))


def _rerun(dirs, capsys):
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--executor", "local", "--dry-run", *dirs]) == 0
    plan = capsys.readouterr().out
    assert main(["fig2", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    return plan


def test_every_run_has_its_own_file_and_a_completion_record(finished):
    _, csv, df = finished
    records = json.loads(results.records_path(csv).read_text())
    assert set(records) == set(df["run_key"]) and len(records) == 8
    assert {f.stem for f in results.run_dir(csv).glob("*.csv")} == set(records)
    assert sorted(r["seq"] for r in records.values()) == list(range(8))
    assert results.incomplete_runs(csv) == {}
    # the long CSV is the run files joined, in the order the runs finished
    order = sorted(records, key=lambda k: records[k]["seq"])
    assert df["run_key"].drop_duplicates().tolist() == order


def test_cut_rows_in_a_run_file_rerun_that_run_alone(finished, capsys):
    dirs, csv, before = finished
    key = before["run_key"].iloc[-1]
    f = results.run_file(csv, key)
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-10]))  # the run loses its final rows
    n = int((before["run_key"] == key).sum())
    assert results.incomplete_runs(csv) == {key: f"{n - 10} of its {n} rows"}
    plan = _rerun(dirs, capsys)
    assert f"run {key} is incomplete" in plan and re.search(r"^fig2\s+7\s+0\s+1\s", plan, re.M)
    _same_rows(csv, before)
    assert results.incomplete_runs(csv) == {}


def test_a_garbled_run_file_costs_that_run_alone(finished, capsys):
    dirs, csv, before = finished
    key = before["run_key"].iloc[3]
    others = {k: results.run_file(csv, k).stat().st_mtime_ns for k in set(before["run_key"]) - {key}}
    results.run_file(csv, key).write_bytes(b"\x00\xff garbage \"unclosed\n1,2\n")
    assert results.incomplete_runs(csv) == {key: "its run file cannot be read"}
    plan = _rerun(dirs, capsys)
    assert re.search(r"^fig2\s+7\s+0\s+1\s", plan, re.M)
    _same_rows(csv, before)
    assert {k: results.run_file(csv, k).stat().st_mtime_ns for k in others} == others  # nothing else rewritten


def test_a_damaged_long_csv_is_rebuilt_without_training(finished, capsys):
    dirs, csv, before = finished
    csv.write_text("garbage\n\"unclosed")
    plan = _rerun(dirs, capsys)
    assert "rebuilt" in plan and re.search(r"^fig2\s+8\s+0\s+0\s", plan, re.M)
    _same_rows(csv, before)
    csv.unlink()
    _rerun(dirs, capsys)
    _same_rows(csv, before)


def test_an_altered_value_is_found(finished):
    _, csv, before = finished
    key = before["run_key"].iloc[0]
    f = results.run_file(csv, key)
    df = pd.read_csv(f, dtype={"run_key": str})
    df.loc[df.index[5], "value"] += 1e-9  # below what a reader would see, not below the hash
    df.to_csv(f, index=False)
    assert results.incomplete_runs(csv) == {key: "rows altered since it finished"}
    assert key not in results.done_keys(csv)


def test_check_names_a_damaged_run_and_exits_2_and_update_golden_refuses_it(finished, capsys):
    """Following --check's advice must not bless damage: it names the run, says to rerun, exits 2;
    --update-golden refuses the incomplete grid and writes no golden file."""
    dirs, csv, before = finished
    key = before["run_key"].iloc[-1]
    f = results.run_file(csv, key)
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-10]))
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--check", *dirs]) == 2
    out = capsys.readouterr().out
    assert f"fig2 {key}:" in out and "never --update-golden" in out and "CHECK INCOMPLETE" in out
    assert main(["fig2", "--profile", "smoke", "--update-golden", *dirs]) == 2
    assert "refuses an incomplete smoke grid" in capsys.readouterr().err
    assert not (csv.parent.parent / "golden").exists()


def test_the_report_leaves_an_incomplete_run_out(finished, capsys):
    dirs, csv, before = finished
    f = results.run_file(csv, before["run_key"].iloc[-1])
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-10]))
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--plot-only", *dirs]) == 0
    assert "leaving out 1 incomplete run(s) of fig2" in capsys.readouterr().out


def test_a_lost_records_file_retrains_nothing(finished, capsys):
    dirs, csv, before = finished
    results.records_path(csv).unlink()
    assert results.done_keys(csv) == set(before["run_key"])
    plan = _rerun(dirs, capsys)
    assert re.search(r"^fig2\s+8\s+0\s+0\s", plan, re.M)


def test_a_long_csv_from_before_the_run_files_is_split_on_the_next_write(finished, capsys):
    dirs, csv, before = finished
    import shutil

    shutil.rmtree(results.run_dir(csv))
    results.records_path(csv).unlink()
    assert results.done_keys(csv) == set(before["run_key"])  # read as it is, every run complete
    key = before["run_key"].iloc[2]
    results.append_run(csv, [{**r, "value": 0.5} for r in before[before["run_key"] == key].to_dict("records")])
    assert {f.stem for f in results.run_dir(csv).glob("*.csv")} == set(before["run_key"])
    after = pd.read_csv(csv, dtype={"run_key": str})
    assert after["run_key"].drop_duplicates().tolist() == before["run_key"].drop_duplicates().tolist()
    assert (after.loc[after["run_key"] == key, "value"] == 0.5).all()
    pd.testing.assert_frame_equal(after[after["run_key"] != key][COLS].reset_index(drop=True),
                                  before[before["run_key"] != key][COLS].reset_index(drop=True))


def test_an_unwritable_results_folder_is_one_message_before_any_training(tmp_path, capsys):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / "smoke").write_text("a file where the profile's folder belongs\n")  # unwritable even as root
    code = main(["fig2", "--profile", "smoke", "--executor", "local", "--results-dir", str(results_dir),
                 "--figures-dir", str(tmp_path / "figures")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write results" in err and "Traceback" not in err
    assert (results_dir / "smoke").read_text().startswith("a file")  # nothing written over


def test_kills_at_random_points_end_in_the_rows_of_an_undisturbed_run(tmp_path):
    """kill -9 several times at random moments of one run (before, between and
    after checkpoints, possibly while results are written), then let it
    finish: the rows equal an undisturbed run's."""
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run([sys.executable, str(script), str(straight)], check=True, env=env, capture_output=True, timeout=600)
    rng = random.Random(13)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(killed)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 6.0))  # torch's import takes ~2 s; the run itself a few seconds
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run([sys.executable, str(script), str(killed)], check=True, env=env, capture_output=True, timeout=600)
    assert kills >= 1, "every attempt finished before its kill; the loop tested nothing"
    a = pd.read_csv(straight / "smoke" / "killtest.csv")
    b = pd.read_csv(killed / "smoke" / "killtest.csv")
    cols = ["step", "metric", "protocol", "value"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert results.incomplete_runs(killed / "smoke" / "killtest.csv") == {}
    assert not list((killed / "smoke").rglob("*.tmp"))


def test_runs_finished_elsewhere_are_adopted_file_for_file(finished, tmp_path):
    """A long job run in another folder (a worktree) hands its finished runs
    over without retraining; the receiver keeps what it has and records the rest."""
    _, src, before = finished
    dst = tmp_path / "main" / "smoke" / "fig2.csv"
    keys = before["run_key"].drop_duplicates().tolist()
    assert results.adopt_runs(src, dst, keys=set(keys[:3])) == keys[:3]
    assert results.adopt_runs(src, dst) == keys[3:]  # the first three are kept, not copied again
    for k in keys:
        assert results.run_file(dst, k).read_bytes() == results.run_file(src, k).read_bytes()
    assert results.incomplete_runs(dst) == {} and results.done_keys(dst) == set(keys)
    _same_rows(dst, before)


def test_adopt_from_another_results_folder_through_the_cli(finished, tmp_path, capsys):
    dirs, src, before = finished
    here = tmp_path / "main"
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--results-dir", str(here), "--adopt-from", str(src.parent.parent)]) == 0
    assert "fig2: adopted 8 finished run(s)" in capsys.readouterr().out
    _same_rows(here / "smoke" / "fig2.csv", before)
    assert main(["fig2", "--profile", "smoke", "--results-dir", str(here), "--adopt-from", str(tmp_path / "nowhere")]) == 2


def test_values_read_back_exactly_as_written_so_digests_agree_across_pandas_versions(tmp_path):
    # pandas 2's default float parser lands one ulp off for some 17-digit
    # values (seen on a GPU host: both of its finished runs read as "altered"
    # here); results.load must give every value bit for bit, on any pandas
    rng = random.Random(0)
    values = [rng.uniform(-10, 10) * 10 ** rng.randint(-6, 3) for _ in range(5000)]
    path = tmp_path / "values.csv"
    pd.DataFrame({"step": 0, "metric": "m", "value": values}).to_csv(path, index=False)
    read = results.load(path, required=("value",))["value"]
    assert [float(v).hex() for v in read] == [v.hex() for v in values]
