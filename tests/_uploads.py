"""Uploading a source directory (a SageMaker-style ``sourcedir.tar.gz``) to a test server."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any


def upload_sources(server: Any, folder: Path, *scripts: Path) -> str:
    """Pack ``scripts`` (flat) into ``folder``/sourcedir.tar.gz, upload it, return its URI."""
    archive = folder / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for script in scripts:
            tar.add(script, arcname=script.name)
    with server.client() as api:
        answer = api.request("PUT", "/api/v1/uploads/sourcedir.tar.gz", upload=archive)
    return str(answer.json()["uri"])


def small_cnn_archive(folder: Path, classes: list[str], image_size: int = 32) -> Path:
    """A built-in image classifier with random weights (seeded): no training, serves in
    seconds. Its model.tar.gz, packed as the trainer packs one, in ``folder``."""
    import torch

    from kennel.trainer import inference
    from kennel.trainer._package import package_model, write_model_dir

    torch.manual_seed(0)
    config = {
        "arch": "small-cnn",
        "image_size": image_size,
        "mean": list(inference.IMAGENET_MEAN),
        "std": list(inference.IMAGENET_STD),
    }
    network = inference.build_network("small-cnn", len(classes))
    write_model_dir(folder / "model", network, classes, config)
    return package_model(folder / "model", folder / "model.tar.gz")


def upload_model(api: Any, archive: Path, name: str) -> dict[str, Any]:
    """Upload a model.tar.gz and create model ``name`` from it; the model's description."""
    uri = api.request("PUT", "/api/v1/uploads/model.tar.gz", upload=archive).json()["uri"]
    model: dict[str, Any] = api.post("/api/v1/models", {"name": name, "artifact_uri": uri})
    return model
