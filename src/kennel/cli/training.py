"""``kennel train``, ``kennel jobs ...`` and ``kennel instance-types``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kennel._client import KennelClient, path_segment
from kennel._errors import ValidationError
from kennel.cli._common import JsonOption, client, pairs
from kennel.cli._debugger import debug_blocks, report_command, show_rules
from kennel.cli._output import console, err_console, print_json

jobs_app = typer.Typer(help="Training jobs: list, describe, logs, metrics, report, stop.")

BASE = "/api/v1/training-jobs"
FOLLOW_POLL_SECONDS = 1.0
ACTIVE = ("InProgress", "Stopping")


def train(
    name: Annotated[str | None, typer.Option(help="Job name (generated when omitted).")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="A data set: its train/valid/test become the channels.")
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="Input channel name=URI.")
    ] = None,
    entry_point: Annotated[
        str, typer.Option(help="kennel.trainer (built in) or a script inside --source-dir.")
    ] = "kennel.trainer",
    source_dir: Annotated[
        Path | None, typer.Option(help="Folder (or single file) with the entry point.")
    ] = None,
    hyperparameter: Annotated[
        list[str] | None,
        typer.Option("--hyperparameter", "-H", help="Hyperparameter name=value, repeatable."),
    ] = None,
    instance_type: Annotated[str, typer.Option(help="e.g. ml.m5.xlarge")] = "ml.m5.large",
    instance_count: Annotated[int, typer.Option(help="Instances (DDP when > 1).")] = 1,
    max_runtime: Annotated[int, typer.Option(help="Seconds before the job is stopped.")] = 86400,
    env: Annotated[list[str] | None, typer.Option("--env", help="NAME=value, repeatable.")] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Metric name=regex, repeatable.")
    ] = None,
    output_path: Annotated[str | None, typer.Option(help="Where model.tar.gz goes.")] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="A Debugger or profiler rule, e.g. vanishing_gradient or "
            "'exploding_tensor:only_nan=true,action=StopTraining'; repeatable.",
        ),
    ] = None,
    debugger: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file with the debugger block (save_interval, rules ...)."),
    ] = None,
    profiler: Annotated[
        bool, typer.Option(help="System and framework metrics (the report's data).")
    ] = True,
    save_interval: Annotated[
        int | None, typer.Option(help="Steps between the hook's tensor saves.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the logs until the job ends.")] = True,
    local: Annotated[
        bool, typer.Option("--local", help="Run in the foreground here, with no server.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a training job (SageMaker's training contract, on Ray)."""
    hps = pairs(hyperparameter, "Hyperparameter")
    channels = pairs(channel, "Channel")
    if local:
        raise typer.Exit(_train_locally(entry_point, source_dir, hps, channels, pairs(env, "Env")))
    spec: dict[str, Any] = {
        "name": name,
        "dataset": dataset,
        "channels": channels,
        "entry_point": entry_point,
        "hyperparameters": hps,
        "instance_type": instance_type,
        "instance_count": instance_count,
        "max_runtime_seconds": max_runtime,
        "environment": pairs(env, "Env"),
        "metric_definitions": [{"name": k, "regex": v} for k, v in pairs(metric, "Metric").items()],
        "output_path": output_path,
        **debug_blocks(rule, debugger, profiler=profiler, save_interval=save_interval),
    }
    with client() as api:
        if source_dir is not None:
            spec["source_uri"] = _upload_source(api, source_dir)
        job = api.post(BASE, spec)
        if not wait:
            _show(job, as_json)
            return
        if not as_json:
            console.print(f"Training job [bold]{job['name']}[/] started.")
        final = _follow(api, job["name"], "algo-1", quiet=as_json)
    _show(final, as_json)
    if final["status"] != "Completed":
        raise typer.Exit(1)


def _upload_source(api: KennelClient, source: Path) -> str:
    if not source.exists():
        raise ValidationError(f"{source} does not exist.", hint="Give the folder of your script.")
    with tempfile.TemporaryDirectory(prefix="kennel-source-") as tmp:
        archive = Path(tmp) / "sourcedir.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            if source.is_dir():
                for item in sorted(source.iterdir()):
                    tar.add(item, arcname=item.name)
            else:
                tar.add(source, arcname=source.name)
        uri: str = api.request("PUT", "/api/v1/uploads/sourcedir.tar.gz", upload=archive).json()[
            "uri"
        ]
        return uri


def _train_locally(
    entry_point: str,
    source_dir: Path | None,
    hps: dict[str, str],
    channels: dict[str, str],
    env: dict[str, str],
) -> int:
    """The EC2 path: the same script, in the foreground, SM_* pointing at local folders."""
    work = Path(tempfile.mkdtemp(prefix="kennel-local-"))
    model_dir = Path(os.environ.get("SM_MODEL_DIR") or Path.cwd() / "model")
    model_dir.mkdir(parents=True, exist_ok=True)
    local_env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(work / "output"),
        "SM_OUTPUT_DATA_DIR": str(work / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        **{f"SM_CHANNEL_{k.upper()}": str(Path(v).resolve()) for k, v in channels.items()},
        **env,
    }
    (work / "output" / "data").mkdir(parents=True)
    args = [part for k, v in hps.items() for part in (f"--{k}", v)]
    if entry_point == "kennel.trainer":
        command = [sys.executable, "-m", "kennel.trainer", *args]
        cwd = None
    else:
        base = source_dir if source_dir and source_dir.is_dir() else Path.cwd()
        command = [sys.executable, entry_point, *args]
        cwd = str(base)
    err_console.print(f"Running {' '.join(command[1:])} here; model goes to {model_dir}")
    code = subprocess.call(command, env=local_env, cwd=cwd)
    if code == 0:
        console.print(f"Training finished; the model is in {model_dir}")
    else:
        failure = work / "output" / "failure"
        reason = failure.read_text().strip() if failure.exists() else f"exit code {code}"
        err_console.print(f"[bold red]Training failed[/]: {reason}", soft_wrap=True)
    return code


