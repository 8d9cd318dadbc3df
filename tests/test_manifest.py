"""The plan's manifest (``<experiment>.plan.json``): the producing half writes
it, the reading half reads it instead of rebuilding grids from code. Each
committed manifest must equal what the code plans now, so a grid, key or
policy change without a fresh manifest fails here."""

import json
import shutil
from pathlib import Path

import pytest

import aninfonce.analyses  # noqa: F401  (registers the analyses)
import aninfonce.studies  # noqa: F401  (registers the studies)
from aninfonce import manifest, report, results
from aninfonce.cli import main
from aninfonce.registry import all_analyses, all_studies

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "results").glob("*/*.plan.json"))


def test_every_results_folder_with_runs_has_its_manifests():
    for folder in (ROOT / "results" / "quick", ROOT / "results" / "paper"):
        for csv in folder.glob("*.csv"):
            assert (folder / f"{csv.stem}.plan.json").exists(), f"{csv} has no manifest beside it"


@pytest.mark.parametrize("where", COMMITTED, ids=[f"{p.parent.name}/{p.stem}" for p in COMMITTED])
def test_each_committed_manifest_is_what_the_code_plans_now(where):
    stored = json.loads(where.read_text())
    exp, profile = stored["experiment"], stored["profile"]
    assert where == manifest.path(ROOT / "results", profile, exp)
    now = manifest.content(all_studies()[exp], all_analyses().get(exp), profile, stored["seeds"],
                           stored["numerics"]["preset"])
    assert now == stored, (f"{where} is out of date: rerun `python reproduce.py {exp} --profile {profile} --dry-run` "
                           "and commit the manifest it writes")


def test_the_plan_covers_every_committed_run_it_reads():
    """Every run the committed reports read is in its manifest: the manifest's keys are the grid's
    (the same hash of the same specs), seed by seed."""
    for where in COMMITTED:
        plan = manifest.read(where)
        stored, _ = results.read_runs(results.csv_path(ROOT / "results", plan.profile, plan.experiment))
        keys = set(stored["run_key"].astype(str))
        study_keys = all_studies()[plan.experiment].grid_keys(plan.profile, stored) if len(stored) else set()
        assert keys & study_keys == keys & plan.keys()


def _copy(tmp_path, exp="fig5"):
    src = ROOT / "results" / "quick"
    dst = tmp_path / "results" / "quick"
    dst.mkdir(parents=True)
    shutil.copytree(src / exp, dst / exp)
    shutil.copy(src / f"{exp}.csv", dst / f"{exp}.csv")
    shutil.copy(src / f"{exp}.plan.json", dst / f"{exp}.plan.json")
    return tmp_path / "results"


def test_runs_of_a_seed_beyond_the_manifest_are_stale_and_named(tmp_path, capsys):
    res = _copy(tmp_path)
    where = manifest.path(res, "quick", "fig5")
    stored = json.loads(where.read_text())
    assert sorted(stored["runs"]) == ["0", "1", "2"]
    stored["runs"] = {"1": stored["runs"]["1"]}  # a manifest that lists seed 1 only: seeds 0 and 2 lie beyond it
    where.write_text(json.dumps(stored))
    (fig5,) = manifest.bind([all_analyses()["fig5"]], res, "quick")
    stale: dict[str, int] = {}
    frames = report.load_all([fig5], res, "quick", stale=stale)
    assert set(frames["fig5"]["seed"]) == {1} and stale == {"fig5": 16}
    assert "note: fig5 has runs of seed(s) 0, 2, which its manifest does not list" in capsys.readouterr().out


def test_runs_without_a_manifest_are_one_clear_error(tmp_path, capsys):
    res = _copy(tmp_path)
    manifest.path(res, "quick", "fig5").unlink()
    assert main(["--check", "--profile", "quick", "--results-dir", str(res), "--figures-dir", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "holds runs but no fig5.plan.json" in err and "--dry-run" in err and "Traceback" not in err
    manifest.path(res, "quick", "fig5").write_text("{not json")
    assert main(["--check", "--profile", "quick", "--results-dir", str(res), "--figures-dir", str(tmp_path / "f")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_planning_writes_the_manifest_and_never_shrinks_it(tmp_path):
    """A dry run plans, so it writes the manifest; planning fewer seeds keeps the seeds listed before."""
    from aninfonce.runner import plan

    fig5 = all_studies()["fig5"]
    plan([fig5], "smoke", 2, tmp_path)
    first = manifest.read(manifest.path(tmp_path, "smoke", "fig5"))
    assert sorted(first.runs) == [0, 1] and first.keys() == {s.key for s in fig5.grid("smoke", 2)}
    assert first.policy == all_analyses()["fig5"].policy()
    plan([fig5], "smoke", 1, tmp_path)
    assert manifest.read(manifest.path(tmp_path, "smoke", "fig5")) == first


def test_a_rerun_plans_the_seeds_its_folder_holds_not_its_largest_seed_number(tmp_path):
    """Calibration's later rounds run fresh seeds (3, say, with no seed 2 of theirs): the folder's seeds are
    the fewest whose grid holds its runs, not its largest seed + 1, which planned runs nobody trains (a
    second `--profile smoke` made `--check` report them missing). Rewriting the manifest keeps it."""
    res = _copy(tmp_path, "calibration")
    study, where = all_studies()["calibration"], manifest.path(res, "quick", "calibration")
    stored, _ = results.read_runs(results.csv_path(res, "quick", "calibration"))
    where.unlink()
    manifest.write(study, all_analyses()["calibration"], res, "quick", 1)
    written = manifest.read(where)
    assert set(stored["run_key"]) <= written.keys()
    assert written.seeds < int(stored["seed"].max()) + 1, "the runs' seeds no longer need the fewest-seeds search"
    manifest.write(study, all_analyses()["calibration"], res, "quick", 1)
    assert manifest.read(where) == written
