"""How the CLI speaks: rich tables for people, ``--json`` for programs, one red line on error."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from kennel._errors import KennelError

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
