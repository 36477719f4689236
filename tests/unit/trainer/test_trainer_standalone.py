"""The EC2 path: ``python -m kennel.trainer`` with explicit paths and no kennel server."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.unit.trainer._helpers import (
    SMALL_CNN,
    Run,
    channels,
    handler_accuracy,
    load_handler,
    predict_json,
    run_trainer,
    trainer_env,
)

from kennel.trainer import package_model

MODEL_FILES = {"model.pth", "classes.json", "model-config.json", "code"}


@dataclass(frozen=True)
class Trained:
    run: Run
    model_dir: Path
    output_dir: Path
    package: Path


@pytest.fixture(scope="module")
def trained(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One 3-epoch small-cnn run, shared by the tests of its outputs."""
    root = tmp_path_factory.mktemp("standalone")
    model_dir, output_dir, package = root / "model", root / "output", root / "out/model.tar.gz"
    args = [*channels(demo), "--model-dir", str(model_dir), "--output-data-dir", str(output_dir)]
    args += [*SMALL_CNN, "--epochs", "3", "--package", str(package)]
    run = run_trainer(args, trainer_env(root / "torch-home"))
    assert run.code == 0, run.explain()
    return Trained(run, model_dir, output_dir, package)


def test_every_epoch_prints_a_parseable_metric_line(trained: Trained) -> None:
    epochs = trained.run.epochs()
    assert [epoch for epoch, _ in epochs] == [1, 2, 3], trained.run.explain()
    assert epochs[-1][1] > 0.2, f"no better than chance (10 classes): {epochs}"
    assert 0.2 < trained.run.test_accuracy() <= 1.0
    assert trained.run.lines("kennel.trainer start world_size=1 ")
    assert trained.run.lines("step=5 epoch=1 loss=")  # --log-interval 5


def test_model_dir_holds_what_the_serving_container_needs(trained: Trained, demo: Path) -> None:
    assert {p.name for p in trained.model_dir.iterdir()} >= MODEL_FILES
    assert (trained.model_dir / "code" / "requirements.txt").is_file()
    classes = json.loads((trained.model_dir / "classes.json").read_text())
    assert classes == sorted(p.name for p in (demo / "train").iterdir())
    config = json.loads((trained.model_dir / "model-config.json").read_text())
    assert config["arch"] == "small-cnn"
    assert config["num_classes"] == 10
    assert config["image_size"] == 32
    assert config["mean"] == [0.485, 0.456, 0.406] and config["std"] == [0.229, 0.224, 0.225]
    assert config["framework"] == "pytorch" and config["framework_version"]
    metrics = json.loads((trained.output_dir / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]


def test_the_shipped_handler_predicts_a_jpeg(trained: Trained, demo: Path) -> None:
    handler = load_handler(trained.model_dir)
    model = handler.model_fn(str(trained.model_dir))
    jpeg = next((demo / "test" / "003.two").glob("*.jpg")).read_bytes()
    scores = predict_json(handler, model, jpeg, "image/jpeg")
    assert len(scores) == 1 and len(scores[0]) == 10
    assert all(isinstance(score, float) for score in scores[0])


def test_the_handler_reproduces_the_reported_test_accuracy(trained: Trained, demo: Path) -> None:
    """Serving preprocesses exactly as the trainer evaluated: same model, same numbers."""
    served = handler_accuracy(trained.model_dir, demo / "test")
    assert served == pytest.approx(trained.run.test_accuracy(), abs=1e-4)


def test_package_puts_the_model_at_the_archive_root(trained: Trained, tmp_path: Path) -> None:
    for archive in (trained.package, package_model(trained.model_dir, tmp_path / "m.tar.gz")):
        with tarfile.open(archive, "r:gz") as tar:
            names = set(tar.getnames())
        assert {"model.pth", "classes.json", "model-config.json", "code/inference.py"} <= names
        assert not any(name.startswith(("/", "./", "model/")) for name in names)


def test_package_leaves_out_a_target_inside_the_model_dir(trained: Trained) -> None:
    target = trained.model_dir / "model.tar.gz"
    try:
        with tarfile.open(package_model(trained.model_dir, target), "r:gz") as tar:
            assert "model.tar.gz" not in tar.getnames()
    finally:
        target.unlink(missing_ok=True)
