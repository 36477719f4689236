"""SageMaker PyTorch handler for models written by ``kennel.trainer``.

This file is copied verbatim to ``<model dir>/code/inference.py`` and loaded there by a
model server (kennel's, or SageMaker's PyTorch serving container), so it depends on
torch, torchvision, numpy and PIL only, never on kennel. It is also the one place that
defines the network architectures and the evaluation preprocessing: the trainer imports
them from here, so a served model is rebuilt and fed exactly as it was trained and
validated.

Handler contract (SageMaker PyTorch toolkit): ``model_fn(model_dir)`` once per worker,
then per request ``input_fn(body, content_type)`` -> ``predict_fn(data, model)`` ->
``output_fn(prediction, accept)``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torchvision import models, transforms  # type: ignore[import-untyped, unused-ignore]

# delete this line to have kennel serve your edited handler functions as they are
KENNEL_BUILTIN_HANDLER = "image-classifier/1"

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "small-cnn")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODEL_FILE = "model.pth"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "model-config.json"

JSON = "application/json"
NPY = "application/x-npy"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
INPUT_TYPES = (*IMAGE_TYPES, NPY, JSON)
OUTPUT_TYPES = (JSON, NPY)

Transform = Callable[[Image.Image], torch.Tensor]
ModelInput = list[Image.Image] | torch.Tensor
"""What ``input_fn`` hands to ``predict_fn``: decoded images (preprocessed there, because
only the model knows its image size) or an already preprocessed NCHW float batch."""


# Architectures and preprocessing, shared with the trainer -----------------------------


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: trains in seconds on CPU, for demos and tests.

    The features are pooled to a 4x4 grid rather than to one value per channel: with so
    few layers the head needs to know *where* a stroke is (a 6 and a 9 share their
    strokes), and on the demo digits this learns several times faster. The head is called
    ``fc`` like torchvision's ResNets, so freezing the backbone and replacing the head work
    the same way for every architecture.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(3, width),
            nn.MaxPool2d(2),
            _conv_block(width, width * 2),
            nn.MaxPool2d(2),
            _conv_block(width * 2, width * 4),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.fc = nn.Linear(width * 4 * 16, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))  # type: ignore[no-any-return]


def _conv_block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def build_network(arch: str, num_classes: int) -> nn.Module:
    """A randomly initialised ``arch`` with a ``num_classes`` head; never downloads."""
    if arch == "small-cnn":
        return SmallCNN(num_classes)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    network: nn.Module = getattr(models, arch)(weights=None, num_classes=num_classes)
    return network


def eval_transform(
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Transform:
    """Resize the short side, centre-crop a square, normalise: validation and serving."""
    transform: Transform = transforms.Compose(
        [
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(list(mean), list(std)),
        ]
    )
    return transform


# model_fn -----------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the network plus what is needed to feed and read it."""

    network: nn.Module
    classes: list[str]
    transform: Transform
    config: dict[str, Any]
    device: torch.device


def model_fn(model_dir: str) -> LoadedModel:
    """Rebuild the network from ``model-config.json`` and load ``model.pth`` into it."""
    folder = os.fspath(model_dir)
    with open(os.path.join(folder, CONFIG_FILE), encoding="utf-8") as f:
        config: dict[str, Any] = json.load(f)
    with open(os.path.join(folder, CLASSES_FILE), encoding="utf-8") as f:
        classes: list[str] = json.load(f)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = build_network(str(config["arch"]), int(config["num_classes"]))
    state = torch.load(os.path.join(folder, MODEL_FILE), map_location=device, weights_only=True)
    network.load_state_dict(state)
    network.to(device).eval()
    transform = eval_transform(
        int(config["image_size"]),
        config.get("mean", IMAGENET_MEAN),
        config.get("std", IMAGENET_STD),
    )
    return LoadedModel(network, classes, transform, config, device)


# input_fn -----------------------------------------------------------------------------


