"""The runner and CLI end to end on the smoke profile: caching, resume after a
real kill, determinism, claims/goldens, and one clear message per bad input."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_real_figure, copy_trained, train_smoke

from aninfonce import results
from aninfonce.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "reproduce.py", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture
def dirs(tmp_path):
    return ["--results-dir", str(tmp_path / "results"), "--figures-dir", str(tmp_path / "figures")]


@pytest.fixture(scope="module")
def linear_once(tmp_path_factory):
    """Figure 2's linear smoke run trained once for this module; a test takes its own copy (``linear``)."""
    return train_smoke(tmp_path_factory.mktemp("linear"), "fig2-linear")


@pytest.fixture
def linear(linear_once, tmp_path):
    """``dirs`` holding a finished fig2-linear smoke run, as ``main(["fig2-linear", ...])`` leaves them."""
    return copy_trained(linear_once, tmp_path)


@pytest.mark.slow
def test_smoke_fig2_end_to_end_then_cache_hit(tmp_path, dirs, capsys):
    assert main(["fig2*", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    df = pd.read_csv(tmp_path / "results" / "smoke" / "fig2.csv")
    assert df["run_key"].nunique() == 8  # 2 Lambda_2 x 4 losses
    for col in ("loss", "lam2", "protocol", "git_commit", "git_dirty", "torch", "sklearn", "device", "wall_seconds"):
        assert col in df.columns
    assert set(df.loc[df["metric"].str.startswith("r2_"), "protocol"]) == {"same-sample", "held-out"}
    for name in ("fig2.png", "fig2_linear.png"):
        assert_real_figure(tmp_path / "figures" / "smoke" / name)
    assert (tmp_path / "figures" / "smoke" / "fig2.pdf").stat().st_size > 0
    mtime = (tmp_path / "results" / "smoke" / "fig2.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["fig2*", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    out = capsys.readouterr().out
    assert "finished" not in out  # nothing trained again
    assert (tmp_path / "results" / "smoke" / "fig2.csv").stat().st_mtime_ns == mtime
    assert main(["fig2*", "--profile", "smoke", "--dry-run", *dirs]) == 0
    assert re.search(r"^fig2\s+8\s+0\s+0\s", capsys.readouterr().out, re.M)


@pytest.mark.slow
def test_same_seed_same_numbers(tmp_path, linear_once):
    """A second run of the same seed, in a folder of its own, gives the module's first run's numbers."""
    b = tmp_path / "b"
    assert main(["fig2-linear", "--profile", "smoke", "--executor", "local", "--results-dir", str(b),
                 "--figures-dir", str(b / "f")]) == 0
    va = pd.read_csv(linear_once / "results" / "smoke" / "fig2-linear.csv")
    vb = pd.read_csv(b / "smoke" / "fig2-linear.csv")
    assert len(va) and va["run_key"].tolist() == vb["run_key"].tolist()
    assert va["value"].tolist() == vb["value"].tolist()


KILL_SCRIPT = textwrap.dedent("""
    import sys, dataclasses
    import torch
    torch.set_num_threads(1)
    from aninfonce.registry import Analysis, Study, register
    from aninfonce.trainers.synthetic import SyntheticSpec, train_synthetic
    from aninfonce.cli import main
    spec = SyntheticSpec(experiment="killtest", batch=64, steps=1500, eval_every=100, widths=(2, 2),
                         eval_samples=256, mixing_draws=200, lr_f=1e-3, lr_metric=1e-2)
    register(Study(id="killtest", runs=lambda p, n: [spec], execute=train_synthetic))
    register(Analysis(id="killtest", title="t", paper_ref="test", source="recon", plot=lambda df, out, p, runs: []))
    sys.exit(main(["killtest", "--profile", "smoke", "--executor", "local", "--results-dir", sys.argv[1],
                   "--figures-dir", sys.argv[1] + "/fig"]))
""")


@pytest.mark.slow
def test_killed_run_resumes_to_identical_rows(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # the undisturbed run trains beside the killed one (a folder of its own), not before it
    reference = subprocess.Popen([sys.executable, str(script), str(straight)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = killed / ".cache" / "smoke" / "killtest"
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpt_dir.glob("*.pt")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(ckpt_dir.glob("*.pt")), "no checkpoint was written before the kill"
    assert not (killed / "smoke" / "killtest.csv").exists(), "run finished before it could be killed"
    subprocess.run([sys.executable, str(script), str(killed)], check=True, env=env, capture_output=True, timeout=600)
    assert reference.wait(timeout=600) == 0
    a = pd.read_csv(straight / "smoke" / "killtest.csv")
    b = pd.read_csv(killed / "smoke" / "killtest.csv")
    cols = ["step", "metric", "protocol", "value"]
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not list(ckpt_dir.glob("*.pt")), "checkpoint not removed after the run finished"
    # provenance covers the whole run: one resume, and the killed part's wall time counted
    assert (a["resumes"] == 0).all() and (b["resumes"] == 1).all()
    assert b["wall_seconds"].iloc[0] > 0


def test_timing_survives_a_checkpoint():
    """RunnerContext.timing / restore_timing: totals carry over, resumes count up."""
    from aninfonce.runner import RunnerContext

    ctx = RunnerContext(device=None, checkpoint_path=Path("x"), artifact_dir=Path("y"))
    ctx.train_steps, ctx.train_seconds, ctx.wall_before = 100, 2.0, 5.0
    saved = ctx.timing()
    later = RunnerContext(device=None, checkpoint_path=Path("x"), artifact_dir=Path("y"))
    later.restore_timing(saved)
    assert (later.train_steps, later.train_seconds, later.resumes) == (100, 2.0, 1)
    assert later.timing()["wall_seconds"] >= 5.0
    later.restore_timing(later.timing())
    assert later.resumes == 2


@pytest.mark.slow
def test_check_and_golden(tmp_path, linear, capsys):
    dirs = linear
    assert main(["fig2-linear", "--profile", "smoke", "--check", *dirs]) == 1  # no golden file yet
    assert main(["fig2-linear", "--profile", "smoke", "--update-golden", *dirs]) == 0
    assert main(["fig2-linear", "--profile", "smoke", "--check", *dirs]) == 0
    csv = tmp_path / "results" / "smoke" / "fig2-linear.csv"
    df = pd.read_csv(csv, dtype={"run_key": str})
    df.loc[df["metric"] == "mcc", "value"] += 0.01
    for _, rows in df.groupby("run_key"):  # rewritten as a run would write them: recorded, not "damaged"
        results.append_run(csv, rows.to_dict("records"))
    capsys.readouterr()
    assert main(["fig2-linear", "--profile", "smoke", "--check", *dirs]) == 1
    out = capsys.readouterr().out
    assert "mcc" in out and "golden" in out and "CHECK FAILED" in out


def test_claims_without_data_exit_non_zero_apart_from_failures(tmp_path, dirs, capsys):
    """No data is not a PASS: exit 3 (nothing failed, nothing settled), not 0."""
    quick = tmp_path / "results" / "quick"
    quick.mkdir(parents=True)
    (quick / "fig5.csv").write_text("")  # another entry's results: fig2 has none
    assert main(["fig2", "--profile", "quick", "--check", *dirs]) == 3
    assert "NO DATA" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["--plot-only", "--check"])
def test_a_missing_results_folder_is_an_error_and_leaves_the_figures(tmp_path, dirs, capsys, mode):
    """A mistyped --results-dir must not read as "no results yet": one line, exit 2, and the
    figures already there are not replaced by placeholders."""
    figure = tmp_path / "figures" / "quick" / "fig2.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"committed figure")
    assert main(["--profile", "quick", mode, *dirs]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results in ") and err.count("\n") == 1
    assert figure.read_bytes() == b"committed figure"


def test_slurm_without_slurm_is_an_error_before_any_training(tmp_path, dirs, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    assert main(["fig5", "--profile", "smoke", "--executor", "slurm", *dirs]) == 2
    assert "no SLURM on this machine" in capsys.readouterr().err
    assert not (tmp_path / "results" / "smoke").exists()


@pytest.mark.parametrize("args, message", [
    (["nosuchfig"], "no experiment matches 'nosuchfig'"),
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--device", "tpu", "--dry-run"], "unknown device 'tpu'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_input_gives_one_clear_message(args, message, dirs):
    res = run_cli(*args, *dirs)
    assert res.returncode != 0
    assert message in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_corrupt_csv_gives_one_clear_message_and_keeps_the_file(tmp_path, dirs):
    csv = tmp_path / "results" / "quick" / "fig2.csv"
    csv.parent.mkdir(parents=True)
    csv.write_bytes(b"\x00\xff garbage,\n\"unterminated")
    before = csv.read_bytes()
    res = run_cli("fig2", "--dry-run", *dirs)
    assert res.returncode == 2 and "cannot be read" in res.stderr and "Traceback" not in res.stderr
    assert csv.read_bytes() == before




def test_list_and_glob(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "fig2 " in out and "Figure 2" in out and "recon" in out
    assert main(["fig2-l*", "--list"]) == 0
    out = capsys.readouterr().out
    assert "fig2-linear" in out and "fig2 " not in out


def test_estimate_weights_runs_by_their_cost(capsys):
    """An ensemble run costs its number of terms: the plan's estimate for the 4-term run is 4 single terms."""
    from aninfonce import studies  # noqa: F401  (registers the studies)
    from aninfonce.registry import all_studies

    exp = all_studies()["ensemble"]
    cost = {spec.terms_used: exp.seconds(spec, "quick") for spec in exp.runs("quick", 1)}
    assert cost["t0+t1+t2+t3"] == 4 * cost["t0"] and cost["t0+t1"] == 2 * cost["t3"]
    assert exp.budget("quick") == sum(cost.values()) == 10 * cost["t0"]
    assert all_studies()["fig4"].budget("quick") == 12 * all_studies()["fig4"].seconds_per_run["quick"]


@pytest.mark.slow
def test_everything_skips_entries_whose_data_is_absent(tmp_path, capsys):
    """`python reproduce.py` on a machine without CIFAR10/ImageNet skips those
    two with one line each; naming one explicitly is an error (exit 2)."""
    args = ["--profile", "quick", "--dry-run", "--data-root", str(tmp_path / "nodata"),
            "--results-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipping cifar10-table: CIFAR10 not found in" in out and "skipping imagenet-table" in out
    assert not re.search(r"^cifar10-table\s", out, re.M)
    res = run_cli("cifar10-table", "--profile", "quick", "--executor", "local", "--data-root", str(tmp_path / "nodata"),
                  "--results-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f"))
    assert res.returncode == 2 and "CIFAR10 not found in" in res.stdout and "Traceback" not in res.stderr
    assert "error: not trained for missing data: CIFAR10 (cifar10-table)" in res.stderr


def test_missing_mnist_is_said_once_before_any_training(tmp_path, dirs, capsys, monkeypatch):
    """Both MNIST entries named, no MNIST: one sentence up front naming both, a closing line naming what
    was skipped, exit 2, and nothing trained or written."""
    monkeypatch.setenv("ANINFONCE_OFFLINE", "1")  # no download attempt
    assert main(["fig3", "mnist-standin-table", "--profile", "smoke", "--data-root", str(tmp_path / "empty"),
                 *dirs]) == 2
    out, err = capsys.readouterr()
    assert out.count("MNIST not found in") == 1 and "skipping fig3, mnist-standin-table: MNIST" in out
    assert err == "error: not trained for missing data: MNIST (fig3, mnist-standin-table); their figures " \
                  "and report sections show the results already stored\n"  # said twice in all, never once per run
    assert not (tmp_path / "results" / "smoke").exists() and not (tmp_path / "figures").exists()


@pytest.mark.slow
def test_missing_mnist_skips_its_entries_and_still_reports_the_rest(tmp_path, dirs, capsys, monkeypatch):
    """No MNIST with fig5 named too: fig5 trains, the report and figures are regenerated, exit 2 at the end."""
    monkeypatch.setenv("ANINFONCE_OFFLINE", "1")
    assert main(["fig3", "fig5", "--profile", "smoke", "--executor", "local", "--data-root",
                 str(tmp_path / "empty"), *dirs]) == 2
    out, err = capsys.readouterr()
    assert out.count("MNIST not found in") == 1 and "not trained for missing data: MNIST (fig3)" in err
    assert not results.load_experiment(tmp_path / "results", "smoke", "fig5").empty
    assert (tmp_path / "figures" / "smoke" / "REPORT.md").exists()
    assert_real_figure(tmp_path / "figures" / "smoke" / "fig5.png")


@pytest.mark.slow
def test_the_default_job_without_mnist_runs_the_rest_and_exits_0(tmp_path, dirs, capsys, monkeypatch):
    """No entry named (the README's main job) and no MNIST: its entries are skipped with a note at the end,
    everything else trains and is reported, exit 0; naming one of them makes its absence an error (above)."""
    monkeypatch.setenv("ANINFONCE_OFFLINE", "1")
    assert main(["--profile", "smoke", "--executor", "local", "--data-root", str(tmp_path / "empty"), *dirs]) == 0
    out, err = capsys.readouterr()
    assert out.count("MNIST not found in") == 1 and "error" not in err
    assert "note: not trained for missing data: MNIST (fig3, mnist-standin-table)" in out
    assert not results.load_experiment(tmp_path / "results", "smoke", "fig5").empty
    assert results.load_experiment(tmp_path / "results", "smoke", "fig3").empty
    assert (tmp_path / "figures" / "smoke" / "REPORT.md").exists()


def test_help_documents_every_option_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
        assert re.search(rf"^  {code}", text, re.M), code
    assert "SIGTERM" in text and text.count("python reproduce.py") >= 2
    bare = [a.option_strings or a.dest for a in build_parser()._actions if not a.help]
    assert not bare, f"options without help text: {bare}"


def test_dataset_missing_survives_a_process_boundary():
    import pickle

    from aninfonce.data import DatasetMissing

    err = pickle.loads(pickle.dumps(DatasetMissing("MNIST", Path("/nowhere"), "fix it")))
    assert type(err) is DatasetMissing and str(err) == "MNIST not found in /nowhere: fix it"


class _Payload:
    """Stands for any pickled object: loading it would run its module's code."""


def _garbage(path):
    path.write_bytes(b"not a checkpoint")


def _pickled_object(path):
    import torch

    torch.save({"step": 20, "rows": [], "payload": _Payload()}, path)


@pytest.mark.slow
@pytest.mark.parametrize("write, message", [(_garbage, "cannot be read"), (_pickled_object, "could run code")])
def test_bad_checkpoint_gives_one_clear_message_and_is_kept(tmp_path, linear, write, message):
    """A damaged checkpoint, or one that carries a pickled object (loaded with
    weights_only=True, so refused rather than run), is one line on stderr."""
    dirs = linear
    csv = tmp_path / "results" / "smoke" / "fig2-linear.csv"
    key = pd.read_csv(csv, dtype={"run_key": str})["run_key"].iloc[0]
    results.run_file(csv, key).unlink()  # the run's stored rows are gone: it must run again
    ckpt = tmp_path / "results" / ".cache" / "smoke" / "fig2-linear" / f"{key}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    write(ckpt)
    res = run_cli("fig2-linear", "--profile", "smoke", "--executor", "local", *dirs)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert ckpt.exists()


def test_a_bug_keeps_its_traceback_while_user_errors_are_one_line(tmp_path, dirs, monkeypatch):
    """Only errors a user can act on (aninfonce.errors.UserError) become one
    line and exit 2; a ValueError from a bug propagates with its traceback."""
    import dataclasses

    from aninfonce import registry, studies  # noqa: F401  (studies: registers them)

    def broken(spec, ctx):
        raise ValueError("a bug in a trainer")

    exp = registry.all_studies()["fig5"]
    monkeypatch.setitem(registry._STUDIES, "fig5", dataclasses.replace(exp, execute=broken))
    with pytest.raises(ValueError, match="a bug in a trainer"):
        main(["fig5", "--profile", "smoke", "--executor", "local", *dirs])
    assert main(["fig5", "--profile", "smoke", "--device", "tpu", *dirs]) == 2


def test_an_entry_that_trains_only_when_named_is_skipped_by_run_everything(tmp_path, dirs, capsys):
    """The calibration's open candidates cost hours: `python reproduce.py` alone plans nothing of it
    (saying so), naming it plans its runs."""
    assert main(["--profile", "quick", "--dry-run", *dirs]) == 0
    out = capsys.readouterr().out
    assert "not training calibration: it trains only when named" in out
    assert not re.search(r"^calibration\s", out, re.M)
    assert main(["calibration", "--profile", "quick", "--dry-run", *dirs]) == 0
    assert re.search(r"^calibration\s+0\s+0\s+\d+", capsys.readouterr().out, re.M)


def test_a_dry_run_writes_nothing(tmp_path, capsys):
    """--dry-run shows the plan and leaves the results folder as it found it: no manifest written for an
    entry without one, no long CSV rebuilt (it says that a run would rebuild it); a fresh folder stays
    absent."""
    import shutil

    quick = Path(__file__).resolve().parent.parent / "results" / "quick"
    results_dir = tmp_path / "results"
    shutil.copytree(quick / "fig5", results_dir / "quick" / "fig5")  # its run files, without plan or long CSV
    before = sorted((p.relative_to(results_dir), p.stat().st_mtime_ns) for p in results_dir.rglob("*"))
    assert main(["fig5", "fig2", "--profile", "quick", "--dry-run", "--results-dir", str(results_dir)]) == 0
    out = capsys.readouterr().out
    assert "fig5.csv is missing, damaged or out of step with its run files; a run rebuilds it" in out
    assert sorted((p.relative_to(results_dir), p.stat().st_mtime_ns) for p in results_dir.rglob("*")) == before
    assert main(["--profile", "paper", "--dry-run", "--results-dir", str(tmp_path / "fresh")]) == 0
    assert not (tmp_path / "fresh").exists()
