"""One training run, from a validated config to the model directory and metrics."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping, Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kennel.trainer import inference
from kennel.trainer._args import TrainerConfig
from kennel.trainer._checkpoint import Progress, load_checkpoint, restore
from kennel.trainer._data import Loaders, build_loaders
from kennel.trainer._dist import Placement, broadcast_object, cpu_count, start, stop
from kennel.trainer._feature_cache import (
    FeatureStore,
    HeadOnFeatures,
    decide,
    feature_loaders,
    obtain_features,
    train_classes,
)
from kennel.trainer._loop import EpochStats, Evaluation, Fit, Log, Network, evaluate, fit
from kennel.trainer._models import build_model, pretrained_name, require_pretrained
from kennel.trainer._package import package_model, write_model_dir

DIGEST_ENV = "KENNEL_TRAINER_WEIGHTS_DIGEST_FILE"
"""Debug hook: each rank writes the SHA-256 of its final weights to this path (``{rank}``
is replaced by the rank), so a test can check that DDP kept the ranks identical."""


def train(config: TrainerConfig, environ: Mapping[str, str]) -> dict[str, Any]:
    """Train as ``config`` says, write the model dir on rank 0; returns the metrics."""
    placement = start(environ)
    try:
        return _train(config, environ, placement, _logger(placement))
    finally:
        stop(placement)


def _train(
    config: TrainerConfig, environ: Mapping[str, str], placement: Placement, log: Log
) -> dict[str, Any]:
    threads = _configure_threads(environ, placement, log)
    log(
        f"kennel.trainer start world_size={placement.world_size} rank={placement.rank} "
        f"device={placement.device} threads={threads} config={json.dumps(config.as_json())}"
    )
    if config.pretrained:
        require_pretrained(config.arch)  # before reading any data: fail in a second
    _seed(config.seed)
    started = time.perf_counter()
    decision = decide(config, environ, placement)
    log(decision.line())
    if decision.location is None:
        model, run = _prepare_images(config, placement, log)
    else:
        model, run = _prepare_features(config, placement, FeatureStore(decision.location), log)
    progress = _resume(config, run, placement, log)
    _attach_hook(run)
    prepared = time.perf_counter()
    try:
        progress, history = fit(config, run, progress)
    finally:
        run.hook.close()
    trained = time.perf_counter()
    test = _test(run, run.loaders, placement, log)
    timing = {
        "setup_seconds": prepared - started,
        "train_seconds": trained - prepared,
        "test_seconds": time.perf_counter() - trained,
    }
    log("timing " + " ".join(f"{name}={seconds:.3f}" for name, seconds in timing.items()))
    metrics = {"config": config.as_json(), **_metrics(progress, history, test), "timing": timing}
    if placement.is_main:
        _write_outputs(config, model, run.loaders.classes, metrics, log)
    _write_digest(model, placement, environ)
    return metrics


def _attach_hook(run: Fit) -> None:
    """The job's debugger/profiler hook (a no-op one outside a job that asks for it)."""
    from kennel.debugger._hook import get_hook

    run.hook = get_hook()
    run.hook.register_module(run.network.bare)
    run.hook.register_loss(run.criterion)


def _prepare_images(config: TrainerConfig, placement: Placement, log: Log) -> tuple[nn.Module, Fit]:
    """The ordinary path: image loaders and the whole network in every step."""
    loaders = build_loaders(config, placement)
    images = len(cast(Sized, loaders.train.dataset))
    log(f"data classes={len(loaders.classes)} train_images={images}")
    run = _prepare(config, placement, loaders, log)
    return run.network.bare, run


def _prepare_features(
    config: TrainerConfig, placement: Placement, store: FeatureStore, log: Log
) -> tuple[nn.Module, Fit]:
    """The cached path: the same network, built from the same RNG state, fed features.

    The network is built exactly as ``_prepare`` builds it (same seed, same draws), so the
    backbone that is saved is the one whose features were cached, and the optimizer holds
    the same head parameters; the epoch loop then runs ``HeadOnFeatures`` over it.
    """
    classes = train_classes(config)
    model = _network(config, len(classes), placement)
    cached = obtain_features(config, model, classes, store, placement.device, log)
    loaders = feature_loaders(cached, config, placement)
    log(f"data classes={len(classes)} train_images={len(cached.splits['train'].labels)}")
    head_only = HeadOnFeatures(model)
    network = Network(head_only, head_only, frozen_backbone=True)
    identity = {"arch": config.arch, "classes": classes}
    return model, Fit(network, _optimizer(config, model), loaders, placement, log, identity)


