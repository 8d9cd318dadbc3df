"""Run specifications: a frozen dataclass holds everything that determines one
run, and its key is a hash of its canonical JSON (the class name included, so
a spec class keeps its keys wherever it lives).

Every spec of the suite is here, with the vocabularies its fields are checked
against, and nothing here imports torch: a grid, its run keys and a plan's
manifest can be computed where only the reading half is installed. The
trainers turn a spec into tensors (``true_lambda`` imports torch when called)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import BadInput
from .schedules import AUTHORS_OPTIMISER, SCHEDULES

if TYPE_CHECKING:
    import torch

_UNSET = object()


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Base of every run spec. Subclasses add their fields (all with defaults)."""

    experiment: str
    seed: int = 0

    # fields that change nothing about the numbers (kept out of the key)
    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ()
    # fields a ``--speed`` preset may set (aninfonce.speed); none by default
    SPEED_FIELDS: ClassVar[tuple[str, ...]] = ()

    def fields(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @property
    def key(self) -> str:
        """Hash of the fields that differ from their defaults (plus experiment
        and seed), so adding a new field with a default keeps old keys valid."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        payload = {k: v for k, v in self.fields().items()
                   if k not in self.NOT_IN_KEY and (k in ("experiment", "seed") or _norm(defaults.get(k, _UNSET)) != v)}
        payload["_type"] = type(self).__name__
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def columns(self) -> dict[str, Any]:
        """The spec as flat CSV columns (tuples as JSON strings)."""
        return {k: json.dumps(v) if isinstance(v, list) else v for k, v in self.fields().items()}

    def label(self) -> str:
        return f"{self.experiment}:{self.key}"


# ---------------------------------------------------------------- vocabularies
# the contrastive losses by name; their parametrisations are losses.LOSSES (a test holds the two equal)
LOSS_NAMES = ("aninfonce", "infonce-learned", "infonce-tau1", "infonce-tau0.1", "infonce-tau0.2")
# the losses the synthetic studies run [recon]
SYNTHETIC_LOSSES = ("aninfonce", "infonce-learned", "infonce-tau1", "infonce-tau0.1")
# the losses the image tables run [recon]: the learned scalar is the default
# baseline, tau = 0.2 the usual SimCLR CIFAR choice
IMAGE_LOSSES = ("aninfonce", "infonce-learned", "infonce-tau0.2")
LAMBDA_PARAMS = ("softplus", "log")  # how Lambda^ is held (losses.LearnedLambda)
PAPER_ENCODER_WIDTHS = (10, 50, 50, 50, 50, 10)  # [code] the MLP encoder's widths, multiples of d (nets.MLPEncoder)
CONDITION_DRAWS = 25_000  # [code] candidate matrices per mixing layer (nets.well_conditioned_matrix)

# ---------------------------------------------------------------- numerics presets (``--speed``)
MATMUL = ("ieee", "reduced")
COMPILE = ("off", "on", "cudagraphs")
PRESETS: dict[str, dict[str, object]] = {
    # the default: each profile's own numerics -- the synthetic quick and paper
    # sweeps use the fused float32 path (fast=True), smoke and the
    # plain-path reference use fast=False (the golden values pin them)
    "exact": {},
    "fast": dict(fast=True),
    "fast-lowp": dict(fast=True, matmul="reduced"),
    "fast-compile": dict(fast=True, compile="on"),
    "fast-cudagraphs": dict(fast=True, compile="cudagraphs"),
}


def check(matmul: str, compile: str) -> None:
    if matmul not in MATMUL:
        raise BadInput(f"unknown matmul precision {matmul!r}; choose one of {MATMUL}")
    if compile not in COMPILE:
        raise BadInput(f"unknown compile mode {compile!r}; choose one of {COMPILE}")
    if compile != "off" and matmul != "ieee":
        raise BadInput("compile and matmul='reduced' do not combine (the reduced products are an eager "
                       "autograd function); pick one")


def precision_preset(kind: str, d: int, lam1: float = 5.0, lam2: float = 25.0) -> np.ndarray:
    """The ground-truth diagonal Lambda in numpy (float32), for figures; the
    trainers draw with ``latents.lambda_preset``, whose values these are."""
    if kind == "bimodal":
        half = d // 2
        return np.array([lam2] * half + [lam1] * (d - half), dtype=np.float32)
    if kind == "linear":  # torch.linspace's float32 values (to the bit for the grids' d = 10): the first
        # half stepped up from lam1, the rest down from lam2, each with one rounding as torch's fused multiply-add
        step = np.float64(np.float32(np.float32(lam2) - np.float32(lam1)) / np.float32(max(d - 1, 1)))
        return np.array([np.float32(lam1 + step * i) if i < d // 2 else np.float32(lam2 - step * (d - 1 - i))
                         for i in range(d)], dtype=np.float32)
    if kind == "isotropic":
        return np.full(d, float(lam2), dtype=np.float32)
    raise ValueError(f"unknown Lambda preset {kind!r}; choose bimodal, linear or isotropic")


# ---------------------------------------------------------------- synthetic runs (Figures 2 and 4, studies)
@dataclasses.dataclass(frozen=True)
class SyntheticSpec(RunSpec):
    loss: str = "aninfonce"
    lambda_kind: str = "bimodal"
    lam1: float = 5.0
    lam2: float = 25.0
    d: int = 10
    batch: int = 1000
    steps: int = 100_000
    lr_f: float = 1e-4
    lr_metric: float = 1e-3
    widths: tuple[int, ...] = PAPER_ENCODER_WIDTHS
    eval_every: int = 5000
    eval_samples: int = 4096
    hard_beta: float = 0.0
    authors_quirk: bool = False
    mixing_draws: int = CONDITION_DRAWS
    # the optimisation schedule (the time-compressed settings the calibration entry tries): linear
    # warm-up over ``warmup_steps``, then "constant" (the authors' [code]) or
    # "cosine" decay to zero at ``steps``; both learning rates follow it
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    # how Lambda^ is held: "softplus" [code] or "log" (a relative step per update) [recon]
    lambda_param: str = "softplus"
    # the precision used for the positive conditional; None = lambda_preset(...)
    precision: tuple[float, ...] | None = None
    # [speed] the fused 2N x 2N loss and fused Adam (train_step). The same maths,
    # but training amplifies float rounding, so rows differ from fast=False
    # beyond float tolerance (final R^2 by ~0.3 % in a quick fig2 run): off by
    # default so stored results stay reproducible bit for bit. See benchmarks/.
    fast: bool = False
    # [speed] the encoder's matrix products in bf16 (CPU) / TF32 (CUDA): "ieee" | "reduced"
    matmul: str = "ieee"
    # [speed] torch.compile of the encoder in training: "off" | "on" | "cudagraphs"
    compile: str = "off"

    SPEED_FIELDS: ClassVar[tuple[str, ...]] = ("fast", "matmul", "compile")

    def __post_init__(self) -> None:
        if self.loss not in SYNTHETIC_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {SYNTHETIC_LOSSES}")
        if self.lambda_param not in LAMBDA_PARAMS:
            raise ValueError(f"unknown lambda_param {self.lambda_param!r}; choose one of {LAMBDA_PARAMS}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {SCHEDULES}")
        check(self.matmul, self.compile)

    def true_lambda(self) -> "torch.Tensor":
        import torch  # the trainers' tensor; the spec itself needs no torch

        if self.precision is not None:
            return torch.tensor(self.precision, dtype=torch.float32)
        from .latents import lambda_preset

        return lambda_preset(self.lambda_kind, self.d, self.lam1, self.lam2)


# [code] the authors' model and optimiser; anything else is a deviation the report names
AUTHORS_SETTING = {"widths": PAPER_ENCODER_WIDTHS, **AUTHORS_OPTIMISER}


def deviations_from_authors(spec: SyntheticSpec) -> list[str]:
    """The fields of ``spec`` that differ from the authors' model and
    optimiser (step count, evaluation and numerics aside)."""
    out = []
    for k, v in AUTHORS_SETTING.items():
        mine = getattr(spec, k)
        if (tuple(mine) != tuple(v)) if isinstance(v, tuple) else mine != v:
            out.append(f"{k} {tuple(mine) if isinstance(v, tuple) else mine} (authors: {v})")
    return out


@dataclasses.dataclass(frozen=True)
class EnsembleSpec(SyntheticSpec):
    """``terms``: one diagonal precision Lambda_k (a length-d tuple) per term.
    ``terms_used``: a readable name of the terms (e.g. ``"t0+t1"``) for plots.
    ``batch`` is the number of pairs *per term*."""

    terms: tuple[tuple[float, ...], ...] = ()
    terms_used: str = ""

    SPEED_FIELDS: ClassVar[tuple[str, ...]] = ()  # the plain loss and fused Adam only

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.terms:
            raise ValueError("an ensemble needs at least one term")
        if any(len(t) != self.d for t in self.terms):
            raise ValueError(f"every term's precision must have d = {self.d} entries")
        if self.fast or self.matmul != "ieee" or self.compile != "off":
            raise ValueError("an ensemble trains with the plain loss and fused Adam only "
                             "(fast=False, matmul='ieee', compile='off')")

    def term_spec(self, k: int) -> "EnsembleSpec":
        """The spec seen by synthetic.py's helpers for term k: its precision is term k's."""
        return dataclasses.replace(self, precision=tuple(float(x) for x in self.terms[k]))


# ---------------------------------------------------------------- Figure 3 (MNIST through a VAE)
@dataclasses.dataclass(frozen=True)
class Fig3Spec(RunSpec):
    loss: str = "aninfonce"
    lambda_kind: str = "bimodal"
    lam1: float = 5.0
    lam2: float = 25.0
    d: int = 10  # [caption] the VAE's latent size
    batch: int = 1000
    steps: int = 100_000
    lr_f: float = 1e-4
    lr_metric: float = 1e-3
    eval_every: int = 5000
    eval_samples: int = 4096
    channels: tuple[int, ...] = (32, 64)  # [recon] CNN encoder
    hidden: int = 256  # [recon]
    vae_hidden: int = 400  # [recon]
    vae_epochs: int = 30  # [recon]
    vae_train_images: int | None = None  # None = all 60,000
    vae_test_images: int | None = None  # None = all 10,000
    knn_k: int = 10  # [recon]
    knn_train_images: int | None = None  # None = all 60,000
    knn_test_images: int | None = None  # None = all 10,000

    def __post_init__(self) -> None:
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSS_NAMES)}")

    def true_lambda(self) -> "torch.Tensor":
        from .latents import lambda_preset  # torch: the trainer's

        return lambda_preset(self.lambda_kind, self.d, self.lam1, self.lam2)

    def content_mask(self) -> np.ndarray:
        """Positional groups (trainers.vae_images): first half for bimodal, top half of Lambda for linear."""
        if self.lambda_kind == "bimodal":
            return np.arange(self.d) < self.d // 2
        lam = self.true_lambda().numpy()
        return lam >= np.median(lam)

    def knn_protocol(self) -> str:
        n_train = self.knn_train_images or 60_000
        n_test = self.knn_test_images or 10_000
        return (f"knn k={self.knn_k} euclidean(=cosine) majority vote on encoder output (10-d unit-norm); "
                f"reference: first {n_train} real MNIST train images; scored: first {n_test} real MNIST test images")


# ---------------------------------------------------------------- Figure 5 (the schematic's overlap)
@dataclasses.dataclass(frozen=True)
class OverlapSpec(RunSpec):
    d: int = 2  # 2 = circle S^1, 3 = sphere S^2
    kappa: float = 5.0
    samples: int = 20_000


# ---------------------------------------------------------------- the image tables (SimCLR)
@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """One SimCLR augmentation preset (applied by data.augment)."""

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


JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
# [recon] SimCLR augmentations (the paper says only "standard SimCLR
# augmentations, grayscale p = 0.2", via a third party). CIFAR10: SimCLR's own
# CIFAR-10 colour strength s = 0.5 (Chen et al. 2020: jitter 0.8s, 0.8s, 0.8s,
# 0.2s = 0.4, 0.4, 0.4, 0.1, applied with p = 0.8), grayscale 0.2, no blur.
# Not solo-learn's: its CIFAR SimCLR recipe uses 0.8, 0.8, 0.8, 0.2 (with
# temperature 0.2, LARS, a 2048-256 projector); (0.4, 0.4, 0.2, 0.1), used here
# earlier, is BYOL's jitter. ImageNet: SimCLR's strength 1 (0.8, 0.8,
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


@dataclasses.dataclass(frozen=True)
class ImageSSLSpec(RunSpec):
    dataset: str = "cifar10"  # cifar10 | imagenet | mnist
    synthetic_files: bool = False  # smoke: tiny synthetic files in the real on-disk format, written into the run cache
    arch: str = "resnet18-cifar"  # resnet18-cifar | resnet50 | smallcnn
    loss: str = "aninfonce"
    epochs: int = 1000
    batch: int = 512  # global batch (pairs), split across ranks
    lr: float = 0.03  # per 256 pairs: lr = lr * batch / 256  [third party quote of the paper: SimSiam recipe]
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 10.0
    # the network's lr after the warm-up: "cosine" to 0 at the last step, or "constant" (no anneal) [recon]
    lr_schedule: str = "cosine"
    lr_metric: float = 1e-2  # Adam on theta of Lambda^ [recon]; the network uses SGD
    lambda_init: float = 5.0  # Lambda^ starts at 1 / 0.2: every loss starts as SimCLR with tau = 0.2 [recon]
    proj_hidden: int = 2048
    proj_dim: int = 128
    width: int = 64  # smallcnn only
    augment: str = "cifar10"  # a preset of AUGMENTS
    image_size: int = 0  # 0 = the preset's size
    # where a view's photometric half (flip, jitter, grayscale, blur) runs: "loader" = per image in the
    # loader workers, uint8 after every op; "device" = batched on the run's device, in float (data.device_augment).
    # Same recorded parameters; the views differ by uint8 rounding only (<= 6/255, mean 1.3/255 measured)
    augment_on: str = "loader"
    train_limit: int = 0  # first n training images (0 = all)
    steps_per_epoch_limit: int = 0  # 0 = a full pass
    probe_train: int = 0  # images of the train split for the probe and KNN bank (0 = all)
    probe_test: int = 0  # images of the test split scored (0 = all)
    probe_iters: int = 100  # L-BFGS iterations of the offline linear probe
    probe_l2: float = 1e-4
    knn_k: int = 20
    recovery_views: int = 10_000  # augmented test views for the recovery regressions (half fit, half score)
    log_every: int = 50  # steps between loss rows
    amp: bool = True  # bf16 autocast, on CUDA only
    num_workers: int = -1  # data loader workers (-1 = up to 8, one core left free); changes no number

    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ("num_workers",)

    def __post_init__(self) -> None:
        if self.loss not in IMAGE_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {IMAGE_LOSSES}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose 'cosine' or 'constant'")
        if self.augment_on not in ("loader", "device"):
            raise ValueError(f"unknown augment_on {self.augment_on!r}; choose 'loader' or 'device'")
        if self.augment not in AUGMENTS:
            raise ValueError(f"unknown augmentation preset {self.augment!r}; "
                             f"choose one of {sorted(AUGMENTS)}")

    def augment_config(self) -> AugmentConfig:
        return augment_config(self.augment, self.image_size or None)
