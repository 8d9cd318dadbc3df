"""The registry of the paper's artefacts. Each entry is two small,
declarative units that share an id: a :class:`Study` (the producing half: its
grid of runs per profile, how to execute one run, its cost and data) and an
:class:`Analysis` (the reading half: the claims it checks, how to draw its
figure and tables from the results table and the plan's manifest). The
framework (runner, results, report) owns caching, seeding and files.

Nothing here imports torch, and the registry never imports its entries:
``aninfonce.analyses`` registers the analyses (no torch), ``aninfonce.studies``
the studies."""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from .errors import UserError
from .specs import RunSpec

if TYPE_CHECKING:
    from .manifest import Plan

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
    # True when the check's verdict reads each run's end state only: the rows ``frames.final_step`` keeps,
    # after selecting whole runs by their settings. Over training it is then judged on the end states of
    # the rows up to each step, built once per step for every claim reading them (``aninfonce.cuts`` says
    # why the numbers are the same). Its ``measured`` text may read more (the loss at step 0, say): the
    # report takes that from all the rows, at the last step.
    end_states: bool = False
    # the check over training in one pass, for a check that reads history (a trajectory): ``over_steps(rows)``
    # returns a function of a step s whose answer equals ``check(rows[rows["step"] <= s])``
    over_steps: Callable[[pd.DataFrame], Callable[[float], ClaimResult]] | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"{self.id}: rule must be one of {RULES}")
        if self.end_states and self.over_steps is not None:
            raise ValueError(f"{self.id}: a claim is judged on run end states or by over_steps, not both")
        if self.judged_steps not in (None, "every", "final"):
            raise ValueError(f"{self.id}: judged_steps must be None, every or final")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """How an entry is read: its claims and their judging policy, its figure,
    its reference table and its report text. It reads the rows of the runs its
    plan lists (``plan``: the manifest the producing half wrote, bound by
    :func:`aninfonce.manifest.bind`), never the code that produced them."""

    id: str
    title: str
    paper_ref: str
    source: str  # where the protocol comes from: code / caption / recon (most uncertain part)
    # (results, out dir, profile, the entry's run folder) -> files written
    plot: Callable[..., list[Path]]
    claims: tuple[Claim, ...] = ()
    notes: str = ""  # reconstructed choices, shown by --list and in the report
    reference: Callable[[pd.DataFrame], str] | None = None  # paper-vs-ours Markdown for the report
    # profile -> Markdown of the settings and where each comes from, shown in the report even without results
    recipe: Callable[[str], str] | None = None
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
    # the steps a claim is re-judged at for its verdict over training: "every" logged step, or only the
    # "final" one, for entries whose claims are measured once after training (the image tables' linear
    # probe, KNN and recovery): there a step without those rows is not a failing step; settling then
    # rests on the settle rules above
    judged_steps: str = "every"
    # the report's "Lost directions" of this entry's rows ("" = nothing to say); None = no such section
    lost: Callable[[pd.DataFrame], str] | None = None
    # what the report says after the plan's deviations from the authors' model and optimiser; "" = the
    # entry's deviations are its point (a search) and are not listed
    deviations_note: str = ""
    # (verdicts, profile) -> a line for the report's "How the claims are judged" ("" = none)
    guide: Callable[[list, str], str] | None = None
    plan: "Plan | None" = None  # bound by manifest.bind; None = never planned in this results folder

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"{self.id}: source must be one of {SOURCES}")
        if self.golden not in ("exact", "sanity"):
            raise ValueError(f"{self.id}: golden must be exact or sanity")
        if self.judged_steps not in ("every", "final"):
            raise ValueError(f"{self.id}: judged_steps must be every or final")

    def policy(self) -> dict[str, Any]:
        """The settle and judging policy, as the plan's manifest records it."""
        return {"judge_whole_grids": self.judge_whole_grids, "judged_steps": self.judged_steps,
                "settle_metric": self.settle_metric, "settle_tol": self.settle_tol,
                "settle_lambda_rel": self.settle_lambda_rel, "golden": self.golden,
                "claims": {c.id: {"rule": c.rule, "judged_steps": c.judged_steps or self.judged_steps,
                                  "profiles": list(c.profiles)} for c in self.claims}}

    def grid(self, profile: str = "", n_seeds: int = 0, speed: str = "") -> list:
        """The planned runs (``seed``, ``key``) of every seed the manifest lists
        (the arguments are the producing side's; the manifest already fixed them)."""
        return [] if self.plan is None else self.plan.grid()

    def grid_keys(self, profile: str = "", df=None, speed: str = "") -> set[str]:
        """Run keys of the plan: rows of any other key are stale (an older setting, or a seed never planned)."""
        return set() if self.plan is None else self.plan.keys()


