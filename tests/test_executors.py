"""Scale-out: the pool executor for real (parallel single-thread processes),
the slurm executor through submitit's local executor, and concurrent appends
to one results CSV."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from aninfonce import results
from aninfonce.executors import run_pool
from aninfonce.registry import Study
from aninfonce.runner import execute, plan
from aninfonce.slurm import run_slurm
from aninfonce.specs import RunSpec
from aninfonce.trainers.synthetic import SyntheticSpec, train_synthetic

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(batch=32, steps=30, eval_every=15, widths=(2, 2), eval_samples=256, mixing_draws=200)


def _experiment(exp_id: str, specs: list[RunSpec], fn) -> Study:
    return Study(id=exp_id, runs=lambda profile, n: specs, execute=fn)


@dataclasses.dataclass(frozen=True)
class ProbeSpec(RunSpec):
    sleep: float = 0.0
    fail: bool = False
    gate: str = ""  # a file the probe waits for (up to 4 minutes) before it returns: a job held in flight


def probe(spec: ProbeSpec, ctx) -> list[dict]:
    """Module-level, so it pickles by reference into pool and submitit workers."""
    start = time.time()
    time.sleep(spec.sleep)
    while spec.gate and not Path(spec.gate).exists() and time.time() < start + 240:
        time.sleep(0.1)
    if spec.fail:
        raise ValueError(f"probe {spec.seed} failed on purpose")
    info = {"pid": os.getpid(), "threads": torch.get_num_threads(), "start": start, "end": time.time()}
    return [{"step": 0, "metric": k, "value": float(v)} for k, v in info.items()]


def _per_run(csv: Path) -> pd.DataFrame:
    df = results.load(csv)
    return df.pivot_table(index="run_key", columns="metric", values="value")


def _sorted_rows(csv: Path) -> pd.DataFrame:
    cols = ["run_key", "step", "metric", "protocol", "value"]
    return results.load(csv)[cols].sort_values(cols[:4]).reset_index(drop=True)


@pytest.mark.slow
def test_pool_parallel_single_thread_workers_same_numbers_as_local_and_errors_keep_their_type(tmp_path):
    """One pool session (worker start-up is the slow part): four probes, one
    of which fails, and two real synthetic runs."""
    probes = [ProbeSpec(experiment="probe", seed=s, sleep=1.0, fail=(s == 3)) for s in range(4)]
    synth = [SyntheticSpec(experiment="pooltest", loss=loss, seed=1, **TINY) for loss in ("aninfonce", "infonce-tau1")]
    exps = [_experiment("probe", probes, probe), _experiment("pooltest", synth, train_synthetic)]
    pooled, local = tmp_path / "pool", tmp_path / "local"
    lines: list[str] = []
    with pytest.raises(ValueError, match="failed on purpose"):
        run_pool(plan(exps, "smoke", 1, pooled), "smoke", torch.device("cpu"), pooled, None, jobs=2, log=lines.append)
    assert sum("FAILED" in line for line in lines) == 1 and sum("finished" in line for line in lines) == 5
    # the other runs finished and were recorded, by single-thread worker processes working at the same time
    df = _per_run(results.csv_path(pooled, "smoke", "probe"))
    assert sorted(df.index) == sorted(s.key for s in probes[:3])
    assert set(df["threads"]) == {1.0} and os.getpid() not in set(df["pid"])
    spans = sorted(zip(df["start"], df["end"]))
    assert df["pid"].nunique() == 2 and any(b0 < a1 for (a0, a1), (b0, b1) in zip(spans, spans[1:]))
    # a rerun plans only the failed run
    assert [r.spec.seed for r in plan(exps, "smoke", 1, pooled) if r.status != "done"] == [3]
    # the workers' numbers are a local single-thread run's, bit for bit
    torch.set_num_threads(1)
    execute(plan(exps[1:], "smoke", 1, local), "smoke", torch.device("cpu"), local, show_progress=False,
            log=lambda s: None)
    pd.testing.assert_frame_equal(_sorted_rows(results.csv_path(local, "smoke", "pooltest")),
                                  _sorted_rows(results.csv_path(pooled, "smoke", "pooltest")))


@pytest.mark.slow
def test_slurm_through_submitit_local_returns_or_waits_and_a_rerun_gathers(tmp_path, monkeypatch):
    """Submitit's local executor; every job pays a python and torch start, so
    the two ways of calling share one session of three jobs.

    Without waiting: the call returns while its job waits for a gate file, a
    rerun shows it in flight and submits nothing, and once the job wrote its
    result a rerun gathers it and has nothing left. Waiting, while that job is
    held: a synthetic run and a failing probe are submitted together; the call
    raises the failing job's own error type once both ended, the synthetic
    run's rows are recorded and are a local run's, and a rerun submits no
    cached run again."""
    from aninfonce.slurm import SlurmResources

    # submitit's local jobs start a fresh interpreter: let it import this module, where `probe` lives
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                 os.environ.get("PYTHONPATH")])))
    # -- returns: one probe job held by a gate file
    gate, returns = tmp_path / "gate", tmp_path / "returns"
    held = [_experiment("probe", [ProbeSpec(experiment="probe", gate=str(gate))], probe)]
    held_folder, held_lines = returns / "submitit", []

    def again() -> int:
        return run_slurm(plan(held, "smoke", 1, returns), "smoke", None, returns, None, log=held_lines.append,
                         folder=held_folder, cluster="local", resources=SlurmResources(device="cpu"), wait=False)

    assert again() == 1 and not list(held_folder.glob("*_result.pkl"))  # returned while the job waits
    assert again() == 1 and len(list(held_folder.glob("*_submitted.pkl"))) == 1
    assert any(line.startswith("in flight: probe") for line in held_lines), held_lines

    # -- waits: a synthetic run and a failing probe, one array
    synth = [SyntheticSpec(experiment="slurmtest", seed=0, **TINY)]
    exps = [_experiment("slurmtest", synth, train_synthetic),
            _experiment("probe", [ProbeSpec(experiment="probe", fail=True)], probe)]
    waits, folder = tmp_path / "waits", tmp_path / "waits" / "submitit"
    lines: list[str] = []
    with pytest.raises(ValueError, match="failed on purpose"):  # the job's own error type, not FailedJobError
        run_slurm(plan(exps, "smoke", 1, waits), "smoke", torch.device("cpu"), waits, None, log=lines.append,
                  folder=folder, cluster="local")
    assert "submitted 2 runs to local" in lines[0]
    df = results.load(results.csv_path(waits, "smoke", "slurmtest"))
    assert sorted(df["run_key"].unique()) == sorted(s.key for s in synth)
    n_jobs = len(list(folder.glob("*_submitted.pkl")))
    assert n_jobs == 2
    # the numbers of a local run (submitit's jobs keep torch's default thread count: equal to tolerance)
    here = tmp_path / "here"
    execute(plan(exps[:1], "smoke", 1, here), "smoke", torch.device("cpu"), here, show_progress=False,
            log=lambda s: None)
    a = _sorted_rows(results.csv_path(here, "smoke", "slurmtest"))
    b = _sorted_rows(results.csv_path(waits, "smoke", "slurmtest"))
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    assert b["value"].to_numpy() == pytest.approx(a["value"].to_numpy(), rel=1e-3, abs=1e-4, nan_ok=True)
    # runs already cached are not submitted again: only the failed one is
    again_planned = plan(exps, "smoke", 1, waits)
    assert [r.spec.experiment for r in again_planned if r.status != "done"] == ["probe"]
    run_slurm([r for r in again_planned if r.status == "done"], "smoke", torch.device("cpu"), waits, None,
              log=lines.append, folder=folder, cluster="local")
    assert len(list(folder.glob("*_submitted.pkl"))) == n_jobs

    # -- returns, continued: the held job ends; a rerun gathers it
    gate.touch()
    deadline = time.time() + 240
    while not list(held_folder.glob("*_result.pkl")) and time.time() < deadline:
        time.sleep(0.2)
    assert again() == 0 and any(line.startswith("gathered probe") for line in held_lines), held_lines
    assert len(list(held_folder.glob("*_submitted.pkl"))) == 1


# ---------------------------------------------------------------- slurm resources

@pytest.mark.parametrize("args, message", [
    (["--executor", "pool", "--slurm-partition", "gpu"],
     "--slurm-partition applies only with --executor slurm (not --executor pool)"),
    (["--executor", "local", "--slurm-gpus-per-run", "2", "--slurm-time-min", "60"],
     "--slurm-gpus-per-run, --slurm-time-min apply only with --executor slurm (not --executor local)"),
    (["--slurm-cpus-per-task", "4"], "--slurm-cpus-per-task applies only with --executor slurm"),  # pool, the default
    (["--executor", "slurm", "--device", "cpu", "--slurm-gpus-per-run", "1"], "--device cpu contradicts"),
    (["--executor", "slurm", "--slurm-gpus-per-run", "-1"], "--slurm-gpus-per-run must be at least 0"),
    (["--executor", "slurm", "--slurm-time-min", "0"], "--slurm-time-min must be at least 1"),
])
def test_bad_slurm_options_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    """Checked before anything is planned or submitted (even with --dry-run)."""
    from aninfonce.cli import main

    assert main(["cifar10-table", "--profile", "smoke", "--dry-run", "--results-dir", str(tmp_path), *args]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert out == ""


def test_bad_slurm_option_exits_2_from_the_command_line(tmp_path):
    res = subprocess.run([sys.executable, "reproduce.py", "cifar10-table", "--executor", "pool", "--slurm-partition",
                          "gpu", "--results-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == "error: --slurm-partition applies only with --executor slurm (not --executor pool)\n"


def test_slurm_resources_per_run_and_their_sbatch_lines(tmp_path):
    """An image run asks for 1 GPU by default, N GPUs as N tasks (one rank each);
    a synthetic run for no GPU (at most 1), one task. The parameters are
    submitit's: AutoExecutor accepts them, and SLURM's sbatch file gets them."""
    import submitit
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    from aninfonce import studies  # noqa: F401  (registers the studies)
    from aninfonce.registry import select
    from aninfonce.slurm import SlurmResources

    image, synth = (plan(select([e]), "paper", 1, tmp_path)[0] for e in ("cifar10-table", "fig2"))
    default, eight = SlurmResources(), SlurmResources(partition="gpu", gpus_per_run=8, cpus_per_task=10, time_min=600)
    assert default.parameters(image) == {"timeout_min": 1440, "gpus_per_node": 1}
    # a synthetic run shares a GPU with 7 others, one CPU each
    assert default.parameters(synth) == {"timeout_min": 1440, "gpus_per_node": 1, "cpus_per_task": 8}
    assert (default.pack(synth), default.pack(image)) == (8, 1)
    assert SlurmResources(device="cuda").parameters(synth) == default.parameters(synth)
    assert SlurmResources(runs_per_gpu=3).parameters(synth)["cpus_per_task"] == 3
    assert SlurmResources(device="cpu").parameters(image) == {"timeout_min": 1440}
    assert SlurmResources(device="cpu").parameters(synth) == {"timeout_min": 1440}
    assert SlurmResources(device="cpu").pack(synth) == 1
    assert eight.parameters(image) == {"timeout_min": 600, "gpus_per_node": 8, "tasks_per_node": 8,
                                       "cpus_per_task": 10, "slurm_partition": "gpu"}
    assert eight.parameters(synth) == {"timeout_min": 600, "gpus_per_node": 1, "cpus_per_task": 10,
                                       "slurm_partition": "gpu"}
    submitit.AutoExecutor(folder=str(tmp_path / "s"), cluster="local").update_parameters(**eight.parameters(image))
    names = SlurmExecutor._equivalence_dict()
    sbatch = _make_sbatch_string(command="true", folder=str(tmp_path / "s"), **{
        k.removeprefix("slurm_") if k.startswith("slurm_") else names[k]: v
        for k, v in eight.parameters(image).items()})
    for line in ("--gpus-per-node=8", "--ntasks-per-node=8", "--cpus-per-task=10", "--partition=gpu", "--time=600"):
        assert f"#SBATCH {line}\n" in sbatch, sbatch


# ---------------------------------------------------------------- submission returns; reruns skip what is in flight

FAKE_SBATCH = """#!/bin/sh
# records what it was given, answers as sbatch does
n=$(cat "$FAKE_SLURM/next_id")
echo "$n" >> "$FAKE_SLURM/calls"
cp "$1" "$FAKE_SLURM/sbatch_$n.sh"
echo "Submitted batch job $n"
"""
FAKE_SACCT = """#!/bin/sh
# answers as sacct --parsable2 does, from the states the test wrote
echo "$@" >> "$FAKE_SLURM/sacct_calls"
echo "JobID|State|NodeList"
cat "$FAKE_SLURM/states"
"""


def _fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """sbatch, sacct, squeue and srun on PATH: scripts writing what they were given to files."""
    fake = tmp_path / "fake-slurm"
    fake.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("sacct", FAKE_SACCT), ("squeue", "#!/bin/sh\n"),
                       ("srun", "#!/bin/sh\n")):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    (fake / "states").write_text("")
    monkeypatch.setenv("FAKE_SLURM", str(fake))
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    return fake


def test_slurm_submission_packs_runs_per_gpu_returns_and_a_rerun_skips_what_is_in_flight(tmp_path, monkeypatch):
    """Through submitit's real SLURM executor against a fake sbatch / sacct: 5
    single-device runs, 2 to a GPU, are one array of 3 jobs asking for 1 GPU
    and 2 CPUs each; the call returns with the runs recorded as in flight. A
    rerun while sacct says RUNNING submits nothing. Then one job's run has
    its rows (gathered) and another job FAILED: only the failed job's runs go
    to sbatch again, named with the log path."""
    import submitit

    from aninfonce.slurm import InFlight, SlurmResources

    fake = _fake_slurm(tmp_path, monkeypatch)
    specs = [ProbeSpec(experiment="probe", seed=s) for s in range(5)]
    exps = [_experiment("probe", specs, probe)]
    res = tmp_path / "res"
    resources = SlurmResources(runs_per_gpu=2, time_min=90, partition="gpu")

    def submit(n_id: int) -> tuple[int, list[str]]:
        (fake / "next_id").write_text(f"{n_id}\n")
        submitit.SlurmJob.watcher.clear()
        lines: list[str] = []
        left = run_slurm(plan(exps, "smoke", 1, res), "smoke", None, res, None, log=lines.append,
                         folder=tmp_path / "submitit", cluster="slurm", resources=resources, wait=False)
        return left, lines

    left, lines = submit(4242)
    assert left == 5
    assert (fake / "calls").read_text().split() == ["4242"]
    sbatch = (fake / "sbatch_4242.sh").read_text()
    for line in ("--array=0-2%3", "--gpus-per-node=1", "--cpus-per-task=2", "--partition=gpu", "--time=90"):
        assert f"#SBATCH {line}\n" in sbatch, sbatch
    assert lines[0].startswith("submitted array 4242: 5 runs in 3 jobs to slurm, each 1 GPU shared by up to 2 "
                               "runs, 2 CPUs, 90 min"), lines
    book = InFlight(res, "smoke")
    assert sorted(book.runs) == sorted(s.key for s in specs)
    jobs = [book.runs[s.key]["job_id"] for s in specs]
    assert jobs == ["4242_0", "4242_0", "4242_1", "4242_1", "4242_2"] and book.runs[specs[0].key]["kind"] == "pack"

    # a rerun: every job still queued or running -> nothing submitted, each run shown in flight
    (fake / "states").write_text("4242_0|RUNNING|n1\n4242_1|PENDING|\n4242_2|RUNNING|n2\n")
    left, lines = submit(4343)
    assert left == 5 and (fake / "calls").read_text().split() == ["4242"]
    assert sum(line.startswith("in flight: ") for line in lines) == 5 and "running" in lines[0], lines

    # job 4242_0 finished (its runs wrote their rows), 4242_1 failed, 4242_2 still runs
    execute(plan(exps, "smoke", 1, res)[:2], "smoke", torch.device("cpu"), res, show_progress=False, log=lambda s: None)
    (fake / "states").write_text("4242_0|COMPLETED|n1\n4242_1|FAILED|n1\n4242_2|RUNNING|n2\n")
    left, lines = submit(4343)
    assert (fake / "calls").read_text().split() == ["4242", "4343"]
    resubmitted = (fake / "sbatch_4343.sh").read_text()  # the 2 failed runs: one job (no array of one)
    assert "--array" not in resubmitted and "#SBATCH --cpus-per-task=2\n" in resubmitted
    assert sum(line.startswith("gathered ") for line in lines) == 2
    failed = [line for line in lines if "FAILED on the cluster" in line]
    assert len(failed) == 2 and all("job 4242_1 failed; log " in f and "4242_1_0_log.err" in f for f in failed)
    assert left == 3
    book = InFlight(res, "smoke")
    assert sorted(e["job_id"] for e in book.runs.values()) == ["4242_2", "4343", "4343"]


# ---------------------------------------------------------------- progress under the pool

@pytest.mark.slow
def test_pool_shows_one_progress_line_with_steps_per_second_and_eta(tmp_path, capfd, monkeypatch):
    """A real pool of 2 workers on 2 small synthetic runs: the parent prints
    its progress line (summed over workers, from what they report at their
    evaluation points) on stderr, and one summary line per finished run."""
    from aninfonce import progress

    monkeypatch.setattr(progress, "LOG_EVERY", 0.2)  # a log file's interval, shortened for a short run
    spec = dict(TINY, steps=400, eval_every=100)
    synth = [SyntheticSpec(experiment="progress", seed=s, **spec) for s in range(2)]
    lines: list[str] = []
    run_pool(plan([_experiment("progress", synth, train_synthetic)], "smoke", 1, tmp_path), "smoke",
             torch.device("cpu"), tmp_path, None, jobs=2, log=lines.append)
    err = capfd.readouterr().err
    shown = [line for line in err.splitlines() if line.startswith("pool: ")]
    assert shown and all(re.match(r"pool: \d running, \d/2 finished, [\d,.]+ steps/s, ETA ", s) for s in shown), err
    assert any(not re.search(r" 0\.0 steps/s", s) for s in shown), shown  # the workers' steps arrived
    assert len(lines) == 2 and all(re.search(r"finished in .*, [\d,.]+ steps/s -> ", s) for s in lines), lines


# ---------------------------------------------------------------- concurrent appends
WRITERS, RUNS_EACH, ROWS_PER_RUN = 4, 6, 25


def _writer(csv: str, writer: int, barrier) -> None:
    barrier.wait()  # all writers start appending at the same moment
    for r in range(RUNS_EACH):
        key = f"{writer:02d}{r:010d}"  # all digits: must stay a string through the CSV
        rows = [{"experiment": "conc", "run_key": key, "seed": writer, "step": i, "metric": "m", "value": float(i),
                 "protocol": None, "writer": writer} for i in range(ROWS_PER_RUN)]
        results.append_run(Path(csv), rows)
    # every writer also rewrites one shared run: it must end up there once
    results.append_run(Path(csv), [{"experiment": "conc", "run_key": "shared", "seed": 0, "step": i, "metric": "m",
                                    "value": float(writer), "protocol": None} for i in range(ROWS_PER_RUN)])


@pytest.mark.slow
def test_concurrent_writers_lose_and_duplicate_no_row(tmp_path):
    csv = tmp_path / "smoke" / "conc.csv"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(str(csv), w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    df = results.load(csv)
    expected = {f"{w:02d}{r:010d}" for w in range(WRITERS) for r in range(RUNS_EACH)} | {"shared"}
    assert set(df["run_key"]) == expected
    assert len(df) == len(expected) * ROWS_PER_RUN
    assert not df.duplicated(["run_key", "step"]).any()
    shared = df[df["run_key"] == "shared"]
    assert shared["value"].nunique() == 1  # one writer's version, whole
    assert results.done_keys(csv) == expected
    assert not list(csv.parent.glob(".*.tmp"))  # no temporary file left behind


def test_code_dirty_ignores_outputs(tmp_path):
    """A run's git_dirty is about the code: rows another run wrote into a tracked results CSV, or a
    regenerated figure, leave it clean; an edited module makes it dirty."""
    from aninfonce.provenance import code_dirty

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for rel in ("pkg/mod.py", "results/quick/fig3.csv", "figures/quick/REPORT.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("v1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert not code_dirty(tmp_path)
    (tmp_path / "results/quick/fig3.csv").write_text("v2\n")
    (tmp_path / "figures/quick/REPORT.md").write_text("v2\n")
    (tmp_path / "untracked.py").write_text("new\n")
    assert not code_dirty(tmp_path)
    (tmp_path / "pkg/mod.py").write_text("v2\n")
    assert code_dirty(tmp_path)


# ---------------------------------------------------------------- estimates name their device

def test_dry_run_estimates_name_their_device(tmp_path, capsys, mnist_root):
    """paper: measured GPU time on a named device, else 'unmeasured' (never a CPU
    figure); quick: labelled CPU, its wall divided among --jobs workers. (fig3 plans only where MNIST is.)"""
    from aninfonce.cli import main

    assert main(["fig2", "fig3", "--profile", "paper", "--dry-run", "--results-dir", str(tmp_path),
                 "--data-root", str(mnist_root)]) == 0
    out = capsys.readouterr().out
    fig2, fig3 = (next(line for line in out.splitlines() if line.startswith(e + " ")) for e in ("fig2", "fig3"))
    assert fig2.endswith("on one NVIDIA H200, 8 runs per GPU (measured)") and fig3.endswith("unmeasured"), out
    assert "unmeasured on GPU (no step time measured; not included): fig3 (20)" in out and "CPU" not in out
    assert main(["fig2", "--dry-run", "--jobs", "3", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CPU time left" in out and "wall at --jobs 3" in out and "GPU" not in out, out


def test_measured_gpu_time_is_the_committed_paper_runs(tmp_path):
    """The fig2 GPU step time is the one the committed paper runs recorded."""
    from aninfonce.estimates import GPU_MEASURED

    df = results.load(ROOT / "results" / "paper" / "fig2.csv").drop_duplicates("run_key")
    per_step = (pd.to_numeric(df["wall_seconds"]) / pd.to_numeric(df["steps"])).mean()
    assert GPU_MEASURED["fig2"].seconds == pytest.approx(per_step, rel=0.02)
