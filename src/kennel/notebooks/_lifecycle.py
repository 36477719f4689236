"""A notebook instance's state and bill over time: pure functions of the record and a clock.

States are SageMaker's NotebookInstanceStatus: Pending (JupyterLab starting), InService
(it answers), Stopping (a stop was asked; the running ``kennel notebook`` stops JupyterLab
at its next heartbeat), Stopped, Failed, Deleting (never seen here: nothing is left to tear
down once the record is Stopped, so a delete removes it in one step).

Running time counts from InService until Stopped or Failed, summed over every start; the
cost is that time at the instance type's price per hour. A record whose command stopped
sending heartbeats (killed with -9, machine asleep) for longer than the timeout is
settled as Stopped, billed up to its last heartbeat: no record stays InService forever.
The server only counts silence it could have heard: the timeout runs from the later of the
last heartbeat and the server's start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kennel.store import NotebookInstance

STATUSES = ("Pending", "InService", "Stopping", "Stopped", "Failed", "Deleting")
LIVE = ("Pending", "InService", "Stopping")
"""States in which a ``kennel notebook`` process is (or should be) running JupyterLab."""
RUNNING = ("InService", "Stopping")
"""States that are billed."""


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def current_period_seconds(row: NotebookInstance, now: datetime) -> float:
    """Seconds of the running period in progress (0 when not running)."""
    started = utc(row.last_started_at)
    if row.status not in RUNNING or started is None:
        return 0.0
    return max(0.0, (now - started).total_seconds())


def running_seconds(row: NotebookInstance, now: datetime) -> float:
    return row.running_seconds + current_period_seconds(row, now)


def cost_usd(row: NotebookInstance, now: datetime, price_per_hour: float) -> float:
    return row.cost_usd + current_period_seconds(row, now) * price_per_hour / 3600


def end_running_period(row: NotebookInstance, at: datetime, price_per_hour: float) -> None:
    """Add the running period in progress, up to ``at``, to the record's totals."""
    seconds = current_period_seconds(row, at)
    row.running_seconds += seconds
    row.cost_usd += seconds * price_per_hour / 3600


def silence_deadline(row: NotebookInstance, timeout: float, listening_since: datetime) -> datetime:
    """When a live record without another heartbeat is settled as Stopped."""
    heard = utc(row.last_heartbeat_at) or utc(row.last_modified_at) or listening_since
    return max(heard, listening_since) + timedelta(seconds=timeout)


def settle_if_silent(
    row: NotebookInstance,
    now: datetime,
    *,
    timeout: float,
    listening_since: datetime,
    price_per_hour: float,
) -> bool:
    """Mark a live record whose heartbeats stopped as Stopped; True when it did."""
    if row.status not in LIVE or now <= silence_deadline(row, timeout, listening_since):
        return False
    last = utc(row.last_heartbeat_at) or utc(row.last_modified_at) or now
    end_running_period(row, last, price_per_hour)
    who = _client_text(row.client)
    row.status_reason = (
        f"No heartbeat from `kennel notebook`{who} for more than {timeout:g} s (last at "
        f"{last.isoformat(timespec='seconds')}): it ended without stopping the instance "
        "(killed, or its machine slept or lost the network). Billed up to that heartbeat."
    )
    row.status = "Stopped"
    row.url = None
    row.stopped_at = last
    row.last_modified_at = now
    return True


def _client_text(client: dict[str, object] | None) -> str:
    client = client or {}
    pid, host = client.get("pid"), client.get("host")
    if pid and host:
        return f" (pid {pid} on {host})"
    if pid:
        return f" (pid {pid})"
    return ""
