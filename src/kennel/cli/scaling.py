"""``kennel endpoints scaling`` and ``kennel endpoints activities``: autoscaling of variants.

Everything goes through a plain boto3 ``application-autoscaling`` client pointed at the
server (it speaks Application Auto Scaling's JSON API), signed with the same profile,
endpoint and region as every other command, so what the CLI does a boto3 script can do
too; ``--json`` prints AWS's own shapes. ``apply`` takes a :class:`ScalingSpec` file, the
same shape a stack file's ``scaling:`` block has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
import yaml
from rich.markup import escape

from kennel._client import path_segment
from kennel._errors import KennelError, NotFoundError, ValidationError
from kennel.cli._common import JsonOption, client
from kennel.cli._output import console, print_json
from kennel.cli.iam import AwsClient, _kv_table, _plain, _table, _when, aws_client
from kennel.endpoints._scaling_spec import (
    DEFAULT_COOLDOWN,
    NAMESPACE,
    PREDEFINED_METRICS,
    PolicySpec,
    ScalingSpec,
    resource_id,
    target_key,
)
from kennel.endpoints._spec import DEFAULT_VARIANT

app = typer.Typer(
    help="Autoscaling of endpoint variants: capacity bounds and target-tracking policies "
    "(Application Auto Scaling).",
    no_args_is_help=True,
)

Variant = Annotated[str, typer.Option("--variant", help="The production variant.")]
_STATUS_COLOURS = {"Successful": "green", "Failed": "red", "InProgress": "yellow"}


def _scaling() -> AwsClient:
    return aws_client("application-autoscaling")


def _spec_error(error: pydantic.ValidationError, where: str) -> ValidationError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
        for e in error.errors(include_url=False)
    )
    return ValidationError(f"{where}: {problems}")


# Commands ---------------------------------------------------------------------------------


@app.command("register")
def register(
    endpoint: str,
    min_capacity: Annotated[
        int, typer.Option("--min", help="Fewest instances (0: scale to zero).")
    ],
    max_capacity: Annotated[int, typer.Option("--max", help="Most instances (up to 20).")],
    variant: Variant = DEFAULT_VARIANT,
    as_json: JsonOption = False,
) -> None:
    """Register a variant for autoscaling, or change its bounds."""
    answer = _scaling().register_scalable_target(
        **target_key(endpoint, variant), MinCapacity=min_capacity, MaxCapacity=max_capacity
    )
    if as_json:
        print_json(answer)
        return
    console.print(
        f"Registered {resource_id(endpoint, variant)}: {min_capacity}..{max_capacity} instances."
    )
    console.print(
        f"Add a policy with: kennel endpoints scaling policy {endpoint} --name NAME --target 70"
    )


@app.command("policy")
def put_policy(
    endpoint: str,
    name: Annotated[str, typer.Option("--name", help="The policy's name.")],
    target: Annotated[float, typer.Option("--target", help="The metric value to keep.")],
    metric: Annotated[
        str,
        typer.Option(
            help="invocations-per-instance (per minute), model-latency (microseconds), "
            "cpu-utilization, memory-utilization, or a variant metric's name."
        ),
    ] = "invocations-per-instance",
    scale_out_cooldown: Annotated[
        int, typer.Option(help="Seconds after a scale-out before another.")
    ] = DEFAULT_COOLDOWN,
    scale_in_cooldown: Annotated[
        int, typer.Option(help="Seconds after a scale-in before another.")
    ] = DEFAULT_COOLDOWN,
    disable_scale_in: Annotated[
        bool, typer.Option("--disable-scale-in", help="Only ever add instances.")
    ] = False,
    variant: Variant = DEFAULT_VARIANT,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a target-tracking policy on a registered variant."""
    try:
        policy = PolicySpec(
            name=name,
            target_value=target,
            metric=metric,
            scale_out_cooldown=scale_out_cooldown,
            scale_in_cooldown=scale_in_cooldown,
            disable_scale_in=disable_scale_in,
        )
    except pydantic.ValidationError as error:
        raise _spec_error(error, "Invalid policy") from None
    answer = _scaling().put_scaling_policy(**policy.put_request(endpoint, variant))
    if as_json:
        print_json(_plain(answer))
        return
    console.print(f"Policy {name} on {resource_id(endpoint, variant)}: {_tracks(policy)}.")
    console.print(f"  {answer['PolicyARN']}", highlight=False, soft_wrap=True)