def _follow(api: KennelClient, name: str, host: str, *, quiet: bool = False) -> dict[str, Any]:
    """Print the log as it grows, with the job's state on a status line, until it ends."""
    offset = 0
    with err_console.status(f"{name}: starting") as status:
        while True:
            chunk = api.get(
                f"{BASE}/{path_segment(name)}/logs", params={"host": host, "offset": offset}
            )
            if chunk["data"] and not quiet:
                console.out(chunk["data"], end="", highlight=False)
            offset = chunk["next_offset"]
            status.update(f"{name}: {chunk['status']} / {chunk['secondary_status']}")
            if chunk["complete"] and not chunk["data"]:
                break
            if not chunk["data"]:
                time.sleep(FOLLOW_POLL_SECONDS)
    job: dict[str, Any] = api.get(f"{BASE}/{path_segment(name)}")
    return job


def _show(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(job)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    colour = {"Completed": "green", "Failed": "red", "InProgress": "yellow"}.get(
        job["status"], "white"
    )
    table.add_row("name", job["name"])
    table.add_row("status", f"[{colour}]{job['status']}[/] ({job['secondary_status']})")
    table.add_row("message", job["status_message"])
    if job.get("failure_reason"):
        table.add_row("failure", f"[red]{job['failure_reason']}[/]")
    table.add_row("entry point", job["entry_point"])
    table.add_row("instances", f"{job['instance_count']} x {job['instance_type']}")
    placement = job.get("placement") or {}
    if placement.get("note"):
        table.add_row("placement", placement["note"])
    table.add_row(
        "hyperparameters", " ".join(f"{k}={v}" for k, v in job["hyperparameters"].items())
    )
    table.add_row("channels", " ".join(sorted(job["channels"])))
    for key, value in sorted(job.get("final_metrics", {}).items()):
        table.add_row(f"  {key}", f"{value:g}")
    if job.get("model_artifact_uri"):
        table.add_row("model", job["model_artifact_uri"])
    table.add_row("billable", f"{job['billable_seconds']} s (${job['cost_usd']:.4f})")
    console.print(table)
    show_rules(job.get("rule_evaluations") or [])


@jobs_app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List training jobs, newest first."""
    with client() as api:
        jobs = api.get(BASE, params={"status": status})["training_jobs"]
    if as_json:
        print_json(jobs)
        return
    if not jobs:
        console.print("No training jobs yet. Start one with: kennel train --dataset NAME")
        return
    table = Table("name", "status", "secondary", "instances", "valid acc", "created")
    for j in jobs:
        acc = j["final_metrics"].get("validation:accuracy")
        table.add_row(
            j["name"],
            j["status"],
            j["secondary_status"],
            f"{j['instance_count']} x {j['instance_type']}",
            "" if acc is None else f"{acc:.3f}",
            j["created_at"][:19].replace("T", " "),
        )
    console.print(table)


@jobs_app.command("describe")
def describe(name: str, as_json: JsonOption = False) -> None:
    """Show a training job."""
    with client() as api:
        _show(api.get(f"{BASE}/{path_segment(name)}"), as_json)


@jobs_app.command("logs")
def logs(
    name: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    host: Annotated[str, typer.Option(help="Which instance (algo-1, algo-2, ...).")] = "algo-1",
) -> None:
    """Print a job's log (one instance's)."""
    with client() as api:
        if follow:
            _follow(api, name, host)
            return
        offset = 0
        while True:
            chunk = api.get(
                f"{BASE}/{path_segment(name)}/logs", params={"host": host, "offset": offset}
            )
            if not chunk["data"]:
                return
            console.out(chunk["data"], end="", highlight=False)
            offset = chunk["next_offset"]


@jobs_app.command("metrics")
def metrics(name: str, as_json: JsonOption = False) -> None:
    """A job's metric time series (from its log, by the metric definitions)."""
    with client() as api:
        series = api.get(f"{BASE}/{path_segment(name)}/metrics")["metrics"]
    if as_json:
        print_json(series)
        return
    table = Table("metric", "samples", "first", "last", "min", "max")
    for metric_name, points in sorted(series.items()):
        values = [p["value"] for p in points]
        table.add_row(
            metric_name,
            str(len(values)),
            f"{values[0]:g}",
            f"{values[-1]:g}",
            f"{min(values):g}",
            f"{max(values):g}",
        )
    console.print(table)


jobs_app.command("report")(report_command)


@jobs_app.command("stop")
def stop(name: str) -> None:
    """Stop a running job (SIGTERM to its scripts, SIGKILL after 10 s)."""
    with client() as api:
        job = api.post(f"{BASE}/{path_segment(name)}/stop", {})
    console.print(f"Stopping {name} ({job['status']}).")


def instance_types(as_json: JsonOption = False) -> None:
    """The instance types training jobs and endpoints can use."""
    with client() as api:
        types = api.get("/api/v1/instance-types")["instance_types"]
    if as_json:
        print_json(types)
        return
    table = Table("type", "vCPU", "memory GiB", "GPUs", "USD/hour")
    for t in types:
        gpus = f"{t['gpus']} x {t['gpu_model']}" if t["gpus"] else "-"
        table.add_row(
            t["name"], str(t["vcpus"]), f"{t['memory_gib']:g}", gpus, f"{t['price_per_hour']:.3f}"
        )
    console.print(table)