def _network(config: TrainerConfig, num_classes: int, placement: Placement) -> nn.Module:
    return build_model(
        config.arch,
        num_classes,
        pretrained=config.pretrained,
        weights=config.weights,
        freeze_backbone=config.freeze_backbone,
    ).to(placement.device)


def _prepare(config: TrainerConfig, placement: Placement, loaders: Loaders, log: Log) -> Fit:
    bare = _network(config, len(loaders.classes), placement)
    wrapped: nn.Module = bare
    if placement.distributed:
        device_ids = [placement.device.index] if placement.device.type == "cuda" else None
        wrapped = DistributedDataParallel(bare, device_ids=device_ids)
    optimizer = _optimizer(config, bare)
    identity = {"arch": config.arch, "classes": loaders.classes}
    network = Network(bare, wrapped, config.freeze_backbone)
    return Fit(network, optimizer, loaders, placement, log, identity)


def _optimizer(config: TrainerConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Only parameters that train: a frozen backbone contributes none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _resume(config: TrainerConfig, run: Fit, placement: Placement, log: Log) -> Progress:
    """Continue from checkpoint.pt if there is one; rank 0's view decides for all ranks."""
    found = load_checkpoint(config.checkpoint_dir) if placement.is_main else None
    state = broadcast_object(found, placement)
    if not isinstance(state, dict) or config.checkpoint_dir is None:
        return Progress()
    progress = restore(
        state, run.network.bare, run.optimizer, run.checkpoint_identity, config.checkpoint_dir
    )
    log(f"resumed from checkpoint at epoch={progress.epoch}")
    return progress


def _test(run: Fit, loaders: Loaders, placement: Placement, log: Log) -> Evaluation | None:
    if loaders.test is None:
        return None
    result = evaluate(run.network.bare, loaders.test, placement)
    log(f"test_loss={result.loss:.4f} test_accuracy={result.accuracy:.4f}")
    return result


def _metrics(
    progress: Progress, history: list[EpochStats], test: Evaluation | None
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "epochs": [stats.as_json() for stats in history],
        "best_valid_accuracy": progress.best_accuracy,
        "best_epoch": progress.best_epoch,
    }
    if test is not None:
        metrics["test_loss"], metrics["test_accuracy"] = test.loss, test.accuracy
    return metrics


def _write_outputs(
    config: TrainerConfig,
    model: nn.Module,
    classes: list[str],
    metrics: dict[str, Any],
    log: Log,
) -> None:
    described = {
        "arch": config.arch,
        "image_size": config.image_size,
        "mean": list(inference.IMAGENET_MEAN),
        "std": list(inference.IMAGENET_STD),
        "pretrained": pretrained_name(config.arch) if config.pretrained else None,
    }
    write_model_dir(config.model_dir, model, classes, described)
    log(f"model written to {config.model_dir}")
    if config.output_data_dir is not None:
        config.output_data_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = config.output_data_dir / "metrics.json"
        metrics_file.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if config.package is not None:
        log(f"model packaged at {package_model(config.model_dir, config.package)}")


def _configure_threads(environ: Mapping[str, str], placement: Placement, log: Log) -> int:
    """SM_NUM_CPUS if set; else share the CPUs between this host's ranks. Warn if oversubscribed."""
    available = cpu_count()
    if environ.get("SM_NUM_CPUS"):
        torch.set_num_threads(max(1, int(environ["SM_NUM_CPUS"])))
    elif placement.local_world_size > 1:
        torch.set_num_threads(max(1, available // placement.local_world_size))
    threads = torch.get_num_threads()
    if placement.device.type == "cpu" and threads * placement.local_world_size > available:
        log(
            f"warning: {placement.local_world_size} process(es) x {threads} threads > "
            f"{available} CPUs; steps will contend (set SM_NUM_CPUS per process)"
        )
    return threads


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _logger(placement: Placement) -> Log:
    """Print on rank 0 only, flushed at once so log shippers see each line as it happens."""

    def log(line: str) -> None:
        if placement.is_main:
            print(line, flush=True)

    return log


def _write_digest(model: nn.Module, placement: Placement, environ: Mapping[str, str]) -> None:
    target = environ.get(DIGEST_ENV)
    if not target:
        return
    path = Path(target.replace("{rank}", str(placement.rank)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(state_digest(model) + "\n", encoding="utf-8")


def state_digest(model: nn.Module) -> str:
    """SHA-256 over every parameter and buffer, names included, in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
