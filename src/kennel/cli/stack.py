"""``kennel plan|up|down FILE`` and ``kennel stack``: a whole workflow from a stack file.

The engine (``kennel.stack._engine``) does the work through the signed API and boto3,
as any client would; this module reads the file, draws the plan and the progress, and
prints the outputs. Progress goes to stderr, so ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.status import Status

from kennel._client import KennelClient
from kennel._errors import NotFoundError
from kennel.cli._aws import aws_client
from kennel.cli._common import JsonOption, client, settings
from kennel.cli._output import console, err_console, fold_table, kv_table, print_json, when
from kennel.stack._engine import Event, Outcome, Plan, default_handlers, down, plan, up
from kennel.stack._schema import StackFile, json_schema, load_stack
from kennel.stack._types import StackContext

app = typer.Typer(
    help="Stacks: what `kennel up` made from stack files, and the stack file's JSON Schema.",
    no_args_is_help=True,
)

StackPath = Annotated[
    Path, typer.Argument(help="A stack file (YAML), e.g. examples/quickstart/stack.yaml.")
]
_ACTION_COLOURS = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "delete": "red",
    "wait": "cyan",
    "none": "dim",
}
_JOB_KINDS = ("tuning_jobs", "training_jobs")
_DONE_WORDS = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "removed",
    "wait": "waited for",
    "none": "unchanged",
}


def _context(api: KennelClient, stack: StackFile, base: Path, timeout: float) -> StackContext:
    clients: dict[str, Any] = {}

    def aws(service: str) -> Any:
        if service not in clients:
            clients[service] = aws_client(service, cfg=settings())
        return clients[service]

    return StackContext(
        api=api,
        base=base,
        stack=stack.name,
        aws=aws,
        timeout_seconds=timeout,
        lock_seconds=settings().stack_lock_seconds,
    )


def _action(action: str) -> str:
    return f"[{_ACTION_COLOURS.get(action, 'white')}]{action}[/]"


def _plan_table(result: Plan) -> None:
    table = fold_table("kind", "logical name", "physical name", "action", "reason")
    for step in result.steps:
        table.add_row(
            step.address.kind,
            step.address.name,
            step.physical,
            _action(step.action),
            escape(step.reason),
        )
    console.print(table)
    changes = result.changes
    console.print(
        f"Stack {result.stack}: {changes} change{'s' if changes != 1 else ''}"
        + (" (everything is as the file says)." if changes == 0 else ".")
    )


# kennel plan / up / down ------------------------------------------------------------------


def plan_command(file: StackPath, as_json: JsonOption = False) -> None:
    """Show what `kennel up FILE` would create, change or leave alone; changes nothing."""
    stack, base = load_stack(file)
    with client() as api:
        result = plan(
            _context(api, stack, base, 60.0), stack, handlers=default_handlers(), where=str(file)
        )
    if as_json:
        print_json(result.to_dict())
        return
    _plan_table(result)


def up_command(
    file: StackPath,
    timeout: Annotated[
        float, typer.Option(help="The longest one step waits for its resource, in seconds.")
    ] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Bring a stack up: every block in dependency order, idempotent and resumable.

    A second run changes nothing; a run after an interruption (Ctrl-C, a kill) finds what
    the earlier one made and waits for the jobs it started. On failure the error says what
    exists and what does not. One run per stack at a time: another is refused while this
    one holds the stack's lock (a killed run's lock expires after
    KENNEL_STACK_LOCK_SECONDS).
    """
    stack, base = load_stack(file)
    with client() as api, _progress() as report, _terminated_as_interrupt():
        ctx = _context(api, stack, base, timeout)
        handlers = default_handlers()
        if not as_json:
            _plan_table(plan(ctx, stack, handlers=handlers, where=str(file)))
        try:
            outcome = up(
                ctx, stack, handlers=handlers, report=report, where=str(file), file=str(file)
            )
        except KeyboardInterrupt:
            err_console.print(
                "[yellow]Interrupted.[/] Jobs already started go on on the server; run "
                f"`kennel up {file}` again to resume.",
                highlight=False,
            )
            raise typer.Exit(130) from None
    _show_outcome(outcome, as_json)


def down_command(
    file: StackPath,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    timeout: Annotated[
        float, typer.Option(help="The longest one step waits, in seconds.")
    ] = 1800.0,
    as_json: JsonOption = False,
) -> None:
    """Remove what the stack made (the server's record says what), dependents first.

    Training and tuning jobs stay as records, as on SageMaker (running ones are stopped).
    Asks first when run in a terminal, unless --yes.
    """
    stack, base = load_stack(file)
    with client() as api:
        try:
            record: dict[str, Any] | None = api.get(f"/api/v1/stacks/{stack.name}")
        except NotFoundError:
            record = None
        if record is not None and not yes and sys.stdin.isatty():
            owned = [r for r in record["resources"] if r.get("owned", True)]
            names = ", ".join(f"{r['address']} ({r['physical']})" for r in owned)
            if not typer.confirm(f"Remove stack {stack.name}: {names or 'no resources'}?"):
                raise typer.Exit(1)
        with _progress() as report, _terminated_as_interrupt():
            try:
                outcome = down(
                    _context(api, stack, base, timeout), handlers=default_handlers(), report=report
                )
            except KeyboardInterrupt:
                err_console.print(
                    f"[yellow]Interrupted.[/] Run `kennel down {file}` again to finish.",
                    highlight=False,
                )
                raise typer.Exit(130) from None
    if as_json:
        print_json(outcome.to_dict())
        return
    for warning in outcome.warnings:
        console.print(f"[yellow]{escape(warning)}[/]")
    deleted = [s for s in outcome.steps if s["action"] == "delete"]
    jobs = sum(1 for s in deleted if s["kind"] in _JOB_KINDS)
    kept = f", {jobs} job{'s' if jobs != 1 else ''} kept as records" if jobs else ""
    console.print(f"Stack {stack.name} is down ({len(deleted) - jobs} removed{kept}).")


