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
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import copy_trained, train_smoke
from test_cli import KILL_SCRIPT, ROOT

from aninfonce import manifest, report, results
from aninfonce.cli import main
from aninfonce.registry import all_analyses

pytestmark = pytest.mark.slow  # end to end through the CLI


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """Figure 2's smoke grid trained once for this module; each test damages its own copy."""
    return train_smoke(tmp_path_factory.mktemp("finished"), "fig2")


@pytest.fixture
def finished(trained_once, tmp_path):
    dirs = copy_trained(trained_once, tmp_path)
    csv = tmp_path / "results" / "smoke" / "fig2.csv"
    return dirs, csv, pd.read_csv(csv, dtype={"run_key": str})


COLS = ["run_key", "step", "metric", "protocol", "value"]


def _rows(csv):
    df = pd.read_csv(csv, dtype={"run_key": str})
    return df[COLS].sort_values(COLS[:4]).reset_index(drop=True)


def _same_rows(csv, before):
    pd.testing.assert_frame_equal(_rows(csv), before[COLS].sort_values(COLS[:4]).reset_index(drop=True))


def _rerun(dirs, capsys):
    """What the dry run, then the run itself, print."""
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--executor", "local", "--dry-run", *dirs]) == 0
    plan = capsys.readouterr().out
    assert main(["fig2", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    return plan + capsys.readouterr().out


def test_every_run_has_its_own_file_and_a_completion_record(finished):
    _, csv, df = finished
    records = {f.stem: json.loads(f.read_text()) for f in results.run_dir(csv).glob("*.json")}
    assert set(records) == set(df["run_key"]) and len(records) == 8
    assert {f.stem for f in results.run_dir(csv).glob("*.csv")} == set(records)
    assert not results.records_path(csv).exists()  # the old layout's index is written no more
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
    capsys.readouterr()
    assert main(["fig2", "--profile", "smoke", "--executor", "local", "--dry-run", *dirs]) == 0
    assert f"note: {csv} is missing, damaged or out of step with its run files; a run rebuilds it" in \
        capsys.readouterr().out and csv.read_text() == "garbage\n\"unclosed"  # a dry run writes nothing
    plan = _rerun(dirs, capsys)
    assert f"note: rebuilt {csv}" in plan and re.search(r"^fig2\s+8\s+0\s+0\s", plan, re.M)
    _same_rows(csv, before)
    csv.unlink()
    _rerun(dirs, capsys)
    _same_rows(csv, before)


def test_an_edited_value_in_the_long_csv_never_reaches_a_figure_nor_survives_a_rerun(finished, capsys):
    """The long CSV is checked by content: one value moved below what a reader
    would see is found and rebuilt from the run files, which are all that
    figures and --check read."""
    dirs, csv, before = finished
    written = csv.read_bytes()
    df = pd.read_csv(csv, dtype={"run_key": str})
    df.loc[df.index[7], "value"] *= 1 + 1e-12
    edited = df.loc[df.index[7], "value"]
    df.to_csv(csv, index=False)
    assert pd.read_csv(csv)["value"].isin([edited]).any()
    frames = report.load_all(manifest.bind([all_analyses()["fig2"]], csv.parent.parent, "smoke"), csv.parent.parent, "smoke")
    assert not frames["fig2"]["value"].isin([edited]).any() and len(frames["fig2"]) == len(before)
    plan = _rerun(dirs, capsys)
    assert f"note: rebuilt {csv}" in plan and re.search(r"^fig2\s+8\s+0\s+0\s", plan, re.M)
    assert csv.read_bytes() == written


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


def test_a_run_file_without_its_record_cannot_be_verified_and_is_rerun_alone(finished, capsys):
    """A lost record is never read as 'complete': the run is named in one line and
    retrained alone, and only its fresh rows are recorded as good."""
    dirs, csv, before = finished
    key = before["run_key"].iloc[4]
    results.record_file(csv, key).unlink()
    why = "no completion record, so it cannot be verified"
    assert results.incomplete_runs(csv) == {key: why} and key not in results.done_keys(csv)
    plan = _rerun(dirs, capsys)
    assert f"note: fig2 run {key} is incomplete in fig2.csv ({why}); it will be re-run" in plan
    assert re.search(r"^fig2\s+7\s+0\s+1\s", plan, re.M)
    _same_rows(csv, before)
    assert results.incomplete_runs(csv) == {} and results.record_file(csv, key).exists()


def test_a_lost_records_file_and_a_cut_run_file_are_caught(finished, capsys):
    """The old layout's index gone (or never there) and a run file cut: the cut
    run's own record catches it, and it alone is retrained."""
    dirs, csv, before = finished
    results.records_path(csv).unlink(missing_ok=True)
    key = before["run_key"].iloc[1]
    f = results.run_file(csv, key)
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:4]))
    n = int((before["run_key"] == key).sum())
    assert results.incomplete_runs(csv) == {key: f"3 of its {n} rows"}
    plan = _rerun(dirs, capsys)
    assert re.search(r"^fig2\s+7\s+0\s+1\s", plan, re.M)
    _same_rows(csv, before)


