"""Training and evaluation of one synthetic run (docs/PROTOCOL.md §2-4).

One function, :func:`train_synthetic`, serves Figures 2 and 4 and the
hard-negative study: the spec says which Lambda, which loss, which sizes.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import speed
from ..schedules import lr_factor
from ..latents import content_style_masks, sample_positive, sample_sphere
from ..losses import LOSSES as LOSS_TABLE
from ..losses import LearnedLambda, contrastive_loss
from ..metrics import identifiability_rows
from ..nets import MixingMLP, MLPEncoder
from ..specs import AUTHORS_SETTING, SYNTHETIC_LOSSES, SyntheticSpec, deviations_from_authors  # noqa: F401
from .loop import resume_or_start, snapshot, train_loop

LOSSES = SYNTHETIC_LOSSES  # the losses the synthetic studies run (parametrisations in losses.LOSSES)


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def build(spec: SyntheticSpec, device: torch.device) -> dict[str, Any]:
    """The run's modules, deterministic in the spec's seed.

    Seeds: mixing = seed, encoder and metric init = seed + 1, training data =
    seed + 2, evaluation samples = seed + 3. The mixing is drawn on the CPU so
    the same seed gives the same g on every device.
    """
    cpu = torch.device("cpu")
    mixing = MixingMLP(spec.d, _generator(spec.seed, cpu), draws=spec.mixing_draws)
    init_gen = _generator(spec.seed + 1, cpu)
    encoder = MLPEncoder(spec.d, init_gen, tuple(spec.widths))
    kind, tau = LOSS_TABLE[spec.loss]
    metric = LearnedLambda(spec.d, kind, tau, generator=init_gen, param=spec.lambda_param)
    mixing, encoder, metric = mixing.to(device), encoder.to(device), metric.to(device)
    params = [{"params": encoder.parameters(), "lr": spec.lr_f}]
    if kind != "fixed":
        params.append({"params": metric.parameters(), "lr": spec.lr_metric})
    optimizer = torch.optim.Adam(params)
    schedule = None
    if spec.lr_schedule != "constant" or spec.warmup_steps:
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(spec, step))
    return {
        "schedule": schedule,
        "mixing": mixing,
        "encoder": encoder,
        "train_encoder": speed.compiled(encoder, spec.compile),  # the encoder itself unless compiled
        "metric": metric,
        "optimizer": optimizer,
        "data_gen": _generator(spec.seed + 2, device),
    }


def positive_pairs(spec: SyntheticSpec, n: int, precision: torch.Tensor, gen: torch.Generator, device: torch.device):
    z = sample_sphere(n, spec.d, gen, device)
    return z, sample_positive(z, precision, gen)


@torch.no_grad()
def evaluate(spec: SyntheticSpec, m: dict[str, Any], eval_set: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Rows for one evaluation: R^2 by group under both protocols, per-dim R^2,
    MCC, Lambda^ per dim and the loss on a fixed batch of pairs."""
    encode = lambda x: m["encoder"](m["mixing"](x))  # noqa: E731
    lam_true = spec.true_lambda()
    content, _ = content_style_masks(lam_true, spec.lambda_kind if spec.precision is None else None)
    content = content.numpy()
    fit_z, score_z = eval_set["fit_z"], eval_set["score_z"]
    fit_h, score_h = encode(fit_z).cpu().double().numpy(), encode(score_z).cpu().double().numpy()
    fit_z, score_z = fit_z.cpu().double().numpy(), score_z.cpu().double().numpy()
    rows = identifiability_rows(fit_h, fit_z, score_h, score_z, content)
    lam_hat = m["metric"]().cpu()
    rows += [{"metric": f"lambda_hat/{i}", "value": float(v)} for i, v in enumerate(lam_hat)]
    a, b = encode(eval_set["pair_z"]), encode(eval_set["pair_zp"])
    loss = contrastive_loss(a, b, m["metric"](), spec.hard_beta, spec.authors_quirk)
    rows.append({"metric": "loss_eval", "value": float(loss)})
    return rows


