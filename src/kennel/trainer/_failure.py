"""SageMaker's failure convention: the text of ``$SM_OUTPUT_DIR/failure`` becomes the
training job's FailureReason, so a person sees why it failed without reading the logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

FAILURE_FILE = "failure"


def write_failure(message: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Write ``message`` to ``$SM_OUTPUT_DIR/failure`` when that variable is set.

    Returns the file written, or None. Never raises: it runs while handling another
    error, which must stay the one reported.
    """
    folder = environ.get("SM_OUTPUT_DIR")
    if not folder:
        return None
    path = Path(folder) / FAILURE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message.rstrip() + "\n", encoding="utf-8")
    except OSError as error:
        print(f"could not write the failure reason to {path}: {error}", file=sys.stderr)
        return None
    return path
