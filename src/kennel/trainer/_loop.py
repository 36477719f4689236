"""The epoch loop: train, validate, checkpoint; and the evaluation used for valid and test.

The step loop is benchmarked against a bare PyTorch loop on the same model and data, so
it does what such a loop does and nothing more: no ``.item()`` (a host sync on GPUs)
except on logging steps, the loss sum kept as a device tensor, one all-reduce per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kennel.debugger._hook import Hook, modes
from kennel.trainer._args import TrainerConfig
from kennel.trainer._checkpoint import Progress, save_checkpoint
from kennel.trainer._data import Batches, Loaders
from kennel.trainer._dist import Placement, all_reduce_sum, broadcast_buffers
from kennel.trainer._models import HEAD

Log = Callable[[str], None]


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    count: int


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    samples_per_sec: float

    def line(self) -> str:
        """The metric line SageMaker-style metric definitions parse; keep it stable."""
        return (
            f"epoch={self.epoch} train_loss={self.train_loss:.4f} "
            f"valid_loss={self.valid_loss:.4f} valid_accuracy={self.valid_accuracy:.4f} "
            f"samples_per_sec={self.samples_per_sec:.1f}"
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Network:
    """The bare model (saved, evaluated) and what the steps run (DDP-wrapped or the same)."""

    bare: nn.Module
    wrapped: nn.Module
    frozen_backbone: bool

    def train_mode(self) -> None:
        """Train mode, except a frozen backbone stays in eval so BatchNorm keeps its stats."""
        self.wrapped.train()
        if self.frozen_backbone:
            for name, child in self.bare.named_children():
                if name != HEAD:
                    child.eval()


@dataclass
class Fit:
    """Everything the epoch loop needs besides the config."""

    network: Network
    optimizer: torch.optim.Optimizer
    loaders: Loaders
    placement: Placement
    log: Log
    checkpoint_identity: dict[str, Any]
    criterion: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    hook: Hook = field(default_factory=lambda: Hook(None))
    """The debugger/profiler hook (kennel.debugger); disabled unless the job asks."""


def fit(config: TrainerConfig, run: Fit, progress: Progress) -> tuple[Progress, list[EpochStats]]:
    """Train the epochs after ``progress.epoch`` up to ``config.epochs``."""
    history: list[EpochStats] = []
    steps_per_epoch = len(run.loaders.train)
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if run.loaders.train_sampler is not None:
            run.loaders.train_sampler.set_epoch(epoch)
        first_step = (epoch - 1) * steps_per_epoch
        train_loss, samples_per_sec = train_epoch(run, epoch, first_step, config.log_interval)
        broadcast_buffers(run.network.bare, run.placement)
        run.hook.set_mode(modes.EVAL)
        valid = evaluate(run.network.bare, run.loaders.valid, run.placement, run.criterion)
        run.hook.set_mode(modes.TRAIN)
        stats = EpochStats(epoch, train_loss, valid.loss, valid.accuracy, samples_per_sec)
        run.log(stats.line())
        history.append(stats)
        progress = _advance(progress, epoch, valid.accuracy)
        if run.placement.is_main and config.checkpoint_dir is not None:
            save_checkpoint(
                config.checkpoint_dir,
                run.network.bare,
                run.optimizer,
                progress,
                run.checkpoint_identity,
            )
    return progress, history


def _advance(progress: Progress, epoch: int, accuracy: float) -> Progress:
    if accuracy > progress.best_accuracy or progress.best_epoch == 0:
        return Progress(epoch, accuracy, epoch)
    return replace(progress, epoch=epoch)


def train_epoch(run: Fit, epoch: int, first_step: int, log_interval: int) -> tuple[float, float]:
    """One pass over this rank's training shard; (mean loss, samples/s) over all ranks."""
    model, optimizer, device = run.network.wrapped, run.optimizer, run.placement.device
    run.network.train_mode()
    logging = log_interval > 0 and run.placement.is_main
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    step = first_step
    started = time.perf_counter()
    for images, labels in run.loaders.train:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = run.criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * labels.size(0)
        seen += labels.size(0)
        step += 1
        if logging and step % log_interval == 0:
            run.log(f"step={step} epoch={epoch} loss={loss.item():.4f}")
    elapsed = time.perf_counter() - started
    totals = torch.stack([loss_sum, torch.tensor(float(seen), dtype=torch.float64, device=device)])
    loss_total, samples = all_reduce_sum(totals, run.placement).tolist()
    return loss_total / max(samples, 1.0), samples / max(elapsed, 1e-9)


def evaluate(
    model: nn.Module, loader: Batches, placement: Placement, criterion: nn.Module | None = None
) -> Evaluation:
    """Mean loss and accuracy over the whole set, summed over every rank's shard.

    With ``criterion`` (the registered loss module) the hook sees each batch's loss."""
    model.eval()
    device = placement.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            logits = model(images)
            if criterion is None:
                totals[0] += F.cross_entropy(logits, labels, reduction="sum")
            else:
                totals[0] += criterion(logits, labels) * labels.size(0)
            totals[1] += (logits.argmax(dim=1) == labels).sum()
            totals[2] += labels.size(0)
    loss_sum, correct, count = all_reduce_sum(totals, placement).tolist()
    if count == 0:
        return Evaluation(float("nan"), float("nan"), 0)
    return Evaluation(loss_sum / count, correct / count, int(count))
