"""``checkpoint.pt``: everything needed to continue a run as if it had not stopped.

SageMaker syncs the checkpoint folder to S3 and back (spot interruptions, restarts), so
a checkpoint is written after every epoch, atomically (a reader never sees half a
file), and holds the model, the optimizer, the epoch, the best validation accuracy and
the RNG states. With the RNG states restored, a resumed run shuffles and augments as
the uninterrupted run would have. It holds only tensors and plain values so it loads
with ``weights_only=True``: a checkpoint folder is synced from outside, and a pickle
from there could run code.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Progress:
    """Where a run stands: epochs completed and the best validation accuracy so far."""

    epoch: int = 0
    best_accuracy: float = 0.0
    best_epoch: int = 0


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    identity: dict[str, Any],
) -> Path:
    """Write ``folder/checkpoint.pt`` via a temporary file and an atomic rename."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CHECKPOINT_FILE
    partial = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": progress.epoch,
        "best_accuracy": progress.best_accuracy,
        "best_epoch": progress.best_epoch,
        "identity": identity,
        "rng": _rng_state(),
    }
    torch.save(state, partial)
    os.replace(partial, target)
    return target


def load_checkpoint(folder: Path | None) -> dict[str, Any] | None:
    """The checkpoint in ``folder``, or None when there is none (a fresh run)."""
    if folder is None or not (folder / CHECKPOINT_FILE).is_file():
        return None
    state: dict[str, Any] = torch.load(
        folder / CHECKPOINT_FILE, map_location="cpu", weights_only=True
    )
    return state


def restore(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    identity: dict[str, Any],
    folder: Path,
) -> Progress:
    """Load ``state`` into ``model``/``optimizer`` and the RNGs; refuse another run's."""
    if state.get("identity") != identity:
        raise ValueError(
            f"{folder / CHECKPOINT_FILE} belongs to a different run "
            f"({state.get('identity')} vs {identity}); remove it or use another checkpoint dir"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"])
    return Progress(int(state["epoch"]), float(state["best_accuracy"]), int(state["best_epoch"]))


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "random": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
    )
    version, internal, gauss_next = state["random"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
