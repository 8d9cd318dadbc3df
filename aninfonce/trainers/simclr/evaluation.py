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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ...data.augment import recovery_targets
from ...data.images import ImageSource
from ...data.views import EvalDataset, OneViewDataset
from ...probes import embed, knn_top1, offline_linear_probe, recovery_scores
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


def evaluate(spec: ImageSSLSpec, model: SimCLRNet, train_src: ImageSource, test_src: ImageSource,
             device: torch.device) -> list[dict[str, Any]]:
    cfg = spec.augment_config()
    proto = protocols(spec)
    workers = loader_workers(spec, device)
    n_classes = int(max(train_src.labels.max(), test_src.labels.max())) + 1
    bank_src, query_src = train_src.subset(spec.probe_train), test_src.subset(spec.probe_test)
    eval_batch = 256
    bank_x = make_loader(EvalDataset(bank_src, cfg.size), eval_batch, workers, device=device)
    query_x = make_loader(EvalDataset(query_src, cfg.size), eval_batch, workers, device=device)
    rows: list[dict[str, Any]] = []
    acc, h_bank, h_query = offline_linear_probe(lambda loader: embed(model, loader, device)[0], model.backbone,
                                                (bank_x, bank_src.labels), (query_x, query_src.labels),
                                                n_classes, spec.probe_iters, spec.probe_l2)
    rows.append({"metric": "linear_top1", "value": acc, "protocol": proto["linear"]})
    knn = knn_top1(h_bank, bank_src.labels, h_query, query_src.labels, spec.knn_k, n_classes)
    rows.append({"metric": "knn_top1", "value": knn, "protocol": proto["knn"]})

    views = OneViewDataset(test_src, cfg, seed=spec.seed + 4, n=spec.recovery_views)
    h_v, z_v, params = embed(model, make_loader(views, eval_batch, workers, device=device), device)
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
