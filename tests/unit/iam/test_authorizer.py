"""The Authorizer and its AccessLog over a real IamService and SQLite database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from kennel._errors import AccessDeniedError, NotFoundError
from kennel.iam._authorizer import AccessLog, Authorizer, Outcome, RequestFacts
from kennel.iam._keys import SecretBox
from kennel.iam._service import IamService, Principal
from kennel.store import Database, InlinePolicy

ACCOUNT = "123456789012"
START = datetime(2025, 6, 1, 12, 0, 5, tzinfo=UTC)
MODEL = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m1"
OTHER_MODEL = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m2"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def trust(principal: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


@pytest.fixture
def iam(db: Database) -> IamService:
    return IamService(
        db,
        SecretBox(Fernet.generate_key()),
        account_id=ACCOUNT,
        region="us-east-1",
        clock=lambda: START,
    )


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def log(db: Database, ticks: Ticks) -> AccessLog:
    return AccessLog(db, repeat_window=5.0, clock=ticks)


@pytest.fixture
def authz(iam: IamService, log: AccessLog, ticks: Ticks) -> Authorizer:
    return Authorizer(iam, log, ttl=60.0, clock=ticks)


_requests = iter(range(1_000_000))


def facts() -> RequestFacts:
    return RequestFacts(request_id=f"req-{next(_requests)}", region="us-east-1")


def user_key(iam: IamService, name: str = "alice", **inline: dict[str, Any]) -> str:
    iam.create_user(name)
    for policy_name, document in inline.items():
        iam.put_inline("user", name, policy_name, document)
    key_id: str = iam.create_access_key(name)["AccessKey"]["AccessKeyId"]
    return key_id


def principal(iam: IamService, key_id: str) -> Principal:
    found = iam.resolve(key_id)
    assert found is not None
    return found


def role_session(iam: IamService, role: str, session_name: str, **kw: Any) -> Principal:
    role_arn = iam.get_role(role)["Role"]["Arn"]
    result = iam.assume_role("lambda.amazonaws.com", role_arn, session_name, **kw)
    return principal(iam, result["Credentials"]["AccessKeyId"])


def lambda_role(iam: IamService, name: str, **inline: dict[str, Any]) -> str:
    arn: str = iam.create_role(name, trust({"Service": "lambda.amazonaws.com"}))["Role"]["Arn"]
    for policy_name, document in inline.items():
        iam.put_inline("role", name, policy_name, document)
    return arn


# --- allow and deny -----------------------------------------------------------------------


def test_allowed_and_denied_with_aws_message(iam: IamService, authz: Authorizer) -> None:
    key_id = user_key(iam, models=doc({"Sid": "Read", **allow("sagemaker:DescribeModel")}))
    outcome = authz.authorize(key_id, "sagemaker:DescribeModel", MODEL, facts())
    assert outcome.allowed and outcome.message == ""
    assert outcome.principal_arn == ALICE and outcome.access_key_id == key_id
    assert outcome.decision.statement is not None
    assert (outcome.decision.statement.policy, outcome.decision.statement.sid) == (
        "models",
        "Read",
    )
    assert outcome.context["aws:username"] == "alice"
    assert outcome.context["aws:RequestedRegion"] == "us-east-1"

    request = facts()
    with pytest.raises(AccessDeniedError) as info:
        authz.authorize(key_id, "sagemaker:DeleteModel", MODEL, request)
    assert info.value.status == 403 and info.value.aws_code == "AccessDeniedException"
    assert info.value.message == (
        f"User: {ALICE} is not authorized to perform: sagemaker:DeleteModel on resource: "
        f"{MODEL} because no identity-based policy allows the sagemaker:DeleteModel action"
    )
    assert info.value.hint is not None and request.request_id in info.value.hint


def test_explicit_deny_wins(iam: IamService, authz: Authorizer) -> None:
    key_id = user_key(
        iam,
        everything=doc(allow("sagemaker:*")),
        guard=doc(deny("sagemaker:DeleteModel", MODEL)),
    )
    authz.authorize(key_id, "sagemaker:DeleteModel", OTHER_MODEL, facts())
    with pytest.raises(AccessDeniedError) as info:
        authz.authorize(key_id, "sagemaker:DeleteModel", MODEL, facts())
    assert info.value.message == (
        f"User: {ALICE} is not authorized to perform: sagemaker:DeleteModel on resource: "
        f"{MODEL} with an explicit deny in an identity-based policy"
    )


def test_unknown_key_is_an_invalid_token(authz: Authorizer) -> None:
    with pytest.raises(AccessDeniedError) as info:
        authz.authorize("AKIANOSUCHKEY0000000", "sagemaker:ListModels", "*", facts())
    assert info.value.aws_code == "UnrecognizedClientException"
    assert "security token included in the request is invalid" in info.value.message


def test_lambda_resource_policy_grants_without_an_identity_policy(
    iam: IamService, authz: Authorizer
) -> None:
    lambda_role(iam, "caller")
    caller = role_session(iam, "caller", "s1")
    assert not authz.check(caller, "lambda:InvokeFunction", FUNCTION, facts()).allowed
    iam.put_resource_policy(
        FUNCTION,
        doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/caller"},
                "Action": "lambda:InvokeFunction",
                "Resource": FUNCTION,
            }
        ),
    )
    assert authz.check(caller, "lambda:InvokeFunction", FUNCTION, facts()).allowed
    assert not authz.check(caller, "lambda:DeleteFunction", FUNCTION, facts()).allowed


# --- the principal cache ------------------------------------------------------------------


def test_cache_is_dropped_at_once_when_iam_changes(
    iam: IamService, authz: Authorizer, db: Database, ticks: Ticks
) -> None:
    key_id = user_key(iam)
    arn = iam.create_policy("read", doc(allow("sagemaker:DescribeModel")))["Policy"]["Arn"]
    iam.attach("user", "alice", arn)
    authz.authorize(key_id, "sagemaker:DescribeModel", MODEL, facts())
    assert authz.cached(key_id) is not None

    # A change another server made (straight in the database) is not seen within the TTL...
    with db.session() as session:
        session.add(
            InlinePolicy(
                principal_kind="user",
                principal_name="alice",
                policy_name="sneaky",
                document=json.dumps(doc(allow("sagemaker:DeleteModel"))),
            )
        )
    with pytest.raises(AccessDeniedError):
        authz.authorize(key_id, "sagemaker:DeleteModel", MODEL, facts())
    # ...but is after it.
    ticks.now += 61
    assert authz.cached(key_id) is None
    authz.authorize(key_id, "sagemaker:DeleteModel", MODEL, facts())

    # A change made through this IamService is seen at once, without waiting for the TTL.
    iam.detach("user", "alice", arn)
    assert authz.cached(key_id) is None
    with pytest.raises(AccessDeniedError):
        authz.authorize(key_id, "sagemaker:DescribeModel", MODEL, facts())
    iam.attach("user", "alice", arn)
    authz.authorize(key_id, "sagemaker:DescribeModel", MODEL, facts())


def test_inline_policy_change_drops_the_cache(iam: IamService, authz: Authorizer) -> None:
    key_id = user_key(iam, read=doc(allow("sagemaker:DescribeModel")))
    first = authz.principal(key_id)
    assert authz.principal(key_id) is first
    iam.delete_inline("user", "alice", "read")
    assert authz.principal(key_id) is not first
    assert authz.principal(key_id).policies == ()


# --- the access log -----------------------------------------------------------------------


def test_records_flush_to_the_database_and_are_found_by_request_id(
    iam: IamService, authz: Authorizer, db: Database, ticks: Ticks
) -> None:
    key_id = user_key(iam, read=doc({"Sid": "Read", **allow("sagemaker:DescribeModel")}))
    request = facts()
    authz.authorize(key_id, "sagemaker:DescribeModel", MODEL, request)
    with pytest.raises(AccessDeniedError):
        authz.authorize(key_id, "sagemaker:DeleteModel", MODEL, request)

    # Another AccessLog over the same database: the rows are in the database, not in memory.
    authz.access_log.flush()
    rows = AccessLog(db, clock=ticks).get(request.request_id)
    assert [(r["action"], r["allowed"], r["reason"]) for r in rows] == [
        ("sagemaker:DescribeModel", True, "allowed"),
        ("sagemaker:DeleteModel", False, "implicit-deny"),
    ]
    allowed, denied = rows
    assert allowed["principal"] == ALICE and allowed["access_key_id"] == key_id
    assert allowed["resource"] == MODEL
    assert allowed["statement"] == {
        "policy": "read",
        "sid": "Read",
        "index": 0,
        "source": "identity",
    }
    assert allowed["context"]["aws:username"] == "alice"
    assert datetime.fromisoformat(allowed["time"]).tzinfo is not None
    assert denied["message"].endswith(
        "because no identity-based policy allows the sagemaker:DeleteModel action"
    )
    assert authz.access_log.get("no-such-request") == []


def test_background_thread_writes_the_log(iam: IamService, db: Database, ticks: Ticks) -> None:
    log = AccessLog(db, flush_every=0.01, clock=ticks)
    authz = Authorizer(iam, log, clock=ticks)
    key_id = user_key(iam)
    log.start()
    try:
        request = facts()
        authz.check(principal(iam, key_id), "sagemaker:ListModels", "*", request)
        reader = AccessLog(db, clock=ticks)
        for _ in range(200):
            if reader.get(request.request_id):
                break
            time.sleep(0.01)
        assert [r["action"] for r in reader.get(request.request_id)] == ["sagemaker:ListModels"]
    finally:
        log.stop()


def test_denials_are_always_written(iam: IamService, authz: Authorizer) -> None:
    caller = principal(iam, user_key(iam))
    for _ in range(3):
        assert not authz.check(caller, "sagemaker:DeleteModel", MODEL, facts()).allowed
    rows = authz.access_log.entries(principal_arn=ALICE)
    assert [(r["action"], r["allowed"]) for r in rows] == [("sagemaker:DeleteModel", False)] * 3


def test_repeated_allowed_call_is_written_once_per_window(
    iam: IamService, authz: Authorizer, ticks: Ticks
) -> None:
    caller = principal(iam, user_key(iam, read=doc(allow("sagemaker:DescribeModel"))))

    def call(resource: str = MODEL) -> Outcome:
        outcome = authz.check(caller, "sagemaker:DescribeModel", resource, facts())
        assert outcome.allowed
        return outcome

    first = call()
    ticks.now += 2
    call()
    ticks.now += 2.9  # 4.9 s after the first
    call()
    other = call(OTHER_MODEL)  # another resource is another key
    ticks.now += 0.2  # 5.1 s after the first written row
    again = call()
    rows = authz.access_log.entries(principal_arn=ALICE)
    assert [(r["request_id"], r["resource"]) for r in rows] == [
        (first.request_id, MODEL),
        (other.request_id, OTHER_MODEL),
        (again.request_id, MODEL),
    ]


def test_repeat_window_zero_writes_every_call(iam: IamService, db: Database, ticks: Ticks) -> None:
    log = AccessLog(db, repeat_window=0, clock=ticks)
    authz = Authorizer(iam, log, clock=ticks)
    caller = principal(iam, user_key(iam, read=doc(allow("sagemaker:DescribeModel"))))
    for _ in range(3):
        authz.check(caller, "sagemaker:DescribeModel", MODEL, facts())
    assert len(log.entries(principal_arn=ALICE)) == 3


def test_entries_of_a_role_include_its_sessions(iam: IamService, authz: Authorizer) -> None:
    everything = doc(allow("sagemaker:*"))
    role_arn = lambda_role(iam, "ml_ops", all=everything)
    lambda_role(iam, "mlXops", all=everything)  # "_" must not act as a LIKE wildcard
    lambda_role(iam, "ml_ops2", all=everything)
    mine = [role_session(iam, "ml_ops", "s1"), role_session(iam, "ml_ops", "s2")]
    others = [
        role_session(iam, "mlXops", "s1"),
        role_session(iam, "ml_ops2", "s1"),
        principal(iam, user_key(iam, all=everything)),
    ]
    for caller in [*mine, *others]:
        authz.check(caller, "sagemaker:ListModels", "*", facts())
    rows = authz.access_log.entries(principal_arn=role_arn)
    assert sorted(r["principal"] for r in rows) == [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/ml_ops/s1",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/ml_ops/s2",
    ]
    session_rows = authz.access_log.entries(principal_arn=mine[0].arn)
    assert [r["principal"] for r in session_rows] == [mine[0].arn]
    assert len(authz.access_log.entries()) == 5
    assert authz.access_log.entries(allowed=False) == []
    assert len(authz.access_log.entries(limit=2)) == 2


def test_last_used(iam: IamService, authz: Authorizer) -> None:
    reader = principal(iam, user_key(iam, "reader", read=doc(allow("sagemaker:List*"))))
    nobody = principal(iam, user_key(iam, "nobody"))
    before = datetime.now(UTC)
    authz.check(reader, "sagemaker:ListModels", "*", facts())
    authz.check(reader, "sagemaker:DeleteModel", MODEL, facts())
    authz.check(nobody, "sagemaker:ListModels", "*", facts())
    used = authz.access_log.last_used()
    assert set(used) == {reader.arn}
    assert used[reader.arn].tzinfo is not None
    assert before - timedelta(seconds=1) <= used[reader.arn] <= datetime.now(UTC)


def test_simulate_is_not_logged(iam: IamService, authz: Authorizer) -> None:
    user_key(iam)
    authz.simulate(ALICE, ["sagemaker:ListModels"], [])
    assert authz.access_log.entries() == []


# --- calls that need no permission --------------------------------------------------------


@pytest.mark.parametrize("action", ["sts:GetCallerIdentity", "sts:GetSessionToken"])
def test_sts_calls_allowed_without_policy(iam: IamService, authz: Authorizer, action: str) -> None:
    key_id = user_key(iam)
    outcome = authz.authorize(key_id, action, "*", facts())
    assert outcome.allowed
    assert authz.access_log.entries(principal_arn=ALICE)[0]["action"] == action
    assert not authz.check(principal(iam, key_id), "sts:AssumeRole", "*", facts()).allowed


def test_get_caller_identity_allowed_even_when_denied(iam: IamService, authz: Authorizer) -> None:
    key_id = user_key(iam, nothing=doc(deny("*")))
    assert authz.authorize(key_id, "sts:GetCallerIdentity", "*", facts()).allowed


# --- AssumeRole ---------------------------------------------------------------------------


def assume(authz: Authorizer, caller: Principal, role_arn: str) -> Outcome:
    return authz.check(caller, "sts:AssumeRole", role_arn, facts())


def test_trust_naming_the_caller_is_enough(iam: IamService, authz: Authorizer) -> None:
    caller = principal(iam, user_key(iam))
    role_arn = iam.create_role("r", trust({"AWS": ALICE}))["Role"]["Arn"]
    outcome = assume(authz, caller, role_arn)
    assert outcome.allowed
    assert outcome.decision.statement is not None
    assert outcome.decision.statement.source == "resource"


def test_trust_naming_the_account_needs_an_identity_allow(
    iam: IamService, authz: Authorizer
) -> None:
    caller = principal(iam, user_key(iam))
    role_arn = iam.create_role("r", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))["Role"]["Arn"]
    outcome = assume(authz, caller, role_arn)
    assert not outcome.allowed
    assert outcome.message == (
        f"User: {ALICE} is not authorized to perform: sts:AssumeRole on resource: {role_arn} "
        "because no identity-based policy allows the sts:AssumeRole action"
    )
    iam.put_inline("user", "alice", "assume", doc(allow("sts:AssumeRole", role_arn)))
    assert assume(authz, principal(iam, caller.access_key_id), role_arn).allowed
    # The account's id stands for the account too.
    other = iam.create_role("r2", trust({"AWS": ACCOUNT}))["Role"]["Arn"]
    assert not assume(authz, principal(iam, caller.access_key_id), other).allowed


def test_trust_not_allowing_the_caller_is_denied(iam: IamService, authz: Authorizer) -> None:
    caller = principal(iam, user_key(iam, admin=doc(allow("*"))))
    role_arn = lambda_role(iam, "fn")
    for target in (role_arn, f"arn:aws:iam::{ACCOUNT}:role/ghost"):
        outcome = assume(authz, caller, target)
        assert not outcome.allowed
        assert outcome.message == (
            f"User: {ALICE} is not authorized to perform: sts:AssumeRole on resource: {target} "
            "because the role's trust policy does not allow it"
        )


def test_explicit_deny_in_identity_wins_over_trust(iam: IamService, authz: Authorizer) -> None:
    caller = principal(iam, user_key(iam, guard=doc(deny("sts:AssumeRole"))))
    role_arn = iam.create_role("r", trust({"AWS": ALICE}))["Role"]["Arn"]
    outcome = assume(authz, caller, role_arn)
    assert not outcome.allowed and outcome.decision.reason == "explicit-deny"
    assert outcome.message.endswith("with an explicit deny in an identity-based policy")


def test_explicit_deny_in_trust_wins(iam: IamService, authz: Authorizer) -> None:
    caller = principal(iam, user_key(iam, admin=doc(allow("*"))))
    document = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        },
        {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"},
    )
    role_arn = iam.create_role("r", document)["Role"]["Arn"]
    outcome = assume(authz, caller, role_arn)
    assert not outcome.allowed and outcome.decision.reason == "explicit-deny"
    assert outcome.message.endswith("with an explicit deny in a resource-based policy")


def test_role_session_named_by_its_role_arn_may_chain(iam: IamService, authz: Authorizer) -> None:
    first_arn = lambda_role(iam, "first")
    session = role_session(iam, "first", "s1")
    second = iam.create_role("second", trust({"AWS": first_arn}))["Role"]["Arn"]
    assert assume(authz, session, second).allowed


# --- session policies ---------------------------------------------------------------------


def test_session_policy_narrows(iam: IamService, authz: Authorizer) -> None:
    lambda_role(iam, "worker", all=doc(allow("sagemaker:*")))
    narrowed = role_session(
        iam, "worker", "narrow", policy=json.dumps(doc(allow("sagemaker:DescribeModel")))
    )
    plain = role_session(iam, "worker", "plain")
    assert authz.check(plain, "sagemaker:DeleteModel", MODEL, facts()).allowed
    assert authz.check(narrowed, "sagemaker:DescribeModel", MODEL, facts()).allowed
    request = facts()
    outcome = authz.check(narrowed, "sagemaker:DeleteModel", MODEL, request)
    assert not outcome.allowed and outcome.session_policy_denied
    assert outcome.message == (
        f"User: {narrowed.arn} is not authorized to perform: sagemaker:DeleteModel on "
        f"resource: {MODEL} because no session policy allows the sagemaker:DeleteModel action"
    )
    assert outcome.to_dict()["reason"] == "session-policy"
    [row] = authz.access_log.get(request.request_id)
    assert (row["allowed"], row["reason"]) == (False, "session-policy")
    # A session policy grants nothing the role's policies do not.
    wide = role_session(iam, "worker", "wide", policy=json.dumps(doc(allow("lambda:*"))))
    assert not authz.check(wide, "lambda:ListFunctions", "*", facts()).allowed
    with pytest.raises(AccessDeniedError, match="because no session policy allows"):
        authz.authorize(narrowed.access_key_id, "sagemaker:DeleteModel", MODEL, facts())


# --- the simulator ------------------------------------------------------------------------


def test_principal_for_arn(iam: IamService, authz: Authorizer) -> None:
    user_key(iam, read=doc(allow("sagemaker:List*")))
    role_arn = lambda_role(iam, "worker", all=doc(allow("sagemaker:*")))

    user = authz.principal_for_arn(ALICE)
    assert (user.kind, user.name, user.arn) == ("user", "alice", ALICE)
    assert [p.name for p in user.policies] == ["read"]

    role = authz.principal_for_arn(role_arn)
    assert role.kind == "role" and role.name == "worker"
    assert role.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/simulation"
    assert role.role_arn == role_arn and [p.name for p in role.policies] == ["all"]

    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/job-7"
    session = authz.principal_for_arn(session_arn)
    assert (session.arn, session.name, session.session_name) == (session_arn, "worker", "job-7")

    for unknown in (
        f"arn:aws:iam::{ACCOUNT}:user/ghost",
        f"arn:aws:iam::{ACCOUNT}:role/ghost",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/ghost/s1",
        "arn:aws:iam::999999999999:user/alice",
        "alice",
    ):
        with pytest.raises(NotFoundError) as info:
            authz.principal_for_arn(unknown)
        assert info.value.aws_code == "NoSuchEntity" and info.value.status == 404


def test_simulate_one_result_per_action_and_resource(iam: IamService, authz: Authorizer) -> None:
    user_key(iam, read=doc(allow("sagemaker:DescribeModel", MODEL)))
    actions = ["sagemaker:DescribeModel", "sagemaker:DeleteModel"]
    results = authz.simulate(ALICE, actions, [MODEL, OTHER_MODEL])
    assert [(r["action"], r["resource"], r["allowed"]) for r in results] == [
        ("sagemaker:DescribeModel", MODEL, True),
        ("sagemaker:DescribeModel", OTHER_MODEL, False),
        ("sagemaker:DeleteModel", MODEL, False),
        ("sagemaker:DeleteModel", OTHER_MODEL, False),
    ]
    assert all(r["principal"] == ALICE and r["request_id"] == "simulation" for r in results)
    assert results[0]["statement"]["policy"] == "read"
    assert results[1]["message"].endswith(
        "because no identity-based policy allows the sagemaker:DescribeModel action"
    )
    star = authz.simulate(ALICE, actions, [])
    assert [(r["action"], r["resource"]) for r in star] == [(a, "*") for a in actions]


def test_simulate_with_context(iam: IamService, authz: Authorizer) -> None:
    user_key(
        iam,
        office=doc(
            allow(
                "sagemaker:ListModels",
                Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            )
        ),
    )
    inside = authz.simulate(ALICE, ["sagemaker:ListModels"], [], {"aws:SourceIp": "10.1.2.3"})
    outside = authz.simulate(ALICE, ["sagemaker:ListModels"], [], {"aws:SourceIp": "192.0.2.1"})
    assert [r["allowed"] for r in inside + outside] == [True, False]
