"""The trainers as module-level functions: each imports its trainer (torch)
only when a run executes, so a study's grid, keys and manifest are computed
without torch, and each pickles by name into a pool or SLURM worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_synthetic(spec, ctx) -> list[dict[str, Any]]:
    from ..trainers import synthetic

    return synthetic.train_synthetic(spec, ctx)


def train_ensemble(spec, ctx) -> list[dict[str, Any]]:
    from ..trainers import ensemble

    return ensemble.train_ensemble(spec, ctx)


def train_fig3(spec, ctx) -> list[dict[str, Any]]:
    from ..trainers import vae_images

    return vae_images.train_fig3(spec, ctx)


def train_imagessl(spec, ctx) -> list[dict[str, Any]]:
    from ..trainers import simclr

    return simclr.train_imagessl(spec, ctx)


def mnist_check(root: Path, profile: str) -> str | None:
    """The real MNIST files' presence (data.mnist.mnist_check)."""
    from ..data.mnist import mnist_check as check

    return check(root, profile)
