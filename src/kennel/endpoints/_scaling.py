"""Application Auto Scaling for endpoint variants: what is registered, and what happened.

Two audiences, two small surfaces:

* **The AWS API** (``kennel.api.routers.autoscaling_json``): one method per operation,
  taking the request as boto3's ``application-autoscaling`` client sends it and returning
  AWS's response: scalable targets, target-tracking policies, scheduled actions, tags and
  scaling activities. Validation and error codes are AWS's (``_scaling_shapes``).
* **The controller** (the thread that reads targets each metric period, decides with
  ``_autoscaling`` and resizes variants): :attr:`ScalingService.generation` to notice
  changes cheaply, :meth:`ScalingService.targets` for what to act on,
  :meth:`~ScalingService.start_activity` / :meth:`~ScalingService.finish_activity` to
  record what it did, and :meth:`~ScalingService.scheduled_actions`.

This service only stores: nothing here scales anything. A target whose endpoint has since
been deleted stays registered (as on AWS) until deregistered; the controller skips it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kennel._errors import NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.endpoints._autoscaling import TargetTrackingConfig
from kennel.endpoints._scaling_shapes import (
    MAX_TAGS,
    ConcurrentUpdateError,
    DeleteScalingPolicyRequest,
    DeleteScheduledActionRequest,
    DescribeScalableTargetsRequest,
    DescribeScalingActivitiesRequest,
    DescribeScalingPoliciesRequest,
    DescribeScheduledActionsRequest,
    InvalidNextTokenError,
    ListTagsRequest,
    ObjectNotFoundError,
    PutScalingPolicyRequest,
    PutScheduledActionRequest,
    RegisterScalableTargetRequest,
    ScalingResourceNotFoundError,
    TagResourceRequest,
    TargetKey,
    TooManyTagsError,
    UntagResourceRequest,
    check_capacity,
    check_dimension,
    check_key,
    check_max_results,
    check_namespace,
    check_target_tracking,
    metric_of,
    parse,
    split_resource_id,
)
from kennel.endpoints._scaling_spec import DEFAULT_COOLDOWN, DIMENSION, MAX_INSTANCES, NAMESPACE
from kennel.store import (
    Database,
    ScalableTarget,
    ScalingActivity,
    ScalingPolicy,
    ScheduledAction,
)

ACTIVITY_RETENTION = timedelta(weeks=6)
"""How long activities are kept (AWS shows the last six weeks)."""
TARGET_TRACKING = "TargetTrackingScaling"
SERVICE_LINKED_ROLE = (
    "arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling."
    "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
"""The role AWS answers as RoleARN when none was given (kennel scales variants itself)."""

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}

Clock = Callable[[], datetime]
Row = TypeVar("Row")


class Endpoints(Protocol):
    """What the scaling service asks of :class:`kennel.endpoints._service.EndpointService`."""

    def describe(self, name: str) -> dict[str, Any]: ...

    def describe_config(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TargetInfo:
    """One registered endpoint variant, as the controller acts on it.

    The controller keeps the variant's desired instance count within
    ``[min_capacity, max_capacity]`` (bringing it inside at once when a new registration
    moves the bounds past it, as AWS does) and lets each of ``policies`` move it within
    them. A suspended direction is not taken by policies; scheduled actions still change
    the bounds unless ``scheduled_scaling_suspended``.
    """

    resource_id: str
    endpoint: str
    variant: str
    min_capacity: int
    max_capacity: int
    dynamic_scaling_in_suspended: bool
    dynamic_scaling_out_suspended: bool
    scheduled_scaling_suspended: bool
    policies: tuple[TargetTrackingConfig, ...]


@dataclass(frozen=True)
class ScheduledActionInfo:
    """A scheduled action, parsed: at ``run_at`` once, or every ``every`` from its start.

    When it runs, the controller applies ``min_capacity``/``max_capacity`` (whichever is
    set) with :meth:`ScalingService.register_scalable_target` and records an activity.
    """

    name: str
    resource_id: str
    schedule: str
    run_at: datetime | None
    every: timedelta | None
    start_time: datetime | None
    end_time: datetime | None
    min_capacity: int | None
    max_capacity: int | None
    created_at: datetime

    def next_run(self, after: datetime) -> datetime | None:
        """The first time at or after ``after`` this action is due (None: never again)."""
        if self.run_at is not None:
            due: datetime | None = self.run_at if self.run_at >= after else None
        else:
            assert self.every is not None
            anchor = self.start_time or self.created_at
            steps = max(0, math.ceil((after - anchor) / self.every))
            due = anchor + steps * self.every
        if due is None or (self.end_time is not None and due > self.end_time):
            return None
        if self.start_time is not None and due < self.start_time:
            return None
        return due


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything kennel writes is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def scalable_target_id(resource_id: str) -> str:
    """The id in a scalable target's ARN, the same before and after it is registered.

    Derived from the resource ID so that authorizing RegisterScalableTarget on a target
    that does not exist yet uses the ARN it will have (AWS's ids are random).
    """
    key = f"{NAMESPACE}|{resource_id}|{DIMENSION}".encode()
    return hashlib.sha256(key).hexdigest()[:36]


class ScalingService:
    """Scalable targets, policies, scheduled actions and activities of endpoint variants."""

    def __init__(
        self,
        db: Database,
        endpoints: Endpoints,
        settings: Settings,
        *,
        account_id: str,
        region: str,
        clock: Clock = _now,
    ) -> None:
        self.db = db
        self.endpoints = endpoints
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self._clock = clock
        self._generation = 0
        self._lock = threading.Lock()

    # --- the controller's API -------------------------------------------------------------

    @property
    def generation(self) -> int:
        """A number that changes on every write to targets, policies or scheduled actions.

        The controller re-reads :meth:`targets` (and :meth:`scheduled_actions`) only when
        it differs from the last one it saw; starting from ``None`` makes the first pass
        read. It counts in memory, from 0 each time the server starts. Endpoint changes
        (a variant deleted by an update) do not change it.
        """
        return self._generation

    def targets(self) -> list[TargetInfo]:
        """Every registered variant with its target-tracking policies, by resource ID."""
        with self.db.session() as session:
            rows = session.scalars(select(ScalableTarget).order_by(ScalableTarget.resource_id))
            policies = session.scalars(select(ScalingPolicy).order_by(ScalingPolicy.name)).all()
            by_target: dict[str, list[TargetTrackingConfig]] = {}
            for policy in policies:
                by_target.setdefault(policy.resource_id, []).append(
                    _tracking_config(policy.name, policy.configuration, policy.alarms)
                )
            return [
                _target_info(row, tuple(by_target.get(row.resource_id, ()))) for row in rows.all()
            ]

    def scheduled_actions(self) -> list[ScheduledActionInfo]:
        """Every scheduled action, by resource ID and name."""
        with self.db.session() as session:
            rows = session.scalars(
                select(ScheduledAction).order_by(ScheduledAction.resource_id, ScheduledAction.name)
            ).all()
            return [_scheduled_info(row) for row in rows]

    def start_activity(
        self, resource_id: str, *, description: str, cause: str, details: str | None = None
    ) -> str:
        """Record a scaling action as it starts (StatusCode InProgress); its ActivityId.

        ``description`` says what is done ("Setting desired instance count to 3."),
        ``cause`` why ("monitor alarm TargetTracking-...-AlarmHigh-... in state ALARM
        triggered policy P"). Activities older than six weeks are dropped here.
        """
        now = self._clock()
        activity_id = str(uuid.uuid4())
        with self.db.session() as session:
            session.execute(
                delete(ScalingActivity).where(ScalingActivity.start_time < now - ACTIVITY_RETENTION)
            )
            session.add(
                ScalingActivity(
                    activity_id=activity_id,
                    resource_id=resource_id,
                    description=description,
                    cause=cause,
                    status_code="InProgress",
                    status_message=None,
                    start_time=now,
                    end_time=None,
                    details=details,
                )
            )
        return activity_id

    def finish_activity(
        self,
        activity_id: str,
        status_code: Literal["Successful", "Failed"],
        message: str | None = None,
    ) -> None:
        """Close an activity: Successful or Failed (``message``: what went wrong), EndTime now."""
        if status_code not in ("Successful", "Failed"):
            raise ValueError(f"status_code must be Successful or Failed, not {status_code!r}")
        with self.db.session() as session:
            row = session.get(ScalingActivity, activity_id)
            if row is None:
                raise NotFoundError(f"No scaling activity {activity_id}.")
            row.status_code = status_code
            row.status_message = message
            row.end_time = self._clock()

    def recover(self, restarted_at: datetime | None = None) -> list[str]:
        """Activities a previous server left InProgress ended with it: they end Failed,
        saying so (the endpoint comes back at the count it last recorded, and the policies
        act again from there). Returns their ActivityIds."""
        now = restarted_at or self._clock()
        with self.db.session() as session:
            rows = session.scalars(
                select(ScalingActivity).where(
                    ScalingActivity.status_code.in_(("Pending", "InProgress"))
                )
            ).all()
            for row in rows:
                row.status_code = "Failed"
                row.status_message = (
                    "The kennel server stopped while this activity ran (restarted at "
                    f"{now.isoformat(timespec='seconds')}); the variant came back at its last "
                    "recorded instance count."
                )
                row.end_time = now
            return [row.activity_id for row in rows]

    def activities(self, resource: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` activities of a variant (a resource ID) or of every variant
        of an endpoint (its name), in DescribeScalingActivities' shape, newest first."""
        with self.db.session() as session:
            query = select(ScalingActivity)
            if "/" in resource:
                query = query.where(ScalingActivity.resource_id == resource)
            else:
                prefix = f"endpoint/{resource}/variant/"
                query = query.where(ScalingActivity.resource_id.startswith(prefix, autoescape=True))
            query = query.order_by(
                ScalingActivity.start_time.desc(), ScalingActivity.activity_id.desc()
            )
            rows = session.scalars(query.limit(max(0, limit))).all()
            return [_activity(row) for row in rows]

    # --- scalable targets ---------------------------------------------------------------------

    def target_arn(self, resource_id: str) -> str:
        return (
            f"arn:aws:application-autoscaling:{self.region}:{self.account_id}:"
            f"scalable-target/{scalable_target_id(resource_id)}"
        )

    def register_scalable_target(self, request: dict[str, Any]) -> dict[str, Any]:
        """Register a variant, or change a registered one's bounds, suspensions or tags.

        A new target needs MinCapacity and MaxCapacity; an update changes only what it
        names. The endpoint and variant must exist (a target is checked against the
        endpoint's current and pending variants).
        """
        req = parse(RegisterScalableTargetRequest, request)
        endpoint, variant = check_key(req)
        self.check_variant(endpoint, variant)
        suspended = (
            req.suspended_state.model_dump(by_alias=True, exclude_none=True)
            if (req.suspended_state is not None)
            else {}
        )
        with self._writing() as session:
            row = session.get(ScalableTarget, req.resource_id)
            if row is None:
                if req.min_capacity is None or req.max_capacity is None:
                    raise ValidationError(
                        f"MinCapacity and MaxCapacity are required to register the new "
                        f"scalable target {req.resource_id}."
                    )
                check_capacity(req.min_capacity, req.max_capacity)
                _check_tags(req.tags or {})
                row = ScalableTarget(
                    resource_id=req.resource_id,
                    service_namespace=NAMESPACE,
                    scalable_dimension=DIMENSION,
                    min_capacity=req.min_capacity,
                    max_capacity=req.max_capacity,
                    role_arn=req.role_arn or SERVICE_LINKED_ROLE.format(account=self.account_id),
                    suspended_state=suspended,
                    tags=dict(req.tags or {}),
                    arn=self.target_arn(req.resource_id),
                    created_at=self._clock(),
                )
                session.add(row)
            else:
                low = row.min_capacity if req.min_capacity is None else req.min_capacity
                high = row.max_capacity if req.max_capacity is None else req.max_capacity
                check_capacity(low, high)
                tags = {**row.tags, **(req.tags or {})}
                _check_tags(tags)
                row.min_capacity, row.max_capacity, row.tags = low, high, tags
                row.suspended_state = {**row.suspended_state, **suspended}
                if req.role_arn:
                    row.role_arn = req.role_arn
            return {"ScalableTargetARN": row.arn}

    def describe_scalable_targets(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(DescribeScalableTargetsRequest, request)
        self._check_listing(req.service_namespace, req.scalable_dimension)
        size = check_max_results(req.max_results)
        with self.db.session() as session:
            query = select(ScalableTarget).order_by(ScalableTarget.resource_id)
            if req.resource_ids:
                query = query.where(ScalableTarget.resource_id.in_(req.resource_ids))
            rows = list(session.scalars(query).all())
        page, token = _page(rows, lambda r: [r.resource_id], size, req.next_token)
        return _listing("ScalableTargets", [_target(r) for r in page], token)

    def deregister_scalable_target(self, request: dict[str, Any]) -> dict[str, Any]:
        """Forget a target with its policies and scheduled actions (its activities stay)."""
        req = parse(TargetKey, request)
        endpoint, _ = check_key(req)
        with self._writing() as session:
            row = session.get(ScalableTarget, req.resource_id)
            if row is None:
                raise ObjectNotFoundError(
                    f"No scalable target found for service namespace: {NAMESPACE}, resource "
                    f"ID: {req.resource_id}, scalable dimension: {DIMENSION}",
                    hint=f"See `kennel endpoints scaling describe {endpoint}`.",
                )
            for table in (ScalingPolicy, ScheduledAction):
                session.execute(delete(table).where(table.resource_id == req.resource_id))
            session.delete(row)
        return {}

    # --- scaling policies ---------------------------------------------------------------------

    def put_scaling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a target-tracking policy of a registered target.

        Replacing keeps the policy's ARN and alarm names (an alarm is added or dropped when
        DisableScaleIn changes). Step and predictive scaling are refused: the controller
        only tracks targets.
        """
        req, configuration = _checked_policy(request)
        scale_in = not configuration.get("DisableScaleIn", False)
        with self._writing() as session:
            self._require_target(session, req.resource_id)
            row = self._policy(session, req.resource_id, req.policy_name)
            if row is None:
                row = ScalingPolicy(
                    arn=self._policy_arn(req.resource_id, req.policy_name),
                    name=req.policy_name,
                    resource_id=req.resource_id,
                    policy_type=TARGET_TRACKING,
                    configuration=configuration,
                    alarms=self._alarms(req.resource_id, [], scale_in),
                    created_at=self._clock(),
                )
                session.add(row)
            else:
                row.configuration = configuration
                row.alarms = self._alarms(req.resource_id, row.alarms, scale_in)
            return {"PolicyARN": row.arn, "Alarms": list(row.alarms)}

    def describe_scaling_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(DescribeScalingPoliciesRequest, request)
        self._check_listing(req.service_namespace, req.scalable_dimension)
        size = check_max_results(req.max_results)
        with self.db.session() as session:
            query = select(ScalingPolicy).order_by(ScalingPolicy.resource_id, ScalingPolicy.name)
            if req.resource_id is not None:
                query = query.where(ScalingPolicy.resource_id == req.resource_id)
            if req.policy_names:
                query = query.where(ScalingPolicy.name.in_(req.policy_names))
            rows = list(session.scalars(query).all())
        page, token = _page(rows, lambda r: [r.resource_id, r.name], size, req.next_token)
        return _listing("ScalingPolicies", [_policy(r) for r in page], token)

    def delete_scaling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(DeleteScalingPolicyRequest, request)
        endpoint, _ = check_key(req)
        with self._writing() as session:
            row = self._policy(session, req.resource_id, req.policy_name)
            if row is None:
                raise ObjectNotFoundError(
                    f"No scaling policy found for service namespace: {NAMESPACE}, resource ID: "
                    f"{req.resource_id}, scalable dimension: {DIMENSION}, policy name: "
                    f"{req.policy_name}",
                    hint=f"See `kennel endpoints scaling describe {endpoint}`.",
                )
            session.delete(row)
        return {}

    # --- scaling activities -------------------------------------------------------------------

    def describe_scaling_activities(self, request: dict[str, Any]) -> dict[str, Any]:
        """Activities newest first. IncludeNotScaledActivities is accepted; kennel records
        only activities that changed (or tried to change) capacity, so it changes nothing."""
        req = parse(DescribeScalingActivitiesRequest, request)
        self._check_listing(req.service_namespace, req.scalable_dimension)
        size = check_max_results(req.max_results)
        with self.db.session() as session:
            query = select(ScalingActivity).order_by(
                ScalingActivity.start_time.desc(), ScalingActivity.activity_id.desc()
            )
            if req.resource_id is not None:
                query = query.where(ScalingActivity.resource_id == req.resource_id)
            rows = list(session.scalars(query).all())
        page, token = _page(
            rows,
            lambda r: [_utc(r.start_time).isoformat(), r.activity_id],
            size,
            req.next_token,
            descending=True,
        )
        return _listing("ScalingActivities", [_activity(r) for r in page], token)

    # --- scheduled actions --------------------------------------------------------------------

    def put_scheduled_action(self, request: dict[str, Any]) -> dict[str, Any]:
        """Create or change a scheduled action: ``at(yyyy-mm-ddThh:mm:ss)`` or
        ``rate(N minutes|hours|days)``, in ``Timezone`` (UTC unless given)."""
        req = parse(PutScheduledActionRequest, request)
        check_key(req)
        start = _epoch(req.start_time, "StartTime")
        end = _epoch(req.end_time, "EndTime")
        if start is not None and end is not None and end <= start:
            raise ValidationError("EndTime must be after StartTime.")
        if req.timezone is not None:
            _zone(req.timezone)
        with self._writing() as session:
            self._require_target(session, req.resource_id)
            row = session.scalars(
                select(ScheduledAction).where(
                    ScheduledAction.resource_id == req.resource_id,
                    ScheduledAction.name == req.name,
                )
            ).one_or_none()
            schedule = req.schedule or (row.schedule if row is not None else None)
            if schedule is None:
                raise ValidationError(
                    "Schedule is required for a new scheduled action: "
                    "at(yyyy-mm-ddThh:mm:ss) or rate(N minutes|hours|days)."
                )
            timezone = req.timezone or (row.timezone if row is not None else None)
            _parse_schedule(schedule, timezone)
            low, high = _action_bounds(req, row)
            if row is None:
                row = ScheduledAction(
                    arn=self._scheduled_arn(req.resource_id, req.name),
                    name=req.name,
                    resource_id=req.resource_id,
                    created_at=self._clock(),
                )
                session.add(row)
            row.schedule, row.timezone = schedule, timezone
            row.start_time = start if start is not None else row.start_time
            row.end_time = end if end is not None else row.end_time
            row.min_capacity, row.max_capacity = low, high
        return {}

    def describe_scheduled_actions(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(DescribeScheduledActionsRequest, request)
        self._check_listing(req.service_namespace, req.scalable_dimension)
        size = check_max_results(req.max_results)
        with self.db.session() as session:
            query = select(ScheduledAction).order_by(
                ScheduledAction.resource_id, ScheduledAction.name
            )
            if req.resource_id is not None:
                query = query.where(ScheduledAction.resource_id == req.resource_id)
            if req.names:
                query = query.where(ScheduledAction.name.in_(req.names))
            rows = list(session.scalars(query).all())
        page, token = _page(rows, lambda r: [r.resource_id, r.name], size, req.next_token)
        return _listing("ScheduledActions", [_scheduled(r) for r in page], token)

    def delete_scheduled_action(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(DeleteScheduledActionRequest, request)
        check_key(req)
        with self._writing() as session:
            row = session.scalars(
                select(ScheduledAction).where(
                    ScheduledAction.resource_id == req.resource_id,
                    ScheduledAction.name == req.name,
                )
            ).one_or_none()
            if row is None:
                raise ObjectNotFoundError(
                    f"No scheduled action found for service namespace: {NAMESPACE}, resource "
                    f"ID: {req.resource_id}, scalable dimension: {DIMENSION}, scheduled action "
                    f"name: {req.name}"
                )
            session.delete(row)
        return {}

    # --- tags ---------------------------------------------------------------------------------

    def list_tags_for_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(ListTagsRequest, request)
        with self.db.session() as session:
            return {"Tags": dict(self._tagged(session, req.resource_arn).tags)}

    def tag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(TagResourceRequest, request)
        with self.db.session() as session:
            row = self._tagged(session, req.resource_arn)
            tags = {**row.tags, **req.tags}
            _check_tags(tags)
            row.tags = tags
        return {}

    def untag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        req = parse(UntagResourceRequest, request)
        with self.db.session() as session:
            row = self._tagged(session, req.resource_arn)
            row.tags = {k: v for k, v in row.tags.items() if k not in req.tag_keys}
        return {}

    # --- helpers ------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction that bumps :attr:`generation` once it has committed.

        A unique-key clash (two requests registering or putting the same thing at once)
        is AWS's ConcurrentUpdateException, which SDKs retry.
        """
        try:
            with self.db.session() as session:
                yield session
        except IntegrityError as exc:
            raise ConcurrentUpdateError(
                "Another request changed this scalable target at the same time; retry.",
            ) from exc
        with self._lock:
            self._generation += 1

    def check_variant(self, endpoint: str, variant: str) -> None:
        """A ValidationError unless ``endpoint`` exists and has (or is getting) ``variant``."""
        try:
            info = self.endpoints.describe(endpoint)
        except NotFoundError:
            raise ValidationError(
                f"Could not find endpoint {endpoint} (resource ID "
                f"endpoint/{endpoint}/variant/{variant}).",
                hint="Create the endpoint first; see `kennel endpoints list`.",
            ) from None
        names = [
            v["variant_name"]
            for key in ("production_variants", "pending_production_variants")
            for v in info.get(key) or []
        ]
        if not names:  # not serving yet (Creating) or any more (Failed): its config says
            config = self.endpoints.describe_config(info["config_name"])
            names = [v["variant_name"] for v in config["variants"]]
        if variant not in names:
            raise ValidationError(
                f"Endpoint {endpoint} has no variant {variant}; its variants are "
                f"{', '.join(dict.fromkeys(names))}.",
                hint=f"Use resource ID endpoint/{endpoint}/variant/<one of them>.",
            )

    @staticmethod
    def _check_listing(namespace: str, dimension: str | None) -> None:
        check_namespace(namespace)
        if dimension is not None:
            check_dimension(dimension)

    @staticmethod
    def _require_target(session: Session, resource_id: str) -> ScalableTarget:
        row = session.get(ScalableTarget, resource_id)
        if row is None:
            endpoint, variant = split_resource_id(resource_id)
            raise ObjectNotFoundError(
                f"No scalable target registered for service namespace: {NAMESPACE}, resource "
                f"ID: {resource_id}, scalable dimension: {DIMENSION}",
                hint=f"Register it first: `kennel endpoints scaling register {endpoint} "
                f"--variant {variant} --min 1 --max 3`.",
            )
        return row

    @staticmethod
    def _policy(session: Session, resource_id: str, name: str) -> ScalingPolicy | None:
        return session.scalars(
            select(ScalingPolicy).where(
                ScalingPolicy.resource_id == resource_id, ScalingPolicy.name == name
            )
        ).one_or_none()

    def _tagged(self, session: Session, arn: str) -> ScalableTarget:
        row = session.scalars(select(ScalableTarget).where(ScalableTarget.arn == arn)).first()
        if row is None:
            raise ScalingResourceNotFoundError(
                f"No scalable target has the ARN {arn}.",
                hint="DescribeScalableTargets shows each target's ScalableTargetARN.",
                ResourceName=arn,
            )
        return row

    def _policy_arn(self, resource_id: str, name: str) -> str:
        return (
            f"arn:aws:autoscaling:{self.region}:{self.account_id}:scalingPolicy:{uuid.uuid4()}:"
            f"resource/{NAMESPACE}/{resource_id}:policyName/{name}"
        )

    def _scheduled_arn(self, resource_id: str, name: str) -> str:
        return (
            f"arn:aws:autoscaling:{self.region}:{self.account_id}:scheduledAction:"
            f"{uuid.uuid4()}:resource/{NAMESPACE}/{resource_id}:scheduledActionName/{name}"
        )

    def _alarms(
        self, resource_id: str, existing: Sequence[dict[str, str]], scale_in: bool
    ) -> list[dict[str, str]]:
        """AlarmHigh always; AlarmLow unless scale-in is disabled; known names kept."""
        kinds = ["AlarmHigh", "AlarmLow"] if scale_in else ["AlarmHigh"]
        alarms = []
        for kind in kinds:
            prefix = f"TargetTracking-{resource_id}-{kind}-"
            name = next(
                (a["AlarmName"] for a in existing if a["AlarmName"].startswith(prefix)),
                f"{prefix}{uuid.uuid4()}",
            )
            alarms.append(
                {
                    "AlarmName": name,
                    "AlarmARN": f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}",
                }
            )
        return alarms


# --- policies as the controller runs them -----------------------------------------------------


def tracking_policy(request: dict[str, Any]) -> TargetTrackingConfig:
    """A PutScalingPolicy request's policy as the controller would run it, stored nowhere.

    It passes the very checks PutScalingPolicy makes (target, policy type, a metric the
    variant publishes with this variant's dimensions), so a dry run such as a simulation
    refuses exactly what putting the policy would refuse.
    """
    req, configuration = _checked_policy(request)
    return _tracking_config(req.policy_name, configuration)


def _checked_policy(request: dict[str, Any]) -> tuple[PutScalingPolicyRequest, dict[str, Any]]:
    """The parsed request and its validated configuration, as stored and answered."""
    req = parse(PutScalingPolicyRequest, request)
    endpoint, variant = check_key(req)
    policy_type = req.policy_type or (TARGET_TRACKING if req.target_tracking else None)
    if policy_type != TARGET_TRACKING or req.target_tracking is None:
        shown = policy_type or "StepScaling (AWS's default)"
        raise ValidationError(
            f"Unsupported policy type {shown}: kennel scales endpoint variants with "
            f"{TARGET_TRACKING} policies; give PolicyType {TARGET_TRACKING} and a "
            "TargetTrackingScalingPolicyConfiguration."
        )
    return req, check_target_tracking(req.target_tracking, endpoint, variant)


# --- rows as AWS shapes and controller views --------------------------------------------------


def _target(row: ScalableTarget) -> dict[str, Any]:
    suspended = {
        "DynamicScalingInSuspended": False,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
        **row.suspended_state,
    }
    return {
        "ServiceNamespace": row.service_namespace,
        "ResourceId": row.resource_id,
        "ScalableDimension": row.scalable_dimension,
        "MinCapacity": row.min_capacity,
        "MaxCapacity": row.max_capacity,
        "RoleARN": row.role_arn,
        "CreationTime": _utc(row.created_at),
        "SuspendedState": suspended,
        "ScalableTargetARN": row.arn,
    }


def _policy(row: ScalingPolicy) -> dict[str, Any]:
    return {
        "PolicyARN": row.arn,
        "PolicyName": row.name,
        "ServiceNamespace": NAMESPACE,
        "ResourceId": row.resource_id,
        "ScalableDimension": DIMENSION,
        "PolicyType": row.policy_type,
        "TargetTrackingScalingPolicyConfiguration": dict(row.configuration),
        "Alarms": list(row.alarms),
        "CreationTime": _utc(row.created_at),
    }


def _activity(row: ScalingActivity) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "ActivityId": row.activity_id,
        "ServiceNamespace": NAMESPACE,
        "ResourceId": row.resource_id,
        "ScalableDimension": DIMENSION,
        "Description": row.description,
        "Cause": row.cause,
        "StartTime": _utc(row.start_time),
        "StatusCode": row.status_code,
    }
    if row.end_time is not None:
        shape["EndTime"] = _utc(row.end_time)
    if row.status_message is not None:
        shape["StatusMessage"] = row.status_message
    if row.details is not None:
        shape["Details"] = row.details
    return shape


