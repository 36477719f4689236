"""The server's record of a stack: what ``kennel up`` made, so a later run resumes and
``kennel down`` removes it, whatever the stack file says by then.

The command is the record's only writer while it runs: it sends the whole record
(``PUT /api/v1/stacks/{name}``) before it acts on a resource ("write the new state, then
act") and again once the resource is ready, so an interrupted run leaves a record that
names everything it may have started.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select

from kennel._errors import NotFoundError
from kennel._names import check_name
from kennel._spec import Spec
from kennel.store import Database, Stack

ResourceStatus = Literal["Creating", "Updating", "Waiting", "Ready", "Failed", "Deleting"]
"""``Creating``/``Updating``/``Waiting``: a run started acting on it and has not seen it
ready (it may or may not exist); ``Failed``: the last run's apply of it failed."""

StackStatus = Literal[
    "UpInProgress",
    "UpComplete",
    "UpFailed",
    "UpInterrupted",
    "DownInProgress",
    "DownFailed",
    "DownInterrupted",
]


class StackResource(Spec):
    """One resource a stack made (or found, ``owned`` false) under one of its blocks."""

    address: str = Field(min_length=3, max_length=200)
    """``kind.logical``: the block it was made for."""
    physical: str = Field(min_length=1, max_length=256)
    """Its name on the server."""
    fingerprint: str = ""
    status: ResourceStatus
    status_reason: str = ""
    owned: bool = True
    """False when it existed before the stack (``down`` leaves it)."""
    depends_on: list[str] = Field(default_factory=list)
    """The addresses it was made from (``down`` removes it before them)."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    """The resolved block it was made from (references as physical names; files as their
    content hashes), so a later plan can say what changed."""

    @property
    def kind(self) -> str:
        return self.address.split(".", 1)[0]

    @property
    def logical(self) -> str:
        return self.address.split(".", 1)[1]


class StackRecord(Spec):
    """The body of ``PUT /api/v1/stacks/{name}``: the whole record, replacing the last."""

    status: StackStatus
    status_reason: str = ""
    description: str = ""
    file: str = ""
    resources: list[StackResource] = Field(default_factory=list, max_length=2000)
    outputs: dict[str, Any] = Field(default_factory=dict)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands naive datetimes back
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def stack_to_dict(row: Stack) -> dict[str, Any]:
    return {
        "name": row.name,
        "arn": row.arn,
        "status": row.status,
        "status_reason": row.status_reason,
        "description": row.description,
        "file": row.file,
        "resources": list(row.resources),
        "outputs": dict(row.outputs),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


class StackService:
    """Stack records: put (create or replace), get, list, delete."""

    def __init__(self, db: Database, *, account_id: str, region: str) -> None:
        self.db = db
        self.account_id = account_id
        self.region = region

    def arn(self, name: str) -> str:
        return f"arn:aws:kennel:{self.region}:{self.account_id}:stack/{name}"

    def put(self, name: str, record: StackRecord) -> dict[str, Any]:
        check_name("Stack", name)
        now = datetime.now(UTC)
        values = record.model_dump(mode="json")
        with self.db.session() as session:
            row = session.get(Stack, name)
            if row is None:
                row = Stack(name=name, arn=self.arn(name), created_at=now)
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            session.flush()
            return stack_to_dict(row)

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Stack, name)
            if row is None:
                raise _not_found(name)
            return stack_to_dict(row)

    def list_all(self) -> list[dict[str, Any]]:
        """Every stack, without its resources' attributes and specs (a summary per stack)."""
        with self.db.session() as session:
            rows = session.scalars(select(Stack).order_by(Stack.name)).all()
            return [_summary(stack_to_dict(r)) for r in rows]

    def delete(self, name: str) -> None:
        with self.db.session() as session:
            row = session.get(Stack, name)
            if row is None:
                raise _not_found(name)
            session.delete(row)


def _summary(info: dict[str, Any]) -> dict[str, Any]:
    resources = info.pop("resources")
    info["resource_count"] = len(resources)
    info["resources"] = [
        {k: r.get(k) for k in ("address", "physical", "status", "owned")} for r in resources
    ]
    return info


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"Stack {name!r} does not exist.",
        hint="`kennel up FILE` makes one; `kennel stack list` shows those there are.",
    )
