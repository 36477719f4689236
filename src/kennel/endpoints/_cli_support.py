"""What ``kennel serve-model`` runs: one model server in the foreground.

The model can be a model dir or the ``model.tar.gz`` that training produced (SageMaker
unpacks it into /opt/ml/model; here it goes into a temporary folder, removed on exit).
Archives are unpacked with ``kennel.datasets.safe_extract``: a model archive is uploaded
by users like a data set is, so it gets the same checks against escaping paths and bombs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from kennel._errors import ValidationError
from kennel.endpoints._model_server import serve_model

log = logging.getLogger(__name__)


def run_model_server(model_dir: Path, host: str, port: int | None, threads: int | None) -> None:
    """Serve ``model_dir`` (a folder or a model.tar.gz) until SIGTERM/SIGINT.

    ``port`` None means ``SAGEMAKER_BIND_TO_PORT`` or 8080; ``threads`` None means
    ``KENNEL_MODEL_THREADS`` or torch's default.
    """
    _configure_logging()
    model = Path(model_dir)
    if model.is_dir():
        serve_model(model, host, port, threads=threads)
    elif model.is_file():
        with tempfile.TemporaryDirectory(prefix="kennel-model-") as unpacked:
            _unpack(model, Path(unpacked))
            serve_model(Path(unpacked), host, port, threads=threads)
    else:
        raise ValidationError(
            f"{model} does not exist",
            hint="Pass a model dir (model.pth, code/inference.py, ...) or a model.tar.gz.",
        )


def _unpack(archive: Path, dest: Path) -> None:
    # Imported here: kennel.datasets costs ~1 s to import and only archives need it.
    from kennel.datasets import archive_kind, safe_extract

    if archive_kind(archive) != "tar":
        raise ValidationError(
            f"{archive} is neither a model dir nor a tar archive",
            hint="Pass the model.tar.gz a training job wrote, or the folder it was packed from.",
        )
    log.info("unpacking %s into %s", archive, dest)
    safe_extract(archive, dest)


def _configure_logging() -> None:
    """Startup and load messages at INFO; requests are never logged at INFO."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