def _scheduled(row: ScheduledAction) -> dict[str, Any]:
    action = {
        key: value
        for key, value in (("MinCapacity", row.min_capacity), ("MaxCapacity", row.max_capacity))
        if value is not None
    }
    shape: dict[str, Any] = {
        "ScheduledActionName": row.name,
        "ScheduledActionARN": row.arn,
        "ServiceNamespace": NAMESPACE,
        "Schedule": row.schedule,
        "ResourceId": row.resource_id,
        "ScalableDimension": DIMENSION,
        "ScalableTargetAction": action,
        "CreationTime": _utc(row.created_at),
    }
    if row.timezone is not None:
        shape["Timezone"] = row.timezone
    if row.start_time is not None:
        shape["StartTime"] = _utc(row.start_time)
    if row.end_time is not None:
        shape["EndTime"] = _utc(row.end_time)
    return shape


def _target_info(row: ScalableTarget, policies: tuple[TargetTrackingConfig, ...]) -> TargetInfo:
    endpoint, variant = split_resource_id(row.resource_id)
    suspended = row.suspended_state
    return TargetInfo(
        resource_id=row.resource_id,
        endpoint=endpoint,
        variant=variant,
        min_capacity=row.min_capacity,
        max_capacity=row.max_capacity,
        dynamic_scaling_in_suspended=bool(suspended.get("DynamicScalingInSuspended")),
        dynamic_scaling_out_suspended=bool(suspended.get("DynamicScalingOutSuspended")),
        scheduled_scaling_suspended=bool(suspended.get("ScheduledScalingSuspended")),
        policies=policies,
    )


