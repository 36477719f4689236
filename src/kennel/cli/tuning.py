"""``kennel tune ...``: hyperparameter tuning jobs (a thin client of /api/v1/tuning-jobs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from kennel._client import KennelClient, path_segment
from kennel._errors import ValidationError
from kennel.cli import endpoints
from kennel.cli._common import JsonOption, client, pairs
from kennel.cli._output import console, err_console, print_json, write_page

app = typer.Typer(
    help="Hyperparameter tuning jobs: create, describe (--html report), list, stop, best, deploy."
)

BASE = "/api/v1/tuning-jobs"
WAIT_POLL_SECONDS = 1.0
WAIT_LIMIT_SECONDS = 7 * 86_400
ACTIVE = ("InProgress", "Stopping")
SCALES = {"linear": "Linear", "log": "Logarithmic", "reverse-log": "ReverseLogarithmic"}


@app.command("create")
def create(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A tuning job spec (YAML or JSON).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Tuning job name (up to 32 chars).")] = None,
    dataset: Annotated[str | None, typer.Option(help="The trials' data set.")] = None,
    objective: Annotated[
        str | None, typer.Option(help="Objective metric, e.g. validation:loss.")
    ] = None,
    minimize: Annotated[
        bool, typer.Option("--minimize/--maximize", help="Minimize (default) or maximize.")
    ] = True,
    continuous: Annotated[
        list[str] | None,
        typer.Option(help="name=min:max[:linear|log|reverse-log], repeatable."),
    ] = None,
    integer: Annotated[
        list[str] | None, typer.Option(help="name=min:max[:linear|log], repeatable.")
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option(help="name=v1,v2,..., repeatable.")
    ] = None,
    static: Annotated[
        list[str] | None, typer.Option(help="A fixed hyperparameter name=value, repeatable.")
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="Bayesian, Random, Grid or Hyperband.")
    ] = "Bayesian",
    max_jobs: Annotated[int, typer.Option(help="Training jobs in all.")] = 4,
    max_parallel: Annotated[int, typer.Option(help="Training jobs at a time.")] = 1,
    early_stopping: Annotated[str, typer.Option(help="Off or Auto.")] = "Off",
    instance_type: Annotated[str, typer.Option(help="e.g. ml.m5.large")] = "ml.m5.large",
    warm_start: Annotated[
        list[str] | None,
        typer.Option(help="A parent tuning job whose trials seed this one, repeatable (1-5)."),
    ] = None,
    warm_start_type: Annotated[
        str, typer.Option(help="IdenticalDataAndAlgorithm or TransferLearning.")
    ] = "IdenticalDataAndAlgorithm",
    wait: Annotated[bool, typer.Option(help="Follow the trials until the job ends.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a tuning job from a spec file, or from flags for the common case."""
    if file is not None:
        spec = _read_spec(file)
        if name:
            spec["name"] = name
    else:
        if not (name and objective):
            raise ValidationError(
                "A tuning job needs --name and --objective (or a spec: --file tuning.yaml)."
            )
        spec = {
            "name": name,
            "dataset": dataset,
            "objective": {"metric_name": objective, "type": "Minimize" if minimize else "Maximize"},
            "parameter_ranges": {
                "continuous": [_range(v, float, "--continuous") for v in continuous or []],
                "integer": [_range(v, int, "--integer") for v in integer or []],
                "categorical": [_categorical(v) for v in categorical or []],
            },
            "static_hyperparameters": pairs(static, "Static hyperparameter"),
            "strategy": strategy,
            "max_training_jobs": max_jobs,
            "max_parallel_training_jobs": max_parallel,
            "early_stopping": early_stopping,
            "instance_type": instance_type,
        }
        if warm_start:
            spec["warm_start"] = {"parent_tuning_jobs": warm_start, "type": warm_start_type}
    with client() as api:
        job = api.post(BASE, spec)
        if wait:
            if not as_json:
                console.print(f"Tuning job [bold]{job['name']}[/] started.")
            job = _wait(api, job["name"])
    if as_json:
        print_json(job)
    else:
        _show(job)
    if wait and job["status"] != "Completed":
        raise typer.Exit(1)


