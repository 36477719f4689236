"""The lock a ``kennel up`` or ``kennel down`` holds on its stack while it runs.

Two runs of one stack at once would both act on what they read (two training jobs, an
endpoint updated twice), so a run takes the stack's lock on the server before it reads
the record, and the server lets only the holder write the record (``_record``). The lock
is a lease: a thread renews it every third of ``StackContext.lock_seconds`` while the run
works, however long one step waits. A run killed without releasing it (SIGKILL) stops
renewing, and once the lease has run out the next run takes it over and resumes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from types import TracebackType
from typing import Any

from kennel._client import KennelClient, path_segment
from kennel._errors import ConflictError, KennelError, NotFoundError
from kennel.stack._record import LockOperation
from kennel.stack._types import StackContext

STACKS = "/api/v1/stacks"
RENEWALS_PER_LEASE = 3
"""Renewals per lease: two may fail (a busy server) before the lease runs out."""


class StackLock:
    """``with StackLock(ctx, "up") as lock:`` holds the stack's lock for the block.

    Raises (on entry):
        ConflictError: Another live run holds it (the hint names ``kennel stack describe``).
    """

    def __init__(self, ctx: StackContext, operation: LockOperation) -> None:
        self.ctx = ctx
        self.operation = operation
        self.owner = secrets.token_hex(16)
        self.holder = f"kennel {operation} on {socket.gethostname()} (pid {os.getpid()})"
        self.lease_seconds = ctx.lock_seconds
        self.taken_over: dict[str, Any] | None = None
        """The expired lock of a run that stopped renewing it, when this one replaced it."""
        self.lost: KennelError | None = None
        """Set when a renewal found the lock another run's (the record refuses our writes)."""
        self._path = f"{STACKS}/{path_segment(ctx.stack)}/lock"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StackLock:
        self.acquire()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _body(self, *, renew: bool) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "operation": self.operation,
            "holder": self.holder,
            "lease_seconds": self.lease_seconds,
            "renew": renew,
        }

    def acquire(self) -> None:
        answer: dict[str, Any] = self.ctx.api.post(self._path, self._body(renew=False))
        self.taken_over = answer.get("taken_over")
        self._thread = threading.Thread(
            target=self._renew_until_stopped, name=f"stack-lock-{self.ctx.stack}", daemon=True
        )
        self._thread.start()

    def _renew_until_stopped(self) -> None:
        interval = self.lease_seconds / RENEWALS_PER_LEASE
        with self._client(timeout=max(interval, 1.0)) as client:
            while not self._stop.wait(interval):
                try:
                    client.post(self._path, self._body(renew=True))
                except (ConflictError, NotFoundError) as error:
                    self.lost = error
                    return
                except KennelError:
                    continue  # a busy or restarting server: the next renewal may get through

    def _client(self, timeout: float) -> KennelClient:
        """A client of its own: the run's client may be in the middle of a long request."""
        api = self.ctx.api
        return KennelClient(
            api.endpoint_url, api.credentials, api.region, timeout=timeout, ca_bundle=api.ca_bundle
        )

    def stop_renewing(self) -> None:
        """Stop the renewals, keeping the lock until it is released or expires (``down``
        stops them before it removes the record, so no renewal makes it again)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.lease_seconds)

    def release(self) -> None:
        """Stop renewing and give the lock up; a server that does not answer lets it expire."""
        self.stop_renewing()
        with contextlib.suppress(KennelError):
            self.ctx.api.request("DELETE", self._path, params={"owner": self.owner})

    def takeover_warning(self) -> str | None:
        """What to tell the user when this run took over a killed run's lock."""
        old = self.taken_over
        if not old:
            return None
        holder = old["holder"] or f"a kennel {old['operation']}"
        silent = str(old["renewed_at"])[:19].replace("T", " ")
        return (
            f"Took over the lock of stack {self.ctx.stack!r} from {holder}, silent since "
            f"{silent} UTC: that run was killed or lost; this one goes on from where it stopped."
        )
