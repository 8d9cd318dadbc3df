"""The network of a SimCLR run: a backbone (ResNet-18 with the CIFAR stem,
ResNet-50, or a small conv net), the projection MLP and the loss's Lambda^."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ...losses import LOSSES as LOSS_TABLE
from ...losses import LearnedLambda
from .spec import ImageSSLSpec

# mean / std per dataset for the input normalisation (uint8 -> float inside the model)
NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mnist": ((0.1307,), (0.3081,)),
}


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
