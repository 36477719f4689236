"""The ``kennel`` command: a thin, signed client of the HTTP API (plus running the server)."""

from __future__ import annotations

import sys

import typer

from kennel._errors import KennelError
from kennel.cli import (
    datasets,
    endpoints,
    functions,
    iam,
    load,
    monitoring,
    notebooks,
    scaling,
    server,
    serving,
    stack,
    training,
    tuning,
)
from kennel.cli._output import print_error

app = typer.Typer(
    name="kennel",
    help="kennel: train, tune, deploy and serve an image classifier, SageMaker-style, on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings are wrapped at 88 columns: help reflows them (single line breaks join)
    # rather than keeping their breaks and wrapping again at the terminal's width.
    rich_markup_mode=None,
)
app.add_typer(server.app, name="server")
app.command("status")(server.status)
app.add_typer(datasets.app, name="datasets")
app.command("train")(training.train)
app.add_typer(training.jobs_app, name="jobs")
app.command("instance-types")(training.instance_types)
app.add_typer(tuning.app, name="tune")
app.command("serve-model")(serving.serve_model)
app.add_typer(endpoints.models_app, name="models")
app.add_typer(endpoints.configs_app, name="endpoint-configs")
endpoints.endpoints_app.add_typer(scaling.app, name="scaling")
endpoints.endpoints_app.command("activities")(scaling.activities)
endpoints.endpoints_app.command("monitor")(monitoring.monitor)
endpoints.endpoints_app.command("monitor-report")(monitoring.monitor_report)
endpoints.endpoints_app.command("monitoring-schedule")(monitoring.monitoring_schedule)
endpoints.endpoints_app.command("monitoring-schedules")(monitoring.monitoring_schedules)
endpoints.endpoints_app.command("labels")(monitoring.labels)
app.add_typer(endpoints.endpoints_app, name="endpoints")
app.command("deploy")(endpoints.deploy)
app.command("invoke")(endpoints.invoke)
app.command("load")(load.load)
app.add_typer(iam.app, name="iam")
app.add_typer(functions.app, name="functions")
app.command("notebook")(notebooks.notebook)
app.add_typer(notebooks.app, name="notebooks")
app.command("plan")(stack.plan_command)
app.command("up")(stack.up_command)
app.command("down")(stack.down_command)
app.add_typer(stack.app, name="stack")


def main() -> None:
    try:
        app()
    except KennelError as err:
        print_error(err)
        sys.exit(1)
