"""Do the ``--speed`` presets reproduce the default numbers? Final held-out
R^2 (content / style), MCC and claim verdicts of one experiment under each
preset whose results exist, beside the default (``exact``) results.

    python benchmarks/compare_presets.py fig2 --profile quick

Runs are paired by grid point and seed (the spec without its speed fields), so the
table shows, per grid point, how far each preset lands from ``exact``; a
preset whose spread is no larger than ``fast``'s (the same maths, other
float rounding) changes nothing beyond what rounding already changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aninfonce import analyses, manifest, report, studies  # noqa: E402,F401  (registers every study and analysis)
from aninfonce.frames import final_step  # noqa: E402
from aninfonce.metrics import HELD_OUT  # noqa: E402
from aninfonce.registry import all_analyses, select  # noqa: E402
from aninfonce.speed import PRESETS  # noqa: E402

METRICS = {"r2_content": HELD_OUT, "r2_style": HELD_OUT, "mcc": None}


def final_metrics(df: pd.DataFrame, point_columns: list[str]) -> pd.DataFrame:
    last = final_step(df)
    out = []
    for name, protocol in METRICS.items():
        sel = last[last["metric"] == name]
        if protocol is not None:
            sel = sel[sel["protocol"] == protocol]
        out.append(sel.set_index(point_columns)["value"].rename(name))
    return pd.concat(out, axis=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment")
    p.add_argument("--profile", default="quick")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results")
    args = p.parse_args(argv)
    [exp] = select([args.experiment])
    speed_fields = ("fast", "matmul", "compile")
    frames, verdicts = {}, {}
    for preset in PRESETS:
        where = args.results_dir if preset == "exact" else args.results_dir / f"speed-{preset}"
        # read as --plot-only reads it: the analysis bound to the plan its runs were made under
        reading = manifest.bind([all_analyses()[exp.id]], where, args.profile)
        df = report.load_all(reading, where, args.profile, preset)[exp.id]
        if df.empty:
            continue
        frames[preset] = df
        verdicts[preset] = {v.claim: v.passed for v in report.evaluate_claims(reading, {exp.id: df}, args.profile)}
    if "exact" not in frames or len(frames) < 2:
        print(f"need the default results and at least one preset's for {exp.id} ({args.profile}); have {list(frames)}")
        return 1
    spec_cols = [c for c in frames["exact"].columns if c in {f for s in exp.runs(args.profile, 1) for f in s.fields()}]
    point = [c for c in spec_cols if c not in (*speed_fields, "seed") and frames["exact"][c].astype(str).nunique() > 1]
    point.append("seed")  # a grid point is paired seed by seed
    base = final_metrics(frames["exact"], point)
    print(f"# {exp.id} ({args.profile}): final metrics per grid point, preset minus exact\n")
    print("| preset | runs | " + " | ".join(f"max abs diff {m}" for m in METRICS) + " | median abs diff (all) "
          "| claims agreeing with exact |")
    print("|---|---|" + "---|" * len(METRICS) + "---|---|")
    for preset, df in frames.items():
        if preset == "exact":
            continue
        diff = (final_metrics(df, point) - base).dropna(how="all")
        agree = sum(verdicts[preset].get(c) == v for c, v in verdicts["exact"].items())
        cells = [f"{np.nanmax(np.abs(diff[m])):.3f}" if diff[m].notna().any() else "–" for m in METRICS]
        print(f"| {preset} | {len(diff)} | " + " | ".join(cells) +
              f" | {np.nanmedian(np.abs(diff.to_numpy())):.4f} | {agree} / {len(verdicts['exact'])} |")
    flips = {c: {p: verdicts[p].get(c) for p in verdicts} for c in verdicts["exact"]
             if len({verdicts[p].get(c) for p in verdicts}) > 1}
    if flips:
        print("\nclaims whose verdict differs between presets:")
        for c, by in flips.items():
            print(f"  {c}: " + ", ".join(f"{p} {'PASS' if v else 'FAIL' if v is False else 'n/a'}" for p, v in by.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