@dataclasses.dataclass(frozen=True)
class Study:
    """What an entry runs: its grid per profile, the trainer of one run (a
    module-level function, so it pickles into a worker), its cost and data."""

    id: str
    runs: Callable[[str, int], list[RunSpec]]  # (profile, n_seeds) -> grid
    execute: Callable[[RunSpec, Any], list[dict[str, Any]]]
    # estimated seconds per run on 2 CPU cores (or per GPU for image runs), per profile
    seconds_per_run: dict[str, float] = dataclasses.field(default_factory=dict)
    # (run, profile) -> that run's cost as a multiple of seconds_per_run, for grids whose runs differ in
    # cost (an ensemble's number of terms, fig3's longer linear runs); None = every run alike
    run_cost: Callable[[RunSpec, str], float] | None = None
    # (data root, profile) -> None if the data is there, else the one-sentence reason
    data_check: Callable[[Path, str], str | None] | None = None
    # spec fields the entry sweeps as its variable (e.g. fig4's batch): not a deviation from the authors' setting
    swept: tuple[str, ...] = ()
    # an entry that trains only when named (a search such as the calibration, whose open candidates would
    # cost hours): `python reproduce.py` with no names skips it on quick and paper, saying so (smoke, CI's
    # plumbing check, runs it); its committed results are read
    run_when_named: bool = False

    def grid(self, profile: str, n_seeds: int = 1, speed: str = "exact") -> list[RunSpec]:
        """The runs of ``profile`` with a ``--speed`` preset applied (aninfonce.speed)."""
        from .speed import apply  # torch: the producing half's

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


_STUDIES: dict[str, Study] = {}
_ANALYSES: dict[str, Analysis] = {}


def register(entry: Study | Analysis) -> Study | Analysis:
    table = _STUDIES if isinstance(entry, Study) else _ANALYSES
    if entry.id in table:
        raise ValueError(f"{type(entry).__name__.lower()} {entry.id!r} registered twice")
    table[entry.id] = entry
    return entry


def all_studies() -> dict[str, Study]:
    """Every registered study. The registry never imports its entries:
    importing ``aninfonce.studies`` registers them (the CLI's producing
    commands, the pool's workers and the torchrun entry do so once)."""
    return dict(_STUDIES)


def all_analyses() -> dict[str, Analysis]:
    """Every registered analysis (importing ``aninfonce.analyses`` registers them; no torch)."""
    return dict(_ANALYSES)


class UnknownExperiment(UserError, LookupError):
    pass


def select(patterns: list[str] | None, entries: dict[str, Any] | None = None) -> list:
    """The entries (default: the studies) whose id matches any glob, in registry order."""
    exps = all_studies() if entries is None else entries
    if not patterns:
        return list(exps.values())
    chosen = []
    for pat in patterns:
        hits = [e for e in exps.values() if fnmatch.fnmatchcase(e.id, pat)]
        if not hits:
            raise UnknownExperiment(f"no experiment matches {pat!r}; known: {', '.join(exps)}")
        chosen += [e for e in hits if e not in chosen]
    return chosen
