"""Steps per second of the synthetic training step under each ``--speed``
preset, and the rejection sampler's rounds, on whatever device is here.

One short script for a GPU session: it times ``synthetic.train_step`` (the
function every synthetic run calls) for the paper encoder at the paper's
batch 1000 and the authors' code default 6144, under each preset of
aninfonce/speed.py, with one device sync per timed block (the step itself
has none but the sampler's). Prints a table and writes JSON; the numbers
feed ``SECONDS_PER_RUN`` of the synthetic entries (paper profile) and
docs/SPEED.md.

    python benchmarks/gpu_synthetic_step.py                        # GPU, all presets, ~3 min with compilation
    python benchmarks/gpu_synthetic_step.py --tiny --device cpu    # seconds: checks the script

Measured: one H200, 2026-11-29 (benchmarks/measured/h200-2026-11-29/): batch 1000,
    exact 7.5 ms, fast 5.9 ms a step; sampler 7.7 ms (k = 8) vs 1.7 ms (adaptive).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aninfonce import latents, speed  # noqa: E402
from aninfonce.trainers.synthetic import SyntheticSpec, build, train_step  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(spec: SyntheticSpec, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per step of train_step, after ``warmup`` steps (compilation included there)."""
    m = build(spec, device)
    if spec.fast:
        speed.use_fused_adam(m["optimizer"])
    precision = spec.true_lambda().to(device)
    for _ in range(warmup):
        train_step(spec, m, precision)
    _sync(device)
    t0 = time.perf_counter()
    loss = torch.zeros((), device=device)
    for _ in range(steps):
        loss += train_step(spec, m, precision)
    _sync(device)
    elapsed = time.perf_counter() - t0
    if not torch.isfinite(loss):
        raise RuntimeError(f"{spec.label()}: the loss is not finite")
    return elapsed / steps


def time_sampler(n: int, adaptive: bool, device: torch.device, calls: int) -> tuple[float, float]:
    """(seconds per call, mean rounds per call) of the positive-pair sampler, bimodal 5 / 25."""
    g = torch.Generator(device=device).manual_seed(0)
    z = latents.sample_sphere(n, 10, g, device)
    lam = latents.lambda_preset("bimodal", 10, 5.0, 25.0).to(device)
    rounds = []
    latents.sample_positive(z, lam, g, adaptive=adaptive)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        stats: dict = {}
        latents.sample_positive(z, lam, g, adaptive=adaptive, stats=stats)
        rounds.append(stats["rounds"])
    _sync(device)
    return (time.perf_counter() - t0) / calls, sum(rounds) / len(rounds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--presets", default=",".join(speed.PRESETS), help="comma-separated presets of aninfonce/speed.py")
    p.add_argument("--batches", default="1000,6144")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--tiny", action="store_true", help="small encoder and batches, few steps: a check of the script")
    p.add_argument("--out", type=Path, default=Path("gpu_synthetic_step.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    presets = [s for s in args.presets.split(",") if s]
    batches = [int(b) for b in args.batches.split(",")]
    base = dict(experiment="bench", mixing_draws=500)
    if args.tiny:
        base.update(widths=(4, 4))
        batches, args.steps, args.warmup = [64], 3, 1
    rows = []
    print(f"device {device}, torch {torch.__version__}")
    print(f"{'preset':<17} {'batch':>6} {'ms/step':>9} {'steps/s':>8}")
    for batch in batches:
        for preset in presets:
            spec = speed.apply(SyntheticSpec(**base, batch=batch), preset)
            try:
                sec = time_steps(spec, device, args.warmup, args.steps)
            except (RuntimeError, ValueError) as err:  # e.g. no bf16 on this CPU, no compiler
                print(f"{preset:<17} {batch:>6}   skipped: {str(err).splitlines()[0][:80]}")
                rows.append({"preset": preset, "batch": batch, "error": str(err).splitlines()[0]})
                continue
            print(f"{preset:<17} {batch:>6} {sec * 1e3:>9.2f} {1 / sec:>8.1f}")
            rows.append({"preset": preset, "batch": batch, "seconds_per_step": sec})
    print(f"\n{'sampler':<17} {'batch':>6} {'ms/call':>9} {'rounds':>8}")
    for batch in batches:
        for adaptive in (False, True):
            sec, rounds = time_sampler(batch, adaptive, device, calls=args.steps)
            name = "adaptive rounds" if adaptive else "fixed k=8"
            print(f"{name:<17} {batch:>6} {sec * 1e3:>9.2f} {rounds:>8.1f}")
            rows.append({"sampler": name, "batch": batch, "seconds_per_call": sec, "rounds": rounds})
    info = {"device": str(device), "torch": torch.__version__,
            "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "rows": rows}
    args.out.write_text(json.dumps(info, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
