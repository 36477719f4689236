"""The server's record of a stack: what ``kennel up`` made, so a later run resumes and
``kennel down`` removes it, whatever the stack file says by then.

The command is the record's only writer while it runs: it sends the whole record
(``PUT /api/v1/stacks/{name}``) before it acts on a resource ("write the new state, then
act") and again once the resource is ready, so an interrupted run leaves a record that
names everything it may have started.

*Only writer* is enforced with a lock on the record, a lease as Kubernetes' Lease objects
have it: a run takes it (``POST .../lock``) before it reads the record, renews it while it
works, and releases it at the end. Taking it is one conditional UPDATE, so of two runs
started at once exactly one wins; the other gets a 409. While a run holds the lock only it
may write or delete the record (its requests name its token), so a run that lost the lock
cannot act on a stale view either. A run killed without releasing (SIGKILL, a lost
machine) stops renewing, and once its lease has run out the next run takes the lock over
and resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import ColumnElement, case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from kennel._errors import ConflictError, NotFoundError
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


LockOperation = Literal["up", "down"]
LEASE_MAX_SECONDS = 3600.0


class StackLockRequest(Spec):
    """The body of ``POST /api/v1/stacks/{name}/lock``: take the lock, or renew it."""

    owner: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    """The run's random token; its record writes name it (``?owner=``)."""
    operation: LockOperation
    holder: str = Field(default="", max_length=256)
    """Who is asking, for a person reading ``kennel stack describe``."""
    lease_seconds: float = Field(ge=1.0, le=LEASE_MAX_SECONDS)
    """How long the lock holds without a renewal; the holder renews well within it."""
    renew: bool = False
    """True: only extend a lock this owner holds (409 if it lost it; never makes a record)."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return _aware(moment).isoformat()  # SQLite hands naive datetimes back


def lock_to_dict(row: Stack, now: datetime) -> dict[str, Any] | None:
    """The lock as ``describe`` shows it, ``expired`` by the server's clock; None if free."""
    if row.lock_owner is None or row.lock_expires_at is None:
        return None
    expires = _aware(row.lock_expires_at)
    return {
        "owner": row.lock_owner,
        "holder": row.lock_holder or "",
        "operation": row.lock_operation,
        "acquired_at": _iso(row.lock_acquired_at or expires),
        "renewed_at": _iso(row.lock_renewed_at or expires),
        "expires_at": expires.isoformat(),
        "lease_seconds": row.lock_lease_seconds,
        "expired": expires <= now,
    }


