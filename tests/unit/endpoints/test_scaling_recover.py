"""Scaling activities a killed server left InProgress end Failed after a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kennel._settings import Settings
from kennel.endpoints._scaling import ScalingService
from kennel.store import Database

RID = "endpoint/dogs/variant/AllTraffic"
RESTART = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


class NoEndpoints:
    def describe(self, name: str) -> dict[str, Any]:
        raise AssertionError("not used")

    def describe_config(self, name: str) -> dict[str, Any]:
        raise AssertionError("not used")


def test_recover_fails_the_activities_a_previous_server_left_in_progress(
    tmp_path: Path, db: Database
) -> None:
    scaling = ScalingService(
        db, NoEndpoints(), Settings(home=tmp_path), account_id="123456789012", region="us-east-1"
    )
    done = scaling.start_activity(RID, description="Set to 2.", cause="a")
    scaling.finish_activity(done, "Successful")
    cut_short = scaling.start_activity(RID, description="Set to 3.", cause="b")

    assert scaling.recover(RESTART) == [cut_short]

    by_id = {a["ActivityId"]: a for a in scaling.activities(RID)}
    assert by_id[done]["StatusCode"] == "Successful"
    ended = by_id[cut_short]
    assert ended["StatusCode"] == "Failed"
    assert "kennel server stopped while this activity ran" in ended["StatusMessage"]
    assert "restarted at 2026-12-03T06:00:00+00:00" in ended["StatusMessage"]
    assert ended["EndTime"] == RESTART
    assert scaling.recover(RESTART) == []
