"""Latent space of the synthetic experiments: the sphere marginal and the
anisotropic positive-pair conditional (PAPER.md section 2).

Everything here is vectorised torch on the caller's device and draws its
randomness from an explicit ``torch.Generator``, so a run is reproducible and
resumable from a saved generator state.
"""

from __future__ import annotations

import torch

# [code] the authors' rejection band: keep z + e only if | ||z + e|| - 1 | < 0.1
REJECTION_BAND = 0.1


def lambda_preset(kind: str, d: int, lam1: float = 5.0, lam2: float = 25.0) -> torch.Tensor:
    """The ground-truth diagonal precision Lambda of the positive conditional.

    - ``bimodal`` [code]: the first half of the dims get ``lam2`` (content when
      ``lam2 > lam1``: they barely change), the second half get ``lam1``.
    - ``linear`` [code]: ``linspace(lam1, lam2, d)``.
    - ``isotropic``: every dim gets ``lam2`` (the theory's assumption).
    """
    if kind == "bimodal":
        half = d // 2
        return torch.cat([torch.full((half,), float(lam2)), torch.full((d - half,), float(lam1))])
    if kind == "linear":
        return torch.linspace(float(lam1), float(lam2), d)
    if kind == "isotropic":
        return torch.full((d,), float(lam2))
    raise ValueError(f"unknown Lambda preset {kind!r}; choose bimodal, linear or isotropic")


def content_style_masks(lam: torch.Tensor, kind: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Content = dims with the largest precision (they change least), style = the rest.

    For the ``bimodal`` preset the split is by position: the half with the larger
    precision is content (the first half on a tie), so at Lambda_2 = Lambda_1 (the isotropic
    control of Figure 2A) both groups are still defined and comparable.
    Otherwise, for an isotropic Lambda every dim is content and there is no style.
    """
    if kind == "bimodal":
        first_half = torch.arange(len(lam)) < len(lam) // 2
        content = first_half if lam[0] >= lam[-1] else ~first_half
    else:
        content = lam >= lam.max() - 1e-9
    return content, ~content


def sample_sphere(n: int, d: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform samples on S^(d-1): normalised standard normal draws [code]."""
    z = torch.randn(n, d, generator=generator, device=device)
    return z / z.norm(dim=1, keepdim=True)


def sample_positive(
    z: torch.Tensor,
    precision: torch.Tensor,
    generator: torch.Generator,
    band: float = REJECTION_BAND,
    oversample: int = 8,
) -> torch.Tensor:
    """Draw z+ given anchors z: z~ = z + e, e ~ N(0, diag(precision)^-1), keep
    only draws with | ||z~|| - 1 | < band, then project onto the sphere [code].

    Rejection is vectorised over the batch: each round draws ``oversample``
    candidates for every anchor still waiting and keeps the first accepted one.
    Rounds repeat only for the few anchors with no accepted candidate.
    """
    std = precision.to(z).rsqrt()
    out = torch.empty_like(z)
    waiting = torch.arange(len(z), device=z.device)
    while len(waiting):
        anchors = z[waiting]
        noise = torch.randn(oversample, *anchors.shape, generator=generator, device=z.device) * std
        cand = anchors.unsqueeze(0) + noise  # (oversample, n_waiting, d)
        norm = cand.norm(dim=-1)
        ok = (norm - 1).abs() < band
        # index of the first accepted candidate per anchor (oversample if none)
        first = torch.where(ok, torch.arange(oversample, device=z.device)[:, None], oversample).min(0).values
        got = first < oversample
        idx = first.clamp(max=oversample - 1)
        cols = torch.arange(len(waiting), device=z.device)
        chosen = cand[idx, cols] / norm[idx, cols, None]
        out[waiting[got]] = chosen[got]
        waiting = waiting[~got]
    return out
