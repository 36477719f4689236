"""The stack lock on a real, migrated SQLite database with a clock the test moves: one
holder at a time, only the holder writes the record, an expired lease is taken over, and
of many runs racing for a new stack exactly one wins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from kennel._errors import ConflictError, NotFoundError
from kennel.stack._record import StackLockRequest, StackRecord, StackService
from kennel.store import Database

LEASE = 30.0
A = "a" * 32
B = "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stacks(db: Database, clock: Clock) -> StackService:
    return StackService(db, account_id="123456789012", region="us-east-1", clock=clock)


def take(owner: str, *, renew: bool = False, operation: str = "up") -> StackLockRequest:
    return StackLockRequest.model_validate(
        {
            "owner": owner,
            "operation": operation,
            "holder": f"run {owner[0]}",
            "lease_seconds": LEASE,
            "renew": renew,
        }
    )


def record(status: str = "UpInProgress") -> StackRecord:
    return StackRecord.model_validate({"status": status})


def test_the_first_run_makes_the_record_and_a_second_gets_a_409(stacks: StackService) -> None:
    lock = stacks.lock("s", take(A))
    assert (lock["owner"], lock["operation"], lock["expired"]) == (A, "up", False)
    assert lock["taken_over"] is None
    made = stacks.describe("s")
    assert (made["status"], made["resources"], made["lock"]["holder"]) == (
        "UpInProgress",
        [],
        "run a",
    )

    with pytest.raises(ConflictError) as held:
        stacks.lock("s", take(B))
    message = held.value.message
    assert "being changed by another run: run a, since 2026-12-14 09:00:00 UTC" in message
    assert held.value.hint is not None and "kennel stack describe s" in held.value.hint
    assert stacks.describe("s")["lock"]["owner"] == A


def test_only_the_holder_writes_or_deletes_the_record(stacks: StackService) -> None:
    stacks.lock("s", take(A))
    assert stacks.put("s", record("UpComplete"), owner=A)["status"] == "UpComplete"
    for owner in (None, B):
        with pytest.raises(ConflictError):
            stacks.put("s", record("UpFailed"), owner=owner)
        with pytest.raises(ConflictError):
            stacks.delete("s", owner=owner)
    assert stacks.describe("s")["status"] == "UpComplete"

    stacks.unlock("s", B)  # not B's: nothing happens
    assert stacks.describe("s")["lock"]["owner"] == A
    stacks.unlock("s", A)
    assert stacks.describe("s")["lock"] is None
    assert stacks.put("s", record("UpFailed"))["status"] == "UpFailed"  # no lock: anyone
    stacks.delete("s")
    with pytest.raises(NotFoundError):
        stacks.describe("s")


def test_a_renewed_lock_holds_and_an_expired_one_is_taken_over(
    stacks: StackService, clock: Clock
) -> None:
    stacks.lock("s", take(A))
    clock.advance(LEASE * 0.9)
    stacks.lock("s", take(A, renew=True))
    clock.advance(LEASE * 0.9)  # past the first lease, within the renewed one
    with pytest.raises(ConflictError):
        stacks.lock("s", take(B))

    clock.advance(LEASE)  # A was killed: no renewal for a whole lease
    assert stacks.describe("s")["lock"]["expired"] is True
    lock = stacks.lock("s", take(B, operation="down"))
    assert (lock["owner"], lock["operation"]) == (B, "down")
    assert lock["taken_over"] is not None and lock["taken_over"]["holder"] == "run a"

    # The old run, back from the dead, may neither renew nor write.
    with pytest.raises(ConflictError, match="no longer holds the lock"):
        stacks.lock("s", take(A, renew=True))
    with pytest.raises(ConflictError, match="no longer holds the lock"):
        stacks.put("s", record("UpComplete"), owner=A)
    assert stacks.put("s", record("DownInProgress"), owner=B)["status"] == "DownInProgress"


def test_retaking_ones_own_lock_keeps_when_it_was_acquired(
    stacks: StackService, clock: Clock
) -> None:
    first = stacks.lock("s", take(A))
    clock.advance(5)
    again = stacks.lock("s", take(A))
    assert again["acquired_at"] == first["acquired_at"]
    assert again["renewed_at"] > first["renewed_at"] and again["taken_over"] is None


def test_renewing_never_makes_a_record(stacks: StackService) -> None:
    with pytest.raises(NotFoundError):
        stacks.lock("gone", take(A, renew=True))
    with pytest.raises(NotFoundError):
        stacks.describe("gone")


def test_of_runs_racing_for_a_new_stack_exactly_one_wins(stacks: StackService) -> None:
    owners = [f"{i:02d}" * 16 for i in range(8)]
    start = threading.Barrier(len(owners))
    won: list[str] = []
    refused: list[str] = []

    def run(owner: str) -> None:
        start.wait()
        try:
            stacks.lock("race", take(owner))
        except ConflictError:
            refused.append(owner)
        else:
            won.append(owner)

    threads = [threading.Thread(target=run, args=(o,)) for o in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(refused) == len(owners) - 1, (won, refused)
    assert stacks.describe("race")["lock"]["owner"] == won[0]
