"""Figure 5's statistic: how many positives of an anchor lie nearer another
anchor (the protocol: :mod:`aninfonce.analyses.fig5`), and the points its
schematic draws, both from the code's own sampler. No training is involved."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..latents import sample_positive
from ..specs import OverlapSpec


def anchors(d: int) -> torch.Tensor:
    """6 anchors 60 degrees apart on the circle, or the 6 octahedron vertices on S^2."""
    if d == 2:
        t = torch.arange(6, dtype=torch.float64) * (2 * math.pi / 6)
        return torch.stack([t.cos(), t.sin()], 1).float()
    if d == 3:
        eye = torch.eye(3)
        return torch.cat([eye, -eye])
    raise ValueError(f"the schematic lives on the circle (d = 2) or the sphere (d = 3), got d = {d}")


def positives(d: int, kappa: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n positives of every anchor (shape anchors x n x d) from the code's sampler."""
    a = anchors(d)
    gen = torch.Generator().manual_seed(seed)
    z = a.repeat_interleave(n, 0)
    zp = sample_positive(z, torch.full((d,), float(kappa)), gen)
    return a, zp.view(len(a), n, d)


def execute_overlap(spec: OverlapSpec, ctx: Any) -> list[dict[str, Any]]:
    a, zp = positives(spec.d, spec.kappa, spec.samples, spec.seed)
    nearest = torch.cdist(zp.reshape(-1, spec.d), a).argmin(1).view(len(a), -1)
    own = torch.arange(len(a))[:, None]
    overlap = (nearest != own).float().mean()
    # mean angle between anchor and positive, to read the concentration in degrees
    angle = torch.rad2deg(torch.acos((zp * a[:, None]).sum(-1).clamp(-1, 1))).mean()
    return [{"step": 0, "metric": "overlap", "value": float(overlap)},
            {"step": 0, "metric": "angle_deg", "value": float(angle)}]


def write_drawing(where: Path, d: int, kappa: float, n: int) -> None:
    """The schematic's points for (d, kappa): the anchors and ``n`` positives of each (seed 0)."""
    a, zp = positives(d, kappa, n, seed=0)
    where = Path(where)
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.with_name(f".{where.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, anchors=a.numpy(), positives=zp.numpy())
    os.replace(tmp, where)
