"""``kennel models``, ``kennel endpoint-configs``, ``kennel endpoints``, ``deploy``, ``invoke``."""

from __future__ import annotations

import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kennel._client import KennelClient, path_segment
from kennel._errors import KennelError, NotFoundError, ValidationError
from kennel.cli._common import JsonOption, client, pairs
from kennel.cli._output import console, err_console, human_bytes, print_json

models_app = typer.Typer(help="Models: a model.tar.gz (from a job or a file) ready to serve.")
configs_app = typer.Typer(help="Endpoint configs: production variants (model, instances, weight).")
endpoints_app = typer.Typer(help="Endpoints: create, update (safe rollouts), delete, metrics.")

MODELS = "/api/v1/models"
CONFIGS = "/api/v1/endpoint-configs"
ENDPOINTS = "/api/v1/endpoints"
BUSY = ("Creating", "Updating", "RollingBack", "SystemUpdating", "Deleting")
POLL_SECONDS = 0.5
WAIT_LIMIT_SECONDS = 3600.0


# Models -------------------------------------------------------------------------------


@models_app.command("create")
def create_model(
    name: str,
    from_job: Annotated[
        str | None, typer.Option("--from-job", help="A Completed training job's model.")
    ] = None,
    artifact: Annotated[
        Path | None, typer.Option(help="A model.tar.gz (or a model folder) on this machine.")
    ] = None,
    entry_point: Annotated[
        Path | None,
        typer.Option(help="An inference.py to put in the model's code/ (handler functions)."),
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="Environment NAME=value, repeatable.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a model from a training job or a model.tar.gz (ONNX is exported and checked)."""
    environment = pairs(env, "--env")
    with client() as api:
        info = _create_model(api, name, from_job, artifact, entry_point, environment)
    _show_model(info, as_json)


def _create_model(
    api: KennelClient,
    name: str,
    job: str | None,
    artifact: Path | None,
    entry_point: Path | None,
    environment: dict[str, str],
) -> dict[str, Any]:
    if (job is None) == (artifact is None):
        raise ValidationError(
            "Give exactly one of --from-job and --artifact.",
            hint="kennel models create NAME --from-job JOB, or --artifact model.tar.gz.",
        )
    body: dict[str, Any] = {"name": name, "environment": environment}
    if job is not None:
        if entry_point is not None:
            raise ValidationError(
                "--entry-point goes with --artifact.",
                hint="A job's model already has its code/inference.py.",
            )
        body["training_job"] = job
    else:
        assert artifact is not None
        body["artifact_uri"] = _upload_model(api, artifact, entry_point)
    with err_console.status(f"Creating model {name} (checking it, exporting ONNX)..."):
        info: dict[str, Any] = api.post(MODELS, body)
    return info


def _upload_model(api: KennelClient, artifact: Path, entry_point: Path | None) -> str:
    """Upload the archive, first repacked with code/inference.py when one is given."""
    if not artifact.exists():
        raise ValidationError(f"{artifact} does not exist.", hint="Give a model.tar.gz or folder.")
    if entry_point is not None and not entry_point.is_file():
        raise ValidationError(f"{entry_point} is not a file.", hint="Give your inference.py.")
    with tempfile.TemporaryDirectory(prefix="kennel-model-") as tmp:
        target = artifact
        if artifact.is_dir() or entry_point is not None:
            target = Path(tmp) / "model.tar.gz"
            _repack(artifact, entry_point, target)
        with err_console.status(
            f"Uploading {artifact.name} ({human_bytes(target.stat().st_size)})"
        ):
            uri: str = api.request("PUT", "/api/v1/uploads/model.tar.gz", upload=target).json()[
                "uri"
            ]
    return uri


def _repack(source: Path, entry_point: Path | None, target: Path) -> None:
    with tarfile.open(target, "w:gz") as out:
        if source.is_dir():
            for item in sorted(source.iterdir()):
                if entry_point is None or item.name != "code":
                    out.add(item, arcname=item.name)
        else:
            with tarfile.open(source, "r:*") as original:
                for member in original.getmembers():
                    if entry_point is not None and member.name.lstrip("./").startswith("code/"):
                        continue
                    extracted = original.extractfile(member) if member.isfile() else None
                    out.addfile(member, extracted)
        if entry_point is not None:
            out.add(entry_point, arcname="code/inference.py")


@models_app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """List models."""
    with client() as api:
        models = api.get(MODELS)["models"]
    if as_json:
        print_json(models)
        return
    if not models:
        console.print("No models yet. Create one with: kennel models create NAME --from-job JOB")
        return
    table = Table("name", "kind", "onnx", "source", "created")
    for m in models:
        onnx = (m["details"].get("onnx") or {}).get("used")
        table.add_row(
            m["name"],
            m["kind"],
            "yes" if onnx else "no",
            m["source"],
            m["created_at"][:19].replace("T", " "),
        )
    console.print(table)


@models_app.command("describe")
def describe_model(name: str, as_json: JsonOption = False) -> None:
    """Show a model."""
    with client() as api:
        _show_model(api.get(f"{MODELS}/{path_segment(name)}"), as_json)


@models_app.command("delete")
def delete_model(name: str) -> None:
    """Delete a model (refused while an endpoint uses it)."""
    with client() as api:
        api.delete(f"{MODELS}/{path_segment(name)}")
    console.print(f"Deleted model {name}.")


def _show_model(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    table = _kv_table()
    table.add_row("name", info["name"])
    table.add_row("arn", info["arn"])
    table.add_row("kind", info["kind"])
    table.add_row("source", info["source"])
    details = info["details"]
    if details.get("arch"):
        table.add_row("network", f"{details['arch']}, {details['num_classes']} classes")
    onnx = details.get("onnx") or {}
    if onnx.get("used"):
        table.add_row("onnx", f"exported, max |diff| vs PyTorch {onnx['max_abs_diff']:.2e}")
    elif onnx:
        table.add_row("onnx", f"[yellow]not used[/]: {onnx.get('error')}")
    if "size_bytes" in details:
        table.add_row("size", human_bytes(details["size_bytes"]))
    for key, value in sorted(info["environment"].items()):
        table.add_row(f"  {key}", value)
    console.print(table)


# Endpoint configs -----------------------------------------------------------------------


@configs_app.command("create")
def create_config(
    name: str,
    variant: Annotated[
        list[str],
        typer.Option(
            "--variant",
            "-v",
            help="model=M[,name=AllTraffic][,instance-type=ml.m5.large][,count=1][,weight=1]",
        ),
    ],
    capture: CaptureOption = None,
    capture_options: CaptureOptionsOption = None,
    capture_max_bytes: CaptureMaxBytesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an endpoint config with one or more production variants."""
    variants = [_variant(text) for text in variant]
    body: dict[str, Any] = {"name": name, "variants": variants}
    data_capture = _data_capture(capture, capture_options, capture_max_bytes)
    if data_capture is not None:
        body["data_capture"] = data_capture
    with client() as api:
        info = api.post(CONFIGS, body)
    _show_config(info, as_json)


CaptureOption = Annotated[
    int | None,
    typer.Option(
        "--capture",
        min=0,
        max=100,
        help="Capture this percentage of requests (data capture, for model monitoring).",
    ),
]
CaptureOptionsOption = Annotated[
    str | None,
    typer.Option("--capture-options", help="What to capture: Input, Output or Input,Output."),
]
CaptureMaxBytesOption = Annotated[
    int | None,
    typer.Option(
        "--capture-max-bytes",
        min=0,
        help="Payloads above this many bytes are stored by reference (default 1 MiB).",
    ),
]


def _data_capture(
    percentage: int | None, options: str | None, max_bytes: int | None
) -> dict[str, Any] | None:
    """The config's ``data_capture`` block from the CLI options; None: no capture."""
    if percentage is None:
        if options is not None or max_bytes is not None:
            raise ValidationError(
                "--capture-options and --capture-max-bytes need --capture PCT.",
                hint="e.g. --capture 20 --capture-options Input,Output",
            )
        return None
    block: dict[str, Any] = {"enable_capture": True, "sampling_percentage": percentage}
    if options is not None:
        names = {"input": "Input", "output": "Output"}
        parts = [p.strip().lower() for p in options.split(",") if p.strip()]
        if not parts or any(p not in names for p in parts):
            raise ValidationError(
                f"--capture-options {options!r} must be Input, Output or Input,Output."
            )
        block["capture_options"] = sorted({names[p] for p in parts})
    if max_bytes is not None:
        block["max_payload_bytes"] = max_bytes
    return block


def _capture_text(data_capture: dict[str, Any] | None) -> str:
    if not data_capture or not data_capture.get("enable_capture", True):
        return "off"
    return (
        f"{data_capture['sampling_percentage']}% of requests, "
        f"{'+'.join(data_capture['capture_options'])}, "
        f"payloads over {human_bytes(data_capture['max_payload_bytes'])} by reference"
    )


def _variant(text: str) -> dict[str, Any]:
    keys = {
        "model": "model_name",
        "name": "variant_name",
        "instance-type": "instance_type",
        "count": "initial_instance_count",
        "weight": "initial_weight",
    }
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in keys:
            raise ValidationError(
                f"--variant part {part!r} is not one of {', '.join(keys)} = value.",
                hint="e.g. --variant model=dogs,instance-type=ml.m5.large,count=2",
            )
        out[keys[key.strip()]] = value.strip()
    if "model_name" not in out:
        raise ValidationError(f"--variant {text!r} needs model=NAME.")
    return out


@configs_app.command("list")
def list_configs(as_json: JsonOption = False) -> None:
    """List endpoint configs."""
    with client() as api:
        configs = api.get(CONFIGS)["endpoint_configs"]
    if as_json:
        print_json(configs)
        return
    if not configs:
        console.print(
            "No endpoint configs yet. Create one with: kennel endpoint-configs create NAME "
            "--variant model=MODEL (or kennel deploy JOB --name NAME)"
        )
        return
    table = Table("name", "variants", "created")
    for c in configs:
        table.add_row(c["name"], _variants_text(c["variants"]), c["created_at"][:19])
    console.print(table)


@configs_app.command("describe")
def describe_config(name: str, as_json: JsonOption = False) -> None:
    """Show an endpoint config."""
    with client() as api:
        _show_config(api.get(f"{CONFIGS}/{path_segment(name)}"), as_json)


@configs_app.command("delete")
def delete_config(name: str) -> None:
    """Delete an endpoint config (refused while an endpoint uses it)."""
    with client() as api:
        api.delete(f"{CONFIGS}/{path_segment(name)}")
    console.print(f"Deleted endpoint config {name}.")


def _show_config(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    table = _kv_table()
    table.add_row("name", info["name"])
    table.add_row("arn", info["arn"])
    table.add_row("variants", _variants_text(info["variants"]))
    table.add_row("data capture", _capture_text(info.get("data_capture")))
    console.print(table)


def _variants_text(variants: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{v['variant_name']}: {v['model_name']} on {v['initial_instance_count']} x "
        f"{v['instance_type']} (weight {v['initial_weight']:g})"
        for v in variants
    )


# Endpoints --------------------------------------------------------------------------------


@endpoints_app.command("create")
def create_endpoint(
    name: str,
    config: Annotated[str, typer.Option("--config", help="The endpoint config to run.")],
    wait: Annotated[bool, typer.Option(help="Wait until InService (or Failed).")] = True,
    as_json: JsonOption = False,
) -> None:
    """Create an endpoint from an endpoint config."""
    with client() as api:
        info = api.post(ENDPOINTS, {"name": name, "config_name": config})
        if wait:
            info = _wait(api, name, "Creating endpoint")
    _finish(info, as_json)


@endpoints_app.command("update")
def update_endpoint(
    name: str,
    config: Annotated[str, typer.Option("--config", help="The new endpoint config.")],
    strategy: Annotated[
        str, typer.Option(help="all-at-once, canary or linear traffic shifting.")
    ] = "all-at-once",
    canary_percent: Annotated[float, typer.Option(help="Canary traffic share.")] = 10.0,
    linear_step_percent: Annotated[float, typer.Option(help="Linear step size.")] = 25.0,
    wait_seconds: Annotated[
        float, typer.Option(help="Seconds at each step (and baking after the last).")
    ] = 0.0,
    max_error_rate: Annotated[
        float | None, typer.Option(help="Roll back when the new fleet's 5XX rate exceeds this.")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Roll back when the new fleet's p90 latency exceeds it.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the update ends.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Move an endpoint to a new config: new fleet first, then traffic, with auto rollback."""
    deployment: dict[str, Any] = {
        "type": strategy,
        "canary_percent": canary_percent,
        "linear_step_percent": linear_step_percent,
        "wait_seconds": wait_seconds,
    }
    if max_error_rate is not None or max_latency_ms is not None:
        deployment["alarms"] = {"max_error_rate": max_error_rate, "max_latency_ms": max_latency_ms}
    with client() as api:
        info = api.post(
            f"{ENDPOINTS}/{path_segment(name)}/update",
            {"config_name": config, "deployment": deployment},
        )
        if wait:
            info = _wait(api, name, f"Updating {name} to {config}")
    _finish(info, as_json)
    if info.get("last_deployment", {}).get("status") == "RolledBack":
        raise typer.Exit(1)


@endpoints_app.command("list")
def list_endpoints(as_json: JsonOption = False) -> None:
    """List endpoints."""
    with client() as api:
        endpoints = api.get(ENDPOINTS)["endpoints"]
    if as_json:
        print_json(endpoints)
        return
    if not endpoints:
        console.print("No endpoints yet. Deploy one with: kennel deploy JOB --name NAME")
        return
    table = Table("name", "status", "config", "instances", "modified")
    for e in endpoints:
        table.add_row(
            e["name"],
            _status_text(e["status"]),
            e["config_name"],
            _instances_text(e["production_variants"]),
            e["modified_at"][:19].replace("T", " "),
        )
    console.print(table)


@endpoints_app.command("describe")
def describe_endpoint(name: str, as_json: JsonOption = False) -> None:
    """Show an endpoint: state, variants, instances, last deployment."""
    with client() as api:
        _show_endpoint(api.get(f"{ENDPOINTS}/{path_segment(name)}"), as_json)


@endpoints_app.command("delete")
def delete_endpoint(
    name: str, wait: Annotated[bool, typer.Option(help="Wait until it is gone.")] = True
) -> None:
    """Delete an endpoint and stop its instances."""
    with client() as api:
        api.delete(f"{ENDPOINTS}/{path_segment(name)}")
        if wait:
            with err_console.status(f"Deleting endpoint {name}..."):
                deadline = time.monotonic() + WAIT_LIMIT_SECONDS
                while time.monotonic() < deadline:
                    try:
                        api.get(f"{ENDPOINTS}/{path_segment(name)}")
                    except NotFoundError:
                        break
                    time.sleep(POLL_SECONDS)
    console.print(f"Deleted endpoint {name}.")


@endpoints_app.command("metrics")
def endpoint_metrics(
    name: str,
    since: Annotated[float, typer.Option(help="Seconds back from now.")] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Per-variant metrics: invocations, latency, errors, instances (one row per period)."""
    with client() as api:
        data = api.get(f"{ENDPOINTS}/{path_segment(name)}/metrics", params={"since_seconds": since})
    if as_json:
        print_json(data)
        return
    if not data["variants"]:
        console.print(
            f"No metrics for {name} yet (one sample per variant every "
            f"{data['period_seconds']:g} s)."
        )
        return
    for variant, series in data["variants"].items():
        table = Table(
            "time",
            "invocations",
            "per instance",
            "model ms",
            "overhead ms",
            "4xx",
            "5xx",
            "instances",
            title=f"{name} / {variant}",
        )
        times = [p["timestamp"] for p in series.get("Invocations", [])]
        for index, stamp in enumerate(times):

            def value(metric: str, i: int = index, s: dict[str, Any] = series) -> float:
                points = s.get(metric, [])
                return float(points[i]["value"]) if i < len(points) else 0.0

            table.add_row(
                stamp[11:19],
                f"{value('Invocations'):g}",
                f"{value('InvocationsPerInstance'):.1f}",
                f"{value('ModelLatency') / 1000:.2f}",
                f"{value('OverheadLatency') / 1000:.2f}",
                f"{value('Invocation4XXErrors'):g}",
                f"{value('Invocation5XXErrors'):g}",
                f"{value('InstanceCount'):g}",
            )
        console.print(table)


def _wait(api: KennelClient, name: str, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    info: dict[str, Any] = api.get(f"{ENDPOINTS}/{path_segment(name)}")
    with err_console.status(f"{what}: {info['status']}") as status:
        while info["status"] in BUSY and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            info = api.get(f"{ENDPOINTS}/{path_segment(name)}")
            traffic = info.get("traffic")
            extra = ""
            if traffic:
                extra = " (" + ", ".join(f"{k} {v:.0%}" for k, v in traffic.items()) + ")"
            status.update(f"{what}: {info['status']}{extra}")
    return info


def _finish(info: dict[str, Any], as_json: bool) -> None:
    _show_endpoint(info, as_json)
    if info["status"] == "Failed":
        raise typer.Exit(1)


def _show_endpoint(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    table = _kv_table()
    table.add_row("name", info["name"])
    table.add_row("arn", info["arn"])
    table.add_row("status", _status_text(info["status"]))
    table.add_row("config", info["config_name"])
    if info.get("pending_config_name"):
        table.add_row("updating to", info["pending_config_name"])
    if info.get("failure_reason"):
        table.add_row("failure", f"[red]{info['failure_reason']}[/]")
    for variant in info["production_variants"]:
        table.add_row(
            f"variant {variant['variant_name']}",
            f"{variant['model_name']}: {variant['current_instance_count']}/"
            f"{variant['desired_instance_count']} x {variant['instance_type']} healthy, "
            f"weight {variant['current_weight']:g}",
        )
    for key, share in (info.get("traffic") or {}).items():
        table.add_row("  traffic", f"{key}: {share:.0%}")
    table.add_row("data capture", _capture_text(info.get("data_capture")))
    last = info.get("last_deployment") or {}
    if last:
        colour = {"RolledBack": "red", "Succeeded": "green"}.get(last["status"], "white")
        table.add_row("last deployment", f"[{colour}]{last['status']}[/] ({last['config_name']})")
        for event in last.get("events", [])[-6:]:
            table.add_row("", f"{event['time'][11:19]} {event['message']}")
    console.print(table)


def _status_text(status: str) -> str:
    colour = {"InService": "green", "Failed": "red"}.get(status, "yellow")
    return f"[{colour}]{status}[/]"


def _instances_text(variants: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{v['variant_name']} {v['current_instance_count']}/{v['desired_instance_count']}"
        for v in variants
    )


def _kv_table() -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    return table


# deploy and invoke ----------------------------------------------------------------------


def deploy(
    source: Annotated[str, typer.Argument(help="A training job or a model.")],
    name: Annotated[str, typer.Option("--name", help="The endpoint's name.")],
    instance_type: Annotated[str, typer.Option(help="e.g. ml.m5.large")] = "ml.m5.large",
    count: Annotated[int, typer.Option(help="Instances.")] = 1,
    capture: CaptureOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deploy a job's model (or a model) as an endpoint: model, config, endpoint in one go.

    An endpoint that exists already is updated to the new config (new fleet first).
    """
    with client() as api:
        model = _model_for(api, source)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        config = f"{name[:40]}-{stamp}"
        variant = {"model_name": model, "instance_type": instance_type}
        variant["initial_instance_count"] = count  # type: ignore[assignment]
        body: dict[str, Any] = {"name": config, "variants": [variant]}
        data_capture = _data_capture(capture, None, None)
        if data_capture is not None:
            body["data_capture"] = data_capture
        api.post(CONFIGS, body)
        try:
            api.get(f"{ENDPOINTS}/{path_segment(name)}")
            exists = True
        except NotFoundError:
            exists = False
        if exists:
            api.post(f"{ENDPOINTS}/{path_segment(name)}/update", {"config_name": config})
            info = _wait(api, name, f"Updating endpoint {name}")
        else:
            api.post(ENDPOINTS, {"name": name, "config_name": config})
            info = _wait(api, name, f"Creating endpoint {name}")
    _finish(info, as_json)
    if not as_json and info["status"] == "InService":
        console.print(f"Invoke it with: kennel invoke {name} --file image.jpg")


def _model_for(api: KennelClient, source: str) -> str:
    """``source`` when it names a model; else a model made from the job of that name."""
    try:
        api.get(f"{MODELS}/{path_segment(source)}")
        return source
    except NotFoundError:
        pass
    try:
        api.get(f"/api/v1/training-jobs/{path_segment(source)}")
    except NotFoundError:
        raise ValidationError(
            f"{source} is neither a model nor a training job.",
            hint="See `kennel models list` and `kennel jobs list`.",
        ) from None
    _create_model(api, source, source, None, None, {})
    return source


def invoke(
    endpoint: str,
    file: Annotated[
        Path | None, typer.Option(help="A file to send (an image, .npy, .json).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help='An image URL: sends {"url": ...}, the server fetches it.')
    ] = None,
    content_type: Annotated[
        str | None, typer.Option(help="Content-Type (guessed from the file name).")
    ] = None,
    accept: Annotated[str, typer.Option(help="Accept.")] = "application/json",
    top_k: Annotated[int, typer.Option(help="Top classes to ask for and print.")] = 5,
    variant: Annotated[str | None, typer.Option(help="Send to this production variant.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Invoke an endpoint (InvokeEndpoint) and print the top classes and the latency."""
    if (file is None) == (url is None):
        raise ValidationError("Give exactly one of --file and --url.")
    if file is not None:
        if not file.is_file():
            raise ValidationError(f"{file} is not a file.")
        data = file.read_bytes()
        kind = content_type or _guess_type(file)
    else:
        data = json.dumps({"url": url}).encode()
        kind = content_type or "application/json"
    headers = {"Content-Type": kind, "Accept": accept}
    if top_k > 0:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = f"top_k={top_k}"
    if variant:
        headers["X-Amzn-SageMaker-Target-Variant"] = variant
    with client() as api:
        started = time.perf_counter()
        try:
            response = api.request(
                "POST",
                f"/endpoints/{path_segment(endpoint)}/invocations",
                data=data,
                headers=headers,
            )
        except KennelError:
            raise
        latency_ms = (time.perf_counter() - started) * 1000
    served_by = response.headers.get("x-amzn-invoked-production-variant", "?")
    if as_json:
        print_json(
            {
                "latency_ms": round(latency_ms, 2),
                "variant": served_by,
                "content_type": response.headers.get("content-type"),
                "body": _decoded(response.content),
            }
        )
        return
    _print_prediction(response.content, top_k)
    console.print(f"[dim]{latency_ms:.1f} ms, variant {served_by}[/]")


def _guess_type(file: Path) -> str:
    return {
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".npy": "application/x-npy",
        ".json": "application/json",
        ".csv": "text/csv",
    }.get(file.suffix.lower(), "application/x-image")


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def _print_prediction(body: bytes, top_k: int) -> None:
    value = _decoded(body)
    rows: list[tuple[str, float]] = []
    if isinstance(value, dict) and isinstance(value.get("predictions"), list):
        first = value["predictions"][0] if value["predictions"] else []
        rows = [(str(p.get("label", p.get("index"))), float(p["score"])) for p in first]
    elif isinstance(value, list) and value and isinstance(value[0], list):
        scores = [float(s) for s in value[0]]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: max(top_k, 1)]
        rows = [(f"class {i}", scores[i]) for i in order]
    if not rows:
        console.print(value if isinstance(value, str) else json.dumps(value)[:2000])
        return
    table = Table("class", "score")
    for label, score in rows:
        table.add_row(label, f"{score:.4f}")
    console.print(table)
