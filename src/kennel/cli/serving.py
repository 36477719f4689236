"""``kennel serve-model``: one model server (the SageMaker hosting contract), alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kennel._errors import ValidationError


def serve_model(
    model: Annotated[
        Path, typer.Option("--model-dir", help="A model folder or model.tar.gz (from a job).")
    ],
    host: Annotated[str, typer.Option(help="Address to bind (SageMaker binds 0.0.0.0).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int | None, typer.Option(help="Port (default: SAGEMAKER_BIND_TO_PORT, else 8080).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads (default: KENNEL_MODEL_THREADS).")
    ] = None,
) -> None:
    """Serve a model: GET /ping, POST /invocations, the model's own inference.py handlers."""
    if not model.exists():
        raise ValidationError(
            f"{model} does not exist.",
            hint="Give the model folder or the model.tar.gz a training job wrote.",
        )
    from kennel.endpoints._cli_support import run_model_server

    run_model_server(model, host, port, threads)
