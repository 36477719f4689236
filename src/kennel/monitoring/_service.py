"""Monitoring as resources: schedules, executions, ground truth and model baselines.

A run (on schedule or on demand) reads the captured records of its window
(``_window``), joins the ground truth received for them (``_labels``), hands the window
to the worker (``_worker``: the drift tests, model quality and the report, with torch,
in a child process), and records the execution, its metrics (resource
``monitoring/<endpoint>``), its report (``monitoring/<endpoint>/reports/<id>.html``) and
the schedule's alarm: ALARM after a run with violations, OK after a clean one.

Baselines are computed when a model of the built-in trainer is created from a training
job (``on_model_created``, given to the model service by the server) or on demand; their
state is kept in the model's ``details["baseline"]``, their files under
``models/<name>/baseline/``.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from kennel._errors import ConflictError, KennelError, NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.monitoring._labels import parse_labels
from kennel.monitoring._schedule import (
    DEFAULT_WINDOW_SECONDS,
    BaselineSpec,
    RunSpec,
    ScheduleSpec,
    is_due,
)
from kennel.monitoring._window import CapturedWindow, read_window
from kennel.monitoring._worker import REPORT_FILE, REQUEST_FILE, SubprocessWorker, Worker
from kennel.store import (
    ArtifactStore,
    Database,
    Dataset,
    Endpoint,
    EndpointConfig,
    LambdaEvent,
    LambdaFunction,
    MetricSample,
    Model,
    MonitoringExecution,
    MonitoringSchedule,
    TrainingJob,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
BUILTIN_KIND = "builtin-image-classifier"
MAX_HISTORY = 50
"""Earlier executions drawn in a report's drift-over-time chart."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; everything here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment is not None else None


def schedule_to_dict(row: MonitoringSchedule) -> dict[str, Any]:
    return {
        "endpoint": row.endpoint,
        "status": row.status,
        "interval_seconds": row.interval_seconds,
        "window_seconds": row.window_seconds,
        "thresholds": dict(row.thresholds),
        "alarm": dict(row.alarm),
        "created_at": _iso(row.created_at),
        "last_run_at": _iso(row.last_run_at),
    }


def execution_to_dict(row: MonitoringExecution) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint": row.endpoint,
        "status": row.status,
        "failure_reason": row.failure_reason,
        "trigger": row.trigger,
        "window_start": _iso(row.window_start),
        "window_end": _iso(row.window_end),
        "counts": dict(row.counts),
        "result": dict(row.result),
        "metrics": dict(row.metrics),
        "report_key": row.report_key,
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
    }


