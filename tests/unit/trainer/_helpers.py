"""Helpers for the trainer tests: run the real CLI and parse what it prints.

Runs are real subprocesses of ``python -m kennel.trainer`` (the way a platform or a
user starts it) on 32 px images, with a clean environment: no SM_* variables leak in
from the machine, and TORCH_HOME points at an empty folder so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

IMAGE_SIZE = 32
SMALL_CNN = [
    "--arch", "small-cnn", "--image-size", str(IMAGE_SIZE), "--augmentation", "none",
    "--optimizer", "adam", "--lr", "0.003", "--batch-size", "16", "--log-interval", "5",
]  # fmt: skip
"""Settings that learn the demo digits reliably within two or three epochs."""
TIMEOUT = 120
DIGEST_ENV = "KENNEL_TRAINER_WEIGHTS_DIGEST_FILE"
EPOCH_LINE = re.compile(
    r"^epoch=(\d+) train_loss=([0-9.]+) valid_loss=([0-9.]+) "
    r"valid_accuracy=([0-9.]+) samples_per_sec=([0-9.]+)$",
    re.MULTILINE,
)
TEST_LINE = re.compile(r"^test_loss=([0-9.]+) test_accuracy=([0-9.]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def epochs(self) -> list[tuple[int, float]]:
        """(epoch, valid_accuracy) per epoch line."""
        return [(int(m[1]), float(m[4])) for m in EPOCH_LINE.finditer(self.stdout)]

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(prefix)]

    def test_accuracy(self) -> float:
        found = TEST_LINE.search(self.stdout)
        assert found, self.explain()
        return float(found[2])

    def explain(self) -> str:
        tail = f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        return f"exit {self.code}\n{tail}"


def trainer_env(torch_home: Path, **extra: str) -> dict[str, str]:
    """The machine's environment without SM_*/DDP variables, plus ``extra``.

    TORCH_HOME points at ``torch_home`` (normally empty, so nothing can be found or
    downloaded), and SM_NUM_CPUS=1 because the box has 2 cores and the tests may run
    beside other work: two threads fighting a busy neighbour run slower than one.
    """
    dropped = ("SM_", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.pop(DIGEST_ENV, None)
    env.update(TORCH_HOME=str(torch_home), SM_NUM_CPUS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start_trainer(args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kennel.trainer", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"trainer timed out after {timeout} s\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return Run(process.returncode, stdout, stderr)


def run_trainer(args: Sequence[str], env: Mapping[str, str], timeout: float = TIMEOUT) -> Run:
    return finish(start_trainer(args, env), timeout)


def channels(demo: Path, *, test: bool = True) -> list[str]:
    args = ["--train", str(demo / "train"), "--valid", str(demo / "valid")]
    return [*args, "--test", str(demo / "test")] if test else args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load_handler(model_dir: Path) -> ModuleType:
    """Import ``model_dir/code/inference.py`` as a model server would: from the file alone."""
    name = f"kennel_test_handler_{abs(hash(model_dir))}"
    spec = importlib.util.spec_from_file_location(name, model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def predict_json(handler: ModuleType, model: Any, body: bytes | str, content_type: str) -> Any:
    """One request through input_fn -> predict_fn -> output_fn, decoded from JSON."""
    data = handler.input_fn(body, content_type)
    return json.loads(handler.output_fn(handler.predict_fn(data, model), "application/json"))


def handler_accuracy(model_dir: Path, split: Path) -> float:
    """Accuracy on ``split`` when every JPEG goes through the model's own handler."""
    handler = load_handler(model_dir)
    model = handler.model_fn(str(model_dir))
    correct = total = 0
    for label, name in enumerate(model.classes):
        for image in sorted((split / name).glob("*.jpg")):
            [scores] = predict_json(handler, model, image.read_bytes(), "image/jpeg")
            correct += int(max(range(len(scores)), key=scores.__getitem__) == label)
            total += 1
    return correct / total
