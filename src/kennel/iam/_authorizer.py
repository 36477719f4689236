"""Authorization on every request, and the access log that remembers each decision.

The gateway asks :meth:`Authorizer.authorize` with the verified caller, the action and the
resource ARN before a route does anything. What is known about a caller (its policies,
boundary, session) is cached per access key and dropped whenever IAM changes in this
process (``IamService.generation``) or after ``ttl`` seconds (other servers sharing the
database). Decisions go to :class:`AccessLog`, written to the database in batches by a
background thread, so the hot path never waits on SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from kennel._errors import AccessDeniedError, NotFoundError
from kennel.iam._actions import UNAUTHORIZED_ACTIONS
from kennel.iam._builtin import BUILTIN_BY_ARN
from kennel.iam._policy import AuthzRequest, Decision, Policy, evaluate, parse_policy
from kennel.iam._service import IamService, Principal
from kennel.store import AccessLogEntry, Database, Role, User

log = logging.getLogger(__name__)

SELF_SERVICE_PASSWORD_ACTIONS = frozenset({"iam:ChangePassword", "iam:GetAccountPasswordPolicy"})
"""What the password policy's AllowUsersToChangePassword grants every IAM user."""
USERS_CHANGE_PASSWORD = parse_policy(
    BUILTIN_BY_ARN["arn:aws:iam::aws:policy/IAMUserChangePassword"].document,
    name="AllowUsersToChangePassword (the account password policy)",
)
"""AllowUsersToChangePassword acts as if IAMUserChangePassword were attached to every user:
their own password and the policy itself, nothing more; an explicit deny or a permissions
boundary still limits it, as it would that policy."""


@dataclass
class Outcome:
    """A decision with everything needed to explain it later."""

    request_id: str
    time: datetime
    principal_arn: str
    access_key_id: str
    action: str
    resource: str
    decision: Decision
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    session_policy_denied: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision.allowed and not self.session_policy_denied

    def to_dict(self) -> dict[str, Any]:
        statement = self.decision.statement
        return {
            "request_id": self.request_id,
            "time": self.time.isoformat(),
            "principal": self.principal_arn,
            "access_key_id": self.access_key_id,
            "action": self.action,
            "resource": self.resource,
            "allowed": self.allowed,
            "reason": "session-policy" if self.session_policy_denied else self.decision.reason,
            "blocked_by_boundary": self.decision.blocked_by_boundary,
            "statement": _statement_dict(statement),
            "context": self.context,
            "message": self.message,
        }


def _statement_dict(statement: Any) -> dict[str, Any]:
    if statement is None:
        return {}
    return {
        "policy": statement.policy,
        "sid": statement.sid,
        "index": statement.index,
        "source": statement.source,
    }


