"""The committed quick-profile results regenerate every figure and the report
from a clean clone (no training, no data)."""

import shutil
from pathlib import Path

from aninfonce.cli import main
from aninfonce.registry import all_experiments

ROOT = Path(__file__).resolve().parent.parent


def test_plot_only_from_committed_quick_results(tmp_path):
    shutil.copytree(ROOT / "results" / "quick", tmp_path / "results" / "quick")
    assert main(["--plot-only", "--profile", "quick", "--results-dir", str(tmp_path / "results"),
                 "--figures-dir", str(tmp_path / "figures")]) == 0
    out = tmp_path / "figures" / "quick"
    report = (out / "REPORT.md").read_text()
    for exp in all_experiments().values():
        assert f"`{exp.id}`" in report
    for name in ("fig2", "fig2_linear", "fig3", "fig4", "fig5", "hardneg", "ensemble"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert "PASS" in report and "FAIL" in report  # findings are reported, not hidden
