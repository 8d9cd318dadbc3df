"""InfoNCE, AnInfoNCE, and their hard-negative variant, all built on one
similarity: s(a, b) = -1/2 (a - b)^T diag(Lambda^) (a - b)   (docs/PROTOCOL.md §3).

The three losses differ only in how Lambda^ is parametrised (:class:`LearnedLambda`):

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

# The one loss table: name -> (how Lambda^ is parametrised, fixed temperature).
# Which InfoNCE the paper compared against is not known [recon]: the learned
# scalar is the strongest isotropic baseline (same start and optimiser as
# AnInfoNCE's diagonal, so the two differ only in freedom), tau = 1 the
# authors' code default [code], tau = 0.1 the common SimCLR choice and tau = 0.2
# the usual SimCLR CIFAR one. Each experiment names the losses it runs.
LOSSES: dict[str, tuple[str, float]] = {
    "aninfonce": ("diag", 1.0),
    "infonce-learned": ("scalar", 1.0),
    "infonce-tau1": ("fixed", 1.0),
    "infonce-tau0.1": ("fixed", 0.1),
    "infonce-tau0.2": ("fixed", 0.2),
}


# How Lambda^ is held: softplus(theta) [code], or exp(theta) [recon] (see LearnedLambda)
from .specs import LAMBDA_PARAMS  # noqa: E402  (the spec checks its field against it)


class LearnedLambda(nn.Module):
    """The learned (or fixed) diagonal Lambda^ of the similarity."""

    def __init__(self, d: int, kind: str = "diag", tau: float = 1.0, generator: torch.Generator | None = None,
                 param: str = "softplus"):
        super().__init__()
        if param not in LAMBDA_PARAMS:
            raise ValueError(f"unknown Lambda^ parametrisation {param!r}; choose one of {LAMBDA_PARAMS}")
        self.kind, self.d, self.param = kind, d, param
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
        if param == "log" and kind != "fixed":
            # [recon] the same initial Lambda^ (same random draw), held as its
            # log: Adam then moves Lambda^ by a relative, not an absolute, step
            with torch.no_grad():
                self.theta.copy_(torch.log(F.softplus(self.theta)))

    def forward(self) -> torch.Tensor:
        """Lambda^ as a length-d vector."""
        if self.kind == "fixed":
            lam = self.theta
        else:
            lam = F.softplus(self.theta) if self.param == "softplus" else torch.exp(self.theta)
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
    fast: bool = False,
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

    ``fast`` (speed, not semantics): without the quirk, anchor r's logits
    are row r of the one 2N x 2N similarity of h = [a; b] with the diagonal
    masked, and a constant per row cancels in every softmax, so the term
    -1/2 |h_r|^2_lam is dropped. For beta = 0 a fused autograd function
    (:class:`_FusedInfoNCE`) keeps a single 2N x 2N buffer through forward and
    backward: 6x (N = 1000) to 10x (N = 6144) faster forward + backward on one
    CPU core (``benchmarks/``). Value and gradient equal the default's up to
    float rounding (tests/test_losses.py), but a training run amplifies
    rounding, so its rows differ beyond float tolerance from a run with
    ``fast=False``: the default stays the three-block form that every stored
    result was computed with, bit for bit. With the quirk, ``fast`` takes
    :func:`_quirk_loss_fast` (beta = 0 only).
    """
    if not fast or (authors_quirk and hard_beta != 0.0):
        return _blockwise_loss(a, b, lam, hard_beta, authors_quirk)
    if authors_quirk:
        return _quirk_loss_fast(a, b, lam)
    h = torch.cat([a, b])
    lam = lam.expand(h.shape[1])
    if h.dtype in (torch.float16, torch.bfloat16):  # mixed precision: the softmax over 2N logits in float32
        h, lam = h.float(), lam.float()
    with torch.autocast(h.device.type, enabled=False):
        if hard_beta == 0.0:
            return _FusedInfoNCE.apply(h, lam)
        return _hard_negative_loss(h, lam, hard_beta)


