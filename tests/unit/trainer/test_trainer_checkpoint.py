"""Checkpoints: a stopped run resumes where it stopped, and ends where it would have ended."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from tests.unit.trainer._helpers import (
    DIGEST_ENV,
    SMALL_CNN,
    channels,
    finish,
    start_trainer,
    trainer_env,
)

from kennel.trainer import build_model
from kennel.trainer._checkpoint import Progress, load_checkpoint, restore, save_checkpoint


def test_resume_trains_only_the_missing_epochs_and_matches_an_unbroken_run(
    demo: Path, tmp_path: Path
) -> None:
    def start(epochs: int, checkpoints: Path, digest: str) -> subprocess.Popen[str]:
        args = [*channels(demo, test=False), "--model-dir", str(tmp_path / f"model-{digest}")]
        args += [*SMALL_CNN, "--epochs", str(epochs), "--checkpoint-dir", str(checkpoints)]
        env = trainer_env(tmp_path / "torch-home", **{DIGEST_ENV: str(tmp_path / digest)})
        return start_trainer(args, env)

    def succeeded(process: subprocess.Popen[str]) -> str:
        run = finish(process)
        assert run.code == 0, run.explain()
        return run.stdout

    # Independent, so they run side by side (one thread each on the 2-core box).
    first_process = start(1, tmp_path / "ckpt", "first")
    unbroken = succeeded(start(2, tmp_path / "fresh-ckpt", "unbroken"))
    first = succeeded(first_process)
    assert "resumed from checkpoint" not in first
    assert "epoch=1 train_loss=" in unbroken and "epoch=2 train_loss=" in unbroken
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file()

    resumed = succeeded(start(2, tmp_path / "ckpt", "resumed"))
    assert "resumed from checkpoint at epoch=1" in resumed
    assert "epoch=1 " not in resumed and "epoch=2 train_loss=" in resumed
    digest = (tmp_path / "resumed").read_text()
    assert digest == (tmp_path / "unbroken").read_text()  # same RNG, same weights
    assert digest != (tmp_path / "first").read_text()


def test_checkpoints_are_replaced_atomically_and_refuse_another_run(tmp_path: Path) -> None:
    model = build_model("small-cnn", 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    identity = {"arch": "small-cnn", "classes": ["a", "b", "c"]}
    for epoch in (1, 2):
        save_checkpoint(tmp_path, model, optimizer, Progress(epoch, 0.5, 1), identity)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left
    state = load_checkpoint(tmp_path)
    assert state is not None
    assert restore(state, model, optimizer, identity, tmp_path) == Progress(2, 0.5, 1)
    other = {"arch": "small-cnn", "classes": ["a", "b", "d"]}
    with pytest.raises(ValueError, match="belongs to a different run"):
        restore(state, model, optimizer, other, tmp_path)
    assert load_checkpoint(tmp_path / "nothing-here") is None
