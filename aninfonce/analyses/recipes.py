"""Where each value of the CIFAR10 and ImageNet recipes comes from.

Nothing of these recipes is in the authors' public code or the captions: every
value is [recon]. What differs is where it was taken from, and whether we
checked it there. The values themselves are read from the code that runs
(the entry's paper-profile settings, the ``ImageSSLSpec`` defaults and
the augmentation preset), so this table cannot drift from what is trained;
``tests/test_recipes.py`` fails when a recipe value has no source here.

Origins, and how each was checked:

- *quote*: a third party's description of the paper's CIFAR10 baseline
  (ResNet-18, SimSiam recipe: SGD momentum 0.9, lr 0.03 x batch / 256, cosine,
  weight decay 5e-4; SimCLR augmentations, grayscale p = 0.2; 90.9 % linear
  accuracy). Taken as quoted; the paper's own text was not available.
- *SimCLR*: Chen et al. 2020 (ICML), from the paper: colour-distortion
  strength s (jitter 0.8s, 0.8s, 0.8s, 0.2s with p = 0.8), s = 0.5 and no blur
  for CIFAR-10, s = 1 and Gaussian blur (p = 0.5, sigma 0.1-2.0) for ImageNet;
  random resized crop (scale 0.08-1, ratio 3/4-4/3), flip p = 0.5, grayscale
  p = 0.2; a 128-d projection output; the CIFAR-10 ResNet stem (3x3 conv, no
  max-pool). Not re-read here.
- *SimSiam*: Chen & He 2021 (CVPR), ImageNet recipe: SGD momentum 0.9, lr 0.05
  x batch / 256, weight decay 1e-4, cosine, 100 epochs (batch 512). Not re-read
  here.
- *solo-learn*: its CIFAR SimCLR configuration (scripts/pretrain/cifar/
  simclr.yaml and augmentations/symmetric.yaml, read in its public
  repository): ResNet-18, 1000 epochs, LARS lr 0.4 at batch 256,
  temperature 0.2, projector 2048-256, jitter 0.8/0.8/0.8/0.2. We take from it
  only the run length behind its ~90.7-91 % reference point and tau = 0.2.
- *ours*: a choice of this project, no outside source.
"""

from __future__ import annotations

import dataclasses

from ..specs import ImageSSLSpec, augment_config

QUOTE = "the paper's CIFAR10 baseline as a third party quotes it"
SIMCLR = "SimCLR (Chen et al. 2020)"
SIMSIAM = "SimSiam (Chen & He 2021), ImageNet recipe"
SOLO = "solo-learn's CIFAR SimCLR config (checked in its repository)"
OURS = "ours"

# The settings a recipe consists of (plumbing such as loader workers, log
# cadence or smoke-only limits is not part of it).
RECIPE_FIELDS = ("arch", "epochs", "batch", "lr", "lr_schedule", "momentum", "weight_decay", "warmup_epochs",
                 "proj_hidden", "proj_dim", "lambda_init", "lr_metric", "probe_train", "probe_test", "probe_iters",
                 "probe_l2", "knn_k", "recovery_views")
AUGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(augment_config("cifar10")))

_COMMON = {
    "momentum": (QUOTE, "SGD momentum 0.9"),
    "lambda_init": (OURS, "Λ̂ starts at 1 / 0.2, so every loss starts as SimCLR with τ = 0.2, solo-learn's temperature"),
    "lr_metric": (OURS, "Adam on Λ̂'s parameters; the network keeps SGD"),
    "probe_iters": (OURS, "offline L-BFGS linear probe on frozen features (solo-learn reports an online probe)"),
    "probe_l2": (OURS, "L2 penalty of the probe"),
    "probe_test": (OURS, "0 = the whole test split"),
    "knn_k": (OURS, "k of the KNN accuracy"),
    "recovery_views": (OURS, "augmented test views for the recovery regressions, half fit, half scored"),
    "augment.ratio": (SIMCLR, "random resized crop aspect ratio (torchvision's default)"),
    "augment.scale": (SIMCLR, "random resized crop area fraction"),
    "augment.flip_p": (SIMCLR, "horizontal flip probability"),
    "augment.jitter_p": (SIMCLR, "colour jitter applied with p = 0.8"),
    "augment.grayscale_p": (QUOTE, "grayscale p = 0.2 (also SimCLR's)"),
    "augment.blur_sigma": (SIMCLR, "blur σ range (unused where blur p = 0)"),
}

SOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "cifar10-table": {
        **_COMMON,
        "arch": (QUOTE, "ResNet-18; the CIFAR stem (3x3 first conv, no max-pool) is SimCLR's CIFAR-10 variant"),
        "epochs": (SOLO, "the length behind the 90.7-91 % SimCLR reference point"),
        "batch": (OURS, "the quote names no batch; 512 pairs"),
        "lr": (QUOTE, "0.03 x batch / 256, cosine schedule"),
        "lr_schedule": (QUOTE, "cosine decay to 0"),
        "weight_decay": (QUOTE, "5e-4"),
        "warmup_epochs": (OURS, "linear warm-up before the cosine; the quote names none"),
        "proj_hidden": (OURS, "projection MLP hidden width (solo-learn's is also 2048)"),
        "proj_dim": (SIMCLR, "128-d projection output"),
        "probe_train": (OURS, "0 = all 50,000 training images for the probe and the KNN bank"),
        "augment.size": (SIMCLR, "32 px crops, CIFAR's own size"),
        "augment.brightness": (SIMCLR, "strength s = 0.5: 0.8 s"),
        "augment.contrast": (SIMCLR, "strength s = 0.5: 0.8 s"),
        "augment.saturation": (SIMCLR, "strength s = 0.5: 0.8 s"),
        "augment.hue": (SIMCLR, "strength s = 0.5: 0.2 s"),
        "augment.blur_p": (SIMCLR, "no blur on CIFAR-10"),
    },
    "imagenet-table": {
        **_COMMON,
        "arch": (SIMCLR, "ResNet-50, the standard ImageNet backbone of SimCLR's linear evaluation"),
        "epochs": (SIMSIAM, "100 epochs"),
        "batch": (OURS, "1024 pairs (SimSiam: 512; the lr scales with the batch)"),
        "lr": (SIMSIAM, "0.05 x batch / 256, cosine schedule"),
        "lr_schedule": (SIMSIAM, "cosine decay to 0"),
        "weight_decay": (SIMSIAM, "1e-4"),
        "warmup_epochs": (OURS, "linear warm-up before the cosine"),
        "proj_hidden": (OURS, "projection MLP hidden width = ResNet-50's feature width"),
        "proj_dim": (SIMCLR, "128-d projection output"),
        "probe_train": (OURS, "128,000 training images (~100 per class) to keep the offline L-BFGS probe in "
                              "memory: below the usual full-train-set linear-probe references"),
        "augment.size": (SIMCLR, "224 px crops"),
        "augment.brightness": (SIMCLR, "strength s = 1: 0.8 s"),
        "augment.contrast": (SIMCLR, "strength s = 1: 0.8 s"),
        "augment.saturation": (SIMCLR, "strength s = 1: 0.8 s"),
        "augment.hue": (SIMCLR, "strength s = 1: 0.2 s"),
        "augment.blur_p": (SIMCLR, "Gaussian blur p = 0.5"),
    },
}


def recipe(entry: str, settings: dict) -> dict[str, object]:
    """The recipe a table entry runs with ``settings`` (its paper profile's
    settings, over the spec defaults): spec fields and ``augment.*`` fields."""
    spec = ImageSSLSpec(experiment=entry, **settings)
    cfg = spec.augment_config()
    return {**{f: getattr(spec, f) for f in RECIPE_FIELDS}, **{f"augment.{f}": getattr(cfg, f) for f in AUGMENT_FIELDS}}


def _fmt(v: object) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def recipe_table(entry: str, settings: dict, profile: str) -> str:
    """Markdown: every value of the entry's paper recipe, its label and where it comes from."""
    sources = SOURCES[entry]
    lines = [f"Recipe of the `paper` profile (what a GPU run trains; `{profile}` scales it down as the entry's "
             "settings say). Every value is [recon]: none is in the authors' code or captions.", "",
             "| setting | value | from | note |", "|---|---|---|---|"]
    for name, value in recipe(entry, settings).items():
        origin, note = sources.get(name, ("**no source recorded**", ""))
        lines.append(f"| `{name}` | {_fmt(value)} | {origin} | {note} |")
    return "\n".join(lines)
