"""MonitoringService: schedules, windows of capture files, ground truth, runs, alarms.

The worker (torch, drift tests, report) is a fake here that records what it was given;
``test_monitoring_service_library.py`` runs the real one.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from tests.unit.monitoring._capture_files import png, record, write_capture

from kennel._errors import ConflictError, NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.monitoring._labels import parse_labels
from kennel.monitoring._schedule import BaselineSpec, RunSpec, ScheduleSpec
from kennel.monitoring._service import MonitoringService
from kennel.monitoring._window import parse_prediction, read_window
from kennel.monitoring._worker import REPORT_FILE, REQUEST_FILE, RESULT_FILE
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
    TrainingJob,
)

T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
CLASSES = ["001.cat", "002.dog", "003.fox"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeWorker:
    """Answers what it is told to; keeps the requests it was given."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.baselines: list[tuple[Path, Path]] = []
        self.fail_baseline = False

    def baseline(self, model_dir: Path, dataset_dir: Path, out: Path) -> dict[str, Any]:
        if self.fail_baseline:
            raise RuntimeError("the data set has no valid split")
        self.baselines.append((model_dir, dataset_dir))
        out.mkdir(parents=True)
        (out / "baseline.json").write_text(json.dumps({"classes": CLASSES}))
        return {"classes": CLASSES, "n": 12, "accuracy": 0.5, "created": "now"}

    def analyze(self, job: Path) -> dict[str, Any]:
        request = json.loads((job / REQUEST_FILE).read_text())
        assert (job / "baseline" / "baseline.json").is_file()
        assert (job / "model" / "classes.json").is_file()
        for entry in request["records"]:
            if entry["image"]:
                assert (job / entry["image"]).is_file()
        self.requests.append(request)
        result = {
            "checks": [
                {"name": n, "violated": n in self.violations, "statistic": 1.0, "threshold": 0.5}
                for n in ("embedding_drift", "image_statistics", "class_mix", "confidence")
            ],
            "violations": list(self.violations),
            "metrics": {"embedding_mmd": 0.3 if self.violations else 0.01},
        }
        (job / REPORT_FILE).write_text("<html>report</html>")
        (job / RESULT_FILE).write_text(json.dumps(result))
        return result


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    settings.tmp_dir.mkdir(parents=True)
    return settings


@pytest.fixture
def worker() -> FakeWorker:
    return FakeWorker()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def service(
    db: Database, artifacts: ArtifactStore, settings: Settings, worker: FakeWorker, clock: Clock
) -> MonitoringService:
    return MonitoringService(db, artifacts, settings, clock=clock, worker=worker)


