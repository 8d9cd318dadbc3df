"""Data-parallel SimCLR: the rank of this process, a gather that keeps the
gradient, and the loss on the global batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ...losses import contrastive_loss


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the incoming gradient over ranks
    (every rank's loss depends on every rank's rows) and keeps this rank's slice.
    Works with gloo and NCCL; needs the same row count on every rank."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, size = world()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rows, ctx.rank = x.shape[0], rank
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' rows, concatenated in rank order, differentiable: the backward
    pass returns to each rank the summed gradient of its own rows."""
    if world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x)


def image_ssl_loss(model: nn.Module, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """(An)InfoNCE on the global batch. Every rank computes the same loss on the
    gathered projections; the gather's backward sums each rank's gradient over
    ranks and DDP averages over ranks, which together give the gradient of
    the global-batch loss."""
    metric = model.module.metric if isinstance(model, nn.parallel.DistributedDataParallel) else model.metric
    return contrastive_loss(gather_with_grad(za), gather_with_grad(zb), metric())
