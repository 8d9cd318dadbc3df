"""The photometric half of the SimCLR augmentations, applied to a whole batch
at once on the run's device.

Why: the per-image path (:func:`.augment.apply_params`, in the loader
workers) spends most of a view's time on colour, not on the crop. Measured on
one core for a 375 px JPEG: decode 1.5 ms, one crop + resize to 224 px
0.5 ms, two full views 27 ms — the colour jitter (hue above all) and the blur
of each 224 px view in uint8 Python calls. So the work is split:

- the loader keeps the geometric half per image (:func:`.augment.crop_view`,
  the same code and the same recorded parameters as the per-image path) and
  ships uint8 crops of the final size;
- :func:`photometric` applies flip, colour jitter (each view's drawn factors,
  in its drawn order), grayscale and blur to the batch on the device, reading
  the same parameter vectors (``augment.PARAM_NAMES``), so every view's
  augmentation stays recorded and the recovery targets are unchanged.

The one difference from the per-image path: torchvision rounds a uint8 image
back to uint8 after every op; here the view stays in float (0..255, the scale
the model's normalisation expects) from the crop to the network. The two
paths' views differ by that rounding only; tests/test_device_augment.py pins
the measured bound. The maths of each op is torchvision's (grayscale weights,
contrast about the mean grey level, saturation towards grey, hue as a shift
in HSV, a reflect-padded Gaussian kernel), written for per-view factors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import JITTER_OPS, P, AugmentConfig, blur_kernel_size

_GREY = (0.2989, 0.587, 0.114)  # torchvision's (ITU-R 601-2 luma) weights


def _col(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def grey(x: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W) luma of (n, C, H, W) images (C = 1: the image itself)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (r * _GREY[0] + g * _GREY[1] + b * _GREY[2]).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _col(factor)
    return (x * f + other * (1 - f)).clamp_(0, 255)


def brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _col(f)).clamp_(0, 255)


def contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, grey(x).mean(dim=(1, 2, 3), keepdim=True), f)


def saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return x if x.shape[1] == 1 else _blend(x, grey(x), f)


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each image by ``shift`` (a fraction of the circle)."""
    if x.shape[1] == 1:
        return x
    rgb = x / 255
    r, g, b = rgb.unbind(1)
    v = rgb.amax(1)
    c = v - rgb.amin(1)
    s = torch.where(v > 0, c / v.clamp_min(1e-12), torch.zeros_like(v))
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(v == r, ((g - b) / safe_c) % 6,
                    torch.where(v == g, (b - r) / safe_c + 2, (r - g) / safe_c + 4))
    h = torch.where(c > 0, h / 6, torch.zeros_like(h))
    h = (h + shift.view(-1, 1, 1)) % 1.0
    # HSV -> RGB: channel n is v - v s clamp(min(k, 4 - k), 0, 1) with k = (n + 6 h) mod 6, n = 5, 3, 1
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6 * h) % 6
        out.append(v - v * s * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(out, 1) * 255


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return grey(x).expand_as(x).clone() if x.shape[1] == 3 else x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, k: int) -> torch.Tensor:
    """Blur each image with its own sigma: torchvision's k-tap Gaussian
    (sampled at -(k-1)/2 .. (k-1)/2, normalised), reflect padding, applied
    as two 1-D passes (the 2-D kernel is their outer product)."""
    n, c, hgt, wid = x.shape
    taps = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k, device=x.device, dtype=x.dtype)
    kern = torch.exp(-0.5 * (taps / sigma.view(-1, 1)) ** 2)
    kern = (kern / kern.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n * c, k)
    y = F.pad(x.reshape(1, n * c, hgt, wid), [k // 2] * 4, mode="reflect")
    y = F.conv2d(y, kern.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(y, kern.view(n * c, 1, k, 1), groups=n * c)
    return y.view(n, c, hgt, wid)


JITTER = {"brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue}


def photometric(crops: torch.Tensor, params: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Flip, colour jitter, grayscale and blur of a batch of crops (uint8 or
    float (n, C, S, S), from :func:`.augment.crop_view`) as their parameter
    rows (n, len(PARAM_NAMES)) say. Returns float32 views on the crops'
    device, 0..255."""
    x = crops.float()
    p = params.to(x.device, torch.float32)
    flip = p[:, P["flip"]] > 0
    x = torch.where(_col(flip), x.flip(-1), x)
    # jitter: at each position of the applied order, each op on the views that put it there
    # (a view without jitter has every position -1 and is left alone)
    for pos in range(len(JITTER_OPS)):
        for op in JITTER_OPS:
            idx = torch.nonzero(p[:, P[f"order_{op}"]] == pos).flatten()
            if idx.numel():
                x[idx] = JITTER[op](x[idx], p[idx, P[op]])
    gray = torch.nonzero(p[:, P["grayscale"]] > 0).flatten()
    if gray.numel() and x.shape[1] == 3:
        x[gray] = grayscale(x[gray])
    blur = torch.nonzero(p[:, P["blur"]] > 0).flatten()
    if blur.numel():
        x[blur] = gaussian_blur(x[blur], p[blur, P["blur_sigma"]], blur_kernel_size(x.shape[-1]))
    return x
