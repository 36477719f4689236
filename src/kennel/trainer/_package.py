"""The model directory and model.tar.gz, in the layout SageMaker's PyTorch serving expects.

``model.tar.gz`` holds the model files at the archive root and the handler under
``code/``: SageMaker unpacks it into /opt/ml/model and imports ``code/inference.py``.
The handler is a copy of this package's ``inference.py``, so a model keeps working
whatever later happens to kennel.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import torch
import torchvision  # type: ignore[import-untyped, unused-ignore]
from torch import nn

from kennel.trainer import inference

REQUIREMENTS = (
    "# torch, torchvision, numpy and pillow come with the serving image; nothing else is needed.\n"
)


def write_model_dir(
    model_dir: Path,
    model: nn.Module,
    classes: list[str],
    config: dict[str, Any],
) -> list[Path]:
    """Write model.pth, classes.json, model-config.json and code/; returns what was written.

    ``model`` must be the bare network (not DDP-wrapped), so the state_dict keys carry
    no ``module.`` prefix and ``inference.model_fn`` loads them as they are.
    """
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    weights = model_dir / inference.MODEL_FILE
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    names = _write_json(model_dir / inference.CLASSES_FILE, classes)
    settings = {**config, "num_classes": len(classes), **_frameworks()}
    described = _write_json(model_dir / inference.CONFIG_FILE, settings)
    handler = Path(shutil.copyfile(inference.__file__, code / "inference.py"))
    requirements = code / "requirements.txt"
    requirements.write_text(REQUIREMENTS, encoding="utf-8")
    return [weights, names, described, handler, requirements]


def package_model(model_dir: Path | str, target_tar_gz: Path | str) -> Path:
    """Pack ``model_dir`` into ``target_tar_gz`` as SageMaker does: its contents at the root.

    Written to a temporary name and renamed, so an upload never picks up half an archive.
    A target inside ``model_dir`` is left out of itself.
    """
    source, target = Path(model_dir), Path(target_tar_gz)
    if not source.is_dir():
        raise FileNotFoundError(f"model dir {source} does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    skip = {target.resolve(), partial.resolve()}
    with tarfile.open(partial, "w:gz") as archive:
        for entry in sorted(source.iterdir()):
            if entry.resolve() not in skip:
                archive.add(entry, arcname=entry.name, filter=_normalise)
    os.replace(partial, target)
    return target


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No local user names or ids in the archive."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _frameworks() -> dict[str, Any]:
    return {
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+", 1)[0],
        "torchvision_version": torchvision.__version__.split("+", 1)[0],
    }


def _write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    return path
