"""The baseline a model's live traffic is compared with, computed from its training data.

A baseline holds what the monitoring checks need from the data set the model learnt
from: the class distribution of the train split (how often each class was seen), and,
from up to ``max_images`` images of one split (valid by default: images the model did not
train on, so its confidence there is what live traffic should show), per-image statistics
(size, brightness, contrast, colour, sharpness), the model's predictions and confidences,
and its embeddings (the input of the final ``fc`` layer, taken with a forward hook).

Embeddings are reduced with a PCA fitted on the baseline (at most ``MAX_COMPONENTS``
dimensions) and the projection is stored with them, so a window is projected the same
way. A few dozen dimensions keep the kernel two-sample test fast and stable at a few
hundred samples, where distances in 1024 or 2048 raw dimensions are dominated by noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter, ImageOps

from kennel._errors import ValidationError
from kennel.datasets._layout import IMAGE_SUFFIXES, SPLITS, find_dataset_root

FloatArray = npt.NDArray[np.float64]

BASELINE_FILE = "baseline.json"
EMBEDDINGS_FILE = "embeddings.npy"
PROJECTION_FILE = "projection.npz"
FORMAT_VERSION = 1
MAX_COMPONENTS = 32
"""PCA dimensions kept at most (fewer when fewer already explain ``EXPLAINED_VARIANCE``)."""
EXPLAINED_VARIANCE = 0.95
BATCH_SIZE = 32
STATISTICS = (
    "width",
    "height",
    "aspect",
    "brightness",
    "contrast",
    "red",
    "green",
    "blue",
    "sharpness",
)
"""Per-image statistics, in report order."""
SHARPNESS_SIDE = 128
"""Sharpness is measured on the image scaled down to this longer side, so a large photo
and its thumbnail score alike; smaller images are measured as they are."""


# Image statistics -------------------------------------------------------------------------


def image_statistics(images: Sequence[Image.Image]) -> dict[str, FloatArray]:
    """Per-image values of every name in ``STATISTICS``.

    brightness is the mean luma (ITU-R 601) in 0..1, contrast its standard deviation,
    red/green/blue the channel means in 0..1, sharpness the variance of the Laplacian of
    the luma (0..1 scale) at most ``SHARPNESS_SIDE`` pixels wide: a blurred image scores
    low.
    """
    values: dict[str, list[float]] = {name: [] for name in STATISTICS}
    for image in images:
        for name, value in _one_image(image).items():
            values[name].append(value)
    return {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}


def _one_image(image: Image.Image) -> dict[str, float]:
    rgb = image.convert("RGB")
    width, height = rgb.size
    pixels = np.asarray(rgb, dtype=np.float64) / 255.0
    luma = pixels @ np.array([0.299, 0.587, 0.114])
    means = pixels.reshape(-1, 3).mean(axis=0)
    return {
        "width": float(width),
        "height": float(height),
        "aspect": width / height if height else 0.0,
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "red": float(means[0]),
        "green": float(means[1]),
        "blue": float(means[2]),
        "sharpness": _sharpness(rgb),
    }


def _sharpness(image: Image.Image) -> float:
    gray = ImageOps.grayscale(image)
    scale = SHARPNESS_SIDE / max(image.size)
    if scale < 1:  # never upscale: interpolation would blur a small image
        size = (max(3, round(image.width * scale)), max(3, round(image.height * scale)))
        gray = gray.resize(size, Image.Resampling.BOX)
    if min(gray.size) < 3:
        return 0.0
    luma = np.asarray(gray, dtype=np.float64) / 255.0
    laplacian = (
        luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
    )
    return float(laplacian.var())


def blur(image: Image.Image, radius: float = 2.0) -> Image.Image:
    """``image`` Gaussian-blurred: what an out-of-focus camera sends (used by tests and
    the documentation's examples)."""
    return image.filter(ImageFilter.GaussianBlur(radius))


# Embeddings ---------------------------------------------------------------------------------


def load_model(model_dir: Path | str) -> Any:
    """The built-in trainer's model (``inference.LoadedModel``) from an extracted model dir.

    kennel's own copy of the handler module rebuilds it (not the model's code/, which a
    user may have edited and which monitoring must not execute)."""
    from kennel.trainer import inference  # torch and torchvision: imported on first use

    folder = Path(model_dir)
    for name in (inference.CONFIG_FILE, inference.CLASSES_FILE, inference.MODEL_FILE):
        if not (folder / name).is_file():
            raise ValidationError(
                f"{folder} has no {name}: it is not a model of kennel's built-in trainer.",
                hint="Baselines need model.pth, classes.json and model-config.json "
                "(what the built-in trainer writes).",
            )
    return inference.model_fn(str(folder))


def embed(model: Any, images: Sequence[Image.Image]) -> tuple[FloatArray, FloatArray]:
    """Embeddings (the input of the network's final ``fc`` layer) and class probabilities,
    one row per image. ``model`` is a model dir or what ``load_model`` returned."""
    import torch

    loaded = load_model(model) if isinstance(model, Path | str) else model
    head = getattr(loaded.network, "fc", None)
    if head is None:
        raise ValidationError(
            "The model's network has no final 'fc' layer to take embeddings from.",
            hint="Baselines support the built-in trainer's architectures (small-cnn, resnet*).",
        )
    captured: list[torch.Tensor] = []

    def keep_input(_module: Any, inputs: tuple[torch.Tensor, ...], _output: Any) -> None:
        captured.append(inputs[0].detach().flatten(1).cpu())

    handle = head.register_forward_hook(keep_input)
    probabilities: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), BATCH_SIZE):
                chunk = images[start : start + BATCH_SIZE]
                batch = torch.stack([loaded.transform(image.convert("RGB")) for image in chunk])
                logits = loaded.network(batch.to(loaded.device))
                probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
    finally:
        handle.remove()
    classes = len(loaded.classes)
    if not captured:
        return np.zeros((0, 0)), np.zeros((0, classes))
    return (
        torch.cat(captured).double().numpy(),
        torch.cat(probabilities).double().numpy(),
    )


