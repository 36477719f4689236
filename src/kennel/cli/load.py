"""``kennel load``: put an endpoint under a planned load and watch what it does.

The command only parses options and renders; the load itself is :mod:`kennel.loadgen`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from kennel._client import path_segment
from kennel._errors import ValidationError
from kennel.cli._common import JsonOption, client
from kennel.cli._output import console, err_console, print_json
from kennel.loadgen import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_IN_FLIGHT,
    LoadPlan,
    LoadResult,
    LoadSnapshot,
    check_loopback,
    content_type_for,
    load_chart_html,
    parse_plan,
    run_load,
)
from kennel.loadgen._runner import MAX_IN_FLIGHT_LIMIT

MAX_BODY_BYTES = 64 * 2**20
"""The body is held in memory and sent as it is; the gateway refuses far less anyway."""
LIVE_REFRESH_PER_SECOND = 4


def load(
    endpoint: Annotated[str, typer.Argument(help="The endpoint to invoke.")],
    file: Annotated[
        Path,
        typer.Option("--file", help="The request body (an image, a .json, ...), sent each time."),
    ],
    rps: Annotated[
        float | None, typer.Option(help="A constant rate, requests/s (with --duration).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (with --rps or --ramp).")
    ] = None,
    ramp: Annotated[
        str | None, typer.Option(help="R0:R1 - from R0 to R1 requests/s over --duration.")
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(help="RxS,RxS,... - R requests/s for S seconds, then the next step."),
    ] = None,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_IN_FLIGHT_LIMIT,
            help="Requests outstanding at most; an arrival beyond it is skipped and counted.",
        ),
    ] = DEFAULT_MAX_IN_FLIGHT,
    drain_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=3600.0,
            help="Seconds to wait for answers after the plan ends; then they are cancelled.",
        ),
    ] = DEFAULT_DRAIN_TIMEOUT,
    content_type: Annotated[
        str | None, typer.Option(help="Content-Type (from the file's extension otherwise).")
    ] = None,
    accept: Annotated[str | None, typer.Option(help="Accept.")] = None,
    chart: Annotated[
        Path | None, typer.Option(help="Write an HTML chart (rate, latency, instances) here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send an endpoint a planned load (open loop) and report latency, errors, instances.

    e.g. kennel load my-ep --rps 20 --duration 60 --file dog.jpg --chart load.html
    """
    plan = parse_plan(rps=rps, duration=duration, ramp=ramp, steps=steps)
    body = _read_body(file)
    if chart is not None and not chart.parent.is_dir():
        raise ValidationError(
            f"Cannot write the chart to {chart}: {chart.parent} is not a folder.",
            hint="Give --chart a path in an existing folder.",
        )
    with client() as api:
        check_loopback(api.endpoint_url)
        status = api.get(f"/api/v1/endpoints/{path_segment(endpoint)}")["status"]
        if status != "InService":
            err_console.print(
                f"[yellow]Endpoint {escape(endpoint)} is {escape(status)}, not InService: "
                "expect errors.[/]",
                highlight=False,
            )

        def go(live: Live | None) -> LoadResult:
            return run_load(
                api,
                endpoint,
                plan,
                body,
                content_type=content_type or content_type_for(file),
                accept=accept,
                max_in_flight=max_in_flight,
                drain_timeout=drain_timeout,
                on_tick=None if live is None else _updater(live, endpoint, plan),
            )

        if as_json:
            result = go(None)
        else:
            live = Live(
                _live_view(endpoint, plan, None),
                console=console,
                refresh_per_second=LIVE_REFRESH_PER_SECOND,
                transient=True,
            )
            with live:
                result = go(live)
    if chart is not None:
        chart.write_text(load_chart_html(result, f"kennel load {endpoint}: {plan.describe()}"))
    if as_json:
        print_json(
            {**result.to_dict(include_records=False), "chart": str(chart) if chart else None}
        )
        return
    _print_summary(result)
    if chart is not None:
        console.print(f"chart: {escape(str(chart))}", highlight=False)


