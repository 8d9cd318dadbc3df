"""MNIST in torchvision's on-disk layout: ``<root>/MNIST/raw/*-ubyte``.

The files are verified (size and md5) before use. Where they are missing the
loader tries ``torchvision.datasets.MNIST(root, download=True)``; where that
fails too (no internet) it raises :class:`DatasetMissing` with one sentence
naming the folder searched and the two fixes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import torch

from . import DatasetMissing

# [code] torchvision's MNIST resources; sizes and md5 of the uncompressed files
FILES = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637"),
}
OFFLINE_ENV = "ANINFONCE_OFFLINE"  # set to 1 to skip the download attempt
DOWNLOAD_TIMEOUT_S = 30


def raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def _how(root: Path) -> str:
    return (f"run once with internet access so torchvision downloads it into {Path(root)}, "
            f"or point --data-root / $ANINFONCE_DATA at a folder holding MNIST/raw/ (torchvision layout)")


def _problems(root: Path, check_md5: bool) -> list[str]:
    """What is wrong with the raw files under ``root`` (empty list = all good)."""
    out = []
    for name, (size, md5) in FILES.items():
        path = raw_dir(root) / name
        if not path.is_file():
            out.append(f"{name} is missing")
        elif path.stat().st_size != size:
            out.append(f"{name} has {path.stat().st_size} bytes, expected {size}")
        elif check_md5 and _md5(path) != md5:
            out.append(f"{name} fails its md5 check")
    return out


@functools.lru_cache(maxsize=None)
def _md5_cached(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _md5(path: Path) -> str:
    st = path.stat()
    return _md5_cached(str(path), st.st_mtime_ns, st.st_size)


def _try_download(root: Path) -> None:
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        return
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        import torchvision

        torchvision.datasets.MNIST(str(root), train=True, download=True)
        torchvision.datasets.MNIST(str(root), train=False, download=True)
    except Exception:  # no internet, a mirror down, a read-only folder: all mean "not here"
        pass
    finally:
        socket.setdefaulttimeout(old)


def ensure_mnist(root: Path, check_md5: bool = True) -> Path:
    """The verified raw folder under ``root``, downloading it if it is missing."""
    root = Path(root)
    problems = _problems(root, check_md5)
    if problems and all(p.endswith("is missing") for p in problems):
        _try_download(root)
        problems = _problems(root, check_md5)
    if problems:
        if all(p.endswith("is missing") for p in problems):
            raise DatasetMissing("MNIST", raw_dir(root), _how(root))
        raise DatasetMissing("MNIST", raw_dir(root),
                             f"{'; '.join(problems)}; delete the damaged file(s) so it is downloaded again, "
                             f"or point --data-root / $ANINFONCE_DATA at a folder holding intact MNIST/raw/ files")
    return raw_dir(root)


def _read_idx(path: Path, offset: int) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype=np.uint8, offset=offset)


@functools.lru_cache(maxsize=4)
def _load(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    raw = ensure_mnist(Path(root))
    prefix = "train" if train else "t10k"
    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte", 8)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_mnist(root: Path, train: bool = True, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 in [0, 1], shape (N, 1, 28, 28), and int64 labels.

    ``limit`` keeps the first ``limit`` images (the files' own order)."""
    images, labels = _load(str(Path(root).resolve()), train)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images.float().div_(255).unsqueeze(1), labels.clone()


def mnist_check(root: Path, profile: str) -> str | None:
    """An entry's up-front data check (``Study.data_check``): None when
    MNIST is under ``root`` (downloaded there first where the internet is
    reachable), else the one sentence saying where it looked and how to fix
    it. Every profile reads the real files, smoke included."""
    try:
        ensure_mnist(root)
    except DatasetMissing as err:
        return str(err)
    return None
