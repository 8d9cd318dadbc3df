"""`python reproduce.py` — plan, run, plot, report and check the paper's experiments."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from . import (
    analyses,  # noqa: F401  (registers every analysis; the registry never imports them)
    manifest,
    report,
    results,
)
from .data import DATA_ENV, data_root
from .errors import BadInput, UserError
from .frames import of_runs
from .lifecycle import RunStopped
from .reading import read_entries
from .registry import PROFILES, all_analyses, all_studies, select
from .results import format_seconds
from .specs import PRESETS

# The producing half (studies, runner, executors: torch) is imported only by the commands that train or
# plan; --plot-only and --check read results and manifests with the reading half alone.
EXECUTORS = ("local", "pool", "slurm")  # executors.EXECUTORS (a test holds the two equal)

ROOT = Path(__file__).resolve().parent.parent


# Exit codes, shared by every mode (the constants below --check's code use the same numbers)
EPILOG = """\
exit codes:
  0    done; with --check: every claim PASS (and, for smoke, the golden values match)
  1    --check: a claim FAILs or a golden value moved; otherwise a bug (its traceback is printed)
  2    bad input, a missing dataset of a named entry (its entries skipped, the others trained and
       reported), or a damaged or missing run (rerun the same command); with no entry named, an
       entry whose dataset is absent is skipped with a note (exit 0: the default is what runs here)
  3    --check: nothing failed, but a claim is NOT SETTLED or has NO DATA
  4    stopped by SIGTERM (e.g. a scheduler's time limit) after writing a checkpoint: rerun to resume
  130  interrupted (Ctrl-C): finished runs are saved, rerun the same command to resume

examples:
  python reproduce.py --dry-run                      # the quick plan: done / resume / new, compute left
  python reproduce.py fig2 --profile paper --seeds 3 --device cuda   # Figure 2 at the authors' settings
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reproduce.py",
        description="Reproduce Rusak et al., InfoNCE: Identifying the Gap Between Theory and Practice. "
                    "Runs what is not cached, then regenerates figures, tables and figures/<profile>/REPORT.md.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiments", nargs="*", metavar="GLOB", help="experiment ids or globs (default: all); see --list")
    p.add_argument("--profile", default="quick", choices=PROFILES,
                   help="smoke = seconds, CI plumbing; quick = 2 CPU cores, tens of minutes; paper = the authors' settings")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    p.add_argument("--executor", default="pool", choices=EXECUTORS,
                   help="local = this process; pool = parallel single-thread processes (default); slurm = submitit")
    p.add_argument("--jobs", type=int, default=None, help="processes that train (pool) and that draw the figures "
                   "(default: one per CPU core; 1 draws the figures in this process)")
    slurm = p.add_argument_group("--executor slurm only", "submits the runs not yet cached nor in flight as "
                                 "SLURM job arrays, records them and returns; rerun the same command to see what "
                                 "is in flight and gather what finished (docs/CLUSTER.md)")
    slurm.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's)")
    slurm.add_argument("--slurm-gpus-per-run", type=int, default=None,
                       help="GPUs per run (default 1; 0 with --device cpu); an image run with N > 1 trains "
                            "data-parallel, one task per GPU; the other entries take at most 1")
    slurm.add_argument("--slurm-runs-per-gpu", type=int, default=None,
                       help="single-GPU runs (every entry but the image tables) trained side by side on one "
                            "GPU, one process and one CPU each, as one job (default 8)")
    slurm.add_argument("--slurm-cpus-per-task", type=int, default=None, help="CPUs per task (default: the cluster's)")
    slurm.add_argument("--slurm-time-min", type=int, default=None,
                       help="wall-time limit per job in minutes (default 1440)")
    slurm.add_argument("--wait", action="store_true", default=None,
                       help="block until every job ended, then draw the report (small grids, tests)")
    p.add_argument("--speed", default="exact", choices=PRESETS,
                   help="numerics of the synthetic runs: exact (default, the stored results) | fast (fused loss "
                        "and Adam) | fast-lowp (+ bf16/TF32 encoder products) | fast-compile | fast-cudagraphs; "
                        "non-exact presets keep results and figures under speed-<preset>/")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results", metavar="DIR",
                   help="where runs are read and written, one folder per profile (default: results/ of this "
                        "checkout); --plot-only and --check refuse a missing or empty one")
    p.add_argument("--figures-dir", type=Path, default=ROOT / "figures", metavar="DIR",
                   help="where figures, tables and REPORT.md are written, one folder per profile (default: "
                        "figures/ of this checkout); point it elsewhere to regenerate without touching the "
                        "committed ones")
    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help=f"folder holding the datasets (MNIST/raw/, cifar-10-batches-py/, imagenet/); checked "
                        f"before any training, an entry whose dataset is absent is skipped (default: ${DATA_ENV}, "
                        "else ~/.cache/aninfonce/data)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="list experiments with paper reference, source and cost")
    mode.add_argument("--dry-run", action="store_true", help="print the plan (done / resume / new) and the estimated compute")
    mode.add_argument("--plot-only", action="store_true", help="regenerate figures, tables and report from results/ only")
    mode.add_argument("--check", action="store_true",
                      help="evaluate every claim (and, for smoke, the golden values); non-zero exit on a failure")
    mode.add_argument("--update-golden", action="store_true",
                      help="store the current smoke results as the golden values --check compares against")
    mode.add_argument("--adopt-from", type=Path, default=None, metavar="RESULTS_DIR",
                      help="copy the finished runs of the selected experiments' grids from another results folder "
                           "(e.g. a worktree running a long job) into --results-dir, file for file, then stop")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.speed != "exact":  # other numerics: their own results, figures and report
        args.results_dir = args.results_dir / f"speed-{args.speed}"
        args.figures_dir = args.figures_dir / f"speed-{args.speed}"
    return args




