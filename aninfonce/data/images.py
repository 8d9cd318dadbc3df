"""Image datasets of the tables (docs/PROTOCOL.md §6) and SimCLR augmentations
that record, for every view, the parameters actually drawn.

Sources, each an :class:`ImageSource` of uint8 images (C, H, W) and labels:

- CIFAR10: ``torchvision.datasets.CIFAR10(<root>, download=False)``, i.e. the
  python pickle batches in ``<root>/cifar-10-batches-py/``.
- ImageNet: an ImageFolder tree ``<root>/imagenet/{train,val}/<class>/*.JPEG``
  (images decoded on demand).
- MNIST (the stand-in of the quick profile): ``torchvision.datasets.MNIST(<root>,
  download=False)``, i.e. ``<root>/MNIST/raw/*-ubyte``.

A missing dataset raises :class:`DatasetMissing` with one sentence. No CIFAR10
or ImageNet can be downloaded on the machines that build this project, so
:func:`write_cifar10_files` and :func:`write_imagefolder_tree` write small
synthetic datasets in the *real* on-disk formats: tests and the smoke profile
read them through the same loaders a real run uses.

Augmentations [recon, after SimCLR and docs/PROTOCOL.md §6]: random resized
crop, horizontal flip, colour jitter (brightness, contrast, saturation, hue in
random order) with probability p, grayscale with probability p, Gaussian blur
(ImageNet). Parameters are drawn with a numpy generator seeded by (seed,
epoch, index), so a view does not depend on the number of loader workers, and
applied with ``torchvision.transforms.v2.functional``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
from pathlib import Path
from typing import Callable

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


# ------------------------------------------------------------------ synthetic files in the real formats


def _synthetic_images(n: int, size: int, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images (N, size, size, 3): a coloured square whose colour
    and position depend on the class, on a noisy background."""
    labels = rng.integers(0, n_classes, n)
    imgs = rng.integers(0, 80, (n, size, size, 3)).astype(np.uint8)
    side = max(2, size // 3)
    for k, c in enumerate(labels):
        colour = np.array([(37 * c) % 256, (91 * c + 60) % 256, (151 * c + 120) % 256], dtype=np.uint8)
        top = (c * 7) % (size - side)
        left = int(rng.integers(0, size - side))
        imgs[k, top:top + side, left:left + side] = colour
    return imgs, labels


def write_cifar10_files(root: Path, per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write a synthetic CIFAR10 in the real format: ``<root>/cifar-10-batches-py/``
    with data_batch_1..5, test_batch (dicts of 'data' uint8 (N, 3072) in
    channel-major order, 'labels', 'filenames', 'batch_label') and batches.meta."""
    base = Path(root) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        imgs, labels = _synthetic_images(n, 32, 10, rng)
        entry = {"batch_label": name.encode(), "labels": labels.tolist(),
                 "data": imgs.transpose(0, 3, 1, 2).reshape(n, 3072),
                 "filenames": [f"synthetic_{name}_{k}.png".encode() for k in range(n)]}
        with open(base / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
            "num_cases_per_batch": per_batch, "num_vis": 3072}
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return Path(root)


def write_imagefolder_tree(root: Path, n_classes: int = 4, per_class: int = 6, n_val: int = 2, size: int = 48,
                           seed: int = 0) -> Path:
    """Write a synthetic ImageNet-style tree of JPEGs: ``<root>/imagenet/{train,val}/n0000000<c>/*.JPEG``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, per in (("train", per_class), ("val", n_val)):
        for c in range(n_classes):
            folder = Path(root) / "imagenet" / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per):
                # non-square sizes, as in ImageNet
                h, w = size + int(rng.integers(0, size // 2)), size + int(rng.integers(0, size // 2))
                imgs, _ = _synthetic_images(1, max(h, w), n_classes, rng)
                img = imgs[0, :h, :w].copy()
                side = max(2, min(h, w) // 3)
                img[(c * 5) % (h - side):(c * 5) % (h - side) + side, :side] = [(60 * c) % 256, 200, (90 * c) % 256]
                Image.fromarray(img).save(folder / f"n{c:08d}_{k}.JPEG", quality=90)
    return Path(root)


# ------------------------------------------------------------------ augmentations

# every view's parameter vector, in this order
PARAM_NAMES = (
    "crop_top", "crop_left", "crop_h", "crop_w", "src_h", "src_w",  # crop box in source pixels
    "flip",  # 1 = flipped horizontally
    "jitter",  # 1 = colour jitter applied (then the factors below are the drawn ones, else the identity)
    "brightness", "contrast", "saturation", "hue",
    "order_brightness", "order_contrast", "order_saturation", "order_hue",  # position in the applied order, -1 = not applied
    "grayscale", "blur", "blur_sigma",
)
P = {n: i for i, n in enumerate(PARAM_NAMES)}
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def jitter_ops(self) -> tuple[str, ...]:
        return tuple(op for op in JITTER_OPS if getattr(self, op) > 0)

    def targets(self) -> dict[str, str]:
        """The recovery targets this config varies: name -> 'continuous' / 'binary'."""
        out = {"crop_cx": "continuous", "crop_cy": "continuous", "crop_scale": "continuous",
               "crop_logratio": "continuous"}
        if self.flip_p > 0:
            out["flip"] = "binary"
        out.update({op: "continuous" for op in self.jitter_ops()})
        if self.grayscale_p > 0:
            out["grayscale"] = "binary"
        if self.blur_p > 0:
            out["blur_sigma"] = "continuous"
        return out


# [recon] SimCLR augmentations (the paper says only "standard SimCLR
# augmentations, grayscale p = 0.2", via a third party). CIFAR10: SimCLR's own
# CIFAR-10 colour strength s = 0.5 (Chen et al. 2020: jitter 0.8s, 0.8s, 0.8s,
# 0.2s = 0.4, 0.4, 0.4, 0.1, applied with p = 0.8), grayscale 0.2, no blur.
# Not solo-learn's: its CIFAR SimCLR recipe uses 0.8, 0.8, 0.8, 0.2 (with
# temperature 0.2, LARS, a 2048-256 projector); (0.4, 0.4, 0.2, 0.1), used here
# before issue 14, is BYOL's jitter. ImageNet: SimCLR's strength 1 (0.8, 0.8,
# 0.8, 0.2) and blur with p = 0.5. MNIST stand-in: what makes sense for
# grayscale digits (crop, flip, brightness, contrast); the crop keeps at least
# 30 % of the area so that a digit stays a digit.
AUGMENTS: dict[str, AugmentConfig] = {
    "cifar10": AugmentConfig(size=32, saturation=0.4),
    "imagenet": AugmentConfig(size=224, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, blur_p=0.5),
    "mnist": AugmentConfig(size=28, scale=(0.3, 1.0), saturation=0.0, hue=0.0, grayscale_p=0.0),
}


def augment_config(name: str, size: int | None = None) -> AugmentConfig:
    cfg = AUGMENTS[name]
    return dataclasses.replace(cfg, size=size) if size else cfg


def draw_params(cfg: AugmentConfig, src_h: int, src_w: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one view's parameters (the same logic as v2.RandomResizedCrop and
    v2.ColorJitter, with an explicit generator)."""
    p = np.zeros(len(PARAM_NAMES), dtype=np.float64)
    p[P["src_h"]], p[P["src_w"]] = src_h, src_w
    # random resized crop: 10 tries, then the centre crop with the ratio clamped (torchvision's fallback)
    area, log_r = src_h * src_w, (math.log(cfg.ratio[0]), math.log(cfg.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*cfg.scale)
        aspect = math.exp(rng.uniform(*log_r))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= src_w and 0 < h <= src_h:
            top, left = int(rng.integers(0, src_h - h + 1)), int(rng.integers(0, src_w - w + 1))
            break
    else:
        in_ratio = src_w / src_h
        if in_ratio < cfg.ratio[0]:
            w, h = src_w, int(round(src_w / cfg.ratio[0]))
        elif in_ratio > cfg.ratio[1]:
            h, w = src_h, int(round(src_h * cfg.ratio[1]))
        else:
            w, h = src_w, src_h
        top, left = (src_h - h) // 2, (src_w - w) // 2
    p[[P["crop_top"], P["crop_left"], P["crop_h"], P["crop_w"]]] = top, left, h, w
    p[P["flip"]] = float(rng.random() < cfg.flip_p)
    # colour jitter
    p[[P["brightness"], P["contrast"], P["saturation"], P["hue"]]] = 1.0, 1.0, 1.0, 0.0
    p[[P[f"order_{op}"] for op in JITTER_OPS]] = -1
    if rng.random() < cfg.jitter_p:
        p[P["jitter"]] = 1.0
        ops = cfg.jitter_ops()
        for op in ops:
            s = getattr(cfg, op)
            p[P[op]] = rng.uniform(-s, s) if op == "hue" else rng.uniform(max(0.0, 1 - s), 1 + s)
        for pos, k in enumerate(rng.permutation(len(ops))):
            p[P[f"order_{ops[k]}"]] = pos
    p[P["grayscale"]] = float(rng.random() < cfg.grayscale_p)
    if rng.random() < cfg.blur_p:
        p[P["blur"]] = 1.0
        p[P["blur_sigma"]] = rng.uniform(*cfg.blur_sigma)
    return p


def apply_params(img: torch.Tensor, p: np.ndarray, size: int) -> torch.Tensor:
    """Apply recorded parameters to a uint8 image (C, H, W): the view is a pure
    function of the image and its parameter vector."""
    top, left, h, w = (int(p[P[k]]) for k in ("crop_top", "crop_left", "crop_h", "crop_w"))
    img = TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)
    if p[P["flip"]]:
        img = TF.horizontal_flip(img)
    if p[P["jitter"]]:
        order = sorted((p[P[f"order_{op}"]], op) for op in JITTER_OPS if p[P[f"order_{op}"]] >= 0)
        for _, op in order:
            img = _JITTER_FNS[op](img, float(p[P[op]]))
    if p[P["grayscale"]] and img.shape[0] == 3:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if p[P["blur"]]:
        k = max(3, int(0.1 * size) // 2 * 2 + 1)  # [recon] SimCLR: kernel 10 % of the image side, odd
        img = TF.gaussian_blur(img, kernel_size=[k, k], sigma=[float(p[P["blur_sigma"]])] * 2)
    return img


_JITTER_FNS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
    "saturation": TF.adjust_saturation, "hue": TF.adjust_hue,
}


class RecordingAugment:
    """A SimCLR view and the parameters drawn for it."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        p = draw_params(self.cfg, img.shape[-2], img.shape[-1], rng)
        return apply_params(img, p, self.cfg.size), p


def recovery_targets(params: np.ndarray, cfg: AugmentConfig) -> dict[str, np.ndarray]:
    """Per view, the quantities a linear model is asked to recover from its
    representation: crop centre (relative), crop scale (area fraction), log
    aspect ratio, flip, each jitter factor, grayscale, blur sigma."""
    p = np.atleast_2d(params)
    H, W = p[:, P["src_h"]], p[:, P["src_w"]]
    h, w = p[:, P["crop_h"]], p[:, P["crop_w"]]
    derived = {
        "crop_cx": (p[:, P["crop_left"]] + w / 2) / W,
        "crop_cy": (p[:, P["crop_top"]] + h / 2) / H,
        "crop_scale": h * w / (H * W),
        "crop_logratio": np.log(w / h),
    }
    return {name: derived[name] if name in derived else p[:, P[name]] for name in cfg.targets()}


class TwoViewDataset(torch.utils.data.Dataset):
    """Two independently augmented views of each image, their parameters and
    the label. Set ``epoch`` before iterating (non-persistent workers copy it)."""

    def __init__(self, source: ImageSource, cfg: AugmentConfig, seed: int):
        self.source, self.augment, self.seed, self.epoch = source, RecordingAugment(cfg), seed, 0

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
    """One augmented view per image with its parameters (recovery evaluation)."""

    def __init__(self, source: ImageSource, cfg: AugmentConfig, seed: int, n: int):
        self.source, self.augment, self.seed, self.n = source, RecordingAugment(cfg), seed, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, int(i)])
        view, p = self.augment(self.source.image(i % len(self.source)), rng)
        return view, torch.from_numpy(p)


def default_workers() -> int:
    return max(0, min(8, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) - 1))
