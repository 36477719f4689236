"""IAM's resources for one account: users, keys, groups, roles, policies, STS sessions, MFA.

Methods take and return AWS's shapes (``UserName``, ``Arn``, ``CreateDate`` ...), so the
Query-protocol layer that boto3's ``iam`` and ``sts`` clients talk to is a thin
dispatcher, and the CLI shows what the AWS CLI would. Every change bumps
``generation`` so the authorizer drops what it cached about principals at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from kennel.iam._builtin import ADMINISTRATOR_ACCESS, BUILTIN_POLICIES
from kennel.iam._errors import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    IamValidationError,
    InvalidAuthenticationCodeError,
    LimitExceededError,
    NoSuchEntityError,
    PasswordPolicyViolationError,
    StsAccessDeniedError,
    WrongOldPasswordError,
)
from kennel.iam._keys import SecretBox, new_access_key_id, new_secret_access_key
from kennel.iam._password_policy import (
    DEFAULT_RULES,
    MAX_PASSWORD_LENGTH,
    MAX_REUSE_PREVENTION,
    MIN_PASSWORD_LENGTH,
    PasswordPolicy,
)
from kennel.iam._policy import AuthzRequest, Policy, evaluate, parse_policy
from kennel.store import (
    AccessKey,
    AccountPasswordPolicy,
    Boundary,
    Database,
    Group,
    GroupMember,
    InlinePolicy,
    LoginProfile,
    ManagedPolicy,
    MfaDevice,
    PolicyAttachment,
    ResourcePolicy,
    Role,
    Session,
    User,
)

PrincipalKind = Literal["user", "group", "role"]
PasswordState = Literal["valid", "reset-required", "expired", "hard-expired"]
"""Whether a console password signs its user in: ``expired`` (MaxPasswordAge) is held for a
new password like ``reset-required``; ``hard-expired`` (HardExpiry) waits for an admin."""

MAX_KEYS_PER_USER = 2
MIN_SESSION_SECONDS = 900
MAX_ROLE_SESSION_SECONDS = 12 * 3600
DEFAULT_USER_SESSION_SECONDS = 12 * 3600
MAX_USER_SESSION_SECONDS = 36 * 3600
TOTP_STEP = 30

_NAME = re.compile(r"^[\w+=,.@-]+$")
_PATH = re.compile(r"^/([\x21-\x7e]*/)?$")
_ROLE_DESCRIPTION = re.compile(r"[\t\n\r\x20-\x7e\xa1-\xff]*")
"""AWS's pattern for a role's Description."""
_XML_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
"""What the Query protocol's XML answers can carry (a policy's Description is otherwise free)."""
MAX_DESCRIPTION = 1000
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt's cost (16 MiB, some 50 ms a check); stored with each hash, so raising it later
leaves the passwords hashed before still checkable."""
_SCRYPT_MAXMEM = 64 * 2**20
SERVICE_PRINCIPALS = frozenset({"lambda.amazonaws.com", "sagemaker.amazonaws.com"})


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_name(kind: str, name: str, limit: int, *, minimum: int = 1) -> str:
    if not isinstance(name, str) or not minimum <= len(name) <= limit or not _NAME.match(name):
        raise IamValidationError(
            f"1 validation error detected: Value '{name}' at '{kind}' failed to satisfy "
            f"constraint: Member must have length between {minimum} and {limit} and match "
            r"the pattern [\w+=,.@-]+"
        )
    return name


def _check_path(path: str | None) -> str:
    path = path or "/"
    if len(path) > 512 or not _PATH.match(path):
        raise IamValidationError(
            f"The specified value for path is invalid: '{path}'. It must begin and end with "
            "/ and contain only printable ASCII characters."
        )
    return path


def _check_description(description: str, pattern: re.Pattern[str], rule: str) -> str:
    """AWS's limits on a Description: a role's has AWS's pattern, a policy's may be any text
    an answer can carry (a control character stored would make every answer naming it fail)."""
    if len(description) > MAX_DESCRIPTION or not pattern.fullmatch(description):
        shown = description if len(description) <= 100 else description[:100] + "..."
        raise IamValidationError(
            f"1 validation error detected: Value {shown!r} at 'description' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_DESCRIPTION} and "
            f"{rule}"
        )
    return description


