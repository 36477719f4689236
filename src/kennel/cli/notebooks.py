"""``kennel notebook`` (JupyterLab, recorded as a notebook instance) and ``kennel notebooks``."""

from __future__ import annotations

import os
import socket
import time
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from kennel._client import KennelClient, path_segment
from kennel._errors import NotFoundError, ValidationError
from kennel._names import check_name
from kennel._settings import Settings
from kennel.cli._common import JsonOption, client, settings
from kennel.cli._output import console, err_console, fold_table, kv_table, print_json, when
from kennel.notebooks._jupyter import JupyterLab, require_jupyterlab
from kennel.notebooks._launcher import BASE, NotebookRun, RunOptions, heartbeat_interval
from kennel.notebooks._workspace import (
    Connection,
    aws_files,
    copy_examples,
    default_workspace,
    find_examples,
    kennel_variables,
    notebook_environment,
    prepare_workspace,
    write_env_file,
)

app = typer.Typer(
    help="Notebook instances: list, describe, stop, delete (`kennel notebook` starts one)."
)

DEFAULT_NAME = "kennel-notebook"
STOP_WAIT_SLACK_SECONDS = 10.0


def notebook(
    name: Annotated[
        str,
        typer.Option(help="Notebook instance name; a Stopped one of that name starts again."),
    ] = DEFAULT_NAME,
    instance_type: Annotated[
        str | None,
        typer.Option(help="The type it is billed as (default ml.t3.medium); JupyterLab runs here."),
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(help="Folder JupyterLab serves (default $KENNEL_HOME/notebooks/NAME)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port for JupyterLab (default: a free one)."),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the URL; open no browser.")
    ] = False,
    ip: Annotated[str, typer.Option(help="Address JupyterLab listens on.")] = "127.0.0.1",
) -> None:
    """Start JupyterLab with kennel's endpoint and credentials set, as a notebook instance.

    The workspace gets the examples (your changes to them are kept), and kernels inherit
    KENNEL_ENDPOINT_URL, the AWS profile and region, so `kennel.Session()` and boto3
    reach this kennel with no setup. The instance is InService while JupyterLab runs and
    bills running time at its type's price; Ctrl-C (or SIGTERM) stops JupyterLab and
    records it Stopped.
    """
    check_name("Notebook instance", name)
    require_jupyterlab()
    cfg = settings()
    port = _listening_port(ip, port)
    with KennelClient.from_settings(cfg, timeout=60.0) as api:
        existing = _find(api, name)
        recorded = Path(existing["workspace"]) if existing and existing["workspace"] else None
        folder = prepare_workspace(workspace or recorded or default_workspace(cfg, name))
        _copy_examples(cfg, folder)
        connection = Connection(
            api.endpoint_url,
            api.region,
            cfg.profile,
            *aws_files(os.environ),
            ca_bundle=api.ca_bundle,
        )
        env = notebook_environment(os.environ, connection, name)
        env_file = write_env_file(folder, kennel_variables(connection, name))
        err_console.print(
            f"[dim]Workspace {escape(str(folder))}; kernels reach kennel at "
            f"{escape(api.endpoint_url)} as profile {escape(cfg.profile)} "
            f"(also in {escape(str(env_file))}).[/]",
            highlight=False,
            soft_wrap=True,
        )
        record = _record(api, name, existing, instance_type, folder)
        err_console.print(
            f"Notebook instance [bold]{escape(name)}[/] is {record['status']} "
            f"({record['instance_type']}, ${record['price_per_hour']:g}/hour).",
            highlight=False,
        )
        interval = heartbeat_interval(
            cfg.notebook_heartbeat_seconds, float(record["heartbeat_timeout_seconds"])
        )
        run = NotebookRun(
            api,
            lambda: KennelClient.from_settings(
                cfg, endpoint_url=api.endpoint_url, timeout=max(interval, 2.0)
            ),
            RunOptions(
                name=name,
                workspace=folder,
                env=env,
                ip=ip,
                port=port,
                heartbeat_seconds=interval,
                start_timeout=cfg.notebook_start_timeout_seconds,
            ),
            _Reporter(name, open_browser=not no_browser),
        )
        final = run.run()
    _print_end(final, run.end_reason)
    if final["status"] == "Failed":
        raise typer.Exit(1)


