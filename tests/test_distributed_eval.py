"""The pieces of data-parallel SimCLR that make N ranks compute what one process
computes: each rank's shard of an evaluation set and the gather of the rows
(uneven shards padded), and the BatchNorm over the gathered batch used on CPU.
The end-to-end check (torchrun, 2 gloo ranks, the smoke entry against one
process) is ``test_torchrun_two_cpu_processes`` in test_tables.py."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import run_two_gloo_ranks
from torch import nn

from aninfonce.trainers.simclr.distributed import (
    convert_gathered_batchnorm,
    gather_rows,
    image_ssl_loss,
    shard,
    world,
)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_the_set_in_order(size):
    for n in range(1, 12):
        blocks = [shard(n, r, size) for r in range(size)]
        assert len({len(idx) for idx, _ in blocks}) == 1  # equally long: all_gather needs it
        assert [i for idx, _ in blocks for i in idx][:n] == list(range(n))
        assert sum(real for _, real in blocks) == n


class _BNNet(nn.Module):
    """Conv + BN2d, pool, linear + BN1d, projection, and a learned Lambda^."""

    def __init__(self):
        super().__init__()
        from aninfonce.losses import LearnedLambda
        self.body = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6), nn.BatchNorm1d(6),
                                  nn.ReLU(), nn.Linear(6, 3))
        self.metric = LearnedLambda(3, "diag", generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return nn.functional.normalize(self.body(x), dim=1)


def _pairs():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 2, 5, 5, generator=g)
    return x, x + 0.3 * torch.randn(8, 2, 5, 5, generator=g)


def _worker(rank: int, size: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    assert world() == (rank, size)
    # the gather: uneven sets (n=5 over 2 ranks), a rank with no real row (n=1), int and float rows
    gathered = {}
    for n in (5, 1):
        full = torch.arange(n * 3, dtype=torch.float64).view(n, 3)
        idx, _ = shard(n, rank, size)
        gathered[n] = (gather_rows(full[idx], n), gather_rows(torch.tensor(idx), n))
    # BN over the gathered batch under DDP: one SGD step, the loss and the new state
    torch.manual_seed(0)
    model = convert_gathered_batchnorm(_BNNet())
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xa, xb = _pairs()
    sl = slice(rank * 4, (rank + 1) * 4)
    z = ddp(torch.cat([xa[sl], xb[sl]]))
    loss = image_ssl_loss(ddp, z[:4], z[4:])
    loss.backward()
    opt.step()
    if rank == 0:
        torch.save({"gathered": gathered, "loss": loss.detach(), "state": model.state_dict()}, out)
    dist.destroy_process_group()


def test_gather_and_global_batchnorm_on_two_gloo_ranks(tmp_path):
    """2 gloo processes: the gathered rows are one process's rows in order, and
    a training step through BatchNorm over the gathered batch gives the loss,
    parameters and running statistics of one process on the whole batch."""
    got = run_two_gloo_ranks(_worker, tmp_path)
    for n, (rows, idx) in got["gathered"].items():
        assert torch.equal(rows, torch.arange(n * 3, dtype=torch.float64).view(n, 3))
        assert idx.tolist() == list(range(n))
    torch.manual_seed(0)
    model = _BNNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xa, xb = _pairs()
    # one process, the rows in the order the ranks gather them
    order = torch.tensor([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15])
    z = model(torch.cat([xa, xb])[order])
    za, zb = z[[0, 1, 2, 3, 8, 9, 10, 11]], z[[4, 5, 6, 7, 12, 13, 14, 15]]
    loss = image_ssl_loss(model, za, zb)
    loss.backward()
    opt.step()
    assert torch.allclose(got["loss"], loss.detach(), atol=1e-6)
    for k, v in model.state_dict().items():  # weights after the step, BN running mean / var / count
        assert torch.allclose(got["state"][k].to(v.dtype), v, atol=1e-6), k
