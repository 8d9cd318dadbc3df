"""Networks of the synthetic experiments: the frozen mixing g and the encoder f
(docs/PROTOCOL.md §2). Image models live with their experiments."""

from __future__ import annotations

import torch
from torch import nn

from .specs import CONDITION_DRAWS, PAPER_ENCODER_WIDTHS  # [code] 25,000 draws; f: d -> 10d -> 50d x 4 -> 10d -> d
from .speed import mlp_forward


def _unit_column_matrices(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    w = torch.rand(n, d, d, generator=generator, dtype=torch.float64) * 2 - 1
    return w / w.norm(dim=1, keepdim=True)


def well_conditioned_matrix(d: int, generator: torch.Generator, draws: int = CONDITION_DRAWS) -> torch.Tensor:
    """A d x d matrix, entries U(-1, 1), columns L2-normalised, redrawn until its
    condition number is at most the smallest among ``draws`` such matrices [code].

    Both the bar and the redraws are computed in vectorised chunks.
    """
    chunk = min(draws, 5000)
    bar = min(torch.linalg.cond(_unit_column_matrices(min(chunk, draws - i), d, generator)).min().item()
              for i in range(0, draws, chunk))
    while True:
        w = _unit_column_matrices(chunk, d, generator)
        ok = torch.nonzero(torch.linalg.cond(w) <= bar)
        if len(ok):
            return w[ok[0, 0]].float()


class MixingMLP(nn.Module):
    """g: 3 square bias-free layers, LeakyReLU(0.2) between them [code]; frozen."""

    def __init__(self, d: int, generator: torch.Generator, n_layers: int = 3, draws: int = CONDITION_DRAWS):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_layers):
            lin = nn.Linear(d, d, bias=False)
            lin.weight.data.copy_(well_conditioned_matrix(d, generator, draws))
            layers.append(lin)
            if i < n_layers - 1:
                layers.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)
        self.requires_grad_(False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPEncoder(nn.Module):
    """f: an MLP with LeakyReLU(0.01) after every layer but the last, output on
    the unit sphere [code]. ``widths`` are multiples of d."""

    def __init__(self, d: int, generator: torch.Generator, widths: tuple[int, ...] = PAPER_ENCODER_WIDTHS, d_out: int | None = None):
        super().__init__()
        sizes = [d, *(w * d for w in widths), d_out or d]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = nn.Linear(n_in, n_out)
            _init_linear(lin, generator)
            layers.append(lin)
            if i < len(sizes) - 2:
                # in place: the same numbers, one activation buffer less per layer (~5 % of a step)
                layers.append(nn.LeakyReLU(0.01, inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, matmul: str = "ieee") -> torch.Tensor:
        """``matmul="reduced"``: the products in bf16 / TF32 (:mod:`aninfonce.speed`)."""
        h = mlp_forward(self.net, x, matmul)
        return h / h.norm(dim=1, keepdim=True)


def _init_linear(lin: nn.Linear, generator: torch.Generator) -> None:
    """torch's default Linear init (Kaiming-uniform bound 1/sqrt(fan_in)), drawn
    from an explicit generator so the encoder is seeded by the run spec."""
    bound = lin.in_features ** -0.5
    with torch.no_grad():
        lin.weight.uniform_(-bound, bound, generator=generator)
        lin.bias.uniform_(-bound, bound, generator=generator)
