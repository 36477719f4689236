"""Process placement: single process or DDP, as torchrun / the kennel platform set it up.

The platform starts one process per rank with WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT in the environment (torchrun's contract), so
``init_method="env://"`` needs nothing else. With WORLD_SIZE unset or 1 nothing
distributed is touched, and the helpers below are no-ops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Placement:
    """Where this process sits: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints metrics and writes checkpoints and the model."""
        return self.rank == 0


def start(environ: Mapping[str, str]) -> Placement:
    """Join the process group when WORLD_SIZE > 1; pick the device either way."""
    world_size = _int(environ, "WORLD_SIZE", 1)
    rank = _int(environ, "RANK", 0)
    local_rank = _int(environ, "LOCAL_RANK", rank)
    local_world_size = _int(environ, "LOCAL_WORLD_SIZE", world_size)
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1:
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            init_method="env://",
            world_size=world_size,
            rank=rank,
        )
    return Placement(rank, world_size, local_rank, local_world_size, device)


def stop(placement: Placement) -> None:
    if placement.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, placement: Placement) -> torch.Tensor:
    """Sum ``values`` over all ranks in place, so every rank reports the same metrics."""
    if placement.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(model: nn.Module, placement: Placement) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each forward pass, so after an epoch's last step
    each rank holds statistics from its own last batch. Without this the ranks would
    validate, and end, with slightly different models.
    """
    if placement.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def broadcast_object(value: object, placement: Placement) -> object:
    """Rank 0's ``value`` on every rank (e.g. the checkpoint it found, or None)."""
    if not placement.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
