"""The rows a cut-off run had logged, read from its checkpoint.

A run writes its rows to results/ only when it finishes; a run stopped early
(a GPU lease ending, a SLURM time limit) leaves them in its checkpoint. This
prints them as one CSV with the run's spec fields, for a look at how far
training got - not as results: the report never reads them.

    python benchmarks/checkpoint_rows.py fig2 --profile paper --results-dir R --out partial.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aninfonce import studies  # noqa: E402,F401  (registers the studies)
from aninfonce.errors import UserError  # noqa: E402
from aninfonce.registry import select  # noqa: E402
from aninfonce.runner import load_checked, plan  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiments", nargs="+")
    p.add_argument("--profile", default="paper")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--results-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    frames = []
    for run in plan(select(a.experiments), a.profile, a.seeds, a.results_dir):
        if not run.checkpoint.exists():
            continue
        state = load_checked(run.checkpoint)  # a damaged or unsafe file: one clear error
        df = pd.DataFrame(state["rows"])
        spec = {k: v for k, v in dataclasses.asdict(run.spec).items() if not isinstance(v, (tuple, list))}
        frames.append(df.assign(run_key=run.spec.key, **spec, checkpoint_step=state["step"]))
        print(f"{run.experiment.id} {run.spec.label()}: step {state['step']:,}")
    if frames:
        pd.concat(frames).to_csv(a.out, index=False)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    try:
        main()
    except UserError as err:  # an unknown entry, a damaged checkpoint: one line, exit 2, as the CLI
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
