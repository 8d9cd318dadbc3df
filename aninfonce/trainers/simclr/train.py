"""Training one SimCLR run: SGD on the network, Adam on Lambda^, a cosine
schedule after a linear warm-up, epochs of two recorded views per image on the
one step loop of :mod:`aninfonce.trainers.loop`; then the evaluations, which
every rank of a data-parallel run takes part in (:mod:`.evaluation`)."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import torch
from torch import nn

from ...data.device_augment import photometric
from ...data.views import TwoViewDataset
from ...errors import BadInput
from ..loop import resume_or_start, snapshot, train_loop
from .distributed import convert_gathered_batchnorm, image_ssl_loss, world
from .evaluation import evaluate
from .loading import load_sources, loader_workers, make_loader
from .model import SimCLRNet, build_model
from .spec import ImageSSLSpec


def _lr_lambda(total: int, warmup: int, schedule: str = "cosine") -> Callable[[int], float]:
    """The network's lr factor at a step: linear warm-up, then a cosine to 0
    at ``total`` (or 1 throughout, for ``schedule="constant"``)."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return f


def autocast(spec: ImageSSLSpec, device: torch.device):
    """bf16 autocast when the spec asks for it and the device is CUDA, else nothing."""
    if spec.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_imagessl(spec: ImageSSLSpec, ctx) -> list[dict[str, Any]]:
    """Train for ``spec.epochs`` epochs (checkpoint after each), then evaluate.
    A killed run resumes from its last finished epoch and writes the same rows."""
    device = ctx.device
    rank, size = world()
    if spec.batch % size:
        raise BadInput(f"batch {spec.batch} does not split over {size} ranks")
    train_src, test_src = load_sources(spec, ctx)
    cfg = spec.augment_config()
    model = build_model(spec, train_src.channels).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = model
    if size > 1:
        # SimCLR's global BN: SyncBatchNorm on CUDA; on CPU (gloo), where it does not run, BN over the
        # gathered batch, so that N ranks train the model one process trains on the whole batch
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net) if device.type == "cuda" else convert_gathered_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        model = net.module
    on_device = spec.augment_on == "device"
    ds = TwoViewDataset(train_src, cfg, spec.seed + 2, crop_only=on_device)
    sampler = torch.utils.data.distributed.DistributedSampler(ds, num_replicas=size, rank=rank, shuffle=True,
                                                              seed=spec.seed + 2, drop_last=True)
    local_batch = spec.batch // size
    steps_per_epoch = len(sampler) // local_batch
    if spec.steps_per_epoch_limit:
        steps_per_epoch = min(steps_per_epoch, spec.steps_per_epoch_limit)
    if steps_per_epoch == 0:
        raise BadInput(f"{len(train_src)} training images give no batch of {spec.batch}")
    total = steps_per_epoch * spec.epochs
    net_params = [p for n, p in model.named_parameters() if not n.startswith("metric.")]
    sgd = torch.optim.SGD(net_params, lr=spec.lr * spec.batch / 256, momentum=spec.momentum,
                          weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(sgd, _lr_lambda(total, round(spec.warmup_epochs * steps_per_epoch),
                                                              spec.lr_schedule))
    metric_params = list(model.metric.parameters())
    adam = torch.optim.Adam(metric_params, lr=spec.lr_metric) if metric_params else None
    trained = {"model": model, "sgd": sgd, "sched": sched, **({"adam": adam} if adam is not None else {})}
    # the views are seeded by (seed, epoch, index): no data generator to save
    rows, start = resume_or_start(ctx, trained, None, lambda: _lambda_rows(model, 0))
    workers = loader_workers(spec, device)
    batches = None  # the current epoch's loader

    def new_epoch(epoch: int) -> None:
        nonlocal batches
        net.train()
        ds.epoch = epoch
        sampler.set_epoch(epoch)
        batches = None  # the last epoch's loader (and its workers) go first
        batches = iter(make_loader(ds, local_batch, workers, sampler, True, device))

    def step() -> torch.Tensor:
        v1, v2, p1, p2, _ = next(batches)
        x = torch.cat([v1, v2]).to(device, non_blocking=True)
        if on_device:  # the views arrive as crops: flip, jitter, grayscale, blur as a batch
            x = photometric(x, torch.cat([p1, p2]), cfg)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(spec, device):
            _, z = net(x)
        loss = image_ssl_loss(net, z[:local_batch], z[local_batch:])
        sgd.zero_grad(set_to_none=True)
        if adam is not None:
            adam.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
        if adam is not None:
            adam.step()
        sched.step()
        return loss.detach()

    def log(step: int, mean_loss: float) -> list[dict[str, Any]]:
        out = [{"step": step, "metric": "loss_train", "value": mean_loss},
               {"step": step, "metric": "lr", "value": sched.get_last_lr()[0]}]
        if step % steps_per_epoch == 0:  # an epoch's end
            out += _lambda_rows(model, step)
        return out

    # rank 0 alone writes checkpoints
    rows = train_loop(ctx, spec.label(), total, spec.log_every, start, rows, step=step, evaluate=log,
                      state=(lambda: snapshot(trained, None)) if rank == 0 else None,
                      steps_per_epoch=steps_per_epoch, new_epoch=new_epoch)
    batches = None
    # no timing rows: results must be identical run to run (the smoke golden values);
    # the runner records each run's wall time. Every rank evaluates (each its shard, then the same fits
    # on the gathered features), so no rank waits for another's evaluation; rank 0's rows are written
    rows += [{"step": total, **r} for r in evaluate(spec, model, train_src, test_src, device)]
    return rows


def _lambda_rows(model: SimCLRNet, step: int) -> list[dict[str, Any]]:
    lam = torch.sort(model.metric().detach().float().cpu(), descending=True).values
    return [{"step": step, "metric": f"lambda_hat_sorted/{i}", "value": float(v)} for i, v in enumerate(lam)]