def input_fn(body: bytes | bytearray | str, content_type: str) -> ModelInput:
    """Decode a request body into images or a preprocessed batch, by content type."""
    kind = _media_type(content_type)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if kind in IMAGE_TYPES:
        return [_decode_image(raw)]
    if kind == NPY:
        return _from_array(_load_npy(raw))
    if kind == JSON:
        return _from_json(raw)
    raise ValueError(
        f"unsupported content type {content_type!r}; supported: {', '.join(INPUT_TYPES)}"
    )


def _media_type(header: str | None) -> str:
    """``"Image/JPEG; q=1"`` -> ``"image/jpeg"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def _decode_image(raw: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"the body is not a readable image: {error}") from error


# What numpy raises for a malformed .npy header (it parses the header as a Python literal).
_NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError)


def _load_npy(raw: bytes) -> np.ndarray[Any, Any]:
    """The array of a .npy body whose header declares exactly the data that follows (numpy
    allocates what the header declares before reading: a lying header asks for terabytes)."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy format {version[0]}.{version[1]} is not supported")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(stream)
        declared = math.prod(shape) * dtype.itemsize
        if declared != len(raw) - stream.tell():
            raise ValueError(f"its header declares {declared} bytes of data, not what follows")
        array: np.ndarray[Any, Any] = np.load(io.BytesIO(raw), allow_pickle=False)
    except _NPY_ERRORS as error:
        raise ValueError(f"the body is not a .npy array: {error}") from error
    return array


def _from_array(array: np.ndarray[Any, Any]) -> ModelInput:
    """A uint8 ``HxWx3`` image (or ``NxHxWx3`` images), or a preprocessed float NCHW batch."""
    if array.dtype == np.uint8 and array.ndim in (3, 4) and array.shape[-1] == 3:
        images = array[None] if array.ndim == 3 else array
        return [Image.fromarray(np.ascontiguousarray(one)) for one in images]
    if np.issubdtype(array.dtype, np.floating) and array.ndim in (3, 4):
        batch = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        batch = batch.unsqueeze(0) if batch.ndim == 3 else batch
        if batch.shape[1] == 3:
            return batch
    raise ValueError(
        "expected a uint8 HxWx3 image (or NxHxWx3 images) or a float NCHW batch with 3 "
        f"channels, got dtype {array.dtype} and shape {array.shape}"
    )


def _from_json(raw: bytes) -> list[Image.Image]:
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"the body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise ValueError('expected a JSON object such as {"image": "<base64>"}')
    if "url" in payload:
        raise ValueError(
            'URL inputs ({"url": ...}) are handled by the serving layer, not by the model; '
            'send {"image": "<base64>"} or the image bytes instead'
        )
    encoded = payload.get("images", [payload["image"]] if "image" in payload else None)
    if not isinstance(encoded, list) or not encoded or not all(isinstance(e, str) for e in encoded):
        raise ValueError('expected {"image": "<base64>"} or {"images": ["<base64>", ...]}')
    return [_decode_image(_b64(text)) for text in encoded]


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"the image is not valid base64: {error}") from error


# predict_fn / output_fn ---------------------------------------------------------------


def predict_fn(data: ModelInput, model: LoadedModel) -> torch.Tensor:
    """Logits, one row per image, on the CPU."""
    if isinstance(data, torch.Tensor):
        batch = data.float()
    else:
        batch = torch.stack([model.transform(image) for image in data])
    with torch.no_grad():
        logits: torch.Tensor = model.network(batch.to(model.device))
    return logits.cpu()


def output_fn(prediction: torch.Tensor, accept: str | None) -> str | bytes:
    """JSON ``[[score, ...], ...]`` (the dog-breed endpoint's shape) or a .npy array."""
    wanted = [_media_type(part) for part in (accept or JSON).split(",")]
    for kind in wanted:
        if kind in (JSON, "*/*", "application/*", ""):
            return json.dumps(prediction.tolist())
        if kind == NPY:
            buffer = io.BytesIO()
            np.save(buffer, prediction.numpy(), allow_pickle=False)
            return buffer.getvalue()
    raise ValueError(f"unsupported accept type {accept!r}; supported: {', '.join(OUTPUT_TYPES)}")
