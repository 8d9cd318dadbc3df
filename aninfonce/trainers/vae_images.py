"""The Figure 3 trainer: a CNN encoder trained on image pairs decoded by a
VAE generator (the generator, the anchor marginal and the encoder are
reconstructed choices; see :mod:`aninfonce.analyses.fig3` for the
protocol and docs/PROTOCOL.md §5.2). One run = one spec, through the one step
loop of :mod:`aninfonce.trainers.loop`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from ..data import data_root
from ..data.mnist import load_mnist
from ..latents import sample_positive, sample_sphere
from ..losses import LOSSES as LOSS_TABLE
from ..losses import LearnedLambda, contrastive_loss
from ..metrics import identifiability_rows
from ..specs import Fig3Spec
from .loop import resume_or_start, snapshot, train_loop
from .vae import VAEConfig, load_vae, train_vae


# Per-profile training settings live in aninfonce/studies/fig3.py (PROFILE_SETTINGS). `paper` documents a
# full-size run [recon: the paper's settings for Figure 3 are not known; optimiser and batch follow the
# synthetic [code]]; `quick` trains the whole figure in about 3.2 h of single-core compute (see
# fig3.SECONDS_PER_RUN); `smoke` exercises the plumbing on a few hundred real images.
# ---------------------------------------------------------------- models
class ConvEncoder(nn.Module):
    """f: two stride-2 4x4 convs, a hidden linear layer, LeakyReLU(0.01), output
    on the unit sphere [recon]."""

    def __init__(self, d: int, channels: tuple[int, ...] = (32, 64), hidden: int = 256):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = 1, 28
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.01)]
            c_in, size = c, size // 2
        layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, d)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)
        return h / h.norm(dim=1, keepdim=True)


def _data_root(ctx) -> Path:
    if ctx.data_root is not None:
        return Path(ctx.data_root)
    return data_root(None)


def vae_config(spec: Fig3Spec) -> VAEConfig:
    return VAEConfig(latent=spec.d, hidden=spec.vae_hidden, epochs=spec.vae_epochs, train_images=spec.vae_train_images)


def vae_name(spec: Fig3Spec) -> str:
    blob = json.dumps(dataclasses.asdict(vae_config(spec)), sort_keys=True)
    return f"vae_seed{spec.seed}_{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def vae_for(spec: Fig3Spec, ctx) -> tuple[dict[str, Any], bool]:
    """The run's VAE, trained once per profile, seed and VAE config and reused
    (``ctx.cached``). A file lock keeps parallel workers from training it twice.
    Returns the cached object and whether this call trained it."""
    cfg = vae_config(spec)
    name = vae_name(spec)
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    built: list[bool] = []

    def build() -> dict[str, Any]:
        built.append(True)
        root = _data_root(ctx)
        x, _ = load_mnist(root, train=True, limit=cfg.train_images)
        xt, _ = load_mnist(root, train=False, limit=spec.vae_test_images)
        # the worker's own thread count (one in the pool): raising it while other
        # jobs share the cores made OpenMP threads spin and slowed training several-fold
        with ctx.progress(total=cfg.epochs) as bar:
            def report(epoch: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(vae_loss=f"{loss:.1f}", refresh=False)
            return train_vae(cfg, x, xt, spec.seed, ctx.device, report)

    with FileLock(str(ctx.artifact_dir / f"{name}.lock")):
        obj = ctx.cached(name, build)
    return obj, bool(built)


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


class Generator:
    """g: unit latents u -> decoded images of z = sqrt(d) u."""

    def __init__(self, vae, d: int):
        self.vae, self.radius = vae, d ** 0.5

    @torch.no_grad()
    def __call__(self, u: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        return torch.cat([self.vae.decode(self.radius * part) for part in u.split(chunk)])


def build(spec: Fig3Spec, device: torch.device) -> dict[str, Any]:
    """Encoder, metric and optimiser. Seeds: encoder and metric init = seed + 1,
    training latents = seed + 2, evaluation latents = seed + 3."""
    torch.manual_seed(spec.seed + 1)
    encoder = ConvEncoder(spec.d, tuple(spec.channels), spec.hidden)
    kind, tau = LOSS_TABLE[spec.loss]
    metric_ = LearnedLambda(spec.d, kind, tau, generator=_generator(spec.seed + 1, torch.device("cpu")))
    encoder, metric_ = encoder.to(device), metric_.to(device)
    params = [{"params": encoder.parameters(), "lr": spec.lr_f}]
    if kind != "fixed":
        params.append({"params": metric_.parameters(), "lr": spec.lr_metric})
    return {"encoder": encoder, "metric": metric_, "optimizer": torch.optim.Adam(params),
            "data_gen": _generator(spec.seed + 2, device)}


def eval_pair_batches(spec: Fig3Spec) -> int:
    """How many training-size batches of fixed positive pairs ``loss_eval`` averages over [recon]:
    eval_samples // batch (quick 8, paper 4, smoke 8). One batch of 256 pairs made the loss jitter
    by ~0.02 between evaluations on a plateau, as much as the settle rule's tolerance; the mean of 8 is
    the same loss (same batch size, so the same log-N offset) with less noise: in the quick runs the
    step-to-step sd from step 1500 on fell from 0.017-0.026 (one batch) to 0.006-0.011 (the mean of 8)."""
    return max(1, spec.eval_samples // spec.batch)


def paired_loss(a: torch.Tensor, b: torch.Tensor, precision: torch.Tensor, batch: int) -> float:
    """The contrastive loss of pairs (a, b) as the mean over consecutive batches of ``batch`` pairs
    (each batch its own negatives, as in training)."""
    return float(torch.stack([contrastive_loss(x, y, precision) for x, y in zip(a.split(batch), b.split(batch))]).mean())


def make_eval_set(spec: Fig3Spec, g: Generator, device: torch.device) -> dict[str, torch.Tensor]:
    gen = _generator(spec.seed + 3, device)
    fit_u = sample_sphere(spec.eval_samples, spec.d, gen, device)
    score_u = sample_sphere(spec.eval_samples, spec.d, gen, device)
    pair_u = sample_sphere(eval_pair_batches(spec) * spec.batch, spec.d, gen, device)
    pair_up = sample_positive(pair_u, spec.true_lambda().to(device), gen)
    return {"fit_u": fit_u, "score_u": score_u, "fit_x": g(fit_u), "score_x": g(score_u),
            "pair_u": pair_u, "pair_up": pair_up, "pair_x": g(pair_u), "pair_xp": g(pair_up)}


@torch.no_grad()
def _encode(encoder: nn.Module, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([encoder(part) for part in x.split(chunk)])


@torch.no_grad()
def evaluate(spec: Fig3Spec, m: dict[str, Any], ev: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    enc = m["encoder"]
    was_training = enc.training
    enc.eval()
    fit_h, score_h = _encode(enc, ev["fit_x"]).cpu().double().numpy(), _encode(enc, ev["score_x"]).cpu().double().numpy()
    fit_u, score_u = ev["fit_u"].cpu().double().numpy(), ev["score_u"].cpu().double().numpy()
    content = spec.content_mask()
    # encoder dims match latent dims only up to permutation: the rows include the Hungarian matching
    rows = identifiability_rows(fit_h, fit_u, score_h, score_u, content)
    lam_hat = m["metric"]().cpu()
    rows += [{"metric": f"lambda_hat/{i}", "value": float(v)} for i, v in enumerate(lam_hat)]
    a, b = _encode(enc, ev["pair_x"]), _encode(enc, ev["pair_xp"])
    rows.append({"metric": "loss_eval", "value": paired_loss(a, b, m["metric"](), spec.batch)})
    enc.train(was_training)
    return rows


@torch.no_grad()
def knn_accuracy(features_ref: np.ndarray, labels_ref: np.ndarray, features: np.ndarray, labels: np.ndarray, k: int) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=k, metric="euclidean").fit(features_ref, labels_ref)
    return float((knn.predict(features) == labels).mean())


@torch.no_grad()
def knn_rows(spec: Fig3Spec, encoder: nn.Module, vae, root: Path, device: torch.device) -> list[dict[str, Any]]:
    """KNN accuracy on real MNIST of the encoder, and of the VAE's posterior
    means as a reference for how much class information the 10-d latent holds."""
    xr, yr = load_mnist(root, train=True, limit=spec.knn_train_images)
    xt, yt = load_mnist(root, train=False, limit=spec.knn_test_images)
    encoder.eval()
    enc = lambda x: _encode(encoder, x.to(device)).cpu().numpy()  # noqa: E731
    mu = lambda x: torch.cat([vae.encode(p.to(device))[0] for p in x.split(4096)]).cpu().numpy()  # noqa: E731
    yr, yt = yr.numpy(), yt.numpy()
    proto = spec.knn_protocol()
    return [
        {"metric": "knn_acc", "value": knn_accuracy(enc(xr), yr, enc(xt), yt, spec.knn_k), "protocol": proto},
        {"metric": "knn_acc_vae_latent", "value": knn_accuracy(mu(xr), yr, mu(xt), yt, spec.knn_k),
         "protocol": proto.replace("encoder output (10-d unit-norm)", "VAE posterior means (10-d)")},
    ]


def write_grids(where: Path, vae_obj: dict[str, Any]) -> None:
    """The generator's image grids, config and quality numbers as a result file beside the run's rows
    (read by analyses.fig3.vae_grids): the figure then needs neither torch nor the git-ignored cache."""
    if where.exists():  # one per VAE; every run of that VAE names it
        return
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.with_name(f".{where.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **{f"grid_{k}": np.asarray(v.cpu() if hasattr(v, "cpu") else v)
                                for k, v in vae_obj["grids"].items()},
                        config=np.array(json.dumps(vae_obj["config"], sort_keys=True)),
                        stats=np.array(json.dumps({k: float(v) for k, v in vae_obj["stats"].items()}, sort_keys=True)))
    os.replace(tmp, where)


def _artifact_ref(ctx, name: str) -> str:
    """Where the VAE artefact lies, relative to the working directory when inside it (for the figure)."""
    path = (ctx.artifact_dir / f"{name}.pt").resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def train_fig3(spec: Fig3Spec, ctx) -> list[dict[str, Any]]:
    """Train the CNN encoder on decoded pairs, fresh latents every step;
    evaluate every ``eval_every`` steps; KNN on real MNIST at the end. Resumes
    from the last evaluation's checkpoint."""
    device = ctx.device
    vae_obj, _ = vae_for(spec, ctx)
    if getattr(ctx, "result_dir", None) is not None:
        write_grids(Path(ctx.result_dir) / f"{vae_name(spec)}.npz", vae_obj)
    vae = load_vae(vae_obj, device)
    g = Generator(vae, spec.d)
    m = build(spec, device)
    precision = spec.true_lambda().to(device)
    ev = make_eval_set(spec, g, device)
    gt_loss = paired_loss(ev["pair_u"], ev["pair_up"], precision, spec.batch)
    trained = {k: m[k] for k in ("encoder", "metric", "optimizer")}
    rows, start = resume_or_start(ctx, trained, m["data_gen"], lambda: _stamp(evaluate(spec, m, ev), 0, gt_loss, None))

    def step() -> torch.Tensor:
        u = sample_sphere(spec.batch, spec.d, m["data_gen"], device)
        up = sample_positive(u, precision, m["data_gen"])
        h = m["encoder"](g(torch.cat([u, up])))
        loss = contrastive_loss(h[: spec.batch], h[spec.batch:], m["metric"]())
        m["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        m["optimizer"].step()
        return loss.detach()

    rows = train_loop(
        ctx, spec.label(), spec.steps, spec.eval_every, start, rows, step=step,
        evaluate=lambda step, train_loss: _stamp(evaluate(spec, m, ev), step, gt_loss, train_loss),
        state=lambda: snapshot(trained, m["data_gen"]),
    )
    final = knn_rows(spec, m["encoder"], vae, _data_root(ctx), device)
    final += [{"metric": k, "value": v} for k, v in vae_obj["stats"].items()]
    ref = _artifact_ref(ctx, vae_name(spec))
    rows += [{"step": spec.steps, "vae_artifact": ref, **r} for r in final]
    return [{"vae_artifact": ref, **r} for r in rows]


def _stamp(rows: list[dict[str, Any]], step: int, gt_loss: float, train_loss: float | None) -> list[dict[str, Any]]:
    extra = [{"metric": "loss_groundtruth", "value": gt_loss}]
    if train_loss is not None:
        extra.append({"metric": "loss_train", "value": train_loss})
    return [{"step": step, **r} for r in rows + extra]
