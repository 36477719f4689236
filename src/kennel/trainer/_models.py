"""Networks for training: the architectures of ``inference.py`` plus starting weights.

Pretrained weights come through torchvision's own loading code, but only from torch
hub's cache: training machines here have no internet, and a download that hangs for
minutes or a silent fallback to random weights would both waste a whole job. So the
cache is checked first and a missing file fails at once, saying where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models  # type: ignore[import-untyped, unused-ignore]

from kennel.trainer.inference import build_network

HEAD = "fc"
"""The classification head's attribute name, the same for every architecture."""

_PRETRAINED: dict[str, Any] = {
    "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": models.ResNet50_Weights.IMAGENET1K_V2,
}


class WeightsError(RuntimeError):
    """Starting weights are missing or do not fit the architecture."""


def build_model(
    arch: str,
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: Path | None = None,
    freeze_backbone: bool = False,
) -> nn.Module:
    """``arch`` with a fresh ``num_classes`` head, from random, ImageNet or local weights."""
    if pretrained:
        model = _from_hub_cache(arch, num_classes)
    else:
        model = build_network(arch, num_classes)
        if weights is not None:
            _load_backbone(model, weights)
    if freeze_backbone:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith(f"{HEAD}.")
    return model


def pretrained_name(arch: str) -> str:
    """``"ResNet50_Weights.IMAGENET1K_V2"``: recorded in model-config.json."""
    return str(_PRETRAINED[arch])


def hub_cache_file(arch: str) -> Path:
    """Where torchvision looks for ``arch``'s ImageNet weights (honours TORCH_HOME)."""
    if arch not in _PRETRAINED:
        raise WeightsError(f"--arch {arch} has no pretrained weights; use --pretrained false")
    url: str = _PRETRAINED[arch].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def require_pretrained(arch: str) -> Path:
    """The cached ImageNet weights file for ``arch``; fails at once, saying where to put it."""
    cached = hub_cache_file(arch)
    if not cached.is_file():
        url = _PRETRAINED[arch].url
        raise WeightsError(
            f"pretrained weights for {arch} are not in torch hub's cache and this trainer "
            f"does not download. Put {url} at {cached} (TORCH_HOME moves the cache), "
            "or pass --weights PATH with a local state_dict, or --pretrained false."
        )
    return cached


def _from_hub_cache(arch: str, num_classes: int) -> nn.Module:
    require_pretrained(arch)
    model: nn.Module = getattr(models, arch)(weights=_PRETRAINED[arch], progress=False)
    head = getattr(model, HEAD)
    setattr(model, HEAD, nn.Linear(head.in_features, num_classes))
    return model


def _load_backbone(model: nn.Module, path: Path) -> None:
    """Load every weight but the head from ``path``; any other mismatch is an error."""
    if not path.is_file():
        raise WeightsError(f"--weights {path}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a kennel checkpoint.pt
    if not isinstance(state, dict):
        raise WeightsError(f"--weights {path}: expected a state_dict, got {type(state).__name__}")
    backbone = {k: v for k, v in state.items() if not k.startswith(f"{HEAD}.")}
    try:
        result = model.load_state_dict(backbone, strict=False)
    except RuntimeError as error:  # shape mismatches raise even when strict=False
        raise WeightsError(f"--weights {path} does not fit this architecture: {error}") from None
    missing = [k for k in result.missing_keys if not k.startswith(f"{HEAD}.")]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"--weights {path} does not fit this architecture: "
            f"missing {_few(missing)}, unexpected {_few(result.unexpected_keys)}"
        )


def _few(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