@dataclass(frozen=True)
class Projection:
    """PCA fitted on the baseline's embeddings: ``(x - mean) @ components.T``."""

    mean: FloatArray
    components: FloatArray
    explained_variance_ratio: float

    def apply(self, embeddings: FloatArray) -> FloatArray:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.mean.shape[0]:
            raise ValidationError(
                f"Embeddings of shape {embeddings.shape} do not match the baseline's "
                f"{self.mean.shape[0]} dimensions.",
                hint="Compare a window with the baseline of the same model.",
            )
        projected: FloatArray = (embeddings - self.mean) @ self.components.T
        return projected

    @classmethod
    def fit(cls, embeddings: FloatArray, max_components: int = MAX_COMPONENTS) -> Projection:
        mean = embeddings.mean(axis=0)
        centred = embeddings - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        variance = singular**2
        total = float(variance.sum())
        if total <= 0:
            keep = 1
            ratio = 1.0
        else:
            cumulative = np.cumsum(variance) / total
            keep = int(np.searchsorted(cumulative, EXPLAINED_VARIANCE) + 1)
            keep = max(1, min(keep, max_components, vt.shape[0]))
            ratio = float(cumulative[keep - 1])
        return cls(mean, np.ascontiguousarray(vt[:keep]), ratio)


# The baseline -------------------------------------------------------------------------------


