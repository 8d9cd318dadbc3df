"""SimCLR-style training on images with InfoNCE or AnInfoNCE, and the
evaluations of the tables (docs/PROTOCOL.md §6, a reconstruction [recon]).

One function, :func:`train_imagessl`, trains and evaluates one run of an
:class:`ImageSSLSpec`. It runs in one process (the runner) or data-parallel
under ``torchrun`` (``python -m torch.distributed.run --nproc_per_node N -m
aninfonce.torchrun <experiment glob> ...``): a distributed sampler splits each
epoch, the projections of every rank are gathered with their gradient so
every anchor sees the negatives of the whole global batch, BatchNorm runs on
the global batch (SyncBatchNorm on CUDA, the gathered batch on CPU), every rank
embeds its shard of the evaluation sets and runs the same fits on the gathered
features, and rank 0 writes checkpoints and results.

The modules, in the order a run uses them:

- :mod:`.spec`: the run's settings (:class:`ImageSSLSpec`) and the losses;
- :mod:`.loading`: the image sources and data loaders of a run;
- :mod:`.model`: backbones, projector and Lambda^ (:class:`SimCLRNet`);
- :mod:`.distributed`: ranks, the gather with gradient, the global-batch loss and
  BatchNorm, the evaluation shards and their gather;
- :mod:`.train`: the epochs, on the one step loop of :mod:`aninfonce.trainers.loop`;
- :mod:`.evaluation`: linear probe, KNN, augmentation recovery.
"""

from .spec import LOSSES, ImageSSLSpec
from .train import train_imagessl

__all__ = ["LOSSES", "ImageSSLSpec", "train_imagessl"]
