"""Figure 3: the MNIST loader on the real files, the missing-data message, the
VAE artefact trained once and reused, and a smoke run of the whole figure."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_real_figure

from aninfonce.cli import main
from aninfonce.data.mnist import FILES, DatasetMissing, ensure_mnist, load_mnist
from aninfonce.studies.fig3 import PROFILE_SETTINGS
from aninfonce.runner import RunnerContext
from aninfonce.trainers.vae_images import Fig3Spec, vae_for

ROOT = Path(__file__).resolve().parent.parent
# official per-class counts of the MNIST training set
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_loader_reads_and_verifies_real_mnist(mnist_root):
    raw = ensure_mnist(mnist_root, check_md5=True)
    assert sorted(p.name for p in raw.iterdir() if p.name in FILES) == sorted(FILES)
    x, y = load_mnist(mnist_root, train=True)
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) == 1.0
    assert np.bincount(y.numpy()).tolist() == TRAIN_COUNTS
    xt, yt = load_mnist(mnist_root, train=False, limit=500)
    assert xt.shape == (500, 1, 28, 28) and len(yt) == 500


def test_damaged_file_is_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        (raw / name).write_bytes(b"\0" * 16)
    with pytest.raises(DatasetMissing, match="has 16 bytes, expected"):
        ensure_mnist(tmp_path)


@pytest.mark.slow
def test_missing_mnist_one_line_nonzero_no_traceback(tmp_path):
    """Through the real CLI and its default (pool) executor: MNIST is checked
    before any training; the entry is skipped with one line saying where the
    data was looked for and how to get it, and the command ends with one error
    line and exit 2 (a worker's DatasetMissing crossing the process boundary is
    test_cli's)."""
    env = {**os.environ, "ANINFONCE_OFFLINE": "1"}
    empty = tmp_path / "nowhere"
    proc = subprocess.run(
        [sys.executable, "reproduce.py", "fig3", "--profile", "smoke", "--data-root", str(empty), "--jobs", "1",
         "--results-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("\r") and "it/s" not in l]
    assert len(lines) == 1 and lines[0].startswith("error: not trained for missing data: MNIST (fig3)"), proc.stderr
    said = [l for l in proc.stdout.splitlines() if "MNIST not found" in l]
    assert len(said) == 1 and said[0].startswith("skipping fig3: MNIST not found in"), proc.stdout
    assert str(empty / "MNIST" / "raw") in said[0]
    assert "--data-root" in said[0] and "ANINFONCE_DATA" in said[0] and "internet" in said[0]


@pytest.mark.slow
def test_vae_is_trained_once_and_reused(tmp_path, mnist_root):
    spec = Fig3Spec(experiment="fig3", **PROFILE_SETTINGS["smoke"])
    ctx = RunnerContext(device=torch.device("cpu"), checkpoint_path=tmp_path / "ck.pt",
                        artifact_dir=tmp_path / "artifacts", data_root=mnist_root, show_progress=False)
    first, built = vae_for(spec, ctx)
    assert built
    (artefact,) = (tmp_path / "artifacts").glob("vae_*.pt")
    mtime = artefact.stat().st_mtime_ns
    # another run of the same profile and seed (different loss and Lambda) hits the cache
    other = Fig3Spec(experiment="fig3", loss="infonce-learned", lam2=50.0, **PROFILE_SETTINGS["smoke"])
    second, built_again = vae_for(other, ctx)
    assert not built_again
    assert artefact.stat().st_mtime_ns == mtime
    for k, v in first["state_dict"].items():
        assert torch.equal(v, second["state_dict"][k])
    # a different seed gets its own VAE
    _, built_seed1 = vae_for(Fig3Spec(experiment="fig3", seed=1, **PROFILE_SETTINGS["smoke"]), ctx)
    assert built_seed1 and len(list((tmp_path / "artifacts").glob("vae_*.pt"))) == 2


@pytest.mark.slow
def test_smoke_fig3_end_to_end(tmp_path, mnist_root, capsys):
    res, figs = tmp_path / "results", tmp_path / "figures"
    argv = ["fig3", "--profile", "smoke", "--executor", "local", "--results-dir", str(res), "--figures-dir", str(figs),
            "--data-root", str(mnist_root)]
    assert main(argv) == 0
    df = pd.read_csv(res / "smoke" / "fig3.csv")
    assert df["run_key"].nunique() == 8  # 2 Lambda_2 x 3 losses + 2 linear ranges
    assert len(list((res / ".cache" / "smoke" / "fig3" / "artifacts").glob("vae_*.pt"))) == 1  # one VAE for all runs
    knn = df[df["metric"] == "knn_acc"]
    assert len(knn) == 8 and knn["value"].between(0, 1).all()
    assert knn["protocol"].str.contains("k=10").all() and knn["protocol"].str.contains("real MNIST test").all()
    assert set(df.loc[df["metric"].str.startswith("r2_"), "protocol"]) == {"same-sample", "held-out"}
    assert df.loc[df["metric"] == "r2_style", "value"].notna().all()  # style defined at Lambda_2 = 5 too
    lam = df[df["metric"].str.startswith("lambda_hat/")]
    assert lam["metric"].nunique() == 10
    for name in ("fig3.png", "fig3_vae.png", "fig3_training.png"):
        assert_real_figure(figs / "smoke" / name)
    report = (figs / "smoke" / "REPORT.md").read_text()
    section = report[report.index("(`fig3`"):]
    assert "![fig3](fig3.png)" in section and "_No results for this profile yet._" not in section.split("\n## ")[0]
    mtime = (res / "smoke" / "fig3.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0  # second run: every run cached
    assert "finished" not in capsys.readouterr().out
    assert (res / "smoke" / "fig3.csv").stat().st_mtime_ns == mtime
    # the generator's grids are a result beside the rows: with the (git-ignored) cache gone, a fresh
    # --plot-only into a new folder still draws the generator from the results alone
    (grids,) = (res / "smoke" / "fig3").glob("vae_*.npz")
    assert grids.stem == Path(df["vae_artifact"].iloc[0]).stem
    shutil.rmtree(res / ".cache")
    assert main(["--plot-only", "--profile", "smoke", "--results-dir", str(res), "--figures-dir", str(tmp_path / "f2")]) == 0
    assert_real_figure(tmp_path / "f2" / "smoke" / "fig3_vae.png")


def test_loss_eval_is_the_mean_over_training_size_batches():
    """loss_eval averages the training loss over eval_samples // batch fixed batches: each batch has
    its own negatives (the training batch size, so the same log-N scale), and the mean is over them."""
    from aninfonce.losses import contrastive_loss
    from aninfonce.trainers.vae_images import eval_pair_batches, paired_loss

    assert eval_pair_batches(Fig3Spec(experiment="fig3", **PROFILE_SETTINGS["quick"])) == 8
    assert eval_pair_batches(Fig3Spec(experiment="fig3", batch=1000, eval_samples=512)) == 1
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(96, 10, generator=g), torch.randn(96, 10, generator=g)
    lam = torch.linspace(1.0, 3.0, 10)
    parts = [float(contrastive_loss(a[i:i + 32], b[i:i + 32], lam)) for i in (0, 32, 64)]
    assert paired_loss(a, b, lam, 32) == pytest.approx(np.mean(parts), rel=1e-6)
    assert paired_loss(a, b, lam, 96) == pytest.approx(float(contrastive_loss(a, b, lam)), rel=1e-6)
    # a batch of its own negatives is not the same as one big batch: the split matters
    assert abs(paired_loss(a, b, lam, 32) - paired_loss(a, b, lam, 96)) > 0.1


def test_each_claim_reads_the_runs_it_compares():
    """Figure 3's claims name the runs they read (Claim.reads), so a claim waits only on those runs'
    settling. On the committed quick results each check gives the same verdict and numbers on its runs
    alone as on the whole grid, and every claim reads fewer runs than the grid has (panels C / D: their
    linear run). Figure 2's claims likewise."""
    import aninfonce.analyses  # noqa: F401  (registers the analyses)
    from aninfonce import manifest
    from aninfonce.registry import all_analyses

    for eid in ("fig2", "fig3"):
        (exp,) = manifest.bind([all_analyses()[eid]], ROOT / "results", "quick")
        df = pd.read_csv(ROOT / "results" / "quick" / f"{eid}.csv", dtype={"run_key": str}, low_memory=False)
        df = df[df["run_key"].isin(exp.grid_keys("quick", df))]
        n_runs = df["run_key"].nunique()
        for claim in exp.claims:
            read = claim.reads(df)
            assert 0 < read["run_key"].nunique() < n_runs, claim.id
            assert claim.check(read) == claim.check(df), claim.id  # the same verdict and the same numbers
            if claim.id.endswith("lambda-order"):  # panels C / D: one linear run per seed
                assert set(read["lambda_kind"]) == {"linear"} and read["run_key"].nunique() == df["seed"].nunique()