SLURM_OPTIONS = ("slurm_partition", "slurm_gpus_per_run", "slurm_cpus_per_task", "slurm_time_min",
                 "slurm_runs_per_gpu", "wait")


def studies_of(patterns: list[str] | None) -> list:
    """The studies of the selected entries (imports the producing half)."""
    from . import studies  # noqa: F401  (registers every study)

    return select(patterns, all_studies())


def slurm_resources(args: argparse.Namespace):
    """The SLURM jobs' resources under ``--executor slurm`` (None otherwise); a
    --slurm-* option with another executor is an error, not silently ignored."""
    given = [f"--{o.replace('_', '-')}" for o in SLURM_OPTIONS if getattr(args, o) is not None]
    if args.executor != "slurm":
        if given:
            raise BadInput(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only with --executor slurm "
                           f"(not --executor {args.executor})")
        return None
    from .executors import SlurmResources

    return SlurmResources(partition=args.slurm_partition, gpus_per_run=args.slurm_gpus_per_run,
                          cpus_per_task=args.slurm_cpus_per_task, device=args.device,
                          **({"time_min": args.slurm_time_min} if args.slurm_time_min is not None else {}),
                          **({"runs_per_gpu": args.slurm_runs_per_gpu} if args.slurm_runs_per_gpu is not None else {}))


def measured_quick(exp, results_dir: Path) -> str:
    """Total wall time of the committed quick runs of ``exp``'s current grid and their count (the CSV's
    provenance; runs of an older setting still in the CSV are left out), or '–' if none were recorded."""

    try:
        df = results.load_experiment(results_dir, "quick", exp.id)
    except results.CorruptResults:
        return "unreadable"
    if df.empty or "wall_seconds" not in df:
        return "–"
    runs = df.drop_duplicates("run_key")
    runs = runs[of_runs(runs, exp.grid_keys("quick", runs))]
    if runs.empty:
        return "–"
    return f"{format_seconds(float(pd.to_numeric(runs['wall_seconds']).sum()))} / {len(runs)}"


def cmd_list(exps, results_dir: Path) -> None:
    studies = {s.id: s for s in studies_of([e.id for e in exps])}
    w_id = max(len(e.id) for e in exps) + 1
    w_ref = max(len(e.paper_ref) for e in exps) + 1
    print(f"{'id':<{w_id}} {'paper':<{w_ref}} {'source':<7} {'smoke':>8} {'quick':>8} {'paper':>8} "
          f"{'measured quick':>15}  title")
    for e in exps:
        s = studies[e.id]
        cost = [format_seconds(s.budget(p)) for p in PROFILES]
        print(f"{e.id:<{w_id}} {e.paper_ref:<{w_ref}} {e.source:<7} {cost[0]:>8} {cost[1]:>8} {cost[2]:>8} "
              f"{measured_quick(s, results_dir):>15}  {e.title}")
    print("\nsmoke / quick / paper = estimated compute for one seed, summed over its runs (quick: single-thread "
          "CPU runs, two at a time on 2 cores, so about half of it in wall time; paper: on one GPU where the entry "
          "says so);\nmeasured quick = summed wall time / number of the runs in results/quick (of the current grid)")


