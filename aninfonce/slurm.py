"""``--executor slurm``: runs submitted to a SLURM cluster through submitit,
and remembered between calls.

- :func:`run_slurm` submits every run that is neither finished nor in flight,
  one submitit job array per set of resources; the jobs run the bodies of
  :mod:`aninfonce.jobs`.
- :class:`SlurmResources`: what each job asks of the cluster.
- :class:`InFlight`: the record of the runs in flight (a JSON file under the
  profile's git-ignored cache folder), so that a second ``reproduce.py`` call
  shows what is still queued or running instead of submitting it again,
  gathers what finished, and resubmits what failed."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import BadInput
from .jobs import Job, caught_job, packed_job, raise_first, rank_job
from .runner import PlannedRun, cache_dir, format_seconds

# how many single-device runs share one GPU by default (one process each): on one
# H200, 13 processes of the synthetic paper run each kept 86-96 % of a lone
# process's steps/s (benchmarks/measured/h200-2026-11-29); 8 leaves room for
# a slower GPU or fewer CPU cores per GPU, and each process needs one core
RUNS_PER_GPU = 8

# sacct / submitit states of a job that has not ended (submitit's own list; a
# job sacct does not know yet reads UNKNOWN and counts as in flight)
_NOT_ENDED = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED", "CONFIGURING",
              "SUSPENDED", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT",
              # submitit's local executor after the submitting process is gone: it cannot tell a running
              # job from a dead one, so the job counts as in flight until its result file appears
              "NO PROCESS AND NO RESULT"}


@dataclasses.dataclass(frozen=True)
class SlurmResources:
    """What each SLURM job of ``--executor slurm`` asks for, as submitit's
    AutoExecutor parameters. A run that trains data-parallel (an image entry)
    with more than one GPU runs as one task per GPU; a run on one GPU (every
    other entry, by default) shares its GPU: ``runs_per_gpu`` of them form one
    job, each in its own process; a CPU run is a job of its own."""

    partition: str | None = None  # None: the cluster's default partition
    gpus_per_run: int | None = None  # None: from device (auto: 1 for every run)
    cpus_per_task: int | None = None  # None: one per packed run, else the cluster's default
    time_min: int = 24 * 60
    device: str = "auto"  # the --device asked for: cuda or auto = a GPU for every run, cpu = none
    tasks_per_run: int | None = None  # None: one per GPU; >1 without GPUs = gloo ranks on CPU (tests)
    runs_per_gpu: int = RUNS_PER_GPU

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise BadInput(f"unknown device {self.device!r}; choose auto, cpu or cuda")
        if self.device == "cpu" and self.gpus_per_run:
            raise BadInput("--device cpu contradicts --slurm-gpus-per-run above 0; drop one of them")
        for name, option, least in (("gpus_per_run", "--slurm-gpus-per-run", 0),
                                    ("cpus_per_task", "--slurm-cpus-per-task", 1),
                                    ("time_min", "--slurm-time-min", 1), ("tasks_per_run", "tasks_per_run", 1),
                                    ("runs_per_gpu", "--slurm-runs-per-gpu", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise BadInput(f"{option} must be at least {least}, not {value}")

    def gpus(self, run: PlannedRun) -> int:
        parallel = data_parallel(run)
        if self.gpus_per_run is not None:
            return self.gpus_per_run if parallel else min(self.gpus_per_run, 1)
        return 0 if self.device == "cpu" else 1

    def tasks(self, run: PlannedRun) -> int:
        if not data_parallel(run):
            return 1
        return self.tasks_per_run or max(1, self.gpus(run))

    def pack(self, run: PlannedRun) -> int:
        """How many runs like ``run`` one job trains side by side: ``runs_per_gpu``
        for a single-device run on a GPU, else 1."""
        return self.runs_per_gpu if self.gpus(run) == 1 and not data_parallel(run) else 1

    def parameters(self, run: PlannedRun) -> dict[str, Any]:
        """submitit's names: the generic timeout_min, gpus_per_node, tasks_per_node and
        cpus_per_task, and slurm_partition (used on SLURM only). A default (no GPU, one
        task, the cluster's CPUs and partition) is left out of the sbatch file."""
        gpus, tasks, pack = self.gpus(run), self.tasks(run), self.pack(run)
        cpus = self.cpus_per_task or (pack if pack > 1 else None)
        out = {"timeout_min": self.time_min, "gpus_per_node": gpus or None,
               "tasks_per_node": tasks if tasks > 1 else None, "cpus_per_task": cpus,
               "slurm_partition": self.partition}
        return {k: v for k, v in out.items() if v is not None}


def data_parallel(run: PlannedRun) -> bool:
    """The image entries train data-parallel (aninfonce.trainers.simclr); the others on one device."""
    from .trainers.simclr import ImageSSLSpec

    return isinstance(run.spec, ImageSSLSpec)


class InFlight:
    """The record of submitted runs not yet gathered: run key -> its experiment,
    label, job id, job kind (single / ranks / pack), submitit folder, cluster
    and submission time. Written atomically after every change."""

    NAME = "slurm-inflight.json"

    def __init__(self, results_dir: Path, profile: str):
        self.path = cache_dir(results_dir, profile) / self.NAME
        self.runs: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.runs = json.loads(self.path.read_text())["runs"]
            except (ValueError, KeyError, TypeError):
                raise BadInput(f"the record of SLURM jobs in flight, {self.path}, is damaged; check `squeue -u "
                               f"$USER` for jobs still running, then delete it to submit afresh") from None

    def add(self, run: PlannedRun, job, kind: str, folder: Path, cluster: str) -> None:
        self.runs[run.spec.key] = {"experiment": run.experiment.id, "label": run.spec.label(), "job_id": job.job_id,
                                   "kind": kind, "folder": str(folder), "cluster": cluster,
                                   "submitted": datetime.datetime.now().isoformat(timespec="seconds")}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"runs": self.runs}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def job(self, key: str):
        """The submitit job of a recorded run, rebuilt from its id and folder."""
        import submitit
        from submitit.local.local import LocalJob

        entry = self.runs[key]
        cls = LocalJob if entry["cluster"] in ("local", "debug") else submitit.SlurmJob
        return cls(folder=entry["folder"], job_id=entry["job_id"])

    def states(self, keys: list[str]) -> dict[str, str]:
        """key -> the state of its job (sacct's word, asked once for all of
        them through submitit's watcher; FINISHED once its result file exists)."""
        import submitit

        jobs = {k: self.job(k) for k in keys}
        slurm = [j for j in jobs.values() if isinstance(j, submitit.SlurmJob)]
        if slurm:
            for j in slurm:
                j.watcher.register_job(j.job_id)
            slurm[0].watcher.update()  # one sacct call for every registered job
        out = {}
        for key, j in jobs.items():
            if j.paths.result_pickle.exists():
                out[key] = "FINISHED"
            elif isinstance(j, submitit.SlurmJob):
                out[key] = j.watcher.get_state(j.job_id, mode="cache")
            else:
                out[key] = j.state
        return out


