"""After a restart, jobs the previous server left running end, each the way it was going."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kennel._settings import Settings
from kennel.cluster import RayCluster
from kennel.store import ArtifactStore, Database, TrainingJob
from kennel.training import TrainingService

RESTART = datetime(2026, 12, 3, 6, 0, 0, tzinfo=UTC)


def _job(name: str, status: str, secondary: str, **extra: Any) -> TrainingJob:
    return TrainingJob(
        name=name,
        status=status,
        secondary_status=secondary,
        status_message="",
        entry_point="train.py",
        instance_type="ml.m5.large",
        instance_count=1,
        max_runtime_seconds=3600,
        output_path="/tmp/out",
        status_transitions=[
            {"status": "Starting", "start_time": "2026-12-03T05:00:00+00:00", "message": "a"},
            {"status": secondary, "start_time": "2026-12-03T05:01:00+00:00", "message": "b"},
        ],
        **extra,
    )


def test_recover_fails_running_jobs_and_stops_stopping_ones(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'kennel.db'}")
    db.upgrade()
    with db.session() as session:
        session.add(_job("running", "InProgress", "Training"))
        session.add(_job("stopping", "Stopping", "Stopping", stop_requested=True))
        session.add(_job("done", "Completed", "Completed", failure_reason=None))
    service = TrainingService(
        db, ArtifactStore(str(tmp_path / "artifacts")), Settings(home=tmp_path), RayCluster(None)
    )

    assert sorted(service.recover(RESTART)) == ["running", "stopping"]

    running = service.describe("running")
    assert running["status"] == running["secondary_status"] == "Failed"
    assert running["failure_reason"].startswith(
        "InternalFailure: the kennel server stopped while the job ran "
        "(restarted at 2026-12-03T06:00:00+00:00)"
    )
    transitions = running["status_transitions"]
    assert [t["status"] for t in transitions] == ["Starting", "Training", "Failed"]
    assert transitions[1]["end_time"] == transitions[2]["start_time"] == RESTART.isoformat()
    assert running["ended_at"].startswith("2026-12-03T06:00:00")

    stopping = service.describe("stopping")
    assert stopping["status"] == stopping["secondary_status"] == "Stopped"
    assert stopping["failure_reason"] is None
    assert "restarted at" in stopping["status_message"]

    assert service.describe("done")["status"] == "Completed"
    assert service.recover(RESTART) == []  # nothing left to end
