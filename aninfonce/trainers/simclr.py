"""SimCLR-style training on images with InfoNCE or AnInfoNCE, and the
evaluations of the tables (docs/PROTOCOL.md §6, a reconstruction [recon]).

One function, :func:`train_imagessl`, trains and evaluates one run of a
:class:`ImageSSLSpec`. It runs in one process (the runner) or data-parallel
under ``torchrun`` (``python -m torch.distributed.run --nproc_per_node N -m
aninfonce.torchrun <experiment glob> ...``): a distributed sampler splits each
epoch, the projections of every rank are gathered with their gradient so
every anchor sees the negatives of the whole global batch, and rank 0 writes
checkpoints and results.

Evaluations, each named in its rows' ``protocol``:

- linear probe top-1, offline: multinomial logistic regression (L-BFGS) on
  frozen backbone features of un-augmented images; the backbone is asserted
  frozen and bit-for-bit unchanged;
- KNN top-1 (k stated) on cosine similarity of backbone features;
- augmentation recovery: for each augmentation parameter of a view, a linear
  model from that view's representation (backbone, projector) to the
  parameter, fitted on half the views and scored on the other half: R^2 for
  continuous parameters, accuracy for binary ones (with the majority-class rate);
- the learned Lambda^ sorted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from torch import nn

from ..data import images as D
from ..errors import BadInput
from ..losses import LOSSES as LOSS_TABLE
from ..losses import LearnedLambda, contrastive_loss
from ..probes import embed, knn_top1, offline_linear_probe, recovery_scores
from ..specs import RunSpec

# the losses the image tables run (parametrisations in losses.LOSSES) [recon]:
# the learned scalar is the default baseline, tau = 0.2 the usual SimCLR CIFAR choice
LOSSES = ("aninfonce", "infonce-learned", "infonce-tau0.2")

# mean / std per dataset for the input normalisation (uint8 -> float inside the model)
NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mnist": ((0.1307,), (0.3081,)),
}


@dataclasses.dataclass(frozen=True)
class ImageSSLSpec(RunSpec):
    dataset: str = "cifar10"  # cifar10 | imagenet | mnist
    synthetic_files: bool = False  # smoke: tiny synthetic files in the real on-disk format, written into the run cache
    arch: str = "resnet18-cifar"  # resnet18-cifar | resnet50 | smallcnn
    loss: str = "aninfonce"
    epochs: int = 1000
    batch: int = 512  # global batch (pairs), split across ranks
    lr: float = 0.03  # per 256 pairs: lr = lr * batch / 256  [third party quote of the paper: SimSiam recipe]
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 10.0
    lr_metric: float = 1e-2  # Adam on theta of Lambda^ [recon]; the network uses SGD
    lambda_init: float = 5.0  # Lambda^ starts at 1 / 0.2: every loss starts as SimCLR with tau = 0.2 [recon]
    proj_hidden: int = 2048
    proj_dim: int = 128
    width: int = 64  # smallcnn only
    augment: str = "cifar10"  # a preset of data.images.AUGMENTS
    image_size: int = 0  # 0 = the preset's size
    train_limit: int = 0  # first n training images (0 = all)
    steps_per_epoch_limit: int = 0  # 0 = a full pass
    probe_train: int = 0  # images of the train split for the probe and KNN bank (0 = all)
    probe_test: int = 0  # images of the test split scored (0 = all)
    probe_iters: int = 100  # L-BFGS iterations of the offline linear probe
    probe_l2: float = 1e-4
    knn_k: int = 20
    recovery_views: int = 10_000  # augmented test views for the recovery regressions (half fit, half score)
    log_every: int = 50  # steps between loss rows
    amp: bool = True  # bf16 autocast, on CUDA only
    num_workers: int = -1  # data loader workers (-1 = up to 8, one core left free); changes no number

    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ("num_workers",)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        if self.augment not in D.AUGMENTS:
            raise ValueError(f"unknown augmentation preset {self.augment!r}; choose one of {sorted(D.AUGMENTS)}")

    def augment_config(self) -> D.AugmentConfig:
        return D.augment_config(self.augment, self.image_size or None)


# ------------------------------------------------------------------ model


def small_cnn(in_ch: int, width: int) -> tuple[nn.Module, int]:
    """A small conv net for 28-32 px images: one conv at full resolution, then
    three stages of (stride-2 conv, conv) with width, 2x, 4x channels; BN +
    ReLU after each conv; global average pool. Feature dim 4 * width."""
    def block(i: int, o: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    w = width
    layers = block(in_ch, w, 1)
    for i, o in ((w, w), (w, 2 * w), (2 * w, 4 * w)):
        layers += block(i, o, 2) + block(o, o, 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 4 * w


def make_backbone(arch: str, in_ch: int, width: int = 64) -> tuple[nn.Module, int]:
    """(backbone without classifier, feature dim)."""
    if arch == "resnet18-cifar":
        # [recon, standard] the CIFAR stem: 3x3 stride-1 first conv, no max-pool
        net = torchvision.models.resnet18()
        net.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    elif arch == "resnet50":
        net = torchvision.models.resnet50()
        if in_ch != 3:
            net.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
    elif arch == "smallcnn":
        return small_cnn(in_ch, width)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose resnet18-cifar, resnet50 or smallcnn")
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def _softplus_inv(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class SimCLRNet(nn.Module):
    """Backbone -> projection MLP -> unit-norm projection, and the loss's Lambda^.
    Takes uint8 images; the normalisation lives inside so data stay uint8 on the wire."""

    def __init__(self, spec: ImageSSLSpec, in_ch: int, generator: torch.Generator):
        super().__init__()
        self.backbone, self.feat_dim = make_backbone(spec.arch, in_ch, spec.width)
        self.projector = nn.Sequential(nn.Linear(self.feat_dim, spec.proj_hidden), nn.BatchNorm1d(spec.proj_hidden),
                                       nn.ReLU(inplace=True), nn.Linear(spec.proj_hidden, spec.proj_dim))
        kind, tau = LOSS_TABLE[spec.loss]
        self.metric = LearnedLambda(spec.proj_dim, kind, tau, generator=generator)
        if kind != "fixed":
            with torch.no_grad():
                self.metric.theta += _softplus_inv(spec.lambda_init)
        mean, std = NORMALISATION[spec.dataset]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalise(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return h, F.normalize(self.projector(h).float(), dim=1)


def build_model(spec: ImageSSLSpec, in_ch: int) -> SimCLRNet:
    torch.manual_seed(spec.seed + 1)  # torchvision initialisers use the global generator
    return SimCLRNet(spec, in_ch, torch.Generator().manual_seed(spec.seed + 1))


# ------------------------------------------------------------------ distributed


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


# ------------------------------------------------------------------ data


def load_sources(spec: ImageSSLSpec, ctx) -> tuple[D.ImageSource, D.ImageSource]:
    """(train, test) sources. With ``synthetic_files`` the real-format files are
    written into the run's artefact folder once (by rank 0) and read back by
    the real loaders."""
    root = ctx.data_root
    if spec.synthetic_files:
        root = Path(ctx.artifact_dir) / f"synthetic-{spec.dataset}"
        marker = root / ".complete"
        rank, size = world()
        if rank == 0 and not marker.exists():
            if spec.dataset == "cifar10":
                D.write_cifar10_files(root, per_batch=max(8, spec.train_limit // 5 or 20), n_test=64, seed=spec.seed)
            elif spec.dataset == "imagenet":
                D.write_imagefolder_tree(root, n_classes=4, per_class=16, n_val=8, size=48, seed=spec.seed)
            else:
                raise ValueError(f"no synthetic files for {spec.dataset!r}")
            marker.touch()
        if size > 1:
            dist.barrier()
    if root is None:
        raise D.DatasetMissing(spec.dataset, Path("."), "give --data-root or set $ANINFONCE_DATA")
    train = D.load_dataset(spec.dataset, root, True, spec.synthetic_files).subset(spec.train_limit)
    test = D.load_dataset(spec.dataset, root, False, spec.synthetic_files)
    return train, test


def _workers(spec: ImageSSLSpec, device: torch.device) -> int:
    if spec.num_workers >= 0:
        return spec.num_workers
    return D.default_workers() if device.type == "cuda" else 0


def _loader(ds, batch: int, workers: int, sampler=None, drop_last: bool = False, device: torch.device | None = None):
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, shuffle=False, drop_last=drop_last,
                                       num_workers=workers, pin_memory=device is not None and device.type == "cuda",
                                       persistent_workers=False)


# ------------------------------------------------------------------ training


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return f


def _autocast(spec: ImageSSLSpec, device: torch.device):
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
        if device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # SimCLR's global BN
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        model = net.module
    ds = D.TwoViewDataset(train_src, cfg, spec.seed + 2)
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
    sched = torch.optim.lr_scheduler.LambdaLR(sgd, _lr_lambda(total, round(spec.warmup_epochs * steps_per_epoch)))
    metric_params = list(model.metric.parameters())
    adam = torch.optim.Adam(metric_params, lr=spec.lr_metric) if metric_params else None

    rows: list[dict[str, Any]] = []
    start_epoch = 0
    state = ctx.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        sgd.load_state_dict(state["sgd"])
        sched.load_state_dict(state["sched"])
        if adam is not None:
            adam.load_state_dict(state["adam"])
        rows, start_epoch = state["rows"], state["epoch"]
    else:
        rows += _lambda_rows(model, 0)
    workers = _workers(spec, device)
    with ctx.progress(total=total, initial=start_epoch * steps_per_epoch) as bar:
        for epoch in range(start_epoch, spec.epochs):
            net.train()
            ds.epoch = epoch
            sampler.set_epoch(epoch)
            loss_sum, since = torch.zeros((), device=device), 0
            for i, (v1, v2, _, _, _) in enumerate(_loader(ds, local_batch, workers, sampler, True, device)):
                if i >= steps_per_epoch:
                    break
                step = epoch * steps_per_epoch + i + 1
                x = torch.cat([v1, v2]).to(device, non_blocking=True)
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with _autocast(spec, device):
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
                loss_sum += loss.detach()
                since += 1
                if step % spec.log_every == 0 or i + 1 == steps_per_epoch:
                    mean_loss = float(loss_sum) / since
                    if not math.isfinite(mean_loss):
                        from .loop import TrainingDiverged
                        raise TrainingDiverged(f"{spec.label()} loss became {mean_loss} before step {step}")
                    rows += [{"step": step, "metric": "loss_train", "value": mean_loss},
                             {"step": step, "metric": "lr", "value": sched.get_last_lr()[0]}]
                    loss_sum.zero_()
                    since = 0
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{mean_loss:.3f}", refresh=False)
            rows += _lambda_rows(model, (epoch + 1) * steps_per_epoch)
            if epoch + 1 < spec.epochs and rank == 0:
                ctx.save_checkpoint({"epoch": epoch + 1, "rows": rows, "model": model.state_dict(),
                                     "sgd": sgd.state_dict(), "sched": sched.state_dict(),
                                     **({"adam": adam.state_dict()} if adam is not None else {})})
    # no timing rows: results must be identical run to run (the smoke golden values);
    # the runner records each run's wall time
    final = spec.epochs * steps_per_epoch
    if rank == 0:
        rows += [{"step": final, **r} for r in evaluate(spec, model, train_src, test_src, device)]
    if size > 1:
        dist.barrier()
    return rows


def _lambda_rows(model: SimCLRNet, step: int) -> list[dict[str, Any]]:
    lam = torch.sort(model.metric().detach().float().cpu(), descending=True).values
    return [{"step": step, "metric": f"lambda_hat_sorted/{i}", "value": float(v)} for i, v in enumerate(lam)]


# ------------------------------------------------------------------ evaluation


def protocols(spec: ImageSSLSpec) -> dict[str, str]:
    """The protocol string of every evaluation; every number names one."""
    return {
        "linear": f"linear-probe:offline,frozen-backbone,no-aug,lbfgs-logreg,l2={spec.probe_l2:g},iters={spec.probe_iters}",
        "knn": f"knn:k={spec.knn_k},cosine,majority-vote,backbone",
        "recovery_backbone": "aug-recovery:backbone,ridgecv|logreg,fit-half/score-half",
        "recovery_projector": "aug-recovery:projector(unit-norm),ridgecv|logreg,fit-half/score-half",
    }


def evaluate(spec: ImageSSLSpec, model: SimCLRNet, train_src: D.ImageSource, test_src: D.ImageSource,
             device: torch.device) -> list[dict[str, Any]]:
    cfg = spec.augment_config()
    proto = protocols(spec)
    workers = _workers(spec, device)
    n_classes = int(max(train_src.labels.max(), test_src.labels.max())) + 1
    bank_src, query_src = train_src.subset(spec.probe_train), test_src.subset(spec.probe_test)
    eval_batch = 256
    bank_x = _loader(D.EvalDataset(bank_src, cfg.size), eval_batch, workers, device=device)
    query_x = _loader(D.EvalDataset(query_src, cfg.size), eval_batch, workers, device=device)
    rows: list[dict[str, Any]] = []
    acc, h_bank, h_query = offline_linear_probe(lambda loader: embed(model, loader, device)[0], model.backbone,
                                                (bank_x, bank_src.labels), (query_x, query_src.labels),
                                                n_classes, spec.probe_iters, spec.probe_l2)
    rows.append({"metric": "linear_top1", "value": acc, "protocol": proto["linear"]})
    knn = knn_top1(h_bank, bank_src.labels, h_query, query_src.labels, spec.knn_k, n_classes)
    rows.append({"metric": "knn_top1", "value": knn, "protocol": proto["knn"]})

    views = D.OneViewDataset(test_src, cfg, seed=spec.seed + 4, n=spec.recovery_views)
    h_v, z_v, params = embed(model, _loader(views, eval_batch, workers, device=device), device)
    targets = D.recovery_targets(params.numpy(), cfg)
    kinds = cfg.targets()
    for space, feats in (("backbone", h_v), ("projector", z_v)):
        scores = recovery_scores(feats.double().numpy(), targets, kinds, seed=spec.seed)
        p = proto[f"recovery_{space}"]
        r2s = []
        for name, (kind, score, majority) in scores.items():
            rows.append({"metric": f"aug_{kind}/{name}", "value": score, "protocol": p})
            if majority is not None:
                rows.append({"metric": f"aug_majority/{name}", "value": majority, "protocol": p})
            if kind == "r2" and math.isfinite(score):
                r2s.append(score)
        rows.append({"metric": "aug_r2_mean", "value": float(np.mean(r2s)), "protocol": p})
    rows.append({"metric": "eval_images", "value": float(len(query_src)), "protocol": proto["linear"]})
    return rows
