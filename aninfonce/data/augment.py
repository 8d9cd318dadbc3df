"""SimCLR augmentations that record, for every view, the parameters actually
drawn (docs/PROTOCOL.md §6), and the quantities the recovery evaluation asks a
linear model to read back from a view's representation.

Augmentations [recon, after SimCLR and docs/PROTOCOL.md §6]: random resized
crop, horizontal flip, colour jitter (brightness, contrast, saturation, hue in
random order) with probability p, grayscale with probability p, Gaussian blur
(ImageNet). Parameters are drawn with a numpy generator seeded by (seed,
epoch, index) (:mod:`.views`), so a view does not depend on the number of
loader workers, and applied with ``torchvision.transforms.v2.functional``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

# the presets are spec data (aninfonce.specs, no torch); applied here
from ..specs import AUGMENTS, JITTER_OPS, AugmentConfig, augment_config  # noqa: F401

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


def blur_kernel_size(size: int) -> int:
    """[recon] SimCLR: a Gaussian kernel 10 % of the view's side, odd, at least 3."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def crop_view(img: torch.Tensor, p: np.ndarray, size: int) -> torch.Tensor:
    """The geometric half of a view: the recorded crop of a uint8 image (C, H, W),
    resized to ``size`` x ``size`` (antialiased), still uint8."""
    top, left, h, w = (int(p[P[k]]) for k in ("crop_top", "crop_left", "crop_h", "crop_w"))
    return TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)


def apply_params(img: torch.Tensor, p: np.ndarray, size: int) -> torch.Tensor:
    """Apply recorded parameters to a uint8 image (C, H, W): the view is a pure
    function of the image and its parameter vector. Per image, uint8 after
    every op (the loader path); :mod:`.device_augment` does the same ops after
    the crop for a whole batch in float."""
    img = crop_view(img, p, size)
    if p[P["flip"]]:
        img = TF.horizontal_flip(img)
    if p[P["jitter"]]:
        order = sorted((p[P[f"order_{op}"]], op) for op in JITTER_OPS if p[P[f"order_{op}"]] >= 0)
        for _, op in order:
            img = _JITTER_FNS[op](img, float(p[P[op]]))
    if p[P["grayscale"]] and img.shape[0] == 3:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if p[P["blur"]]:
        k = blur_kernel_size(size)
        img = TF.gaussian_blur(img, kernel_size=[k, k], sigma=[float(p[P["blur_sigma"]])] * 2)
    return img


_JITTER_FNS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
    "saturation": TF.adjust_saturation, "hue": TF.adjust_hue,
}


class RecordingAugment:
    """A SimCLR view and the parameters drawn for it; with ``crop_only`` only
    the view's crop (uint8), its photometric half left to
    :func:`.device_augment.photometric` (the same parameters are drawn)."""

    def __init__(self, cfg: AugmentConfig, crop_only: bool = False):
        self.cfg, self.crop_only = cfg, crop_only

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        p = draw_params(self.cfg, img.shape[-2], img.shape[-1], rng)
        return (crop_view if self.crop_only else apply_params)(img, p, self.cfg.size), p


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