@dataclass
class Baseline:
    """What the checks compare a window with; ``to_files``/``from_files`` store it as
    baseline.json + embeddings.npy (projected, float32) + projection.npz."""

    classes: list[str]
    class_distribution: dict[str, int]
    """Train split: images per class (all of them, not a sample)."""
    image_stats: dict[str, FloatArray]
    predicted_distribution: dict[str, int]
    """The model's predicted classes on the sampled images."""
    confidences: FloatArray
    """The top probability per sampled image."""
    embeddings: FloatArray
    """Projected embeddings, n x k."""
    projection: Projection
    embedding_dim: int
    """Raw embedding size (the fc layer's input)."""
    n: int
    split: str = "valid"
    seed: int = 0
    accuracy: float | None = None
    """The model's accuracy on the sampled images (their folders are the labels)."""
    model: dict[str, Any] = field(default_factory=dict)
    """arch and image_size from model-config.json."""
    created: str = ""

    @property
    def predicted_counts(self) -> FloatArray:
        return np.array([self.predicted_distribution.get(c, 0) for c in self.classes], float)

    @property
    def class_counts(self) -> FloatArray:
        return np.array([self.class_distribution.get(c, 0) for c in self.classes], float)

    def summary(self) -> dict[str, Any]:
        """The JSON part (baseline.json) without the per-image samples: for API answers."""
        return {
            "classes": self.classes,
            "class_distribution": self.class_distribution,
            "predicted_distribution": self.predicted_distribution,
            "confidence_mean": float(self.confidences.mean()) if self.n else None,
            "accuracy": self.accuracy,
            "embedding_dim": self.embedding_dim,
            "projected_dim": int(self.embeddings.shape[1]),
            "explained_variance": self.projection.explained_variance_ratio,
            "n": self.n,
            "split": self.split,
            "seed": self.seed,
            "model": self.model,
            "created": self.created,
        }

    def to_files(self, folder: Path) -> list[Path]:
        """Write the three files into ``folder`` (created); returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": FORMAT_VERSION,
            **self.summary(),
            "image_stats": {k: [float(x) for x in v] for k, v in self.image_stats.items()},
            "confidences": [float(x) for x in self.confidences],
        }
        paths = [folder / BASELINE_FILE, folder / EMBEDDINGS_FILE, folder / PROJECTION_FILE]
        paths[0].write_text(json.dumps(document, indent=1), encoding="utf-8")
        np.save(paths[1], self.embeddings.astype(np.float32), allow_pickle=False)
        with paths[2].open("wb") as out:
            np.savez(
                out,
                mean=self.projection.mean.astype(np.float32),
                components=self.projection.components.astype(np.float32),
                explained_variance_ratio=np.array(self.projection.explained_variance_ratio),
            )
        return paths

    @classmethod
    def from_files(cls, folder: Path) -> Baseline:
        try:
            document = json.loads((folder / BASELINE_FILE).read_text(encoding="utf-8"))
            embeddings = np.load(folder / EMBEDDINGS_FILE, allow_pickle=False)
            with np.load(folder / PROJECTION_FILE, allow_pickle=False) as stored:
                projection = Projection(
                    np.asarray(stored["mean"], np.float64),
                    np.asarray(stored["components"], np.float64),
                    float(stored["explained_variance_ratio"]),
                )
        except (OSError, ValueError, KeyError) as error:
            raise ValidationError(
                f"{folder} does not hold a readable baseline: {error}",
                hint="Recompute it (POST /api/v1/models/{name}/baseline).",
            ) from error
        return cls(
            classes=list(document["classes"]),
            class_distribution={k: int(v) for k, v in document["class_distribution"].items()},
            image_stats={
                k: np.asarray(v, dtype=np.float64) for k, v in document["image_stats"].items()
            },
            predicted_distribution={
                k: int(v) for k, v in document["predicted_distribution"].items()
            },
            confidences=np.asarray(document["confidences"], dtype=np.float64),
            embeddings=np.asarray(embeddings, dtype=np.float64),
            projection=projection,
            embedding_dim=int(document["embedding_dim"]),
            n=int(document["n"]),
            split=str(document.get("split", "valid")),
            seed=int(document.get("seed", 0)),
            accuracy=document.get("accuracy"),
            model=dict(document.get("model") or {}),
            created=str(document.get("created", "")),
        )


def compute_baseline(
    model_dir: Path,
    dataset_dir: Path,
    *,
    split: str = "valid",
    max_images: int = 300,
    seed: int = 0,
) -> Baseline:
    """The baseline of the built-in trainer's model in ``model_dir`` on the data set in
    ``dataset_dir`` (train/ valid/ test/ class folders): see the module docstring."""
    if split not in SPLITS:
        raise ValidationError(f"split {split!r} is not one of {', '.join(SPLITS)}.")
    if max_images < 2:
        raise ValidationError(f"max_images {max_images} is too small.", hint="Use 2 or more.")
    model = load_model(model_dir)
    classes: list[str] = list(model.classes)
    root = find_dataset_root(Path(dataset_dir))
    train_counts = {c: len(_images_of(root / "train" / c)) for c in _class_folders(root, "train")}
    _check_classes(classes, sorted(train_counts))
    files = [
        (path, index)
        for index, name in enumerate(classes)
        for path in _images_of(root / split / name)
    ]
    if len(files) < 2:
        raise ValidationError(f"The {split} split of {root} has fewer than 2 images.")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(files), size=min(max_images, len(files)), replace=False))
    images = [_open(files[i][0]) for i in picked]
    labels = np.array([files[i][1] for i in picked])
    raw, probabilities = embed(model, images)
    predicted = probabilities.argmax(axis=1)
    projection = Projection.fit(raw)
    return Baseline(
        classes=classes,
        class_distribution={c: train_counts.get(c, 0) for c in classes},
        image_stats=image_statistics(images),
        predicted_distribution={c: int((predicted == i).sum()) for i, c in enumerate(classes)},
        confidences=probabilities.max(axis=1),
        embeddings=projection.apply(raw),
        projection=projection,
        embedding_dim=int(raw.shape[1]),
        n=len(images),
        split=split,
        seed=seed,
        accuracy=float((predicted == labels).mean()),
        model={k: model.config.get(k) for k in ("arch", "image_size") if k in model.config},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _class_folders(root: Path, split: str) -> list[str]:
    folder = root / split
    if not folder.is_dir():
        raise ValidationError(f"{root} has no {split}/ folder.", hint="See `kennel datasets`.")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_of(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _check_classes(model_classes: list[str], dataset_classes: list[str]) -> None:
    if set(model_classes) != set(dataset_classes):
        missing = sorted(set(model_classes) - set(dataset_classes))[:5]
        extra = sorted(set(dataset_classes) - set(model_classes))[:5]
        raise ValidationError(
            "The data set's classes are not the model's: "
            f"missing {missing or 'none'}, not in the model {extra or 'none'}.",
            hint="Compute the baseline on the data set the model was trained on.",
        )


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a statistic that could not be computed is null."""
    return value if math.isfinite(value) else None