def make_eval_set(spec: SyntheticSpec, device: torch.device) -> dict[str, torch.Tensor]:
    """Fixed evaluation samples: two marginal samples (fit / held-out score) and
    one batch of positive pairs for the evaluation and ground-truth losses."""
    gen = _generator(spec.seed + 3, device)
    fit_z = sample_sphere(spec.eval_samples, spec.d, gen, device)
    score_z = sample_sphere(spec.eval_samples, spec.d, gen, device)
    pair_z, pair_zp = positive_pairs(spec, spec.batch, spec.true_lambda().to(device), gen, device)
    return {"fit_z": fit_z, "score_z": score_z, "pair_z": pair_z, "pair_zp": pair_zp}


def ground_truth_loss(spec: SyntheticSpec, eval_set: dict[str, torch.Tensor]) -> float:
    """The loss with the true latents in place of f(g(z)) and Lambda^ = Lambda:
    the "global minimum" line of Figure 2C [caption]."""
    lam = spec.true_lambda().to(eval_set["pair_z"])
    return float(contrastive_loss(eval_set["pair_z"], eval_set["pair_zp"], lam, spec.hard_beta, spec.authors_quirk))


def train_synthetic(spec: SyntheticSpec, ctx) -> list[dict[str, Any]]:
    """Train f with the spec's loss on fresh pairs every step; evaluate every
    ``eval_every`` steps (and at step 0 and the last step). Checkpoints through
    ``ctx`` at every evaluation, so a killed run resumes from the last one and
    ends with exactly the rows an uninterrupted run writes."""
    device = ctx.device
    m = build(spec, device)
    precision = spec.true_lambda().to(device)
    eval_set = make_eval_set(spec, device)
    gt_loss = ground_truth_loss(spec, eval_set)
    trained = {k: m[k] for k in ("encoder", "metric", "optimizer", "schedule") if m[k] is not None}
    rows, start = resume_or_start(ctx, trained, m["data_gen"], lambda: _stamp(evaluate(spec, m, eval_set), 0, gt_loss, None))
    if spec.fast:
        speed.use_fused_adam(m["optimizer"])  # after loading: a loaded state brings back its own flags
    return train_loop(
        ctx, spec.label(), spec.steps, spec.eval_every, start, rows,
        step=lambda: train_step(spec, m, precision),
        evaluate=lambda step, train_loss: _stamp(evaluate(spec, m, eval_set), step, gt_loss, train_loss),
        state=lambda: snapshot(trained, m["data_gen"]),
    )


def train_step(spec: SyntheticSpec, m: dict[str, Any], precision: torch.Tensor) -> torch.Tensor:
    """One optimisation step on fresh pairs; returns the detached loss (no host
    sync). The spec's speed fields (:mod:`aninfonce.speed`) pick the loss
    form, the encoder's matmul precision and compilation; Adam is fused when
    ``spec.fast`` (set by train_synthetic). ``benchmarks/`` times them."""
    z, zp = positive_pairs(spec, spec.batch, precision, m["data_gen"], precision.device)
    h = m["train_encoder"](m["mixing"](torch.cat([z, zp])), matmul=spec.matmul)
    loss = contrastive_loss(h[: spec.batch], h[spec.batch:], m["metric"](), spec.hard_beta, spec.authors_quirk,
                            fast=spec.fast)
    m["optimizer"].zero_grad(set_to_none=True)
    loss.backward()
    m["optimizer"].step()
    if m["schedule"] is not None:
        m["schedule"].step()
    return loss.detach()


def _stamp(rows: list[dict[str, Any]], step: int, gt_loss: float, train_loss: float | None) -> list[dict[str, Any]]:
    extra = [{"metric": "loss_groundtruth", "value": gt_loss}]
    if train_loss is not None:
        extra.append({"metric": "loss_train", "value": train_loss})
    return [{"step": step, **r} for r in rows + extra]
