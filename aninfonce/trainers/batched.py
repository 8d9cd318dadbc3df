"""Several synthetic runs of one grid trained in one process as one batched
model: the encoders' (and mixings') weights are stacked along a leading run
axis and applied with batched matrix products, so a sweep of small models
keeps a GPU busy instead of launching one tiny kernel per layer per run.

Each run keeps everything that makes it that run: its own mixing, initial
weights, metric, data generator and evaluation set, all from
:func:`synthetic.build` / :func:`synthetic.make_eval_set` with its own seed.
Adam is elementwise, so one Adam over the stacked encoder weights is the
runs' separate Adams side by side; the runs' losses are summed, so each run's
gradient is its own. The rows are those of :func:`synthetic.train_synthetic`
up to float rounding (batched vs single matrix products); see
tests/test_batched.py.

Runs can share a batch when they differ only in what lives inside a run
(seed, loss, Lambda, hard_beta, quirk): :func:`batchable_groups` splits a grid
accordingly. The steps run in the one loop of :mod:`aninfonce.trainers.loop`
(one loss per run), without checkpoints: a batched group is meant for short
runs on an accelerator; long runs go through the runner one by one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..losses import contrastive_loss
from ..speed import use_fused_adam
from .loop import BareContext, train_loop
from .synthetic import (
    SyntheticSpec,
    _stamp,
    build,
    evaluate,
    ground_truth_loss,
    make_eval_set,
    positive_pairs,
)

# fields a batch must share: shapes, schedule, optimiser settings
SHARED_FIELDS = ("d", "batch", "steps", "lr_f", "lr_metric", "widths", "eval_every", "eval_samples", "fast", "matmul",
                 "compile")


def batchable_groups(specs: list[SyntheticSpec]) -> list[list[SyntheticSpec]]:
    """Split specs into groups that can be trained as one batched model."""
    groups: dict[tuple, list[SyntheticSpec]] = {}
    for s in specs:
        groups.setdefault(tuple(getattr(s, f) for f in SHARED_FIELDS), []).append(s)
    return list(groups.values())


class _StackedMLP:
    """Linear layers with weights (R, out, in) and biases (R, out), applied to (R, B, in)."""

    def __init__(self, linears: list[list[torch.nn.Linear]], slope: float, trainable: bool):
        # linears[r][i]: layer i of run r
        n_layers = len(linears[0])
        self.weights = [torch.stack([run[i].weight.detach() for run in linears]).clone() for i in range(n_layers)]
        has_bias = linears[0][0].bias is not None
        self.biases = [torch.stack([run[i].bias.detach() for run in linears]).clone() if has_bias else None
                       for i in range(n_layers)]
        if trainable:
            for t in self.parameters():
                t.requires_grad_(True)
        self.slope = slope

    def parameters(self) -> list[torch.Tensor]:
        return [t for pair in zip(self.weights, self.biases) for t in pair if t is not None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.bmm(x, w.transpose(1, 2)) if b is None else torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))
            if i < last:
                x = F.leaky_relu(x, self.slope)
        return x

    def load_into(self, r: int, linears: list[torch.nn.Linear]) -> None:
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases):
                lin.weight.copy_(w[r])
                if b is not None:
                    lin.bias.copy_(b[r])


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def train_synthetic_batched(specs: list[SyntheticSpec], device: torch.device | str = "cpu") -> list[list[dict[str, Any]]]:
    """Train ``specs`` together; returns each run's rows, in order, as
    :func:`synthetic.train_synthetic` would (no checkpoints, no progress bar)."""
    device = torch.device(device)
    if not specs:
        return []
    groups = batchable_groups(specs)
    if len(groups) > 1:
        raise ValueError(f"these runs cannot share a batch: they differ in one of {SHARED_FIELDS}; "
                         f"split them with batchable_groups()")
    ref = specs[0]
    if ref.matmul != "ieee" or ref.compile != "off":
        raise ValueError("batched training supports the fast flag only (matmul='ieee', compile='off'): "
                         "its stacked layers are batched products of their own")
    runs = [build(s, device) for s in specs]
    precisions = [s.true_lambda().to(device) for s in specs]
    eval_sets = [make_eval_set(s, device) for s in specs]
    gt_losses = [ground_truth_loss(s, e) for s, e in zip(specs, eval_sets)]
    rows: list[list[dict[str, Any]]] = [_stamp(evaluate(s, m, e), 0, g, None)
                                        for s, m, e, g in zip(specs, runs, eval_sets, gt_losses)]

    mixing = _StackedMLP([_linears(m["mixing"]) for m in runs], slope=0.2, trainable=False)
    encoder = _StackedMLP([_linears(m["encoder"]) for m in runs], slope=0.01, trainable=True)
    groups_ = [{"params": encoder.parameters(), "lr": ref.lr_f}]
    metric_params = [p for m in runs for p in m["metric"].parameters()]
    if metric_params:
        groups_.append({"params": metric_params, "lr": ref.lr_metric})
    optimizer = torch.optim.Adam(groups_)
    if ref.fast:
        use_fused_adam(optimizer)

    n = ref.batch

    def step() -> torch.Tensor:
        x = torch.stack([torch.cat(positive_pairs(s, n, p, m["data_gen"], device))
                         for s, p, m in zip(specs, precisions, runs)])  # (R, 2N, d)
        h = encoder(mixing(x))
        h = h / h.norm(dim=2, keepdim=True)
        losses = torch.stack([contrastive_loss(h[r, :n], h[r, n:], runs[r]["metric"](), s.hard_beta, s.authors_quirk,
                                               fast=s.fast) for r, s in enumerate(specs)])
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        return losses.detach()

    def evaluate_runs(step: int, train_losses: list[float]) -> list[dict[str, Any]]:
        for r, (s, m, e, g) in enumerate(zip(specs, runs, eval_sets, gt_losses)):
            encoder.load_into(r, _linears(m["encoder"]))
            rows[r] += _stamp(evaluate(s, m, e), step, g, train_losses[r])
        return []  # each run's rows went to its own list

    train_loop(BareContext(device), [s.label() for s in specs], ref.steps, ref.eval_every, 0, [], step=step,
               evaluate=evaluate_runs)
    return rows
