"""Feature cache: a frozen backbone's features computed once, then head-only training.

With a frozen backbone and no augmentation every epoch of every trial pushes the same
images through the same weights: nearly all of a trial's compute produces numbers that
were already known. So the backbone runs once over train/valid/test, its outputs are
stored under an exact key, and trials train only the head (the final linear layer) on
them, which is about a thousand times less work per epoch.

The key is exact because a stale hit would silently train on features of other data or
other weights: it is a SHA-256 over the content of every channel file, the architecture,
the preprocessing, the backbone's weights, the framework versions and this format's
version. Anything that changes any of them gives another key; nothing else does (file
modification times and the channels' local paths are left out, so each training job's
own download of the same data set hits).

Layout: ``<location>/<key>/{train,valid,test}.pt`` and ``manifest.json``. Every file is
written under a temporary name and renamed, and the manifest is written last: it is the
commit marker, so a build that crashed half way is never read (the next run rebuilds).

Training on cached features goes through the ordinary epoch loop with a module that
holds the whole network but whose forward is the head only (``HeadOnFeatures``): same
optimizer over the same parameters, same loaders' sampling and RNG draws, same metric
lines, same checkpoints (full state_dict), so the objective matches an uncached frozen
run and a checkpoint resumes in either mode.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import fsspec
import PIL
import torch
import torchvision  # type: ignore[import-untyped, unused-ignore]
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from torchvision.datasets.folder import find_classes  # type: ignore[import-untyped, unused-ignore]

from kennel.trainer._args import TrainerConfig, feature_cache_problem
from kennel.trainer._data import Batches, ChannelError, Loaders, _channel, _lone_last
from kennel.trainer._dist import Placement
from kennel.trainer._models import HEAD, pretrained_name
from kennel.trainer.inference import IMAGENET_MEAN, IMAGENET_STD, eval_transform

FORMAT_VERSION = 1
"""Bump when the stored files or the key's inputs change meaning: old entries then miss."""
CACHE_ENV = "KENNEL_FEATURE_CACHE_URL"
"""The default location (``--feature-cache auto``); kennel sets it for training jobs."""
MANIFEST = "manifest.json"
BUILD_BATCH_SIZE = 64
_CHUNK = 1 << 20


class FeatureCacheError(RuntimeError):
    """An explicitly requested cache cannot be used for this run."""


@dataclass(frozen=True)
class CacheDecision:
    """Where this run's cache lives (None: train on images) and why, for the log."""

    location: str | None
    reason: str

    def line(self) -> str:
        state = "on" if self.location is not None else "unused"
        return f"feature_cache={state} reason={self.reason}"


def decide(
    config: TrainerConfig, environ: Mapping[str, str], placement: Placement
) -> CacheDecision:
    """Use a cache when the run qualifies and a location is known; explicit + unusable fails.

    Distributed runs do not use it: head-only training on a few MB of features is done in
    milliseconds on one process, and splitting it over ranks would only add the question
    of who builds the cache.
    """
    if config.feature_cache == "off":
        return CacheDecision(None, "--feature-cache off")
    problem = feature_cache_problem(config)
    if problem is None and placement.world_size > 1:
        problem = f"distributed training (world_size={placement.world_size}) trains on images"
    explicit = config.feature_cache_location
    if problem is not None:
        if explicit is not None:
            raise FeatureCacheError(f"--feature-cache {explicit} was asked for, but {problem}")
        return CacheDecision(None, problem)
    location = explicit or environ.get(CACHE_ENV, "").strip()
    if not location:
        return CacheDecision(None, f"no location (pass --feature-cache DIR|URL or set {CACHE_ENV})")
    source = "--feature-cache" if explicit else CACHE_ENV
    return CacheDecision(location, f"frozen backbone, no augmentation; location from {source}")


