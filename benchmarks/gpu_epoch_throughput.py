"""Throughput of a paper-profile epoch of the image tables, on whatever device is here.

Measures separately (a) the training step (model + (An)InfoNCE + SGD/Adam,
bf16 autocast on CUDA, channels-last) on random uint8 batches already on the
device - with the spec's ``augment_on="device"`` (the paper profiles) the
step includes the batched photometric half of the augmentations
(data.device_augment) - and (b) the loader (DataLoader workers producing two
recorded views, or with ``augment_on="device"`` two recorded crops, per
image) on random images of the dataset's stored size; an epoch takes about
max(a, b), and ``kept_up`` = min(1, b / a) is the fraction of the step's
appetite the loader feeds. Prints a table and writes JSON, from which
``Study.seconds_per_run['paper']`` in aninfonce/studies/tables.py
can be updated.

    python benchmarks/gpu_epoch_throughput.py                      # both entries, paper settings, GPU
    python benchmarks/gpu_epoch_throughput.py --tiny --device cpu  # seconds on a CPU: checks the script

Measured: one H200, 2026-11-29 (benchmarks/measured/h200-2026-11-29/), 8 workers:
    CIFAR10 step 18,261 pairs/s, loader 27,836, kept up 100 %, 2.7 s an epoch;
    ImageNet step 2,274 pairs/s, loader 11,817 (no JPEG decode in it), 564 s an epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aninfonce.data import images as D  # noqa: E402
from aninfonce.data.augment import draw_params  # noqa: E402
from aninfonce.data.device_augment import photometric  # noqa: E402
from aninfonce.data import views as V  # noqa: E402
from aninfonce.analyses.recipes import PROFILE_SETTINGS  # noqa: E402
from aninfonce.studies.tables import SECONDS_PER_RUN  # noqa: E402
from aninfonce.trainers.simclr import ImageSSLSpec  # noqa: E402
from aninfonce.trainers.simclr.distributed import image_ssl_loss  # noqa: E402
from aninfonce.trainers.simclr.model import build_model  # noqa: E402
from aninfonce.trainers.simclr.train import autocast  # noqa: E402

# images per epoch and the stored size of a source image
DATASET_SIZE = {"cifar10": (50_000, 32), "imagenet": (1_281_167, 400), "mnist": (60_000, 28)}


def spec_for(entry: str, tiny: bool) -> ImageSSLSpec:
    s = dict(PROFILE_SETTINGS[entry]["paper"])
    if tiny:  # a CPU-sized check of the same code path
        s.update(batch=16, image_size=32 if entry == "imagenet-table" else 16, proj_hidden=64)
    return ImageSSLSpec(experiment=entry, loss="aninfonce", **s)


def time_steps(spec: ImageSSLSpec, device: torch.device, steps: int, warmup: int) -> float:
    """Training pairs per second of the step alone."""
    cfg = spec.augment_config()
    channels = 1 if spec.dataset == "mnist" else 3
    model = build_model(spec, channels).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model.train()
    params = [p for n, p in model.named_parameters() if not n.startswith("metric.")]
    sgd = torch.optim.SGD(params, lr=spec.lr * spec.batch / 256, momentum=spec.momentum, weight_decay=spec.weight_decay)
    adam = torch.optim.Adam(model.metric.parameters(), lr=spec.lr_metric)
    x = torch.randint(0, 256, (2 * spec.batch, channels, cfg.size, cfg.size), dtype=torch.uint8, device=device)
    rng = np.random.default_rng(0)
    params = torch.from_numpy(np.stack([draw_params(cfg, cfg.size, cfg.size, rng) for _ in range(2 * spec.batch)]))
    params = params.to(device)

    def step():
        v = photometric(x, params, cfg) if spec.augment_on == "device" else x
        if device.type == "cuda":
            v = v.contiguous(memory_format=torch.channels_last)
        with autocast(spec, device):
            _, z = model(v)
        loss = image_ssl_loss(model, z[: spec.batch], z[spec.batch:])
        sgd.zero_grad(set_to_none=True)
        adam.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
        adam.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * spec.batch / (time.perf_counter() - t0)


def time_augmentation(spec: ImageSSLSpec, workers: int, batches: int) -> float:
    """Pairs per second the loader delivers (two recorded views per image)."""
    _, stored = DATASET_SIZE[spec.dataset]
    channels = 1 if spec.dataset == "mnist" else 3
    n = spec.batch * (batches + 1)
    src = D.TensorSource(spec.dataset, torch.randint(0, 256, (min(n, 4096), channels, stored, stored), dtype=torch.uint8),
                         torch.zeros(min(n, 4096), dtype=torch.long))
    ds = V.TwoViewDataset(src, spec.augment_config(), seed=0, crop_only=spec.augment_on == "device")
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=n)
    loader = torch.utils.data.DataLoader(ds, batch_size=spec.batch, sampler=sampler, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is not part of the steady state
    t0 = time.perf_counter()
    count = 0
    for _ in range(batches):
        count += len(next(it)[0])
    return count / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--entries", nargs="+", default=["cifar10-table", "imagenet-table"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--workers", type=int, default=V.default_workers())
    p.add_argument("--aug-batches", type=int, default=10)
    p.add_argument("--tiny", action="store_true", help="CPU-sized batch and images: checks the script, measures nothing")
    p.add_argument("--out", type=Path, default=None, help="JSON file for the measurements")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out = []
    for entry in args.entries:
        spec = spec_for(entry, args.tiny)
        n_images, _ = DATASET_SIZE[spec.dataset]
        step_rate = time_steps(spec, device, args.steps, args.warmup)
        aug_rate = time_augmentation(spec, args.workers, args.aug_batches)
        epoch_s = n_images / min(step_rate, aug_rate)
        row = {
            "entry": entry, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "tiny": args.tiny, "batch": spec.batch, "image_size": spec.augment_config().size, "arch": spec.arch,
            "amp_bf16": spec.amp and device.type == "cuda", "loader_workers": args.workers,
            "step_pairs_per_s": round(step_rate, 1), "augment_pairs_per_s": round(aug_rate, 1),
            "augment_on": spec.augment_on, "kept_up": round(min(1.0, aug_rate / step_rate), 3),
            "epoch_s": round(epoch_s, 1), "epochs": spec.epochs, "run_gpu_hours": round(epoch_s * spec.epochs / 3600, 2),
            "registry_estimate_hours": round(SECONDS_PER_RUN[entry]["paper"] / 3600, 2),
            "spec": {k: v for k, v in dataclasses.asdict(spec).items() if k != "experiment"},
        }
        out.append(row)
        print(f"{entry:<16} {row['device']:<24} step {step_rate:9.1f} pairs/s   augment ({args.workers} workers) "
              f"{aug_rate:9.1f} pairs/s   kept up {row['kept_up']:.0%}   epoch {epoch_s:8.1f} s   run ({spec.epochs} epochs) "
              f"{row['run_gpu_hours']:.2f} h   (registry estimate {row['registry_estimate_hours']:.2f} h)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
