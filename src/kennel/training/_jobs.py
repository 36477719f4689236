"""Training jobs as resources: create, list, describe, stop, logs, metrics.

Creating a job validates everything first (name, instance type, data, hyperparameters),
records it ``InProgress``/``Starting`` and hands it to a runner thread; the runner owns
it from there (see ``_runner``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kennel._errors import ConflictError, NotFoundError, ValidationError
from kennel._names import check_name
from kennel._settings import Settings
from kennel.cluster import RayCluster
from kennel.cluster._catalog import instance_type
from kennel.store import ArtifactStore, Database, Dataset, MetricSample, TrainingJob
from kennel.training._spec import BUILTIN_METRICS, BUILTIN_TRAINER, TrainingJobSpec

if TYPE_CHECKING:
    from kennel.training._slots import SlotPool, WarmSlot

log = logging.getLogger(__name__)

ACTIVE = ("InProgress", "Stopping")


def generated_name(base: str) -> str:
    """SageMaker's default: ``<base>-YYYY-MM-DD-HH-MM-SS-mmm``."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S") + f"-{now.microsecond // 1000:03d}"
    return f"{base[:38]}-{stamp}"


def job_to_dict(job: TrainingJob) -> dict[str, Any]:
    return {
        "name": job.name,
        "status": job.status,
        "secondary_status": job.secondary_status,
        "status_message": job.status_message,
        "failure_reason": job.failure_reason,
        "entry_point": job.entry_point,
        "source_uri": job.source_uri,
        "hyperparameters": job.hyperparameters,
        "channels": job.channels,
        "environment": job.environment,
        "metric_definitions": job.metric_definitions,
        "instance_type": job.instance_type,
        "instance_count": job.instance_count,
        "max_runtime_seconds": job.max_runtime_seconds,
        "output_path": job.output_path,
        "model_artifact_uri": job.model_artifact_uri,
        "placement": job.placement,
        "status_transitions": job.status_transitions,
        "final_metrics": job.final_metrics,
        "debugger": job.debugger_config,
        "profiler": job.profiler_config,
        "rule_evaluations": job.rule_evaluations or [],
        "billable_seconds": job.billable_seconds,
        "cost_usd": round(job.cost_usd, 6),
        "created_at": job.created_at.isoformat(),
        "training_started_at": _iso(job.training_started_at),
        "ended_at": _iso(job.ended_at),
        # Set for jobs run on a warm slot (tuning trials): when the slot became free for
        # this job and when its process started, so trial start latency can be measured.
        "warm_slot": (job.placement or {}).get("warm_slot"),
        "slot_freed_at": (job.placement or {}).get("slot_freed_at"),
        "started_at": (job.placement or {}).get("started_at"),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class TrainingService:
    def __init__(
        self, db: Database, artifacts: ArtifactStore, settings: Settings, ray: RayCluster
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self.ray = ray
        self._runners: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def log_dir(self) -> Path:
        return self.settings.home / "jobs"

    # Creation -------------------------------------------------------------------

    def create(self, spec: TrainingJobSpec, slot: WarmSlot | None = None) -> dict[str, Any]:
        """Record the job and start it: cold (its own instances), or on a warm ``slot``
        that the caller took from its pool (``SlotPool.take``) for this job's name."""
        if slot is not None and (spec.instance_count != 1 or slot.busy_with != spec.name):
            raise ValidationError(
                f"Warm slot {slot.name} is not reserved for a one-instance job {spec.name!r}."
            )
        name = spec.name or generated_name(
            "kennel-trainer" if spec.entry_point == BUILTIN_TRAINER else "training-job"
        )
        check_name("Training job", name)
        itype = instance_type(spec.instance_type)
        channels = self._resolve_channels(spec)
        self._check_entry_point(spec)
        hyperparameters = spec.hyperparameter_strings()
        if spec.entry_point == BUILTIN_TRAINER:
            _check_builtin_hyperparameters(hyperparameters, channels)
        if self.ray.state == "error":
            raise ValidationError(
                f"Ray is not running ({self.ray.error}); training jobs cannot start.",
                hint="See `kennel status` and the server log.",
            )
        metrics = [m.model_dump() for m in spec.metric_definitions]
        if spec.entry_point == BUILTIN_TRAINER and not metrics:
            metrics = list(BUILTIN_METRICS)
        output = spec.output_path or self.artifacts.uri(f"training-jobs/{name}/output")
        if not output.rstrip("/").startswith(self.artifacts.uri("").rstrip("/")):
            raise ValidationError(
                f"Output path {output} is outside kennel's artifact store "
                f"({self.artifacts.uri('')}).",
                hint="Leave it out, or give a path inside the store.",
            )
        job = TrainingJob(
            name=name,
            status="InProgress",
            secondary_status="Starting",
            status_message="Launch requested",
            entry_point=spec.entry_point,
            source_uri=spec.source_uri,
            hyperparameters=hyperparameters,
            channels=channels,
            environment=dict(spec.environment),
            metric_definitions=metrics,
            instance_type=itype.name,
            instance_count=spec.instance_count,
            max_runtime_seconds=spec.max_runtime_seconds,
            output_path=output,
            placement={},
            status_transitions=[],
            final_metrics={},
            debugger_config=spec.debugger.model_dump() if spec.debugger else None,
            profiler_config=spec.profiler.model_dump(),
            rule_evaluations=_initial_rule_statuses(spec),
        )
        try:
            with self.db.session() as session:
                session.add(job)
        except IntegrityError as exc:
            raise ConflictError(
                f"Training job {name!r} already exists.",
                hint="Job names are unique for good; pick another name or omit it.",
            ) from exc
        self._launch(name, slot)
        return self.describe(name)

    def open_slots(
        self,
        name: str,
        spec: TrainingJobSpec,
        count: int,
        *,
        on_free: Callable[[], None],
        should_stop: Callable[[], bool],
    ) -> SlotPool:
        """Hold ``count`` warm slots for jobs like ``spec`` (see ``_slots``); blocks until
        they are ready (placement, downloads, warm Python), so call it from a worker thread.
        ``on_free`` is called each time a slot's job has ended. Close the pool when done."""
        from kennel.training._slots import SlotUnavailable, open_pool

        if spec.instance_count != 1:
            raise ValidationError("Warm slots hold one instance each; this job wants more.")
        itype = instance_type(spec.instance_type)
        channels = self._resolve_channels(spec)
        self._check_entry_point(spec)
        try:
            return open_pool(
                self,
                name,
                itype,
                count,
                channels,
                spec.source_uri,
                on_free=on_free,
                should_stop=should_stop,
            )
        except SlotUnavailable as exc:
            raise ValidationError(f"Could not open warm slots for {name}: {exc}") from exc

    def _resolve_channels(self, spec: TrainingJobSpec) -> dict[str, str]:
        channels: dict[str, str] = {}
        if spec.dataset:
            with self.db.session() as session:
                dataset = session.get(Dataset, spec.dataset)
                if dataset is None or dataset.status != "Available":
                    raise ValidationError(
                        f"Data set {spec.dataset!r} does not exist.",
                        hint="See `kennel datasets list`, or make one: kennel datasets make-demo",
                    )
                for split in dataset.splits:
                    channels[split] = f"{dataset.artifact_uri}/{split}"
        channels.update(spec.channels)
        for name, uri in spec.channels.items():
            if not self._uri_exists(uri):
                raise ValidationError(
                    f"Input channel {name!r} points at {uri}, which does not exist.",
                    hint="Give a data set (--dataset) or an artifact path that exists.",
                )
        return channels

    def _uri_exists(self, uri: str) -> bool:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(uri)
            return bool(fs.exists(path))
        except (ImportError, TypeError, ValueError, OSError):
            # TypeError: a protocol that needs options a URL cannot give (reference://).
            return False

    def _check_entry_point(self, spec: TrainingJobSpec) -> None:
        if spec.entry_point == BUILTIN_TRAINER:
            return
        if not spec.source_uri:
            raise ValidationError(
                f"Entry point {spec.entry_point!r} needs its source.",
                hint="Upload its folder: kennel train --source-dir DIR --entry-point F",
            )
        if spec.entry_point.startswith("/") or ".." in Path(spec.entry_point).parts:
            raise ValidationError(
                f"Entry point {spec.entry_point!r} must be a path inside the source folder."
            )
        if not self._uri_exists(spec.source_uri):
            raise ValidationError(f"Source {spec.source_uri} does not exist.")

    def _launch(self, name: str, slot: WarmSlot | None = None) -> None:
        from kennel.training._runner import JobRunner
        from kennel.training._slots import WarmJobRunner

        runner = JobRunner(name, self) if slot is None else WarmJobRunner(name, self, slot)
        with self._lock:
            self._runners[name] = runner
        runner.start()

    def forget(self, name: str) -> None:
        with self._lock:
            self._runners.pop(name, None)

    # Reads ------------------------------------------------------------------------

    def list_all(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(TrainingJob).order_by(TrainingJob.created_at.desc())
            if status:
                query = query.where(TrainingJob.status == status)
            return [job_to_dict(j) for j in session.scalars(query)]

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            return job_to_dict(self._get(session, name))

    def _get(self, session: Any, name: str) -> TrainingJob:
        job = session.get(TrainingJob, name)
        if job is None:
            raise NotFoundError(
                f"Training job {name!r} does not exist.",
                hint="See the names with: kennel jobs list",
            )
        assert isinstance(job, TrainingJob)
        return job

    def logs(self, name: str, host: str, offset: int, limit: int = 2**20) -> dict[str, Any]:
        job = self.describe(name)
        hosts = [f"algo-{i + 1}" for i in range(job["instance_count"])]
        if host not in hosts:
            raise ValidationError(f"Host {host!r} is not part of {name}; it has {hosts}.")
        path = self.log_dir / name / f"{host}.log"
        data = b""
        if path.exists():
            with path.open("rb") as f:
                f.seek(max(0, offset))
                data = f.read(limit)
        return {
            "host": host,
            "data": data.decode("utf-8", errors="replace"),
            "next_offset": max(0, offset) + len(data),
            "complete": job["status"] not in ACTIVE,
            "status": job["status"],
            "secondary_status": job["secondary_status"],
        }

    def metrics(self, name: str) -> dict[str, list[dict[str, Any]]]:
        self.describe(name)
        series: dict[str, list[dict[str, Any]]] = {}
        with self.db.session() as session:
            rows = session.scalars(
                select(MetricSample)
                .where(MetricSample.resource == f"training-job/{name}")
                .order_by(MetricSample.id)
            )
            for row in rows:
                series.setdefault(row.name, []).append(
                    {"timestamp": row.timestamp.isoformat(), "value": row.value, "step": row.step}
                )
        return series

    def report(self, name: str) -> str:
        """The profiler report page: system use, step times, phases, rules, curves."""
        from kennel.debugger._report import profiler_report
        from kennel.training._debug_watch import DEBUG_FOLDER, job_trial

        job = self.describe(name)
        trial = job_trial(self.log_dir / name / DEBUG_FOLDER)
        return profiler_report(job, trial, job["rule_evaluations"])

    # Stop -------------------------------------------------------------------------

    def stop(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            job = self._get(session, name)
            if job.status not in ACTIVE:
                raise ValidationError(
                    f"Training job {name!r} is {job.status}; only a job in progress can stop."
                )
            job.stop_requested = True
            if job.status == "InProgress":
                job.status = "Stopping"
        with self._lock:
            runner = self._runners.get(name)
        if runner is not None:
            runner.request_stop()
        return self.describe(name)

    def recover(self, restarted_at: datetime | None = None) -> list[str]:
        """Jobs a previous server left running lost their processes with it: end them.

        A job in progress ends Failed, one being stopped ends Stopped (what was asked of
        it), each with a status transition and a reason that says when the server came
        back; the instances' processes died with the server (or were stopped by the new
        one: ``kennel.cluster._leftovers``). Returns the names of the jobs ended.
        """
        now = restarted_at or datetime.now(UTC)
        when = now.isoformat(timespec="seconds")
        with self.db.session() as session:
            jobs = list(session.scalars(select(TrainingJob).where(TrainingJob.status.in_(ACTIVE))))
            for job in jobs:
                if job.status == "Stopping" or job.stop_requested:
                    job.status, secondary = "Stopped", "Stopped"
                    message = (
                        f"Stopped: the kennel server stopped while the job was stopping "
                        f"(restarted at {when})."
                    )
                else:
                    job.status, secondary = "Failed", "Failed"
                    message = "Training job failed"
                    job.failure_reason = (
                        f"InternalFailure: the kennel server stopped while the job ran "
                        f"(restarted at {when}); its instances stopped with it. Start the "
                        "job again (under a new name)."
                    )
                _end_transitions(job, secondary, message, now)
                job.ended_at = now
            return [j.name for j in jobs]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every running job (the server is going away)."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.request_stop(reason="The kennel server is shutting down.")
        for runner in runners:
            runner.join(timeout)


def _end_transitions(job: TrainingJob, secondary: str, message: str, now: datetime) -> None:
    """Close the job's last secondary status and add its final one (as the runner would)."""
    stamp = now.isoformat()
    transitions = list(job.status_transitions or [])
    if transitions and "end_time" not in transitions[-1]:
        transitions[-1] = {**transitions[-1], "end_time": stamp}
    transitions.append({"status": secondary, "start_time": stamp, "message": message})
    job.status_transitions = transitions
    job.secondary_status = secondary
    job.status_message = message


def _check_builtin_hyperparameters(
    hyperparameters: dict[str, str], channels: dict[str, str]
) -> None:
    """Run the built-in trainer's own argument parser now, so a typo fails before any start."""
    problem = _trainer_argument_problem(hyperparameters)
    if problem:
        raise ValidationError(
            f"Bad hyperparameter for the built-in trainer: {problem}",
            hint="See `python -m kennel.trainer --help` for the names and values it takes.",
        )
    for needed in ("train", "valid"):
        if needed not in channels:
            raise ValidationError(
                f"The built-in trainer needs a {needed!r} channel.",
                hint="Pass --dataset NAME (its train/valid/test splits become the channels).",
            )


def _trainer_argument_problem(hyperparameters: dict[str, str]) -> str | None:
    """What the trainer's parser would say about these hyperparameters (None: all fine)."""
    import contextlib
    import io

    from kennel.trainer._args import parse_args

    argv = [part for k, v in hyperparameters.items() for part in (f"--{k}", v)]
    argv += ["--train", "/train", "--valid", "/valid", "--model-dir", "/model"]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parse_args(argv, environ={})
    except SystemExit:
        lines = [line for line in stderr.getvalue().splitlines() if "error:" in line]
        return lines[-1].split("error:", 1)[1].strip() if lines else stderr.getvalue().strip()
    return None


def _initial_rule_statuses(spec: TrainingJobSpec) -> list[dict[str, Any]]:
    """Every configured rule, InProgress, so describe lists them from the first moment."""
    from kennel.debugger._engine import RuleEngine

    debugger_rules = spec.debugger.rules if spec.debugger else []
    return RuleEngine(debugger_rules, spec.profiler.rules).statuses()
