"""Small synthetic datasets written in the *real* on-disk formats (CIFAR10's
pickle batches, an ImageNet-style ImageFolder tree of JPEGs): no CIFAR10 or
ImageNet can be downloaded on the machines that build this project, so tests
and the smoke profile read these through the loaders a real run uses
(:mod:`.images`)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


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
