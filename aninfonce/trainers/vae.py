"""The MNIST VAE of Figure 3: trained once, then its decoder is the generator g.

Everything here is [recon]: the paper says only "a VAE trained on MNIST with a
10-d latent" [caption]. We take the classic Kingma & Welling MLP VAE
(784 -> H -> 2 x 10, 10 -> H -> 784, Bernoulli likelihood, N(0, I) prior),
which trains in about a minute on 2 CPU cores and uses all ten latent dims.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    latent: int = 10  # [caption]
    hidden: int = 400  # [recon]
    epochs: int = 10  # [recon]
    batch: int = 128  # [recon]
    lr: float = 1e-3  # [recon]
    train_images: int | None = None  # None = all 60,000 [recon]


class VAE(nn.Module):
    def __init__(self, latent: int = 10, hidden: int = 400):
        super().__init__()
        self.latent = latent
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean images in [0, 1], shape (N, 1, 28, 28): the generator g."""
        return torch.sigmoid(self.dec(z)).view(-1, 1, 28, 28)

    def loss(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative ELBO per image (Bernoulli likelihood) and the KL term."""
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * noise
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x.flatten(1), reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return (rec + kl).mean(), kl.mean()


def train_vae(cfg: VAEConfig, images: torch.Tensor, test_images: torch.Tensor, seed: int, device: torch.device,
              progress=None) -> dict[str, Any]:
    """Train on ``images`` (N, 1, 28, 28 in [0, 1]); return a state dict plus
    quality numbers on ``test_images`` and small uint8 grids for the figure.

    Seeds: init = seed, batch order and reparametrisation noise = seed + 100."""
    torch.manual_seed(seed)
    vae = VAE(cfg.latent, cfg.hidden).to(device)
    gen = torch.Generator(device="cpu").manual_seed(seed + 100)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    x_all = images.to(device)
    n = len(x_all)
    steps_per_epoch = max(1, n // cfg.batch)
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(steps_per_epoch):
            x = x_all[order[i * cfg.batch:(i + 1) * cfg.batch].to(device)]
            noise = torch.randn(len(x), cfg.latent, generator=gen).to(device)
            loss, _ = vae.loss(x, noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1, float(loss.detach()))
    vae.eval()
    stats = evaluate_vae(vae, test_images.to(device), seed)
    return {"config": dataclasses.asdict(cfg), "state_dict": {k: v.cpu() for k, v in vae.state_dict().items()},
            "stats": stats,  # grids as tensors: the cache is loaded with weights_only=True
            "grids": {k: torch.from_numpy(v) for k, v in make_grids(vae, test_images.to(device), seed).items()}}


@torch.no_grad()
def evaluate_vae(vae: VAE, x: torch.Tensor, seed: int) -> dict[str, float]:
    """Test negative ELBO and KL (nats per image), and the number of active
    latent dims (variance of the posterior mean over the data > 0.01, Burda et al.)."""
    gen = torch.Generator(device="cpu").manual_seed(seed + 200)
    noise = torch.randn(len(x), vae.latent, generator=gen).to(x.device)
    nelbo, kl = vae.loss(x, noise)
    mu, _ = vae.encode(x)
    var = mu.var(0)
    out = {"vae/test_neg_elbo": float(nelbo), "vae/test_kl": float(kl), "vae/active_dims": float((var > 0.01).sum())}
    out.update({f"vae/posterior_mean_var/{i}": float(v) for i, v in enumerate(var)})
    return out


@torch.no_grad()
def make_grids(vae: VAE, x: torch.Tensor, seed: int, n: int = 16) -> dict[str, np.ndarray]:
    """Real test images with their reconstructions, decoded prior samples and
    decoded samples of Figure 3's anchor marginal (uniform on the sphere of
    radius sqrt(d)), as uint8 arrays (N, 28, 28)."""
    gen = torch.Generator(device="cpu").manual_seed(seed + 300)
    real = x[:n]
    mu, _ = vae.encode(real)
    recon = vae.decode(mu)
    prior = vae.decode(torch.randn(64, vae.latent, generator=gen).to(x.device))
    u = torch.randn(64, vae.latent, generator=gen)
    sphere = vae.decode((u / u.norm(dim=1, keepdim=True) * vae.latent ** 0.5).to(x.device))
    to8 = lambda t: (t.squeeze(1).clamp(0, 1) * 255).round().byte().cpu().numpy()  # noqa: E731
    return {"real": to8(real), "recon": to8(recon), "prior": to8(prior), "sphere": to8(sphere)}


def load_vae(obj: dict[str, Any], device: torch.device) -> VAE:
    cfg = obj["config"]
    vae = VAE(cfg["latent"], cfg["hidden"])
    vae.load_state_dict(obj["state_dict"])
    vae.requires_grad_(False)
    return vae.to(device).eval()
