"""A reviewer's machine: only the packages of requirements-reading.txt. There, ``--plot-only`` regenerates the
figures and the report from a results folder and ``--check`` judges its claims, never even trying to import
torch or any other package the training half needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from test_packaging import _pyproject_pins, reading_pins

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = ("fig2-linear", "hardneg")  # two small committed entries
# the module each training-only distribution is imported as
IMPORT_NAME = {"torch": "torch", "torchvision": "torchvision", "scikit-learn": "sklearn", "tqdm": "tqdm",
               "filelock": "filelock", "submitit": "submitit", "pytest": "pytest",
               "pytest-benchmark": "pytest_benchmark", "networkx": "networkx", "seaborn": "seaborn"}

# Run in a fresh process: every module of a training-only distribution is refused, as on a machine
# without it, and each attempt is recorded (an ImportError caught somewhere would otherwise hide it).
BLOCKING_RUN = """
import importlib.abc, sys
BLOCKED, tried = set(sys.argv[1].split(",")), []
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NotInstalled())
from aninfonce.cli import main
rc = main(sys.argv[2:])
print("tried to import:", sorted(set(tried)))
sys.exit(rc)
"""


def _name(pin: str) -> str:
    return re.split(r"[<>=!~\[ ]", pin, maxsplit=1)[0]


def training_only() -> list[str]:
    """The import names of the project's dependencies (the tests' too) that the reading half must not need."""
    names = sorted({_name(p) for p in _pyproject_pins()} - {_name(p) for p in reading_pins()})
    unknown = [n for n in names if n not in IMPORT_NAME]
    assert not unknown, f"say how {unknown} is imported (IMPORT_NAME), or list it in requirements-reading.txt"
    return [IMPORT_NAME[n] for n in names]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKING_RUN, ",".join(training_only()), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_plot_only_and_check_need_only_the_reading_requirements(tmp_path):
    results = tmp_path / "results" / "quick"
    results.mkdir(parents=True)
    for e in ENTRIES:
        shutil.copy(ROOT / "results" / "quick" / f"{e}.csv", results)
        shutil.copy(ROOT / "results" / "quick" / f"{e}.plan.json", results)
        shutil.copytree(ROOT / "results" / "quick" / e, results / e)
    where = ["--profile", "quick", "--results-dir", str(tmp_path / "results")]
    drawn = _run("--plot-only", *where, "--figures-dir", str(tmp_path / "figures"))
    assert drawn.returncode == 0, drawn.stderr
    assert "tried to import: []" in drawn.stdout, drawn.stdout
    out = tmp_path / "figures" / "quick"
    assert (out / "fig2_linear.png").stat().st_size > 10_000 and (out / "hardneg.png").stat().st_size > 10_000
    assert "`fig2-linear.ordering`" in (out / "REPORT.md").read_text()
    judged = _run("--check", *where)
    assert judged.returncode in (0, 1, 3), judged.stderr  # PASS, FAIL or NOT SETTLED: judged, not broken
    assert "claims:" in judged.stdout and "tried to import: []" in judged.stdout, judged.stdout
