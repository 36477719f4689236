"""DDP on CPU: two real processes (gloo) train as one, and agree to the last bit."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.trainer._helpers import (
    DIGEST_ENV,
    SMALL_CNN,
    channels,
    finish,
    free_port,
    handler_accuracy,
    start_trainer,
    trainer_env,
)

from kennel.trainer._run import state_digest
from kennel.trainer.inference import model_fn

WORLD_SIZE = 2


def test_two_ranks_end_with_identical_weights_and_one_set_of_metrics(
    demo: Path, tmp_path: Path
) -> None:
    port = free_port()
    model_dir = tmp_path / "model"
    args = [*channels(demo), "--model-dir", str(model_dir), *SMALL_CNN, "--epochs", "2"]
    processes = []
    for rank in range(WORLD_SIZE):
        env = trainer_env(
            tmp_path / "torch-home",
            WORLD_SIZE=str(WORLD_SIZE),
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE=str(WORLD_SIZE),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            **{DIGEST_ENV: str(tmp_path / "weights-rank{rank}.sha256")},
        )
        processes.append(start_trainer(args, env))
    main, other = (finish(process) for process in processes)
    assert main.code == 0, main.explain()
    assert other.code == 0, other.explain()

    digests = {(tmp_path / f"weights-rank{r}.sha256").read_text() for r in range(WORLD_SIZE)}
    assert len(digests) == 1, "the ranks ended with different weights"
    assert state_digest(model_fn(str(model_dir)).network) + "\n" in digests  # rank 0 saved it

    assert main.lines("kennel.trainer start world_size=2 rank=0")
    assert [epoch for epoch, _ in main.epochs()] == [1, 2]
    assert other.epochs() == [] and "test_accuracy" not in other.stdout  # rank 0 reports
    # The all-reduced test accuracy is the whole test set's, each image counted once:
    served = handler_accuracy(model_dir, demo / "test")
    assert main.test_accuracy() == pytest.approx(served, abs=1e-4)
