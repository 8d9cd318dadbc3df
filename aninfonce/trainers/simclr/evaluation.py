"""The evaluations of a trained SimCLR run, each named in its rows' ``protocol``:

- linear probe top-1, offline: multinomial logistic regression (L-BFGS) on
  frozen backbone features of un-augmented images; the backbone is asserted
  frozen and bit-for-bit unchanged;
- KNN top-1 (k stated) on cosine similarity of backbone features;
- augmentation recovery: for each augmentation parameter of a view, a linear
  model from that view's representation (backbone, projector) to the
  parameter, fitted on half the views and scored on the other half: R^2 for
  continuous parameters, accuracy for binary ones (with the majority-class rate).

The learned Lambda^ sorted is logged during training (:mod:`.train`).

Under torch.distributed every rank evaluates: it embeds its contiguous shard
of each set (probe train, probe test, recovery views) with rank 0's weights,
the shards are gathered into the one-process feature matrix in the same order
(:func:`embedded`), and every rank then runs the same deterministic fits on
those features: the linear probe and KNN on the run's device (the GPU under
torchrun on CUDA), the recovery fits on its CPU. The fits are duplicated rather
than left to rank 0 so that no rank waits for another's long work behind a
collective; only rank 0's rows are written (the runner).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import torch

from ...data.augment import recovery_targets
from ...data.device_augment import photometric
from ...data.images import ImageSource
from ...data.views import EvalDataset, OneViewDataset
from ...probes import embed, knn_top1, offline_linear_probe, recovery_scores
from .distributed import broadcast_module, gather_rows, shard, world
from .loading import loader_workers, make_loader
from .model import SimCLRNet
from .spec import ImageSSLSpec


def protocols(spec: ImageSSLSpec) -> dict[str, str]:
    """The protocol string of every evaluation; every number names one."""
    return {
        "linear": f"linear-probe:offline,frozen-backbone,no-aug,lbfgs-logreg,l2={spec.probe_l2:g},iters={spec.probe_iters}",
        "knn": f"knn:k={spec.knn_k},cosine,majority-vote,backbone",
        "recovery_backbone": "aug-recovery:backbone,ridgecv|logreg,fit-half/score-half",
        "recovery_projector": "aug-recovery:projector(unit-norm),ridgecv|logreg,fit-half/score-half",
    }


def embedded(model: SimCLRNet, ds, name: str, batch: int, workers: int, device: torch.device, prepare=None):
    """(backbone features, unit-norm projections, the items' second field) of
    every item of ``ds`` in order (``prepare`` as in :func:`~aninfonce.probes.embed`).
    One process embeds it all; under torch.distributed each rank embeds its
    :func:`~.distributed.shard`, says how many items it embedded (stderr), and
    the rows of all ranks are gathered."""
    rank, size = world()
    if size == 1:
        return embed(model, make_loader(ds, batch, workers, device=device), device, prepare)
    indices, real = shard(len(ds), rank, size)
    parts = embed(model, make_loader(torch.utils.data.Subset(ds, indices), batch, workers, device=device), device,
                  prepare)
    # one write per line, so that the ranks' lines do not interleave on a shared stderr
    sys.stderr.write(f"evaluation rank {rank}/{size}: embedded {real} of {len(ds)} {name}\n")
    sys.stderr.flush()
    return tuple(gather_rows(t, len(ds)) for t in parts)


def evaluate(spec: ImageSSLSpec, model: SimCLRNet, train_src: ImageSource, test_src: ImageSource,
             device: torch.device) -> list[dict[str, Any]]:
    """Every evaluation's rows. Call it on every rank of a data-parallel run
    (it gathers across ranks): each returns the same rows."""
    broadcast_module(model)  # rank 0's weights and BN statistics on every rank
    cfg = spec.augment_config()
    proto = protocols(spec)
    workers = loader_workers(spec, device)
    n_classes = int(max(train_src.labels.max(), test_src.labels.max())) + 1
    bank_src, query_src = train_src.subset(spec.probe_train), test_src.subset(spec.probe_test)
    eval_batch = 256
    bank_x = ("probe-train images", EvalDataset(bank_src, cfg.size))
    query_x = ("probe-test images", EvalDataset(query_src, cfg.size))

    def features(named: tuple[str, EvalDataset]) -> torch.Tensor:  # on the run's device for the fits (no-op on CPU)
        return embedded(model, named[1], named[0], eval_batch, workers, device)[0].to(device)

    bank_y, query_y = bank_src.labels.to(device), query_src.labels.to(device)
    rows: list[dict[str, Any]] = []
    acc, h_bank, h_query = offline_linear_probe(features, model.backbone, (bank_x, bank_y), (query_x, query_y),
                                                n_classes, spec.probe_iters, spec.probe_l2)
    rows.append({"metric": "linear_top1", "value": acc, "protocol": proto["linear"]})
    knn = knn_top1(h_bank, bank_y, h_query, query_y, spec.knn_k, n_classes)
    rows.append({"metric": "knn_top1", "value": knn, "protocol": proto["knn"]})

    # the recovery views are made as the training views were (spec.augment_on)
    on_device = spec.augment_on == "device"
    views = OneViewDataset(test_src, cfg, seed=spec.seed + 4, n=spec.recovery_views, crop_only=on_device)
    finish = (lambda crops, params: photometric(crops, params, cfg)) if on_device else None
    h_v, z_v, params = embedded(model, views, "recovery views", eval_batch, workers, device, finish)
    targets = recovery_targets(params.numpy(), cfg)
    kinds = cfg.targets()
    for space, feats in (("backbone", h_v), ("projector", z_v)):
        scores = recovery_scores(feats.double().numpy(), targets, kinds, seed=spec.seed)
        p = proto[f"recovery_{space}"]
        r2s = []
        for name, (kind, score, majority) in scores.items():
            rows.append({"metric": f"aug_{kind}/{name}", "value": score, "protocol": p})
            if majority is not None:
                rows.append({"metric": f"aug_majority/{name}", "value": majority, "protocol": p})
            if kind == "r2" and math.isfinite(score):
                r2s.append(score)
        rows.append({"metric": "aug_r2_mean", "value": float(np.mean(r2s)), "protocol": p})
    rows.append({"metric": "eval_images", "value": float(len(query_src)), "protocol": proto["linear"]})
    return rows