def ended(state: str) -> bool:
    """Whether a job in ``state`` can still write its run's rows."""
    words = state.upper().split()  # sacct may add a reason: "CANCELLED by 1234"
    return bool(words) and words[0] not in _NOT_ENDED and state.upper() not in _NOT_ENDED


def run_slurm(runs: list[PlannedRun], profile: str, device: torch.device | None, results_dir: Path,
              data_root: Path | None, log: Callable[[str], None] = print, folder: Path | None = None,
              cluster: str | None = None, slurm_params: dict | None = None,
              resources: SlurmResources | None = None, wait: bool = True) -> int:
    """Submit every run that is neither cached nor in flight as one job of a
    submitit job array (one array per set of resources; single-device GPU runs
    ``resources.runs_per_gpu`` to a job), record what is in flight under the
    profile's cache folder (:class:`aninfonce.slurm.InFlight`), and return the
    number of runs still in flight. A run recorded by an earlier call is
    shown, not resubmitted, while its job is queued or running; once its job
    ended its rows are there (gathered) or it failed (named with its log, and
    submitted again: a run cut off at its time limit resumes from its last
    checkpoint). ``wait`` blocks until every job ended and raises the first
    run's error (the Python API's default; the CLI's ``--wait``).
    ``cluster="local"`` is submitit's local executor (tests)."""
    import submitit

    resources = resources or SlurmResources(device=device.type if device is not None else "auto")
    folder = Path(folder or Path(results_dir) / ".cache" / profile / "submitit")
    book = InFlight(results_dir, profile)
    done = {r.spec.key for r in runs if r.status == "done"}
    gathered = [k for k in book.runs if k in done]
    for key in gathered:
        log(f"gathered {book.runs.pop(key)['label']} (finished on the cluster)")
    todo = [r for r in runs if r.status != "done"]
    recorded = [r for r in todo if r.spec.key in book.runs]
    states = book.states([r.spec.key for r in recorded])
    flying = [r for r in recorded if not ended(states[r.spec.key])]
    in_flight = {r.spec.key for r in flying}
    for r in recorded:
        if r.spec.key not in in_flight:  # ended without writing its rows: say where its log is, then submit it again
            log(f"{r.spec.label()} FAILED on the cluster ({_failure(book, r.spec.key, states[r.spec.key])}); "
                f"submitting it again")
            del book.runs[r.spec.key]
    fresh = [r for r in todo if r.spec.key not in in_flight]
    submitted = _submit(fresh, profile, results_dir, data_root, folder, cluster, slurm_params, resources, book)
    book.save()
    where = submitted[0][0].cluster if submitted else cluster or "slurm"
    if wait:
        return _wait(todo, submitted, book, where, folder, log)
    for executor, array in submitted:
        n_runs = sum(len(group) for group, _, _ in array)
        log(f"submitted array {array[0][1].job_id.split('_')[0]}: {n_runs} runs in {len(array)} jobs to "
            f"{executor.cluster}, each {_asks(array[0][0][0], resources)} (logs in {folder})")
    for r in flying:
        entry = book.runs[r.spec.key]
        log(f"in flight: {r.spec.label()} (job {entry['job_id']}, {states[r.spec.key].lower()}, "
            f"submitted {entry['submitted']})")
    if book.runs:
        log(f"{len(book.runs)} runs in flight on {where} (record: {book.path}); rerun the same command to "
            f"see them and gather finished ones (`squeue -u $USER` shows the queue)")
    return len(book.runs)