def _doc_text(document: str | dict[str, Any]) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _check_password(password: str) -> str:
    if not isinstance(password, str) or not (
        MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    ):
        raise PasswordPolicyViolationError(
            f"Password should have a minimum length of {MIN_PASSWORD_LENGTH} and a maximum "
            f"length of {MAX_PASSWORD_LENGTH} characters."
        )
    return password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$<salt b64>$<hash b64>``, with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
        f"{b64(salt).decode('ascii')}${b64(digest).decode('ascii')}"
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` hashes to ``stored``, in about the same time whatever the answer
    (no stored hash, or one kennel cannot read, still costs one scrypt: no user oracle)."""
    n, r, p, salt, expected = SCRYPT_N, SCRYPT_R, SCRYPT_P, bytes(16), b""
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = (stored or "").split("$")
        if scheme == "scrypt":
            n, r, p = int(n_text), int(r_text), int(p_text)
            salt = base64.b64decode(salt_text, validate=True)
            expected = base64.b64decode(hash_text, validate=True)
    except ValueError:
        expected = b""
    given = password if isinstance(password, str) else ""
    try:
        actual = _scrypt(given, salt, n, r, p)
    except (ValueError, MemoryError):
        return False
    matches = secrets.compare_digest(actual, expected)
    return matches and bool(expected) and isinstance(password, str)


@dataclass(frozen=True)
class Principal:
    """Who is calling, with everything the authorizer needs to decide for them."""

    arn: str
    kind: Literal["user", "role"]
    name: str
    """The user's or the role's name."""
    id: str
    access_key_id: str
    policies: tuple[Policy, ...]
    boundary: Policy | None = None
    session_policy: Policy | None = None
    session_name: str = ""
    mfa: bool | None = None
    """None for long-term keys: AWS leaves aws:MultiFactorAuthPresent out of their context."""
    token_issued_at: datetime | None = None

    @property
    def role_arn(self) -> str | None:
        if self.kind != "role":
            return None
        account = self.arn.split(":")[4]
        return f"arn:aws:iam::{account}:role/{self.name}"

    def context(self) -> dict[str, Any]:
        """The aws:* context keys that come from the caller."""
        account = self.arn.split(":")[4]
        ctx: dict[str, Any] = {
            "aws:PrincipalArn": self.role_arn or self.arn,
            "aws:PrincipalAccount": account,
            "aws:PrincipalType": "AssumedRole" if self.kind == "role" else "User",
            "aws:userid": f"{self.id}:{self.session_name}" if self.kind == "role" else self.id,
        }
        if self.kind == "user":
            ctx["aws:username"] = self.name
        if self.mfa is not None:
            ctx["aws:MultiFactorAuthPresent"] = "true" if self.mfa else "false"
        if self.token_issued_at is not None:
            ctx["aws:TokenIssueTime"] = self.token_issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.mfa:
                age = int((_now() - self.token_issued_at).total_seconds())
                ctx["aws:MultiFactorAuthAge"] = str(max(age, 0))
        return ctx


class IamService:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], datetime] = _now,
        min_session_seconds: int = MIN_SESSION_SECONDS,
    ) -> None:
        self.min_session_seconds = min_session_seconds
        self.db = db
        self.box = box
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.generation = 0
        self._lock = threading.Lock()
        self._resource_policies: dict[str, tuple[int, Policy | None]] = {}
        """Parsed resource policies by ARN, for one generation: Invoke consults them on
        the event loop, where a database read per call would cost more than the rest."""

    # --- helpers ---------------------------------------------------------------------

    def _changed(self) -> None:
        with self._lock:
            self.generation += 1

    def arn(self, kind: str, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account_id}:{kind}{path}{name}"

    def _id(self, prefix: str) -> str:
        return new_access_key_id(prefix) + secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

    def _user(self, session: DbSession, name: str) -> User:
        user = session.get(User, name)
        if user is None:
            raise NoSuchEntityError(f"The user with name {name} cannot be found.")
        return user

    def _group(self, session: DbSession, name: str) -> Group:
        group = session.get(Group, name)
        if group is None:
            raise NoSuchEntityError(f"The group with name {name} cannot be found.")
        return group

    def _role(self, session: DbSession, name: str) -> Role:
        role = session.get(Role, name)
        if role is None:
            raise NoSuchEntityError(f"The role with name {name} cannot be found.")
        return role

    def _policy(self, session: DbSession, arn: str) -> ManagedPolicy:
        policy = session.get(ManagedPolicy, arn)
        if policy is None:
            raise NoSuchEntityError(f"Policy {arn} does not exist or is not attachable.")
        return policy

    def _principal_row(self, session: DbSession, kind: PrincipalKind, name: str) -> Any:
        return {"user": self._user, "group": self._group, "role": self._role}[kind](session, name)

    def role_name_from_arn(self, role_arn: str) -> str:
        prefix = f"arn:aws:iam::{self.account_id}:role/"
        if not role_arn.startswith(prefix):
            raise IamValidationError(
                f"{role_arn} is not a role ARN of account {self.account_id} "
                f"(expected {prefix}NAME)."
            )
        return role_arn.rsplit("/", 1)[-1]

    # --- built-ins and the admin -----------------------------------------------------

    def ensure_builtins(self, admin_user: str = "admin") -> None:
        """Create or refresh the built-in policies; give the bootstrap admin AdministratorAccess."""
        with self.db.session() as session:
            for builtin in BUILTIN_POLICIES:
                document = json.dumps(builtin.document)
                row = session.get(ManagedPolicy, builtin.arn)
                if row is None:
                    session.add(
                        ManagedPolicy(
                            arn=builtin.arn,
                            name=builtin.name,
                            policy_id=self._id("ANPA"),
                            path=builtin.path,
                            description=builtin.description,
                            document=document,
                            versions=[{"VersionId": "v1", "Document": document}],
                            builtin=True,
                        )
                    )
                elif row.document != document:
                    row.document = document
                    row.versions = [{"VersionId": "v1", "Document": document}]
                    row.updated_at = self.clock()
            session.flush()
            admin = session.get(User, admin_user)
            if admin is not None:
                if not admin.user_id:
                    admin.user_id = self._id("AIDA")
                if admin.is_admin and (
                    session.get(PolicyAttachment, ("user", admin_user, ADMINISTRATOR_ACCESS))
                    is None
                ):
                    session.add(
                        PolicyAttachment(
                            principal_kind="user",
                            principal_name=admin_user,
                            policy_arn=ADMINISTRATOR_ACCESS,
                        )
                    )
                    admin.is_admin = False
        self._changed()

    # --- users and access keys -------------------------------------------------------

    def _user_shape(self, user: User) -> dict[str, Any]:
        return {
            "Path": user.path,
            "UserName": user.name,
            "UserId": user.user_id,
            "Arn": user.arn,
            "CreateDate": _aware(user.created_at),
        }

    def create_user(self, name: str, path: str | None = None) -> dict[str, Any]:
        _check_name("userName", name, 64)
        path = _check_path(path)
        with self.db.session() as session:
            if session.get(User, name) is not None:
                raise EntityAlreadyExistsError(f"User with name {name} already exists.")
            user = User(name=name, arn=self.arn("user", name, path), user_id=self._id("AIDA"))
            user.path = path
            session.add(user)
            session.flush()
            shape = self._user_shape(user)
        self._changed()
        return {"User": shape}

    def get_user(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            user = self._user(session, name)
            shape = self._user_shape(user)
            boundary = session.get(Boundary, ("user", name))
            if boundary is not None:
                shape["PermissionsBoundary"] = {
                    "PermissionsBoundaryType": "Policy",
                    "PermissionsBoundaryArn": boundary.policy_arn,
                }
            return {"User": shape}

    def list_users(self) -> dict[str, Any]:
        with self.db.session() as session:
            users = session.scalars(select(User).order_by(User.name)).all()
            return {"Users": [self._user_shape(u) for u in users], "IsTruncated": False}

    def delete_user(self, name: str) -> None:
        with self.db.session() as session:
            self._user(session, name)
            self._refuse_if_attached(session, "user", name, "user")
            if session.scalar(select(AccessKey).where(AccessKey.user_name == name)) is not None:
                raise DeleteConflictError("Cannot delete entity, must delete access keys first.")
            if session.scalar(select(MfaDevice).where(MfaDevice.user_name == name)) is not None:
                raise DeleteConflictError("Cannot delete entity, must remove MFA devices first.")
            if session.get(LoginProfile, name) is not None:
                raise DeleteConflictError("Cannot delete entity, must delete login profile first.")
            if session.scalar(select(GroupMember).where(GroupMember.user_name == name)):
                raise DeleteConflictError(
                    "Cannot delete entity, must remove user from all groups first."
                )
            session.execute(
                delete(Boundary).where(
                    Boundary.principal_kind == "user", Boundary.principal_name == name
                )
            )
            session.execute(delete(User).where(User.name == name))
        self._changed()

    def _refuse_if_attached(
        self, session: DbSession, kind: PrincipalKind, name: str, noun: str
    ) -> None:
        attached = session.scalar(
            select(PolicyAttachment).where(
                PolicyAttachment.principal_kind == kind, PolicyAttachment.principal_name == name
            )
        )
        inline = session.scalar(
            select(InlinePolicy).where(
                InlinePolicy.principal_kind == kind, InlinePolicy.principal_name == name
            )
        )
        held = (
            f"managed policy {attached.policy_arn}"
            if attached is not None
            else f"inline policy {inline.policy_name}"
            if inline is not None
            else None
        )
        if held is not None:
            raise DeleteConflictError(
                f"Cannot delete entity, must detach all policies first ({noun} {name} still "
                f"has {held})."
            )

    def _key_shape(self, key: AccessKey) -> dict[str, Any]:
        return {
            "UserName": key.user_name,
            "AccessKeyId": key.access_key_id,
            "Status": key.status,
            "CreateDate": _aware(key.created_at),
        }

    def create_access_key(self, user_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._user(session, user_name)
            count = session.scalar(
                select(func.count()).select_from(AccessKey).where(AccessKey.user_name == user_name)
            )
            if (count or 0) >= MAX_KEYS_PER_USER:
                raise LimitExceededError(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}",
                    hint="Delete or rotate one of the user's keys first.",
                )
            key_id, secret = new_access_key_id(), new_secret_access_key()
            key = AccessKey(
                access_key_id=key_id,
                user_name=user_name,
                secret_encrypted=self.box.encrypt(secret),
                status="Active",
                created_at=self.clock(),
            )
            session.add(key)
            session.flush()
            shape = self._key_shape(key) | {"SecretAccessKey": secret}
        self._changed()
        return {"AccessKey": shape}

    def list_access_keys(self, user_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._user(session, user_name)
            keys = session.scalars(
                select(AccessKey)
                .where(AccessKey.user_name == user_name)
                .order_by(AccessKey.created_at)
            ).all()
            return {"AccessKeyMetadata": [self._key_shape(k) for k in keys], "IsTruncated": False}

    def _key(self, session: DbSession, key_id: str, user_name: str | None) -> AccessKey:
        key = session.get(AccessKey, key_id)
        if key is None or (user_name is not None and key.user_name != user_name):
            raise NoSuchEntityError(f"The Access Key with id {key_id} cannot be found.")
        return key

    def update_access_key(self, key_id: str, status: str, user_name: str | None = None) -> None:
        if status not in ("Active", "Inactive"):
            raise IamValidationError(
                f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Active, Inactive]"
            )
        with self.db.session() as session:
            self._key(session, key_id, user_name).status = status
        self._changed()

    def delete_access_key(self, key_id: str, user_name: str | None = None) -> None:
        with self.db.session() as session:
            session.delete(self._key(session, key_id, user_name))
        self._changed()

    def get_access_key_last_used(self, key_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            key = self._key(session, key_id, None)
            used: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
            if key.last_used_at is not None:
                used = {
                    "LastUsedDate": _aware(key.last_used_at),
                    "ServiceName": key.last_used_service or "N/A",
                    "Region": self.region,
                }
            return {"UserName": key.user_name, "AccessKeyLastUsed": used}

    def user_of_key(self, key_id: str) -> str | None:
        with self.db.session() as session:
            key = session.get(AccessKey, key_id)
            return key.user_name if key else None

    # --- login profiles (console passwords) ------------------------------------------

    def _login_profile(self, session: DbSession, user_name: str) -> LoginProfile:
        self._user(session, user_name)
        profile = session.get(LoginProfile, user_name)
        if profile is None:
            raise NoSuchEntityError(f"Login Profile for User {user_name} cannot be found.")
        return profile

    def _login_profile_shape(self, profile: LoginProfile) -> dict[str, Any]:
        return {
            "LoginProfile": {
                "UserName": profile.user_name,
                "CreateDate": _aware(profile.created_at),
                "PasswordResetRequired": profile.password_reset_required,
            }
        }

    def _check_new_password(
        self, session: DbSession, password: str, profile: LoginProfile | None = None
    ) -> None:
        """Refuse (PasswordPolicyViolation) a new console password the account's password
        policy does not allow, naming each rule it breaks; without a policy, kennel's own
        8..128 characters. With PasswordReusePrevention N, ``profile``'s current password
        and the ones before it, N in all, may not come back."""
        policy = self._password_policy(session)
        if policy is None or not isinstance(password, str):
            _check_password(password)
            return
        problems = policy.violations(password)
        if problems:
            raise PasswordPolicyViolationError("; ".join(problems))
        remembered = policy.password_reuse_prevention
        if profile is not None and remembered:
            recent = [profile.password_hash, *profile.previous_password_hashes][:remembered]
            if any(verify_password(password, stored) for stored in recent):
                raise PasswordPolicyViolationError(
                    f"Password should not be one of the last {remembered} "
                    f"password{'s' if remembered > 1 else ''} of this user (the account's "
                    "password policy prevents reusing them)"
                )

    def _set_password(self, profile: LoginProfile, password: str) -> None:
        """Replace the password, remembering the one before (hashed) for reuse prevention."""
        profile.previous_password_hashes = [
            profile.password_hash,
            *profile.previous_password_hashes,
        ][: MAX_REUSE_PREVENTION - 1]
        profile.password_hash = hash_password(password)
        profile.password_changed_at = self.clock()

    def create_login_profile(
        self, user_name: str, password: str, password_reset_required: bool = False
    ) -> dict[str, Any]:
        with self.db.session() as session:
            self._user(session, user_name)
            if session.get(LoginProfile, user_name) is not None:
                raise EntityAlreadyExistsError(
                    f"Login Profile for user {user_name} already exists."
                )
            self._check_new_password(session, password)
            now = self.clock()
            profile = LoginProfile(
                user_name=user_name,
                password_hash=hash_password(password),
                password_reset_required=password_reset_required,
                created_at=now,
                password_changed_at=now,
                previous_password_hashes=[],
            )
            session.add(profile)
            session.flush()
            return self._login_profile_shape(profile)

    def get_login_profile(self, user_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._login_profile_shape(self._login_profile(session, user_name))

    def update_login_profile(
        self,
        user_name: str,
        password: str | None = None,
        password_reset_required: bool | None = None,
    ) -> None:
        with self.db.session() as session:
            profile = self._login_profile(session, user_name)
            if password is not None:
                self._check_new_password(session, password, profile)
                self._set_password(profile, password)
            if password_reset_required is not None:
                profile.password_reset_required = password_reset_required

    def delete_login_profile(self, user_name: str) -> None:
        with self.db.session() as session:
            session.delete(self._login_profile(session, user_name))

    def change_password(self, user_name: str, old_password: str, new_password: str) -> None:
        """IAM's ChangePassword: a user replaces their own console password, proving the old
        one; the new one must pass the same rules as CreateLoginProfile's (and the password
        policy's reuse prevention), and choosing it ends a PasswordResetRequired."""
        with self.db.session() as session:
            profile = self._login_profile(session, user_name)
            if not verify_password(old_password, profile.password_hash):
                raise WrongOldPasswordError("The old password is not correct.")
            if new_password == old_password:
                raise PasswordPolicyViolationError(
                    "The new password must be different from the old one."
                )
            self._check_new_password(session, new_password, profile)
            self._set_password(profile, new_password)
            profile.password_reset_required = False

    def password_reset_required(self, user_name: str) -> bool:
        """Whether the user must choose a new console password before signing in."""
        with self.db.session() as session:
            return self._login_profile(session, user_name).password_reset_required

    def password_state(self, user_name: str) -> PasswordState:
        """Whether the user's console password signs them in, or why not: an expired one
        (older than the policy's MaxPasswordAge) waits for a new password as a reset does,
        unless the policy's HardExpiry leaves that to an administrator."""
        with self.db.session() as session:
            profile = self._login_profile(session, user_name)
            policy = self._password_policy(session)
            if policy is not None and policy.expired(
                _aware(profile.password_changed_at), self.clock()
            ):
                return "hard-expired" if policy.hard_expiry else "expired"
            return "reset-required" if profile.password_reset_required else "valid"

    def check_password(self, user_name: str, password: str) -> bool:
        """Whether ``password`` is the user's console password; False, never an error, for
        a wrong one, an unknown user or a user without one (each taking as long)."""
        with self.db.session() as session:
            profile = session.get(LoginProfile, user_name) if isinstance(user_name, str) else None
            stored = profile.password_hash if profile is not None else None
        return verify_password(password, stored)

    def console_session(self, user_name: str, seconds: int) -> dict[str, Any]:
        """Temporary credentials for a user the console signed in (as GetSessionToken makes:
        an ASIA key acting as the user), once it has checked a password or a secret key."""
        self._check_duration(seconds, MAX_USER_SESSION_SECONDS)
        with self.db.session() as session:
            user = self._user(session, user_name)
            credentials = self._new_session(
                session,
                kind="user",
                principal_name=user.name,
                principal_arn=user.arn,
                source_arn=user.arn,
                seconds=seconds,
            )
        return {"Credentials": credentials}

    # --- the account password policy ------------------------------------------------

    def _password_policy(self, session: DbSession) -> PasswordPolicy | None:
        row = session.get(AccountPasswordPolicy, self.account_id)
        if row is None:
            return None
        return PasswordPolicy(**{f.name: getattr(row, f.name) for f in fields(PasswordPolicy)})

    def account_password_policy(self) -> PasswordPolicy | None:
        """The account's password policy, or None when none is set."""
        with self.db.session() as session:
            return self._password_policy(session)

    def update_account_password_policy(self, policy: PasswordPolicy) -> None:
        """IAM's UpdateAccountPasswordPolicy: ``policy`` replaces the whole policy (AWS has
        no partial update; what the call left out has AWS's default)."""
        try:
            self._write_password_policy(policy)
        except IntegrityError:
            # Another call made the first policy between our read and insert: replace it.
            self._write_password_policy(policy)

    def _write_password_policy(self, policy: PasswordPolicy) -> None:
        with self.db.session() as session:
            row = session.get(AccountPasswordPolicy, self.account_id)
            if row is None:
                row = AccountPasswordPolicy(account_id=self.account_id)
                session.add(row)
            for name, value in asdict(policy).items():
                setattr(row, name, value)
            row.updated_at = self.clock()

    def password_rules(self) -> str:
        """What a new console password needs now (the policy's rules, or kennel's own)."""
        policy = self.account_password_policy()
        return DEFAULT_RULES if policy is None else policy.rules()

    def get_account_password_policy(self) -> dict[str, Any]:
        policy = self.account_password_policy()
        if policy is None:
            raise self._no_password_policy()
        return {"PasswordPolicy": policy.shape()}

    def delete_account_password_policy(self) -> None:
        with self.db.session() as session:
            row = session.get(AccountPasswordPolicy, self.account_id)
            if row is None:
                raise self._no_password_policy()
            session.delete(row)

    def _no_password_policy(self) -> NoSuchEntityError:
        # AWS's message exactly (no hint: it would be appended to what boto3 shows).
        return NoSuchEntityError(
            f"The Password Policy with domain name {self.account_id} cannot be found."
        )

    # --- groups ----------------------------------------------------------------------

    def _group_shape(self, group: Group) -> dict[str, Any]:
        return {
            "Path": group.path,
            "GroupName": group.name,
            "GroupId": group.group_id,
            "Arn": group.arn,
            "CreateDate": _aware(group.created_at),
        }

    def create_group(self, name: str, path: str | None = None) -> dict[str, Any]:
        _check_name("groupName", name, 128)
        path = _check_path(path)
        with self.db.session() as session:
            if session.get(Group, name) is not None:
                raise EntityAlreadyExistsError(f"Group with name {name} already exists.")
            group = Group(
                name=name, arn=self.arn("group", name, path), group_id=self._id("AGPA"), path=path
            )
            session.add(group)
            session.flush()
            shape = self._group_shape(group)
        self._changed()
        return {"Group": shape}

    def get_group(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            group = self._group(session, name)
            users = session.scalars(
                select(User)
                .join(GroupMember, GroupMember.user_name == User.name)
                .where(GroupMember.group_name == name)
                .order_by(User.name)
            ).all()
            return {
                "Group": self._group_shape(group),
                "Users": [self._user_shape(u) for u in users],
                "IsTruncated": False,
            }

    def list_groups(self) -> dict[str, Any]:
        with self.db.session() as session:
            groups = session.scalars(select(Group).order_by(Group.name)).all()
            return {"Groups": [self._group_shape(g) for g in groups], "IsTruncated": False}

    def list_groups_for_user(self, user_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._user(session, user_name)
            groups = session.scalars(
                select(Group)
                .join(GroupMember, GroupMember.group_name == Group.name)
                .where(GroupMember.user_name == user_name)
                .order_by(Group.name)
            ).all()
            return {"Groups": [self._group_shape(g) for g in groups], "IsTruncated": False}

    def delete_group(self, name: str) -> None:
        with self.db.session() as session:
            self._group(session, name)
            self._refuse_if_attached(session, "group", name, "group")
            if session.scalar(select(GroupMember).where(GroupMember.group_name == name)):
                raise DeleteConflictError(
                    "Cannot delete entity, must remove users from group first."
                )
            session.execute(delete(Group).where(Group.name == name))
        self._changed()

    def add_user_to_group(self, group_name: str, user_name: str) -> None:
        with self.db.session() as session:
            self._group(session, group_name)
            self._user(session, user_name)
            if session.get(GroupMember, (group_name, user_name)) is None:
                session.add(GroupMember(group_name=group_name, user_name=user_name))
        self._changed()

    def remove_user_from_group(self, group_name: str, user_name: str) -> None:
        with self.db.session() as session:
            self._group(session, group_name)
            self._user(session, user_name)
            member = session.get(GroupMember, (group_name, user_name))
            if member is None:
                raise NoSuchEntityError(
                    f"The user with name {user_name} is not in group {group_name}."
                )
            session.delete(member)
        self._changed()

    # --- roles -----------------------------------------------------------------------

    def _role_shape(self, session: DbSession, role: Role) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.role_id,
            "Arn": role.arn,
            "CreateDate": _aware(role.created_at),
            "AssumeRolePolicyDocument": role.trust_policy,
            "Description": role.description,
            "MaxSessionDuration": role.max_session_duration,
        }
        boundary = session.get(Boundary, ("role", role.name))
        if boundary is not None:
            shape["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "Policy",
                "PermissionsBoundaryArn": boundary.policy_arn,
            }
        if role.last_used_at is not None:
            shape["RoleLastUsed"] = {
                "LastUsedDate": _aware(role.last_used_at),
                "Region": self.region,
            }
        return shape

    def create_role(
        self,
        name: str,
        trust_policy: str | dict[str, Any],
        *,
        description: str = "",
        path: str | None = None,
        max_session_duration: int = 3600,
        permissions_boundary: str | None = None,
    ) -> dict[str, Any]:
        _check_name("roleName", name, 64)
        path = _check_path(path)
        description = _check_description(
            description,
            _ROLE_DESCRIPTION,
            r"satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*",
        )
        document = _doc_text(trust_policy)
        parse_policy(document, kind="trust", name=f"{name} trust policy")
        if not 3600 <= max_session_duration <= MAX_ROLE_SESSION_SECONDS:
            raise IamValidationError(
                f"MaxSessionDuration {max_session_duration} must be between 3600 and "
                f"{MAX_ROLE_SESSION_SECONDS} seconds."
            )
        with self.db.session() as session:
            if session.get(Role, name) is not None:
                raise EntityAlreadyExistsError(f"Role with name {name} already exists.")
            if permissions_boundary is not None:
                self._policy(session, permissions_boundary)
            role = Role(
                name=name,
                arn=self.arn("role", name, path),
                role_id=self._id("AROA"),
                path=path,
                description=description,
                trust_policy=document,
                max_session_duration=max_session_duration,
                created_at=self.clock(),
            )
            session.add(role)
            if permissions_boundary is not None:
                session.add(
                    Boundary(
                        principal_kind="role", principal_name=name, policy_arn=permissions_boundary
                    )
                )
            session.flush()
            shape = self._role_shape(session, role)
        self._changed()
        return {"Role": shape}

    def get_role(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            return {"Role": self._role_shape(session, self._role(session, name))}

    def list_roles(self) -> dict[str, Any]:
        with self.db.session() as session:
            roles = session.scalars(select(Role).order_by(Role.name)).all()
            return {"Roles": [self._role_shape(session, r) for r in roles], "IsTruncated": False}

    def delete_role(self, name: str) -> None:
        with self.db.session() as session:
            self._role(session, name)
            self._refuse_if_attached(session, "role", name, "role")
            session.execute(
                delete(Boundary).where(
                    Boundary.principal_kind == "role", Boundary.principal_name == name
                )
            )
            session.execute(delete(Role).where(Role.name == name))
        self._changed()

    def trust_policy(self, role_arn: str) -> Policy | None:
        """The trust policy of the role ``role_arn`` names (None: no such role)."""
        prefix = f"arn:aws:iam::{self.account_id}:role/"
        if not role_arn.startswith(prefix):
            return None
        with self.db.session() as session:
            role = session.get(Role, role_arn.rsplit("/", 1)[-1])
            if role is None or role.arn != role_arn:
                return None
            return parse_policy(role.trust_policy, kind="trust", name=f"{role.name} trust policy")

    def update_assume_role_policy(self, name: str, trust_policy: str | dict[str, Any]) -> None:
        document = _doc_text(trust_policy)
        parse_policy(document, kind="trust", name=f"{name} trust policy")
        with self.db.session() as session:
            self._role(session, name).trust_policy = document
        self._changed()

    # --- managed policies ------------------------------------------------------------

    def _policy_shape(self, session: DbSession, policy: ManagedPolicy) -> dict[str, Any]:
        count = session.scalar(
            select(func.count())
            .select_from(PolicyAttachment)
            .where(PolicyAttachment.policy_arn == policy.arn)
        )
        return {
            "PolicyName": policy.name,
            "PolicyId": policy.policy_id,
            "Arn": policy.arn,
            "Path": policy.path,
            "DefaultVersionId": policy.default_version_id,
            "AttachmentCount": count or 0,
            "PermissionsBoundaryUsageCount": session.scalar(
                select(func.count()).select_from(Boundary).where(Boundary.policy_arn == policy.arn)
            )
            or 0,
            "IsAttachable": True,
            "Description": policy.description,
            "CreateDate": _aware(policy.created_at),
            "UpdateDate": _aware(policy.updated_at),
        }

    def create_policy(
        self,
        name: str,
        document: str | dict[str, Any],
        *,
        description: str = "",
        path: str | None = None,
    ) -> dict[str, Any]:
        _check_name("policyName", name, 128)
        path = _check_path(path)
        description = _check_description(
            description, _XML_TEXT, "hold no control characters but tab and line breaks"
        )
        text = _doc_text(document)
        parse_policy(text, kind="identity", name=name)
        arn = self.arn("policy", name, path)
        with self.db.session() as session:
            if session.get(ManagedPolicy, arn) is not None:
                raise EntityAlreadyExistsError(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            now = self.clock()
            policy = ManagedPolicy(
                arn=arn,
                name=name,
                policy_id=self._id("ANPA"),
                path=path,
                description=description,
                document=text,
                versions=[{"VersionId": "v1", "Document": text, "CreateDate": now.isoformat()}],
                created_at=now,
                updated_at=now,
            )
            session.add(policy)
            session.flush()
            shape = self._policy_shape(session, policy)
        self._changed()
        return {"Policy": shape}

    def get_policy(self, arn: str) -> dict[str, Any]:
        with self.db.session() as session:
            return {"Policy": self._policy_shape(session, self._policy(session, arn))}

    def get_policy_version(self, arn: str, version_id: str | None = None) -> dict[str, Any]:
        with self.db.session() as session:
            policy = self._policy(session, arn)
            wanted = version_id or policy.default_version_id
            for version in policy.versions:
                if version["VersionId"] == wanted:
                    return {
                        "PolicyVersion": {
                            "Document": version["Document"],
                            "VersionId": wanted,
                            "IsDefaultVersion": wanted == policy.default_version_id,
                            "CreateDate": _aware(
                                datetime.fromisoformat(version["CreateDate"])
                                if "CreateDate" in version
                                else policy.created_at
                            ),
                        }
                    }
            raise NoSuchEntityError(f"Policy {arn} version {wanted} does not exist.")

    def list_policy_versions(self, arn: str) -> dict[str, Any]:
        with self.db.session() as session:
            policy = self._policy(session, arn)
            return {
                "Versions": [
                    {
                        "VersionId": v["VersionId"],
                        "IsDefaultVersion": v["VersionId"] == policy.default_version_id,
                    }
                    for v in policy.versions
                ],
                "IsTruncated": False,
            }

    def create_policy_version(
        self, arn: str, document: str | dict[str, Any], *, set_as_default: bool = False
    ) -> dict[str, Any]:
        text = _doc_text(document)
        with self.db.session() as session:
            policy = self._policy(session, arn)
            if policy.builtin:
                raise IamValidationError(
                    f"{arn} is a built-in (AWS managed) policy and cannot be changed.",
                    hint="Create a customer managed policy instead.",
                )
            parse_policy(text, kind="identity", name=policy.name)
            if len(policy.versions) >= 5:
                raise LimitExceededError(
                    "A managed policy can have up to 5 versions. Before you create a new "
                    "version, you must delete an existing version."
                )
            number = max(int(v["VersionId"][1:]) for v in policy.versions) + 1
            version_id = f"v{number}"
            now = self.clock()
            policy.versions = [
                *policy.versions,
                {"VersionId": version_id, "Document": text, "CreateDate": now.isoformat()},
            ]
            if set_as_default:
                policy.default_version_id = version_id
                policy.document = text
            policy.updated_at = now
        self._changed()
        return {
            "PolicyVersion": {
                "VersionId": version_id,
                "IsDefaultVersion": set_as_default,
                "CreateDate": now,
            }
        }

    def list_policies(self, scope: str = "All", only_attached: bool = False) -> dict[str, Any]:
        with self.db.session() as session:
            query = select(ManagedPolicy).order_by(ManagedPolicy.builtin, ManagedPolicy.name)
            if scope == "AWS":
                query = query.where(ManagedPolicy.builtin.is_(True))
            elif scope == "Local":
                query = query.where(ManagedPolicy.builtin.is_(False))
            shapes = [self._policy_shape(session, p) for p in session.scalars(query).all()]
        if only_attached:
            shapes = [s for s in shapes if s["AttachmentCount"]]
        return {"Policies": shapes, "IsTruncated": False}

    def delete_policy(self, arn: str) -> None:
        with self.db.session() as session:
            policy = self._policy(session, arn)
            if policy.builtin:
                raise IamValidationError(f"{arn} is a built-in (AWS managed) policy.")
            if session.scalar(select(PolicyAttachment).where(PolicyAttachment.policy_arn == arn)):
                raise DeleteConflictError("Cannot delete a policy attached to entities.")
            if session.scalar(select(Boundary).where(Boundary.policy_arn == arn)):
                raise DeleteConflictError("Cannot delete a policy used as a permissions boundary.")
            session.delete(policy)
        self._changed()

    def list_entities_for_policy(self, arn: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._policy(session, arn)
            rows = session.scalars(
                select(PolicyAttachment).where(PolicyAttachment.policy_arn == arn)
            ).all()
            out: dict[str, list[dict[str, str]]] = {
                "PolicyUsers": [],
                "PolicyGroups": [],
                "PolicyRoles": [],
            }
            for row in rows:
                key = {"user": "User", "group": "Group", "role": "Role"}[row.principal_kind]
                out[f"Policy{key}s"].append({f"{key}Name": row.principal_name})
            return {**out, "IsTruncated": False}

    # --- attaching, inline policies, boundaries --------------------------------------

    def attach(self, kind: PrincipalKind, name: str, policy_arn: str) -> None:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            self._policy(session, policy_arn)
            if session.get(PolicyAttachment, (kind, name, policy_arn)) is None:
                count = session.scalar(
                    select(func.count())
                    .select_from(PolicyAttachment)
                    .where(
                        PolicyAttachment.principal_kind == kind,
                        PolicyAttachment.principal_name == name,
                    )
                )
                if (count or 0) >= 20:
                    raise LimitExceededError(
                        f"Cannot exceed quota for PoliciesPerPrincipal: 20 ({kind} {name})."
                    )
                session.add(
                    PolicyAttachment(
                        principal_kind=kind, principal_name=name, policy_arn=policy_arn
                    )
                )
        self._changed()

    def detach(self, kind: PrincipalKind, name: str, policy_arn: str) -> None:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            row = session.get(PolicyAttachment, (kind, name, policy_arn))
            if row is None:
                raise NoSuchEntityError(f"Policy {policy_arn} was not found.")
            session.delete(row)
        self._changed()

    def list_attached(self, kind: PrincipalKind, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            rows = session.execute(
                select(ManagedPolicy.name, ManagedPolicy.arn)
                .join(PolicyAttachment, PolicyAttachment.policy_arn == ManagedPolicy.arn)
                .where(
                    PolicyAttachment.principal_kind == kind,
                    PolicyAttachment.principal_name == name,
                )
                .order_by(ManagedPolicy.name)
            ).all()
            return {
                "AttachedPolicies": [{"PolicyName": n, "PolicyArn": a} for n, a in rows],
                "IsTruncated": False,
            }

    def put_inline(
        self, kind: PrincipalKind, name: str, policy_name: str, document: str | dict[str, Any]
    ) -> None:
        _check_name("policyName", policy_name, 128)
        text = _doc_text(document)
        parse_policy(text, kind="identity", name=policy_name)
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            row = session.get(InlinePolicy, (kind, name, policy_name))
            if row is None:
                session.add(
                    InlinePolicy(
                        principal_kind=kind,
                        principal_name=name,
                        policy_name=policy_name,
                        document=text,
                    )
                )
            else:
                row.document = text
        self._changed()

    def get_inline(self, kind: PrincipalKind, name: str, policy_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            row = session.get(InlinePolicy, (kind, name, policy_name))
            if row is None:
                raise NoSuchEntityError(
                    f"The {kind} policy with name {policy_name} cannot be found."
                )
            return {
                f"{kind.capitalize()}Name": name,
                "PolicyName": policy_name,
                "PolicyDocument": row.document,
            }

    def delete_inline(self, kind: PrincipalKind, name: str, policy_name: str) -> None:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            row = session.get(InlinePolicy, (kind, name, policy_name))
            if row is None:
                raise NoSuchEntityError(
                    f"The {kind} policy with name {policy_name} cannot be found."
                )
            session.delete(row)
        self._changed()

    def list_inline(self, kind: PrincipalKind, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            names = session.scalars(
                select(InlinePolicy.policy_name)
                .where(InlinePolicy.principal_kind == kind, InlinePolicy.principal_name == name)
                .order_by(InlinePolicy.policy_name)
            ).all()
            return {"PolicyNames": list(names), "IsTruncated": False}

    def put_boundary(self, kind: Literal["user", "role"], name: str, policy_arn: str) -> None:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            self._policy(session, policy_arn)
            row = session.get(Boundary, (kind, name))
            if row is None:
                session.add(
                    Boundary(principal_kind=kind, principal_name=name, policy_arn=policy_arn)
                )
            else:
                row.policy_arn = policy_arn
        self._changed()

    def delete_boundary(self, kind: Literal["user", "role"], name: str) -> None:
        with self.db.session() as session:
            self._principal_row(session, kind, name)
            row = session.get(Boundary, (kind, name))
            if row is not None:
                session.delete(row)
        self._changed()

    # --- resource policies (functions' add-permission) -------------------------------

    def put_resource_policy(self, resource_arn: str, document: str | dict[str, Any]) -> None:
        text = _doc_text(document)
        parse_policy(text, kind="resource", name=f"{resource_arn} resource policy")
        with self.db.session() as session:
            row = session.get(ResourcePolicy, resource_arn)
            if row is None:
                session.add(ResourcePolicy(resource_arn=resource_arn, document=text))
            else:
                row.document = text
        self._changed()

    def delete_resource_policy(self, resource_arn: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(ResourcePolicy).where(ResourcePolicy.resource_arn == resource_arn)
            )
        self._changed()

    def resource_policy(self, resource_arn: str) -> Policy | None:
        """The resource policy on ``resource_arn`` (a function; a qualified ARN falls back
        to its function's policy)."""
        generation = self.generation
        hit = self._resource_policies.get(resource_arn)
        if hit is not None and hit[0] == generation:
            return hit[1]
        candidates = [resource_arn]
        if resource_arn.startswith("arn:aws:lambda:") and resource_arn.count(":") == 7:
            candidates.append(resource_arn.rsplit(":", 1)[0])
        found: Policy | None = None
        with self.db.session() as session:
            for arn in candidates:
                row = session.get(ResourcePolicy, arn)
                if row is not None:
                    found = parse_policy(row.document, kind="resource", name="resource policy")
                    break
        if len(self._resource_policies) > 10_000:
            self._resource_policies.clear()
        self._resource_policies[resource_arn] = (generation, found)
        return found

    # --- resolving a caller ----------------------------------------------------------

    def _policies_of(
        self, session: DbSession, principals: Iterable[tuple[str, str]]
    ) -> list[Policy]:
        policies: list[Policy] = []
        for kind, name in principals:
            attached = session.execute(
                select(ManagedPolicy.name, ManagedPolicy.document)
                .join(PolicyAttachment, PolicyAttachment.policy_arn == ManagedPolicy.arn)
                .where(
                    PolicyAttachment.principal_kind == kind,
                    PolicyAttachment.principal_name == name,
                )
            ).all()
            policies += [parse_policy(doc, name=policy_name) for policy_name, doc in attached]
            inline = session.execute(
                select(InlinePolicy.policy_name, InlinePolicy.document).where(
                    InlinePolicy.principal_kind == kind, InlinePolicy.principal_name == name
                )
            ).all()
            policies += [parse_policy(doc, name=policy_name) for policy_name, doc in inline]
        return policies

    def _boundary_of(self, session: DbSession, kind: str, name: str) -> Policy | None:
        row = session.get(Boundary, (kind, name))
        if row is None:
            return None
        policy = session.get(ManagedPolicy, row.policy_arn)
        if policy is None:
            return None
        return parse_policy(policy.document, name=f"{policy.name} (permissions boundary)")

    def identity_policies(
        self, session: DbSession, kind: Literal["user", "role"], name: str
    ) -> tuple[list[Policy], Policy | None]:
        principals: list[tuple[str, str]] = [(kind, name)]
        if kind == "user":
            groups = session.scalars(
                select(GroupMember.group_name).where(GroupMember.user_name == name)
            ).all()
            principals += [("group", g) for g in groups]
        return self._policies_of(session, principals), self._boundary_of(session, kind, name)

    def resolve(self, access_key_id: str) -> Principal | None:
        """The principal behind an access key (long-term or temporary), or None."""
        with self.db.session() as session:
            if access_key_id.startswith("ASIA"):
                row = session.get(Session, access_key_id)
                if row is None:
                    return None
                kind: Literal["user", "role"] = "role" if row.kind == "role" else "user"
                policies, boundary = self.identity_policies(session, kind, row.principal_name)
                if kind == "role":
                    role = session.get(Role, row.principal_name)
                    ident = role.role_id if role else ""
                else:
                    user = session.get(User, row.principal_name)
                    ident = user.user_id if user else ""
                return Principal(
                    arn=row.principal_arn,
                    kind=kind,
                    name=row.principal_name,
                    id=ident,
                    access_key_id=access_key_id,
                    policies=tuple(policies),
                    boundary=boundary,
                    session_policy=(
                        parse_policy(row.session_policy, name="session policy")
                        if row.session_policy
                        else None
                    ),
                    session_name=row.session_name,
                    mfa=row.mfa,
                    token_issued_at=_aware(row.created_at),
                )
            key = session.get(AccessKey, access_key_id)
            if key is None:
                return None
            user = self._user(session, key.user_name)
            policies, boundary = self.identity_policies(session, "user", user.name)
            return Principal(
                arn=user.arn,
                kind="user",
                name=user.name,
                id=user.user_id,
                access_key_id=access_key_id,
                policies=tuple(policies),
                boundary=boundary,
            )

    # --- STS -------------------------------------------------------------------------

    def _new_session(
        self,
        session: DbSession,
        *,
        kind: str,
        principal_name: str,
        principal_arn: str,
        source_arn: str,
        seconds: int,
        session_name: str = "",
        mfa: bool = False,
        session_policy: str | None = None,
    ) -> dict[str, Any]:
        key_id, secret = new_access_key_id("ASIA"), new_secret_access_key()
        token = "Kn" + secrets.token_urlsafe(96)
        now = self.clock()
        expires = (now + timedelta(seconds=seconds)).replace(microsecond=0)
        session.add(
            Session(
                access_key_id=key_id,
                secret_encrypted=self.box.encrypt(secret),
                token_encrypted=self.box.encrypt(token),
                kind=kind,
                principal_name=principal_name,
                principal_arn=principal_arn,
                session_name=session_name,
                source_arn=source_arn,
                mfa=mfa,
                session_policy=session_policy,
                created_at=now,
                expires_at=expires,
            )
        )
        return {
            "AccessKeyId": key_id,
            "SecretAccessKey": secret,
            "SessionToken": token,
            "Expiration": expires,
        }

    def _check_duration(self, seconds: int, maximum: int) -> int:
        if not self.min_session_seconds <= seconds <= maximum:
            raise IamValidationError(
                f"The requested DurationSeconds ({seconds}) must be between "
                f"{self.min_session_seconds} and {maximum} seconds.",
            )
        return seconds

    def assume_role(
        self,
        caller: Principal | str,
        role_arn: str,
        session_name: str,
        *,
        duration_seconds: int = 3600,
        policy: str | None = None,
        serial_number: str | None = None,
        token_code: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """AssumeRole for a caller (a Principal) or a service principal (its name)."""
        _check_name("roleSessionName", session_name, 64, minimum=2)
        role_name = self.role_name_from_arn(role_arn)
        caller_arn = caller if isinstance(caller, str) else caller.arn
        denied = StsAccessDeniedError(
            f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}",
            hint="The role's trust policy must name this principal (or its account, with an "
            "identity policy allowing sts:AssumeRole); see `kennel iam simulate`.",
        )
        if policy is not None:
            parse_policy(policy, kind="identity", name="session policy")
        with self.db.session() as session:
            role = session.get(Role, role_name)
            if role is None or role.arn != role_arn:
                raise denied
            self._check_duration(duration_seconds, role.max_session_duration)
            mfa = False
            if isinstance(caller, Principal):
                mfa = bool(caller.mfa)
                if serial_number is not None or token_code is not None:
                    self._check_mfa_code(session, caller, serial_number, token_code)
                    mfa = True
            if isinstance(caller, str):
                # A service principal (a function starting): only the trust policy decides.
                # Callers with credentials were authorized by the gateway already
                # (Authorizer.decide with the role's trust policy).
                request = AuthzRequest(caller, "sts:AssumeRole", role_arn, dict(context or {}))
                trust = parse_policy(role.trust_policy, kind="trust", name=f"{role_name} trust")
                if not evaluate(request, [], resource_policy=trust).allowed:
                    raise denied
            session_arn = f"arn:aws:sts::{self.account_id}:assumed-role/{role_name}/{session_name}"
            credentials = self._new_session(
                session,
                kind="role",
                principal_name=role_name,
                principal_arn=session_arn,
                source_arn=caller_arn,
                seconds=duration_seconds,
                session_name=session_name,
                mfa=mfa,
                session_policy=policy,
            )
            role.last_used_at = self.clock()
            return {
                "Credentials": credentials,
                "AssumedRoleUser": {
                    "AssumedRoleId": f"{role.role_id}:{session_name}",
                    "Arn": session_arn,
                },
                "PackedPolicySize": 0 if policy is None else min(100, len(policy) // 20),
            }

    def get_session_token(
        self,
        caller: Principal,
        *,
        duration_seconds: int = DEFAULT_USER_SESSION_SECONDS,
        serial_number: str | None = None,
        token_code: str | None = None,
    ) -> dict[str, Any]:
        if caller.kind != "user" or caller.access_key_id.startswith("ASIA"):
            raise StsAccessDeniedError(
                "Cannot call GetSessionToken with session credentials",
                hint="Call it with a user's long-term access key.",
            )
        self._check_duration(duration_seconds, MAX_USER_SESSION_SECONDS)
        with self.db.session() as session:
            mfa = False
            if serial_number is not None or token_code is not None:
                self._check_mfa_code(session, caller, serial_number, token_code)
                mfa = True
            credentials = self._new_session(
                session,
                kind="user",
                principal_name=caller.name,
                principal_arn=caller.arn,
                source_arn=caller.arn,
                seconds=duration_seconds,
                mfa=mfa,
            )
        return {"Credentials": credentials}

    def session_credentials(self, access_key_id: str) -> tuple[str, str, datetime, str] | None:
        """(secret, token, expiry, principal ARN) of a temporary key, for SigV4."""
        with self.db.session() as session:
            row = session.get(Session, access_key_id)
            if row is None:
                return None
            return (
                self.box.decrypt(row.secret_encrypted),
                self.box.decrypt(row.token_encrypted),
                _aware(row.expires_at),
                row.principal_arn,
            )

    def end_session(self, access_key_id: str) -> None:
        """Forget a temporary key now (the console's sign-out): it stops working at once on
        this server and within the credential cache's few seconds on others."""
        with self.db.session() as session:
            session.execute(delete(Session).where(Session.access_key_id == access_key_id))
        self._changed()

    def purge_expired_sessions(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Delete temporary keys that expired more than ``older_than`` ago."""
        with self.db.session() as session:
            result = session.execute(
                delete(Session).where(Session.expires_at < self.clock() - older_than)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # --- MFA -------------------------------------------------------------------------

    def create_virtual_mfa_device(self, name: str, path: str | None = None) -> dict[str, Any]:
        _check_name("virtualMFADeviceName", name, 226)
        path = _check_path(path)
        serial = self.arn("mfa", name, path)
        seed = pyotp.random_base32()
        with self.db.session() as session:
            if session.get(MfaDevice, serial) is not None:
                raise EntityAlreadyExistsError(
                    "MFADevice entity at the same path and name already exists."
                )
            session.add(
                MfaDevice(serial_number=serial, name=name, seed_encrypted=self.box.encrypt(seed))
            )
        # Base32StringSeed is a blob on the wire (boto3 hands back the seed's bytes).
        # QRCodePNG is left out: kennel does not render QR codes; the seed (or the otpauth
        # URI `kennel iam mfa create` prints) goes into any authenticator app.
        return {
            "VirtualMFADevice": {
                "SerialNumber": serial,
                "Base32StringSeed": seed.encode(),
            },
            "OtpauthUri": pyotp.TOTP(seed).provisioning_uri(
                name=name, issuer_name=f"kennel {self.account_id}"
            ),
        }

    def _device(self, session: DbSession, serial: str) -> MfaDevice:
        device = session.get(MfaDevice, serial)
        if device is None:
            raise NoSuchEntityError(f"VirtualMFADevice with serial number {serial} doesn't exist.")
        return device

    def _step_of(self, seed: str, code: str, *, not_before: int = 0) -> int | None:
        """The time step a TOTP code belongs to (now ±1 step), or None."""
        now_step = int(self.clock().timestamp()) // TOTP_STEP
        totp = pyotp.TOTP(seed)
        for step in (now_step, now_step - 1, now_step + 1):
            if step > not_before and secrets.compare_digest(totp.at(step * TOTP_STEP), code):
                return step
        return None

    def enable_mfa_device(self, user_name: str, serial: str, code1: str, code2: str) -> None:
        with self.db.session() as session:
            self._user(session, user_name)
            device = self._device(session, serial)
            if device.user_name is not None:
                raise EntityAlreadyExistsError(f"MFA device {serial} is already in use.")
            seed = self.box.decrypt(device.seed_encrypted)
            now_step = int(self.clock().timestamp()) // TOTP_STEP
            totp = pyotp.TOTP(seed)
            pairs = [(s - 1, s) for s in (now_step, now_step + 1)]
            second = next(
                (
                    b
                    for a, b in pairs
                    if secrets.compare_digest(totp.at(a * TOTP_STEP), code1)
                    and secrets.compare_digest(totp.at(b * TOTP_STEP), code2)
                ),
                None,
            )
            if second is None:
                raise InvalidAuthenticationCodeError(
                    "Authentication code for device is not valid.",
                    hint="Give two consecutive codes from the device (the current one and the "
                    "one before it).",
                )
            device.user_name = user_name
            device.enabled_at = self.clock()
            # Both codes are spent (the second may be the next step's, from a clock ahead).
            device.last_code_step = second
        self._changed()

    def deactivate_mfa_device(self, user_name: str, serial: str) -> None:
        with self.db.session() as session:
            device = self._device(session, serial)
            if device.user_name != user_name:
                raise NoSuchEntityError(f"MFA Device {serial} is not enabled for {user_name}.")
            device.user_name = None
            device.enabled_at = None
        self._changed()

    def delete_virtual_mfa_device(self, serial: str) -> None:
        with self.db.session() as session:
            device = self._device(session, serial)
            if device.user_name is not None:
                raise DeleteConflictError("MFA device is still in use (deactivate it first).")
            session.delete(device)

    def list_mfa_devices(self, user_name: str) -> dict[str, Any]:
        with self.db.session() as session:
            self._user(session, user_name)
            devices = session.scalars(
                select(MfaDevice).where(MfaDevice.user_name == user_name)
            ).all()
            return {
                "MFADevices": [
                    {
                        "UserName": user_name,
                        "SerialNumber": d.serial_number,
                        "EnableDate": _aware(d.enabled_at or d.created_at),
                    }
                    for d in devices
                ],
                "IsTruncated": False,
            }

    def list_virtual_mfa_devices(self) -> dict[str, Any]:
        with self.db.session() as session:
            devices = session.scalars(select(MfaDevice).order_by(MfaDevice.serial_number)).all()
            out = []
            for d in devices:
                shape: dict[str, Any] = {"SerialNumber": d.serial_number}
                if d.user_name is not None:
                    user = session.get(User, d.user_name)
                    shape["User"] = self._user_shape(user) if user else {}
                    shape["EnableDate"] = _aware(d.enabled_at or d.created_at)
                out.append(shape)
            return {"VirtualMFADevices": out, "IsTruncated": False}

    def _check_mfa_code(
        self,
        session: DbSession,
        caller: Principal,
        serial_number: str | None,
        token_code: str | None,
    ) -> None:
        if not serial_number or not token_code:
            raise IamValidationError(
                "SerialNumber and TokenCode must be given together.",
            )
        device = session.get(MfaDevice, serial_number)
        user_name = caller.name if caller.kind == "user" else None
        if device is None or device.user_name is None or device.user_name != user_name:
            raise StsAccessDeniedError(
                f"MultiFactorAuthentication failed with invalid MFA one time pass code. "
                f"(no MFA device {serial_number} enabled for {caller.arn})"
            )
        step = self._step_of(
            self.box.decrypt(device.seed_encrypted), token_code, not_before=device.last_code_step
        )
        if step is None:
            raise StsAccessDeniedError(
                "MultiFactorAuthentication failed with invalid MFA one time pass code.",
                hint="Use the device's current code; each code works once.",
            )
        device.last_code_step = step


def build_snapshot(iam: IamService, last_used: dict[str, datetime]) -> Any:
    """Everything the audit reads, from the tables (``last_used``: principal ARN -> time)."""
    from kennel.iam._audit import KeyInfo, PolicyInfo, PrincipalInfo, Snapshot

    def used(arn: str, *more: datetime | None) -> datetime | None:
        times = [t for t in (last_used.get(arn), *more) if t is not None]
        return max((_aware(t) for t in times), default=None)

    with iam.db.session() as session:
        policies = {
            p.arn: PolicyInfo(p.arn, p.name, json.loads(p.document), p.builtin)
            for p in session.scalars(select(ManagedPolicy)).all()
        }
        attachments: dict[tuple[str, str], list[str]] = {}
        for a in session.scalars(select(PolicyAttachment)).all():
            attachments.setdefault((a.principal_kind, a.principal_name), []).append(a.policy_arn)
        inline: dict[tuple[str, str], dict[str, Any]] = {}
        for i in session.scalars(select(InlinePolicy)).all():
            inline.setdefault((i.principal_kind, i.principal_name), {})[i.policy_name] = json.loads(
                i.document
            )
        boundaries = {
            (b.principal_kind, b.principal_name): b.policy_arn
            for b in session.scalars(select(Boundary)).all()
        }
        members: dict[str, list[str]] = {}
        for m in session.scalars(select(GroupMember)).all():
            members.setdefault(m.user_name, []).append(m.group_name)
        mfa_users = {d.user_name for d in session.scalars(select(MfaDevice)).all() if d.user_name}
        keys: dict[str, list[KeyInfo]] = {}
        for k in session.scalars(select(AccessKey)).all():
            keys.setdefault(k.user_name, []).append(
                KeyInfo(
                    k.access_key_id,
                    k.status,
                    _aware(k.created_at),
                    _aware(k.last_used_at) if k.last_used_at else None,
                )
            )
        principals: list[PrincipalInfo] = []
        for user in session.scalars(select(User)).all():
            user_keys = tuple(keys.get(user.name, ()))
            principals.append(
                PrincipalInfo(
                    kind="user",
                    name=user.name,
                    arn=user.arn,
                    created_at=_aware(user.created_at),
                    last_used_at=used(user.arn, *(k.last_used_at for k in user_keys)),
                    attached=tuple(attachments.get(("user", user.name), ())),
                    inline=inline.get(("user", user.name), {}),
                    boundary=boundaries.get(("user", user.name)),
                    mfa_enabled=user.name in mfa_users,
                    keys=user_keys,
                    groups=tuple(members.get(user.name, ())),
                )
            )
        for role in session.scalars(select(Role)).all():
            sessions = [
                t
                for arn, t in last_used.items()
                if arn.startswith(f"arn:aws:sts::{iam.account_id}:assumed-role/{role.name}/")
            ]
            principals.append(
                PrincipalInfo(
                    kind="role",
                    name=role.name,
                    arn=role.arn,
                    created_at=_aware(role.created_at),
                    last_used_at=used(role.arn, role.last_used_at, *sessions),
                    attached=tuple(attachments.get(("role", role.name), ())),
                    inline=inline.get(("role", role.name), {}),
                    boundary=boundaries.get(("role", role.name)),
                    trust_policy=json.loads(role.trust_policy),
                )
            )
        for group in session.scalars(select(Group)).all():
            principals.append(
                PrincipalInfo(
                    kind="group",
                    name=group.name,
                    arn=group.arn,
                    created_at=_aware(group.created_at),
                    last_used_at=None,
                    attached=tuple(attachments.get(("group", group.name), ())),
                    inline=inline.get(("group", group.name), {}),
                )
            )
    return Snapshot(iam.account_id, tuple(principals), policies)
