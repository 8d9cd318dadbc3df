"""The committed results (quick, and the paper profile's first runs) regenerate every figure and the report
from a clean clone (no training, no data)."""

import shutil
from pathlib import Path

import pytest
from conftest import assert_real_figure, table_rows

import aninfonce.analyses  # noqa: F401  (registers every analysis)
from aninfonce import speed
from aninfonce.cli import main
from aninfonce.registry import all_analyses

pytestmark = pytest.mark.slow  # end to end through the CLI

ROOT = Path(__file__).resolve().parent.parent


def test_plot_only_from_committed_quick_results(tmp_path):
    shutil.copytree(ROOT / "results" / "quick", tmp_path / "results" / "quick")
    assert main(["--plot-only", "--profile", "quick", "--results-dir", str(tmp_path / "results"),
                 "--figures-dir", str(tmp_path / "figures")]) == 0
    out = tmp_path / "figures" / "quick"
    report = (out / "REPORT.md").read_text()
    for exp in all_analyses().values():
        assert f"`{exp.id}`" in report
    figure = {"fig2": "fig2", "fig2-linear": "fig2_linear", "fig3": "fig3", "fig4": "fig4", "fig5": "fig5",
              "hardneg": "hardneg", "ensemble": "ensemble", "authors-logs": "authors_logs", "calibration": "calibration"}
    committed = {e for e in figure if (ROOT / "results" / "quick" / f"{e}.csv").exists()}
    assert {"fig3", "fig5", "authors-logs", "calibration"} <= committed
    for exp_id, name in figure.items():
        if exp_id in committed:  # drawn from data
            assert_real_figure(out / f"{name}.png")
        else:  # an entry whose runs are still to come says so
            section = report.split(f"(`{exp_id}`, source")[1].split("\n## ")[0]
            assert "_No results for this profile yet._" in section
    # every claim of the profile is reported with one of the four statuses, seeds and step
    for exp in all_analyses().values():
        for claim in exp.claims:
            if "quick" in claim.profiles:
                # its row in a claims table (the rule-change log names claims too, in rows of its own)
                line = next(l for l in report.splitlines() if f"`{claim.id}`" in l and l.startswith("| **"))
                assert any(f"**{s}**" in line for s in ("PASS", "FAIL", "NOT SETTLED", "NO DATA")), line
    assert "**Claims: " in report
    # the header states each settle rule from the registry, not from a literal
    assert ("every run the claim reads moved its evaluation loss by at most 0.02, and in `fig3` and `mnist-standin-table` "
            "its sorted learned Λ̂ by at most 10% (each rank against its final value, floored at 1% of the top "
            "rank) over its last fifth") in report


def test_plot_only_from_committed_paper_results(tmp_path):
    """The paper profile's first runs (a GPU lease's) regenerate its report: the
    finished runs in the wall-time table, claims waiting for whole grids."""
    shutil.copytree(ROOT / "results" / "paper", tmp_path / "results" / "paper")
    assert main(["--plot-only", "--profile", "paper", "--results-dir", str(tmp_path / "results"),
                 "--figures-dir", str(tmp_path / "figures")]) == 0
    report = (tmp_path / "figures" / "paper" / "REPORT.md").read_text()
    timing = {row[0]: row for row in table_rows(report) if len(row) == 6}  # the wall-time table
    assert timing["fig2"][1] == "2" and timing["fig2"][5] == "cuda"
    assert "no seed has its whole grid yet (seed 0: 2 of 24 runs)" in report
    assert_real_figure(tmp_path / "figures" / "paper" / "fig2.png")


@pytest.mark.skipif(not speed.cpu_has_bf16(), reason="fast-lowp needs a CPU with bf16 matrix support (AVX512-BF16 or AMX)")
def test_speed_preset_results_compare_with_the_default_ones(tmp_path, capsys):
    """Results of a --speed preset (their own folder) pair up with the default
    ones grid point by grid point (benchmarks/compare_presets.py), here on
    fig2's smoke grid (2 Lambda_2 x 4 losses)."""
    import importlib.util

    dirs = ["--results-dir", str(tmp_path / "results"), "--figures-dir", str(tmp_path / "figures")]
    assert main(["fig2", "--profile", "smoke", "--executor", "local", *dirs]) == 0
    assert main(["fig2", "--profile", "smoke", "--executor", "local", "--speed", "fast-lowp", *dirs]) == 0
    spec = importlib.util.spec_from_file_location("compare_presets", ROOT / "benchmarks" / "compare_presets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    capsys.readouterr()
    assert mod.main(["fig2", "--profile", "smoke", "--results-dir", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| fast-lowp |"))
    assert row.split("|")[2].strip() == "8"  # every grid point paired


def test_every_committed_run_file_proves_itself_without_a_warning():
    """Each committed run file matches its completion record (rows and hash), read with warnings as errors:
    a run that logged no protocol reads back as a float column, which a pandas deprecation once hid."""
    import json
    import warnings

    from aninfonce import results

    files = sorted((ROOT / "results").glob("*/*/*.csv"))
    assert len(files) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in files:
            rows, record = results.load(f), json.loads(f.with_suffix(".json").read_text())
            assert (len(rows), results.run_digest(rows)) == (record["rows"], record["sha256"]), f


def test_a_run_digest_hashes_the_rows_as_pandas_writes_them_with_unix_line_ends():
    """run_digest is the hash of the text pandas' to_csv writes for (step, metric, protocol, value) as text,
    "\\n" line ends on every system (pandas' default is the system's, which would make every committed record
    fail on Windows), quoting and missing values as pandas writes them."""
    import hashlib

    import numpy as np
    import pandas as pd

    from aninfonce import results

    rows = pd.DataFrame({"step": [0.0, np.nan, 250.0, 1e6], "metric": ["a,b", 'q"x', None, "r2/0"],
                         "protocol": [np.nan, "p", "", "x\ny"], "value": [1.5, np.nan, -0.0, 1e-300]})
    canon = pd.DataFrame({"step": rows["step"].astype(str), "metric": rows["metric"].astype(str),
                          "protocol": results.as_text(rows["protocol"]),
                          "value": rows["value"].map(lambda v: float(v).hex())})
    text = canon.to_csv(index=False, lineterminator="\n")
    assert results.run_digest(rows) == hashlib.sha256(text.encode()).hexdigest()[:16]
