"""Tuning jobs as resources, and the controller that runs each one.

A tuning job is a row in ``tuning_jobs`` plus an Optuna study of the same name (see
``_storage`` for where studies live). One controller thread per running tuning job asks
Optuna for hyperparameters, starts each trial as a real training job through
``TrainingService`` (so it has its own logs, metrics and ``kennel jobs`` entry), polls
them, reports the objective's intermediate values for early stopping, tells Optuna the
outcome, and ends the tuning job when the budget is spent or a completion criterion
holds. Training is reached only through TrainingService's public methods.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import optuna
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kennel._errors import ConflictError, KennelError, NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.cluster._catalog import instance_type
from kennel.store import Database, Dataset, TuningJob
from kennel.training import TrainingJobSpec, TrainingService
from kennel.tuning import _search
from kennel.tuning._spec import TuningJobSpec
from kennel.tuning._storage import open_storage
from kennel.tuning._warm_start import warm_start_trials

if TYPE_CHECKING:
    from kennel.training._slots import SlotPool

log = logging.getLogger(__name__)

ACTIVE = ("InProgress", "Stopping")
TERMINAL_TRAINING = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 60.0
"""How long stopping waits for the trials to end (training's grace is 10 s, plus upload)."""
OVERHEAD_SECONDS = 600.0
"""Slack over the trials' own runtime limits before a controller gives up on itself."""


def _now() -> datetime:
    return datetime.now(UTC)


def _sort_key(trial: dict[str, Any], maximize: bool) -> tuple[int, float, int]:
    """Best objective first; trials without one after, in launch order."""
    value = trial.get("objective")
    if value is None or trial.get("objective_status") != "Succeeded":
        return (1, 0.0, trial["number"])
    return (0, -value if maximize else value, trial["number"])


def tuning_to_dict(job: TuningJob) -> dict[str, Any]:
    spec = job.spec
    maximize = spec["objective"]["type"] == "Maximize"
    return {
        "name": job.name,
        "status": job.status,
        "status_message": job.status_message,
        "failure_reason": job.failure_reason,
        "strategy": spec["strategy"],
        "objective": spec["objective"],
        "early_stopping": spec["early_stopping"],
        "resource_limits": {
            "max_training_jobs": spec["max_training_jobs"],
            "max_parallel_training_jobs": spec["max_parallel_training_jobs"],
            "max_failed_training_jobs": TuningJobSpec.model_validate(spec).failure_limit,
            "max_tuning_runtime_seconds": spec.get("max_tuning_runtime_seconds"),
            "max_instance_hours": spec.get("max_instance_hours"),
        },
        # The row has no column for it, so the reason rides with the counters (see _end).
        "completion_reason": dict(job.counters).get("completion_reason"),
        "counters": {k: v for k, v in job.counters.items() if k != "completion_reason"},
        "best_training_job": job.best_training_job,
        "trials": sorted(job.trials, key=lambda t: _sort_key(t, maximize)),
        "spec": spec,
        "created_at": job.created_at.isoformat(),
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
    }


class TuningService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        training: TrainingService,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.training = training
        self.poll_seconds = poll_seconds
        self._controllers: dict[str, TuningController] = {}
        self._lock = threading.Lock()
        self._storage: Any = None

    def storage(self) -> Any:
        """Optuna's storage, opened on first use (a server that never tunes never makes it)."""
        with self._lock:
            if self._storage is None:
                self._storage = open_storage(self.settings.resolved_database_url)
            return self._storage

    # Creation ---------------------------------------------------------------------------

    def create(self, spec: TuningJobSpec) -> dict[str, Any]:
        self._check_template(spec)
        seeding = warm_start_trials(spec, self.describe)
        job = TuningJob(
            name=spec.name,
            status="InProgress",
            status_message="Starting the first training jobs" + seeding.summary(),
            spec=spec.model_dump(mode="json"),
            trials=[],
            counters=_empty_counters(),
            best_training_job=None,
            stop_requested=False,
        )
        try:
            with self.db.session() as session:
                session.add(job)
        except IntegrityError as exc:
            raise ConflictError(
                f"Tuning job {spec.name!r} already exists.",
                hint="Tuning job names are unique for good; pick another name.",
            ) from exc
        try:
            study = self._new_study(spec)
            study.add_trials(seeding.trials)
        except Exception as exc:
            self._mark_failed(spec.name, f"InternalFailure: could not create the study: {exc}")
            raise
        controller = TuningController(spec, study, self)
        with self._lock:
            self._controllers[spec.name] = controller
        controller.start()
        return self.describe(spec.name)

    def _check_template(self, spec: TuningJobSpec) -> None:
        """What would fail every trial alike is refused now, not after N failed jobs."""
        instance_type(spec.instance_type)
        if spec.dataset:
            with self.db.session() as session:
                dataset = session.get(Dataset, spec.dataset)
                if dataset is None or dataset.status != "Available":
                    raise ValidationError(
                        f"Data set {spec.dataset!r} does not exist.",
                        hint="See `kennel datasets list`, or make one: kennel datasets make-demo",
                    )

    def _new_study(self, spec: TuningJobSpec) -> optuna.Study:
        storage = self.storage()
        # The name is new to kennel (the row insert proved it), so a study by that name is a
        # leftover of an earlier kennel database next to the same optuna.db: drop it.
        if spec.name in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
            optuna.delete_study(study_name=spec.name, storage=storage)
        return optuna.create_study(
            storage=storage,
            study_name=spec.name,
            sampler=_search.sampler(spec),
            pruner=_search.pruner(spec),
            direction=_search.direction(spec),
        )

    def forget(self, name: str) -> None:
        with self._lock:
            self._controllers.pop(name, None)

    # Reads --------------------------------------------------------------------------------

    def list_all(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(TuningJob).order_by(TuningJob.created_at.desc())
            if status:
                query = query.where(TuningJob.status == status)
            return [_summary(tuning_to_dict(j)) for j in session.scalars(query)]

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            return tuning_to_dict(self._get(session, name))

    def trials(self, name: str) -> list[dict[str, Any]]:
        trials: list[dict[str, Any]] = self.describe(name)["trials"]
        return trials

    def _get(self, session: Any, name: str) -> TuningJob:
        job = session.get(TuningJob, name)
        if job is None:
            raise NotFoundError(
                f"Tuning job {name!r} does not exist.",
                hint="See the names with: kennel tune list",
            )
        assert isinstance(job, TuningJob)
        return job

    # Stop, recover, shut down -------------------------------------------------------------

    def stop(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            job = self._get(session, name)
            if job.status != "InProgress":
                raise ValidationError(
                    f"Tuning job {name!r} is {job.status}; only a tuning job in progress can stop."
                )
            job.stop_requested = True
            job.status = "Stopping"
            job.status_message = "Stopping the running training jobs"
        with self._lock:
            controller = self._controllers.get(name)
        if controller is not None:
            controller.request_stop("Stopped by request.")
        else:
            self._mark(name, "Stopped", "Stopped by request.")
        return self.describe(name)

    def recover(self, restarted_at: datetime | None = None) -> list[str]:
        """A previous server's tuning jobs lost their controllers and trials with it.

        Resuming would mean re-adopting half-told Optuna trials whose training jobs were
        marked Failed by training's own recovery; failing them, with a reason, is honest.
        """
        now = restarted_at or _now()
        with self.db.session() as session:
            jobs = list(session.scalars(select(TuningJob).where(TuningJob.status.in_(ACTIVE))))
            for job in jobs:
                job.status = "Failed"
                job.failure_reason = (
                    "The kennel server stopped while this tuning job ran (restarted at "
                    f"{now.isoformat(timespec='seconds')}), and its training jobs with it. "
                    "Start a new tuning job (under a new name)."
                )
                job.ended_at = now
            return [j.name for j in jobs]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every running tuning job first, so no controller launches into a dying server."""
        with self._lock:
            controllers = list(self._controllers.values())
        for controller in controllers:
            controller.request_stop("The kennel server is shutting down.")
        for controller in controllers:
            controller.join(timeout)

    def _mark(self, name: str, status: str, message: str) -> None:
        with self.db.session() as session:
            job = self._get(session, name)
            job.status, job.status_message, job.ended_at = status, message, _now()

    def _mark_failed(self, name: str, reason: str) -> None:
        with self.db.session() as session:
            job = self._get(session, name)
            job.status, job.failure_reason, job.ended_at = "Failed", reason, _now()


def _empty_counters() -> dict[str, int]:
    """SageMaker's TrainingJobStatusCounters, with early-stopped (pruned) jobs apart from
    the ones stopped for other reasons."""
    return {"completed": 0, "in_progress": 0, "failed": 0, "stopped": 0, "pruned": 0}


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in ("trials", "spec")}


class TuningController(threading.Thread):
    """Runs one tuning job from its first trial to its end; the only writer of its row."""

    def __init__(self, spec: TuningJobSpec, study: optuna.Study, service: TuningService) -> None:
        super().__init__(name=f"tuning-{spec.name}", daemon=True)
        self.spec = spec
        self.study = study
        self.service = service
        self.training = service.training
        self.distributions = _search.distributions(spec)
        self.budget = _search.trial_budget(spec)
        self.metric = spec.objective.metric_name
        self.maximize = spec.objective.type == "Maximize"
        self._stop = threading.Event()
        self._stop_reason = "Stopped by request."
        self.records: list[dict[str, Any]] = []
        self.running: dict[str, optuna.Trial] = {}
        self.reported: dict[str, int] = {}
        self.pruning: set[str] = set()
        self.objectives: list[float] = []
        self.counters = _empty_counters()
        self.best: dict[str, Any] | None = None
        # Set on a stop request or when a warm slot frees: the loop's wait ends at once.
        self._wake = threading.Event()
        self.pool: SlotPool | None = None
        self.began = time.monotonic()
        self.instance_seconds_used = 0.0
        """Billable seconds x instances of the trials that ended (the instance-hours budget)."""

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            log.exception("tuning job %s failed", self.spec.name)
            try:
                self._stop_trials()
            except Exception:  # the job must still end, with the first error
                log.exception("tuning job %s: stopping its trials failed too", self.spec.name)
            self._end("Failed", failure=f"InternalFailure: {type(exc).__name__}: {exc}")
        finally:
            self._close_slots()
            self.service.forget(self.spec.name)

    def _loop(self) -> None:
        # Bounded in time: every trial has its own runtime limit, run at most max_parallel
        # at a time, so the whole search cannot honestly take longer than this.
        rounds = math.ceil(self.budget / self.spec.max_parallel_training_jobs)
        deadline = time.monotonic() + rounds * self.spec.max_runtime_seconds + OVERHEAD_SECONDS
        self._open_slots()
        launched = 0
        while time.monotonic() < deadline:
            self._wake.clear()
            if self._stop.is_set():
                self._stop_trials()
                self._end("Stopped", message=self._stop_reason)
                return
            self._poll_running()
            spent = self._budget_spent()
            if spent is not None:
                code, message = spent
                self._stop_trials()
                self._end("Completed", message=message, completion_reason=code)
                return
            ending = _search.verdict(
                self.spec,
                self.objectives,
                failed=self.counters["failed"],
                launched=launched,
                running=len(self.running),
            )
            if ending.status:
                self._stop_trials()
                if ending.status == "Failed":
                    self._end("Failed", failure=ending.reason)
                else:
                    self._end("Completed", message=ending.reason)
                return
            while len(self.running) < self.spec.max_parallel_training_jobs and (
                launched < self.budget and not self._stop.is_set()
            ):
                if not self._launch(launched):
                    break  # every warm slot is still busy: its release wakes the loop
                launched += 1
            self._save(f"{len(self.running)} training jobs running, {launched} of {self.budget}")
            self._wake.wait(self.service.poll_seconds)
        self._stop_trials()
        self._end(
            "Failed",
            failure="The tuning job ran past the time its trials' runtime limits allow; "
            "its training jobs were stopped.",
        )

    # Trials --------------------------------------------------------------------------------

    def _launch(self, number: int) -> bool:
        """Start trial ``number``; False (nothing asked or started) when no warm slot is free."""
        name = _search.trial_name(self.spec.name, number)
        slot = self.pool.take(name) if self.pool is not None else None
        if self.pool is not None and slot is None:
            return False
        trial = self.study.ask(self.distributions)
        hyperparameters = _search.hyperparameters_of(self.spec, trial.params)
        record: dict[str, Any] = {
            "number": number,
            "training_job_name": name,
            "status": "InProgress",
            "hyperparameters": hyperparameters,
            "objective": None,
            "objective_status": "Pending",
            "pruned": False,
            "failure_reason": None,
            "created_at": _now().isoformat(),
            "ended_at": None,
        }
        self.records.append(record)
        try:
            spec = self._training_spec(name, hyperparameters)
            if slot is None:
                self.training.create(spec)
            else:
                self.training.create(spec, slot=slot)
        except KennelError as exc:
            if slot is not None:
                slot.release()
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            reason = exc.message + (f" ({exc.hint})" if exc.hint else "")
            record.update(
                status="Failed",
                objective_status="Failed",
                failure_reason=f"The training job could not start: {reason}",
                ended_at=_now().isoformat(),
            )
            self.counters["failed"] += 1
            return True
        self.running[name] = trial
        self.reported[name] = 0
        return True

    def _training_spec(self, name: str, hyperparameters: dict[str, Any]) -> TrainingJobSpec:
        spec = self.spec
        return TrainingJobSpec(
            name=name,
            entry_point=spec.entry_point,
            source_uri=spec.source_uri,
            hyperparameters=hyperparameters,
            dataset=spec.dataset,
            channels=spec.channels,
            instance_type=spec.instance_type,
            instance_count=spec.instance_count,
            max_runtime_seconds=spec.max_runtime_seconds,
            environment=spec.environment,
            metric_definitions=spec.resolved_metric_definitions(),
        )

    def _record(self, name: str) -> dict[str, Any]:
        return next(r for r in self.records if r["training_job_name"] == name)

    def _poll_running(self) -> None:
        for name, trial in list(self.running.items()):
            job = self.training.describe(name)
            if job["status"] == "InProgress" and _search.reports_intermediate(self.spec):
                self._report(name, trial)
            if job["status"] in TERMINAL_TRAINING:
                self._finish_trial(name, trial, job)
            else:
                self._record(name)["status"] = job["status"]

    def _report(self, name: str, trial: optuna.Trial) -> None:
        """Intermediate values are the objective metric's samples, one per step (epoch)."""
        if name in self.pruning:
            return
        points = self.training.metrics(name).get(self.metric, [])
        new = points[self.reported[name] :]
        for offset, point in enumerate(new):
            trial.report(float(point["value"]), self.reported[name] + offset)
        self.reported[name] += len(new)
        self._record(name)["objective"] = float(points[-1]["value"]) if points else None
        if new and trial.should_prune():
            self.pruning.add(name)
            log.info("tuning job %s: early stopping %s", self.spec.name, name)
            self._stop_training_job(name)

    def _finish_trial(self, name: str, trial: optuna.Trial, job: dict[str, Any]) -> None:
        # Out of `running` first: whatever happens below, a trial is told at most once.
        del self.running[name]
        record = self._record(name)
        record.update(status=job["status"], ended_at=job["ended_at"])
        self.instance_seconds_used += float(job.get("billable_seconds") or 0)
        value = _search.objective_of(self.training.metrics(name), self.metric)
        record["objective"] = value
        state = optuna.trial.TrialState.FAIL
        if name in self.pruning:
            state = optuna.trial.TrialState.PRUNED
            record.update(pruned=True, objective_status="Failed", failure_reason="Early stopped.")
            self.counters["pruned"] += 1
        elif job["status"] == "Completed" and value is not None and math.isfinite(value):
            self.study.tell(trial, value)
            state = optuna.trial.TrialState.COMPLETE
            record["objective_status"] = "Succeeded"
            self.counters["completed"] += 1
            self.objectives.append(value)
            if _search.better(
                value, self.best["objective"]["value"] if self.best else None, self.maximize
            ):
                self.best = self._best_of(record)
        elif job["status"] == "Completed":
            record.update(
                objective_status="Failed",
                failure_reason=f"The objective metric {self.metric!r} never appeared in the "
                "log; check its regex (metric_definitions) against the job's log.",
            )
            self.counters["failed"] += 1
        elif job["status"] == "Failed":
            record.update(objective_status="Failed", failure_reason=job["failure_reason"])
            self.counters["failed"] += 1
        else:
            record.update(objective_status="Failed", failure_reason=job["status_message"])
            self.counters["stopped"] += 1
        if state != optuna.trial.TrialState.COMPLETE:
            self.study.tell(trial, state=state)

    def _best_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """SageMaker's BestTrainingJob, in kennel's snake_case."""
        return {
            "training_job_name": record["training_job_name"],
            "hyperparameters": record["hyperparameters"],
            "objective": {
                "metric_name": self.metric,
                "type": self.spec.objective.type,
                "value": record["objective"],
            },
        }

    def _stop_training_job(self, name: str) -> None:
        try:
            self.training.stop(name)
        except ValidationError:
            log.debug("training job %s ended before it could be stopped", name)

    # Warm slots and the global budget ----------------------------------------------------

    def _open_slots(self) -> None:
        """Hold max_parallel warm slots when the server runs trials warm (KENNEL_WARM_TRIALS)
        and a trial is one instance; otherwise, or when they cannot open, trials start cold
        (multi-instance trials would need a DDP rendezvous across slots per trial)."""
        if not self.service.settings.warm_trials or self.spec.instance_count != 1:
            return
        self._save("Opening warm slots for the training jobs")
        template = self._training_spec(self.spec.name, {})
        try:
            self.pool = self.training.open_slots(
                self.spec.name,
                template,
                self.spec.max_parallel_training_jobs,
                on_free=self._wake.set,
                should_stop=self._stop.is_set,
            )
        except KennelError as exc:
            log.warning("tuning job %s: trials start cold: %s", self.spec.name, exc.message)

    def _close_slots(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                pool.close()
            except Exception:  # the job must still end; Ray reclaims what is left at exit
                log.exception("tuning job %s: closing its warm slots failed", self.spec.name)

    def _budget_spent(self) -> tuple[str, str] | None:
        """(completion reason, message) once the global budget is spent, else None."""
        limit = self.spec.max_tuning_runtime_seconds
        if limit is not None and time.monotonic() - self.began >= limit:
            return (
                "MaxRuntimeExceeded",
                f"Budget reached: the tuning job used its {limit} s of runtime "
                "(max_tuning_runtime_seconds); no new training jobs started and the running "
                "ones were stopped.",
            )
        hours = self.spec.max_instance_hours
        if hours is not None and self._instance_seconds() >= hours * 3600:
            return (
                "MaxInstanceHoursExceeded",
                f"Budget reached: the training jobs used {hours:g} instance-hours "
                "(max_instance_hours); no new training jobs started and the running ones were "
                "stopped.",
            )
        return None

    def _instance_seconds(self) -> float:
        """Ended trials' billable instance-seconds plus the running ones' so far."""
        used = self.instance_seconds_used
        now = _now()
        for name in self.running:
            job = self.training.describe(name)
            if job.get("training_started_at"):
                started = datetime.fromisoformat(job["training_started_at"])
                used += (now - started).total_seconds() * int(job.get("instance_count") or 1)
        return used

    def _stop_trials(self) -> None:
        """Stop the running trials and wait (bounded) until each has ended and been told."""
        for name in list(self.running):
            self._stop_training_job(name)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while self.running and time.monotonic() < deadline:
            self._save("Stopping the running training jobs")
            time.sleep(self.service.poll_seconds)
            for name, trial in list(self.running.items()):
                job = self.training.describe(name)
                if job["status"] in TERMINAL_TRAINING:
                    self._finish_trial(name, trial, job)
        for name, trial in list(self.running.items()):
            log.warning("tuning job %s: %s did not stop in time", self.spec.name, name)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._record(name).update(status="Stopping", objective_status="Failed")
            del self.running[name]

    # The row -------------------------------------------------------------------------------

    def _save(self, message: str, **values: Any) -> None:
        self.counters["in_progress"] = len(self.running)
        with self.service.db.session() as session:
            job = session.get(TuningJob, self.spec.name)
            assert job is not None
            job.trials = [dict(r) for r in self.records]
            job.counters = dict(self.counters)
            job.best_training_job = self.best
            job.updated_at = _now()
            if job.status == "InProgress" or "status" in values:
                job.status_message = message
            for key, value in values.items():
                setattr(job, key, value)

    def _end(
        self,
        status: str,
        *,
        message: str = "",
        failure: str | None = None,
        completion_reason: str | None = None,
    ) -> None:
        # The slots go before the status turns final: an ended job has nothing running.
        self._close_slots()
        # in_progress as _save counts it: a copy taken before would keep the last trial's 1
        counters = {
            **self.counters,
            "in_progress": len(self.running),
            "completion_reason": completion_reason,
        }
        self._save(
            message or (failure or status),
            status=status,
            failure_reason=failure,
            ended_at=_now(),
            counters=counters,
        )
        log.info("tuning job %s: %s %s", self.spec.name, status, failure or message)