@app.command("apply")
def apply(
    endpoint: str,
    file: Annotated[Path, typer.Option("--file", "-f", help="A scaling spec (YAML or JSON).")],
    as_json: JsonOption = False,
) -> None:
    """Bring a variant's scaling to a spec file: bounds, its policies, no others.

    The file: {variant?, min_capacity, max_capacity, policies: [{name, target_value,
    metric?, statistic?, scale_out_cooldown?, scale_in_cooldown?, disable_scale_in?}]}.
    """
    spec = load_spec(file)
    scaling = _scaling()
    key = target_key(endpoint, spec.variant)
    scaling.register_scalable_target(**spec.register_request(endpoint))
    put = [
        scaling.put_scaling_policy(**p.put_request(endpoint, spec.variant)) for p in spec.policies
    ]
    wanted = {p.name for p in spec.policies}
    removed = [
        p["PolicyName"]
        for p in _policies(scaling, key["ResourceId"])
        if p["PolicyName"] not in wanted
    ]
    for name in removed:
        scaling.delete_scaling_policy(PolicyName=name, **key)
    if as_json:
        print_json(
            {
                "ResourceId": key["ResourceId"],
                "MinCapacity": spec.min_capacity,
                "MaxCapacity": spec.max_capacity,
                "PolicyARNs": [p["PolicyARN"] for p in put],
                "DeletedPolicies": removed,
            }
        )
        return
    console.print(
        f"Applied {file.name} to {key['ResourceId']}: {spec.min_capacity}..{spec.max_capacity} "
        "instances."
    )
    for policy in spec.policies:
        console.print(f"  policy {policy.name}: {_tracks(policy)}")
    for name in removed:
        console.print(f"  deleted policy {name} (not in the file)")


def load_spec(file: Path) -> ScalingSpec:
    """A :class:`ScalingSpec` from a YAML or JSON file, or a ValidationError naming the fault."""
    if not file.is_file():
        raise ValidationError(f"{file} is not a file.", hint="Give a scaling spec (YAML or JSON).")
    try:
        document = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{file} is not valid YAML or JSON: {exc}") from None
    try:
        return ScalingSpec.model_validate(document)
    except pydantic.ValidationError as error:
        raise _spec_error(error, f"Invalid scaling spec {file}") from None


