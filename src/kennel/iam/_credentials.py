"""Looking up the secret behind an access key id, for SigV4 verification."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from kennel.iam._keys import SecretBox
from kennel.iam.sigv4 import Credential
from kennel.store import AccessKey, Database, Role, Session, User


class CredentialStore:
    """Finds active keys in the database; caches them briefly to keep the hot path off it.

    The cache lives ``ttl`` seconds, and is dropped whenever ``generation()`` changes (IAM
    changed in this process), so a deactivated or deleted key stops working at once here
    and within ``ttl`` on other servers sharing the database. Temporary (ASIA) keys come
    from STS sessions, with their token and expiry. ``last_used_at`` is written at most
    once per ``touch_every`` per key.
    """

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        ttl: float = 2.0,
        touch_every: timedelta = timedelta(minutes=1),
        clock: Callable[[], float] = time.monotonic,
        generation: Callable[[], int] = lambda: 0,
    ) -> None:
        self._db = db
        self._generation = generation
        self._seen_generation = generation()
        self._box = box
        self._ttl = ttl
        self._touch_every = touch_every
        self._clock = clock
        self._cache: dict[str, tuple[float, Credential | None]] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def lookup(self, access_key_id: str) -> Credential | None:
        now = self._clock()
        generation = self._generation()
        with self._lock:
            if generation != self._seen_generation:
                self._cache.clear()
                self._seen_generation = generation
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
            if access_key_id.startswith("ASIA"):
                temporary = session.get(Session, access_key_id)
                if temporary is None:
                    return None
                expires = temporary.expires_at
                return Credential(
                    access_key_id=access_key_id,
                    secret_access_key=self._box.decrypt(temporary.secret_encrypted),
                    session_token=self._box.decrypt(temporary.token_encrypted),
                    principal=temporary.principal_arn,
                    expires_at=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
                )
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

    def touch(self, access_key_id: str, service: str = "", principal: str = "") -> None:
        """Record that a key (or a role, through a session) was used, at most once per interval.

        This is AWS's access-key LastUsedDate/ServiceName and a role's RoleLastUsed.
        """
        now = datetime.now(UTC)
        last = self._touched.get(access_key_id)
        if last is not None and now - last < self._touch_every:
            return
        if len(self._touched) > 10_000:
            self._touched.clear()
        self._touched[access_key_id] = now
        with self._db.session() as session:
            if access_key_id.startswith("ASIA"):
                if ":assumed-role/" in principal:
                    role = principal.split("/")[1]
                    session.execute(update(Role).where(Role.name == role).values(last_used_at=now))
                return
            session.execute(
                update(AccessKey)
                .where(AccessKey.access_key_id == access_key_id)
                .values(last_used_at=now, last_used_service=service or None)
            )
