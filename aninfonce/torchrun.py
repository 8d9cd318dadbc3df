"""The data-parallel entry of the image tables: ``torchrun --nproc_per_node N
-m aninfonce.torchrun cifar10-table --profile paper --data-root /data``, and the
per-rank body (:func:`run_ranks`) that a multi-GPU SLURM job's tasks run too
(``reproduce.py ... --executor slurm --slurm-gpus-per-run N``).

Every rank plans the same runs, trains each together and evaluates each
together (the trainer in :mod:`aninfonce.trainers.simclr` gathers across
ranks); rank 0 writes the rows."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from . import (
    studies,  # noqa: F401  (registers every study)
    runner,
)
from .data import DATA_ENV
from .data import data_root as resolve_data_root
from .errors import BadInput, UserError
from .registry import PROFILES, select

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
    """A non-zero rank's view of the run context (the step loop's
    :class:`~aninfonce.trainers.loop.RunContext`): it reads the checkpoint rank 0
    writes but never writes one, and its step counts and timing stay its own
    (rank 0 reports the run's)."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.device, self.data_root, self.artifact_dir = ctx.device, ctx.data_root, ctx.artifact_dir
        self.checkpoint_path = ctx.checkpoint_path
        self.train_steps, self.train_seconds = 0, 0.0
        self.interval = None

    def load_checkpoint(self):
        return self._ctx.load_checkpoint()

    def save_checkpoint(self, state) -> None:
        pass

    def cached(self, name, build):
        return self._ctx.cached(name, build)

    def progress(self, total: int, initial: int = 0):
        return self._ctx.progress(total, initial)

    def timing(self) -> dict[str, float]:
        return {}  # nothing to store: this rank writes no checkpoint

    def restore_timing(self, timing) -> None:
        pass  # the run's totals are rank 0's


def _local_device(device: str, local_rank: int) -> torch.device:
    """This rank's device. ``auto``: a GPU where torch sees one. A rank may see every GPU of its node
    (torchrun; SLURM's ``--gpus-per-node``: index by the local rank) or only its own (SLURM binding
    one GPU per task: index 0); ``local_rank % count`` is right in both cases."""
    if device not in ("auto", "cpu", "cuda"):
        raise BadInput(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BadInput("device cuda was asked for but this rank sees no CUDA device")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def run_ranks(runs: list[runner.PlannedRun], profile: str, results_dir: Path, data_root: Path | None,
              device: str = "auto", backend: str | None = None, show_progress: bool = True,
              log: Callable[[str], None] = print) -> float:
    """The per-rank body of a data-parallel job, the same under torchrun and in each task of a
    multi-GPU submitit job (aninfonce.jobs.rank_job): join the process group the environment describes
    (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK: torchrun sets them, a submitit task
    exports them from SLURM's), then train and evaluate every run not done together with the other
    ranks. Rank 0 appends the rows (through the runner) and drops the checkpoint; the others read the
    checkpoint it writes. Returns rank 0's summed wall seconds (0 on the other ranks)."""
    local_device = _local_device(device, int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend or ("nccl" if local_device.type == "cuda" else "gloo"),
                            timeout=PROCESS_GROUP_TIMEOUT)
    rank, total = dist.get_rank(), 0.0
    root = resolve_data_root(data_root)
    try:
        for run in runs:
            if run.status == "done":
                continue
            if rank == 0:
                wall = runner.run_one(run, profile, local_device, results_dir, root, show_progress=show_progress)
                total += wall
                log(f"{run.spec.label()} finished in {runner.format_seconds(wall)} on {dist.get_world_size()} ranks")
            else:
                artifacts = runner.cache_dir(results_dir, profile) / run.experiment.id / "artifacts"
                ctx = runner.RunnerContext(device=local_device, checkpoint_path=run.checkpoint,
                                           artifact_dir=artifacts, data_root=root, show_progress=False)
                run.experiment.execute(run.spec, _RankContext(ctx))
            dist.barrier()
    finally:
        dist.destroy_process_group()
    return total


def _in_torchrun() -> bool:
    """Whether the environment describes a process group (torchrun, or a SLURM task that exported it)."""
    return all(os.environ.get(v) for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def main(argv: list[str] | None = None) -> int:
    """Data-parallel execution of an experiment's image runs under torchrun: every
    rank plans the same runs and runs :func:`run_ranks`. Plot and report
    afterwards with ``reproduce.py --plot-only``. Bad input is one line and exit 2."""
    p = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m aninfonce.torchrun",
        description="Train the image tables' runs data-parallel, one process per GPU, under torchrun: every rank "
                    "plans the same runs, trains and evaluates each together, and rank 0 writes the rows to "
                    "--results-dir. Draw the figures and report afterwards with `python reproduce.py --plot-only`.",
        epilog="exit codes: 0 done, 2 bad input or a missing dataset, 130 interrupted (rerun to resume)\n\n"
               "example:\n  torchrun --nproc_per_node 4 -m aninfonce.torchrun cifar10-table --profile paper "
               "--seeds 3 --data-root /data",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="+", metavar="GLOB",
                   help="experiment ids or globs: the image tables (cifar10-table, imagenet-table, mnist-standin-table)")
    p.add_argument("--profile", default="paper", choices=PROFILES, help="settings to train at (default paper)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    p.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent.parent / "results",
                   metavar="DIR", help="where the runs are written (default: results/ of this checkout)")
    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help=f"folder holding the datasets (default: ${DATA_ENV}, else ~/.cache/aninfonce/data)")
    p.add_argument("--backend", default=None, choices=("nccl", "gloo"),
                   help="process-group backend (default: nccl on GPUs, gloo on CPU)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto | cpu | cuda (default auto)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    try:
        if not _in_torchrun():
            raise BadInput("no process group in the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): "
                           "start this entry with `torchrun --nproc_per_node N -m aninfonce.torchrun ...`")
        exps = select(args.experiments)
        root = resolve_data_root(args.data_root)
        for e in exps:
            reason = e.data_check(root, args.profile) if e.data_check else None
            if reason:
                raise BadInput(f"{e.id}: {reason}")
        runs = runner.plan(exps, args.profile, args.seeds, args.results_dir)
        run_ranks(runs, args.profile, args.results_dir, args.data_root, args.device, args.backend)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except (UserError, PermissionError) as err:  # one clear line, no traceback; anything else is a bug
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