def _listening_port(ip: str, port: int | None) -> int:
    """The port JupyterLab will listen on (a free one when none is given); one in use, or an
    address not of this machine, is refused before anything is recorded."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            # As Tornado binds: a port left in TIME_WAIT is usable, one listened on is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((ip, port or 0))
            return int(probe.getsockname()[1])
    except OSError as error:
        raise ValidationError(
            f"JupyterLab cannot listen on {ip}:{port or 'any port'}: {error.strerror or error}.",
            hint="Leave --port out for a free one, and give --ip an address of this machine.",
        ) from None


def _find(api: KennelClient, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api.get(f"{BASE}/{path_segment(name)}")
    except NotFoundError:
        return None
    return found


def _copy_examples(cfg: Settings, folder: Path) -> None:
    source = find_examples(cfg)
    if source is None:
        err_console.print(
            "[yellow]No examples folder found (kennel is not run from its source "
            "checkout); the workspace has none.[/] Set KENNEL_EXAMPLES_DIR to copy some.",
            highlight=False,
        )
        return
    copied = copy_examples(source, folder)
    err_console.print(
        f"[dim]Examples from {escape(str(source))}: {copied.summary()}.[/]", highlight=False
    )
    for path in copied.kept_changed:
        err_console.print(f"  [dim]kept your version of examples/{escape(path)}[/]")


def _record(
    api: KennelClient,
    name: str,
    existing: dict[str, Any] | None,
    instance_type: str | None,
    folder: Path,
) -> dict[str, Any]:
    """Create the instance, or start a Stopped/Failed one again (the server refuses a
    running one with a 409 and a hint)."""
    body: dict[str, Any] = {
        "workspace": str(folder),
        "client": {"host": socket.gethostname(), "pid": os.getpid()},
    }
    if instance_type:
        body["instance_type"] = instance_type
    if existing is None:
        created: dict[str, Any] = api.post(BASE, {"name": name, **body})
        return created
    started: dict[str, Any] = api.post(f"{BASE}/{path_segment(name)}/start", body)
    return started


class _Reporter:
    def __init__(self, name: str, *, open_browser: bool) -> None:
        self.name = name
        self.open_browser = open_browser

    def step(self, text: str) -> None:
        err_console.print(f"[dim]{escape(text)}[/]", highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        err_console.print(f"[yellow]{escape(text)}[/]", highlight=False, soft_wrap=True)

    def waiting(self, text: str) -> Any:
        return err_console.status(text)

    def ready(self, lab: JupyterLab, record: dict[str, Any]) -> None:
        console.print(
            f"JupyterLab for notebook instance {self.name} is {record['status']}; open:",
            highlight=False,
            markup=False,
        )
        # One line whatever the terminal's width: people copy it, programs parse it.
        console.print(f"    {lab.url_with_token}", highlight=False, markup=False, soft_wrap=True)
        err_console.print(
            f"Stop it with Ctrl-C here, or `kennel notebooks stop {escape(self.name)}`.",
            highlight=False,
        )
        if self.open_browser:
            webbrowser.open(lab.url_with_token)


def _print_end(record: dict[str, Any], why: str) -> None:
    status = record.get("status", "Unknown")
    colour = {"Stopped": "green", "Failed": "red"}.get(status, "yellow")
    reason = record.get("status_reason") or why
    line = f"Notebook instance [bold]{escape(str(record.get('name')))}[/] is [{colour}]{status}[/]"
    if reason:
        line += f": {escape(reason)}"
    err_console.print(line, highlight=False, soft_wrap=True)
    if "cost_usd" in record:
        console.print(
            f"Ran {_duration(record['running_seconds'])} in all; cost ${record['cost_usd']:.6f} "
            f"({record['instance_type']} at ${record['price_per_hour']:g}/hour).",
            highlight=False,
        )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# kennel notebooks ...


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only instances in this state.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List notebook instances, newest first, with what each has cost."""
    with client() as api:
        items = api.get(BASE, params={"status": status})["notebook_instances"]
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No notebook instances yet. Start one with: kennel notebook")
        return
    table = fold_table("name", "status", "type", "running", "cost USD", "url", "created")
    for n in items:
        table.add_row(
            n["name"],
            n["status"],
            n["instance_type"],
            _duration(n["running_seconds"]),
            f"{n['cost_usd']:.6f}",
            n["url"] or "-",
            when(n["created_at"]),
        )
    console.print(table)


