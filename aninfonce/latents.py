"""Latent space of the synthetic experiments: the sphere marginal and the
anisotropic positive-pair conditional (docs/PROTOCOL.md §2).

Everything here is vectorised torch on the caller's device and draws its
randomness from an explicit ``torch.Generator``, so a run is reproducible and
resumable from a saved generator state.
"""

from __future__ import annotations

import math

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
    adaptive: bool | None = None,
    stats: dict | None = None,
) -> torch.Tensor:
    """Draw z+ given anchors z: z~ = z + e, e ~ N(0, diag(precision)^-1), keep
    only draws with | ||z~|| - 1 | < band, then project onto the sphere [code].

    Rejection is vectorised over the batch: each round draws ``k`` candidates
    for every anchor still waiting and keeps the first accepted one; rounds
    repeat for the anchors with none. Every round ends in one host sync (the
    number still waiting), free on a CPU but a stall on a GPU, and with
    acceptance rates of 3-15 % (Lambda_1 = 5 .. 200) k = 8 needs 6-30 rounds.

    ``adaptive`` (default: on for non-CPU devices) sizes each later round from
    the acceptance rate seen so far so that it finishes the waiting anchors
    with probability 0.999: 2-3 rounds per call. It is the same exact rejection
    sampler (iid candidates, first accepted kept) with another random stream,
    so it stays off on CPU, where every stored result was drawn with k = 8.
    ``stats``, if given, receives the number of rounds and the norms ||z~||
    of the accepted draws before projection.
    """
    if adaptive is None:
        adaptive = z.device.type != "cpu"
    std = precision.to(z).rsqrt()
    out = torch.empty_like(z)
    waiting = torch.arange(len(z), device=z.device)
    k, rounds = oversample, 0
    while len(waiting):
        rounds += 1
        n_wait = len(waiting)
        anchors = z[waiting]
        noise = torch.randn(k, *anchors.shape, generator=generator, device=z.device) * std
        cand = anchors.unsqueeze(0) + noise  # (k, n_waiting, d)
        norm = cand.norm(dim=-1)
        ok = (norm - 1).abs() < band
        # index of the first accepted candidate per anchor (k if none)
        first = torch.where(ok, torch.arange(k, device=z.device)[:, None], k).min(0).values
        got = first < k
        idx = first.clamp(max=k - 1)
        cols = torch.arange(n_wait, device=z.device)
        chosen = cand[idx, cols] / norm[idx, cols, None]
        out[waiting[got]] = chosen[got]
        if stats is not None:  # the pre-projection norms of the draws kept (what the band constrains)
            stats.setdefault("accepted_norms", []).append(norm[idx, cols][got])
        waiting = waiting[~got]
        if adaptive and len(waiting):
            k = _round_size(float(ok.float().mean()), len(waiting), z.shape[1])
    if stats is not None:
        stats["rounds"] = rounds
    return out


def _round_size(accept: float, n_waiting: int, d: int, miss: float = 1e-3, max_elements: int = 1 << 24) -> int:
    """Candidates per anchor so that all ``n_waiting`` anchors get one with
    probability 1 - ``miss``, capped at ``max_elements`` floats per round."""
    accept = min(max(accept, 1e-3), 0.999)
    k = math.ceil(math.log(miss / n_waiting) / math.log1p(-accept))
    return max(1, min(k, max_elements // (n_waiting * d) or 1))