def _read_body(file: Path) -> bytes:
    if not file.is_file():
        raise ValidationError(f"{file} is not a file.", hint="--file is the request body to send.")
    size = file.stat().st_size
    if size > MAX_BODY_BYTES:
        raise ValidationError(
            f"{file} is {size:,} bytes: the body limit is {MAX_BODY_BYTES:,}.",
            hint="InvokeEndpoint takes at most 6 MB on AWS; load with a smaller body.",
        )
    return file.read_bytes()


def _updater(live: Live, endpoint: str, plan: LoadPlan) -> Callable[[LoadSnapshot], None]:
    def update(snapshot: LoadSnapshot) -> None:
        live.update(_live_view(endpoint, plan, snapshot))

    return update


def _live_view(endpoint: str, plan: LoadPlan, snap: LoadSnapshot | None) -> RenderableType:
    header = Text.assemble(
        ("kennel load ", "bold"), (endpoint, "bold cyan"), f"  {plan.describe()}"
    )
    if snap is None:
        return Group(header, Text("starting...", style="dim"))
    elapsed = min(snap.elapsed_s, snap.duration_s)
    progress = Table.grid(padding=(0, 1))
    progress.add_row(
        ProgressBar(total=snap.duration_s, completed=elapsed, width=40),
        f"{snap.elapsed_s:6.1f} / {snap.duration_s:g} s",
        Text("draining" if snap.draining else "", style="yellow"),
    )
    counts = Table.grid(padding=(0, 3))
    counts.add_row(
        f"sent {snap.sent} ({snap.sent_rps:.1f}/s)",
        Text(f"ok {snap.ok}", style="green"),
        Text(f"errors {snap.errors}", style="red" if snap.errors else ""),
        Text(f"skipped {snap.skipped}", style="yellow" if snap.skipped else ""),
        f"in flight {snap.in_flight}",
    )
    counts.add_row(
        f"p50 {_ms(snap.p50_ms)}",
        f"p99 {_ms(snap.p99_ms)}",
        Text(f"(last {snap.window_s:g} s)", style="dim"),
        f"instances {'?' if snap.instances is None else snap.instances}",
        "",
    )
    return Group(header, progress, counts)


def _print_summary(result: LoadResult) -> None:
    totals = result.totals
    table = Table(
        title=f"kennel load {escape(result.endpoint)}: {escape(result.plan.describe())}",
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "sent",
        f"{totals.sent} of {result.plan.total_requests} planned, "
        f"achieved {totals.achieved_rps:.1f} requests/s",
    )
    table.add_row("ok", Text(str(totals.ok), style="green"))
    table.add_row("failed", Text(str(totals.failed), style="bold red" if totals.failed else ""))
    table.add_row(
        "skipped (client saturated)",
        Text(str(totals.skipped), style="yellow" if totals.skipped else ""),
    )
    table.add_row(
        "latency p50 / p90 / p99 / max",
        " / ".join(_ms(v) for v in (totals.p50_ms, totals.p90_ms, totals.p99_ms, totals.max_ms)),
    )
    table.add_row("instances", _instances(result))
    table.add_row("elapsed", f"{totals.elapsed_s:.1f} s")
    cpu = totals.client_cpu_ms_per_request
    table.add_row(
        "client",
        f"{'?' if cpu is None else f'{cpu:.2f}'} ms CPU per request, up to "
        f"{totals.max_lag_ms:.0f} ms behind schedule",
    )
    console.print(table)
    if totals.failed_by:
        failures = Table("failed requests", "count", title="failures", title_justify="left")
        for kind, count in totals.failed_by.items():
            failures.add_row(Text(kind, style="red"), Text(str(count), style="red"))
        console.print(failures)
    if totals.skipped:
        console.print(
            f"[yellow]{totals.skipped} arrival(s) found {result.max_in_flight} requests "
            "outstanding and were not sent: raise --max-in-flight, or the server is the "
            "limit.[/]",
            highlight=False,
        )


def _instances(result: LoadResult) -> str:
    counts = [s.instances for s in result.instances if s.instances is not None]
    if not counts:
        failed = [s.error for s in result.instances if s.error]
        return f"unknown ({failed[-1]})" if failed else "unknown"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low} to {high} (last {counts[-1]})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