class MonitoringService:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        worker: Worker | None = None,
        tick_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self.clock = clock
        self.worker: Worker = worker or SubprocessWorker()
        self.tick_seconds = tick_seconds
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._baselines: dict[str, threading.Thread] = {}

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run due schedules every ``tick_seconds`` on a background thread."""
        self._stop.clear()
        self._loop = threading.Thread(target=self._schedule_loop, name="monitoring", daemon=True)
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        close = getattr(self.worker, "close", None)
        if callable(close):
            close()  # a baseline or run under way ends Failed; the next server may redo it
        if self._loop is not None:
            self._loop.join(timeout)
            self._loop = None

    def recover(self) -> None:
        """Runs and baselines a previous server left InProgress did not finish: say so."""
        with self.db.session() as session:
            for execution in session.scalars(
                select(MonitoringExecution).where(MonitoringExecution.status == "InProgress")
            ).all():
                execution.status = "Failed"
                execution.failure_reason = "The server stopped during the run."
                execution.ended_at = self.clock()
            for row in session.scalars(select(Model)).all():
                state = row.details.get("baseline")
                if isinstance(state, dict) and state.get("status") == "InProgress":
                    row.details = {
                        **row.details,
                        "baseline": {
                            **state,
                            "status": "Failed",
                            "reason": "The server stopped while the baseline was computed; "
                            f"recompute it with POST /api/v1/models/{row.name}/baseline.",
                        },
                    }

    def _schedule_loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.run_due()
            except Exception:
                log.exception("running due monitoring schedules failed")

    def run_due(self) -> list[dict[str, Any]]:
        """Run every schedule whose interval has passed since its last run."""
        now = self.clock()
        with self.db.session() as session:
            due = [
                row.endpoint
                for row in session.scalars(select(MonitoringSchedule)).all()
                if row.status == "Scheduled"
                and is_due(
                    now,
                    _aware(row.created_at),
                    _aware(row.last_run_at) if row.last_run_at else None,
                    row.interval_seconds,
                )
            ]
        done: list[dict[str, Any]] = []
        for endpoint in due:
            try:
                done.append(self.run(endpoint, trigger="Scheduled"))
            except NotFoundError:
                # The endpoint was deleted (endpoints/ cannot tell monitoring/): so is this.
                with self.db.session() as session:
                    session.execute(
                        delete(MonitoringSchedule).where(MonitoringSchedule.endpoint == endpoint)
                    )
            except KennelError as error:
                log.warning("scheduled monitoring of %s: %s", endpoint, error.message)
        return done

    # Schedules -----------------------------------------------------------------------------

    def put_schedule(self, endpoint: str, spec: ScheduleSpec) -> dict[str, Any]:
        self._endpoint(endpoint)
        if spec.alarm_function is not None:
            self._function(spec.alarm_function)
        thresholds = checked_thresholds(spec.thresholds)
        with self.db.session() as session:
            row = session.get(MonitoringSchedule, endpoint)
            alarm = {"state": "INSUFFICIENT_DATA", "reason": "No run yet.", "updated_at": None}
            if row is None:
                row = MonitoringSchedule(endpoint=endpoint, created_at=self.clock(), alarm=alarm)
                session.add(row)
            row.interval_seconds = spec.interval_seconds
            row.window_seconds = spec.window_seconds
            row.thresholds = thresholds
            row.alarm = {**(row.alarm or alarm), "function": spec.alarm_function}
            row.status = "Scheduled"
            session.flush()
            return schedule_to_dict(row)

    def describe_schedule(self, endpoint: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(MonitoringSchedule, endpoint)
            if row is None:
                raise _no_schedule(endpoint)
            info = schedule_to_dict(row)
        latest = self.list_executions(endpoint, limit=1)
        info["latest_execution"] = latest[0] if latest else None
        return info

    def list_schedules(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every schedule, by endpoint name; ``endpoint`` keeps only that endpoint's (as
        ListMonitoringSchedules' EndpointName does): an empty list, not an error, if none."""
        query = select(MonitoringSchedule).order_by(MonitoringSchedule.endpoint)
        if endpoint is not None:
            query = query.where(MonitoringSchedule.endpoint == endpoint)
        with self.db.session() as session:
            return [schedule_to_dict(row) for row in session.scalars(query).all()]

    def delete_schedule(self, endpoint: str) -> None:
        with self.db.session() as session:
            row = session.get(MonitoringSchedule, endpoint)
            if row is None:
                raise _no_schedule(endpoint)
            session.delete(row)

    # Executions ----------------------------------------------------------------------------

    def list_executions(self, endpoint: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(
                select(MonitoringExecution)
                .where(MonitoringExecution.endpoint == endpoint)
                .order_by(MonitoringExecution.started_at.desc(), MonitoringExecution.id.desc())
                .limit(limit)
            ).all()
            return [execution_to_dict(r) for r in rows]

    def describe_execution(self, endpoint: str, execution_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(MonitoringExecution, execution_id)
            if row is None or row.endpoint != endpoint:
                raise NotFoundError(
                    f"Endpoint {endpoint} has no monitoring execution {execution_id}.",
                    hint=f"See `kennel endpoints monitor {endpoint} --json`.",
                )
            return execution_to_dict(row)

    def report(self, endpoint: str, execution_id: str) -> str:
        info = self.describe_execution(endpoint, execution_id)
        key = info["report_key"]
        if not key or not self.artifacts.exists(key):
            raise NotFoundError(
                f"Execution {execution_id} of {endpoint} has no report "
                f"({info['status']}: {info['failure_reason'] or 'nothing was analysed'}).",
            )
        with self.artifacts.open(key, "rb") as f:
            page: bytes = f.read()
        return page.decode("utf-8")

    def run(
        self, endpoint: str, spec: RunSpec | None = None, *, trigger: str = "OnDemand"
    ) -> dict[str, Any]:
        """Compare the endpoint's window with its model's baseline; returns the execution."""
        self._endpoint(endpoint)
        with self._lock:
            if endpoint in self._running:
                raise ConflictError(
                    f"A monitoring run of {endpoint} is already in progress.",
                    hint="Wait for it to end (GET .../monitoring/executions).",
                )
            self._running.add(endpoint)
        try:
            return self._run(endpoint, spec or RunSpec(), trigger)
        finally:
            with self._lock:
                self._running.discard(endpoint)

    def _run(self, endpoint: str, spec: RunSpec, trigger: str) -> dict[str, Any]:
        now = self.clock()
        end = _aware(spec.end) if spec.end else now
        start = _aware(spec.start) if spec.start else self._default_start(endpoint, end)
        execution_id = f"{end.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        with self.db.session() as session:
            session.add(
                MonitoringExecution(
                    id=execution_id,
                    endpoint=endpoint,
                    status="InProgress",
                    trigger=trigger,
                    window_start=start,
                    window_end=end,
                    started_at=now,
                )
            )
        try:
            outcome = self._analyse(endpoint, execution_id, start, end, now, trigger)
        except Exception as error:
            reason = error.message if isinstance(error, KennelError) else repr(error)
            if not isinstance(error, KennelError):
                log.exception("monitoring run %s of %s failed", execution_id, endpoint)
            self._finish(execution_id, status="Failed", failure_reason=reason)
            self._mark_schedule(endpoint, None)
            return self.describe_execution(endpoint, execution_id)
        self._record_metrics(endpoint, outcome["metrics"])
        self._finish(execution_id, **outcome)
        self._mark_schedule(endpoint, outcome)
        return self.describe_execution(endpoint, execution_id)

    def _default_start(self, endpoint: str, end: datetime) -> datetime:
        """Where the last run's window ended, else the schedule's window (default 1 h)."""
        with self.db.session() as session:
            last = session.scalars(
                select(MonitoringExecution.window_end)
                .where(
                    MonitoringExecution.endpoint == endpoint,
                    MonitoringExecution.status != "Failed",
                    MonitoringExecution.window_end <= end,
                )
                .order_by(MonitoringExecution.window_end.desc())
                .limit(1)
            ).first()
            schedule = session.get(MonitoringSchedule, endpoint)
            seconds = (schedule.window_seconds or schedule.interval_seconds) if schedule else None
        if last is not None and _aware(last) < end:
            return _aware(last)
        return end - timedelta(seconds=seconds or DEFAULT_WINDOW_SECONDS)

    def _analyse(
        self,
        endpoint: str,
        execution_id: str,
        start: datetime,
        end: datetime,
        now: datetime,
        trigger: str,
    ) -> dict[str, Any]:
        variant, model = self._model_of(endpoint)
        baseline = model.details.get("baseline") or {}
        if baseline.get("status") != "Completed":
            raise ValidationError(
                f"Model {model.name} (behind {endpoint}) has no baseline "
                f"({baseline.get('status', 'never computed')}"
                f"{': ' + baseline['reason'] if baseline.get('reason') else ''}).",
                hint=f"Compute one: POST /api/v1/models/{model.name}/baseline "
                '{"dataset": "<data set>"}.',
            )
        window = read_window(self.artifacts, endpoint, start, end, variant=variant)
        truth = self.ground_truth(endpoint)
        counts = dict(window.counts)
        if not window.records:
            return {
                "status": "Completed",
                "counts": counts,
                "result": {"checks": [], "violations": [], "note": "no captured records"},
                "metrics": {"records": 0.0},
                "report_key": None,
            }
        classes: list[str] = list(model.details.get("baseline", {}).get("classes") or [])
        with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir) as tmp:
            job = Path(tmp)
            classes = self._prepare_job(job, model, str(baseline["key"]), classes)
            records = self._records(job, window, truth, classes)
            counts["labelled"] = sum(1 for r in records if r.get("actual"))
            request = {
                "endpoint": endpoint,
                "execution": {
                    "id": execution_id,
                    "endpoint": endpoint,
                    "started": now.isoformat(),
                    "trigger": trigger,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "counts": counts,
                    "model": model.name,
                },
                "history": self._history(endpoint),
                "thresholds": self._thresholds(endpoint),
                "records": records,
            }
            (job / REQUEST_FILE).write_text(json.dumps(request), encoding="utf-8")
            result = self.worker.analyze(job)
            report_key = f"monitoring/{endpoint}/reports/{execution_id}.html"
            if (job / REPORT_FILE).is_file():
                with (
                    (job / REPORT_FILE).open("rb") as src,
                    self.artifacts.open(report_key, "wb") as dst,
                ):
                    shutil.copyfileobj(src, dst)
            else:
                report_key = ""
        metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
        metrics["records"] = float(len(window.records))
        metrics["violations"] = float(len(result.get("violations") or []))
        violated = bool(result.get("violations"))
        return {
            "status": "CompletedWithViolations" if violated else "Completed",
            "counts": counts,
            "result": result,
            "metrics": metrics,
            "report_key": report_key or None,
        }

    def _prepare_job(
        self, job: Path, model: Model, baseline_key: str, classes: list[str]
    ) -> list[str]:
        """The baseline and the model in the job folder; the model's class names."""
        from kennel.datasets import safe_extract

        baseline_dir = job / "baseline"
        baseline_dir.mkdir()
        for key in self.artifacts.list(baseline_key):
            with (
                self.artifacts.open(key, "rb") as src,
                (baseline_dir / Path(key).name).open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        archive = job / "model.tar.gz"
        _download(model.artifact_uri, archive)
        (job / "model").mkdir()
        safe_extract(archive, job / "model")
        archive.unlink()
        classes_file = job / "model" / "classes.json"
        if classes_file.is_file():
            return [str(c) for c in json.loads(classes_file.read_text())]
        return classes

    def _records(
        self, job: Path, window: CapturedWindow, truth: dict[str, str], classes: list[str]
    ) -> list[dict[str, Any]]:
        images = job / "images"
        images.mkdir()
        records: list[dict[str, Any]] = []
        for number, record in enumerate(window.records):
            entry: dict[str, Any] = {"key": record.key, "image": None, "prediction": None}
            if record.image is not None:
                name = f"images/{number:06d}.bin"
                (job / name).write_bytes(record.image)
                entry["image"] = name
            if record.prediction is not None:
                p = record.prediction
                entry["prediction"] = [p.index, p.confidence]
                entry["predicted"] = p.label or (
                    classes[p.index] if 0 <= p.index < len(classes) else str(p.index)
                )
            entry["actual"] = truth.get(record.key) or (
                truth.get(record.event_id) if record.inference_id else None
            )
            records.append(entry)
        return records

    def _history(self, endpoint: str) -> list[dict[str, Any]]:
        past = self.list_executions(endpoint, limit=MAX_HISTORY)
        return [
            {
                "id": e["id"],
                "status": e["status"],
                "started": e["started_at"],
                "window_end": e["window_end"],
                "metrics": e["metrics"],
            }
            for e in reversed(past)
            if e["status"] in ("Completed", "CompletedWithViolations")
        ]

    def _thresholds(self, endpoint: str) -> dict[str, float]:
        with self.db.session() as session:
            row = session.get(MonitoringSchedule, endpoint)
            return dict(row.thresholds) if row is not None else {}

    def _finish(self, execution_id: str, **fields: Any) -> None:
        with self.db.session() as session:
            row = session.get(MonitoringExecution, execution_id)
            if row is None:
                return
            for name, value in fields.items():
                setattr(row, name, value)
            row.ended_at = self.clock()

    def _record_metrics(self, endpoint: str, metrics: dict[str, float]) -> None:
        now = self.clock()
        with self.db.session() as session:
            session.add_all(
                MetricSample(resource=f"monitoring/{endpoint}", name=k, value=v, timestamp=now)
                for k, v in metrics.items()
            )

    def _mark_schedule(self, endpoint: str, outcome: dict[str, Any] | None) -> None:
        """The schedule's last run, and its alarm: ALARM on violations, OK on a clean run."""
        now = self.clock()
        with self.db.session() as session:
            row = session.get(MonitoringSchedule, endpoint)
            if row is None:
                return
            row.last_run_at = now
            if outcome is None:
                return
            violations = list(outcome["result"].get("violations") or [])
            state = "ALARM" if violations else "OK"
            previous = dict(row.alarm or {})
            reason = (
                f"Violations: {', '.join(violations)}." if violations else "The last run was clean."
            )
            row.alarm = {
                **previous,
                "state": state,
                "reason": reason,
                "updated_at": now.isoformat(),
            }
            function = previous.get("function")
            if state == "ALARM" and previous.get("state") != "ALARM" and function:
                session.add(_alarm_event(function, endpoint, outcome, now))

    # Ground truth --------------------------------------------------------------------------

    def put_labels(self, endpoint: str, body: bytes) -> dict[str, Any]:
        """Store the accepted lines under ``ground-truth/``; say which lines were refused."""
        self._endpoint(endpoint)
        parsed = parse_labels(body)
        answer = parsed.summary()
        if parsed.accepted:
            now = self.clock()
            key = (
                f"monitoring/{endpoint}/ground-truth/{now:%Y/%m/%d/%H}/"
                f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.jsonl"
            )
            lines = "".join(
                json.dumps(
                    {"inference_id": g.key, "label": g.label, "received_at": now.isoformat()}
                )
                + "\n"
                for g in parsed.accepted
            )
            with self.artifacts.open(key, "wb") as f:
                f.write(lines.encode("utf-8"))
            answer["key"] = key
        return answer

    def ground_truth(self, endpoint: str) -> dict[str, str]:
        """Every label received for the endpoint's inferences (a later one wins)."""
        labels: dict[str, str] = {}
        for key in self.artifacts.list(f"monitoring/{endpoint}/ground-truth"):
            if not key.endswith(".jsonl"):
                continue
            with self.artifacts.open(key, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    try:
                        document = json.loads(line)
                        labels[str(document["inference_id"])] = str(document["label"])
                    except (ValueError, KeyError, TypeError):
                        continue
        return labels

    # Baselines -----------------------------------------------------------------------------

    def on_model_created(self, name: str) -> None:
        """The model service's hook: start a baseline for a built-in model made from a job."""
        with self.db.session() as session:
            row = session.get(Model, name)
            if (
                row is None
                or row.kind != BUILTIN_KIND
                or not row.source.startswith("training-job/")
            ):
                return
        try:
            self.request_baseline(name, BaselineSpec())
        except KennelError as error:
            self._set_baseline(name, {"status": "Failed", "reason": error.message})

    def request_baseline(self, name: str, spec: BaselineSpec) -> dict[str, Any]:
        """Mark the model's baseline InProgress and compute it on a background thread."""
        dataset_uri = self._dataset_of(name, spec.dataset)
        with self._lock:
            busy = self._baselines.get(name)
            if busy is not None and busy.is_alive():
                raise ConflictError(
                    f"The baseline of model {name} is already being computed.",
                    hint=f"Watch details.baseline in `kennel models describe {name}`.",
                )
            state = {"status": "InProgress", "dataset_uri": dataset_uri, "reason": None}
            self._set_baseline(name, state)
            thread = threading.Thread(
                target=self.compute_baseline,
                args=(name, dataset_uri),
                name=f"baseline-{name}",
                daemon=True,
            )
            self._baselines[name] = thread
            thread.start()
        return state

    def wait_baseline(self, name: str, timeout: float) -> None:
        thread = self._baselines.get(name)
        if thread is not None:
            thread.join(timeout)

    def compute_baseline(self, name: str, dataset_uri: str) -> None:
        key = f"models/{name}/baseline"
        try:
            with self.db.session() as session:
                row = session.get(Model, name)
                if row is None:
                    return
                artifact_uri = row.artifact_uri
            with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir) as tmp:
                from kennel.datasets import safe_extract

                archive = Path(tmp) / "model.tar.gz"
                _download(artifact_uri, archive)
                model_dir = Path(tmp) / "model"
                model_dir.mkdir()
                safe_extract(archive, model_dir)
                dataset_dir = _local_folder(dataset_uri, Path(tmp) / "dataset")
                out = Path(tmp) / "baseline"
                summary = self.worker.baseline(model_dir, dataset_dir, out)
                self.artifacts.delete(key)
                self.artifacts.put_dir(out, key)
        except Exception as error:  # noqa: BLE001 - recorded on the model
            reason = error.message if isinstance(error, KennelError) else f"{error}"
            log.warning("baseline of model %s failed: %s", name, reason)
            self._set_baseline(
                name, {"status": "Failed", "dataset_uri": dataset_uri, "reason": reason}
            )
            return
        self._set_baseline(
            name,
            {
                "status": "Completed",
                "dataset_uri": dataset_uri,
                "key": key,
                "uri": self.artifacts.uri(key),
                "classes": summary.get("classes"),
                "n": summary.get("n"),
                "accuracy": summary.get("accuracy"),
                "created": summary.get("created"),
                "reason": None,
            },
        )

    def _set_baseline(self, name: str, state: dict[str, Any]) -> None:
        with self.db.session() as session:
            row = session.get(Model, name)
            if row is not None:
                row.details = {**row.details, "baseline": state}

    def _dataset_of(self, name: str, dataset: str | None) -> str:
        with self.db.session() as session:
            model = session.get(Model, name)
            if model is None:
                raise NotFoundError(
                    f"Could not find model {name}.", hint="See `kennel models list`."
                )
            if model.kind != BUILTIN_KIND:
                raise ValidationError(
                    f"Model {name} is a {model.kind} model; baselines need a model of the "
                    "built-in trainer (its penultimate layer gives the embeddings).",
                )
            if dataset is not None:
                row = session.get(Dataset, dataset)
                if row is None or not row.artifact_uri:
                    raise ValidationError(
                        f"Data set {dataset} does not exist or is not ready.",
                        hint="See `kennel datasets list`.",
                    )
                return row.artifact_uri
            job_name = model.source.removeprefix("training-job/")
            job = session.get(TrainingJob, job_name) if model.source != job_name else None
            train = (job.channels or {}).get("train") if job is not None else None
            if not isinstance(train, str):
                raise ValidationError(
                    f"Model {name} was not made from a training job with a train channel, "
                    "so its data set is unknown.",
                    hint=f'POST /api/v1/models/{name}/baseline {{"dataset": "<name>"}}.',
                )
            return train.rstrip("/").rsplit("/", 1)[0]

    # Helpers -------------------------------------------------------------------------------

    def _endpoint(self, name: str) -> None:
        with self.db.session() as session:
            if session.get(Endpoint, name) is None:
                raise NotFoundError(
                    f"Could not find endpoint {name}.", hint="See `kennel endpoints list`."
                )

    def _function(self, name: str) -> None:
        with self.db.session() as session:
            if session.get(LambdaFunction, name.split(":", 1)[0]) is None:
                raise ValidationError(
                    f"The alarm function {name} does not exist.",
                    hint="See `kennel functions list`.",
                )

    def _model_of(self, endpoint: str) -> tuple[str, Model]:
        """The endpoint's first variant and its model: what monitoring compares (another
        variant's traffic goes to another model, with its own baseline)."""
        with self.db.session() as session:
            row = session.get(Endpoint, endpoint)
            config = session.get(EndpointConfig, row.config_name) if row is not None else None
            if config is None or not config.variants:
                raise ValidationError(f"Endpoint {endpoint} has no endpoint config to monitor.")
            first = config.variants[0]
            model = session.get(Model, first["model_name"])
            if model is None:
                raise ValidationError(
                    f"The model of endpoint {endpoint} ({first['model_name']}) no longer exists."
                )
            return str(first.get("variant_name") or "AllTraffic"), model

    def forget_endpoint(self, endpoint: str) -> None:
        """Drop an endpoint's schedule and executions (its files stay until deleted)."""
        with self.db.session() as session:
            session.execute(
                delete(MonitoringExecution).where(MonitoringExecution.endpoint == endpoint)
            )
            session.execute(
                delete(MonitoringSchedule).where(MonitoringSchedule.endpoint == endpoint)
            )


def checked_thresholds(values: dict[str, float]) -> dict[str, float | int]:
    """Overrides of the drift library's thresholds, refused here (400) rather than at the
    next run when a name is unknown or a value out of range."""
    import dataclasses
    import math

    from kennel.monitoring._drift import Thresholds

    known = {f.name: f for f in dataclasses.fields(Thresholds)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationError(
            f"Unknown threshold(s) {', '.join(unknown)}.",
            hint=f"Known: {', '.join(sorted(known))}.",
        )
    if not all(math.isfinite(v) for v in values.values()):
        raise ValidationError("Thresholds must be finite numbers.")
    typed: dict[str, float | int] = {
        k: int(v) if known[k].type in (int, "int") else float(v) for k, v in values.items()
    }
    Thresholds.from_dict(typed)  # its own range checks (a ValidationError)
    return typed


def _alarm_event(
    function: str, endpoint: str, outcome: dict[str, Any], now: datetime
) -> LambdaEvent:
    """An asynchronous invocation of the alarm's function, queued like Invoke's Event type."""
    event = {
        "source": "kennel.monitoring",
        "detail-type": "Monitoring Alarm State Change",
        "time": now.isoformat(),
        "detail": {
            "endpoint": endpoint,
            "state": "ALARM",
            "violations": outcome["result"].get("violations"),
            "checks": outcome["result"].get("checks"),
            "metrics": outcome["metrics"],
        },
    }
    return LambdaEvent(
        id=str(uuid.uuid4()),
        function=function,
        qualifier="",
        payload=json.dumps(event, default=str).encode(),
        client_context=None,
        status="queued",
        attempts=0,
        next_attempt_at=now,
    )


def _download(uri: str, target: Path) -> None:
    import fsspec

    with fsspec.open(uri, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)


def _local_folder(uri: str, scratch: Path) -> Path:
    """A data set's folder on this machine: itself when local, else a copy."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if "file" in ((fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)):
        return Path(path)
    fs.get(path.rstrip("/") + "/", str(scratch), recursive=True)
    return scratch


def _no_schedule(endpoint: str) -> NotFoundError:
    return NotFoundError(
        f"Endpoint {endpoint} has no monitoring schedule.",
        hint=f"Create one: kennel endpoints monitoring-schedule {endpoint} --every 3600.",
    )
