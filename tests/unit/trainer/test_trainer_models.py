"""Architectures and starting weights: torchvision's ResNets, hub-cache weights, --weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.unit.trainer._helpers import IMAGE_SIZE, channels, run_trainer, trainer_env
from torchvision import models  # type: ignore[import-untyped, unused-ignore]

from kennel.trainer import build_model
from kennel.trainer._args import ARCHITECTURES
from kennel.trainer._models import WeightsError, hub_cache_file
from kennel.trainer.inference import ARCHITECTURES as SERVED_ARCHITECTURES

RESNET18 = ["--arch", "resnet18", "--image-size", str(IMAGE_SIZE), "--augmentation", "flip"]
RESNET18 += ["--batch-size", "16", "--lr", "0.01", "--epochs", "1", "--log-interval", "0"]


def _load(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def test_the_argument_parser_knows_every_served_architecture() -> None:
    assert ARCHITECTURES == SERVED_ARCHITECTURES


def test_pretrained_weights_load_from_the_hub_cache_and_stay_frozen(
    demo: Path, tmp_path: Path
) -> None:
    """torchvision's own loader reads the cached file (stand-in weights: no internet here)."""
    torch_home = tmp_path / "torch-home"
    env = trainer_env(torch_home)
    cached = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(123)
    imagenet = models.resnet18().state_dict()
    torch.save(imagenet, cached)
    model_dir = tmp_path / "model"
    args = [*channels(demo, test=False), "--model-dir", str(model_dir), *RESNET18]
    run = run_trainer([*args, "--pretrained", "true", "--freeze-backbone", "true"], env)
    assert run.code == 0, run.explain()
    assert [epoch for epoch, _ in run.epochs()] == [1]
    trained = _load(model_dir / "model.pth")
    assert trained["fc.weight"].shape == (10, 512)  # the head, replaced for 10 classes
    assert not any(key.startswith("module.") for key in trained)  # the bare model
    for key, tensor in imagenet.items():
        if not key.startswith("fc."):  # frozen: weights and BatchNorm statistics alike
            assert torch.equal(trained[key], tensor), key
    config = json.loads((model_dir / "model-config.json").read_text())
    assert config["pretrained"] == "ResNet18_Weights.IMAGENET1K_V1"


def test_hub_cache_path_follows_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert hub_cache_file("resnet50") == expected
    with pytest.raises(WeightsError, match=str(expected)):
        build_model("resnet50", 10, pretrained=True)


def test_local_weights_fill_the_backbone_and_the_head_is_new(tmp_path: Path) -> None:
    source = build_model("resnet18", 1000)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = build_model("resnet18", 7, weights=path)
    loaded, saved = model.state_dict(), source.state_dict()
    for key in ("conv1.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(loaded[key], saved[key]), key
    assert loaded["fc.weight"].shape == (7, 512)


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.pth"
    torch.save(build_model("small-cnn", 10).state_dict(), path)
    with pytest.raises(WeightsError, match="does not fit this architecture"):
        build_model("resnet18", 10, weights=path)
    with pytest.raises(WeightsError, match="no such file"):
        build_model("resnet18", 10, weights=tmp_path / "missing.pth")


def test_freeze_backbone_leaves_only_the_head_trainable() -> None:
    model = build_model("small-cnn", 3, freeze_backbone=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
