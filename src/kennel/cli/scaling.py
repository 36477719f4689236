"""``kennel endpoints scaling`` and ``kennel endpoints activities``: autoscaling of variants.

Everything AWS has goes through a plain boto3 ``application-autoscaling`` client pointed
at the server (it speaks Application Auto Scaling's JSON API), signed with the same
profile, endpoint and region as every other command, so what the CLI does a boto3 script
can do too; ``--json`` prints AWS's own shapes. ``apply`` takes a :class:`ScalingSpec`
file, the same shape a stack file's ``scaling:`` block has.

What AWS keeps elsewhere or does not have comes from kennel's own API
(``/api/v1/endpoints/{name}/scaling``): the instance counts and the alarms ``describe``
shows beside the target, and ``simulate``, which replays recorded metrics through a spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
import yaml
from rich.markup import escape

from kennel._client import path_segment
from kennel._errors import NotFoundError, ValidationError
from kennel.cli._aws import AwsClient, aws_client, parse_duration
from kennel.cli._common import JsonOption, client
from kennel.cli._output import console, fold_table, kv_table, plain, print_json, when, write_page
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
_ALARM_COLOURS = {"OK": "green", "ALARM": "red", "INSUFFICIENT_DATA": "yellow"}
_RECENT_SHOWN = 5
"""Alarm values a table shows (the newest); ``--json`` has every one the alarm holds."""


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
        print_json(plain(answer))
        return
    console.print(f"Policy {name} on {resource_id(endpoint, variant)}: {_tracks(policy)}.")
    console.print(f"  {answer['PolicyARN']}", highlight=False, soft_wrap=True)


@app.command("apply")
def apply(
    endpoint: str,
    file: Annotated[Path, typer.Option("--file", "-f", help="A scaling spec (YAML or JSON).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the spec against the endpoint; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring a variant's scaling to a spec file: bounds, its policies, no others.

    The file: {variant?, min_capacity, max_capacity, policies: [{name, target_value,
    metric?, statistic?, scale_out_cooldown?, scale_in_cooldown?, disable_scale_in?}]}.
    The whole spec is checked first (the endpoint, the variant, each policy's metric), so
    a bad one changes nothing.
    """
    spec = load_spec(file)
    with client() as api:
        checked = api.post(
            f"/api/v1/endpoints/{path_segment(endpoint)}/scaling/check",
            spec.model_dump(mode="json"),
        )
    if dry_run:
        if as_json:
            print_json(checked)
            return
        console.print(
            f"{file.name} would apply to {checked['resource_id']}: {spec.min_capacity}.."
            f"{spec.max_capacity} instances, {len(spec.policies)} polic"
            f"{'y' if len(spec.policies) == 1 else 'ies'}. Nothing was changed."
        )
        return
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
    """Show a variant's scaling: bounds, suspensions, policies with their alarms, instances.

    ``--json`` prints AWS's target and policies, plus ``Alarms``: each policy's alarms as
    the autoscaler holds them now (state, threshold, recent values).
    """
    scaling = _scaling()
    targets = _targets(scaling, endpoint, variant)
    if not targets:
        which = f"variant {variant} of endpoint {endpoint}" if variant else f"endpoint {endpoint}"
        raise NotFoundError(
            f"No scalable target is registered for {which}.",
            hint=f"Register one: kennel endpoints scaling register {endpoint} --min 1 --max 3",
        )
    views = _kennel_views(endpoint)
    described: list[dict[str, Any]] = [
        {
            "ScalableTarget": t,
            "ScalingPolicies": _policies(scaling, t["ResourceId"]),
            "Alarms": _alarms(views.get(t["ResourceId"])),
        }
        for t in targets
    ]
    if as_json:
        print_json(plain(described))
        return
    for entry in described:
        target = entry["ScalableTarget"]
        _show_target(target, entry["ScalingPolicies"], views.get(target["ResourceId"]))
        if entry["ScalingPolicies"]:
            _show_alarms(entry["Alarms"])


