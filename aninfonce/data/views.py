"""The torch datasets of the image tables: two recorded views per image
(training), un-augmented images (probe and KNN), one recorded view per image
(augmentation recovery); and how many loader workers to use."""

from __future__ import annotations


import numpy as np
import torch

from ..cores import usable_cores
from .augment import AugmentConfig, RecordingAugment
from .images import ImageSource


class TwoViewDataset(torch.utils.data.Dataset):
    """Two independently augmented views of each image, their parameters and
    the label. Set ``epoch`` before iterating (non-persistent workers copy it).
    With ``crop_only`` the views are their uint8 crops, to be finished on the
    device by :func:`.device_augment.photometric` (same parameters)."""

    def __init__(self, source: ImageSource, cfg: AugmentConfig, seed: int, crop_only: bool = False):
        self.source, self.augment, self.seed, self.epoch = source, RecordingAugment(cfg, crop_only), seed, 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        img = self.source.image(i)
        v1, p1 = self.augment(img, rng)
        v2, p2 = self.augment(img, rng)
        return v1, v2, torch.from_numpy(p1), torch.from_numpy(p2), self.source.labels[i]


class EvalDataset(torch.utils.data.Dataset):
    """Un-augmented images (resized / centre-cropped to ``size``) and labels."""

    def __init__(self, source: ImageSource, size: int):
        self.source, self.size = source, size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        return self.source.eval_image(i, self.size), self.source.labels[i]


class OneViewDataset(torch.utils.data.Dataset):
    """One augmented view per image with its parameters (recovery evaluation);
    ``crop_only`` as in :class:`TwoViewDataset`."""

    def __init__(self, source: ImageSource, cfg: AugmentConfig, seed: int, n: int, crop_only: bool = False):
        self.source, self.augment, self.seed, self.n = source, RecordingAugment(cfg, crop_only), seed, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, int(i)])
        view, p = self.augment(self.source.image(i % len(self.source)), rng)
        return view, torch.from_numpy(p)


def default_workers() -> int:
    return max(0, min(8, usable_cores() - 1))
