"""Where a run's rows come from: the git commit and whether the code was
dirty, the library versions, the date. The runner stamps every row with
them; reading results never needs this module."""

from __future__ import annotations

import datetime
import platform
import subprocess
from pathlib import Path
from typing import Any

_PROVENANCE: dict[str, Any] | None = None


# results/ and figures/ are outputs: another run writing its rows into a tracked CSV of the same checkout
# must not mark this run's code dirty
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude)figures")


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_dirty(root: Path) -> bool:
    """Whether tracked files outside the outputs differ from the checkout's commit."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUT_PATHSPECS))


def provenance() -> dict[str, Any]:
    """Git commit and dirty flag (of the code, not of results/ or figures/), library versions, date.
    Cached per process."""
    global _PROVENANCE
    if _PROVENANCE is None:
        import numpy
        import sklearn
        import torch

        root = Path(__file__).resolve().parent.parent
        _PROVENANCE = {
            "git_commit": _git(root, "rev-parse", "--short=12", "HEAD") or "unknown",
            "git_dirty": code_dirty(root),
            "torch": torch.__version__, "numpy": numpy.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version(),
        }
    return {**_PROVENANCE, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