class AccessLog:
    """Decisions, written in batches; readable by request id, principal and time.

    Every denial is kept. An allowed call that repeats one made by the same principal on
    the same action and resource less than ``repeat_window`` seconds before is not
    written again: the log answers "who did what on which resource, and when last" (what
    ``generate-policy``, ``unused`` and the audit need) without a row per invocation of
    a busy endpoint.
    """

    def __init__(
        self,
        db: Database,
        *,
        flush_every: float = 0.5,
        retention: timedelta = timedelta(days=400),
        repeat_window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._repeat_window = repeat_window
        self._clock = clock
        self._recent: dict[tuple[str, str, str], float] = {}
        self._flush_every = flush_every
        self._retention = retention
        self._pending: list[Outcome] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kennel-access-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            if outcome.allowed and self._repeat_window > 0:
                key = (outcome.principal_arn, outcome.action, outcome.resource)
                now = self._clock()
                last = self._recent.get(key)
                if last is not None and now - last < self._repeat_window:
                    return
                if len(self._recent) > 50_000:
                    self._recent.clear()
                self._recent[key] = now
            self._pending.append(outcome)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_every):
            try:
                self.flush()
            except Exception:
                log.exception("writing the access log failed")

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                rows = [
                    {
                        "request_id": o.request_id,
                        "time": o.time,
                        "principal_arn": o.principal_arn,
                        "access_key_id": o.access_key_id,
                        "action": o.action,
                        "resource": o.resource,
                        "allowed": o.allowed,
                        "reason": "session-policy"
                        if o.session_policy_denied
                        else o.decision.reason,
                        "statement": _statement_dict(o.decision.statement),
                        "context": o.context,
                        "message": o.message,
                    }
                    for o in batch
                ]
                # One executemany through SQLAlchemy Core: ~10x cheaper per row than the ORM.
                with self._db.session() as session:
                    session.execute(insert(AccessLogEntry), rows)
            now = time.monotonic()
            if now - self._last_prune > 3600:
                self._last_prune = now
                with self._db.session() as session:
                    session.execute(
                        delete(AccessLogEntry).where(
                            AccessLogEntry.time < datetime.now(UTC) - self._retention
                        )
                    )

    def get(self, request_id: str) -> list[dict[str, Any]]:
        self.flush()
        with self._db.session() as session:
            rows = session.scalars(
                select(AccessLogEntry)
                .where(AccessLogEntry.request_id == request_id)
                .order_by(AccessLogEntry.id)
            ).all()
            return [_row_dict(r) for r in rows]

    def entries(
        self,
        *,
        principal_arn: str | None = None,
        since: datetime | None = None,
        allowed: bool | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        self.flush()
        query = select(AccessLogEntry).order_by(AccessLogEntry.id.desc()).limit(limit)
        if principal_arn is not None:
            query = query.where(_principal_filter(principal_arn))
        if since is not None:
            query = query.where(AccessLogEntry.time >= since)
        if allowed is not None:
            query = query.where(AccessLogEntry.allowed.is_(allowed))
        with self._db.session() as session:
            return [_row_dict(r) for r in reversed(session.scalars(query).all())]

    def last_used(self) -> dict[str, datetime]:
        """The last allowed call of each principal ARN (assumed-role sessions by session)."""
        self.flush()
        from sqlalchemy import func

        with self._db.session() as session:
            rows = session.execute(
                select(AccessLogEntry.principal_arn, func.max(AccessLogEntry.time))
                .where(AccessLogEntry.allowed.is_(True))
                .group_by(AccessLogEntry.principal_arn)
            ).all()
            return {arn: _aware(t) for arn, t in rows}


def _principal_filter(principal_arn: str) -> Any:
    """Rows of a principal; a role ARN also means every session of that role."""
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/"):
        role = parts[5].rsplit("/", 1)[-1]
        # startswith with autoescape: "_" (allowed in role names) is a LIKE wildcard.
        sessions = f"arn:aws:sts::{parts[4]}:assumed-role/{role}/"
        of_sessions = AccessLogEntry.principal_arn.startswith(sessions, autoescape=True)
        return (AccessLogEntry.principal_arn == principal_arn) | of_sessions
    return AccessLogEntry.principal_arn == principal_arn


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _row_dict(row: AccessLogEntry) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "time": _aware(row.time).isoformat(),
        "principal": row.principal_arn,
        "access_key_id": row.access_key_id,
        "action": row.action,
        "resource": row.resource,
        "allowed": row.allowed,
        "reason": row.reason,
        "statement": row.statement,
        "context": row.context,
        "message": row.message,
    }


@dataclass(frozen=True)
class RequestFacts:
    """What the gateway knows about a request besides the caller: for condition keys."""

    request_id: str
    source_ip: str = ""
    secure: bool = False
    region: str = ""


