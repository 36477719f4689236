"""The debugger and profiler in the CLI: ``kennel train --rule``, rule statuses in
``kennel jobs describe``, and ``kennel jobs report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from kennel._client import path_segment
from kennel._errors import ValidationError
from kennel.cli._common import client
from kennel.cli._output import console, write_page

BASE = "/api/v1/training-jobs"
STATUS_COLOURS = {
    "IssuesFound": "red",
    "NoIssuesFound": "green",
    "InProgress": "yellow",
    "Error": "magenta",
}
PROFILER_RULES = {
    "cpu_bottleneck",
    "io_bottleneck",
    "low_gpu_utilization",
    "step_outlier",
    "batch_size",
    "load_balancing",
    "profiler_report",
}
"""Which ``--rule`` names go to the profiler block (the server checks them all again)."""


def parse_rule(text: str) -> dict[str, Any]:
    """``name[:key=value,...]``; ``action=StopTraining`` adds the action."""
    name, _, rest = text.partition(":")
    if not name.strip():
        raise ValidationError(f"--rule {text!r} names no rule.", hint="e.g. --rule dead_relu")
    rule: dict[str, Any] = {"rule": name.strip(), "parameters": {}, "actions": []}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValidationError(
                f"--rule {text!r}: {part!r} is not key=value.",
                hint="e.g. --rule 'vanishing_gradient:threshold=1e-6,action=StopTraining'",
            )
        if key.strip() == "action":
            rule["actions"].append(value.strip())
        else:
            rule["parameters"][key.strip()] = value.strip()
    return rule


def debug_blocks(
    rules: list[str] | None,
    debugger_file: Path | None,
    *,
    profiler: bool,
    save_interval: int | None,
) -> dict[str, Any]:
    """The ``debugger`` and ``profiler`` blocks of a training job spec from the options."""
    debugger: dict[str, Any] | None = _load_block(debugger_file) if debugger_file else None
    profiler_block: dict[str, Any] = {"enabled": profiler}
    for text in rules or []:
        rule = parse_rule(text)
        from kennel.debugger.rules import snake_case

        if snake_case(rule["rule"]) in PROFILER_RULES:
            profiler_block.setdefault("rules", []).append(rule)
        else:
            debugger = debugger if debugger is not None else {}
            debugger.setdefault("rules", []).append(rule)
    if save_interval is not None:
        debugger = debugger if debugger is not None else {}
        debugger["save_interval"] = save_interval
    if debugger is not None:
        debugger.setdefault("collections", _collections_for(debugger.get("rules", [])))
    blocks: dict[str, Any] = {"profiler": profiler_block}
    if debugger is not None:
        blocks["debugger"] = debugger
    return blocks


def _collections_for(rules: list[dict[str, Any]]) -> list[str]:
    """The default collections plus what the asked rules read (activations are not saved
    by default: they cost a forward hook per activation layer)."""
    from kennel.debugger._spec import DEFAULT_COLLECTIONS
    from kennel.debugger.rules import rule_class

    wanted: list[str] = list(DEFAULT_COLLECTIONS)
    for rule in rules:
        try:
            needs = rule_class(rule["rule"]).needs
        except KeyError:
            continue  # the server names the known rules
        wanted += [c for c in needs if c not in wanted]
    return wanted


def _load_block(path: Path) -> dict[str, Any]:
    try:
        block = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Cannot read {path}: {exc}") from None
    if not isinstance(block, dict):
        raise ValidationError(
            f"{path} must hold a mapping (save_interval, collections, rules).",
            hint="See `kennel jobs report --help` and the README's debugger section.",
        )
    inner = block.get("debugger", block)
    return dict(inner) if isinstance(inner, dict) else block


def show_rules(statuses: list[dict[str, Any]]) -> None:
    """The rule statuses under a job's description."""
    if not statuses:
        return
    table = Table("rule", "kind", "status", "what it found", title="Rules")
    for status in statuses:
        colour = STATUS_COLOURS.get(status["status"], "white")
        found = status["status_details"] or ""
        if status["status"] == "IssuesFound" and status.get("advice"):
            found += f"\n[dim]{status['advice']}[/]"
        table.add_row(
            status["rule_configuration_name"],
            status["kind"],
            f"[{colour}]{status['status']}[/]",
            found,
        )
    console.print(table)


def report_command(
    name: str,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The HTML file (default NAME-report.html).")
    ] = None,
) -> None:
    """Write a job's profiler report: system use, step times, phases, rules, curves."""
    with client() as api:
        page = api.request("GET", f"{BASE}/{path_segment(name)}/report").text
    target = out or Path(f"{name}-report.html")
    write_page(target, page)
    console.print(f"Wrote the report to {escape(str(target))}.", highlight=False)