@app.command("describe")
def describe(
    endpoint: str,
    variant: Annotated[
        str | None, typer.Option("--variant", help="Only this variant (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a variant's scaling: bounds, suspensions, policies, current instances."""
    scaling = _scaling()
    targets = _targets(scaling, endpoint, variant)
    if not targets:
        which = f"variant {variant} of endpoint {endpoint}" if variant else f"endpoint {endpoint}"
        raise NotFoundError(
            f"No scalable target is registered for {which}.",
            hint=f"Register one: kennel endpoints scaling register {endpoint} --min 1 --max 3",
        )
    described: list[dict[str, Any]] = [
        {"ScalableTarget": t, "ScalingPolicies": _policies(scaling, t["ResourceId"])}
        for t in targets
    ]
    if as_json:
        print_json(_plain(described))
        return
    counts = _instance_counts(endpoint)
    for entry in described:
        _show_target(entry["ScalableTarget"], entry["ScalingPolicies"], counts)


@app.command("delete-policy")
def delete_policy(
    endpoint: str,
    name: Annotated[str, typer.Option("--name", help="The policy's name.")],
    variant: Variant = DEFAULT_VARIANT,
) -> None:
    """Delete a scaling policy."""
    _scaling().delete_scaling_policy(PolicyName=name, **target_key(endpoint, variant))
    console.print(f"Deleted policy {name} of {resource_id(endpoint, variant)}.")


@app.command("deregister")
def deregister(endpoint: str, variant: Variant = DEFAULT_VARIANT) -> None:
    """Stop autoscaling a variant (its policies go too; its instance count stays)."""
    _scaling().deregister_scalable_target(**target_key(endpoint, variant))
    console.print(f"Deregistered {resource_id(endpoint, variant)}; its policies are deleted.")


def activities(
    endpoint: str,
    variant: Annotated[
        str | None, typer.Option("--variant", help="Only this variant (default: all).")
    ] = None,
    max_items: Annotated[int, typer.Option("--max", min=1, help="Newest N activities.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Scaling activities of an endpoint's variants, newest first."""
    found = list(_activities(_scaling(), endpoint, variant, max_items))
    if as_json:
        print_json(_plain(found))
        return
    if not found:
        console.print(f"No scaling activities for {endpoint} yet.")
        return
    table = _table("start", "status", "description", "cause")
    for activity in found:
        status = activity["StatusCode"]
        text = f"[{_STATUS_COLOURS.get(status, 'white')}]{status}[/]"
        if activity.get("StatusMessage"):
            text += f": {escape(activity['StatusMessage'])}"
        description = activity["Description"]
        if not variant:
            description = f"{activity['ResourceId'].rsplit('/', 1)[-1]}: {description}"
        table.add_row(
            _when(activity["StartTime"]), text, escape(description), escape(activity["Cause"])
        )
    console.print(table)


# Helpers ----------------------------------------------------------------------------------


def _targets(scaling: AwsClient, endpoint: str, variant: str | None) -> list[dict[str, Any]]:
    if variant is not None:
        ids = [resource_id(endpoint, variant)]
        return list(
            scaling.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=ids)[
                "ScalableTargets"
            ]
        )
    prefix = resource_id(endpoint, "")
    return [
        t
        for t in _pages(scaling, "describe_scalable_targets", "ScalableTargets")
        if t["ResourceId"].startswith(prefix)
    ]


def _policies(scaling: AwsClient, resource: str) -> list[dict[str, Any]]:
    return list(
        _pages(scaling, "describe_scaling_policies", "ScalingPolicies", ResourceId=resource)
    )


def _activities(
    scaling: AwsClient, endpoint: str, variant: str | None, limit: int
) -> Iterator[dict[str, Any]]:
    """Newest first; all of the endpoint's variants unless one is named (those of variants
    no longer registered included, which is why this filters rather than asks per target)."""
    if variant is not None:
        found = _pages(
            scaling,
            "describe_scaling_activities",
            "ScalingActivities",
            ResourceId=resource_id(endpoint, variant),
        )
    else:
        prefix = resource_id(endpoint, "")
        found = (
            a
            for a in _pages(scaling, "describe_scaling_activities", "ScalingActivities")
            if a["ResourceId"].startswith(prefix)
        )
    for count, activity in enumerate(found):
        if count == limit:
            return
        yield activity


def _pages(scaling: AwsClient, operation: str, key: str, **filters: Any) -> Iterator[Any]:
    token: str | None = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = getattr(scaling, operation)(ServiceNamespace=NAMESPACE, **filters, **extra)
        yield from page[key]
        token = page.get("NextToken")
        if not token:
            return


def _instance_counts(endpoint: str) -> dict[str, tuple[int, int]]:
    """Variant -> (current healthy, desired) instances; empty when the endpoint is gone."""
    try:
        with client() as api:
            info = api.get(f"/api/v1/endpoints/{path_segment(endpoint)}")
    except KennelError:
        return {}
    return {
        v["variant_name"]: (v["current_instance_count"], v["desired_instance_count"])
        for v in info.get("production_variants", [])
    }


def _show_target(
    target: dict[str, Any], policies: list[dict[str, Any]], counts: dict[str, tuple[int, int]]
) -> None:
    variant = target["ResourceId"].rsplit("/", 1)[-1]
    table = _kv_table()
    table.add_row("resource", target["ResourceId"])
    table.add_row("capacity", f"{target['MinCapacity']}..{target['MaxCapacity']} instances")
    if variant in counts:
        current, desired = counts[variant]
        table.add_row("instances", f"{current} healthy of {desired} desired")
    suspended = [k for k, v in (target.get("SuspendedState") or {}).items() if v]
    if suspended:
        table.add_row("suspended", ", ".join(suspended))
    table.add_row("registered", _when(target["CreationTime"]))
    table.add_row("arn", target["ScalableTargetARN"])
    console.print(table)
    if not policies:
        console.print(
            "  no policies: add one with kennel endpoints scaling policy "
            f"{target['ResourceId'].split('/')[1]} --variant {variant} --name NAME --target 70"
        )
        return
    listing = _table("policy", "metric", "target", "out/in cooldown", "scale in")
    for policy in policies:
        config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
        listing.add_row(
            policy["PolicyName"],
            _metric_text(config),
            f"{config.get('TargetValue', 0):g}",
            f"{config.get('ScaleOutCooldown', DEFAULT_COOLDOWN)} s / "
            f"{config.get('ScaleInCooldown', DEFAULT_COOLDOWN)} s",
            "disabled" if config.get("DisableScaleIn") else "yes",
        )
    console.print(listing)


def _metric_text(config: dict[str, Any]) -> str:
    predefined = config.get("PredefinedMetricSpecification")
    if predefined:
        kind = predefined.get("PredefinedMetricType", "")
        return f"{PREDEFINED_METRICS.get(kind, kind)} (per minute)"
    custom = config.get("CustomizedMetricSpecification") or {}
    return f"{custom.get('MetricName', '?')} ({custom.get('Statistic', '?')})"


def _tracks(policy: PolicySpec) -> str:
    scale_in = "no scale-in" if policy.disable_scale_in else f"in {policy.scale_in_cooldown} s"
    return (
        f"keep {policy.metric} at {policy.target_value:g} (cooldowns out "
        f"{policy.scale_out_cooldown} s, {scale_in})"
    )