def _tracking_config(
    name: str, configuration: dict[str, Any], alarms: Sequence[dict[str, str]] = ()
) -> TargetTrackingConfig:
    kinds = ("AlarmHigh", "AlarmLow")
    return TargetTrackingConfig(
        alarm_names=tuple(
            (kind, alarm["AlarmName"])
            for alarm in alarms
            for kind in kinds
            if f"-{kind}-" in alarm["AlarmName"]
        ),
        policy_name=name,
        target_value=float(configuration["TargetValue"]),
        metric=metric_of(configuration),
        scale_out_cooldown=float(configuration.get("ScaleOutCooldown", DEFAULT_COOLDOWN)),
        scale_in_cooldown=float(configuration.get("ScaleInCooldown", DEFAULT_COOLDOWN)),
        disable_scale_in=bool(configuration.get("DisableScaleIn", False)),
    )


def _scheduled_info(row: ScheduledAction) -> ScheduledActionInfo:
    run_at, every = _parse_schedule(row.schedule, row.timezone)
    return ScheduledActionInfo(
        name=row.name,
        resource_id=row.resource_id,
        schedule=row.schedule,
        run_at=run_at,
        every=every,
        start_time=_utc(row.start_time) if row.start_time is not None else None,
        end_time=_utc(row.end_time) if row.end_time is not None else None,
        min_capacity=row.min_capacity,
        max_capacity=row.max_capacity,
        created_at=_utc(row.created_at),
    )