@app.command("describe")
def describe(name: str, as_json: JsonOption = False) -> None:
    """Show a notebook instance: state, where it runs, running time and cost."""
    with client() as api:
        record = api.get(f"{BASE}/{path_segment(name)}")
    _show(record, as_json)


@app.command("stop")
def stop(
    name: str,
    wait: Annotated[bool, typer.Option(help="Wait until it is Stopped.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Stop a notebook instance: its `kennel notebook` stops JupyterLab at its next heartbeat."""
    with client() as api:
        record = api.post(f"{BASE}/{path_segment(name)}/stop", {})
        if wait:
            record = _wait_stopped(api, record)
    if as_json:
        print_json(record)
        return
    console.print(f"Notebook instance {name} is {record['status']}: {record['status_reason']}")


def _wait_stopped(api: KennelClient, record: dict[str, Any]) -> dict[str, Any]:
    # Bounded: past the server's heartbeat timeout the instance is settled Stopped anyway.
    deadline = time.monotonic() + record["heartbeat_timeout_seconds"] + STOP_WAIT_SLACK_SECONDS
    path = f"{BASE}/{path_segment(record['name'])}"
    with err_console.status(f"Waiting for {record['name']} to stop..."):
        while record["status"] == "Stopping" and time.monotonic() < deadline:
            time.sleep(0.5)
            record = api.get(path)
    return record


@app.command("delete")
def delete(name: str) -> None:
    """Delete a Stopped notebook instance's record (its workspace folder is kept)."""
    with client() as api:
        record = api.get(f"{BASE}/{path_segment(name)}")
        api.delete(f"{BASE}/{path_segment(name)}")
    kept = f" (its workspace {record['workspace']} is kept)" if record["workspace"] else ""
    console.print(f"Deleted notebook instance {name}{kept}.", highlight=False)


def _show(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(record)
        return
    colour = {"InService": "green", "Failed": "red", "Stopped": "white"}.get(
        record["status"], "yellow"
    )
    table = kv_table()
    table.add_row("name", record["name"])
    table.add_row("arn", record["arn"])
    table.add_row("status", f"[{colour}]{record['status']}[/]")
    if record["status_reason"]:
        table.add_row("reason", escape(record["status_reason"]))
    table.add_row(
        "instance type", f"{record['instance_type']} (${record['price_per_hour']:g}/hour)"
    )
    table.add_row("url", record["url"] or "-")
    table.add_row("workspace", escape(record["workspace"] or "-"))
    client_info = record.get("client") or {}
    if client_info:
        table.add_row(
            "process",
            f"kennel notebook pid {client_info.get('pid', '?')} on "
            f"{client_info.get('host') or '?'}",
        )
    table.add_row("created", when(record["created_at"]))
    table.add_row("last started", when(record["last_started_at"]))
    table.add_row("last heartbeat", when(record["last_heartbeat_at"]))
    if record["stopped_at"]:
        table.add_row("stopped", when(record["stopped_at"]))
    table.add_row(
        "running", f"{_duration(record['running_seconds'])} ({record['running_seconds']:.0f} s)"
    )
    table.add_row("cost", f"${record['cost_usd']:.6f}")
    console.print(table)
