"""Where a SimCLR run's images come from (the dataset's files, or tiny
synthetic files in the real format for smoke runs) and the data loaders that
batch them."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from ...data import DatasetMissing
from ...data.images import ImageSource, load_dataset
from ...data.synthetic_files import write_cifar10_files, write_imagefolder_tree
from ...data.views import default_workers
from .distributed import world
from .spec import ImageSSLSpec


def load_sources(spec: ImageSSLSpec, ctx) -> tuple[ImageSource, ImageSource]:
    """(train, test) sources. With ``synthetic_files`` the real-format files are
    written into the run's artefact folder once (by rank 0) and read back by
    the real loaders."""
    root = ctx.data_root
    if spec.synthetic_files:
        root = Path(ctx.artifact_dir) / f"synthetic-{spec.dataset}"
        marker = root / ".complete"
        rank, size = world()
        if rank == 0 and not marker.exists():
            if spec.dataset == "cifar10":
                write_cifar10_files(root, per_batch=max(8, spec.train_limit // 5 or 20), n_test=64, seed=spec.seed)
            elif spec.dataset == "imagenet":
                write_imagefolder_tree(root, n_classes=4, per_class=16, n_val=8, size=48, seed=spec.seed)
            else:
                raise ValueError(f"no synthetic files for {spec.dataset!r}")
            marker.touch()
        if size > 1:
            dist.barrier()
    if root is None:
        raise DatasetMissing(spec.dataset, Path("."), "give --data-root or set $ANINFONCE_DATA")
    train = load_dataset(spec.dataset, root, True, spec.synthetic_files).subset(spec.train_limit)
    test = load_dataset(spec.dataset, root, False, spec.synthetic_files)
    return train, test


def loader_workers(spec: ImageSSLSpec, device: torch.device) -> int:
    """The spec's loader worker count; by default some on CUDA, none on a CPU."""
    if spec.num_workers >= 0:
        return spec.num_workers
    return default_workers() if device.type == "cuda" else 0


def make_loader(ds, batch: int, workers: int, sampler=None, drop_last: bool = False,
                device: torch.device | None = None) -> torch.utils.data.DataLoader:
    """A loader in the dataset's order (or the sampler's), pinned memory on CUDA."""
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, shuffle=False, drop_last=drop_last,
                                       num_workers=workers, pin_memory=device is not None and device.type == "cuda",
                                       persistent_workers=False)