def _to_old_layout(csv):
    """The records as folders written before they moved beside the run files hold them: one index."""
    index = {f.stem: json.loads(f.read_text()) for f in results.run_dir(csv).glob("*.json")}
    results.records_path(csv).write_text(json.dumps(index))
    for key in index:
        results.record_file(csv, key).unlink()
    return index


def test_old_layout_results_are_read_adopted_and_migrated_on_the_next_write(finished, tmp_path, capsys):
    dirs, csv, before = finished
    index = _to_old_layout(csv)
    assert results.incomplete_runs(csv) == {} and results.done_keys(csv) == set(index)
    # a long job in the old layout hands its runs over; each arrives with its own record
    dst = tmp_path / "main" / "smoke" / "fig2.csv"
    assert sorted(results.adopt_runs(csv, dst)) == sorted(index)
    assert {f.stem for f in results.run_dir(dst).glob("*.json")} == set(index)
    # an index entry that no longer matches its run file is not carried over as good
    key = before["run_key"].iloc[0]
    f = results.run_file(csv, key)
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-2]))
    assert results.migrate_index(csv) == 7
    assert not results.records_path(csv).exists()
    assert results.incomplete_runs(csv) == {key: "no completion record, so it cannot be verified"}
    for k, rec in index.items():
        if k != key:
            assert json.loads(results.record_file(csv, k).read_text()) == rec


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
    # the undisturbed run trains beside the killed ones (a folder of its own), not before them
    reference = subprocess.Popen([sys.executable, str(script), str(straight)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
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
    assert reference.wait(timeout=600) == 0
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


# ---------------------------------------------------------------- the runner's processes
# A tiny experiment of N synthetic runs, trained through the CLI in a process of
# its own session, so that every process it starts can be counted. Its imports
# sit under the main guard, as in reproduce.py: a pool worker re-imports this
# file at its start.
POOL_SCRIPT = """
import sys
if __name__ == "__main__":
    try:
        import torch
        torch.set_num_threads(1)
        from aninfonce.cli import main
        from aninfonce.registry import Analysis, Study, register
        from aninfonce.trainers.synthetic import SyntheticSpec, train_synthetic
    except KeyboardInterrupt:
        sys.exit(130)
    out, executor, steps, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    specs = [SyntheticSpec(experiment="faulttest", seed=s, batch=64, steps=steps, eval_every=100, widths=(2, 2),
                           eval_samples=256, mixing_draws=200, lr_f=1e-3, lr_metric=1e-2) for s in range(n)]
    register(Study(id="faulttest", runs=lambda p, k: specs, execute=train_synthetic))
    register(Analysis(id="faulttest", title="t", paper_ref="test", source="recon", plot=lambda df, out, p, runs: []))
    sys.exit(main(["faulttest", "--profile", "smoke", "--executor", executor, "--jobs", "2", "--results-dir", out,
                   "--figures-dir", out + "/fig"]))
"""


def _start(tmp_path, out, executor="pool", steps=3000, n=2, **kw):
    script = tmp_path / "pooltest.py"
    script.write_text(POOL_SCRIPT)
    # SIGINT as a terminal's foreground command has it: a test run started in the background of a
    # non-interactive shell inherits SIGINT ignored, and so would the command, which then rightly ignores Ctrl-C
    return subprocess.Popen([sys.executable, str(script), str(out), executor, str(steps), str(n)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _session(sid):
    """Live (not zombie) processes of session ``sid``."""
    alive = []
    for stat in map(str, Path("/proc").glob("[0-9]*/stat")):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.split("/")[2]))
    return alive


def _survivors(sid, within=5.0):
    deadline = time.time() + within
    while _session(sid) and time.time() < deadline:
        time.sleep(0.1)
    return _session(sid)


def _wait_for_workers(proc, n=2, timeout=120):
    """Until the main process has ``n`` children (its pool workers, spawned at once) or ends."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len([p for p in _session(proc.pid) if p != proc.pid]) >= n:
            return
        time.sleep(0.02)


def test_kill_9_at_any_moment_leaves_no_worker_alive(tmp_path):
    """kill -9 of the main process at 2, 5 and 9 s (the first while its pool
    workers import torch), and once just as the workers appear: within a few
    seconds nothing of its session is left."""
    out = tmp_path / "killed"
    counts = []
    for delay in ("workers", 2.0, 5.0, 9.0):
        proc = _start(tmp_path, out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if delay == "workers":
            _wait_for_workers(proc, n=1)
        else:
            time.sleep(delay)
        assert proc.poll() is None, "the command ended before its kill; the test tested nothing"
        seen = len(_session(proc.pid))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append((delay, seen, len(_survivors(proc.pid))))
    assert all(left == 0 for _, _, left in counts), counts
    assert max(seen for _, seen, _ in counts) >= 3, counts  # the main process and two workers were there


@pytest.mark.parametrize("when", ["start-up", "training"])
def test_ctrl_c_under_the_pool_is_one_line_and_exit_130(tmp_path, when):
    out = tmp_path / "interrupted"
    proc = _start(tmp_path, out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_workers(proc)
    if when == "training":
        ckpts = out / ".cache" / "smoke" / "faulttest"
        deadline = time.time() + 300
        while time.time() < deadline and not list(ckpts.glob("*.pt")):
            time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends: to the whole process group
    err = proc.communicate(timeout=120)[1]
    lines = [line for line in err.splitlines() if line.strip() and not _progress_line(line)]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert _survivors(proc.pid) == []


def _progress_line(line: str) -> bool:
    """The pool's progress line (a new line a minute when stderr is not a terminal), not a message."""
    return line.startswith("pool: ")


def _rows_of(out):
    df = pd.read_csv(out / "smoke" / "faulttest.csv", dtype={"run_key": str})
    return df[COLS].sort_values(COLS[:4]).reset_index(drop=True)


def test_sigterm_checkpoints_every_run_exits_4_and_the_rerun_gives_an_undisturbed_runs_rows(tmp_path):
    """SIGTERM (SLURM's notice) to the main process: it forwards it to its pool
    workers, each checkpoints after its current step (between evaluation
    points, with the interval it cut), and the command exits 4; the rerun
    resumes both runs to the rows of a run never stopped."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    # the undisturbed reference trains beside the stopped command (its own folder), not before it; 1500 steps
    # leave the stop ~14 evaluation intervals after the second run's first checkpoint
    reference = _start(tmp_path, straight, executor="local", steps=1500, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    proc = _start(tmp_path, stopped, steps=1500, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpts = stopped / ".cache" / "smoke" / "faulttest"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(ckpts.glob("*.pt"))) < 2:
        time.sleep(0.05)
    time.sleep(0.37)  # most likely between two evaluation points
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, (stdout, err)
    said = "\n".join(line for line in err.splitlines() if line.strip() and not _progress_line(line))
    assert "Traceback" not in err and said.startswith("stopped by SIGTERM (2 of 2 run(s) stopped"), err
    assert not (stopped / "smoke" / "faulttest.csv").exists(), "a run finished before its stop; the test tested nothing"
    saved = [torch.load(p, weights_only=True) for p in ckpts.glob("*.pt")]
    assert len(saved) == 2 and all("interval" in s for s in saved)
    assert _survivors(proc.pid) == []
    assert _start(tmp_path, stopped, steps=1500, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL).wait(timeout=600) == 0
    assert reference.wait(timeout=600) == 0
    pd.testing.assert_frame_equal(_rows_of(straight), _rows_of(stopped))
    assert (pd.read_csv(stopped / "smoke" / "faulttest.csv")["resumes"] == 1).all()


def test_two_identical_commands_started_together_train_each_run_once(tmp_path):
    """Run locks: the second process reaching a run in training says so in one
    line, waits, and uses its rows; every run is trained by one process only."""
    out, alone = tmp_path / "shared", tmp_path / "alone"
    # the reference trains in a folder of its own, beside the two commands
    reference = _start(tmp_path, alone, executor="local", steps=600, n=3, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    procs = [_start(tmp_path, out, steps=600, n=3, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    logs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    text = "\n".join(o for o, _ in logs)
    trained = re.findall(r"\] (faulttest:\w+) finished in", text)
    waited = re.findall(r"^(faulttest:\w+) is being trained by another process; waiting for it$", text, re.M)
    used = re.findall(r"\] (faulttest:\w+) was trained by another process", text)
    assert len(trained) == len(set(trained)) == 3, text  # each run trained once, by one of the two
    assert waited and set(waited) <= set(used) <= set(trained), text
    assert results.incomplete_runs(out / "smoke" / "faulttest.csv") == {}
    assert reference.wait(timeout=600) == 0
    pd.testing.assert_frame_equal(_rows_of(alone), _rows_of(out))
