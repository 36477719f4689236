"""The built-in trainer: fine-tune an image classifier, SageMaker-style or standalone.

``python -m kennel.trainer`` runs the same way under the SageMaker training contract
(paths from ``SM_*`` variables, hyperparameters as ``--name value``, DDP from
``WORLD_SIZE``/``RANK``) and on a bare machine with explicit ``--train``/``--valid``/
``--model-dir`` flags, no kennel server needed. It depends on torch, torchvision, numpy
and PIL only, and writes a model directory (``model.pth``, ``classes.json``,
``model-config.json``, ``code/inference.py``) that any SageMaker-compatible PyTorch
model server can load; ``package_model`` packs it as ``model.tar.gz``.

``build_model`` and ``package_model`` are imported on first use: importing torchvision
takes seconds, and ``main`` and ``TrainerConfig`` (argument checking) do not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kennel.trainer._args import TrainerConfig
from kennel.trainer._main import main

if TYPE_CHECKING:
    from kennel.trainer._models import build_model
    from kennel.trainer._package import package_model

__all__ = ["TrainerConfig", "build_model", "main", "package_model"]


def __getattr__(name: str) -> object:
    if name == "build_model":
        from kennel.trainer._models import build_model

        return build_model
    if name == "package_model":
        from kennel.trainer._package import package_model

        return package_model
    raise AttributeError(f"module 'kennel.trainer' has no attribute {name!r}")
