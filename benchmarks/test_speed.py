"""Speed of the hot paths, each against a plain, obvious implementation
written here, so that one run prints the speed-up as a ratio.

    flock /tmp/aninfonce-cpu.lock pytest benchmarks/ --benchmark-only

``plain`` is what one writes first (and what this repository computes by
default, bit for bit): the loss from three N x N blocks concatenated into
2N x 2N logits and ``F.cross_entropy``, and Adam's default per-tensor loop.
``fast`` is the opt-in library path: ``contrastive_loss(..., fast=True)`` and
:func:`aninfonce.trainers.synthetic.train_step` with ``SyntheticSpec(fast=True)``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aninfonce import latents, metrics
from aninfonce.losses import contrastive_loss
from aninfonce.nets import PAPER_ENCODER_WIDTHS
from aninfonce.trainers.synthetic import SyntheticSpec, build, positive_pairs, train_step


# ---------------------------------------------------------------- plain versions
def plain_similarity(a, b, lam):
    al = a * lam
    return al @ b.T - 0.5 * (al * a).sum(1, keepdim=True) - 0.5 * ((b * lam) * b).sum(1)[None, :]


def plain_loss(a, b, lam):
    """Three N x N similarities, concatenated logits, self-similarity masked, cross-entropy."""
    n = len(a)
    s_ab, s_aa, s_bb = plain_similarity(a, b, lam), plain_similarity(a, a, lam), plain_similarity(b, b, lam)
    eye = torch.eye(n, dtype=torch.bool)
    low = torch.finfo(a.dtype).min
    logits = torch.cat([torch.cat([s_ab, s_aa.masked_fill(eye, low)], 1),
                        torch.cat([s_ab.T, s_bb.masked_fill(eye, low)], 1)], 0)
    return F.cross_entropy(logits, torch.arange(n).repeat(2))


def plain_step(spec, m, precision):
    z, zp = positive_pairs(spec, spec.batch, precision, m["data_gen"], precision.device)
    h = m["encoder"](m["mixing"](torch.cat([z, zp])))
    loss = plain_loss(h[: spec.batch], h[spec.batch:], m["metric"]())
    m["optimizer"].zero_grad(set_to_none=True)
    loss.backward()
    m["optimizer"].step()
    return loss.detach()


def plain_sample_positive(z, precision, generator, band=latents.REJECTION_BAND):
    """One candidate per waiting anchor per round until every anchor has one."""
    std = precision.rsqrt()
    out = torch.empty_like(z)
    waiting = torch.arange(len(z))
    while len(waiting):
        cand = z[waiting] + torch.randn(len(waiting), z.shape[1], generator=generator) * std
        norm = cand.norm(dim=1)
        ok = (norm - 1).abs() < band
        out[waiting[ok]] = cand[ok] / norm[ok, None]
        waiting = waiting[~ok]
    return out


def plain_r2_and_mcc(h, z):
    """Per-dim least squares with an intercept, per-pair Pearson correlations."""
    x = np.column_stack([h, np.ones(len(h))])
    r2 = []
    for j in range(z.shape[1]):
        coef, *_ = np.linalg.lstsq(x, z[:, j], rcond=None)
        resid = z[:, j] - x @ coef
        r2.append(1 - (resid ** 2).sum() / ((z[:, j] - z[:, j].mean()) ** 2).sum())
    d = z.shape[1]
    corr = np.array([[abs(np.corrcoef(h[:, i], z[:, j])[0, 1]) for j in range(d)] for i in range(h.shape[1])])
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-corr)
    return np.array(r2), corr[rows, cols].sum() / d


# ---------------------------------------------------------------- benchmarks
IMPLS = ["plain", "fast"]  # plain first: the fast run reports the ratio
LOSS_ROUNDS = {256: 30, 1000: 8, 6144: 3}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [256, 1000, 6144])
def test_loss_forward_backward(compare, n, impl):
    g = torch.Generator().manual_seed(0)
    h = F.normalize(torch.randn(2 * n, 10, generator=g), dim=1).requires_grad_()
    theta = (0.1 * torch.randn(10, generator=g)).requires_grad_()
    loss_fn = plain_loss if impl == "plain" else functools.partial(contrastive_loss, fast=True)

    def fwd_bwd():
        lam = F.softplus(theta)
        return torch.autograd.grad(loss_fn(h[:n], h[n:], lam), (h, theta))

    compare(f"loss fwd+bwd N={n} d=10", impl, fwd_bwd, rounds=LOSS_ROUNDS[n])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [1000, 6144])
def test_conditional_sampler(compare, n, impl):
    g = torch.Generator().manual_seed(0)
    z = latents.sample_sphere(n, 10, g)
    precision = latents.lambda_preset("bimodal", 10, 5.0, 25.0)
    sample = plain_sample_positive if impl == "plain" else latents.sample_positive
    compare(f"sampler N={n} (bimodal 5/25)", impl, lambda: sample(z, precision, g), rounds=20)


STEP_CONFIGS = {
    "quick b=256": dict(batch=256, widths=(10, 10, 10)),
    "quick-widths b=1000": dict(batch=1000, widths=(10, 10, 10)),
    "paper b=1000": dict(batch=1000, widths=PAPER_ENCODER_WIDTHS),
    "paper-code b=6144": dict(batch=6144, widths=PAPER_ENCODER_WIDTHS),
}
STEP_ROUNDS = {256: 30, 1000: 20, 6144: 3}


# fast-lowp: the fast path plus the encoder's products in bf16 (matmul="reduced"),
# a numerics change (aninfonce/speed.py), timed beside the float32 paths
STEP_IMPLS = {"plain": {}, "fast": dict(fast=True), "fast-lowp": dict(fast=True, matmul="reduced")}


@pytest.mark.parametrize("impl", list(STEP_IMPLS))
@pytest.mark.parametrize("config", list(STEP_CONFIGS))
def test_synthetic_train_step(compare, config, impl):
    spec = SyntheticSpec(experiment="bench", mixing_draws=500, **STEP_IMPLS[impl], **STEP_CONFIGS[config])
    device = torch.device("cpu")
    m = build(spec, device)
    precision = spec.true_lambda().to(device)
    if impl != "plain":
        from aninfonce.speed import use_fused_adam

        use_fused_adam(m["optimizer"])  # as train_synthetic does
        step = lambda: train_step(spec, m, precision)  # noqa: E731
    else:
        step = lambda: plain_step(spec, m, precision)  # noqa: E731
    compare(f"train step {config}", impl, step, rounds=STEP_ROUNDS[spec.batch])


@pytest.mark.parametrize("impl", IMPLS)
def test_r2_mcc_evaluation(compare, impl):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4096, 10))
    h = np.tanh(z @ rng.standard_normal((10, 10))) + 0.1 * rng.standard_normal((4096, 10))

    def fast():
        return metrics.r2_per_dim(h, z, h, z), metrics.mcc(h, z)

    compare("R2 + MCC, 4096 x d=10", impl, (lambda: plain_r2_and_mcc(h, z)) if impl == "plain" else fast, rounds=10)


def _augment_fns():
    """(plain, fast) callables mapping a uint8 batch (B, 3, 32, 32) to two views per image."""
    from torchvision.transforms import v2

    plain_tf = v2.Compose([
        v2.ToImage(), v2.RandomResizedCrop(32, antialias=True), v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), v2.RandomGrayscale(0.2),
    ])
    to_pil = v2.ToPILImage()

    def plain(batch):  # the textbook path: PIL images through a v2 pipeline
        return [plain_tf(to_pil(img)) for img in batch for _ in range(2)]

    try:
        from aninfonce.data.augment import AUGMENTS, RecordingAugment
    except ImportError:  # the image data module is not there: a v2 pipeline on tensors
        def fast(batch):
            return [plain_tf(img) for img in batch for _ in range(2)]
        return plain, fast, "v2 on uint8 tensors"
    augment = RecordingAugment(AUGMENTS["cifar10"])
    rng = np.random.default_rng(0)

    def fast(batch):  # the project's parameter-recording augmentation
        return [augment(img, rng) for img in batch for _ in range(2)]

    return plain, fast, "aninfonce.data.augment"


@pytest.mark.parametrize("impl", IMPLS)
def test_image_augmentation_per_batch(compare, impl):
    plain, fast, which = _augment_fns()
    batch = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    compare("augment 256 CIFAR images x 2 views", impl, (lambda: plain(batch)) if impl == "plain" else (lambda: fast(batch)),
            rounds=5, pipeline="torchvision v2 on PIL images" if impl == "plain" else which)