# The key ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInputs:
    """Everything the cached features depend on; the key is a hash of exactly this."""

    format_version: int
    data: str
    arch: str
    preprocessing: dict[str, Any]
    weights: dict[str, Any]
    backbone: str
    frameworks: dict[str, str]


def cache_key(inputs: KeyInputs) -> str:
    """SHA-256 of the inputs' canonical JSON (sorted keys, so dict order cannot matter)."""
    canonical = json.dumps(asdict(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_inputs(config: TrainerConfig, model: nn.Module, num_classes: int) -> KeyInputs:
    """The key's inputs for this run; ``model`` is the freshly built (untrained) network."""
    return KeyInputs(
        format_version=FORMAT_VERSION,
        data=data_digest(channels_of(config)),
        arch=config.arch,
        preprocessing=preprocessing(config.image_size),
        weights=weights_identity(config, num_classes),
        backbone=backbone_digest(model),
        frameworks=frameworks(),
    )


def channels_of(config: TrainerConfig) -> dict[str, Path | None]:
    return {"train": config.train, "valid": config.valid, "test": config.test}


def data_digest(channels: Mapping[str, Path | None]) -> str:
    """SHA-256 over (relative path, size, content SHA-256) of every file of every channel.

    Content, not modification times: a re-download of the same data set must hit, and a
    file rewritten with other pixels but the same size and time must miss. Symlinked
    folders are followed as ImageFolder follows them, so the digest covers what is read.
    """
    digest = hashlib.sha256()
    for name in sorted(channels):
        root = channels[name]
        digest.update(f"channel {name} {'absent' if root is None else 'present'}\n".encode())
        if root is None:
            continue
        for path in _files(root):
            relative = path.relative_to(root).as_posix()
            size = path.stat().st_size
            digest.update(f"{relative}\0{size}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ChannelError(f"the channel {root} is not a folder")
    found = [
        Path(folder) / name
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
    ]
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def file_sha256(path: Path) -> str:
    """Streamed in 1 MiB chunks: data sets and weight files need not fit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def preprocessing(image_size: int) -> dict[str, Any]:
    """What turns a file into the backbone's input.

    The transform's own repr is included so that any edit to ``eval_transform`` (another
    interpolation, antialiasing, crop) changes the key without anyone remembering to.
    """
    return {
        "transform": repr(eval_transform(image_size)),
        "image_size": image_size,
        "resize": "short side to image_size",
        "crop": "center, image_size square",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "channels": "RGB",
    }


def weights_identity(config: TrainerConfig, num_classes: int) -> dict[str, Any]:
    """Where the backbone's weights came from, readable in the manifest.

    For random initialisation the seed decides the weights, and so does the number of
    classes: a ResNet initialises its head before re-initialising its convolutions, so
    the head's size shifts the random stream the backbone is drawn from.
    """
    if config.pretrained:
        return {"source": "torchvision", "name": pretrained_name(config.arch)}
    if config.weights is not None:
        return {"source": "file", "sha256": file_sha256(config.weights)}
    return {"source": "random", "seed": config.seed, "num_classes": num_classes}


def backbone_digest(model: nn.Module) -> str:
    """SHA-256 of every backbone tensor (names included): the weights themselves.

    The identity above says where the weights came from; this proves what they are, so a
    torchvision or seeding change that alters them cannot reuse stale features.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name.startswith(f"{HEAD}."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def frameworks() -> dict[str, str]:
    """major.minor of what computes the features (kernels) and decodes the images (Pillow)."""
    return {
        "torch": _major_minor(torch.__version__),
        "torchvision": _major_minor(torchvision.__version__),
        "pillow": _major_minor(PIL.__version__),
    }


def _major_minor(version: str) -> str:
    return ".".join(version.split("+", 1)[0].split(".")[:2])


# The stored features ------------------------------------------------------------------


@dataclass(frozen=True)
class SplitFeatures:
    features: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class CachedFeatures:
    classes: list[str]
    splits: dict[str, SplitFeatures]


class FeatureStore:
    """``<location>/<key>/``, on any fsspec file system (a local dir, s3://, memory://)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.fs, root = fsspec.core.url_to_fs(location)
        self.root = str(root).rstrip("/")

    def path(self, key: str, name: str = "") -> str:
        return f"{self.root}/{key}/{name}" if name else f"{self.root}/{key}"

    def load(self, key: str) -> CachedFeatures | None:
        """The committed entry for ``key``, or None; files without a manifest are ignored."""
        manifest_path = self.path(key, MANIFEST)
        if not self.fs.exists(manifest_path):
            return None
        manifest = json.loads(self.fs.cat_file(manifest_path))
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("key") != key:
            return None
        splits = {
            name: _read_split(self.fs.cat_file(self.path(key, entry["file"])))
            for name, entry in manifest["splits"].items()
        }
        return CachedFeatures(list(manifest["classes"]), splits)

    def save(self, key: str, cached: CachedFeatures, inputs: KeyInputs, seconds: float) -> None:
        """Each split file, then the manifest (the commit marker), each via temp + rename."""
        self.fs.makedirs(self.path(key), exist_ok=True)
        splits: dict[str, Any] = {}
        for name, split in cached.splits.items():
            self._put(key, f"{name}.pt", _split_bytes(split))
            splits[name] = {
                "file": f"{name}.pt",
                "count": int(split.labels.numel()),
                "dim": int(split.features.shape[1]),
            }
        manifest = {
            "format_version": FORMAT_VERSION,
            "key": key,
            "inputs": asdict(inputs),
            "classes": cached.classes,
            "splits": splits,
            "build_seconds": round(seconds, 3),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._put(key, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def _put(self, key: str, name: str, data: bytes) -> None:
        """Readers never see a half-written file; two builders racing both write whole ones."""
        partial = self.path(key, f".partial-{uuid.uuid4().hex}-{name}")
        self.fs.pipe_file(partial, data)
        try:
            self.fs.mv(partial, self.path(key, name))
        finally:
            if self.fs.exists(partial):
                self.fs.rm(partial)


def _split_bytes(split: SplitFeatures) -> bytes:
    buffer = io.BytesIO()
    torch.save({"features": split.features, "labels": split.labels}, buffer)
    return buffer.getvalue()


def _read_split(data: bytes) -> SplitFeatures:
    """Tensors only (``weights_only``): a cache location may be shared, and a pickle runs code."""
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return SplitFeatures(state["features"], state["labels"])


# Build or hit -------------------------------------------------------------------------


class Builder(Protocol):
    def __call__(
        self, config: TrainerConfig, model: nn.Module, classes: list[str], device: torch.device
    ) -> CachedFeatures: ...


def train_classes(config: TrainerConfig) -> list[str]:
    """The class folders of the training channel, as ImageFolder numbers them."""
    try:
        classes, _ = find_classes(str(config.train))
    except (OSError, ValueError) as error:
        raise ChannelError(f"the train channel {config.train} is not usable: {error}") from error
    return list(classes)


def build_features(
    config: TrainerConfig, model: nn.Module, classes: list[str], device: torch.device
) -> CachedFeatures:
    """Run the backbone once over every channel, in file order, in inference mode.

    The loaders get their own generator so that building draws nothing from the global
    RNG: a run that builds and a run that hits then shuffle their epochs identically.
    """
    transform = eval_transform(config.image_size)
    mapping = {name: index for index, name in enumerate(classes)}
    splits: dict[str, SplitFeatures] = {}
    for name, root in channels_of(config).items():
        if root is None:
            continue
        # The train channel is opened as the uncached path opens it (its own classes).
        dataset = _channel(name, root, transform, None if name == "train" else mapping)
        loader: Batches = DataLoader(
            dataset,
            batch_size=BUILD_BATCH_SIZE,
            num_workers=config.workers,
            generator=torch.Generator(),
        )
        splits[name] = _extract(model, loader, device)
    return CachedFeatures(classes, splits)


def _extract(model: nn.Module, loader: Batches, device: torch.device) -> SplitFeatures:
    features: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    with _headless(model) as backbone, torch.inference_mode():
        for images, targets in loader:
            features.append(backbone(images.to(device)).float().cpu())
            labels.append(targets)
    # Inference tensors cannot be saved for backward; the head trains on these.
    return SplitFeatures(torch.cat(features).clone(), torch.cat(labels).clone())


@contextmanager
def _headless(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode with its head replaced by Identity: its output is the features."""
    head, was_training = getattr(model, HEAD), model.training
    setattr(model, HEAD, nn.Identity())
    model.eval()
    try:
        yield model
    finally:
        setattr(model, HEAD, head)
        model.train(was_training)


def obtain_features(
    config: TrainerConfig,
    model: nn.Module,
    classes: list[str],
    store: FeatureStore,
    device: torch.device,
    log: Callable[[str], None],
    build: Builder = build_features,
) -> CachedFeatures:
    """The cached features for this exact run: read them, or build and store them once."""
    inputs = key_inputs(config, model, len(classes))
    key = cache_key(inputs)
    cached = store.load(key)
    if cached is not None:
        log(f"feature_cache=hit key={key} location={store.location}")
        return cached
    started = time.perf_counter()
    cached = build(config, model, classes, device)
    seconds = time.perf_counter() - started
    store.save(key, cached, inputs, seconds)
    log(f"feature_cache=build key={key} seconds={seconds:.3f} location={store.location}")
    return cached


# Training on features -----------------------------------------------------------------


class HeadOnFeatures(nn.Module):
    """The whole network's modules under their own names, with a forward that is the head.

    Its state_dict and parameters are the network's (shared, not copied), so the optimizer,
    checkpoints and digests are exactly those of an uncached run; only the input differs:
    cached backbone features instead of images.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        own = [*network.named_parameters(recurse=False), *network.named_buffers(recurse=False)]
        if own:
            raise ValueError(f"{type(network).__name__} holds tensors outside its submodules")
        for name, child in network.named_children():
            self.add_module(name, child)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        head: nn.Module = getattr(self, HEAD)
        output: torch.Tensor = head(features)
        return output


class _FeatureRows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Indexed by a whole batch of row numbers at once: one gather per batch, no collate."""

    def __init__(self, split: SplitFeatures) -> None:
        self.split = split

    def __len__(self) -> int:
        return int(self.split.labels.numel())

    def __getitem__(self, rows: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split.features[rows], self.split.labels[rows]


def feature_loaders(cached: CachedFeatures, config: TrainerConfig, placement: Placement) -> Loaders:
    """Loaders over features that sample exactly as the image loaders would.

    The training loader is a DataLoader over a RandomSampler in batches of the run's
    batch size, dropping a lone last image as the image loader does: it draws from the
    global RNG exactly as the image loader does, so with the same seed both paths see the
    same batches in the same order.
    """
    train = _FeatureRows(cached.splits["train"])
    drop_last = _lone_last(train, config, placement)
    return Loaders(
        classes=cached.classes,
        train=_batches(train, RandomSampler(train), config.batch_size, drop_last),
        valid=_sequential(cached.splits["valid"], config.batch_size),
        test=_sequential(cached.splits["test"], config.batch_size)
        if "test" in cached.splits
        else None,
        train_sampler=None,
    )


def _sequential(split: SplitFeatures, batch_size: int) -> Batches:
    rows = _FeatureRows(split)
    return _batches(rows, SequentialSampler(rows), batch_size, drop_last=False)


def _batches(
    rows: _FeatureRows,
    order: RandomSampler | SequentialSampler,
    batch_size: int,
    drop_last: bool,
) -> Batches:
    sampler = BatchSampler(order, batch_size, drop_last)
    return DataLoader(rows, batch_size=None, sampler=sampler)
