"""Fixtures for the model server tests: three model dirs and a server for each.

The three servers start together (loading is mostly waiting for imports, so on two
cores they overlap well) and are shared by the whole session:

* ``trained``: the built-in trainer's model dir (an untrained small CNN: the wiring is
  what is tested), served from its ``model.tar.gz`` on the port in SAGEMAKER_BIND_TO_PORT;
* ``custom``: a user's own ``code/inference.py`` with a sibling module, served from a dir;
* ``scripted``: only a TorchScript ``model.pth``, no code, served with the defaults.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.unit.endpoints._model_servers import (
    CUSTOM_HANDLER,
    ModelServer,
    free_port,
    start_server,
    stop_server,
    wait_ready,
)
from torch import nn

from kennel.datasets import make_demo
from kennel.trainer._package import package_model, write_model_dir
from kennel.trainer.inference import build_network

CLASSES = [f"{i:03d}.class{i}" for i in range(1, 11)]


class Affine(nn.Module):
    """``x @ W.T + b`` with fixed weights, so answers can be checked exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]]))
            self.linear.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving-demo") / "digits"
    make_demo(root, image_size=32, per_class=(1, 1, 1))
    return root


@pytest.fixture(scope="session")
def trained_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a training job with the built-in trainer uploads: model.tar.gz."""
    root = tmp_path_factory.mktemp("trained")
    config = {"arch": "small-cnn", "image_size": 32}
    write_model_dir(root / "model", build_network("small-cnn", len(CLASSES)), CLASSES, config)
    return package_model(root / "model", root / "model.tar.gz")


@pytest.fixture(scope="session")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("custom") / "model"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(CUSTOM_HANDLER, encoding="utf-8")
    (model / "code" / "helper.py").write_text('GREETING = "hello"\n', encoding="utf-8")
    (model / "prefix.txt").write_text("echo:", encoding="utf-8")
    return model


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("scripted") / "model"
    model.mkdir()
    with warnings.catch_warnings():  # TorchScript is deprecated, but SageMaker models use it
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(Affine()).save(str(model / "model.pth"))  # type: ignore[no-untyped-call]
    return model


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
    trained_tarball: Path,
    custom_model: Path,
    scripted_model: Path,
) -> Iterator[dict[str, ModelServer]]:
    logs = tmp_path_factory.mktemp("server-logs")
    env_port = {"SAGEMAKER_BIND_TO_PORT": str(free_port())}
    started = {
        "custom": start_server(custom_model, logs / "custom.log", port=free_port()),
        "trained": start_server(trained_tarball, logs / "trained.log", env=env_port),
        "scripted": start_server(scripted_model, logs / "scripted.log", port=free_port()),
    }
    try:
        yield {name: wait_ready(server) for name, server in started.items()}
    finally:
        codes = {name: stop_server(server) for name, server in started.items()}
    assert codes == dict.fromkeys(started, 0), codes


@pytest.fixture(scope="session")
def trained(servers: dict[str, ModelServer]) -> ModelServer:
    return servers["trained"]


@pytest.fixture(scope="session")
def custom(servers: dict[str, ModelServer]) -> ModelServer:
    return servers["custom"]


@pytest.fixture(scope="session")
def scripted(servers: dict[str, ModelServer]) -> ModelServer:
    return servers["scripted"]