def speed_scope(exps, args) -> list:
    """The experiments a ``--speed`` preset changes (all of them for exact):
    the others would only repeat the default runs under another folder."""
    if args.speed == "exact":
        return list(exps)
    return [e for e in exps if [s.key for s in e.grid(args.profile, 1, args.speed)] != [s.key for s in e.runs(args.profile, 1)]]


def reading_scope(exps, args) -> list:
    """The analyses to read, each bound to its plan in the results folder
    (manifest.bind); under a ``--speed`` preset, those it planned (it plans
    only the experiments whose runs it changes)."""
    bound = manifest.bind(list(exps), args.results_dir, args.profile)
    return bound if args.speed == "exact" else [e for e in bound if e.plan is not None]


def plot_and_report(exps, args) -> tuple[list[report.Verdict], Path]:
    """Every figure and the whole report, whatever subset was run: the report
    is one document per profile (and speed preset) and must not shrink to the
    last glob."""
    exps = reading_scope(all_analyses().values(), args)
    out = args.figures_dir / args.profile
    read = read_entries(exps, args.results_dir, args.profile, args.speed, out=out, jobs=args.jobs)
    frames, verdicts, figures = read.frames, read.verdicts, read.figures
    paper = report.paper_verdicts(exps, args.results_dir, args.speed) if args.profile == "quick" else None
    path = report.write_report(exps, frames, verdicts, figures, out, args.profile, args.speed, paper=paper,
                               paper_results=f"{Path(args.results_dir).name}/paper", written=read.sections)
    return verdicts, path


# --check exit codes (docs/VERDICTS.md): 0 every claim PASS and the golden values match;
# 1 a claim FAILs or a golden value moved; 3 nothing failed, but a claim is
# NOT SETTLED or has no data; 2 a run is damaged or (smoke) missing. Bad input exits 2 (main).
# Training exits 4 when SIGTERM (SLURM's notice before preemption or the time
# limit) stopped it: every run in progress wrote a checkpoint, and the same
# command resumes them; 130 on Ctrl-C.
EXIT_PASS, EXIT_FAIL, EXIT_UNSETTLED = 0, 1, 3
EXIT_INCOMPLETE = 2  # a damaged or missing run: like bad input, the fix is to rerun, not to judge
EXIT_STOPPED = 4  # stopped by SIGTERM, resumable


def cmd_adopt(exps, args) -> None:
    """--adopt-from: each selected experiment's finished runs that belong to its
    current grid (any seed the other folder has), copied and recorded here."""
    source = args.adopt_from / args.profile
    if not source.is_dir():
        raise BadInput(f"--adopt-from: no {args.profile} results in {args.adopt_from}")
    for exp in speed_scope(exps, args):
        src = results.csv_path(args.adopt_from, args.profile, exp.id)
        df, _ = results.read_runs(src)
        if df.empty:
            continue
        added = results.adopt_runs(src, results.csv_path(args.results_dir, args.profile, exp.id),
                                   keys=exp.grid_keys(args.profile, df, args.speed))
        # the plan now covers the adopted seeds, so the reading half reads them
        manifest.write(exp, all_analyses().get(exp.id), args.results_dir, args.profile, args.seeds, args.speed)
        print(f"{exp.id}: adopted {len(added)} finished run(s) from {src}" + (f" ({', '.join(added)})" if added else ""))