def _show_outcome(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print_json(outcome.to_dict())
        return
    for warning in outcome.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    changed = sum(1 for s in outcome.steps if s["action"] != "none")
    console.print(f"Stack {outcome.stack} is up ({changed} changed).")
    if outcome.outputs:
        table = kv_table()
        for key, value in outcome.outputs.items():
            table.add_row(key, escape(value if isinstance(value, str) else json.dumps(value)))
        console.print(table)


@contextmanager
def _progress() -> Iterator[Any]:
    """A spinner with the current step's news; a line per finished step (on stderr)."""
    status: Status | None = None
    started: dict[str, float] = {}

    def report(event: Event) -> None:
        nonlocal status
        name = str(event.address) if event.address else ""
        if event.kind == "start":
            started.setdefault(name, time.monotonic())
            what = (
                f"{_action(event.step.action)} {event.step.physical}" if event.step else "checking"
            )
            text = f"{name}: {what}"
            if status is None:
                status = err_console.status(text)
                status.start()
            else:
                status.update(text)
        elif event.kind == "progress" and status is not None:
            status.update(f"{name}: {escape(event.message)}")
        elif event.kind == "done" and event.step is not None:
            seconds = time.monotonic() - started.pop(name, time.monotonic())
            word = _DONE_WORDS.get(event.step.action, event.step.action)
            if event.step.action == "delete" and event.step.address.kind in _JOB_KINDS:
                word = "retired"  # a job is stopped if running and stays, as a record
            colour = _ACTION_COLOURS.get(event.step.action, "white")
            took = f" [dim]({_duration(seconds)})[/]" if seconds >= 1 else ""
            err_console.print(
                f"  [{colour}]{word:>10}[/] {name} [dim]{event.step.physical}[/]{took}",
                highlight=False,
            )
        elif event.kind == "warning":
            err_console.print(f"  [yellow]warning[/] {escape(event.message)}", highlight=False)

    try:
        yield report
    finally:
        if status is not None:
            status.stop()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does: the record says interrupted, jobs go on."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# kennel stack ... --------------------------------------------------------------------------


@app.command("schema")
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it to this file.")
    ] = None,
) -> None:
    """The stack file's JSON Schema (for editors: `# yaml-language-server: $schema=...`)."""
    text = schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def schema_text() -> str:
    """The schema as ``docs/stack.schema.json`` holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


@app.command("list")
def list_stacks(as_json: JsonOption = False) -> None:
    """The stacks the server has records of."""
    with client() as api:
        stacks: list[dict[str, Any]] = api.get("/api/v1/stacks")["stacks"]
    if as_json:
        print_json(stacks)
        return
    table = fold_table("name", "status", "resources", "updated", "file")
    for item in stacks:
        table.add_row(
            item["name"],
            item["status"],
            str(item["resource_count"]),
            when(item["updated_at"]),
            item["file"],
        )
    console.print(table)


@app.command("describe")
def describe(name: str, as_json: JsonOption = False) -> None:
    """A stack's record: its resources, their status and attributes, and its outputs."""
    with client() as api:
        info: dict[str, Any] = api.get(f"/api/v1/stacks/{name}")
    if as_json:
        print_json(info)
        return
    head = kv_table()
    head.add_row("name", info["name"])
    head.add_row("status", info["status"])
    if info["status_reason"]:
        head.add_row("reason", escape(info["status_reason"]))
    head.add_row("file", info["file"] or "-")
    head.add_row("updated", when(info["updated_at"]))
    lock = info.get("lock")
    if lock:
        holder = lock["holder"] or f"a kennel {lock['operation']}"
        state = "expired (the next run takes it over)" if lock["expired"] else "held"
        head.add_row(
            "lock",
            escape(
                f"{state} by {holder} since {when(lock['acquired_at'])}, last renewed "
                f"{when(lock['renewed_at'])}"
            ),
        )
    console.print(head)
    table = fold_table("address", "physical name", "status", "attributes")
    for resource in info["resources"]:
        attributes = ", ".join(
            f"{k}={v}" for k, v in resource["attributes"].items() if k != "name" and v is not None
        )
        status = resource["status"] + ("" if resource.get("owned", True) else " (not owned)")
        table.add_row(resource["address"], resource["physical"], status, escape(attributes))
    console.print(table)
    if info["outputs"]:
        outputs = kv_table()
        for key, value in info["outputs"].items():
            outputs.add_row(key, escape(str(value)))
        console.print(outputs)
