"""The image tables' runs (the analysis, with each profile's settings and the
recipe the report shows: :mod:`aninfonce.analyses.tables`)."""

from __future__ import annotations

from pathlib import Path

from ..analyses.recipes import PROFILE_SETTINGS
from ..data import DatasetMissing
from ..registry import Study, register
from ..specs import IMAGE_LOSSES as LOSSES
from ..specs import ImageSSLSpec
from .trainers import mnist_check, train_imagessl

SMOKE_LOSSES = ("aninfonce", "infonce-learned")
# [recon] seconds per run: smoke/quick on 2 CPU cores (quick: one core per run under the pool). MNIST
# quick measured: 22-23 min wall per run with its 3 runs in parallel (--jobs 3) beside another quick
# profile and a test suite on the same 2 cores (load 8-10), i.e. about 8 min of one free core per run at
# 2 epochs; at 4 epochs 450-645 s a run (2 runs at a time on 2 cores); at the 10 quick now trains 11-20 min
# (80 min for the 9 runs on 2 cores beside a third training process, 78 min with the cosine);
# paper = GPU seconds on one H200, measured by benchmarks/gpu_epoch_throughput.py on 2026-11-29
# (benchmarks/measured/h200-2026-11-29/; training steps only, rounded up for the evaluation):
# CIFAR10 2.7 s/epoch x 1000 epochs (loader kept up); ImageNet 564 s/epoch x 100 epochs (ResNet-50,
# 2,274 pairs/s; the loader kept up without JPEG decoding, which needs >= 12 workers on top).
SECONDS_PER_RUN: dict[str, dict[str, float]] = {
    "cifar10-table": {"smoke": 6.0, "quick": 900.0, "paper": 3.0 * 1000},
    "imagenet-table": {"smoke": 8.0, "quick": 1200.0, "paper": 600.0 * 100},
    "mnist-standin-table": {"smoke": 3.0, "quick": 900.0, "paper": 6.0 * 100},
}


def _grid(experiment: str):
    def runs(profile: str, n_seeds: int) -> list[ImageSSLSpec]:
        losses = SMOKE_LOSSES if profile == "smoke" else tuple(LOSSES)
        s = PROFILE_SETTINGS[experiment][profile]
        return [ImageSSLSpec(experiment=experiment, loss=loss, seed=seed, **s)
                for seed in range(n_seeds) for loss in losses]
    return runs


def _needs(name: str, folder: str, how: str):
    """A cheap presence check, so `python reproduce.py` (everything) skips an
    entry whose dataset is absent instead of stopping; smoke writes its own files."""
    def check(root: Path, profile: str) -> str | None:
        if profile == "smoke" or (Path(root) / folder).is_dir():
            return None
        from ..data import images  # torch: only when the dataset is missing

        return str(DatasetMissing(name, Path(root) / folder, getattr(images, how).format(root=root)))
    return check


_DATA_CHECKS = {
    "cifar10-table": _needs("CIFAR10", "cifar-10-batches-py", "CIFAR_HOW"),
    "imagenet-table": _needs("ImageNet", "imagenet/train", "IMAGENET_HOW"),
    "mnist-standin-table": mnist_check,  # the real files at every profile, smoke included
}


for _eid in PROFILE_SETTINGS:
    register(Study(id=_eid, runs=_grid(_eid), execute=train_imagessl, seconds_per_run=SECONDS_PER_RUN[_eid],
                   data_check=_DATA_CHECKS.get(_eid)))