def _read_spec(file: Path) -> dict[str, Any]:
    if not file.exists():
        raise ValidationError(f"{file} does not exist.", hint="Give the path of a tuning spec.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ValidationError(f"{file} is not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{file} must hold a mapping (the tuning job spec).")
    return data


def _range(text: str, kind: type, flag: str) -> dict[str, Any]:
    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or not name or len(parts) not in (2, 3):
        raise ValidationError(f"{flag} {text!r} must look like name=min:max[:scale].")
    try:
        low, high = kind(parts[0]), kind(parts[1])
    except ValueError as exc:
        raise ValidationError(f"{flag} {text!r}: min and max must be numbers.") from exc
    scale = parts[2] if len(parts) == 3 else "linear"
    if scale not in SCALES:
        raise ValidationError(f"{flag} {text!r}: the scale must be one of {sorted(SCALES)}.")
    return {"name": name, "min_value": low, "max_value": high, "scaling_type": SCALES[scale]}


def _categorical(text: str) -> dict[str, Any]:
    name, sep, rest = text.partition("=")
    values = [v for v in rest.split(",") if v]
    if not sep or not name or not values:
        raise ValidationError(f"--categorical {text!r} must look like name=v1,v2.")
    return {"name": name, "values": values}


def _wait(api: KennelClient, name: str) -> dict[str, Any]:
    """Poll until the tuning job ends, showing trials done/running and the best so far."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    with err_console.status(f"{name}: starting") as status:
        while time.monotonic() < deadline:
            job: dict[str, Any] = api.get(f"{BASE}/{path_segment(name)}")
            if job["status"] not in ACTIVE:
                return job
            status.update(f"{name}: {_progress(job)}")
            time.sleep(WAIT_POLL_SECONDS)
    raise ValidationError(f"Gave up waiting for {name}.", hint=f"kennel tune describe {name}")


def _progress(job: dict[str, Any]) -> str:
    c = job["counters"]
    done = c["completed"] + c["failed"] + c["stopped"] + c["pruned"]
    best = job.get("best_training_job")
    best_text = f", best {best['objective']['value']:g}" if best else ""
    return (
        f"{job['status']}: {done} of {job['resource_limits']['max_training_jobs']} done, "
        f"{c['in_progress']} running{best_text}"
    )


def _show(job: dict[str, Any]) -> None:
    colour = {"Completed": "green", "Failed": "red", "InProgress": "yellow"}.get(
        job["status"], "white"
    )
    console.print(f"[bold]{job['name']}[/]: [{colour}]{job['status']}[/] {job['status_message']}")
    if job.get("failure_reason"):
        console.print(f"[red]{job['failure_reason']}[/]", soft_wrap=True)
    objective = job["objective"]
    console.print(
        f"{job['strategy']} search, {objective['type']} {objective['metric_name']}; "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in job["counters"].items())
    )
    best = (job.get("best_training_job") or {}).get("training_job_name")
    table = Table("training job", "status", "hyperparameters", objective["metric_name"])
    for trial in job.get("trials", []):
        value = trial["objective"]
        status = trial["status"] + (" (early stopped)" if trial["pruned"] else "")
        row = [
            trial["training_job_name"],
            status,
            " ".join(f"{k}={v}" for k, v in trial["hyperparameters"].items()),
            "" if value is None else f"{value:g}",
        ]
        table.add_row(*row, style="bold green" if trial["training_job_name"] == best else None)
    console.print(table)


@app.command("describe")
def describe(
    name: str,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write a report page: objective over trials, parameter importance, "
            "trials by objective.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A tuning job and its trials, best objective first (the best job highlighted)."""
    with client() as api:
        job = api.get(f"{BASE}/{path_segment(name)}")
        page = api.request("GET", f"{BASE}/{path_segment(name)}/report").text if html else ""
    if as_json:
        print_json(job)
    else:
        _show(job)
    if html is not None:
        write_page(html, page)
        if not as_json:
            console.print(f"Wrote the report to {escape(str(html))}.", highlight=False)


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only tuning jobs in this state.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tuning jobs, newest first."""
    with client() as api:
        jobs = api.get(BASE, params={"status": status})["tuning_jobs"]
    if as_json:
        print_json(jobs)
        return
    if not jobs:
        console.print("No tuning jobs yet. Start one with: kennel tune create --help")
        return
    table = Table("name", "status", "strategy", "progress", "best", "created")
    for j in jobs:
        best = j.get("best_training_job")
        table.add_row(
            j["name"],
            j["status"],
            j["strategy"],
            _progress(j),
            f"{best['objective']['value']:g}" if best else "",
            j["created_at"][:19].replace("T", " "),
        )
    console.print(table)


@app.command("stop")
def stop(name: str) -> None:
    """Stop a tuning job and its running training jobs."""
    with client() as api:
        job = api.post(f"{BASE}/{path_segment(name)}/stop", {})
    console.print(f"Stopping {name} ({job['status']}).")


@app.command("best")
def best(name: str, as_json: JsonOption = False) -> None:
    """The best training job so far: its name, hyperparameters and objective."""
    with client() as api:
        found = _best_job(api, name)
    if as_json:
        print_json(found)
        return
    objective = found["objective"]
    console.print(f"[bold]{found['training_job_name']}[/]")
    console.print(f"{objective['metric_name']} = {objective['value']:g} ({objective['type']})")
    console.print(json.dumps(found["hyperparameters"], sort_keys=True))


def _best_job(api: KennelClient, name: str) -> dict[str, Any]:
    job = api.get(f"{BASE}/{path_segment(name)}")
    found: dict[str, Any] | None = job.get("best_training_job")
    if found is None:
        raise ValidationError(
            f"Tuning job {name!r} has no completed training job yet ({job['status']}).",
            hint=f"See its trials: kennel tune describe {name}",
        )
    return found


@app.command("deploy")
def deploy(
    tuning_job: Annotated[str, typer.Argument(help="The tuning job whose best model to serve.")],
    name: Annotated[str, typer.Option("--name", help="The endpoint's name.")],
    instance_type: Annotated[str, typer.Option(help="e.g. ml.m5.large")] = "ml.m5.large",
    count: Annotated[int, typer.Option(help="Instances.")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Deploy the best training job's model as an endpoint (what `kennel deploy JOB` does).

    The model is named after the best training job; an endpoint that exists already is
    updated to it (new fleet first). A job still running deploys its best trial so far.
    """
    with client() as api:
        found = _best_job(api, tuning_job)
    best_job = found["training_job_name"]
    if not as_json:
        objective = found["objective"]
        console.print(
            f"Deploying {best_job} ({objective['metric_name']} = {objective['value']:g})."
        )
    endpoints.deploy(best_job, name, instance_type=instance_type, count=count, as_json=as_json)
