"""Arguments: SM_* defaults, SageMaker's string hyperparameters, and fast, clear refusals."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.unit.trainer._helpers import SMALL_CNN, channels, run_trainer

from kennel.trainer import TrainerConfig, main
from kennel.trainer._args import parse_args

SAGEMAKER_VARIABLES = (
    "SM_MODEL_DIR",
    "SM_CHANNEL_TRAIN",
    "SM_CHANNEL_VALID",
    "SM_CHANNEL_TEST",
    "SM_OUTPUT_DATA_DIR",
    "SM_CHECKPOINT_DIR",
    "SM_OUTPUT_DIR",
    "WORLD_SIZE",
)
REQUIRED = ["--model-dir", "m", "--train", "t", "--valid", "v"]


@pytest.fixture(autouse=True)
def _no_sagemaker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() reads os.environ: start every test from a machine with no SM_* set."""
    for name in SAGEMAKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_paths_default_to_the_sagemaker_environment() -> None:
    environ = {
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
        "SM_CHANNEL_VALID": "/opt/ml/input/data/valid",
        "SM_CHECKPOINT_DIR": "/opt/ml/checkpoints",
    }
    config = parse_args(["--lr", "0.001", "--batch-size", "64"], environ)
    assert config.model_dir == Path("/opt/ml/model")
    assert config.train == Path("/opt/ml/input/data/train")
    assert config.checkpoint_dir == Path("/opt/ml/checkpoints")
    assert config.test is None and config.output_data_dir is None
    assert (config.lr, config.batch_size) == (0.001, 64)


def test_flags_override_the_environment() -> None:
    config = parse_args([*REQUIRED, "--test", "x"], {"SM_MODEL_DIR": "/opt/ml/model"})
    assert config.model_dir == Path("m") and config.test == Path("x")


def test_defaults() -> None:
    config = parse_args(REQUIRED, {})
    assert config == TrainerConfig(Path("m"), Path("t"), Path("v"))
    assert (config.arch, config.pretrained, config.image_size, config.workers) == (
        "resnet50",
        False,
        224,
        0,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("False", False), ("1", True), ("0", False), ("YES", True), ("no", False)],
)
def test_booleans_accept_the_usual_spellings(text: str, value: bool) -> None:
    config = parse_args([*REQUIRED, "--freeze-backbone", text, "--pretrained", "false"], {})
    assert config.freeze_backbone is value


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "argument --lr: must be > 0.0, got '-1'"),
        (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
        (["--arch", "nope"], "argument --arch: expected one of resnet18, resnet34, resnet50"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1, got '0'"),
        (["--epochs", "1.5"], "argument --epochs: expected an integer, got '1.5'"),
        (["--pretrained", "maybe"], "argument --pretrained: expected true/false"),
        (["--workers", "-1"], "argument --workers: must be >= 0"),
        (["--image-size", "4"], "argument --image-size: must be >= 8"),
        (["--learning-rate", "0.1"], "unrecognized arguments: --learning-rate 0.1"),
        (["--batch", "8"], "unrecognized arguments: --batch 8"),  # no abbreviations
        (["--arch", "small-cnn", "--pretrained", "true"], "small-cnn has no pretrained weights"),
        (["--weights", "w.pth", "--pretrained", "true"], "exclusive"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*REQUIRED, *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "env"), [("--train", "SM_CHANNEL_TRAIN"), ("--model-dir", "SM_MODEL_DIR")]
)
def test_a_missing_path_names_the_flag_and_the_variable(
    flag: str, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        a
        for pair in zip(REQUIRED[::2], REQUIRED[1::2], strict=True)
        if pair[0] != flag
        for a in pair
    ]
    assert main(args) == 2
    assert f"{flag} is required (or set the environment variable {env})" in capsys.readouterr().err


def test_bad_arguments_become_the_failure_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    assert main([*REQUIRED, "--lr", "0"]) == 2
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("Invalid arguments: argument --lr: must be > 0.0")


def test_the_cli_exits_2_before_training(
    demo: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    run = run_trainer(
        [*channels(demo), "--model-dir", str(tmp_path / "m"), *SMALL_CNN, "--epoch", "1"], clean_env
    )
    assert run.code == 2, run.explain()
    assert "unrecognized arguments: --epoch 1" in run.stderr
    assert not (tmp_path / "m").exists()


def test_pretrained_without_cached_weights_fails_fast_naming_the_path(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_home = tmp_path / "empty-torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    args = [*channels(demo), "--model-dir", str(tmp_path / "m"), "--arch", "resnet50"]
    started = time.monotonic()
    assert main([*args, "--pretrained", "true"]) == 1
    assert time.monotonic() - started < 10
    expected = torch_home / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    err = capsys.readouterr().err
    assert str(expected) in err and "--weights PATH" in err and "--pretrained false" in err
    assert str(expected) in (tmp_path / "output" / "failure").read_text()
