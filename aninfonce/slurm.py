"""What ``--executor slurm`` asks of the cluster and what it remembers between
calls: each job's resources (:class:`SlurmResources`), and the record of the
runs in flight (:class:`InFlight`, a JSON file under the profile's git-ignored
cache folder), so that a second ``reproduce.py`` call shows what is still
queued or running instead of submitting it again, gathers what finished, and
resubmits what failed. The submission itself is in :mod:`aninfonce.executors`."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

from .errors import BadInput
from .runner import PlannedRun, cache_dir

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
