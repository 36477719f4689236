"""The SageMaker-side kinds of a stack: data sets, tuning jobs, training jobs, models and
endpoints (with their configs and scaling).

Each handler speaks the kennel API as the CLI does (``ctx.api``) and Application Auto
Scaling through a plain boto3 client (``ctx.aws``). Jobs and models are immutable: their
physical names carry their spec's hash (the engine puts it in ``spec["name"]``), so a
resource of that name is the one the block asks for, and a second run finds it. A job an
earlier, interrupted run started is waited for (``wait``), never started again; one that
ended Failed or Stopped is answered ``replace`` (the engine tries a new attempt).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from kennel._client import KennelClient, path_segment
from kennel._errors import (
    ConflictError,
    KennelError,
    NotFoundError,
    UnexpectedStatusError,
    ValidationError,
)
from kennel.endpoints._capture import DataCaptureSpec
from kennel.endpoints._scaling_spec import NAMESPACE, ScalingSpec, resource_id
from kennel.stack._schema import (
    DatasetBlock,
    EndpointBlock,
    ModelBlock,
    TrainingBlock,
    TuningBlock,
    VariantBlock,
)
from kennel.stack._types import UNKNOWN, Address, Handler, StackContext, Step, fingerprint

DATASETS = "/api/v1/datasets"
TUNING_JOBS = "/api/v1/tuning-jobs"
TRAINING_JOBS = "/api/v1/training-jobs"
MODELS = "/api/v1/models"
CONFIGS = "/api/v1/endpoint-configs"
ENDPOINTS = "/api/v1/endpoints"

JOB_ACTIVE = ("InProgress", "Stopping")
JOB_DEAD = ("Failed", "Stopped")
ENDPOINT_BUSY = ("Creating", "Updating", "RollingBack", "SystemUpdating", "Deleting")

Sleep = Callable[[float], None]
_NOT_KNOWN_YET = UNKNOWN.split("{")[0]
"""How a value a plan cannot know yet begins (the up that applies it compares again)."""


def _get(api: KennelClient, path: str) -> dict[str, Any] | None:
    """The resource at ``path``, or None when there is none."""
    try:
        found: dict[str, Any] = api.get(path)
    except NotFoundError:
        return None
    return found


class _Waiter:
    """Polling with a deadline: every handler's waits are bounded by ``ctx.timeout_seconds``."""

    def __init__(self, poll_seconds: float, sleep: Sleep) -> None:
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def until(
        self,
        ctx: StackContext,
        what: str,
        read: Callable[[], dict[str, Any] | None],
        busy: Callable[[dict[str, Any] | None], bool],
        describe: Callable[[dict[str, Any] | None], str],
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + ctx.timeout_seconds
        info = read()
        while busy(info):
            ctx.progress(describe(info))
            if time.monotonic() >= deadline:
                raise UnexpectedStatusError(
                    f"Gave up waiting for {what} after {ctx.timeout_seconds:g} s "
                    f"({describe(info)}).",
                    hint="It goes on on the server; run kennel up again to keep waiting.",
                )
            self.sleep(self.poll_seconds)
            info = read()
        return info


# Data sets ------------------------------------------------------------------------------


def _dataset_source(block: DatasetBlock) -> str:
    """What the server records as a data set's source (``demo:digits?...`` or the URL)."""
    if block.demo is not None:
        return f"demo:digits?image_size={block.demo.image_size}&seed={block.demo.seed}"
    assert block.source_url is not None
    return block.source_url


class DatasetHandler:
    """A data set: rendered from the demo digits or fetched from a URL. A data set does
    not change: a changed block under an existing name is refused (rename it)."""

    kind: ClassVar[str] = "datasets"

    def __init__(self, poll_seconds: float = 1.0, sleep: Sleep = time.sleep) -> None:
        self.waiter = _Waiter(poll_seconds, sleep)

    def references(self, block: Any) -> set[Address]:
        return set()

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = address.name
        wanted = _dataset_source(DatasetBlock.model_validate(spec))
        found = _get(ctx.api, f"{DATASETS}/{path_segment(name)}")
        if found is None:
            return Step(address, "create", name, "does not exist")
        if found["source"] != wanted and _NOT_KNOWN_YET not in wanted:
            raise ValidationError(
                f"{address}: data set {name!r} exists with source {found['source']!r}, but the "
                f"block asks for {wanted!r}; a data set cannot change.",
                hint=f"Give the block a new logical name (e.g. {name}-2), or delete the data "
                f"set first (kennel datasets delete {name}) if nothing else uses it.",
            )
        if found["status"] != "Available":
            return Step(address, "wait", name, f"{found['status']} (started by an earlier run)")
        return Step(address, "none", name, "exists")

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        name = step.physical
        block = DatasetBlock.model_validate(
            {k: v for k, v in step.spec.items() if k in DatasetBlock.model_fields}
        )
        found = self._settled(ctx, name)
        if found is None:
            body: dict[str, Any] = {"name": name}
            if block.demo is not None:
                body["demo"] = block.demo.model_dump()
                ctx.progress(f"rendering the demo data set ({block.demo.image_size} px)")
            else:
                body["source_url"] = block.source_url
                ctx.progress(f"fetching {block.source_url}")
            try:
                ctx.api.post(DATASETS, body)
            except ConflictError:
                self._settled(ctx, name)  # made meanwhile (a run interrupted mid-request)
        return self.attributes(ctx, name)

    def _settled(self, ctx: StackContext, name: str) -> dict[str, Any] | None:
        return self.waiter.until(
            ctx,
            f"data set {name}",
            lambda: _get(ctx.api, f"{DATASETS}/{path_segment(name)}"),
            lambda info: info is not None and info["status"] != "Available",
            lambda info: f"data set {name}: {(info or {}).get('status', 'gone')}",
        )

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        info: dict[str, Any] = ctx.api.get(f"{DATASETS}/{path_segment(physical)}")
        return {
            "name": info["name"],
            "uri": info["artifact_uri"],
            "num_classes": info["num_classes"],
        }

    def delete(self, ctx: StackContext, physical: str) -> None:
        path = f"{DATASETS}/{path_segment(physical)}"
        if self._settled(ctx, physical) is None:
            return
        with contextlib.suppress(NotFoundError):
            ctx.api.delete(path)


# Jobs -----------------------------------------------------------------------------------


def _upload(ctx: StackContext, spec: dict[str, Any]) -> dict[str, Any]:
    """The job body: ``source_dir`` uploaded as ``source_uri``, stack-only fields dropped."""
    from kennel.sdk._session import upload_source

    body = {k: v for k, v in spec.items() if k not in ("source_dir", "hyperparameters_from")}
    if spec.get("source_dir"):
        ctx.progress(f"uploading {spec['source_dir']}")
        body["source_uri"] = upload_source(ctx.api, spec["source_dir"], spec.get("entry_point"))
    return body


def _job_step(address: Address, name: str, found: dict[str, Any] | None, kind: str) -> Step:
    if found is None:
        return Step(address, "create", name, "does not exist")
    status = found["status"]
    if status in JOB_ACTIVE:
        return Step(address, "wait", name, f"{status}: started by an earlier run")
    if status in JOB_DEAD:
        reason = found.get("failure_reason") or found.get("status_message") or ""
        return Step(
            address,
            "replace",
            name,
            f"{kind} {name} ended {status}" + (f": {reason}" if reason else ""),
        )
    return Step(address, "none", name, f"exists ({status})")


def _stop_job(ctx: StackContext, waiter: _Waiter, base: str, name: str, what: str) -> None:
    """Stop a running job and wait until it has stopped; the job stays, as on SageMaker."""
    path = f"{base}/{path_segment(name)}"
    found = _get(ctx.api, path)
    if found is None or found["status"] not in JOB_ACTIVE:
        return
    if found["status"] == "InProgress":
        ctx.progress(f"stopping {what} {name}")
        # Refused when it ended meanwhile: fine.
        with contextlib.suppress(ConflictError, ValidationError):
            ctx.api.post(f"{path}/stop", {})
    waiter.until(
        ctx,
        f"{what} {name} to stop",
        lambda: _get(ctx.api, path),
        lambda info: info is not None and info["status"] in JOB_ACTIVE,
        lambda info: f"{what} {name}: {(info or {}).get('status')}",
    )


class TuningHandler:
    """A hyperparameter tuning job; ``source_dir`` is uploaded as its trials' source."""

    kind: ClassVar[str] = "tuning_jobs"

    def __init__(self, poll_seconds: float = 1.0, sleep: Sleep = time.sleep) -> None:
        self.waiter = _Waiter(poll_seconds, sleep)

    def references(self, block: Any) -> set[Address]:
        assert isinstance(block, TuningBlock)
        return {Address("datasets", block.dataset)} if block.dataset else set()

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = spec["name"]
        found = _get(ctx.api, f"{TUNING_JOBS}/{path_segment(name)}")
        step = _job_step(address, name, found, "tuning job")
        if found is not None and step.action == "none" and not found.get("best_training_job"):
            step.action, step.reason = "replace", f"tuning job {name} ended with no best trial"
        return step

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        name = step.physical
        path = f"{TUNING_JOBS}/{path_segment(name)}"
        if step.action != "wait":
            # A conflict: a run interrupted before it heard back started it already.
            with contextlib.suppress(ConflictError):
                ctx.api.post(TUNING_JOBS, _upload(ctx, step.spec))
        job = self.waiter.until(
            ctx,
            f"tuning job {name}",
            lambda: _get(ctx.api, path),
            lambda info: info is None or info["status"] in JOB_ACTIVE,
            lambda info: _tuning_progress(name, info),
        )
        assert job is not None
        if job["status"] != "Completed" or not job.get("best_training_job"):
            reason = job.get("failure_reason") or job.get("status_message") or "no trial succeeded"
            raise UnexpectedStatusError(
                f"Tuning job {name} ended {job['status']}: {reason}",
                allowed_statuses=("Completed",),
                actual_status=job["status"],
                hint=f"See its trials: kennel tune describe {name}",
            )
        return self.attributes(ctx, name)

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        job: dict[str, Any] = ctx.api.get(f"{TUNING_JOBS}/{path_segment(physical)}")
        best = job.get("best_training_job") or {}
        return {
            "name": job["name"],
            "status": job["status"],
            "best_training_job": best.get("training_job_name"),
            "best_objective": (best.get("objective") or {}).get("value"),
        }

    def delete(self, ctx: StackContext, physical: str) -> None:
        _stop_job(ctx, self.waiter, TUNING_JOBS, physical, "tuning job")


def _tuning_progress(name: str, job: dict[str, Any] | None) -> str:
    if job is None:
        return f"{name}: starting"
    c = job["counters"]
    done = c["completed"] + c["failed"] + c["stopped"] + c["pruned"]
    total = job["resource_limits"]["max_training_jobs"]
    best = job.get("best_training_job")
    best_text = f", best {best['objective']['value']:.4g}" if best else ""
    return f"{name}: {done} of {total} trials done, {c['in_progress']} running{best_text}"


class TrainingHandler:
    """A training job; ``hyperparameters_from`` starts from a tuning job's best trial's
    hyperparameters (the block's own win)."""

    kind: ClassVar[str] = "training_jobs"

    def __init__(self, poll_seconds: float = 1.0, sleep: Sleep = time.sleep) -> None:
        self.waiter = _Waiter(poll_seconds, sleep)

    def references(self, block: Any) -> set[Address]:
        assert isinstance(block, TrainingBlock)
        found: set[Address] = set()
        if block.dataset:
            found.add(Address("datasets", block.dataset))
        if block.hyperparameters_from:
            found.add(Address("tuning_jobs", block.hyperparameters_from))
        return found

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = spec["name"]
        found = _get(ctx.api, f"{TRAINING_JOBS}/{path_segment(name)}")
        return _job_step(address, name, found, "training job")

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        name = step.physical
        path = f"{TRAINING_JOBS}/{path_segment(name)}"
        if step.action != "wait":
            body = _upload(ctx, step.spec)
            tuning = step.spec.get("hyperparameters_from")
            if tuning:
                body["hyperparameters"] = {
                    **_best_hyperparameters(ctx.api, tuning),
                    **step.spec.get("hyperparameters", {}),
                }
            # A conflict: a run interrupted before it heard back started it already.
            with contextlib.suppress(ConflictError):
                ctx.api.post(TRAINING_JOBS, body)
        job = self.waiter.until(
            ctx,
            f"training job {name}",
            lambda: _get(ctx.api, path),
            lambda info: info is None or info["status"] in JOB_ACTIVE,
            lambda info: _training_progress(name, info),
        )
        assert job is not None
        if job["status"] != "Completed":
            raise UnexpectedStatusError(
                f"Training job {name} ended {job['status']}: "
                f"{job.get('failure_reason') or job.get('status_message')}",
                allowed_statuses=("Completed",),
                actual_status=job["status"],
                hint=f"See its log: kennel jobs logs {name}",
            )
        return self.attributes(ctx, name)

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        job: dict[str, Any] = ctx.api.get(f"{TRAINING_JOBS}/{path_segment(physical)}")
        return {
            "name": job["name"],
            "status": job["status"],
            "model_uri": job.get("model_artifact_uri"),
        }

    def delete(self, ctx: StackContext, physical: str) -> None:
        _stop_job(ctx, self.waiter, TRAINING_JOBS, physical, "training job")


def _best_hyperparameters(api: KennelClient, tuning_job: str) -> dict[str, Any]:
    job: dict[str, Any] = api.get(f"{TUNING_JOBS}/{path_segment(tuning_job)}")
    best = job.get("best_training_job")
    if not best:
        raise ValidationError(
            f"Tuning job {tuning_job} has no best training job ({job['status']}).",
            hint=f"See its trials: kennel tune describe {tuning_job}",
        )
    return dict(best["hyperparameters"])


def _training_progress(name: str, job: dict[str, Any] | None) -> str:
    if job is None:
        return f"{name}: starting"
    message = job.get("status_message") or ""
    return f"{name}: {job['secondary_status']}" + (f" ({message})" if message else "")


# Models ---------------------------------------------------------------------------------


class ModelHandler:
    """A model from a stack training job (its model.tar.gz) or an artifact URI."""

    kind: ClassVar[str] = "models"

    def references(self, block: Any) -> set[Address]:
        assert isinstance(block, ModelBlock)
        return {Address("training_jobs", block.training_job)} if block.training_job else set()

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = spec["name"]
        if _get(ctx.api, f"{MODELS}/{path_segment(name)}") is None:
            return Step(address, "create", name, "does not exist")
        return Step(address, "none", name, "exists")

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        name = step.physical
        body = {k: v for k, v in step.spec.items() if k in ModelBlock.model_fields}
        body["name"] = name
        ctx.progress(f"{name}: checking the model and exporting ONNX")
        # A conflict: a run interrupted before it heard back made it already.
        with contextlib.suppress(ConflictError):
            ctx.api.post(MODELS, body)
        return self.attributes(ctx, name)

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        model: dict[str, Any] = ctx.api.get(f"{MODELS}/{path_segment(physical)}")
        return {"name": model["name"], "arn": model["arn"], "uri": model["artifact_uri"]}

    def delete(self, ctx: StackContext, physical: str) -> None:
        with contextlib.suppress(NotFoundError):
            ctx.api.delete(f"{MODELS}/{path_segment(physical)}")


# Endpoints ------------------------------------------------------------------------------


def config_name(
    endpoint: str, variants: list[dict[str, Any]], data_capture: dict[str, Any] | None = None
) -> str:
    """The endpoint config a stack makes for these variants (and data capture):
    ``{endpoint}-{hash8}``; without capture the hash is what it was before capture existed,
    so existing stacks see no change."""
    identity: dict[str, Any] = {"variants": variants}
    if data_capture is not None:
        identity["data_capture"] = data_capture
    return f"{endpoint}-{fingerprint(identity)[:8]}"


def _data_capture(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The block's data capture as the endpoint-configs API takes it (defaults filled in)."""
    raw = spec.get("data_capture")
    return None if raw is None else DataCaptureSpec.model_validate(raw).model_dump()


def _variants(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The block's variants as the endpoint-configs API takes them (defaults filled in)."""
    out = []
    for raw in spec["variants"]:
        variant = VariantBlock.model_validate(raw)
        out.append(
            {
                "variant_name": variant.variant_name,
                "model_name": variant.model,
                "instance_type": variant.instance_type,
                "initial_instance_count": variant.initial_instance_count,
                "initial_weight": variant.initial_weight,
            }
        )
    return out


def _is_stack_config(endpoint: str, name: str) -> bool:
    return re.fullmatch(rf"{re.escape(endpoint)}-[0-9a-f]{{8}}", name) is not None


def _pages(call: Callable[..., dict[str, Any]], key: str, **request: Any) -> Iterator[Any]:
    token: str | None = None
    while True:
        answer = call(**request, **({"NextToken": token} if token else {}))
        yield from answer.get(key, [])
        token = answer.get("NextToken")
        if not token:
            return


def _tracking(config: dict[str, Any] | None) -> dict[str, Any]:
    """A TargetTrackingScalingPolicyConfiguration reduced to what a stack sets."""
    config = config or {}
    reduced: dict[str, Any] = {
        "TargetValue": float(config.get("TargetValue", 0.0)),
        "ScaleOutCooldown": int(config.get("ScaleOutCooldown", 300)),
        "ScaleInCooldown": int(config.get("ScaleInCooldown", 300)),
        "DisableScaleIn": bool(config.get("DisableScaleIn", False)),
    }
    for key in ("PredefinedMetricSpecification", "CustomizedMetricSpecification"):
        if config.get(key):
            metric = dict(config[key])
            if "Dimensions" in metric:
                metric["Dimensions"] = sorted(
                    metric["Dimensions"], key=lambda d: (d["Name"], d["Value"])
                )
            reduced[key] = metric
    return reduced


class EndpointHandler:
    """An endpoint, the config made from its variants (``{endpoint}-{hash8}``, created if
    missing) and its variants' scaling. A changed config is rolled out by the server
    (blue/green: the new fleet is healthy before traffic moves); the old config the stack
    made is deleted once the endpoint has moved off it."""

    kind: ClassVar[str] = "endpoints"

    def __init__(self, poll_seconds: float = 0.5, sleep: Sleep = time.sleep) -> None:
        self.waiter = _Waiter(poll_seconds, sleep)

    def references(self, block: Any) -> set[Address]:
        assert isinstance(block, EndpointBlock)
        return {Address("models", v.model) for v in block.variants}

    # plan -----------------------------------------------------------------------------

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = address.name
        wanted = config_name(name, _variants(spec), _data_capture(spec))
        info = _get(ctx.api, f"{ENDPOINTS}/{path_segment(name)}")
        if info is None:
            return Step(address, "create", name, "does not exist")
        status = info["status"]
        if status == "Failed":
            return Step(
                address, "replace", name, f"Failed ({info.get('failure_reason')}): made again"
            )
        if status == "Deleting":
            return Step(address, "replace", name, "being deleted: made again")
        if status in ENDPOINT_BUSY:
            return Step(address, "wait", name, f"{status} (being changed)")
        changes: list[str] = []
        if info["config_name"] != wanted:
            changes.append(self._config_change(ctx, info["config_name"], wanted, spec))
        changes += self._scaling_changes(ctx, name, _scaling(spec))
        if changes:
            return Step(address, "update", name, "; ".join(changes))
        return Step(address, "none", name, "unchanged")

    def _config_change(
        self, ctx: StackContext, current: str, wanted: str, spec: dict[str, Any]
    ) -> str:
        have = _get(ctx.api, f"{CONFIGS}/{path_segment(current)}")
        old = {v["variant_name"]: v for v in (have or {}).get("variants", [])}
        details: list[str] = []
        for variant in _variants(spec):
            before = old.pop(variant["variant_name"], None)
            if before is None:
                details.append(f"variant {variant['variant_name']} added")
                continue
            for key, value in variant.items():
                if before.get(key) != value:
                    details.append(f"{variant['variant_name']} {key} {before.get(key)} -> {value}")
        details += [f"variant {v} removed" for v in old]
        capture = _data_capture(spec)
        if (have or {}).get("data_capture") != capture:
            details.append(f"data capture {(have or {}).get('data_capture')} -> {capture}")
        return f"config {current} -> {wanted}" + (f" ({'; '.join(details)})" if details else "")

    def _scaling_changes(self, ctx: StackContext, name: str, specs: list[ScalingSpec]) -> list[str]:
        aas = ctx.aws("application-autoscaling")
        targets = self._targets(aas, name)
        changes: list[str] = []
        for spec in specs:
            rid = spec.resource_id(name)
            target = targets.pop(rid, None)
            if target is None:
                changes.append(
                    f"scaling {spec.variant}: register {spec.min_capacity}..{spec.max_capacity}"
                )
                continue
            bounds = (target["MinCapacity"], target["MaxCapacity"])
            if bounds != (spec.min_capacity, spec.max_capacity):
                changes.append(
                    f"scaling {spec.variant} {bounds[0]}..{bounds[1]} -> "
                    f"{spec.min_capacity}..{spec.max_capacity}"
                )
            have = {
                p["PolicyName"]: p
                for p in _pages(
                    aas.describe_scaling_policies,
                    "ScalingPolicies",
                    ServiceNamespace=NAMESPACE,
                    ResourceId=rid,
                )
            }
            for policy in spec.policies:
                found = have.pop(policy.name, None)
                want = policy.put_request(name, spec.variant)
                if found is None:
                    changes.append(f"policy {policy.name}: add")
                elif _tracking(found.get("TargetTrackingScalingPolicyConfiguration")) != _tracking(
                    want["TargetTrackingScalingPolicyConfiguration"]
                ):
                    changes.append(f"policy {policy.name}: change")
            changes += [f"policy {p}: remove" for p in have]
        changes += [f"scaling {rid.rsplit('/', 1)[-1]}: deregister" for rid in targets]
        return changes

    @staticmethod
    def _targets(aas: Any, name: str) -> dict[str, dict[str, Any]]:
        prefix = resource_id(name, "")
        return {
            t["ResourceId"]: t
            for t in _pages(
                aas.describe_scalable_targets, "ScalableTargets", ServiceNamespace=NAMESPACE
            )
            if t["ResourceId"].startswith(prefix)
        }

    # apply ----------------------------------------------------------------------------

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        name = step.physical
        variants = _variants(step.spec)
        capture = _data_capture(step.spec)
        wanted = config_name(name, variants, capture)
        if _get(ctx.api, f"{CONFIGS}/{path_segment(wanted)}") is None:
            ctx.progress(f"creating endpoint config {wanted}")
            body: dict[str, Any] = {"name": wanted, "variants": variants}
            if capture is not None:
                body["data_capture"] = capture
            # A conflict: a run interrupted before it heard back made it already.
            with contextlib.suppress(ConflictError):
                ctx.api.post(CONFIGS, body)
        info = self._settled(ctx, name)
        if info is not None and info["status"] == "Failed":
            ctx.progress(f"deleting endpoint {name}, which Failed: {info.get('failure_reason')}")
            ctx.api.delete(f"{ENDPOINTS}/{path_segment(name)}")
            info = self._settled(ctx, name)
        if info is None:
            ctx.api.post(ENDPOINTS, {"name": name, "config_name": wanted})
            info = self._in_service(ctx, name, "creating")
        elif info["config_name"] != wanted:
            previous = info["config_name"]
            ctx.api.post(f"{ENDPOINTS}/{path_segment(name)}/update", {"config_name": wanted})
            info = self._in_service(ctx, name, f"updating to {wanted}")
            if info["config_name"] != wanted:
                raise UnexpectedStatusError(
                    f"Endpoint {name} did not move to {wanted}: "
                    f"{info.get('failure_reason') or 'the update was rolled back'}",
                    allowed_statuses=("InService",),
                    actual_status=info["status"],
                    hint=f"See kennel endpoints describe {name}; it still serves {previous}.",
                )
            if _is_stack_config(name, previous):
                self._delete_config(ctx, previous)
        self._apply_scaling(ctx, name, _scaling(step.spec))
        return self.attributes(ctx, name)

    def _settled(self, ctx: StackContext, name: str) -> dict[str, Any] | None:
        """The endpoint once no change is under way, or None when there is none."""
        return self.waiter.until(
            ctx,
            f"endpoint {name}",
            lambda: _get(ctx.api, f"{ENDPOINTS}/{path_segment(name)}"),
            lambda info: info is not None and info["status"] in ENDPOINT_BUSY,
            lambda info: _endpoint_progress(name, info),
        )

    def _in_service(self, ctx: StackContext, name: str, doing: str) -> dict[str, Any]:
        info = self._settled(ctx, name)
        if info is None or info["status"] != "InService":
            status = info["status"] if info else "gone"
            reason = (info or {}).get("failure_reason") or ""
            raise UnexpectedStatusError(
                f"Endpoint {name} is {status} after {doing}" + (f": {reason}" if reason else ""),
                allowed_statuses=("InService",),
                actual_status=status,
                hint=f"See kennel endpoints describe {name} and the server log.",
            )
        return info

    def _apply_scaling(self, ctx: StackContext, name: str, specs: list[ScalingSpec]) -> None:
        """As ``kennel endpoints scaling apply`` does, for every variant: bounds, its
        policies and no others; variants the block does not scale are deregistered."""
        for spec in specs:  # checked first: a bad spec changes nothing
            ctx.api.post(
                f"{ENDPOINTS}/{path_segment(name)}/scaling/check", spec.model_dump(mode="json")
            )
        aas = ctx.aws("application-autoscaling")
        targets = self._targets(aas, name)
        for spec in specs:
            ctx.progress(
                f"scaling {spec.variant}: {spec.min_capacity}..{spec.max_capacity} instances"
            )
            rid = spec.resource_id(name)
            targets.pop(rid, None)
            aas.register_scalable_target(**spec.register_request(name))
            for policy in spec.policies:
                aas.put_scaling_policy(**policy.put_request(name, spec.variant))
            wanted = {p.name for p in spec.policies}
            for found in list(
                _pages(
                    aas.describe_scaling_policies,
                    "ScalingPolicies",
                    ServiceNamespace=NAMESPACE,
                    ResourceId=rid,
                )
            ):
                if found["PolicyName"] not in wanted:
                    aas.delete_scaling_policy(
                        PolicyName=found["PolicyName"],
                        ServiceNamespace=NAMESPACE,
                        ResourceId=rid,
                        ScalableDimension=found["ScalableDimension"],
                    )
        for rid, target in targets.items():
            aas.deregister_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=target["ScalableDimension"],
            )

    # attributes and delete ----------------------------------------------------------------

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        info: dict[str, Any] = ctx.api.get(f"{ENDPOINTS}/{path_segment(physical)}")
        return {
            "name": info["name"],
            "arn": info["arn"],
            "status": info["status"],
            "config_name": info["config_name"],
            "invocation_url": f"{ctx.api.endpoint_url}/endpoints/{path_segment(physical)}"
            "/invocations",
        }

    def delete(self, ctx: StackContext, physical: str) -> None:
        """Scaling, then the endpoint (waiting until it is gone), then the configs the
        stack made for it."""
        name = physical
        aas = ctx.aws("application-autoscaling")
        for rid, target in self._targets(aas, name).items():
            try:
                aas.deregister_scalable_target(
                    ServiceNamespace=NAMESPACE,
                    ResourceId=rid,
                    ScalableDimension=target["ScalableDimension"],
                )
            except KennelError as error:
                if error.status != 400:
                    raise
        info = self._settled(ctx, name)
        if info is not None:
            ctx.progress(f"deleting endpoint {name}")
            with contextlib.suppress(NotFoundError):
                ctx.api.delete(f"{ENDPOINTS}/{path_segment(name)}")
            self._settled(ctx, name)
        configs = ctx.api.get(CONFIGS)["endpoint_configs"]
        for config in configs:
            if _is_stack_config(name, config["name"]):
                # One another endpoint uses (named like ours by chance) stays.
                with contextlib.suppress(ConflictError):
                    self._delete_config(ctx, config["name"])

    @staticmethod
    def _delete_config(ctx: StackContext, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            ctx.api.delete(f"{CONFIGS}/{path_segment(name)}")


def _scaling(spec: dict[str, Any]) -> list[ScalingSpec]:
    return [ScalingSpec.model_validate(s) for s in spec.get("scaling", [])]


def _endpoint_progress(name: str, info: dict[str, Any] | None) -> str:
    if info is None:
        return f"endpoint {name}: gone"
    variants = info.get("production_variants") or []
    healthy = sum(v["current_instance_count"] for v in variants)
    desired = sum(v["desired_instance_count"] for v in variants)
    counts = f", {healthy}/{desired} instances healthy" if variants else ""
    traffic = info.get("traffic")
    shares = ""
    if traffic:
        shares = " (" + ", ".join(f"{k} {v:.0%}" for k, v in traffic.items()) + ")"
    return f"endpoint {name}: {info['status']}{counts}{shares}"


def sagemaker_handlers() -> list[Handler]:
    return [
        DatasetHandler(),
        TuningHandler(),
        TrainingHandler(),
        ModelHandler(),
        EndpointHandler(),
    ]
