"""Figure 3: AnInfoNCE on MNIST through a VAE generator [caption].

A VAE trained on real MNIST (10-d latent) is the generator g. Anchor latents
are drawn from the anchor marginal, positives from the anisotropic
conditional of ``latents.py``, both are decoded to images, and a small CNN
encoder is trained on the image pairs with InfoNCE or AnInfoNCE.

A: R^2 of content and style latent dims from the encoder output against
Lambda_2 (Lambda_1 = 5). B: KNN accuracy on the real MNIST test set of those
encoders. C, D: learned Lambda^ during training for ten true Lambda linearly
spaced over 5..50 (C) and 5..200 (D).

Reconstructed choices [recon], each in one place below:
- VAE: the classic MLP VAE of ``aninfonce/trainers/vae.py``, trained once per profile
  and seed through the runner's artefact cache.
- Anchor marginal: uniform on the sphere of radius sqrt(10) in the VAE's latent
  space, u ~ U(S^9), z = sqrt(10) u. This is the typical set of the VAE's
  N(0, I) prior (prior samples have norm 3.1 +- 0.7), and it keeps the paper's
  sphere geometry, so the conditional of ``latents.py`` (Gaussian step of
  precision Lambda on the unit sphere, rejection band, projection) applies to u
  unchanged and Lambda means the same as in Figure 2. R^2 is measured against u.
- Encoder: a small CNN (two stride-2 convs, one hidden linear layer),
  LeakyReLU(0.01), output L2-normalised to the unit sphere as in [code]'s MLP.
- Content/style: for the bimodal Lambda the first five dims get Lambda_2
  ("content" when Lambda_2 > 5) and the last five Lambda_1 = 5 ("style"); the
  groups are defined by position, so at Lambda_2 = 5 (isotropic control) both
  groups exist and are comparable. For linear Lambda: top half vs bottom half.
- KNN: k = 10, Euclidean distance on the encoder's unit-norm 10-d output (same
  ranking as cosine), majority vote (sklearn KNeighborsClassifier); reference
  set = the first N real MNIST training images, scored on the real test set.
  The CSV's ``protocol`` column states N, k and the test-set size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from filelock import FileLock
from torch import nn

from .. import claims as C
from ..data.mnist import load_mnist
from ..latents import lambda_preset, sample_positive, sample_sphere
from ..losses import Metric, contrastive_loss
from ..metrics import HELD_OUT, identifiability_rows
from ..plots import (GROUP_LABELS, GROUP_STYLES, LOSS_COLORS, LOSS_LABELS, final_step, indexed_metric, metric, no_data,
                     plot_lambda_traces, r2_groups_against, save)
from ..data import data_root
from ..registry import Claim, ClaimResult, Experiment, register
from ..specs import RunSpec
from ..trainers.synthetic import LOSSES as ALL_LOSSES
from ..trainers.loop import resume_or_start, snapshot, train_loop
from ..trainers.vae import VAEConfig, load_vae, tile, train_vae

# the strongest isotropic baseline (learned scalar) and the authors' code default (tau = 1) [recon]
LOSSES = ("aninfonce", "infonce-learned", "infonce-tau1")
# [recon] the swept Lambda_2 values are not known; 5 is the isotropic control
LAMBDA2_SWEEP = (5.0, 10.0, 25.0, 50.0, 100.0, 200.0)
LINEAR_RANGES = ((5.0, 50.0), (5.0, 200.0))  # panels C, D [caption]


@dataclasses.dataclass(frozen=True)
class Fig3Spec(RunSpec):
    loss: str = "aninfonce"
    lambda_kind: str = "bimodal"
    lam1: float = 5.0
    lam2: float = 25.0
    d: int = 10  # [caption] the VAE's latent size
    batch: int = 1000
    steps: int = 100_000
    lr_f: float = 1e-4
    lr_metric: float = 1e-3
    eval_every: int = 5000
    eval_samples: int = 4096
    channels: tuple[int, ...] = (32, 64)  # [recon] CNN encoder
    hidden: int = 256  # [recon]
    vae_hidden: int = 400  # [recon]
    vae_epochs: int = 30  # [recon]
    vae_train_images: int | None = None  # None = all 60,000
    vae_test_images: int | None = None  # None = all 10,000
    knn_k: int = 10  # [recon]
    knn_train_images: int | None = None  # None = all 60,000
    knn_test_images: int | None = None  # None = all 10,000

    def __post_init__(self) -> None:
        if self.loss not in ALL_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(ALL_LOSSES)}")

    def true_lambda(self) -> torch.Tensor:
        return lambda_preset(self.lambda_kind, self.d, self.lam1, self.lam2)

    def content_mask(self) -> np.ndarray:
        """Positional groups (see module docstring): first half for bimodal, top half of Lambda for linear."""
        if self.lambda_kind == "bimodal":
            return np.arange(self.d) < self.d // 2
        lam = self.true_lambda().numpy()
        return lam >= np.median(lam)

    def vae_config(self) -> VAEConfig:
        return VAEConfig(latent=self.d, hidden=self.vae_hidden, epochs=self.vae_epochs, train_images=self.vae_train_images)

    def knn_protocol(self) -> str:
        n_train = self.knn_train_images or 60_000
        n_test = self.knn_test_images or 10_000
        return (f"knn k={self.knn_k} euclidean(=cosine) majority vote on encoder output (10-d unit-norm); "
                f"reference: first {n_train} real MNIST train images; scored: first {n_test} real MNIST test images")


# Per-profile training settings. `paper` documents a full-size run [recon: the
# paper's settings for Figure 3 are not known; optimiser and batch follow the
# synthetic [code]]. `quick` fits the whole figure in about 20 min on 2 CPU
# cores; `smoke` exercises the plumbing on a few hundred real images.
PROFILE_SETTINGS: dict[str, dict] = {
    "paper": dict(batch=1000, steps=100_000, eval_every=5000, lr_f=1e-4, lr_metric=1e-3, vae_epochs=30),
    "quick": dict(
        batch=256,  # [recon] paper: 1000
        steps=800,  # [recon] paper: 100,000 (cut from 3000 before any quick result: the shared 2 cores were oversubscribed)
        eval_every=100,
        lr_f=1e-3,  # [recon] paper: 1e-4; 10x to converge in a few thousand steps
        lr_metric=0.2,  # [recon] paper: 1e-3; Lambda^ must travel from 0.7 towards ~200
        eval_samples=2048,
        channels=(16, 32),  # [recon] paper: (32, 64)
        hidden=128,  # [recon] paper: 256
        vae_epochs=5,  # [recon] paper: 30
        knn_train_images=10_000,  # [recon] paper: all 60,000
    ),
    "smoke": dict(batch=32, steps=10, eval_every=5, eval_samples=256, channels=(4, 8), hidden=16, vae_hidden=64,
                  vae_epochs=2, vae_train_images=300, vae_test_images=200, knn_train_images=300, knn_test_images=200),
}
SMOKE_LAMBDA2 = (5.0, 50.0)
QUICK_LAMBDA2 = (5.0, 25.0, 200.0)  # [recon] 3 of the 6 paper-profile values, to fit 20 min


def _runs(profile: str, n_seeds: int) -> list[Fig3Spec]:
    s = PROFILE_SETTINGS[profile]
    lam2s = {"smoke": SMOKE_LAMBDA2, "quick": QUICK_LAMBDA2}.get(profile, LAMBDA2_SWEEP)
    bimodal = lambda losses: [Fig3Spec(experiment="fig3", loss=loss, lambda_kind="bimodal", lam1=5.0, lam2=lam2,  # noqa: E731
                                       seed=seed, **s) for seed in range(n_seeds) for lam2 in lam2s for loss in losses]
    linear = [Fig3Spec(experiment="fig3", loss="aninfonce", lambda_kind="linear", lam1=lo, lam2=hi, seed=seed, **s)
              for seed in range(n_seeds) for lo, hi in LINEAR_RANGES]
    # the tau = 1 baseline last: on a shared machine the main comparison finishes first
    return bimodal(LOSSES[:2]) + linear + bimodal(LOSSES[2:])


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


def vae_name(spec: Fig3Spec) -> str:
    blob = json.dumps(dataclasses.asdict(spec.vae_config()), sort_keys=True)
    return f"vae_seed{spec.seed}_{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def vae_for(spec: Fig3Spec, ctx) -> tuple[dict[str, Any], bool]:
    """The run's VAE, trained once per profile, seed and VAE config and reused
    (``ctx.cached``). A file lock keeps parallel workers from training it twice.
    Returns the cached object and whether this call trained it."""
    cfg = spec.vae_config()
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
    kind, tau = ALL_LOSSES[spec.loss]
    metric_ = Metric(spec.d, kind, tau, generator=_generator(spec.seed + 1, torch.device("cpu")))
    encoder, metric_ = encoder.to(device), metric_.to(device)
    params = [{"params": encoder.parameters(), "lr": spec.lr_f}]
    if kind != "fixed":
        params.append({"params": metric_.parameters(), "lr": spec.lr_metric})
    return {"encoder": encoder, "metric": metric_, "optimizer": torch.optim.Adam(params),
            "data_gen": _generator(spec.seed + 2, device)}


def make_eval_set(spec: Fig3Spec, g: Generator, device: torch.device) -> dict[str, torch.Tensor]:
    gen = _generator(spec.seed + 3, device)
    fit_u = sample_sphere(spec.eval_samples, spec.d, gen, device)
    score_u = sample_sphere(spec.eval_samples, spec.d, gen, device)
    pair_u = sample_sphere(spec.batch, spec.d, gen, device)
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
    rows.append({"metric": "loss_eval", "value": float(contrastive_loss(a, b, m["metric"]()))})
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
    vae = load_vae(vae_obj, device)
    g = Generator(vae, spec.d)
    m = build(spec, device)
    precision = spec.true_lambda().to(device)
    ev = make_eval_set(spec, g, device)
    gt_loss = float(contrastive_loss(ev["pair_u"], ev["pair_up"], precision))
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


# ---------------------------------------------------------------- claims
# Margins set from the science before the quick run (never moved after):
# - "collapses towards 0": InfoNCE's style R^2 at the largest Lambda_2 is <= 0.3
#   and at least 0.3 below its own value at the isotropic control Lambda_2 = 5;
# - "AnInfoNCE keeps it": at the largest Lambda_2 its style R^2 is >= 0.8 x its
#   own value at Lambda_2 = 5 (keeps what the isotropic case gets through this
#   generator and encoder) and exceeds each InfoNCE baseline's by >= 0.3;
# - KNN: "lower" means >= 3 percentage points (several times the sampling
#   error of a 10,000-image test set);
# - Lambda^ "tracks the true ordering": Spearman(Lambda^, Lambda) >= 0.8 at the
#   end of training (the learned max/min ratio is reported beside it, not judged).
COLLAPSED, LOST_DROP, KEPT_FRACTION, KNN_GAP, ORDER_RHO = 0.3, 0.3, 0.8, 0.03, 0.8
BASELINES = tuple(loss for loss in LOSSES if loss != "aninfonce")


def _sweep(df: pd.DataFrame) -> tuple[float, ...]:
    return tuple(sorted(C.select(df, lambda_kind="bimodal")["lam2"].astype(float).unique()))


def _style(df: pd.DataFrame, loss: str, lam2: float) -> float:
    return C.final_value(df, "r2_style", loss=loss, lambda_kind="bimodal", lam2=lam2)


def _infonce_collapses(loss: str):
    def check(df: pd.DataFrame) -> ClaimResult:
        lams = _sweep(df)
        style = [_style(df, loss, l) for l in lams]
        lo, hi = style[0], style[-1]
        return ClaimResult(C.at_most(hi, COLLAPSED) and C.at_least(lo - hi, LOST_DROP),
                           "style R^2 by Lambda_2: " + ", ".join(f"{l:g}: {s:.3f}" for l, s in zip(lams, style)))
    return check


def _anin_keeps(df: pd.DataFrame) -> ClaimResult:
    lams = _sweep(df)
    lo, hi = _style(df, "aninfonce", lams[0]), _style(df, "aninfonce", lams[-1])
    base = {b: _style(df, b, lams[-1]) for b in BASELINES}
    # hi >= KEPT_FRACTION x lo as a difference, so float noise in the product cannot flip a tie
    ok = C.at_least(hi - KEPT_FRACTION * lo, 0.0) and all(C.at_least(hi - v, LOST_DROP) for v in base.values())
    return ClaimResult(ok, f"AnInfoNCE style R^2 {lo:.3f} at Lambda_2 = {lams[0]:g}, {hi:.3f} at {lams[-1]:g}; "
                           + ", ".join(f"{LOSS_LABELS[b]} {v:.3f}" for b, v in base.items()))


def _knn(df: pd.DataFrame, loss: str, lam2: float) -> float:
    return C.final_value(df, "knn_acc", protocol=None, loss=loss, lambda_kind="bimodal", lam2=lam2)


def _knn_lower(loss: str):
    def check(df: pd.DataFrame) -> ClaimResult:
        lams = _sweep(df)
        own_lo, own_hi = _knn(df, loss, lams[0]), _knn(df, loss, lams[-1])
        anin = _knn(df, "aninfonce", lams[-1])
        ok = C.at_least(own_lo - own_hi, KNN_GAP) and C.at_least(anin - own_hi, KNN_GAP)
        return ClaimResult(ok, f"KNN acc {LOSS_LABELS[loss]}: {own_lo:.3f} at Lambda_2 = {lams[0]:g}, {own_hi:.3f} at "
                               f"{lams[-1]:g}; AnInfoNCE at {lams[-1]:g}: {anin:.3f}")
    return check


def _ordering(lo: float, hi: float):
    def check(df: pd.DataFrame) -> ClaimResult:
        # through the Hungarian matching: entry j = Lambda^ of the encoder dim encoding latent j
        lam = C.final_lambda_hat(df, matched=True, loss="aninfonce", lambda_kind="linear", lam1=lo, lam2=hi)
        if len(lam) == 0:
            return ClaimResult(False, "no Lambda^ rows")
        true = np.linspace(lo, hi, len(lam))
        rho = C.spearman(lam, true)
        span = lam.max() / lam.min()
        ok = C.at_least(rho, ORDER_RHO)
        return ClaimResult(ok, f"Spearman = {rho:.3f}; learned max/min = {span:.1f} (true {hi / lo:g}); "
                               f"Lambda^ = {np.round(lam, 1).tolist()}")
    return check


FIG3_CLAIMS = (
    *(Claim(f"fig3A.collapses.{b}", f"{LOSS_LABELS[b]}: style R^2 at the largest Lambda_2 <= {COLLAPSED} and >= {LOST_DROP} "
            f"below its value at Lambda_2 = 5 (held-out R^2)", _infonce_collapses(b)) for b in BASELINES),
    Claim("fig3A.anin-keeps", f"AnInfoNCE: style R^2 at the largest Lambda_2 >= {KEPT_FRACTION} x its value at Lambda_2 = 5, "
          f"and >= {LOST_DROP} above every InfoNCE baseline's", _anin_keeps),
    *(Claim(f"fig3B.knn-lower.{b}", f"KNN accuracy on real MNIST: {LOSS_LABELS[b]} at the largest Lambda_2 is >= "
            f"{KNN_GAP:.0%} below its own at Lambda_2 = 5 and below AnInfoNCE's at the largest Lambda_2", _knn_lower(b))
      for b in BASELINES),
    *(Claim(f"fig3{panel}.lambda-order", f"Lambda linearly spaced {lo:g}..{hi:g}: learned Lambda^ in the true order "
            f"at the end of training (Spearman >= {ORDER_RHO})", _ordering(lo, hi))
      for panel, (lo, hi) in zip("CD", LINEAR_RANGES)),
)


# ---------------------------------------------------------------- figures
def plot_fig3(df: pd.DataFrame, out: Path, profile: str) -> list[Path]:
    if df.empty:
        return no_data(out, "fig3", "no Figure 3 results yet")
    held = df[(df["protocol"].isna()) | (df["protocol"] == HELD_OUT) | df["metric"].str.startswith("knn")]
    bimodal = held[held["lambda_kind"] == "bimodal"]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    _panel_a(axes[0], bimodal)
    _panel_b(axes[1], bimodal)
    for ax, panel, (lo, hi) in zip(axes[2:], "CD", LINEAR_RANGES):
        sel = C.select(df, lambda_kind="linear", lam1=lo, lam2=hi)  # all protocols: the matching rows are same-sample
        _panel_lambda(ax, sel[sel["loss"] == "aninfonce"], lo, hi, panel)
    fig.suptitle(f"Figure 3 — MNIST through a VAE generator, Λ1 = 5 (profile: {profile}; R² held-out)", y=1.02)
    fig.tight_layout()
    paths = save(fig, out, "fig3")
    paths += _plot_training(bimodal, out, profile)
    paths += _plot_vae(df, out, profile)
    return paths


def _legend(ax, loc: str = "lower left", groups: bool = True) -> None:
    handles = [plt.Line2D([], [], color=LOSS_COLORS[l], label=LOSS_LABELS[l]) for l in LOSSES]
    if groups:
        handles += [plt.Line2D([], [], color="gray", ls=GROUP_STYLES[g], label=GROUP_LABELS[g]) for g in GROUP_STYLES]
    ax.legend(handles=handles, fontsize=7, loc=loc)


def _panel_a(ax, df: pd.DataFrame) -> None:
    r2_groups_against(ax, df, LOSSES)
    ax.set(xlabel="Λ2 (concentration of the content dims)", ylabel="R² at the end of training", ylim=(-0.05, 1.05),
           title="A  R² of VAE latents vs Λ2")
    _legend(ax)


def _panel_b(ax, df: pd.DataFrame) -> None:
    last = final_step(df)
    for loss in LOSSES:
        sel = metric(last[last["loss"] == loss], "knn_acc").groupby("lam2")["value"]
        mean, std = sel.mean(), sel.std().fillna(0)
        ax.errorbar(mean.index, mean.values, yerr=std.values, color=LOSS_COLORS[loss], marker="o", ms=4, capsize=2)
    ref = metric(last, "knn_acc_vae_latent")["value"]
    handles_extra = []
    if len(ref):
        ax.axhline(ref.mean(), color="k", ls=":")
        handles_extra.append(plt.Line2D([], [], color="k", ls=":", label="VAE posterior means (reference)"))
    ax.set_xscale("log")
    k = metric(last, "knn_acc")["protocol"].dropna()
    k_txt = k.iloc[0].split(" ")[1] if len(k) else ""
    ax.set(xlabel="Λ2", ylabel=f"KNN accuracy on real MNIST test ({k_txt})", title="B  KNN accuracy (encoder output)")
    handles = [plt.Line2D([], [], color=LOSS_COLORS[l], marker="o", label=LOSS_LABELS[l]) for l in LOSSES] + handles_extra
    ax.legend(handles=handles, fontsize=7, loc="lower left")


def _panel_lambda(ax, df: pd.DataFrame, lo: float, hi: float, panel: str) -> None:
    """Learned Lambda^ per latent dim (solid) and true Lambda (dashed), same colour per dim [caption]."""
    ax.set(xlabel="training step", ylabel="Λ", title=f"{panel}  learned Λ̂, true Λ linearly spaced {lo:g}..{hi:g}")
    n_dims = indexed_metric(df, "lambda_hat")["dim"].nunique()
    plot_lambda_traces(ax, df, np.linspace(lo, hi, n_dims), legend_loc="upper left")


def _plot_training(df: pd.DataFrame, out: Path, profile: str) -> list[Path]:
    """R^2 during training at every Lambda_2: are the losses compared at convergence?"""
    lams = sorted(df["lam2"].astype(float).unique())
    fig, axes = plt.subplots(1, len(lams), figsize=(4.2 * len(lams), 3.6), squeeze=False)
    for ax, lam2 in zip(axes[0], lams):
        sel = C.select(df, lam2=lam2)
        for loss in LOSSES:
            for group in GROUP_STYLES:
                s = metric(sel[sel["loss"] == loss], group).groupby("step")["value"].mean()
                ax.plot(s.index, s.values, color=LOSS_COLORS[loss], ls=GROUP_STYLES[group])
        ax.set(xlabel="training step", ylabel="R² (held-out)", ylim=(-0.05, 1.05), title=f"Λ2 = {lam2:g}")
    _legend(axes[0][0])
    fig.suptitle(f"Figure 3 — R² during training (profile: {profile})", y=1.03)
    fig.tight_layout()
    return save(fig, out, "fig3_training")


def _plot_vae(df: pd.DataFrame, out: Path, profile: str) -> list[Path]:
    """The generator, so a reader can judge it: real test images and their
    reconstructions, prior samples, and samples of the anchor marginal."""
    refs = df["vae_artifact"].dropna().unique() if "vae_artifact" in df else []
    obj = None
    for ref in refs:
        if Path(ref).exists():
            try:
                obj = torch.load(ref, map_location="cpu", weights_only=True)
            except Exception:  # an older or unsafe cache file: keep the figure the run drew  # noqa: BLE001
                continue
            break
    if obj is None:
        # the image grids need the VAE weights (git-ignored cache); keep the figure the run drew
        kept = [out / "fig3_vae.png", out / "fig3_vae.pdf"]
        if all(p.exists() for p in kept):
            return kept
        return no_data(out, "fig3_vae", "VAE artefact not in the results cache (rerun fig3 to rebuild it)")
    g = {k: np.asarray(v) for k, v in obj["grids"].items()}
    stats = obj["stats"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    pairs = np.concatenate([g["real"][:8], g["recon"][:8], g["real"][8:16], g["recon"][8:16]])
    for ax, img, title in zip(axes, (tile(pairs, 8), tile(g["prior"], 8), tile(g["sphere"], 8)),
                              ("real test images (rows 1, 3) and reconstructions (rows 2, 4)",
                               "decoded prior samples z ~ N(0, I)",
                               "decoded anchors z = √10 u, u ~ U(S⁹) (the generator)")):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    cfg = obj["config"]
    fig.suptitle(f"Figure 3's generator: MLP VAE, 10-d latent, hidden {cfg['hidden']}, {cfg['epochs']} epochs "
                 f"(profile: {profile}); test −ELBO {stats['vae/test_neg_elbo']:.1f} nats, KL {stats['vae/test_kl']:.1f}, "
                 f"active dims {stats['vae/active_dims']:.0f}/10", fontsize=10)
    fig.tight_layout()
    return save(fig, out, "fig3_vae")


# ---------------------------------------------------------------- reference
def reference_fig3(df: pd.DataFrame) -> str:
    lams = _sweep(df)
    lines = ["| loss | Λ2 | R² content | R² style | KNN acc |", "|---|---|---|---|---|"]
    for loss in LOSSES:
        for lam2 in lams:
            sel = dict(loss=loss, lambda_kind="bimodal", lam2=lam2)
            lines.append(f"| {LOSS_LABELS[loss]} | {lam2:g} | {C.final_value(df, 'r2_content', **sel):.3f} | "
                         f"{C.final_value(df, 'r2_style', **sel):.3f} | "
                         f"{C.final_value(df, 'knn_acc', protocol=None, **sel):.3f} |")
    vae_knn = C.final_value(df, "knn_acc_vae_latent", protocol=None)
    proto = df.loc[df["metric"] == "knn_acc", "protocol"].dropna()
    lines += ["", f"KNN protocol: {proto.iloc[0] if len(proto) else 'n/a'}. The VAE's own posterior means score "
                  f"{vae_knn:.3f} under it (how much class information the 10-d latent holds).",
              "The paper's Figure 3 numbers are not available as text; its caption says InfoNCE's style R² drops "
              "to 0 and KNN accuracy falls where style is lost [caption]."]
    return "\n".join(lines)


# quick: measured on 2 shared CPU cores (two single-thread workers); paper: an estimate for one GPU
SECONDS_PER_RUN = {"smoke": 3.0, "quick": 50.0, "paper": 100_000 * 0.03}

register(Experiment(
    id="fig3", title="MNIST through a VAE generator: InfoNCE vs AnInfoNCE", paper_ref="Figure 3 (A-D)", source="recon",
    runs=_runs, execute=train_fig3, plot=plot_fig3, claims=FIG3_CLAIMS, seconds_per_run=SECONDS_PER_RUN,
    reference=reference_fig3,
    notes="Pipeline and panels: [caption]. AnInfoNCE and the conditional: [code] (as Figure 2). VAE (MLP, 10-d), "
          "anchor marginal (uniform on the radius-√10 sphere of the VAE latent space, the typical set of its prior), "
          "CNN encoder, KNN protocol (k = 10, Euclidean on the unit-norm encoder output, real MNIST), swept Λ2, "
          "InfoNCE baselines and every profile setting: [recon]. The VAE is trained once per profile and seed "
          "(runner artefact cache) and shown in fig3_vae.",
))
