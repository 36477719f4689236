"""A small trained model, its demo data set and its baseline, built once per test session
and shared by the monitoring library's tests (``library_setup``).

The model is a small-cnn trained in-process for a few epochs on 32 px demo digits
(~85 % validation accuracy): a randomly initialised one already shows drift, but its
predictions pile up on one or two classes, which would hide a class-mix shift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from kennel.datasets import make_demo
from kennel.monitoring._baseline import Baseline, blur, compute_baseline, load_model
from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network, eval_transform

IMAGE_SIZE = 32
PER_CLASS = (40, 30, 30)
CONFIG = {"arch": "small-cnn", "image_size": IMAGE_SIZE, "mean": [0.5] * 3, "std": [0.25] * 3}
EPOCHS = 3
BLUR_RADIUS = 2.0
"""At 32 px the upscaled demo digits are smooth already: a radius of 1.5 moves the
embeddings of 100 images only to p ~ 0.01; 2 is a clearly out-of-focus camera."""


@dataclass(frozen=True)
class LibrarySetup:
    dataset: Path
    model_dir: Path
    classes: list[str]
    baseline: Baseline
    model: Any
    """``load_model(model_dir)``."""
    test_images: list[Image.Image]
    test_labels: list[int]
    timings: dict[str, float]


_CACHE: dict[str, LibrarySetup] = {}


def library_setup(factory: pytest.TempPathFactory) -> LibrarySetup:
    if "setup" not in _CACHE:
        _CACHE["setup"] = _build(factory.mktemp("monitoring-library"))
    return _CACHE["setup"]


def _build(root: Path) -> LibrarySetup:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    dataset = root / "digits"
    make_demo(dataset, image_size=IMAGE_SIZE, per_class=PER_CLASS)
    timings["make_demo"] = time.perf_counter() - started
    classes = sorted(p.name for p in (dataset / "train").iterdir())

    started = time.perf_counter()
    network = _train(dataset, classes)
    model_dir = root / "model"
    write_model_dir(model_dir, network, classes, CONFIG)
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    baseline = compute_baseline(model_dir, dataset, seed=0)
    timings["baseline"] = time.perf_counter() - started
    images, labels = split_images(dataset, classes, "test")
    return LibrarySetup(
        dataset, model_dir, classes, baseline, load_model(model_dir), images, labels, timings
    )


def split_images(
    dataset: Path, classes: list[str], split: str
) -> tuple[list[Image.Image], list[int]]:
    images: list[Image.Image] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        for path in sorted((dataset / split / name).iterdir()):
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
            labels.append(index)
    return images, labels


def _train(dataset: Path, classes: list[str]) -> torch.nn.Module:
    torch.manual_seed(0)
    transform = eval_transform(IMAGE_SIZE, CONFIG["mean"], CONFIG["std"])  # type: ignore[arg-type]
    images, labels = split_images(dataset, classes, "train")
    x = torch.stack([transform(image) for image in images])
    y = torch.tensor(labels)
    network = build_network("small-cnn", len(classes))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(0)
    network.train()
    for _ in range(EPOCHS):
        permutation = torch.randperm(len(x), generator=order)
        for start in range(0, len(x), 32):
            batch = permutation[start : start + 32]
            loss = torch.nn.functional.cross_entropy(network(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call, unused-ignore]
            optimizer.step()
    network.eval()
    return network


def sample(images: list[Image.Image], size: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [images[i] for i in sorted(rng.choice(len(images), size=size, replace=False))]


def inverted(images: list[Image.Image]) -> list[Image.Image]:
    return [ImageOps.invert(image) for image in images]


def blurred(images: list[Image.Image]) -> list[Image.Image]:
    return [blur(image, BLUR_RADIUS) for image in images]
