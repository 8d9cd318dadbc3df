"""The plan's manifest: ``results/<profile>/<experiment>.plan.json``.

The producing half writes it whenever it plans an experiment (``runner.plan``,
``--dry-run`` included, and ``--adopt-from``); the reading half reads it and
the run files, never the code that made the grid. It holds the run keys per
seed in grid order, the swept fields, the deviations from the authors' model
and optimiser, the settle and judging policy, and the numerics preset.

Seeds: a manifest lists every seed up to the largest of ``--seeds``, the seeds
it listed before and the seeds in the results folder, so it never shrinks.
A run whose key the manifest does not list is **stale** (an older setting, or
a seed copied in by hand after the last plan): the reading half leaves it out,
as it always left out runs of an older grid, names the seeds beyond the
manifest in one note, and ``--dry-run`` re-plans them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Iterable

from . import results
from .errors import BadInput
from .frames import run_keys
from .specs import PRESETS, SyntheticSpec, deviations_from_authors

VERSION = 1


def path(results_dir: Path, profile: str, experiment: str) -> Path:
    return Path(results_dir) / profile / f"{experiment}.plan.json"


@dataclasses.dataclass(frozen=True)
class PlannedKey:
    """One planned run as the reading half sees it."""

    seed: int
    key: str


@dataclasses.dataclass(frozen=True)
class Plan:
    experiment: str
    profile: str
    seeds: int  # the --seeds the grid was expanded for
    runs: dict[int, tuple[str, ...]]  # seed -> run keys, in grid order
    swept: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()
    numerics: dict[str, Any] = dataclasses.field(default_factory=dict)
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)

    def grid(self) -> list[PlannedKey]:
        return [PlannedKey(seed, key) for seed, keys in self.runs.items() for key in keys]

    def keys(self) -> set[str]:
        return {key for keys in self.runs.values() for key in keys}

    @classmethod
    def of(cls, experiment: str, specs: Iterable, profile: str = "", **fields: Any) -> "Plan":
        """The plan of ``specs`` (anything with ``seed`` and ``key``), e.g. for a test's own grid."""
        runs: dict[int, list[str]] = {}
        for s in specs:
            runs.setdefault(int(s.seed), []).append(s.key)
        return cls(experiment, profile, max(runs, default=-1) + 1, {k: tuple(v) for k, v in runs.items()}, **fields)


# ---------------------------------------------------------------- writing (the producing half)
def content(study, analysis, profile: str, n_seeds: int, speed: str = "exact") -> dict[str, Any]:
    """The manifest of ``study``'s grid for ``n_seeds`` seeds under a numerics preset, with
    ``analysis``'s policy (None: the study has no analysis)."""
    runs: dict[str, list[str]] = {}
    for spec in study.grid(profile, n_seeds, speed):
        runs.setdefault(str(spec.seed), []).append(spec.key)
    deviations: list[str] = []
    for spec in study.runs(profile, 1):  # model and optimiser, as the first seed's runs set them
        if isinstance(spec, SyntheticSpec):
            deviations += [d for d in deviations_from_authors(spec) if d not in deviations
                           and d.split()[0] not in study.swept]
    return {"version": VERSION, "experiment": study.id, "profile": profile, "seeds": n_seeds,
            "runs": runs, "swept": list(study.swept), "deviations": deviations,
            "numerics": {"preset": speed, "settings": PRESETS[speed]},
            "policy": analysis.policy() if analysis is not None else {}}


def write(study, analysis, results_dir: Path, profile: str, n_seeds: int, speed: str = "exact",
          stored=None) -> Path:
    """Write (or keep, when unchanged) ``study``'s manifest, covering at least ``n_seeds`` seeds, the seeds
    it listed before and every seed in the results folder (``stored``: its rows, when already read)."""
    where = path(results_dir, profile, study.id)
    before = read(where)
    if stored is None:
        stored, _ = results.read_runs(results.csv_path(results_dir, profile, study.id))
    n = seeds_covering(study, profile, speed, stored, max(n_seeds, before.seeds if before else 0))
    text = json.dumps(content(study, analysis, profile, n, speed), indent=1) + "\n"
    if not where.exists() or where.read_text() != text:
        results.check_writable(where.parent)  # one clear message, before any training, if it cannot
        tmp = where.with_name(f".{where.name}.{os.getpid()}.tmp")  # a reader never sees half a manifest
        tmp.write_text(text)
        os.replace(tmp, where)
    return where


def seeds_covering(study, profile: str, speed: str, stored, at_least: int) -> int:
    """The fewest seeds, at least ``at_least``, whose grid holds every run of ``stored`` (a results folder's
    rows) that the grid holds at all: seeds adopted or trained with a larger ``--seeds`` stay planned. The
    largest seed number in the folder would overshoot for an entry whose runs carry seeds other than
    0..n-1 (calibration's later rounds run fresh seeds), and plan runs nobody trained."""
    if stored.empty:
        return at_least
    most = max(at_least, int(stored["seed"].astype(int).max()) + 1)
    keys = run_keys(stored) & {s.key for s in study.grid(profile, most, speed)}
    for n in range(at_least, most):
        if keys <= {s.key for s in study.grid(profile, n, speed)}:
            return n
    return most


# ---------------------------------------------------------------- reading (the reading half)
def read(where: Path) -> Plan | None:
    """The manifest at ``where`` (None when there is none); a damaged one is one clear error."""
    where = Path(where)
    if not where.exists():
        return None
    try:
        d = json.loads(where.read_text())
        return Plan(experiment=d["experiment"], profile=d["profile"], seeds=int(d["seeds"]),
                    runs={int(s): tuple(keys) for s, keys in d["runs"].items()}, swept=tuple(d["swept"]),
                    deviations=tuple(d["deviations"]), numerics=d["numerics"], policy=d["policy"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise BadInput(f"the manifest {where} cannot be read ({type(err).__name__}: {err}); rerun "
                       "`python reproduce.py <experiment> --dry-run` with the same --profile to rewrite it") from None


def bind(analyses: list, results_dir: Path, profile: str) -> list:
    """Each analysis with its plan from ``results_dir``/``profile`` attached. An experiment with runs
    but no manifest cannot say which runs are its own: one clear error naming the command that writes it."""
    out = []
    for a in analyses:
        plan = read(path(results_dir, profile, a.id))
        if plan is None and any(results.run_dir(results.csv_path(results_dir, profile, a.id)).glob("*.csv")):
            raise BadInput(f"{Path(results_dir) / profile / a.id} holds runs but no {a.id}.plan.json; write it with "
                           f"`python reproduce.py {a.id} --profile {profile} --dry-run`")
        out.append(dataclasses.replace(a, plan=plan))
    return out


def beyond(plan: Plan | None, df) -> list[int]:
    """Seeds with rows in ``df`` that the plan does not list (their runs are stale until re-planned)."""
    if plan is None or df.empty:
        return []
    return sorted(int(s) for s in set(df["seed"].astype(int)) if int(s) not in plan.runs)
