import os
import re
import shutil
import sys
from pathlib import Path

# one thread per process, in this process and in every command a test starts: the tests' models are tiny,
# and a second thread per process only contends with the test's other processes for the 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"


# a real figure is tens of kB; the "no results yet" placeholder (plots.no_data) about 6 kB
REAL_FIGURE_BYTES = 20_000


def assert_real_figure(path: Path) -> None:
    """The figure exists and is drawn from data, not the placeholder."""
    assert path.stat().st_size > REAL_FIGURE_BYTES, f"{path.name} is the no-data placeholder or empty"


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header rows included, separator rows not),
    stripped of the writer's padding, an escaped ``\\|`` read back as ``|``."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def train_smoke(base: Path, entry: str) -> Path:
    """``entry``'s smoke runs trained through the CLI into ``base``/results and ``base``/figures (for a
    module-scoped fixture: trained once, each test taking its own copy with :func:`copy_trained`)."""
    from aninfonce.cli import main

    assert main([entry, "--profile", "smoke", "--executor", "local", "--results-dir", str(base / "results"),
                 "--figures-dir", str(base / "figures")]) == 0
    return base


def copy_trained(base: Path, dest: Path) -> list[str]:
    """A copy of :func:`train_smoke`'s folders in ``dest``; the CLI options that point at them."""
    for folder in ("results", "figures"):
        shutil.copytree(base / folder, dest / folder)
    return ["--results-dir", str(dest / "results"), "--figures-dir", str(dest / "figures")]


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def mnist_root() -> Path:
    """Real MNIST in torchvision's layout: $ANINFONCE_DATA or ../shared/data."""
    root = Path(os.environ.get("ANINFONCE_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        why = (f"real MNIST not found under {root}: set ANINFONCE_DATA to a folder holding MNIST/raw "
               "(torchvision's layout)")
        if os.environ.get("ANINFONCE_REQUIRE_DATA"):  # CI sets it: the MNIST tests must run there
            pytest.fail(why)
        pytest.skip(why)
    return root


def run_two_gloo_ranks(worker, tmp_path: Path) -> dict:
    """Spawn ``worker(rank, world_size, port, out)`` on 2 processes over a free
    local port and return what rank 0 saved to ``out`` with torch.save."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "rank0.pt")
    mp.spawn(worker, args=(2, port, out), nprocs=2, join=True)
    return torch.load(out)
