"""``kennel endpoints monitor | monitor-report | monitoring-schedule(s) | labels``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kennel._client import KennelClient, path_segment
from kennel._errors import NotFoundError, ValidationError
from kennel.cli._common import JsonOption, client
from kennel.cli._output import console, kv_table, print_json, write_page

ENDPOINTS = "/api/v1/endpoints"


def _base(name: str) -> str:
    return f"{ENDPOINTS}/{path_segment(name)}"


def monitor(
    name: str,
    run: Annotated[bool, typer.Option("--run", help="Run the monitor now, then show it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The latest monitoring results: each check against its threshold, accuracy, report."""
    with client() as api:
        if run:
            with console.status(f"Running the monitor of {name} (embeddings, drift tests, report)"):
                execution: dict[str, Any] | None = api.post(f"{_base(name)}/monitoring/run", {})
        else:
            found = api.get(f"{_base(name)}/monitoring/executions", params={"limit": 1})
            execution = found["executions"][0] if found["executions"] else None
        schedule = _schedule_or_none(api, name)
    if as_json:
        print_json({"endpoint": name, "execution": execution, "schedule": schedule})
        return
    if execution is None:
        console.print(
            f"No monitoring run of {name} yet: `kennel endpoints monitor {name} --run` runs one."
        )
        return
    _show_execution(name, execution, schedule)


def _schedule_or_none(api: KennelClient, name: str) -> dict[str, Any] | None:
    try:
        schedule: dict[str, Any] = api.get(f"{_base(name)}/monitoring-schedule")
    except NotFoundError:
        return None
    return schedule


def _show_execution(name: str, execution: dict[str, Any], schedule: dict[str, Any] | None) -> None:
    colour = {"Completed": "green", "CompletedWithViolations": "yellow"}.get(
        execution["status"], "red"
    )
    info = kv_table()
    info.add_row("execution", execution["id"])
    info.add_row("status", f"[{colour}]{execution['status']}[/]")
    if execution.get("failure_reason"):
        info.add_row("reason", execution["failure_reason"])
    info.add_row("window", f"{execution['window_start'][:19]} .. {execution['window_end'][:19]}")
    counts = execution.get("counts") or {}
    info.add_row("records", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0")
    if schedule is not None:
        alarm = schedule.get("alarm") or {}
        info.add_row(
            "schedule",
            f"every {schedule['interval_seconds']} s, alarm {alarm.get('state', '-')}",
        )
    quality = (execution.get("result") or {}).get("quality")
    if quality and quality.get("accuracy") is not None:
        info.add_row("accuracy", f"{quality['accuracy']:.3f} on {quality['n']} labelled")
    if execution.get("report_key"):
        info.add_row("report", f"kennel endpoints monitor-report {name} -o report.html")
    console.print(info)
    checks = (execution.get("result") or {}).get("checks") or []
    if checks:
        table = Table()
        table.add_column("check", no_wrap=True)
        for column in ("statistic", "threshold", "p-value", "violated", "note"):
            table.add_column(column)
        for check in checks:
            table.add_row(
                check["name"],
                _number(check.get("statistic")),
                _number(check.get("threshold")),
                _number(check.get("p_value")),
                "[red]yes[/]" if check.get("violated") else "no",
                check.get("note") or "",
            )
        console.print(table)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def monitor_report(
    name: str,
    execution: Annotated[
        str | None, typer.Option(help="An execution id (default: the latest with a report).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path(
        "monitoring-report.html"
    ),
) -> None:
    """Save a monitoring run's HTML report (drift over time, class mix, samples, accuracy)."""
    with client() as api:
        if execution is None:
            found = api.get(f"{_base(name)}/monitoring/executions", params={"limit": 50})
            with_report = [e for e in found["executions"] if e.get("report_key")]
            if not with_report:
                raise NotFoundError(
                    f"No monitoring run of {name} has a report yet.",
                    hint=f"kennel endpoints monitor {name} --run",
                )
            execution = str(with_report[0]["id"])
        page = api.request(
            "GET", f"{_base(name)}/monitoring/executions/{path_segment(execution)}/report"
        ).text
    write_page(output, page)
    console.print(f"Wrote {output} (execution {execution}).")


def monitoring_schedule(
    name: str,
    every: Annotated[
        int | None, typer.Option("--every", help="Seconds between runs (default 3600).")
    ] = None,
    window: Annotated[
        int | None, typer.Option(help="Seconds the first run looks back (default: --every).")
    ] = None,
    alarm_function: Annotated[
        str | None, typer.Option(help="A function invoked with the violations on ALARM.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the schedule.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create or change the endpoint's monitoring schedule (or show it, or --delete it)."""
    path = f"{_base(name)}/monitoring-schedule"
    with client() as api:
        if delete:
            api.delete(path)
            console.print(f"Deleted the monitoring schedule of {name}.")
            return
        if every is None and window is None and alarm_function is None:
            info = api.get(path)
        else:
            body: dict[str, Any] = {"interval_seconds": every or 3600}
            if window is not None:
                body["window_seconds"] = window
            if alarm_function is not None:
                body["alarm_function"] = alarm_function
            info = api.request("PUT", path, json_body=body).json()
    if as_json:
        print_json(info)
        return
    table = kv_table()
    table.add_row("endpoint", info["endpoint"])
    table.add_row("every", f"{info['interval_seconds']} s")
    table.add_row("alarm", str((info.get("alarm") or {}).get("state", "-")))
    table.add_row("last run", str(info.get("last_run_at") or "-"))
    console.print(table)


def monitoring_schedules(as_json: JsonOption = False) -> None:
    """Every monitored endpoint: its schedule, alarm state and last run."""
    with client() as api:
        schedules: list[dict[str, Any]] = api.get("/api/v1/monitoring-schedules")["schedules"]
    if as_json:
        print_json({"schedules": schedules})
        return
    if not schedules:
        console.print(
            "No endpoint is monitored on a schedule: "
            "`kennel endpoints monitoring-schedule NAME --every 3600` makes one."
        )
        return
    table = Table()
    for column in ("endpoint", "every", "alarm", "reason", "last run"):
        table.add_column(column)
    for info in schedules:
        alarm = info.get("alarm") or {}
        state = str(alarm.get("state", "-"))
        colour = {"OK": "green", "ALARM": "red"}.get(state, "yellow")
        table.add_row(
            info["endpoint"],
            f"{info['interval_seconds']} s",
            f"[{colour}]{state}[/]",
            str(alarm.get("reason") or ""),
            str(info.get("last_run_at") or "-"),
        )
    console.print(table)


def labels(
    name: str,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="JSON Lines: inference_id and label per line.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Send ground truth for captured inferences (joined on their inference ids)."""
    if not file.is_file():
        raise ValidationError(f"{file} is not a file.", hint="Give --file labels.jsonl.")
    with client() as api:
        answer: dict[str, Any] = api.request(
            "POST",
            f"{_base(name)}/labels",
            data=file.read_bytes(),
            headers={"Content-Type": "application/jsonl"},
        ).json()
    if as_json:
        print_json(answer)
        return
    console.print(f"Accepted {answer['accepted']} label(s), rejected {answer['rejected']}.")
    for error in answer.get("errors", []):
        console.print(f"  line {error['line']}: {error['reason']}", highlight=False)
    if answer["rejected"]:
        raise typer.Exit(1)
