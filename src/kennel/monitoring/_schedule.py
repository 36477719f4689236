"""What schedule, run and baseline requests may say, and when a schedule is due."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, model_validator

from kennel._spec import Spec

DEFAULT_INTERVAL_SECONDS = 3600
DEFAULT_WINDOW_SECONDS = 3600
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


class ScheduleSpec(Spec):
    """The body of ``PUT /api/v1/endpoints/{name}/monitoring-schedule``."""

    interval_seconds: int = Field(default=DEFAULT_INTERVAL_SECONDS, ge=1, le=7 * 86400)
    window_seconds: int | None = Field(default=None, ge=1, le=31 * 86400)
    """How far back a run looks when no run came before it (default: the interval)."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Overrides of the drift library's thresholds (e.g. ``alpha``, ``psi``)."""
    alarm_function: str | None = None
    """A function invoked asynchronously with the violations when the alarm goes to ALARM."""


class RunSpec(Spec):
    """The body of ``POST /api/v1/endpoints/{name}/monitoring/run`` (all optional)."""

    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RunSpec:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class BaselineSpec(Spec):
    """The body of ``POST /api/v1/models/{name}/baseline``."""

    dataset: str | None = None
    """A data set's name; default: the data set of the training job the model came from."""


def is_due(
    now: datetime, created_at: datetime, last_run_at: datetime | None, interval_seconds: int
) -> bool:
    since = last_run_at or created_at
    return now >= since + timedelta(seconds=interval_seconds)
