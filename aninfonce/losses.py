"""InfoNCE, AnInfoNCE, and their hard-negative variant, all built on one
similarity: s(a, b) = -1/2 (a - b)^T diag(Lambda^) (a - b)   (PAPER.md section 3).

The three losses differ only in how Lambda^ is parametrised (:class:`Metric`):

- ``diag``   AnInfoNCE [code]: Lambda^ = softplus(theta), theta ~ N(0, 0.1^2) per dim.
- ``scalar`` InfoNCE with one learned scalar, Lambda^ = softplus(t) * I [recon].
- ``fixed``  InfoNCE with a fixed temperature tau, Lambda^ = (1 / tau) * I. On
  unit vectors s = lambda * a.b - lambda, i.e. cosine similarity over tau up
  to a constant that the softmax ignores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Metric(nn.Module):
    """The learned (or fixed) diagonal Lambda^ of the similarity."""

    def __init__(self, d: int, kind: str = "diag", tau: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.kind, self.d = kind, d
        if kind == "diag":
            # [code] theta ~ N(0, 0.1^2): Lambda^ starts near softplus(0) = 0.69
            self.theta = nn.Parameter(0.1 * torch.randn(d, generator=generator))
        elif kind == "scalar":
            # [recon] start where the diagonal starts, so the two differ only in freedom
            self.theta = nn.Parameter(0.1 * torch.randn(1, generator=generator))
        elif kind == "fixed":
            if tau <= 0:
                raise ValueError(f"temperature must be positive, got {tau}")
            self.register_buffer("theta", torch.tensor([1.0 / tau]))
        else:
            raise ValueError(f"unknown metric kind {kind!r}; choose diag, scalar or fixed")

    def forward(self) -> torch.Tensor:
        """Lambda^ as a length-d vector."""
        lam = self.theta if self.kind == "fixed" else F.softplus(self.theta)
        return lam.expand(self.d)


def pairwise_similarity(a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """s(a_i, b_k) for all pairs, shape (len(a), len(b)), without forming a - b.

    -1/2 sum_j lam_j (a_ij - b_kj)^2 = (a diag(lam)) b^T - 1/2 |a|^2_lam - 1/2 |b|^2_lam
    """
    al = a * lam
    return al @ b.T - 0.5 * (al * a).sum(1, keepdim=True) - 0.5 * ((b * lam) * b).sum(1)[None, :]


def contrastive_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    lam: torch.Tensor,
    hard_beta: float = 0.0,
    authors_quirk: bool = False,
) -> torch.Tensor:
    """SimCLR-style (An)InfoNCE over a batch of positive pairs (a_i, b_i).

    Each of the 2N anchors scores its positive against the 2N - 2 other
    samples of the batch from both views; the loss is the mean cross-entropy
    over all 2N anchors [code]. No temperature: Lambda^ absorbs it.

    ``authors_quirk`` [code]: rows anchored at b_i take their cross-view
    negatives from a_i's row, s(a_i, b_k), instead of s(b_i, a_k).

    ``hard_beta`` [recon] (hard-negative mining, Corollary 3.1): the sum over
    the M negatives of anchor i becomes M * sum_k w_ik exp(s_ik) with
    importance weights w_ik = softmax_k(beta * s_ik), held constant in the
    gradient (they play the role of a sampling distribution). beta = 0 gives
    w = 1/M, i.e. plain AnInfoNCE.
    """
    n = len(a)
    s_ab = pairwise_similarity(a, b, lam)  # positives on the diagonal
    s_aa = pairwise_similarity(a, a, lam)
    s_bb = pairwise_similarity(b, b, lam)
    s_ba = s_ab if authors_quirk else s_ab.T
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    neg_inf = torch.finfo(a.dtype).min
    # rows: anchors a_1..a_N then b_1..b_N; columns: cross view (positive on the diagonal) then same view
    logits = torch.cat(
        [
            torch.cat([s_ab, s_aa.masked_fill(eye, neg_inf)], 1),
            torch.cat([s_ba, s_bb.masked_fill(eye, neg_inf)], 1),
        ],
        0,
    )
    target = torch.arange(n, device=a.device).repeat(2)
    if hard_beta == 0.0:
        return F.cross_entropy(logits, target)
    positive = logits.gather(1, target[:, None])
    is_neg = torch.ones_like(logits, dtype=torch.bool)
    is_neg[torch.arange(2 * n), target] = False
    is_neg[:n, n:] &= ~eye
    is_neg[n:, n:] &= ~eye
    neg = logits.masked_fill(~is_neg, neg_inf)
    m = 2 * n - 2
    log_w = torch.log_softmax(hard_beta * neg, dim=1).detach()
    log_neg = math.log(m) + torch.logsumexp(log_w + neg, dim=1, keepdim=True)
    return (torch.logaddexp(positive, log_neg) - positive).mean()
