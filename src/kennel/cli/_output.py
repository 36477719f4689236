"""How the CLI speaks: rich tables for people, ``--json`` for programs, one red line on error."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kennel._errors import KennelError, ValidationError

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def print_error(err: KennelError) -> None:
    # soft_wrap: the error stays one line however narrow the terminal (scripts grep it).
    err_console.print(
        # escape: a message quotes user text ("aliases reference it: [live]", "kennel[s3]").
        f"[bold red]Error[/] [red]({escape(err.aws_code)}): {escape(err.message)}[/]",
        highlight=False,
        soft_wrap=True,
    )
    if err.hint:
        err_console.print(f"  [dim]hint:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def plain(value: Any) -> Any:
    """boto3's answer as JSON-ready data (datetimes as ISO 8601 text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def when(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):  # boto3's are aware (local time): show UTC like the API
        moment = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19].replace("T", " ")


def fold_table(*columns: str) -> Table:
    """A table whose cells fold long words (ARNs) instead of cutting them."""
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"
    return table


def kv_table() -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def write_page(path: Path, page: str) -> None:
    """Write a report page (``--html``), or say which file could not be written."""
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise ValidationError(
            f"Cannot write {path}: {error.strerror or error}.",
            hint="Give --html a file in a folder you can write to.",
        ) from None