# --- small pieces -------------------------------------------------------------------------------


def _listing(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if token is not None:
        answer["NextToken"] = token
    return answer


def _page(
    rows: list[Row],
    key: Callable[[Row], list[str]],
    size: int,
    token: str | None,
    *,
    descending: bool = False,
) -> tuple[list[Row], str | None]:
    """One page of ``rows`` (sorted by ``key``) after the one ``token`` ended at.

    The token carries the last key seen rather than an offset, so a row added meanwhile
    (an activity, at the head of the list) neither repeats nor hides another.
    """
    if token:
        after = _decode_token(token)
        if descending:
            rows = [r for r in rows if key(r) < after]
        else:
            rows = [r for r in rows if key(r) > after]
    page = rows[:size]
    more = len(rows) > size
    return page, _encode_token(key(page[-1])) if more else None


def _encode_token(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_token(token: str) -> list[str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidNextTokenError(
            "Invalid NextToken: pass the NextToken of the previous response unchanged."
        )
    return value


def _check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise TooManyTagsError(f"A scalable target can have at most {MAX_TAGS} tags.")


def _epoch(value: float | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValidationError(f"{field} {value!r} is not a time kennel can use.") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"Unknown Timezone {name!r}: give an IANA time zone such as Etc/UTC or Europe/Berlin."
        ) from None


def _parse_schedule(
    schedule: str, timezone: str | None
) -> tuple[datetime | None, timedelta | None]:
    """``(run_at, None)`` for ``at(...)`` (a local time in ``timezone``), ``(None, every)``
    for ``rate(...)``; anything else (cron included) is refused with what to write."""
    at = _AT.fullmatch(schedule.strip())
    if at is not None:
        try:
            local = datetime.fromisoformat(at.group(1))
        except ValueError:
            raise ValidationError(f"{schedule!r} is not a valid date and time.") from None
        zone = _zone(timezone) if timezone else UTC
        return local.replace(tzinfo=zone).astimezone(UTC), None
    rate = _RATE.fullmatch(schedule.strip())
    if rate is not None and int(rate.group(1)) > 0:
        seconds = int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")]
        return None, timedelta(seconds=seconds)
    raise ValidationError(
        f"Unsupported Schedule {schedule!r}: kennel runs at(yyyy-mm-ddThh:mm:ss) and "
        "rate(N minutes|hours|days) schedules (N above 0), not cron expressions."
    )


def _action_bounds(
    req: PutScheduledActionRequest, row: ScheduledAction | None
) -> tuple[int | None, int | None]:
    action = req.action
    low = action.min_capacity if action is not None else None
    high = action.max_capacity if action is not None else None
    if action is None and row is not None:
        low, high = row.min_capacity, row.max_capacity
    if low is None and high is None:
        raise ValidationError(
            "ScalableTargetAction needs MinCapacity, MaxCapacity or both: the bounds the "
            "target gets when the action runs."
        )
    check_capacity(0 if low is None else low, MAX_INSTANCES if high is None else high)
    return low, high
