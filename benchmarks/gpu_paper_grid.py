"""The paper profile's synthetic grid on one lent GPU, a lease at a time.

A lease is ~15 minutes of device time and a paper run (the authors' 100k
steps) ~10 minutes on an H200 with up to 13 runs sharing it, so each lease
trains the next batch of unfinished runs to the end and brings back their
run files; the next session adopts them into ``results/paper/`` and commits
them, and the next lease's plan skips them. Runs finish across leases by
whole runs: checkpoints (10 MB each) cannot travel back and forth within the
device's file limits, so a run cut off by the lease's end is kept only as
rows read from its checkpoint (``--partial``; not results).

Order, most decisive first: fig2 at Lambda_2 = 25, 100, 5 for seeds 0-2,
then fig2-linear (3 seeds), then hardneg (3 seeds), then fig2's other
Lambda_2 values.

    bash benchmarks/gpu_paper_grid.sh OUTDIR [SECONDS] [MAX_RUNS]

Then, here: ``tar -xzf OUT/paper-runs.tgz -C /tmp/lease`` and
``python reproduce.py fig2 fig2-linear hardneg --profile paper --seeds 3
--adopt-from /tmp/lease``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aninfonce import studies  # noqa: E402,F401  (registers the studies)
from aninfonce.executors import run_pool  # noqa: E402
from aninfonce.registry import all_studies  # noqa: E402
from aninfonce.runner import plan, resolve_device  # noqa: E402

SEEDS = 3
FIRST_LAMBDA2 = (25.0, 100.0, 5.0)


def priority(run) -> tuple:
    """Sort key: fig2 at the decisive Lambda_2 values by seed, fig2-linear, hardneg, the rest."""
    spec, exp = run.spec, run.experiment.id
    if exp == "fig2" and float(spec.lam2) in FIRST_LAMBDA2:
        return (0, spec.seed, FIRST_LAMBDA2.index(float(spec.lam2)))
    return ({"fig2-linear": 1, "hardneg": 2}.get(exp, 3), spec.seed, float(getattr(spec, "lam2", 0.0)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results-dir", type=Path, required=True, help="a copy of results/ (the committed paper runs)")
    p.add_argument("--max-runs", type=int, default=12, help="runs this lease trains side by side")
    p.add_argument("--dry-run", action="store_true", help="print the batch this lease would train")
    args = p.parse_args()
    exps = [all_studies()[e] for e in ("fig2", "fig2-linear", "hardneg")]
    todo = sorted((r for r in plan(exps, "paper", SEEDS, args.results_dir) if r.status != "done"), key=priority)
    batch = todo[: args.max_runs]
    print(f"{len(todo)} paper runs left; this lease: {len(batch)}")
    for r in batch:
        what = f"{r.spec.loss}, lam2 {r.spec.lam2:g}" + (f", beta {r.spec.hard_beta:g}" if r.spec.hard_beta else "")
        print(f"  {r.experiment.id} seed {r.spec.seed}: {what} ({r.spec.key}, {r.status})")
    if args.dry_run or not batch:
        return 0
    # one process per run, all on the GPU (CUDA MPS, where it starts, lets them share it); the lease's
    # wrapper (gpu_paper_grid.sh) stops this at its deadline and packs what finished
    run_pool(batch, "paper", resolve_device("cuda"), args.results_dir, None, len(batch), print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
