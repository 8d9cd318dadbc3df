"""The data-parallel entry of the image tables: ``torchrun --nproc_per_node N
-m aninfonce.torchrun cifar10-table --profile paper --data-root /data``.

Every rank plans the same runs, trains each together and evaluates each
together (the trainer in :mod:`aninfonce.trainers.simclr` gathers across
ranks); rank 0 writes the rows."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from . import (
    experiments,  # noqa: F401  (registers every entry)
    runner,
)
from .data import data_root as resolve_data_root
from .registry import select

# How long a rank waits inside one collective (a gather, DDP's all-reduce, the barrier after each
# run) before the job fails. All long work is done by every rank at once (the training steps, each
# rank's shard of the evaluation, then the same probe and recovery fits on every rank), so a wait
# is only the skew between ranks: rank 0 writing a checkpoint or the rows (seconds; a minute or two
# for ResNet-50 and its optimiser state on a slow network filesystem), one rank listing or
# verifying a dataset slower than another on a cold filesystem (ImageNet's 1.28M files: minutes, not
# measured here), loader workers starting. 30 min covers these with a wide margin, where NCCL's default
# (10 min) leaves little for a cold listing; a rank that died or hung still ends the job within half
# an hour rather than holding every GPU until the scheduler's wall-time limit.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)


class _RankContext:
    """A non-zero rank's view of the run context: it reads the checkpoint rank 0
    writes but never writes one."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.device, self.data_root, self.artifact_dir = ctx.device, ctx.data_root, ctx.artifact_dir
        self.train_steps, self.train_seconds = 0, 0.0  # counted by the step loop, reported by rank 0 only

    def load_checkpoint(self):
        return self._ctx.load_checkpoint()

    def save_checkpoint(self, state) -> None:
        pass

    def cached(self, name, build):
        return self._ctx.cached(name, build)

    def progress(self, total: int, initial: int = 0):
        return self._ctx.progress(total, initial)


def main(argv: list[str] | None = None) -> int:
    """Data-parallel execution of an experiment's image runs under torchrun.

    Every rank plans the same runs; all train and evaluate each run together; rank 0
    appends the rows to the results CSV (through the runner) and drops the
    checkpoint. Plot and report afterwards with ``reproduce.py --plot-only``."""
    p = argparse.ArgumentParser(prog="torchrun ... -m aninfonce.torchrun")
    p.add_argument("experiments", nargs="+")
    p.add_argument("--profile", default="paper")
    p.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent.parent / "results")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--backend", default=None, help="nccl on GPUs (default there), gloo on CPU")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(args.backend or ("nccl" if cuda else "gloo"), timeout=PROCESS_GROUP_TIMEOUT)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    rank = dist.get_rank()
    try:
        runs = runner.plan(select(args.experiments), args.profile, 1, args.results_dir)
        for run in runs:
            if run.status == "done":
                continue
            if rank == 0:
                wall = runner.run_one(run, args.profile, device, args.results_dir, resolve_data_root(args.data_root),
                                      show_progress=True)
                print(f"{run.spec.label()} finished in {runner.format_seconds(wall)} on {dist.get_world_size()} ranks")
            else:
                ctx = runner.RunContext(device=device, checkpoint_path=run.checkpoint,
                                        artifact_dir=runner.cache_dir(args.results_dir, args.profile) / run.experiment.id / "artifacts",
                                        data_root=resolve_data_root(args.data_root), show_progress=False)
                run.experiment.execute(run.spec, _RankContext(ctx))
            dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
