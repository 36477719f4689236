"""Notebook instances' states and bill over time, on a real SQLite file with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError as PydanticValidationError

from kennel._errors import ConflictError, NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.notebooks import (
    NotebookHeartbeat,
    NotebookInstanceSpec,
    NotebookService,
    StartNotebookInstance,
)
from kennel.notebooks._lifecycle import cost_usd, running_seconds, settle_if_silent
from kennel.store import Database, NotebookInstance

T0 = datetime(2026, 12, 9, 12, 0, 0, tzinfo=UTC)
PRICE = 0.05  # ml.t3.medium, USD per hour
TIMEOUT = 30.0
URL = "http://127.0.0.1:8890/lab"


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Database, clock: Clock) -> NotebookService:
    settings = Settings(notebook_heartbeat_timeout_seconds=TIMEOUT)
    return NotebookService(db, settings, account_id="123456789012", region="us-east-1", clock=clock)


def beat(service: NotebookService, name: str = "nb", **report: object) -> dict[str, object]:
    return service.heartbeat(name, NotebookHeartbeat.model_validate(report))


def in_service(service: NotebookService, clock: Clock, name: str = "nb") -> None:
    service.create(NotebookInstanceSpec(name=name, workspace="/home/me/work"))
    clock.advance(5)  # JupyterLab takes a while to answer: not billed
    assert beat(service, name, url=URL)["status"] == "InService"


def test_create_is_pending_until_jupyterlab_answers_then_bills_running_time(
    service: NotebookService, clock: Clock
) -> None:
    made = service.create(
        NotebookInstanceSpec(name="nb", workspace="/home/me/work", client={"host": "h", "pid": 7})
    )
    assert made["status"] == "Pending" and made["url"] is None
    assert made["arn"] == "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb"
    assert (made["instance_type"], made["price_per_hour"]) == ("ml.t3.medium", PRICE)
    assert made["client"] == {"host": "h", "pid": 7}
    assert made["running_seconds"] == 0 and made["cost_usd"] == 0

    clock.advance(5)
    assert beat(service)["status"] == "Pending"  # alive, JupyterLab not answering yet
    ready = beat(service, url=URL)
    assert ready["status"] == "InService" and ready["url"] == URL
    assert ready["last_started_at"] == (T0 + timedelta(seconds=5)).isoformat()

    clock.advance(20)  # the cost of a running one grows as it runs, between heartbeats too
    assert service.describe("nb")["running_seconds"] == 20
    for _ in range(143):
        beat(service)
        clock.advance(25)
    clock.advance(5)
    assert service.describe("nb")["running_seconds"] == 3600
    assert service.describe("nb")["cost_usd"] == pytest.approx(PRICE)


def test_stop_and_start_again_accumulate_running_time_and_cost(
    service: NotebookService, clock: Clock
) -> None:
    in_service(service, clock)
    clock.advance(20)
    stopped = beat(service, stopped=True)
    assert stopped["status"] == "Stopped" and stopped["url"] is None
    assert stopped["running_seconds"] == 20
    clock.advance(1000)  # stopped time costs nothing
    assert service.describe("nb")["running_seconds"] == 20

    restarted = service.start("nb", StartNotebookInstance(instance_type="ml.m5.xlarge"))
    assert restarted["status"] == "Pending" and restarted["running_seconds"] == 20
    assert restarted["workspace"] == "/home/me/work"  # kept when not given
    beat(service, url=URL)
    for _ in range(144):
        clock.advance(25)
        beat(service)
    again = beat(service, stopped=True)
    assert again["running_seconds"] == 3620
    # Each period at the price of the type it ran as.
    assert again["cost_usd"] == pytest.approx(20 * PRICE / 3600 + 0.23)


def test_silence_longer_than_the_timeout_settles_stopped_billed_to_the_last_heartbeat(
    service: NotebookService, clock: Clock
) -> None:
    in_service(service, clock)
    for _ in range(4):
        clock.advance(10)
        beat(service)
    clock.advance(TIMEOUT)  # exactly at the bound: still InService
    assert service.describe("nb")["status"] == "InService"
    clock.advance(1)
    settled = service.describe("nb")
    assert settled["status"] == "Stopped"
    assert "No heartbeat" in settled["status_reason"] and "30 s" in settled["status_reason"]
    assert settled["running_seconds"] == 40
    assert settled["stopped_at"] == (T0 + timedelta(seconds=45)).isoformat()
    clock.advance(10_000)  # and the bill no longer grows
    assert service.list_all()[0]["running_seconds"] == 40

    with pytest.raises(ConflictError, match="is Stopped") as refused:
        beat(service)  # the process was only slow: it is told to end
    assert refused.value.hint and "kennel notebook --name nb" in refused.value.hint
    assert beat(service, stopped=True)["status"] == "Stopped"  # its last word changes nothing


def test_a_pending_instance_whose_process_died_settles_stopped_without_cost(
    service: NotebookService, clock: Clock
) -> None:
    service.create(NotebookInstanceSpec(name="nb"))
    clock.advance(TIMEOUT + 1)
    assert [n["status"] for n in service.list_all(status="Pending")] == []
    settled = service.list_all(status="Stopped")[0]
    assert settled["cost_usd"] == 0 and settled["last_started_at"] is None


def test_silence_counts_only_from_when_the_server_could_hear(db: Database, clock: Clock) -> None:
    first = NotebookService(
        db,
        Settings(notebook_heartbeat_timeout_seconds=TIMEOUT),
        account_id="1",
        region="r",
        clock=clock,
    )
    in_service(first, clock)
    clock.advance(600)  # the server was down for ten minutes
    restarted = NotebookService(
        db,
        Settings(notebook_heartbeat_timeout_seconds=TIMEOUT),
        account_id="1",
        region="r",
        clock=clock,
    )
    clock.advance(TIMEOUT - 1)
    assert restarted.describe("nb")["status"] == "InService"
    assert beat(restarted)["status"] == "InService"  # its command was alive all along


def test_stop_asks_the_running_command_which_then_reports_stopped(
    service: NotebookService, clock: Clock
) -> None:
    in_service(service, clock)
    clock.advance(10)
    stopping = service.stop("nb", requested_by="arn:aws:iam::123456789012:user/alice")
    assert stopping["status"] == "Stopping"
    assert "Stop requested by arn:aws:iam::123456789012:user/alice" in stopping["status_reason"]
    assert service.stop("nb")["status"] == "Stopping"  # asking twice is fine
    clock.advance(2)
    assert beat(service)["status"] == "Stopping"  # the command learns it here
    assert beat(service, url=URL)["status"] == "Stopping"  # and cannot undo it
    clock.advance(3)
    done = beat(service, stopped=True)
    assert done["status"] == "Stopped" and done["running_seconds"] == 15  # billed while stopping
    assert done["status_reason"].startswith(
        "Stop requested by arn:aws:iam::123456789012:user/alice"
    )

    with pytest.raises(ValidationError, match="only a Pending or InService"):
        service.stop("nb")


def test_a_failure_report_is_failed_with_the_reason_and_can_start_again(
    service: NotebookService, clock: Clock
) -> None:
    service.create(NotebookInstanceSpec(name="nb"))
    failed = beat(service, failure_reason="JupyterLab exited with code 1 while starting")
    assert failed["status"] == "Failed"
    assert failed["failure_reason"] == "JupyterLab exited with code 1 while starting"
    assert service.start("nb", StartNotebookInstance())["status"] == "Pending"


def test_duplicates_say_what_to_do_and_change_nothing(
    service: NotebookService, clock: Clock
) -> None:
    service.create(NotebookInstanceSpec(name="nb", client={"host": "laptop", "pid": 42}))
    beat(service, url=URL)
    with pytest.raises(ConflictError) as running:
        service.create(NotebookInstanceSpec(name="nb", instance_type="ml.m5.large"))
    assert "is InService at http://127.0.0.1:8890/lab (kennel notebook pid 42 on laptop)" in (
        running.value.message
    )
    assert running.value.hint and "kennel notebooks stop nb" in running.value.hint
    with pytest.raises(ConflictError):
        service.start("nb", StartNotebookInstance())
    assert service.describe("nb")["instance_type"] == "ml.t3.medium"

    beat(service, stopped=True)
    with pytest.raises(ConflictError) as stopped:
        service.create(NotebookInstanceSpec(name="nb"))
    assert stopped.value.hint and "kennel notebook --name nb" in stopped.value.hint


def test_delete_needs_a_stopped_instance(service: NotebookService, clock: Clock) -> None:
    in_service(service, clock)
    with pytest.raises(ConflictError, match="only a Stopped or Failed"):
        service.delete("nb")
    beat(service, stopped=True)
    service.delete("nb")
    with pytest.raises(NotFoundError):
        service.describe("nb")
    with pytest.raises(NotFoundError):
        beat(service)


def test_bad_input_is_refused_before_anything_is_written(service: NotebookService) -> None:
    with pytest.raises(ValidationError, match="not valid"):
        service.create(NotebookInstanceSpec(name="bad_name!"))
    with pytest.raises(ValidationError, match="Unknown instance type"):
        service.create(NotebookInstanceSpec(name="nb", instance_type="ml.nope.large"))
    assert service.list_all() == []
    with pytest.raises(PydanticValidationError, match="absolute"):
        NotebookInstanceSpec(name="nb", workspace="relative/dir")
    with pytest.raises(PydanticValidationError, match="token"):
        NotebookHeartbeat(url="http://127.0.0.1:8888/lab?token=secret")
    with pytest.raises(PydanticValidationError, match="at most one"):
        NotebookHeartbeat(url=URL, stopped=True)
    with pytest.raises(PydanticValidationError, match="Extra inputs"):
        NotebookInstanceSpec.model_validate({"name": "nb", "instance_typo": "ml.t3.medium"})


def test_the_pure_functions_read_naive_sqlite_times_as_utc() -> None:
    row = NotebookInstance(
        name="nb",
        status="InService",
        instance_type="ml.t3.medium",
        running_seconds=100.0,
        cost_usd=0.01,
        client={},
        last_started_at=T0.replace(tzinfo=None),
        last_heartbeat_at=T0.replace(tzinfo=None),
        last_modified_at=T0.replace(tzinfo=None),
    )
    later = T0 + timedelta(seconds=72)
    assert running_seconds(row, later) == 172
    assert cost_usd(row, later, 3.6) == pytest.approx(0.01 + 0.072)
    assert not settle_if_silent(row, later, timeout=100, listening_since=T0, price_per_hour=3.6)
    assert settle_if_silent(row, later, timeout=60, listening_since=T0, price_per_hour=3.6)
    assert row.status == "Stopped" and row.running_seconds == 100  # billed to the heartbeat