def _quirk_loss_fast(a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """The authors' form [code] without concatenating the 2N x 2N logits: the
    rows of a_i and of b_i share their cross-view part s(a_i, b_.), so each
    row's logsumexp is logaddexp(logsumexp(s(a_i, b_.)), logsumexp(its
    same-view negatives)). Three N x N blocks and row-wise logsumexps, plain
    autograd, about a third faster than the three-block cross-entropy on one
    CPU core (N = 1000); the softmax runs in float32 under mixed precision."""
    n = len(a)
    if a.dtype in (torch.float16, torch.bfloat16):
        a, b, lam = a.float(), b.float(), lam.float()
    with torch.autocast(a.device.type, enabled=False):
        mask = torch.zeros(n, n, dtype=a.dtype, device=a.device).fill_diagonal_(torch.finfo(a.dtype).min)
        s_ab = pairwise_similarity(a, b, lam)
        cross = torch.logsumexp(s_ab, 1)
        same_a = torch.logsumexp(pairwise_similarity(a, a, lam) + mask, 1)
        same_b = torch.logsumexp(pairwise_similarity(b, b, lam) + mask, 1)
        return (torch.logaddexp(cross, same_a) + torch.logaddexp(cross, same_b) - 2 * s_ab.diagonal()).mean() / 2


def _column_shifted_similarity(h: torch.Tensor, lam: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """s(h_r, h_k) + 1/2 |h_r|^2_lam for all pairs, (2N, 2N), as one matrix
    product [h diag(lam), 1] [h, -1/2 q]^T (q_k = |h_k|^2_lam), with the
    diagonal set to the dtype's lowest value."""
    hl = h * lam
    left = torch.cat([hl, torch.ones_like(h[:, :1])], 1)
    right = torch.cat([h, -0.5 * (hl * h).sum(1, keepdim=True)], 1)
    s = torch.mm(left, right.T) if out is None else torch.mm(left, right.T, out=out)
    s.diagonal().fill_(torch.finfo(h.dtype).min)
    return s


def _positive_index(n2: int, device: torch.device) -> torch.Tensor:
    """Column of each row's positive in the 2N x 2N layout: a_i <-> b_i."""
    n = n2 // 2
    return torch.arange(n2, device=device).add_(n).remainder_(n2)


# Reused 2N x 2N CPU buffers. A fresh 600 MB tensor (batch 6144) costs more in
# page faults than the matrix product written into it; CUDA's caching
# allocator already reuses memory, so only CPU buffers are pooled. A buffer is
# out of the pool while a forward/backward holds it.
_POOL: dict[tuple, list[torch.Tensor]] = {}
_POOL_KEYS = 4


def _take_buffer(n2: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if device.type != "cpu":
        return torch.empty(n2, n2, dtype=dtype, device=device)
    free = _POOL.get((n2, dtype, device), [])
    return free.pop() if free else torch.empty(n2, n2, dtype=dtype, device=device)


def _give_back(buf: torch.Tensor) -> None:
    if buf.device.type != "cpu":
        return
    key = (len(buf), buf.dtype, buf.device)
    if key not in _POOL and len(_POOL) >= _POOL_KEYS:
        _POOL.clear()  # batch sizes keep changing: do not hoard memory
    free = _POOL.setdefault(key, [])
    if not free:
        free.append(buf)


class _FusedInfoNCE(torch.autograd.Function):
    """Mean over rows r of  logsumexp_{k != r} S_rk - S_r,pos(r)  with
    S = h diag(lam) h^T - 1/2 1 q^T,  q_k = |h_k|^2_lam.

    Forward writes S into one (pooled) buffer and turns it into log-softmax
    in place; backward turns that buffer into the softmax P in place and needs
    only two products with it, because with G = (P - E) / 2N (E the one-hot
    positives, an involution: pos(pos(r)) = r):
      G h     = (P h - h[pos]) / 2N
      G^T h   = (P^T h - h[pos]) / 2N,   column sums c = (P^T 1 - 1) / 2N
      dL/dh   = lam * (G h + G^T h - c h)
      dL/dlam = sum_r h_r * (G h)_r - 1/2 sum_k c_k h_k^2
    (row sums of G are zero, which is why the dropped row constant has no
    gradient either).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        n2 = len(h)
        pos = _positive_index(n2, h.device)
        logp = _column_shifted_similarity(h, lam, out=_take_buffer(n2, h.dtype, h.device))
        if logp.device.type == "cpu":  # in place: no second 2N x 2N buffer (the CPU kernel reads a row before writing it)
            torch.ops.aten._log_softmax.out(logp, 1, False, out=logp)
        else:  # other kernels are not documented to allow aliasing; their caching allocators make a copy cheap
            logp = torch.log_softmax(logp, 1)
        loss = -logp.gather(1, pos[:, None]).mean()
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(h, lam, logp, pos)
            ctx.consumed = False
        else:
            _give_back(logp)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            return _FusedInfoNCE._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad: torch.Tensor):
        if ctx.consumed:
            raise RuntimeError("the fused InfoNCE backward reuses its buffer in place; it cannot run twice "
                               "(retain_graph=True over this loss is not supported)")
        ctx.consumed = True
        h, lam, logp, pos = ctx.saved_tensors
        p = logp.exp_()  # the softmax, in the same buffer
        scale = grad / len(h)
        hp = h[pos]
        h1 = torch.cat([h, torch.ones_like(h[:, :1])], 1)
        row = torch.mm(p, h).sub_(hp).mul_(scale)  # G h
        col1 = torch.mm(h1.T, p).T  # P^T [h, 1], computed as a wide row-major product (faster than P^T h1)
        _give_back(p)
        colsum = col1[:, -1:].sub(1).mul_(scale)
        col = col1[:, :-1].sub(hp).mul_(scale)  # G^T h
        dh = dlam = None
        if ctx.needs_input_grad[0]:
            dh = (row + col - colsum * h) * lam
        if ctx.needs_input_grad[1]:
            dlam = (h * row).sum(0) - 0.5 * (colsum * h * h).sum(0)
        return dh, dlam


def _hard_negative_loss(h: torch.Tensor, lam: torch.Tensor, beta: float) -> torch.Tensor:
    """The hard-negative form on the 2N x 2N similarity (plain autograd)."""
    n2 = len(h)
    s = _column_shifted_similarity(h, lam)
    pos = _positive_index(n2, h.device)
    rows = torch.arange(n2, device=h.device)
    positive = s[rows, pos][:, None]
    neg = s.index_put((rows, pos), torch.tensor(torch.finfo(h.dtype).min, dtype=h.dtype, device=h.device))
    return _hard_negative_mean(positive, neg, beta, n_negatives=n2 - 2)


def _hard_negative_mean(positive: torch.Tensor, neg: torch.Tensor, beta: float, n_negatives: int) -> torch.Tensor:
    """Mean over anchors of -log(exp(s+) / (exp(s+) + M sum_k w_k exp(s_k)))
    with w = softmax(beta s) over the negatives (masked entries at the
    dtype's lowest value), held constant in the gradient."""
    log_w = torch.log_softmax(beta * neg, dim=1).detach()
    log_neg = math.log(n_negatives) + torch.logsumexp(log_w + neg, dim=1, keepdim=True)
    return (torch.logaddexp(positive, log_neg) - positive).mean()


def _blockwise_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    lam: torch.Tensor,
    hard_beta: float = 0.0,
    authors_quirk: bool = False,
) -> torch.Tensor:
    """The loss from three N x N similarity blocks: the default form (every
    stored result used it), the only one that can express ``authors_quirk``,
    and the reference the fast paths are tested against."""
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
    return _hard_negative_mean(positive, neg, hard_beta, n_negatives=2 * n - 2)