class Authorizer:
    def __init__(
        self,
        iam: IamService,
        access_log: AccessLog,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.iam = iam
        self.access_log = access_log
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, int, Principal]] = {}
        self._lock = threading.Lock()

    def cached(self, access_key_id: str) -> Principal | None:
        """The cached principal, if still good: the hot path's way to skip the database."""
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[1] == self.iam.generation and self._clock() - hit[0] < self._ttl:
            return hit[2]
        return None

    def principal(self, access_key_id: str) -> Principal:
        now = self._clock()
        generation = self.iam.generation
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[1] == generation and now - hit[0] < self._ttl:
            return hit[2]
        principal = self.iam.resolve(access_key_id)
        if principal is None:
            raise AccessDeniedError(
                f"The security token included in the request is invalid ({access_key_id}).",
                aws_code="UnrecognizedClientException",
            )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, generation, principal)
        return principal

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        facts: RequestFacts,
        *,
        extra_context: Mapping[str, Any] | None = None,
    ) -> Outcome:
        now = datetime.now(UTC)
        context = principal.context()
        context["aws:CurrentTime"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        context["aws:EpochTime"] = str(int(now.timestamp()))
        context["aws:SecureTransport"] = "true" if facts.secure else "false"
        if facts.source_ip:
            context["aws:SourceIp"] = facts.source_ip
        if facts.region:
            context["aws:RequestedRegion"] = facts.region
        if extra_context:
            context.update(extra_context)
        request = AuthzRequest(principal.arn, action, resource, context)
        session_denied = False
        trust_denied = False
        if action == "sts:AssumeRole":
            decision, trust_denied = _assume_role_decision(
                request, principal, self.iam.trust_policy(resource)
            )
        else:
            resource_policy = self.iam.resource_policy(resource) if ":lambda:" in resource else None
            decision = evaluate(
                request,
                principal.policies,
                resource_policy=resource_policy,
                boundary=principal.boundary,
            )
            if self._users_change_password(principal, action, decision):
                decision = evaluate(
                    request,
                    (*principal.policies, USERS_CHANGE_PASSWORD),
                    boundary=principal.boundary,
                )
        if action in UNAUTHORIZED_ACTIONS:
            decision = Decision(True, "allowed")
        elif (
            decision.allowed
            and principal.session_policy is not None
            and decision.statement is not None
            and decision.statement.source != "resource"
        ):
            session_denied = not evaluate(request, [principal.session_policy]).allowed
        message = decision.message(principal.arn, action, resource)
        if trust_denied:
            message = (
                f"User: {principal.arn} is not authorized to perform: {action} on resource: "
                f"{resource} because the role's trust policy does not allow it"
            )
        if session_denied:
            message = (
                f"User: {principal.arn} is not authorized to perform: {action} on resource: "
                f"{resource} because no session policy allows the {action} action"
            )
        return Outcome(
            request_id=facts.request_id,
            time=now,
            principal_arn=principal.arn,
            access_key_id=principal.access_key_id,
            action=action,
            resource=resource,
            decision=decision,
            message=message,
            context=context,
            session_policy_denied=session_denied,
        )

    def _users_change_password(self, principal: Principal, action: str, decision: Decision) -> bool:
        """Whether to decide again with AllowUsersToChangePassword's grant: the one place
        the account password policy widens what a user may do, for the Query API's
        ChangePassword/GetAccountPasswordPolicy and the console's change-password alike.
        Read only for a user refused one of those two actions (no cost on other calls)."""
        if decision.allowed or decision.reason == "explicit-deny" or principal.kind != "user":
            return False
        if action not in SELF_SERVICE_PASSWORD_ACTIONS:
            return False
        policy = self.iam.account_password_policy()
        return policy is not None and policy.allow_users_to_change_password

    def authorize(
        self,
        access_key_id: str,
        action: str,
        resource: str,
        facts: RequestFacts,
        *,
        extra_context: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Decide, log, and raise AccessDeniedException (403) if the caller may not."""
        outcome = self.check(
            self.principal(access_key_id), action, resource, facts, extra_context=extra_context
        )
        if not outcome.allowed:
            raise AccessDeniedError(
                outcome.message,
                hint=f"Run `kennel iam explain {facts.request_id}` to see what decided it.",
            )
        return outcome

    def check(
        self,
        principal: Principal,
        action: str,
        resource: str,
        facts: RequestFacts,
        *,
        extra_context: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Decide and log (without raising)."""
        outcome = self.decide(principal, action, resource, facts, extra_context=extra_context)
        self.access_log.record(outcome)
        return outcome

    # --- the simulator ---------------------------------------------------------------

    def principal_for_arn(self, arn: str) -> Principal:
        """A principal named by ARN, as if it called with a long-term key / a role session."""
        account = self.iam.account_id
        with self.iam.db.session() as session:
            if arn.startswith(f"arn:aws:iam::{account}:user/"):
                name = arn.rsplit("/", 1)[-1]
                user = session.get(User, name)
                if user is not None:
                    policies, boundary = self.iam.identity_policies(session, "user", name)
                    return Principal(
                        arn=user.arn,
                        kind="user",
                        name=name,
                        id=user.user_id,
                        access_key_id="",
                        policies=tuple(policies),
                        boundary=boundary,
                    )
            role_name = None
            if arn.startswith(f"arn:aws:iam::{account}:role/"):
                role_name = arn.rsplit("/", 1)[-1]
            elif arn.startswith(f"arn:aws:sts::{account}:assumed-role/"):
                role_name = arn.split("/")[1]
            if role_name is not None:
                role = session.get(Role, role_name)
                if role is not None:
                    policies, boundary = self.iam.identity_policies(session, "role", role_name)
                    session_arn = (
                        arn
                        if ":assumed-role/" in arn
                        else f"arn:aws:sts::{account}:assumed-role/{role_name}/simulation"
                    )
                    return Principal(
                        arn=session_arn,
                        kind="role",
                        name=role_name,
                        id=role.role_id,
                        access_key_id="",
                        policies=tuple(policies),
                        boundary=boundary,
                        session_name=session_arn.rsplit("/", 1)[-1],
                    )
        raise NotFoundError(
            f"No user or role with ARN {arn} in account {account}.",
            aws_code="NoSuchEntity",
            hint="Give a user ARN (arn:aws:iam::ACCOUNT:user/NAME) or a role ARN.",
        )

    def simulate(
        self,
        principal_arn: str,
        actions: Sequence[str],
        resources: Sequence[str],
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        principal = self.principal_for_arn(principal_arn)
        facts = RequestFacts(request_id="simulation", region=self.iam.region)
        results = []
        for action in actions:
            for resource in resources or ["*"]:
                outcome = self.decide(principal, action, resource, facts, extra_context=context)
                results.append(outcome.to_dict())
        return results


def _assume_role_decision(
    request: AuthzRequest, principal: Principal, trust: Policy | None
) -> tuple[Decision, bool]:
    """AssumeRole within one account: the trust policy must allow the caller.

    A trust statement naming the caller itself is enough; one naming only the account
    (``:root``) leaves it to the caller's identity policies. An explicit deny in either
    wins. Returns the decision and whether the trust policy was what refused.
    """
    identity = evaluate(request, principal.policies, boundary=principal.boundary)
    if identity.reason == "explicit-deny":
        return identity, False
    if trust is None:
        return Decision(False, "implicit-deny"), True
    by_trust = evaluate(request, [], resource_policy=trust)
    if by_trust.reason == "explicit-deny":
        return by_trust, False
    if not by_trust.allowed:
        return Decision(False, "implicit-deny"), True
    if _names_exactly(trust, by_trust, principal):
        return by_trust, False
    return identity, False


def _names_exactly(trust: Policy, decision: Decision, caller: Principal) -> bool:
    """Whether the trust statement that allowed the caller names it (not just its account)."""
    if decision.statement is None:
        return False
    statement = trust.statements[decision.statement.index]
    names = {caller.arn}
    if caller.role_arn:
        names.add(caller.role_arn)
    return any(
        value in names for values in (statement.principals or {}).values() for value in values
    )