def _asks(run: PlannedRun, resources: SlurmResources) -> str:
    p = resources.parameters(run)
    gpus, pack = p.get("gpus_per_node", 0), resources.pack(run)
    what = f"{gpus} GPU{'s' if gpus != 1 else ''}" + (f" shared by up to {pack} runs" if pack > 1 else "")
    return f"{what}, {p.get('cpus_per_task', 'default')} CPUs, {p['timeout_min']} min"


def _submit(todo: list[PlannedRun], profile: str, results_dir: Path, data_root: Path | None, folder: Path,
            cluster: str | None, slurm_params: dict | None, resources: SlurmResources, book: InFlight) -> list:
    """One submitit array per set of resources; returns (executor, [(runs, job, kind)]) per array."""
    import submitit

    groups: dict[tuple, list[PlannedRun]] = {}
    for run in todo:
        groups.setdefault(tuple(sorted(resources.parameters(run).items())), []).append(run)
    out = []
    for params, group in groups.items():  # an executor each: its parameters only accumulate
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        executor.update_parameters(**{**dict(params), **(slurm_params or {})})
        k = resources.pack(group[0])
        array = []
        with executor.batch():
            for i in range(0, len(group), k):
                chunk = group[i:i + k]
                jobs = [Job.of(r, profile, torch.device("cuda" if resources.gpus(r) else "cpu"), results_dir,
                               data_root) for r in chunk]
                if k > 1:
                    kind, job = "pack", executor.submit(packed_job, jobs)
                else:
                    kind = "ranks" if resources.tasks(chunk[0]) > 1 else "single"
                    job = executor.submit(rank_job if kind == "ranks" else caught_job, jobs[0])
                array.append((chunk, job, kind))
        for chunk, job, kind in array:  # job ids exist once the batch is submitted
            for r in chunk:
                book.add(r, job, kind, folder, executor.cluster)
        out.append((executor, array))
    return out


def _wait(todo: list[PlannedRun], submitted: list, book: InFlight, where: str, folder: Path,
          log: Callable[[str], None]) -> int:
    """Block until every job ended (those of an earlier call too), log each run, raise the first error."""
    n = sum(len(chunk) for _, array in submitted for chunk, _, _ in array)
    if n:
        log(f"submitted {n} runs to {where} (logs in {folder})")
    live = {r.spec.key: job for _, array in submitted for chunk, job, _ in array for r in chunk}
    errors: list[BaseException] = []
    for i, r in enumerate(todo, 1):
        key = r.spec.key
        job = live.get(key) or book.job(key)  # this call's own job objects know their local processes
        wall, err = _outcome(job, book.runs[key]["kind"], key)
        if err is not None:
            errors.append(err)
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            log(f"[{i}/{len(todo)}] {r.spec.label()} FAILED (job {job.job_id}, log {job.paths.stderr}): {last[0]}")
        else:
            tasks = len(job.results()) if book.runs[key]["kind"] == "ranks" else 1
            log(f"[{i}/{len(todo)}] {r.spec.label()} finished in {format_seconds(wall)} (job {job.job_id}"
                f"{f', {tasks} tasks' if tasks > 1 else ''})")
        del book.runs[key]
        book.save()
    raise_first(errors, len(todo))
    return 0


def _outcome(job, kind: str, key: str) -> tuple[float | None, BaseException | None]:
    """(wall, error) of run ``key`` in ``job``, waiting for the job to end."""
    try:
        results = job.results()  # one value per task
    except Exception as crash:  # the job died (killed, out of memory, timeout): submitit's error
        return None, crash
    if kind == "pack":
        return dict(results[0]).get(key, (None, RuntimeError(f"run {key} is missing from job {job.job_id}")))
    err = next((e for _, e in results if e is not None), None)
    return results[0][0], err


def _failure(book: InFlight, key: str, state: str) -> str:
    job = book.job(key)
    reason = f"job {job.job_id} {state.lower()}"
    if job.paths.result_pickle.exists():
        _, err = _outcome(job, book.runs[key]["kind"], key)
        if err is not None:
            reason += f": {(str(err).strip().splitlines() or [type(err).__name__])[-1]}"
    return f"{reason}; log {job.paths.stderr}"