def _model_archive(tmp: Path) -> Path:
    archive = tmp / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = json.dumps(CLASSES).encode()
        info = tarfile.TarInfo("classes.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


@pytest.fixture
def endpoint(db: Database, artifacts: ArtifactStore, tmp_path: Path) -> str:
    """Endpoint ``dogs`` serving model ``m`` whose baseline is Completed."""
    with artifacts.open("models/m/baseline/baseline.json", "wb") as f:
        f.write(json.dumps({"classes": CLASSES}).encode())
    with db.session() as session:
        session.add(
            Model(
                name="m",
                arn="arn:aws:sagemaker:r:1:model/m",
                artifact_uri=str(_model_archive(tmp_path)),
                kind="builtin-image-classifier",
                source="training-job/j",
                details={"baseline": {"status": "Completed", "key": "models/m/baseline"}},
            )
        )
        session.add(
            EndpointConfig(
                name="c",
                arn="arn:aws:sagemaker:r:1:endpoint-config/c",
                variants=[{"variant_name": "AllTraffic", "model_name": "m"}],
            )
        )
        session.add(
            Endpoint(
                name="dogs",
                arn="arn:aws:sagemaker:r:1:endpoint/dogs",
                status="InService",
                config_name="c",
            )
        )
    return "dogs"


def _traffic(artifacts: ArtifactStore, start: datetime, n: int, **kw: Any) -> list[str]:
    records = [
        record(
            "dogs",
            start + timedelta(seconds=i),
            body=png(i),
            output=[[2.0, 0.1, -1.0]] if i % 2 else [[-1.0, 3.0, 0.0]],
            inference_id=f"req-{i}",
            **kw,
        )
        for i in range(n)
    ]
    write_capture(artifacts, "dogs", records, start)
    return [r["eventMetadata"]["inferenceId"] for r in records]


# Labels and windows ----------------------------------------------------------------------


def test_labels_in_both_forms_with_reasons_for_bad_lines() -> None:
    body = b"\n".join(
        [
            b'{"inference_id": "a", "label": "001.cat"}',
            b'{"groundTruthData": {"data": "002.dog", "encoding": "CSV"},'
            b' "eventMetadata": {"eventId": "e-1"}, "eventVersion": "0"}',
            b"not json",
            b'{"inference_id": "b"}',
            b"",
            b'{"inference_id": "", "label": "x"}',
        ]
    )
    parsed = parse_labels(body)
    assert [(g.key, g.label) for g in parsed.accepted] == [("a", "001.cat"), ("e-1", "002.dog")]
    assert [r["line"] for r in parsed.rejected] == [3, 4, 6]
    assert "not JSON" in parsed.rejected[0]["reason"]


def test_outputs_become_a_class_and_a_confidence() -> None:
    logits = parse_prediction(b"[[2.0, 0.0, -1.0]]")
    assert logits is not None and logits.index == 0 and 0.8 < logits.confidence < 0.9
    probs = parse_prediction(b"[0.1, 0.7, 0.2]")
    assert probs is not None and probs.index == 1 and probs.confidence == pytest.approx(0.7)
    labelled = parse_prediction(
        b'{"predictions": [[{"label": "002.dog", "index": 1, "score": 0.9},'
        b' {"label": "001.cat", "index": 0, "score": 0.1}]]}'
    )
    assert labelled is not None and (labelled.index, labelled.label) == (1, "002.dog")
    assert parse_prediction(b"oops") is None


def test_a_window_keeps_its_hours_records_and_skips_url_inputs(artifacts: ArtifactStore) -> None:
    _traffic(artifacts, T0 - timedelta(minutes=30), 5)
    _traffic(artifacts, T0 - timedelta(hours=3), 4)  # before the window
    url = record(
        "dogs",
        T0 - timedelta(minutes=1),
        body=b'{"url": "http://x/a.jpg"}',
        content_type="application/json",
        output=[[0.5, 0.5, 0.0]],
    )
    write_capture(artifacts, "dogs", [url], T0 - timedelta(minutes=1))
    window = read_window(artifacts, "dogs", T0 - timedelta(hours=1), T0)
    assert window.counts["records"] == 6
    assert window.counts["images"] == 5
    assert window.counts["url_inputs"] == 1
    assert window.counts["predictions"] == 6
    assert window.records[0].image == png(0)


# Runs ------------------------------------------------------------------------------------


def test_a_clean_run_is_recorded_with_metrics_report_and_an_ok_alarm(
    service: MonitoringService, endpoint: str, artifacts: ArtifactStore, db: Database
) -> None:
    service.put_schedule(endpoint, ScheduleSpec())
    _traffic(artifacts, T0 - timedelta(minutes=20), 30)
    execution = service.run(endpoint)
    assert execution["status"] == "Completed", execution["failure_reason"]
    assert execution["counts"]["records"] == 30
    assert execution["window_start"] == (T0 - timedelta(hours=1)).isoformat()
    assert service.report(endpoint, execution["id"]) == "<html>report</html>"
    assert execution["report_key"] == f"monitoring/dogs/reports/{execution['id']}.html"
    with db.session() as session:
        names = set(
            session.scalars(
                select(MetricSample.name).where(MetricSample.resource == "monitoring/dogs")
            )
        )
    assert {"embedding_mmd", "records", "violations"} <= names
    schedule = service.describe_schedule(endpoint)
    assert schedule["alarm"]["state"] == "OK"
    assert schedule["last_run_at"] == T0.isoformat()
    assert schedule["latest_execution"]["id"] == execution["id"]


def test_violations_raise_the_alarm_and_queue_its_function(
    service: MonitoringService,
    endpoint: str,
    artifacts: ArtifactStore,
    worker: FakeWorker,
    db: Database,
    clock: Clock,
) -> None:
    with pytest.raises(ValidationError):
        service.put_schedule(endpoint, ScheduleSpec(alarm_function="pager"))
    with db.session() as session:
        session.add(
            LambdaFunction(
                name="pager",
                arn="arn:aws:lambda:r:1:function:pager",
                role="r",
                handler="h.handler",
                runtime="python3.11",
                memory_mb=128,
                timeout_s=3,
                code_uri="x",
                code_sha256="0" * 64,
                code_size=1,
                revision_id="1",
                config_revision="1",
            )
        )
    service.put_schedule(endpoint, ScheduleSpec(alarm_function="pager"))
    _traffic(artifacts, T0 - timedelta(minutes=20), 30)
    worker.violations = ["embedding_drift", "image_statistics"]
    execution = service.run(endpoint)
    assert execution["status"] == "CompletedWithViolations"
    alarm = service.describe_schedule(endpoint)["alarm"]
    assert alarm["state"] == "ALARM" and "embedding_drift" in alarm["reason"]
    with db.session() as session:
        events = session.scalars(select(LambdaEvent)).all()
        assert [e.function for e in events] == ["pager"]
        assert json.loads(events[0].payload)["detail"]["violations"] == worker.violations
    # A clean run puts it back to OK.
    worker.violations = []
    clock.now = T0 + timedelta(minutes=30)
    _traffic(artifacts, T0 + timedelta(minutes=5), 30)
    assert service.run(endpoint)["status"] == "Completed"
    assert service.describe_schedule(endpoint)["alarm"]["state"] == "OK"


def test_the_next_run_starts_where_the_last_one_ended(
    service: MonitoringService, endpoint: str, artifacts: ArtifactStore, clock: Clock
) -> None:
    _traffic(artifacts, T0 - timedelta(minutes=20), 10)
    first = service.run(endpoint)
    clock.now = T0 + timedelta(minutes=10)
    _traffic(artifacts, T0 + timedelta(minutes=1), 7)
    second = service.run(endpoint)
    assert second["window_start"] == first["window_end"]
    assert second["counts"]["records"] == 7
    listed = service.list_executions(endpoint)
    assert [e["id"] for e in listed] == [second["id"], first["id"]]


def test_ground_truth_is_joined_on_inference_id_else_event_id(
    service: MonitoringService, endpoint: str, artifacts: ArtifactStore, worker: FakeWorker
) -> None:
    ids = _traffic(artifacts, T0 - timedelta(minutes=20), 6)
    anonymous = record(
        "dogs", T0 - timedelta(minutes=5), body=png(99), output=[[0, 5.0, 0]], event_id="evt-99"
    )
    write_capture(artifacts, "dogs", [anonymous], T0 - timedelta(minutes=5))
    lines = [json.dumps({"inference_id": i, "label": "001.cat"}) for i in ids[:4]]
    lines.append(json.dumps({"inference_id": "evt-99", "label": "002.dog"}))
    lines.append("{broken")
    answer = service.put_labels(endpoint, "\n".join(lines).encode())
    assert (answer["accepted"], answer["rejected"]) == (5, 1)
    assert answer["key"].startswith("monitoring/dogs/ground-truth/2026/12/03/10/")
    execution = service.run(endpoint)
    assert execution["counts"]["labelled"] == 5
    sent = {r["key"]: (r.get("predicted"), r["actual"]) for r in worker.requests[-1]["records"]}
    assert sent["req-1"] == ("001.cat", "001.cat")  # logits [2, .1, -1]: class 0
    assert sent["req-0"] == ("002.dog", "001.cat")
    assert sent["evt-99"] == ("002.dog", "002.dog")
    assert sent["req-5"][1] is None


def test_a_model_without_a_baseline_fails_the_run_with_what_to_do(
    service: MonitoringService, endpoint: str, db: Database, artifacts: ArtifactStore
) -> None:
    with db.session() as session:
        row = session.get(Model, "m")
        assert row is not None
        row.details = {}
    _traffic(artifacts, T0 - timedelta(minutes=20), 3)
    execution = service.run(endpoint)
    assert execution["status"] == "Failed"
    assert "no baseline" in execution["failure_reason"]


def test_an_empty_window_completes_without_calling_the_worker(
    service: MonitoringService, endpoint: str, worker: FakeWorker
) -> None:
    execution = service.run(endpoint, RunSpec(start=T0 - timedelta(hours=2), end=T0))
    assert execution["status"] == "Completed"
    assert execution["counts"]["records"] == 0
    assert worker.requests == []


def test_runs_and_schedules_need_the_endpoint(service: MonitoringService) -> None:
    with pytest.raises(NotFoundError):
        service.run("nope")
    with pytest.raises(NotFoundError):
        service.put_schedule("nope", ScheduleSpec())
    with pytest.raises(NotFoundError):
        service.describe_schedule("nope")


def test_schedules_run_when_their_interval_has_passed(
    service: MonitoringService, endpoint: str, artifacts: ArtifactStore, clock: Clock
) -> None:
    service.put_schedule(endpoint, ScheduleSpec(interval_seconds=3600))
    _traffic(artifacts, T0 + timedelta(minutes=5), 4)
    clock.now = T0 + timedelta(minutes=59)
    assert service.run_due() == []
    clock.now = T0 + timedelta(minutes=61)
    done = service.run_due()
    assert [e["trigger"] for e in done] == ["Scheduled"]
    assert done[0]["counts"]["records"] == 4
    clock.now = T0 + timedelta(minutes=90)
    assert service.run_due() == []  # the next one is due an interval after the last run
    service.delete_schedule(endpoint)
    clock.now = T0 + timedelta(hours=5)
    assert service.run_due() == []


def test_schedules_are_listed_and_filtered_by_endpoint(
    service: MonitoringService, endpoint: str
) -> None:
    assert service.list_schedules() == []
    assert service.list_schedules(endpoint) == []  # not monitored: empty, not an error
    made = service.put_schedule(endpoint, ScheduleSpec(interval_seconds=600))
    assert service.list_schedules(endpoint) == [made]
    assert service.list_schedules() == [made]
    assert service.list_schedules("other") == []
    service.delete_schedule(endpoint)
    assert service.list_schedules(endpoint) == []


def test_one_run_at_a_time_per_endpoint(service: MonitoringService, endpoint: str) -> None:
    service._running.add(endpoint)
    with pytest.raises(ConflictError):
        service.run(endpoint)


# Baselines -------------------------------------------------------------------------------


def _job_model(db: Database, tmp_path: Path, name: str = "fromjob") -> None:
    dataset = tmp_path / "datasets" / "digits"
    (dataset / "train").mkdir(parents=True)
    with db.session() as session:
        session.add(
            TrainingJob(
                name="j",
                status="Completed",
                secondary_status="Completed",
                entry_point="builtin",
                instance_type="ml.m5.large",
                instance_count=1,
                max_runtime_seconds=60,
                output_path="x",
                channels={"train": f"{dataset}/train", "valid": f"{dataset}/valid"},
            )
        )
        session.add(
            Model(
                name=name,
                arn=f"arn:aws:sagemaker:r:1:model/{name}",
                artifact_uri=str(_model_archive(tmp_path)),
                kind="builtin-image-classifier",
                source="training-job/j",
                details={"arch": "small-cnn"},
            )
        )


def test_a_model_from_a_job_gets_a_baseline_of_its_data_set(
    service: MonitoringService,
    db: Database,
    tmp_path: Path,
    worker: FakeWorker,
    artifacts: ArtifactStore,
) -> None:
    _job_model(db, tmp_path)
    service.on_model_created("fromjob")
    service.wait_baseline("fromjob", 30)
    with db.session() as session:
        row = session.get(Model, "fromjob")
        assert row is not None
        state = row.details["baseline"]
    assert state["status"] == "Completed", state
    assert state["key"] == "models/fromjob/baseline"
    assert row.details["arch"] == "small-cnn"
    assert artifacts.exists("models/fromjob/baseline/baseline.json")
    assert worker.baselines[0][1] == tmp_path / "datasets" / "digits"


def test_a_failed_baseline_says_why(
    service: MonitoringService, db: Database, tmp_path: Path, worker: FakeWorker
) -> None:
    _job_model(db, tmp_path)
    worker.fail_baseline = True
    service.request_baseline("fromjob", BaselineSpec())
    service.wait_baseline("fromjob", 30)
    with db.session() as session:
        row = session.get(Model, "fromjob")
        assert row is not None
        assert row.details["baseline"]["status"] == "Failed"
        assert "no valid split" in row.details["baseline"]["reason"]


def test_recover_fails_baselines_a_stopped_server_left(
    service: MonitoringService, db: Database, tmp_path: Path
) -> None:
    _job_model(db, tmp_path)
    with db.session() as session:
        row = session.get(Model, "fromjob")
        assert row is not None
        row.details = {**row.details, "baseline": {"status": "InProgress"}}
    with db.session() as session:
        session.add(
            MonitoringExecution(
                id="left", endpoint="e", status="InProgress", window_start=T0, window_end=T0
            )
        )
    service.recover()
    with db.session() as session:
        row = session.get(Model, "fromjob")
        assert row is not None
        assert row.details["baseline"]["status"] == "Failed"
        left = session.get(MonitoringExecution, "left")
        assert left is not None and left.status == "Failed"


def test_the_schedule_of_a_deleted_endpoint_goes_with_it(
    service: MonitoringService, endpoint: str, db: Database, clock: Clock
) -> None:
    service.put_schedule(endpoint, ScheduleSpec(interval_seconds=60))
    with db.session() as session:
        session.execute(delete(Endpoint))
    clock.now = T0 + timedelta(minutes=5)
    assert service.run_due() == []
    with pytest.raises(NotFoundError):
        service.describe_schedule(endpoint)


def test_a_run_reads_only_the_monitored_variants_captures(
    service: MonitoringService, endpoint: str, artifacts: ArtifactStore
) -> None:
    _traffic(artifacts, T0 - timedelta(minutes=20), 5)
    other = [
        record(
            "dogs", T0 - timedelta(minutes=10), body=png(7), output=[[1, 0, 0]], variant="Canary"
        )
    ]
    key = write_capture(artifacts, "dogs", other, T0 - timedelta(minutes=10))
    moved = key.replace("/AllTraffic/", "/Canary/")
    with artifacts.open(key, "rb") as src, artifacts.open(moved, "wb") as dst:
        dst.write(src.read())
    artifacts.delete(key)
    assert service.run(endpoint)["counts"]["records"] == 5


def test_thresholds_are_checked_when_the_schedule_is_written(
    service: MonitoringService, endpoint: str
) -> None:
    saved = service.put_schedule(
        endpoint, ScheduleSpec(thresholds={"alpha": 0.05, "permutations": 50})
    )
    assert saved["thresholds"] == {"alpha": 0.05, "permutations": 50}
    with pytest.raises(ValidationError, match="Unknown threshold"):
        service.put_schedule(endpoint, ScheduleSpec(thresholds={"alfa": 0.05}))
    with pytest.raises(ValidationError):
        service.put_schedule(endpoint, ScheduleSpec(thresholds={"alpha": 3}))


def test_a_failing_worker_process_says_why(tmp_path: Path) -> None:
    from kennel._errors import InternalError
    from kennel.monitoring._worker import SubprocessWorker

    with pytest.raises(InternalError, match=r"analyze.*request\.json"):
        SubprocessWorker(timeout_seconds=120).analyze(tmp_path)


def test_a_baseline_on_demand_takes_a_data_set_by_name(
    service: MonitoringService, endpoint: str, db: Database, tmp_path: Path, worker: FakeWorker
) -> None:
    with db.session() as session:
        session.add(Dataset(name="breeds", status="Ready", artifact_uri=str(tmp_path / "breeds")))
        session.add(Model(name="custom", arn="a", artifact_uri="x", kind="custom", source="file"))
    with pytest.raises(ValidationError, match="does not exist"):
        service.request_baseline("m", BaselineSpec(dataset="nope"))
    with pytest.raises(ValidationError, match="built-in trainer"):
        service.request_baseline("custom", BaselineSpec(dataset="breeds"))
    with pytest.raises(NotFoundError):
        service.request_baseline("ghost", BaselineSpec(dataset="breeds"))
    state = service.request_baseline("m", BaselineSpec(dataset="breeds"))
    assert state["status"] == "InProgress"
    service.wait_baseline("m", 30)
    assert worker.baselines[-1][1] == tmp_path / "breeds"
    with db.session() as session:
        row = session.get(Model, "m")
        assert row is not None and row.details["baseline"]["status"] == "Completed"
