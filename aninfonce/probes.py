"""Probes of a frozen representation, shared by the image tables: the
offline linear probe, KNN top-1, and how well each recorded augmentation
parameter of a view is recovered from that view's features (docs/PROTOCOL.md §6)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def param_fingerprint(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@torch.no_grad()
def embed(model: nn.Module, loader, device: torch.device,
          prepare: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
    """Backbone features, unit-norm projections and the batch's second item (labels or parameters),
    for a model with ``features`` and ``projector`` (trainers.simclr.model.SimCLRNet).
    ``prepare(x, other)``, if given, turns the batch (on the device) into the model's input."""
    model.eval()
    hs, zs, others = [], [], []
    for x, other in loader:
        x = x.to(device)
        h = model.features(prepare(x, other) if prepare is not None else x)
        hs.append(h.float().cpu())
        zs.append(F.normalize(model.projector(h).float(), dim=1).cpu())
        others.append(other)
    return torch.cat(hs), torch.cat(zs), torch.cat(others)


def offline_linear_probe(backbone_features: Callable[[Any], torch.Tensor], backbone: nn.Module,
                         train: tuple[Any, torch.Tensor], test: tuple[Any, torch.Tensor], n_classes: int,
                         iters: int = 100, l2: float = 1e-4) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Top-1 accuracy of a multinomial logistic regression (L-BFGS, L2) on
    frozen backbone features, and the features. ``backbone_features(x)`` must
    compute features of ``x`` with ``backbone``; the backbone is frozen (eval
    mode, no gradients) before, and asserted bit-for-bit unchanged after. The
    classifier is fitted where the features are (give them and the labels on
    the GPU to fit there)."""
    before = param_fingerprint(backbone)
    backbone.eval()
    backbone.requires_grad_(False)
    assert not any(p.requires_grad for p in backbone.parameters()), "the probe must not train the backbone"
    with torch.no_grad():
        f_train = backbone_features(train[0]).float()
        f_test = backbone_features(test[0]).float()
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    x_train, x_test = (f_train - mu) / sd, (f_test - mu) / sd
    clf = nn.Linear(x_train.shape[1], n_classes).to(x_train.device)
    nn.init.zeros_(clf.weight)
    nn.init.zeros_(clf.bias)
    opt = torch.optim.LBFGS(clf.parameters(), lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)
    y = train[1]

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(clf(x_train), y) + l2 * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    after = param_fingerprint(backbone)
    assert all(torch.equal(before[k], after[k]) for k in before), "the backbone changed during the linear probe"
    assert not any(p.requires_grad for p in backbone.parameters()), "the backbone was unfrozen during the probe"
    with torch.no_grad():
        pred = clf(x_test).argmax(1)
    return float((pred == test[1]).float().mean()), f_train, f_test


def knn_top1(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, k: int,
             n_classes: int, chunk: int = 1024) -> float:
    """Top-1 of a k-nearest-neighbour majority vote under cosine similarity
    (ties go to the nearest neighbour's class)."""
    bank = F.normalize(bank.float(), dim=1)
    query = F.normalize(query.float(), dim=1)
    k = min(k, len(bank))
    correct = 0
    for s in range(0, len(query), chunk):
        sim = query[s:s + chunk] @ bank.T
        top = sim.topk(k, dim=1).indices
        votes = F.one_hot(bank_y[top], n_classes).float()
        votes[:, 0] += 1e-3  # nearest neighbour breaks ties
        pred = votes.sum(1).argmax(1)
        correct += int((pred == query_y[s:s + chunk]).sum())
    return correct / len(query)


def recovery_scores(features: np.ndarray, targets: dict[str, np.ndarray], kinds: dict[str, str],
                    seed: int = 0) -> dict[str, tuple[str, float, float | None]]:
    """name -> (metric kind 'r2' / 'acc', score on the held-out half, majority
    rate for binary targets). A linear model per parameter, fitted on the
    first half of the views and scored on the second."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    n = len(features) // 2
    scaler = StandardScaler().fit(features[:n])
    x_fit, x_score = scaler.transform(features[:n]), scaler.transform(features[n:2 * n])
    out: dict[str, tuple[str, float, float | None]] = {}
    for name, y in targets.items():
        y_fit, y_score = y[:n], y[n:2 * n]
        if kinds[name] == "binary":
            y_fit, y_score = y_fit.astype(int), y_score.astype(int)
            majority = float(max(np.mean(y_score), 1 - np.mean(y_score)))
            if len(np.unique(y_fit)) < 2:
                out[name] = ("acc", majority, majority)
                continue
            clf = LogisticRegression(C=1.0, max_iter=2000).fit(x_fit, y_fit)
            out[name] = ("acc", float(clf.score(x_score, y_score)), majority)
        else:
            if np.std(y_fit) == 0:
                out[name] = ("r2", float("nan"), None)
                continue
            reg = RidgeCV(alphas=np.logspace(-2, 4, 7)).fit(x_fit, y_fit)
            out[name] = ("r2", float(r2_score(y_score, reg.predict(x_score))), None)
    return out
