"""Channels -> loaders: shared class indices, unpadded evaluation shards, no lone batch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch.utils.data import Subset

from kennel.trainer._args import parse_args
from kennel.trainer._data import ChannelError, _lone_last, build_loaders
from kennel.trainer._dist import Placement


def _config(demo: Path, *extra: str) -> Any:
    args = ["--train", str(demo / "train"), "--valid", str(demo / "valid"), "--model-dir", "m"]
    return parse_args([*args, "--image-size", "32", "--batch-size", "16", *extra], {})


def _placement(rank: int = 0, world_size: int = 1) -> Placement:
    return Placement(rank, world_size, rank, world_size, torch.device("cpu"))


def test_a_channel_missing_a_class_keeps_the_training_indices(demo: Path, tmp_path: Path) -> None:
    """ImageFolder alone would renumber 002.one as 0 when 001.zero is missing."""
    valid = tmp_path / "valid"
    shutil.copytree(demo / "valid", valid)
    shutil.rmtree(valid / "001.zero")
    config = _config(demo, "--test", str(valid))
    loaders = build_loaders(config, _placement())
    assert loaders.test is not None
    targets = {label for _, label in cast(Any, loaders.test.dataset).samples}
    assert targets == set(range(1, 10))
    assert loaders.classes[0] == "001.zero"


def test_a_channel_with_an_unknown_class_is_refused(demo: Path, tmp_path: Path) -> None:
    valid = tmp_path / "valid"
    shutil.copytree(demo / "valid", valid)
    shutil.copytree(valid / "002.one", valid / "011.eleven")
    with pytest.raises(ChannelError, match="the test channel .* lacks: 011.eleven"):
        build_loaders(_config(demo, "--test", str(valid)), _placement())


def test_ddp_evaluation_shards_are_disjoint_and_complete(demo: Path) -> None:
    """Each image is evaluated once in all: no DistributedSampler padding repeats."""
    shards = []
    for rank in range(3):
        valid = build_loaders(_config(demo), _placement(rank, 3)).valid.dataset
        shards.append(list(cast(Subset[Any], valid).indices))
    seen = [index for shard in shards for index in shard]
    assert sorted(seen) == list(range(60))


def test_a_one_image_last_batch_is_dropped_only_then() -> None:
    config = parse_args(
        ["--train", "t", "--valid", "v", "--model-dir", "m", "--batch-size", "16"], {}
    )
    assert _lone_last(range(17), config, _placement())
    assert not _lone_last(range(18), config, _placement())
    assert not _lone_last(range(1), config, _placement())
    assert _lone_last(range(33), config, _placement(0, 2))  # 17 per rank
