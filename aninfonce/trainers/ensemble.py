"""Loss ensembles (Corollary 3.2) [caption; formula recon]: a sum of AnInfoNCE
terms on different positive-pair conditionals, sharing one encoder f.

With K "augmentations", term k drawing positive pairs z+ ~ p_k(. | z) (the
anisotropic conditional of docs/PROTOCOL.md §2 with its own diagonal
precision Lambda_k) and owning its own learned diagonal Lambda^_k:

    L_ens(f, Lambda^_1..K) = sum_{k=1..K} L_AnInfoNCE(f, Lambda^_k; pairs from p_k)

where each L_AnInfoNCE is :func:`aninfonce.losses.contrastive_loss` on that
term's own batch of N pairs (its negatives are the 2N - 2 other samples of
that term's batch only), with s(a, b) = -1/2 (a - b)^T diag(Lambda^_k) (a - b).
Sum, not mean: each term keeps the scale it has alone. One Adam optimiser
updates f (lr_f) and every Lambda^_k (lr_metric).

Why an ensemble identifies more: one term identifies z up to an orthogonal
map that is block-diagonal over the groups of dims with equal Lambda_k. The
true latents minimise every term at once, so a minimiser of the sum
minimises each term, and its map must be block-diagonal for every term's
partition at once, i.e. over the common refinement of the partitions. If no
two dims share the same tuple (Lambda_1,i, ..., Lambda_K,i), that refinement
is single dims: identified up to permutation and sign.

The training loop reuses :mod:`aninfonce.synthetic` (build, positive_pairs,
make_eval_set, evaluate, ground_truth_loss) and its checkpoint pattern. With
one term it is step for step :func:`aninfonce.synthetic.train_synthetic`
(same draws, same rows), which a test pins.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..losses import LOSSES as LOSS_TABLE
from ..losses import LearnedLambda, contrastive_loss
from ..speed import use_fused_adam
from .loop import resume_or_start, snapshot, train_loop
from ..specs import EnsembleSpec
from .synthetic import build, evaluate, ground_truth_loss, make_eval_set, positive_pairs


def ensemble_loss(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], lams: Sequence[torch.Tensor],
                  hard_beta: float = 0.0, authors_quirk: bool = False) -> torch.Tensor:
    """sum_k contrastive_loss(a_k, b_k, Lambda^_k): see the module docstring."""
    if len(pairs) != len(lams) or not pairs:
        raise ValueError("one (a, b) pair batch per Lambda^, at least one")
    return sum(contrastive_loss(a, b, lam, hard_beta, authors_quirk) for (a, b), lam in zip(pairs, lams))


def term_metric(name: str, k: int) -> str:
    """Row name of term k's own metric: term 0 keeps train_synthetic's names;
    term k >= 1 gets ``@term<k>`` (``r2_style@term2``, ``lambda_hat@term2/3``),
    so prefix-based helpers (R^2 protocol filters, indexed metrics) still work."""
    if k == 0:
        return name
    head, sep, tail = name.partition("/")
    return f"{head}@term{k}{sep}{tail}"


TERM_ONLY = ("r2_content", "r2_style", "lambda_hat", "loss_eval", "loss_groundtruth")


def _evaluate_all(terms: list[EnsembleSpec], m: dict[str, Any], metrics: list[LearnedLambda], eval_sets: list[dict],
                  gt_losses: list[float], step: int, train_loss: float | None) -> list[dict[str, Any]]:
    """Term 0's evaluation as train_synthetic writes it, then each further
    term's own rows (content / style split by its Lambda_k, its Lambda^_k, its
    loss); R^2 (all), per-dim R^2 and MCC do not depend on the term and appear once."""
    rows: list[dict[str, Any]] = []
    for k, (t, metric, es, gt) in enumerate(zip(terms, metrics, eval_sets, gt_losses)):
        out = evaluate(t, {**m, "metric": metric}, es) + [{"metric": "loss_groundtruth", "value": gt}]
        if k == 0 and train_loss is not None:
            out.append({"metric": "loss_train", "value": train_loss})
        if k > 0:
            out = [{**r, "metric": term_metric(r["metric"], k)} for r in out if r["metric"].split("/")[0] in TERM_ONLY]
        rows += [{"step": step, **r} for r in out]
    return rows


def train_ensemble(spec: EnsembleSpec, ctx) -> list[dict[str, Any]]:
    """Train one encoder on the sum of the terms' losses, fresh pairs for every
    term every step; evaluate every ``eval_every`` steps. Seeds as
    synthetic.build (term 0's Lambda^ from seed + 1 like a single run), further
    terms' Lambda^ from seed + 4. Checkpoints through ``ctx`` at each evaluation."""
    device = ctx.device
    terms = [spec.term_spec(k) for k in range(len(spec.terms))]
    m = build(terms[0], device)
    metrics = [m["metric"]]
    kind, tau = LOSS_TABLE[spec.loss]
    extra_gen = torch.Generator().manual_seed(spec.seed + 4)
    for _ in terms[1:]:
        metric = LearnedLambda(spec.d, kind, tau, generator=extra_gen).to(device)
        if kind != "fixed":
            m["optimizer"].add_param_group({"params": metric.parameters(), "lr": spec.lr_metric})
        metrics.append(metric)
    precisions = [t.true_lambda().to(device) for t in terms]
    eval_sets = [make_eval_set(t, device) for t in terms]
    gt_losses = [ground_truth_loss(t, es) for t, es in zip(terms, eval_sets)]
    trained = {"encoder": m["encoder"], "optimizer": m["optimizer"], **{f"metric{k}": mt for k, mt in enumerate(metrics)}}
    rows, start = resume_or_start(ctx, trained, m["data_gen"],
                                  lambda: _evaluate_all(terms, m, metrics, eval_sets, gt_losses, 0, None))
    # fused Adam always (the stored ensemble results were made with it): same update rule
    use_fused_adam(m["optimizer"])
    n = spec.batch
    def step() -> torch.Tensor:
        views = []
        for t, prec in zip(terms, precisions):
            views += positive_pairs(t, n, prec, m["data_gen"], device)
        h = m["encoder"](m["mixing"](torch.cat(views)))  # one pass for every term's pairs
        pairs = [(h[2 * k * n: (2 * k + 1) * n], h[(2 * k + 1) * n: (2 * k + 2) * n]) for k in range(len(terms))]
        loss = ensemble_loss(pairs, [metric() for metric in metrics], spec.hard_beta, spec.authors_quirk)
        m["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        m["optimizer"].step()
        return loss.detach()

    return train_loop(
        ctx, spec.label(), spec.steps, spec.eval_every, start, rows, step=step,
        evaluate=lambda step, train_loss: _evaluate_all(terms, m, metrics, eval_sets, gt_losses, step, train_loss),
        state=lambda: snapshot(trained, m["data_gen"]),
    )
