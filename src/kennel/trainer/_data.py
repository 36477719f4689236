"""Channels -> data loaders.

Every channel is an ImageFolder (``001.zero/xxx.jpg``), and all channels share the
training channel's class indices: ImageFolder numbers the folders it finds, so a
validation folder lacking one class would otherwise shift every later label and make
the metrics meaningless without any error.

Under DDP the training set is split by a DistributedSampler (reshuffled each epoch via
``set_epoch``). Validation and test sets are split into disjoint, unpadded shards
instead: DistributedSampler pads shards to equal length by repeating images, which
would count those images twice in the all-reduced accuracy.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from torchvision import datasets, transforms  # type: ignore[import-untyped, unused-ignore]

from kennel.trainer._args import TrainerConfig
from kennel.trainer._dist import Placement
from kennel.trainer.inference import IMAGENET_MEAN, IMAGENET_STD, eval_transform

Batches = DataLoader[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Loaders:
    """The loaders for one run; ``test`` is None without a test channel."""

    classes: list[str]
    train: Batches
    valid: Batches
    test: Batches | None
    train_sampler: DistributedSampler[Any] | None


class ChannelError(ValueError):
    """A channel folder cannot be used: missing, empty, or with unknown classes."""


class _ChannelFolder(datasets.ImageFolder):  # type: ignore[misc]
    """An ImageFolder that can be told the class indices (those of the training set)."""

    def __init__(
        self,
        root: Path,
        transform: Callable[[Image.Image], torch.Tensor],
        class_to_idx: dict[str, int] | None = None,
    ) -> None:
        self._fixed = class_to_idx
        super().__init__(root, transform=transform, allow_empty=class_to_idx is not None)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        classes, mapping = super().find_classes(directory)
        if self._fixed is None:
            return classes, mapping
        unknown = sorted(set(classes) - set(self._fixed))
        if unknown:
            raise ValueError(f"class folders the training set lacks: {', '.join(unknown[:5])}")
        ordered = sorted(self._fixed, key=self._fixed.__getitem__)
        return ordered, dict(self._fixed)


def build_loaders(config: TrainerConfig, placement: Placement) -> Loaders:
    """Datasets, samplers and loaders for every channel."""
    train_set = _channel("train", config.train, train_transform(config), None)
    evaluate = eval_transform(config.image_size)
    valid_set = _channel("valid", config.valid, evaluate, train_set.class_to_idx)
    test_set = (
        _channel("test", config.test, evaluate, train_set.class_to_idx)
        if config.test is not None
        else None
    )
    sampler = _train_sampler(train_set, config, placement)
    lone_last = _lone_last(train_set, config, placement)
    return Loaders(
        classes=list(train_set.classes),
        train=_loader(train_set, config, sampler, drop_last=lone_last),
        valid=_loader(_shard(valid_set, placement), config, None),
        test=_loader(_shard(test_set, placement), config, None) if test_set is not None else None,
        train_sampler=sampler if isinstance(sampler, DistributedSampler) else None,
    )


def _channel(
    name: str,
    root: Path,
    transform: Callable[[Image.Image], torch.Tensor],
    class_to_idx: dict[str, int] | None,
) -> _ChannelFolder:
    """Open one channel; any problem is reported with the channel's name and path."""
    try:
        folder = _ChannelFolder(root, transform, class_to_idx)
    except (OSError, ValueError) as error:
        raise ChannelError(f"the {name} channel {root} is not usable: {error}") from error
    if len(folder) == 0:
        raise ChannelError(f"the {name} channel {root} holds no images")
    return folder


def train_transform(config: TrainerConfig) -> Callable[[Image.Image], torch.Tensor]:
    """none: as evaluated; flip: plus horizontal flips; standard: the ImageNet recipe."""
    size = config.image_size
    if config.augmentation == "standard":
        geometry = [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()]
    else:
        geometry = [transforms.Resize(size), transforms.CenterCrop(size)]
        if config.augmentation == "flip":
            geometry.append(transforms.RandomHorizontalFlip())
    tail = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return cast(Callable[[Image.Image], torch.Tensor], transforms.Compose(geometry + tail))


def _train_sampler(
    dataset: Dataset[Any], config: TrainerConfig, placement: Placement
) -> DistributedSampler[Any] | RandomSampler:
    if placement.distributed:
        return DistributedSampler(
            dataset, placement.world_size, placement.rank, shuffle=True, seed=config.seed
        )
    return RandomSampler(cast(Sized, dataset))


def _lone_last(dataset: Sized, config: TrainerConfig, placement: Placement) -> bool:
    """Drop the last batch only when it would hold a single image.

    BatchNorm cannot train on one value per channel, which is what a ResNet's last
    stages see for a one-image batch of small images; one image is also a noisy step.
    """
    per_rank = -(-len(dataset) // placement.world_size)
    return per_rank % config.batch_size == 1 and per_rank > 1


def _shard(dataset: Dataset[Any], placement: Placement) -> Dataset[Any]:
    """Every world_size-th image from this rank's offset: disjoint, nothing repeated."""
    if not placement.distributed:
        return dataset
    indices = range(placement.rank, len(cast(Sized, dataset)), placement.world_size)
    return Subset(dataset, list(indices))


def _loader(
    dataset: Dataset[Any],
    config: TrainerConfig,
    sampler: DistributedSampler[Any] | RandomSampler | None,
    *,
    drop_last: bool = False,
) -> Batches:
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=_seed_worker if config.workers > 0 else None,
    )


def _seed_worker(worker_id: int) -> None:
    """numpy and random in a worker follow torch's per-worker seed, so runs repeat."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
