"""Views per second through the image tables' whole input path:
files in the real on-disk format -> the real loader -> two recorded
augmentations per image -> a DataLoader with CPU workers -> batches.
``extra_info.views_per_second`` is the number to compare with a GPU's
appetite (a ResNet-50 step on an H100-class GPU takes ~2,900 views/s in
bf16; tables.py).

Two paths (ImageSSLSpec.augment_on): ``loader`` = every op per image in the
workers (uint8 Python calls); ``device`` = the workers crop and resize, and
the photometric ops (flip, jitter, grayscale, blur) run batched in the
consuming process (data.device_augment) - here on the CPU, on a GPU run on
the GPU, so on a CPU this counts their cost in the main process.

    pytest benchmarks/test_input_path.py --benchmark-only

CIFAR10: 32 px images from python pickle batches; ImageNet: JPEGs of
``SIDE`` px decoded by PIL, cropped and resized to 224 px.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from aninfonce.data.augment import augment_config
from aninfonce.data.device_augment import photometric
from aninfonce.data.images import load_dataset
from aninfonce.data.synthetic_files import write_cifar10_files, write_imagefolder_tree
from aninfonce.data.views import TwoViewDataset

SIDE = 375  # about an ImageNet JPEG's short side (the median image is ~400 x 350)
BATCH = 64
WORKERS = sorted({0, max(1, (os.cpu_count() or 1) - 1)})


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("input-path")
    write_cifar10_files(root, per_batch=256, n_test=16, seed=0)
    write_imagefolder_tree(root, n_classes=4, per_class=64, n_val=2, size=SIDE, seed=0)
    return {"cifar10": load_dataset("cifar10", root, True, synthetic=True),
            "imagenet": load_dataset("imagenet", root, True, synthetic=True)}


@pytest.mark.parametrize("path", ["loader", "device"])
@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("dataset", ["cifar10", "imagenet"])
def test_views_per_second(benchmark, sources, dataset, workers, path):
    cfg = augment_config(dataset)
    ds = TwoViewDataset(sources[dataset], cfg, seed=0, crop_only=path == "device")
    n_batches = 8 if dataset == "imagenet" else 20
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, drop_last=True)

    def epoch_part() -> int:
        views = 0
        for i, (v1, v2, p1, p2, _) in enumerate(loader):
            x = torch.cat([v1, v2])
            if path == "device":
                x = photometric(x, torch.cat([p1, p2]), cfg)
            views += x.shape[0]
            if i + 1 == n_batches:
                break
        return views

    t0 = time.perf_counter()
    views = benchmark.pedantic(epoch_part, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.group = f"input path {dataset}"
    per_round = benchmark.stats.stats.median if benchmark.stats else (time.perf_counter() - t0) / 4
    benchmark.extra_info.update(dataset=dataset, workers=workers, path=path, batch=BATCH, views=views,
                                views_per_second=round(views / per_round, 1))