def cmd_check(exps, args) -> int:
    exps = reading_scope(exps, args)
    read = read_entries(exps, args.results_dir, args.profile, args.speed, jobs=args.jobs, keep_damaged=True)
    frames, verdicts, damaged = read.frames, read.verdicts, read.damaged
    failed = unsettled = False
    if verdicts:
        print(report.paper_notation(report.verdict_table(verdicts)))
        print(f"\nclaims: {report.summary(verdicts)}")
        failed |= any(v.status == "FAIL" for v in verdicts)
        unsettled = any(v.status in ("NOT SETTLED", "NO DATA") for v in verdicts)
    missing = report.missing_runs(exps, frames, "smoke") if args.profile == "smoke" else []
    if damaged or missing:
        # the golden comparison would blame the values; the runs themselves are what to fix
        print(f"\n{len(damaged) + len(missing)} run(s) damaged or missing; rerun `python reproduce.py --profile "
              f"{args.profile}` to retrain them (never --update-golden, which would store their absence):")
        print("\n".join([f"  {k}: {why}" for k, why in damaged.items()] + [f"  {k}: no rows" for k in missing]))
        print("CHECK INCOMPLETE")
        return EXIT_INCOMPLETE
    if args.profile == "smoke" and args.speed == "exact":  # golden values pin the default numerics only
        sanity = frozenset(e.id for e in exps if e.golden == "sanity")
        problems = report.compare_golden(frames, report.golden_path(args.results_dir, "smoke"), sanity)
        if problems:
            print(f"\n{len(problems)} smoke value(s) differ from the golden file "
                  f"(update with: python reproduce.py --profile smoke --update-golden):")
            print("\n".join("  " + s for s in problems))
            failed = True
        else:
            n = sum(len(df) for df in frames.values())
            n_sane = sum(len(frames[e]) for e in sanity if e in frames)
            print(f"smoke golden values: all {n} rows match ({n - n_sane} within float tolerance, "
                  f"{n_sane} of chaotic tiny image runs within sanity ranges)")
    if failed:
        print("CHECK FAILED")
        return EXIT_FAIL
    if unsettled:
        print("CHECK NOT SETTLED: nothing failed, but some verdicts are not settled or have no data")
        return EXIT_UNSETTLED
    print("CHECK PASSED")
    return EXIT_PASS


def missing_data(exps, args: argparse.Namespace) -> dict[str, str]:
    """Entry id -> the dataset it lacks, for every selected entry whose data
    check fails, found before any training. Each missing dataset is said once,
    naming the entries it stops; those entries are skipped, the others run."""
    root = data_root(args.data_root)
    why = {e.id: e.data_check(root, args.profile) for e in exps if e.data_check}
    by_reason: dict[str, list[str]] = {}
    for eid, reason in why.items():
        if reason:
            by_reason.setdefault(reason, []).append(eid)
    for reason, ids in by_reason.items():
        print(f"skipping {', '.join(ids)}: {reason}")
    return {eid: reason.split(" not found")[0] for reason, ids in by_reason.items() for eid in ids}


def skipped_exit(skipped: dict[str, str], asked: bool = True) -> int:
    """The last line after a run that skipped entries for missing data, naming them: exit 2 where the
    user ``asked`` for entries by name, a note and exit 0 for the default selection (everything this
    machine can run: a dataset it lacks is not an error of the command)."""
    by_data: dict[str, list[str]] = {}
    for eid, dataset in skipped.items():
        by_data.setdefault(dataset, []).append(eid)
    named = "; ".join(f"{dataset} ({', '.join(ids)})" for dataset, ids in by_data.items())
    if not asked:
        print(f"note: not trained for missing data: {named}; their figures and report sections show the results "
              f"already stored (naming an entry, e.g. `python reproduce.py {next(iter(skipped))}`, makes its "
              "missing data an error)")
        return 0
    print(f"error: not trained for missing data: {named}; "
          "their figures and report sections show the results already stored", file=sys.stderr)
    return EXIT_INCOMPLETE


