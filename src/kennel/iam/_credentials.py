"""Looking up the secret behind an access key id, for SigV4 verification."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from kennel.iam._keys import SecretBox
from kennel.iam.sigv4 import Credential
from kennel.store import AccessKey, Database, User


class CredentialStore:
    """Finds active keys in the database; caches them briefly to keep the hot path off it.

    The cache lives ``ttl`` seconds, so a deactivated key stops working within that time.
    ``last_used_at`` is written at most once per ``touch_every`` per key.
    """

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        ttl: float = 2.0,
        touch_every: timedelta = timedelta(minutes=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._box = box
        self._ttl = ttl
        self._touch_every = touch_every
        self._clock = clock
        self._cache: dict[str, tuple[float, Credential | None]] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def lookup(self, access_key_id: str) -> Credential | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(access_key_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        credential = self._load(access_key_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, credential)
        return credential

    def _load(self, access_key_id: str) -> Credential | None:
        with self._db.session() as session:
            row = session.execute(
                select(AccessKey, User.arn)
                .join(User, User.name == AccessKey.user_name)
                .where(AccessKey.access_key_id == access_key_id, AccessKey.status == "Active")
            ).first()
            if row is None:
                return None
            key, arn = row
            return Credential(
                access_key_id=key.access_key_id,
                secret_access_key=self._box.decrypt(key.secret_encrypted),
                principal=arn,
            )

    def touch(self, access_key_id: str) -> None:
        """Record that a key was used (AWS's LastUsedDate), at most once per interval."""
        now = datetime.now(UTC)
        last = self._touched.get(access_key_id)
        if last is not None and now - last < self._touch_every:
            return
        self._touched[access_key_id] = now
        with self._db.session() as session:
            session.execute(
                update(AccessKey)
                .where(AccessKey.access_key_id == access_key_id)
                .values(last_used_at=now)
            )
