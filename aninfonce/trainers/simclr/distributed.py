"""Data-parallel SimCLR: the rank of this process, a gather that keeps the
gradient, the loss and the BatchNorm on the global batch, and the pieces of the
evaluation across ranks (each rank's shard of a set, the gather of its rows,
rank 0's weights on every rank)."""

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


class GatheredBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for data-parallel training on CPU (gloo),
    where :class:`torch.nn.SyncBatchNorm` does not run: in training mode it
    gathers every rank's rows (differentiably), normalises the global batch and
    keeps this rank's rows, so statistics, running averages and gradients are
    those of one process on the whole batch. It moves whole activations, which
    is fine for tests and CPU runs; on CUDA the trainer uses SyncBatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rank, size = world()
        if not self.training or size == 1:
            return super().forward(x)
        rows = x.shape[0]
        return super().forward(gather_with_grad(x))[rank * rows:(rank + 1) * rows]


def convert_gathered_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm of ``module`` replaced by a :class:`GatheredBatchNorm`
    sharing its parameters and buffers (the state-dict keys are unchanged)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GatheredBatchNorm):
        new = GatheredBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_gathered_batchnorm(child))
    return module


# ---------------------------------------------------------------- evaluation across ranks

def shard(n: int, rank: int, size: int) -> tuple[list[int], int]:
    """This rank's contiguous block of ``range(n)`` padded to ``ceil(n / size)``
    indices (by repeating ``n - 1``), and how many of them are real. Blocks in
    rank order, concatenated and cut to ``n``, are ``range(n)``."""
    per = -(-n // size)
    start, stop = rank * per, min(n, (rank + 1) * per)
    real = max(0, stop - start)
    return [min(i, n - 1) for i in range(start, start + per)], real


def gather_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's equally long ``x`` (its padded :func:`shard`) concatenated in
    rank order and cut to ``n`` rows: the rows of one process over ``range(n)``.
    Through the device the backend needs (CUDA for NCCL); returned on ``x``'s device."""
    _, size = world()
    if size == 1:
        return x[:n]
    via = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else x.device
    local = x.contiguous().to(via)
    parts = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(parts, local)
    return torch.cat(parts)[:n].to(x.device)


@torch.no_grad()
def broadcast_module(module: nn.Module) -> None:
    """Rank 0's parameters and buffers copied into every rank's ``module``
    (DDP keeps parameters equal; buffers such as BN running statistics may drift)."""
    if world()[1] == 1:
        return
    for t in module.state_dict().values():
        dist.broadcast(t, 0)