def require_results(args: argparse.Namespace) -> None:
    """--plot-only and --check read results: a missing or empty results folder
    (a mistyped --results-dir or --profile) is an error, never "no results",
    so committed figures are not replaced by placeholders."""
    where = args.results_dir / args.profile
    if not where.is_dir() or not any(where.glob("*.csv")):
        raise BadInput(f"no results in {where} (is --results-dir or --profile mistyped?); nothing to "
                       f"{'plot' if args.plot_only else 'check'}, figures left as they are")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        slurm = slurm_resources(args)
        exps = select(args.experiments, all_analyses())
        if args.list:
            cmd_list(exps, args.results_dir)
            return 0
        if args.plot_only or args.check:
            require_results(args)
        if args.plot_only:
            t0 = time.perf_counter()
            verdicts, path = plot_and_report(exps, args)
            print(f"figures and report regenerated in {time.perf_counter() - t0:.1f} s -> {path}")
            return 0
        if args.check:
            return cmd_check(exps, args)
        # from here on the command trains or plans: the producing half
        from .estimates import format_plan
        from .executors import default_jobs, run_all
        from .runner import plan, resolve_device
        from .slurm import RUNS_PER_GPU

        exps = studies_of(args.experiments)
        if args.adopt_from is not None:
            cmd_adopt(exps, args)
            return 0
        if args.update_golden:
            if args.profile != "smoke" or args.speed != "exact":
                raise BadInput("golden values are kept for the smoke profile with --speed exact only")
            damaged = {}
            frames = report.load_all(exps, args.results_dir, "smoke", damaged=damaged)
            gaps = [*damaged, *report.missing_runs(exps, frames, "smoke")]
            if gaps:
                raise BadInput(f"--update-golden refuses an incomplete smoke grid ({len(gaps)} run(s) damaged or "
                               f"missing, e.g. {gaps[0]}); run `python reproduce.py --profile smoke` first")
            n = report.write_golden(frames, report.golden_path(args.results_dir, "smoke"))
            print(f"wrote {n} golden rows to {report.golden_path(args.results_dir, 'smoke')}")
            return 0
        if slurm is not None and not args.dry_run and shutil.which("sbatch") is None:
            raise BadInput("--executor slurm: no SLURM on this machine (sbatch is not on PATH); run it on the "
                           "cluster's login node, or use --executor pool here")
        device = resolve_device(args.device) if slurm is None else None  # slurm: each job's own
        to_run = speed_scope(exps, args)
        if len(to_run) < len(exps):
            print(f"--speed {args.speed} changes only {', '.join(e.id for e in to_run) or 'no selected experiment'}; "
                  f"not running {', '.join(e.id for e in exps if e not in to_run)} (their default results apply)")
        if not args.experiments:  # "everything": a search trains only when named
            named_only = [e for e in to_run if e.run_when_named and args.profile != "smoke"]  # smoke: CI's plumbing
            for e in named_only:
                print(f"not training {e.id}: it trains only when named (`python reproduce.py {e.id} "
                      f"--profile {args.profile} --seeds 3`); its committed results are read")
            to_run = [e for e in to_run if e not in named_only]
        skipped = missing_data(to_run, args)
        to_run = [e for e in to_run if e.id not in skipped]
        runs = plan(to_run, args.profile, args.seeds, args.results_dir, args.speed, dry_run=args.dry_run)
        jobs = 1 if args.executor == "local" else args.jobs or default_jobs()
        print(format_plan(runs, args.profile, args.results_dir, jobs, gpu=args.profile == "paper" and args.device != "cpu",
                          runs_per_gpu=args.slurm_runs_per_gpu or RUNS_PER_GPU))
        if args.dry_run:
            stale = report.stale_runs(speed_scope(exps, args), args.results_dir, args.profile, args.speed)
            if stale:
                print(f"stale runs (spec no longer in the {args.profile} grid; kept on disk, never read): "
                      + ", ".join(f"{n} in {eid}" for eid, n in stale.items()))
            return 0
        if skipped and not to_run:  # every selected entry lacks its data: nothing changed, nothing to redraw
            return skipped_exit(skipped, bool(args.experiments))
        results.check_writable(args.results_dir / args.profile)
        t0 = time.perf_counter()
        in_flight = run_all(args.executor, runs, args.profile, device, args.results_dir, data_root(args.data_root),
                            args.jobs, slurm=slurm, wait=bool(args.wait))
        if in_flight:  # figures wait for the grid; --plot-only draws what is there now
            print(f"figures and report not regenerated while {in_flight} runs are in flight (`python reproduce.py "
                  f"--profile {args.profile} --plot-only` draws what has finished)")
            return 0
        verdicts, path = plot_and_report(exps, args)
        print(f"done in {format_seconds(time.perf_counter() - t0)}: results in {args.results_dir / args.profile}, "
              f"figures and report in {path.parent} (claims: {report.summary(verdicts)}; details: {path})")
        return skipped_exit(skipped, bool(args.experiments)) if skipped else 0
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except RunStopped as err:
        print(f"stopped by SIGTERM ({err}); rerun the same command to resume", file=sys.stderr)
        return EXIT_STOPPED
    except (UserError, PermissionError) as err:  # one clear line, no traceback; anything else is a bug
        print(f"error: {err}", file=sys.stderr)
        return 2
