"""The SageMaker training contract: SM_* paths, hyperparameters as flags, the failure file.

These call ``main`` in this process with the environment a platform would set (the
subprocess path is covered by the standalone and DDP tests); that saves the seconds of
importing torch again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.unit.trainer._helpers import EPOCH_LINE, SMALL_CNN

from kennel.trainer import main


@pytest.fixture
def sagemaker_env(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """What the platform sets inside the "container", rooted at ``tmp_path``."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    variables = {
        "SM_MODEL_DIR": tmp_path / "opt/ml/model",
        "SM_CHANNEL_TRAIN": demo / "train",
        "SM_CHANNEL_VALID": demo / "valid",
        "SM_CHANNEL_TEST": demo / "test",
        "SM_OUTPUT_DATA_DIR": tmp_path / "opt/ml/output/data",
        "SM_OUTPUT_DIR": tmp_path / "opt/ml/output",
        "SM_CHECKPOINT_DIR": tmp_path / "opt/ml/checkpoints",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("SM_CHANNELS", json.dumps(["test", "train", "valid"]))
    monkeypatch.setenv("SM_NUM_CPUS", "1")
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)  # main() set it from SM_NUM_CPUS


def test_sagemaker_environment_alone_is_enough(
    sagemaker_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = sagemaker_env
    assert main([*SMALL_CNN, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert [m[1] for m in EPOCH_LINE.finditer(out)] == ["1"]
    assert "test_accuracy=" in out
    model = root / "opt/ml/model"
    assert {"model.pth", "classes.json", "model-config.json"} <= {p.name for p in model.iterdir()}
    assert (model / "code" / "inference.py").is_file()
    assert (root / "opt/ml/checkpoints/checkpoint.pt").is_file()
    metrics = json.loads((root / "opt/ml/output/data/metrics.json").read_text())
    assert metrics["epochs"][0]["epoch"] == 1 and "test_accuracy" in metrics
    assert not (root / "opt/ml/output/failure").exists()


def test_a_crash_writes_the_failure_reason(
    sagemaker_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = sagemaker_env / "empty-train"
    (empty / "001.zero").mkdir(parents=True)  # a class folder without images
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(empty))
    assert main([*SMALL_CNN, "--epochs", "1"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    reason = (sagemaker_env / "opt/ml/output/failure").read_text()
    assert reason.startswith(f"ChannelError: the train channel {empty} is not usable")
    assert "Found no valid file for the classes 001.zero" in reason
    assert not (sagemaker_env / "opt/ml/model/model.pth").exists()
