"""The settings of one SimCLR run (:class:`ImageSSLSpec`) and the losses the
image tables compare."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ...data import augment as augmentations
from ...specs import RunSpec

# the losses the image tables run (parametrisations in losses.LOSSES) [recon]:
# the learned scalar is the default baseline, tau = 0.2 the usual SimCLR CIFAR choice
LOSSES = ("aninfonce", "infonce-learned", "infonce-tau0.2")


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
    augment: str = "cifar10"  # a preset of data.augment.AUGMENTS
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
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose 'cosine' or 'constant'")
        if self.augment_on not in ("loader", "device"):
            raise ValueError(f"unknown augment_on {self.augment_on!r}; choose 'loader' or 'device'")
        if self.augment not in augmentations.AUGMENTS:
            raise ValueError(f"unknown augmentation preset {self.augment!r}; "
                             f"choose one of {sorted(augmentations.AUGMENTS)}")

    def augment_config(self) -> augmentations.AugmentConfig:
        return augmentations.augment_config(self.augment, self.image_size or None)
