"""Notebook instances as resources: create, start, heartbeat, stop, delete, describe, list.

The server does not run JupyterLab: ``kennel notebook`` does, where the user is, and keeps
the record honest with heartbeats. Every read or write first settles a record whose
heartbeats stopped (see ``_lifecycle``), in the same transaction, so what a caller sees is
never a stale InService.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kennel._errors import ConflictError, NotFoundError, ValidationError
from kennel._names import check_name
from kennel._settings import Settings
from kennel.cluster._catalog import CATALOG, instance_type
from kennel.notebooks._lifecycle import (
    LIVE,
    cost_usd,
    end_running_period,
    running_seconds,
    settle_if_silent,
    utc,
)
from kennel.notebooks._spec import NotebookHeartbeat, NotebookInstanceSpec, StartNotebookInstance
from kennel.store import Database, NotebookInstance

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
STARTING = "Waiting for JupyterLab to answer."


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return moment.isoformat() if moment else None


def price_per_hour(type_name: str) -> float:
    """The type's price; a type dropped from the catalog since costs nothing more."""
    found = CATALOG.get(type_name)
    return found.price_per_hour if found else 0.0


class NotebookService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        account_id: str,
        region: str,
        clock: Clock = _now,
    ) -> None:
        self.db = db
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.timeout = settings.notebook_heartbeat_timeout_seconds
        self.listening_since = clock()
        """Heartbeats sent while the server was down were not heard: silence counts from here."""

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:notebook-instance/{name.lower()}"

    # Reads ---------------------------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = self._get(session, name)
            return self.to_dict(row, self.clock())

    def list_all(self, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``status`` filters on the settled state."""
        with self.db.session() as session:
            rows = session.scalars(
                select(NotebookInstance).order_by(NotebookInstance.created_at.desc())
            ).all()
            now = self.clock()
            for row in rows:
                self._settle(row, now)
            return [self.to_dict(r, now) for r in rows if status is None or r.status == status]

    def to_dict(self, row: NotebookInstance, now: datetime) -> dict[str, Any]:
        price = price_per_hour(row.instance_type)
        return {
            "name": row.name,
            "arn": row.arn,
            "status": row.status,
            "status_reason": row.status_reason,
            "failure_reason": row.status_reason if row.status == "Failed" else None,
            "instance_type": row.instance_type,
            "price_per_hour": price,
            "workspace": row.workspace,
            "url": row.url,
            "client": dict(row.client or {}),
            "created_at": _iso(row.created_at),
            "last_modified_at": _iso(row.last_modified_at),
            "last_started_at": _iso(row.last_started_at),
            "last_heartbeat_at": _iso(row.last_heartbeat_at),
            "stopped_at": _iso(row.stopped_at),
            "running_seconds": round(running_seconds(row, now), 3),
            "cost_usd": round(cost_usd(row, now, price), 8),
            "heartbeat_timeout_seconds": self.timeout,
        }

    # Writes ---------------------------------------------------------------------------

    def create(self, spec: NotebookInstanceSpec) -> dict[str, Any]:
        """Record a new instance, Pending until its JupyterLab answers."""
        check_name("Notebook instance", spec.name)
        itype = instance_type(spec.instance_type)
        now = self.clock()
        with self.db.session() as session:
            existing = self._find(session, spec.name)
            if existing is not None:
                self._settle(existing, now)
                raise self._exists(existing)
        row = NotebookInstance(
            name=spec.name,
            arn=self.arn(spec.name),
            status="Pending",
            status_reason=STARTING,
            instance_type=itype.name,
            workspace=spec.workspace,
            url=None,
            client=spec.client.model_dump(exclude_none=True),
            running_seconds=0.0,
            cost_usd=0.0,
            created_at=now,
            last_modified_at=now,
            last_heartbeat_at=now,
        )
        try:
            with self.db.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise ConflictError(
                f"Notebook instance {spec.name!r} was just created by another request.",
                hint="Choose another name (--name).",
            ) from exc
        return self.describe(spec.name)

    def start(self, name: str, spec: StartNotebookInstance) -> dict[str, Any]:
        """Stopped or Failed -> Pending again; the bill so far is kept."""
        itype = instance_type(spec.instance_type) if spec.instance_type else None
        with self.db.session() as session:
            row = self._get(session, name)
            if row.status in LIVE:
                raise self._exists(row)
            now = self.clock()
            if itype is not None:
                row.instance_type = itype.name
            if spec.workspace:
                row.workspace = spec.workspace
            if spec.client is not None:
                row.client = spec.client.model_dump(exclude_none=True)
            row.status, row.status_reason, row.url = "Pending", STARTING, None
            row.stopped_at = None
            row.last_heartbeat_at = row.last_modified_at = now
            return self.to_dict(row, now)

    def heartbeat(self, name: str, beat: NotebookHeartbeat) -> dict[str, Any]:
        """What the running ``kennel notebook`` reports; the answer tells it the state
        (``Stopping``: stop JupyterLab). A still-running report for an instance that is
        no longer live is refused (409), so the process knows to end."""
        with self.db.session() as session:
            row = self._get(session, name)
            now = self.clock()
            if row.status not in LIVE:
                if beat.stopped or beat.failure_reason:
                    return self.to_dict(row, now)  # it was settled already; nothing to add
                raise ConflictError(
                    f"Notebook instance {name!r} is {row.status}: {row.status_reason}",
                    hint=f"Start it again with `kennel notebook --name {name}`.",
                )
            price = price_per_hour(row.instance_type)
            if beat.failure_reason:
                self._end(row, now, price, "Failed", beat.failure_reason)
            elif beat.stopped:
                reason = "Stopped by `kennel notebook`."
                if row.status == "Stopping":
                    reason = row.status_reason.split(";")[0] + "; JupyterLab stopped."
                self._end(row, now, price, "Stopped", reason)
            else:
                row.last_heartbeat_at = now
                if beat.url is not None and row.status in ("Pending", "InService"):
                    if row.status == "Pending":
                        row.status, row.status_reason = "InService", ""
                        row.last_started_at = row.last_modified_at = now
                    row.url = beat.url
            return self.to_dict(row, now)

    def stop(self, name: str, requested_by: str = "") -> dict[str, Any]:
        """Pending/InService -> Stopping: the running command stops JupyterLab at its next
        heartbeat and reports Stopped (or goes silent and is settled Stopped)."""
        with self.db.session() as session:
            row = self._get(session, name)
            now = self.clock()
            if row.status == "Stopping":
                return self.to_dict(row, now)
            if row.status not in LIVE:
                raise ValidationError(
                    f"Notebook instance {name!r} is {row.status}; only a Pending or InService "
                    "notebook instance can stop.",
                    hint=f"It is not running. Delete it with `kennel notebooks delete {name}`.",
                )
            by = f" by {requested_by}" if requested_by else ""
            row.status = "Stopping"
            row.status_reason = (
                f"Stop requested{by}; `kennel notebook` stops JupyterLab at its next "
                f"heartbeat (within {self.timeout:g} s)."
            )
            row.last_modified_at = now
            return self.to_dict(row, now)

    def delete(self, name: str) -> None:
        """Remove a Stopped or Failed instance's record (the workspace files stay)."""
        with self.db.session() as session:
            row = self._get(session, name)
            if row.status in LIVE:
                raise ConflictError(
                    f"Notebook instance {name!r} is {row.status}; only a Stopped or Failed "
                    "notebook instance can be deleted.",
                    hint=f"Stop it first: `kennel notebooks stop {name}`.",
                )
            session.delete(row)

    # Helpers ------------------------------------------------------------------------

    def _find(self, session: Session, name: str) -> NotebookInstance | None:
        # FOR UPDATE: on PostgreSQL a heartbeat and a stop must not both win (SQLite's one
        # writer gives the same).
        return session.get(NotebookInstance, name, with_for_update=True)

    def _get(self, session: Session, name: str) -> NotebookInstance:
        row = self._find(session, name)
        if row is None:
            raise NotFoundError(
                f"Notebook instance {name!r} does not exist.",
                hint="See `kennel notebooks list`; start one with `kennel notebook`.",
            )
        self._settle(row, self.clock())
        return row

    def _settle(self, row: NotebookInstance, now: datetime) -> None:
        if settle_if_silent(
            row,
            now,
            timeout=self.timeout,
            listening_since=self.listening_since,
            price_per_hour=price_per_hour(row.instance_type),
        ):
            log.info("notebook instance %s: %s", row.name, row.status_reason)

    def _end(
        self, row: NotebookInstance, now: datetime, price: float, status: str, why: str
    ) -> None:
        end_running_period(row, now, price)
        row.status, row.status_reason, row.url = status, why, None
        row.stopped_at = row.last_modified_at = row.last_heartbeat_at = now

    def _exists(self, row: NotebookInstance) -> ConflictError:
        name = row.name
        if row.status in LIVE:
            where = f" at {row.url}" if row.url else ""
            client = row.client or {}
            by = ""
            if client.get("pid"):
                by = f" (kennel notebook pid {client['pid']}"
                by += f" on {client['host']})" if client.get("host") else ")"
            return ConflictError(
                f"Notebook instance {name!r} already exists and is {row.status}{where}{by}.",
                hint=f"Use that one, stop it (`kennel notebooks stop {name}`), or choose "
                "another name (--name).",
            )
        return ConflictError(
            f"Notebook instance {name!r} already exists and is {row.status}.",
            hint=f"Start it again with `kennel notebook --name {name}` (its bill so far is "
            f"kept), or delete it first (`kennel notebooks delete {name}`).",
        )
