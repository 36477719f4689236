"""``kennel server``, ``kennel server stop`` and ``kennel status``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kennel._client import KennelClient
from kennel._errors import KennelError, ServiceUnavailableError
from kennel._settings import DEFAULT_PORT, Settings, load_settings
from kennel.cli._common import JsonOption
from kennel.cli._output import console, err_console, print_json

app = typer.Typer(help="Run the kennel server (the gateway, with a local Ray head).")

START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


@app.callback(invoke_without_command=True)
def server(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind (default 127.0.0.1). Any other than a loopback address "
            "needs --tls-cert-file, or --allow-plaintext."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"Port to listen on (default {DEFAULT_PORT}).")
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (with its chain): serve HTTPS with it."),
    ] = None,
    tls_key_file: Annotated[
        Path | None,
        typer.Option(help="The certificate's PEM private key (if not in --tls-cert-file)."),
    ] = None,
    allow_plaintext: Annotated[
        bool,
        typer.Option(
            "--allow-plaintext",
            help="Serve plain HTTP on a non-loopback --host: only with a TLS-terminating "
            "proxy in front that alone reaches the port.",
        ),
    ] = False,
    background: Annotated[
        bool, typer.Option("--background", help="Start detached; return once it serves.")
    ] = False,
) -> None:
    """Run the server in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(
        host=host,
        port=port,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        allow_plaintext=True if allow_plaintext else None,
    )
    if background:
        _start_background(settings)
        return
    from kennel.api._serve import serve

    serve(settings)


@app.command("stop")
def stop() -> None:
    """Stop the server this home folder runs (SIGTERM, then SIGKILL after 30 s)."""
    settings = load_settings()
    pid = _running_pid(settings)
    if pid is None:
        console.print("No kennel server is running for this home folder.")
        return
    os.kill(pid, signal.SIGTERM)
    with err_console.status(f"Stopping kennel server (pid {pid})..."):
        if _wait_exit(pid, STOP_TIMEOUT):
            console.print(f"kennel server (pid {pid}) stopped.")
            return
    os.kill(pid, signal.SIGKILL)
    _wait_exit(pid, 5)
    left = _stop_leftovers(settings)
    settings.server_file.unlink(missing_ok=True)
    console.print(
        f"kennel server (pid {pid}) did not stop in {STOP_TIMEOUT:.0f} s; killed it"
        + (f" and {len(left)} process(es) it left running." if left else ".")
    )


def status(as_json: JsonOption = False) -> None:
    """Show the server, Ray and the store."""
    settings = load_settings()
    try:
        with KennelClient.from_settings(settings) as client:
            info = client.get("/api/v1/status")
    except ServiceUnavailableError as err:
        info = {"server": {"state": "not running", "home": str(settings.home)}}
        if as_json:
            print_json(info)
        else:
            err_console.print(f"[red]kennel server: not running[/] ({err.message})")
            err_console.print("  [dim]hint:[/] start it with `kennel server --background`")
        raise typer.Exit(1) from err
    info["server"]["state"] = "running"
    if as_json:
        print_json(info)
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    srv, acct, ray, store = info["server"], info["account"], info["ray"], info["store"]
    table.add_row(
        "server",
        f"[green]running[/] at {srv['url']} (pid {srv['pid']}, "
        f"version {srv['version']}, up {srv['uptime_seconds']:.0f} s)",
    )
    table.add_row("account", f"{acct['account_id']} in {acct['region']} as {srv['caller']}")
    ray_state = ray["state"]
    colour = {"running": "green", "starting": "yellow"}.get(ray_state, "red")
    ray_line = f"[{colour}]{ray_state}[/] ({ray['mode']})"
    if "resources" in ray:
        res = ray["resources"]
        ray_line += f", {ray.get('nodes', 0)} node(s), {res.get('CPU', 0):.0f} CPU"
        if res.get("GPU"):
            ray_line += f", {res['GPU']:.0f} GPU"
    if ray.get("error"):
        ray_line += f": {ray['error']}"
    table.add_row("ray", ray_line)
    schema = store["schema_revision"]
    schema_note = "" if schema == store["schema_head"] else f" (head is {store['schema_head']})"
    table.add_row("database", f"{store['database']} (schema {schema}{schema_note})")
    table.add_row("artifacts", store["artifacts"])
    table.add_row("home", srv["home"])
    console.print(table)


def _running_pid(settings: Settings) -> int | None:
    from kennel.cluster._leftovers import ServerRun

    try:
        record = json.loads(settings.server_file.read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    run = ServerRun.from_record(record)
    # A record whose server is gone stays for the next server, which stops what that one
    # left running (it was killed); its start time tells a reused pid from the server.
    alive = run.alive() if run is not None else _alive(pid)
    return pid if alive else None


def _stop_leftovers(settings: Settings) -> list[int]:
    """Stop the processes a server killed outright left behind (see cluster/_leftovers)."""
    from kennel.cluster._leftovers import ServerRun, stop_leftovers

    try:
        record = json.loads(settings.server_file.read_text())
    except (OSError, ValueError):
        return []
    run = ServerRun.from_record(record) if isinstance(record, dict) else None
    return stop_leftovers(run) if run is not None else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _start_background(settings: Settings) -> None:
    running = _running_pid(settings)
    if running is not None:
        console.print(f"kennel server already running (pid {running}) for {settings.home}.")
        return
    from kennel.api._tls import check_transport, with_client_trust

    check_transport(settings)  # refused here, in words, rather than by a child that exits
    settings = with_client_trust(settings)  # to reach the child over its self-signed TLS
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "kennel",
        "server",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        *_transport_options(settings),
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with err_console.status("Starting kennel server...") as spinner:
        info = _wait_ready(settings, proc, spinner.update)
    ray = info["ray"]
    console.print(
        f"kennel server running at [bold]{info['server']['url']}[/] "
        f"(pid {proc.pid}; Ray {ray['state']}, {ray['mode']}); log: {log_path}"
    )
    console.print("Stop it with: kennel server stop")


def _transport_options(settings: Settings) -> list[str]:
    """This command line's transport options, for the child's (it reads the environment
    and the config file itself)."""
    options: list[str] = []
    if settings.tls_cert_file is not None:
        options += ["--tls-cert-file", str(settings.tls_cert_file)]
    if settings.tls_key_file is not None:
        options += ["--tls-key-file", str(settings.tls_key_file)]
    if settings.allow_plaintext:
        options.append("--allow-plaintext")
    return options


def _wait_ready(settings: Settings, proc: subprocess.Popen[bytes], update: Any) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    last: KennelError | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailableError(
                f"kennel server exited with code {proc.returncode} while starting.",
                hint=f"See {settings.log_dir / 'server.log'}.",
            )
        try:
            endpoint = settings.resolved_endpoint_url
            with KennelClient.from_settings(settings, endpoint_url=endpoint) as client:
                info: dict[str, Any] = client.get("/api/v1/status")
            if info["ray"]["state"] != "starting":
                return info
            update("Server up; waiting for Ray to start...")
        except KennelError as err:
            last = err
        time.sleep(0.25)
    raise ServiceUnavailableError(
        f"kennel server did not become ready in {START_TIMEOUT:.0f} s"
        + (f" (last error: {last.message})" if last else "")
        + ".",
        hint=f"See {settings.log_dir / 'server.log'}.",
    )
