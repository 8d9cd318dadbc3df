"""The image datasets of the tables (docs/PROTOCOL.md §6) as read from disk,
each an :class:`ImageSource` of uint8 images (C, H, W) and labels:

- CIFAR10: ``torchvision.datasets.CIFAR10(<root>, download=False)``, i.e. the
  python pickle batches in ``<root>/cifar-10-batches-py/``.
- ImageNet: an ImageFolder tree ``<root>/imagenet/{train,val}/<class>/*.JPEG``
  (images decoded on demand).
- MNIST (the stand-in of the quick profile): ``torchvision.datasets.MNIST(<root>,
  download=False)``, i.e. ``<root>/MNIST/raw/*-ubyte``.

A missing dataset raises :class:`DatasetMissing` with one sentence. No CIFAR10
or ImageNet can be downloaded on the machines that build this project, so
:mod:`.synthetic_files` writes small synthetic datasets in the *real* on-disk
formats: tests and the smoke profile read them through the same loaders a
real run uses. The augmentations are in :mod:`.augment`, the torch datasets of
views in :mod:`.views`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.transforms.v2 import functional as TF

from . import DatasetMissing

# ------------------------------------------------------------------ sources


class ImageSource:
    """uint8 images (C, H, W) by index, integer labels, a name."""

    name: str
    labels: torch.Tensor
    channels: int

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def eval_image(self, i: int, size: int) -> torch.Tensor:
        """The un-augmented image used by the probe, KNN and recovery: resized
        (shorter side to size * 8/7, as 256/224 for ImageNet) and centre-cropped
        when the stored size differs from ``size``."""
        img = self.image(i)
        if img.shape[-1] == size and img.shape[-2] == size:
            return img
        img = TF.resize(img, [round(size * 8 / 7)], antialias=True)
        return TF.center_crop(img, [size, size])

    def subset(self, n: int) -> "ImageSource":
        """The first ``n`` images (all if ``n`` is 0 or too large)."""
        raise NotImplementedError


class TensorSource(ImageSource):
    def __init__(self, name: str, images: torch.Tensor, labels: torch.Tensor):
        assert images.dtype == torch.uint8 and images.ndim == 4, "images must be uint8 (N, C, H, W)"
        self.name, self.images, self.labels = name, images, labels.long()
        self.channels = images.shape[1]

    def image(self, i: int) -> torch.Tensor:
        return self.images[i]

    def subset(self, n: int) -> "TensorSource":
        if not n or n >= len(self):
            return self
        return TensorSource(self.name, self.images[:n], self.labels[:n])


class FolderSource(ImageSource):
    """An ImageFolder tree; images decoded (to RGB) when asked for."""

    def __init__(self, name: str, paths: list[str], labels: torch.Tensor):
        self.name, self.paths, self.labels, self.channels = name, paths, labels.long(), 3

    def image(self, i: int) -> torch.Tensor:
        data = torchvision.io.read_file(self.paths[i])
        return torchvision.io.decode_image(data, mode=torchvision.io.ImageReadMode.RGB)

    def subset(self, n: int) -> "FolderSource":
        if not n or n >= len(self):
            return self
        # the tree is ordered by class: take an evenly spaced subset so every class appears
        idx = np.linspace(0, len(self) - 1, n).round().astype(int)
        return FolderSource(self.name, [self.paths[i] for i in idx], self.labels[idx])


# ------------------------------------------------------------------ loaders

CIFAR_HOW = ("download it once with `python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', download=True)\"` "
             "on a machine with internet access, or point --data-root / $ANINFONCE_DATA at a folder holding cifar-10-batches-py/")
IMAGENET_HOW = ("place the ILSVRC-2012 images there as an ImageFolder tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG; "
                "ImageNet cannot be downloaded automatically), or point --data-root / $ANINFONCE_DATA at the folder holding imagenet/")
MNIST_HOW = ("download it once with `python -c \"import torchvision; torchvision.datasets.MNIST('{root}', download=True)\"`, "
             "or point --data-root / $ANINFONCE_DATA at a folder holding MNIST/raw/")


class _CIFAR10Files(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10 reader that checks the files are present but not
    their md5: synthetic files in the real format (tests, smoke) carry other
    checksums. A real run uses the checking reader."""

    def _check_integrity(self) -> bool:
        base = Path(self.root) / self.base_folder
        return all((base / f).is_file() for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
            self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def load_cifar10(root: Path, train: bool = True, verify: bool = True) -> TensorSource:
    """CIFAR10 from ``<root>/cifar-10-batches-py`` (python pickle batches).
    ``verify`` checks torchvision's md5 of every file (off only for synthetic files)."""
    root = Path(root)
    cls = torchvision.datasets.CIFAR10 if verify else _CIFAR10Files
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        raise DatasetMissing("CIFAR10", root / "cifar-10-batches-py", CIFAR_HOW.format(root=root)) from None
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return TensorSource("cifar10", images, torch.tensor(ds.targets))


def load_imagenet(root: Path, split: str = "train") -> FolderSource:
    """ImageNet as an ImageFolder tree ``<root>/imagenet/<split>/<class>/<image>``."""
    folder = Path(root) / "imagenet" / split
    if not folder.is_dir():
        raise DatasetMissing("ImageNet", folder, IMAGENET_HOW)
    try:
        ds = torchvision.datasets.ImageFolder(str(folder), allow_empty=False)
    except (FileNotFoundError, RuntimeError):
        raise DatasetMissing("ImageNet", folder, IMAGENET_HOW) from None
    return FolderSource("imagenet", [p for p, _ in ds.samples], torch.tensor(ds.targets))


def load_mnist_source(root: Path, train: bool = True) -> TensorSource:
    """MNIST as an image source for the SimCLR tables (uint8 (N, 1, 28, 28), through
    torchvision); Figure 3 reads float images with data.mnist.load_mnist."""
    root = Path(root)
    try:
        ds = torchvision.datasets.MNIST(str(root), train=train, download=False)
    except RuntimeError:
        raise DatasetMissing("MNIST", root / "MNIST" / "raw", MNIST_HOW.format(root=root)) from None
    return TensorSource("mnist", ds.data.unsqueeze(1).contiguous(), ds.targets)


def load_dataset(name: str, root: Path, train: bool, synthetic: bool = False) -> ImageSource:
    if name == "cifar10":
        return load_cifar10(root, train, verify=not synthetic)
    if name == "imagenet":
        return load_imagenet(root, "train" if train else "val")
    if name == "mnist":
        return load_mnist_source(root, train)
    raise ValueError(f"unknown dataset {name!r}; choose cifar10, imagenet or mnist")
