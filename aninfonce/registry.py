"""The registry of the paper's artefacts. An :class:`Experiment` is a small,
declarative unit: its grid of runs per profile, how to execute one run, the
claims it checks, and how to draw its figure from the results table. The
framework (runner, results, report) owns caching, seeding and files."""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .errors import UserError
from .specs import RunSpec

PROFILES = ("smoke", "quick", "paper")
SOURCES = ("code", "caption", "recon")
RULES = ("all", "majority", "pooled")


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    passed: bool | None  # None: the rows the claim needs are absent (reported as NO DATA)
    measured: str  # the numbers behind the verdict, for the report


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement from the paper written as a comparison that can fail. The
    margin lives in ``check`` and in ``text``; it was set before the run."""

    id: str
    text: str
    check: Callable[[pd.DataFrame], ClaimResult]
    profiles: tuple[str, ...] = ("quick", "paper")  # smoke numbers mean nothing
    # how per-seed results become the verdict (aninfonce.verdicts), fixed with the
    # claim before its runs: "all" seeds pass, a "majority" passes, or "pooled"
    # (the check compares across seeds itself, e.g. a trajectory against our range)
    rule: str = "all"
    # the rows of the runs ``check`` reads; None = every run of the entry. The verdict is judged on these
    # rows only -- the check sees nothing else, so the scope cannot leave out a run the check uses -- and
    # the entry's settle rules then wait on these runs only (a claim on Figure 3's linear runs does not
    # wait for its Lambda_2 = 200 runs)
    reads: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    # overrides the entry's ``judged_steps`` for a claim on numbers measured once, after training
    # (Figure 3's KNN accuracy): judged at the last step only; None = the entry's
    judged_steps: str | None = None
    # the claim in a few words, without its margins: the row label of its verdict figure and its entry in
    # the report's headline ("" = the full text)
    short: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"{self.id}: rule must be one of {RULES}")
        if self.judged_steps not in (None, "every", "final"):
            raise ValueError(f"{self.id}: judged_steps must be None, every or final")


@dataclasses.dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    paper_ref: str
    source: str  # where the protocol comes from: code / caption / recon (most uncertain part)
    runs: Callable[[str, int], list[RunSpec]]  # (profile, n_seeds) -> grid
    execute: Callable[[RunSpec, Any], list[dict[str, Any]]]
    plot: Callable[[pd.DataFrame, Path, str], list[Path]]  # (results, out dir, profile) -> files written
    claims: tuple[Claim, ...] = ()
    # estimated seconds per run on 2 CPU cores (or per GPU for image runs), per profile
    seconds_per_run: dict[str, float] = dataclasses.field(default_factory=dict)
    # (run, profile) -> that run's cost as a multiple of seconds_per_run, for grids whose runs differ in
    # cost (an ensemble's number of terms, fig3's longer linear runs); None = every run alike
    run_cost: Callable[[RunSpec, str], float] | None = None
    notes: str = ""  # reconstructed choices, shown by --list and in the report
    reference: Callable[[pd.DataFrame], str] | None = None  # paper-vs-ours Markdown for the report
    # profile -> Markdown of the settings and where each comes from, shown in the report even without results
    recipe: Callable[[str], str] | None = None
    # (data root, profile) -> None if the data is there, else the one-sentence reason
    data_check: Callable[[Path, str], str | None] | None = None
    # how --check holds its smoke rows to the golden file (report.compare_golden):
    # "exact" = within float tolerance; "sanity" = same rows, finite where the
    # golden is, in a plausible range -- for runs whose smoke numbers are chaotic
    # across CPU families (tiny image runs: one test image flips an accuracy)
    golden: str = "exact"
    # claims are judged on seeds whose whole grid has run (verdicts.complete_seeds);
    # False for an entry whose claims judge each run on its own (calibration)
    judge_whole_grids: bool = True
    # a verdict needs settled training (verdicts.moving_runs): every judged run (of those the claim reads)
    # moved this metric by at most settle_tol over its last fifth; None = no such test
    settle_metric: str | None = None
    settle_tol: float = 0.02
    # and, where set, every judged run's sorted learned Lambda^ moved by at most this fraction of its final
    # value (largest over the ranks) over its last fifth (verdicts.moving_lambda); None = no such test
    settle_lambda_rel: float | None = None
    # spec fields the entry sweeps as its variable (e.g. fig4's batch): not a deviation from the authors' setting
    swept: tuple[str, ...] = ()
    # the steps a claim is re-judged at for its verdict over training: "every" logged step, or only the
    # "final" one, for entries whose claims are measured once after training (the image tables' linear
    # probe, KNN and recovery): there a step without those rows is not a failing step; settling then
    # rests on the settle rules above
    judged_steps: str = "every"
    # an entry that trains only when named (a search such as the calibration, whose open candidates would
    # cost hours): `python reproduce.py` with no names skips it on quick and paper, saying so (smoke, CI's
    # plumbing check, runs it); its committed results are read
    run_when_named: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"{self.id}: source must be one of {SOURCES}")
        if self.golden not in ("exact", "sanity"):
            raise ValueError(f"{self.id}: golden must be exact or sanity")
        if self.judged_steps not in ("every", "final"):
            raise ValueError(f"{self.id}: judged_steps must be every or final")

    def grid(self, profile: str, n_seeds: int = 1, speed: str = "exact") -> list[RunSpec]:
        """The runs of ``profile`` with a ``--speed`` preset applied (aninfonce.speed)."""
        from .speed import apply

        return [apply(s, speed) for s in self.runs(profile, n_seeds)]

    def grid_keys(self, profile: str, df, speed: str = "exact") -> set[str]:
        """Run keys of the current grid for every seed up to the largest in the
        results table ``df``: rows of any other key are stale (an older setting)."""
        n_seeds = int(pd.to_numeric(df["seed"]).max()) + 1
        return {s.key for s in self.grid(profile, n_seeds, speed)}

    def seconds(self, spec: RunSpec, profile: str) -> float:
        """The estimated compute of one run of ``profile``."""
        weight = 1.0 if self.run_cost is None else self.run_cost(spec, profile)
        return self.seconds_per_run.get(profile, float("nan")) * weight

    def budget(self, profile: str, n_seeds: int = 1) -> float:
        return sum(self.seconds(spec, profile) for spec in self.runs(profile, n_seeds))


_REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    if exp.id in _REGISTRY:
        raise ValueError(f"experiment {exp.id!r} registered twice")
    _REGISTRY[exp.id] = exp
    return exp


def all_experiments() -> dict[str, Experiment]:
    """Every registered entry. The registry never imports its entries:
    importing ``aninfonce.experiments`` registers them (the CLI, the pool's
    workers and the torchrun entry do so once)."""
    return dict(_REGISTRY)


class UnknownExperiment(UserError, LookupError):
    pass


def select(patterns: list[str] | None) -> list[Experiment]:
    """Experiments whose id matches any glob, in registry order."""
    exps = all_experiments()
    if not patterns:
        return list(exps.values())
    chosen = []
    for pat in patterns:
        hits = [e for e in exps.values() if fnmatch.fnmatchcase(e.id, pat)]
        if not hits:
            raise UnknownExperiment(f"no experiment matches {pat!r}; known: {', '.join(exps)}")
        chosen += [e for e in hits if e not in chosen]
    return chosen