@app.command("simulate")
def simulate(
    endpoint: str,
    policy: Annotated[
        Path,
        typer.Option(
            "--policy", "-f", help="A scaling spec (YAML or JSON), as `apply --file` takes."
        ),
    ],
    since: Annotated[
        str, typer.Option("--from", help="Replay the metrics of the last 90s, 15m, 1h, 7d...")
    ] = "1h",
    startup_periods: Annotated[
        int,
        typer.Option(
            "--startup-periods", min=0, help="Metric periods a new instance takes to serve."
        ),
    ] = 0,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an interactive chart (HTML page).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """What a scaling spec would have done: replay the variant's recorded metrics through it.

    Nothing changes on the endpoint. The spec's policies are checked as `apply` would check
    them; the replay starts from the instance count recorded at its first period.
    """
    spec = load_spec(policy)
    body = {
        "spec": spec.model_dump(mode="json"),
        "since_seconds": parse_duration(since, "--from"),
        "startup_periods": startup_periods,
    }
    path = f"/api/v1/endpoints/{path_segment(endpoint)}/scaling/simulate"
    with client() as api:
        answer = api.post(path, body)
        if html is not None:
            # A second replay, rendered by the server: its window ends a moment later,
            # which at most adds a period the text chart did not have.
            page = api.request("POST", path, json_body=body, params={"format": "html"})
            write_page(html, page.text)
    if as_json:
        print_json(answer["result"])
        return
    console.out(answer["chart"], highlight=False, end="")
    _show_decisions(answer["result"]["decisions"])
    if html is not None:
        console.print(f"Wrote the interactive chart to {escape(str(html))}.", highlight=False)


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
        print_json(plain(found))
        return
    if not found:
        console.print(f"No scaling activities for {endpoint} yet.")
        return
    table = fold_table("start", "status", "description", "cause")
    for activity in found:
        status = activity["StatusCode"]
        text = f"[{_STATUS_COLOURS.get(status, 'white')}]{status}[/]"
        if activity.get("StatusMessage"):
            text += f": {escape(activity['StatusMessage'])}"
        description = activity["Description"]
        if not variant:
            description = f"{activity['ResourceId'].rsplit('/', 1)[-1]}: {description}"
        table.add_row(
            when(activity["StartTime"]), text, escape(description), escape(activity["Cause"])
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


def _kennel_views(endpoint: str) -> dict[str, dict[str, Any]]:
    """Resource ID -> kennel's view of that variant (instances, alarms); empty when the
    endpoint is gone (its targets stay registered until deregistered, as on AWS)."""
    try:
        with client() as api:
            status = api.get(f"/api/v1/endpoints/{path_segment(endpoint)}/scaling")
    except NotFoundError:
        return {}
    return {view["resource_id"]: view for view in status["variants"]}


def _alarms(view: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every alarm of a variant's policies, in policy order (each names its policy)."""
    if view is None:
        return []
    return [alarm for policy in view["policies"] for alarm in policy["alarms"]]


def _show_target(
    target: dict[str, Any], policies: list[dict[str, Any]], view: dict[str, Any] | None
) -> None:
    variant = target["ResourceId"].rsplit("/", 1)[-1]
    table = kv_table()
    table.add_row("resource", target["ResourceId"])
    table.add_row("capacity", f"{target['MinCapacity']}..{target['MaxCapacity']} instances")
    if view is not None and view["desired_instances"] is not None:
        table.add_row(
            "instances",
            f"{view['in_service_instances']} healthy of {view['desired_instances']} desired",
        )
    suspended = [k for k, v in (target.get("SuspendedState") or {}).items() if v]
    if suspended:
        table.add_row("suspended", ", ".join(suspended))
    table.add_row("registered", when(target["CreationTime"]))
    table.add_row("arn", target["ScalableTargetARN"])
    console.print(table)
    if not policies:
        console.print(
            "  no policies: add one with kennel endpoints scaling policy "
            f"{target['ResourceId'].split('/')[1]} --variant {variant} --name NAME --target 70"
        )
        return
    listing = fold_table("policy", "metric", "target", "out/in cooldown", "scale in")
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


def _show_alarms(alarms: list[dict[str, Any]]) -> None:
    """The policies' alarms with their state in colour: what the next period acts on.

    An alarm shows as its kind: with the policy, that is how an activity's cause names
    it, and the full name (``--json`` has it) would fold over several lines.
    """
    if not alarms:
        console.print(
            "  alarms: not evaluated yet (the autoscaler reads new policies at the next "
            "metric period)"
        )
        return
    table = fold_table("policy", "alarm", "state", "condition", "recent values (oldest first)")
    for alarm in alarms:
        state = alarm["state"]
        sign = ">" if alarm["comparison"] == "GreaterThanThreshold" else "<"
        periods = alarm["evaluation_periods"]
        table.add_row(
            escape(alarm["policy_name"]),
            alarm["alarm"],
            f"[{_ALARM_COLOURS.get(state, 'white')}]{state}[/]",
            f"{escape(alarm['metric'])} {sign} {alarm['threshold']:g} for {periods} "
            f"period{'s' if periods != 1 else ''}",
            _recent(alarm["recent_values"]),
        )
    console.print(table)


def _recent(values: list[float | None]) -> str:
    shown = " ".join("-" if v is None else f"{v:.4g}" for v in values[-_RECENT_SHOWN:])
    return f"... {shown}" if len(values) > _RECENT_SHOWN else shown or "-"


def _show_decisions(decisions: list[dict[str, Any]]) -> None:
    """The decisions as the scaling activities they would have been."""
    if not decisions:
        return
    table = fold_table("time (UTC)", "description", "cause")
    for decision in decisions:
        moment = datetime.fromtimestamp(decision["time"], UTC)
        table.add_row(
            moment.strftime("%Y-%m-%d %H:%M:%S"),
            escape(decision["description"]),
            escape(decision["cause"]),
        )
    console.print(table)


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