def stack_to_dict(row: Stack, now: datetime) -> dict[str, Any]:
    return {
        "name": row.name,
        "arn": row.arn,
        "status": row.status,
        "status_reason": row.status_reason,
        "description": row.description,
        "file": row.file,
        "resources": list(row.resources),
        "outputs": dict(row.outputs),
        "lock": lock_to_dict(row, now),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


Clock = Callable[[], datetime]
_UNSYNCED = {"synchronize_session": False}
"""Conditional writes run in the database only (rows read since are read with
``populate_existing``): SQLite's naive datetimes cannot be compared in Python."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StackService:
    """Stack records: put (create or replace), get, list, delete; and their locks."""

    def __init__(
        self, db: Database, *, account_id: str, region: str, clock: Clock = _utcnow
    ) -> None:
        self.db = db
        self.account_id = account_id
        self.region = region
        self.clock = clock

    def arn(self, name: str) -> str:
        return f"arn:aws:kennel:{self.region}:{self.account_id}:stack/{name}"

    # The record ---------------------------------------------------------------------------

    def put(self, name: str, record: StackRecord, owner: str | None = None) -> dict[str, Any]:
        """Create or replace the record. With ``owner``, the run's lock must be that
        owner's; without, no run may hold a live lock on it.

        Raises:
            ConflictError: Another run holds the lock (or ``owner`` no longer does).
        """
        check_name("Stack", name)
        now = self.clock()
        values = {**record.model_dump(mode="json"), "updated_at": now}
        with self.db.session() as session:
            done = session.execute(
                update(Stack).where(Stack.name == name, _writable(owner, now)).values(**values),
                execution_options=_UNSYNCED,
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                row = session.get(Stack, name)
                if row is not None or owner is not None:
                    raise _locked(name, row, owner, now)
                session.add(Stack(name=name, arn=self.arn(name), created_at=now, **values))
            session.flush()
            row = session.get(Stack, name, populate_existing=True)
            assert row is not None
            return stack_to_dict(row, now)

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Stack, name)
            if row is None:
                raise _not_found(name)
            return stack_to_dict(row, self.clock())

    def list_all(self) -> list[dict[str, Any]]:
        """Every stack, without its resources' attributes and specs (a summary per stack)."""
        now = self.clock()
        with self.db.session() as session:
            rows = session.scalars(select(Stack).order_by(Stack.name)).all()
            return [_summary(stack_to_dict(r, now)) for r in rows]

    def delete(self, name: str, owner: str | None = None) -> None:
        """Remove the record (and its lock), under the same rule as :meth:`put`."""
        now = self.clock()
        with self.db.session() as session:
            done = session.execute(
                delete(Stack).where(Stack.name == name, _writable(owner, now)),
                execution_options=_UNSYNCED,
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                row = session.get(Stack, name)
                if row is None:
                    raise _not_found(name)
                raise _locked(name, row, owner, now)

    # The lock -----------------------------------------------------------------------------

    def lock(self, name: str, request: StackLockRequest) -> dict[str, Any]:
        """Take the stack's lock for ``request.owner`` (free, expired or already its own),
        making an empty record if there is none; or, with ``renew``, extend it.

        Returns the lock, and ``taken_over``: the expired lock it replaced, if any.

        Raises:
            ConflictError: A live lock is another run's (or, renewing, it is not ours).
            NotFoundError: Renewing a record that is gone.
        """
        check_name("Stack", name)
        now = self.clock()
        expires = now + timedelta(seconds=request.lease_seconds)
        renewal: dict[str, Any] = {
            "lock_renewed_at": now,
            "lock_expires_at": expires,
            "lock_lease_seconds": request.lease_seconds,
        }
        with self.db.session() as session:
            before = session.get(Stack, name)
            previous = lock_to_dict(before, now) if before is not None else None
            if request.renew:
                condition: ColumnElement[bool] = Stack.lock_owner == request.owner
                values = renewal
            else:
                condition = _free(request.owner, now)
                values = {
                    **renewal,
                    "lock_owner": request.owner,
                    "lock_holder": request.holder,
                    "lock_operation": request.operation,
                    "lock_acquired_at": case(
                        (Stack.lock_owner == request.owner, Stack.lock_acquired_at), else_=now
                    ),
                }
            done = session.execute(
                update(Stack).where(Stack.name == name, condition).values(**values),
                execution_options=_UNSYNCED,
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                if before is None and request.renew:
                    raise _not_found(name)
                if before is not None:
                    raise _locked(name, before, request.owner if request.renew else None, now)
                self._create_locked(session, name, request, now, renewal)
            row = session.get(Stack, name, populate_existing=True)
            assert row is not None
            lock = lock_to_dict(row, now)
            assert lock is not None
        taken = previous if previous and previous["owner"] != request.owner else None
        return {**lock, "taken_over": taken}

    def _create_locked(
        self,
        session: Any,
        name: str,
        request: StackLockRequest,
        now: datetime,
        renewal: dict[str, Any],
    ) -> None:
        """A new, empty record holding the lock; a run that made one meanwhile wins."""
        row = Stack(
            name=name,
            arn=self.arn(name),
            status="UpInProgress" if request.operation == "up" else "DownInProgress",
            status_reason="",
            description="",
            file="",
            resources=[],
            outputs={},
            created_at=now,
            updated_at=now,
            lock_owner=request.owner,
            lock_holder=request.holder,
            lock_operation=request.operation,
            lock_acquired_at=now,
            **renewal,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            raise _locked(name, session.get(Stack, name), None, now) from None

    def unlock(self, name: str, owner: str) -> None:
        """Release the lock if ``owner`` holds it; anything else is left as it is."""
        with self.db.session() as session:
            session.execute(
                update(Stack)
                .where(Stack.name == name, Stack.lock_owner == owner)
                .values(
                    lock_owner=None,
                    lock_holder=None,
                    lock_operation=None,
                    lock_acquired_at=None,
                    lock_renewed_at=None,
                    lock_expires_at=None,
                    lock_lease_seconds=None,
                ),
                execution_options=_UNSYNCED,
            )


def _free(owner: str, now: datetime) -> ColumnElement[bool]:
    """The lock is free for ``owner``: nobody's, its own, or expired."""
    return or_(Stack.lock_owner.is_(None), Stack.lock_owner == owner, Stack.lock_expires_at <= now)


def _writable(owner: str | None, now: datetime) -> ColumnElement[bool]:
    """Who may write the record: the lock's owner; without one, anyone if no live lock."""
    if owner is not None:
        return Stack.lock_owner == owner
    return or_(Stack.lock_owner.is_(None), Stack.lock_expires_at <= now)


def _moment(iso: str) -> str:
    return f"{iso[:19].replace('T', ' ')} UTC"


def _locked(name: str, row: Stack | None, owner: str | None, now: datetime) -> ConflictError:
    lock = lock_to_dict(row, now) if row is not None else None
    describe = f"`kennel stack describe {name}`"
    if owner is not None and (lock is None or lock["owner"] != owner):
        taken = f"; {lock['holder'] or 'another run'} holds it now" if lock else ""
        return ConflictError(
            f"This run no longer holds the lock of stack {name!r}{taken}: it stopped "
            "renewing it for longer than its lease, or the record was removed.",
            hint=f"See {describe}; run the command again once no other run holds the stack.",
        )
    if lock is None:  # released between the write and this read
        return ConflictError(
            f"Stack {name!r} was changed by another run meanwhile.",
            hint=f"See {describe}, then run the command again.",
        )
    seconds = max(0.0, (datetime.fromisoformat(lock["expires_at"]) - now).total_seconds())
    return ConflictError(
        f"Stack {name!r} is being changed by another run: "
        f"{lock['holder'] or 'a kennel ' + str(lock['operation'])}, since "
        f"{_moment(lock['acquired_at'])}, last heard from {_moment(lock['renewed_at'])}.",
        hint=f"{describe} shows its progress. If that run was killed, its lock expires "
        f"{seconds:.0f} s from now unless renewed; run the command again then (it resumes).",
    )


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
