"""The hook a training script uses to save what Debugger rules and the profiler read.

In the spirit of smdebug, a script adds a few lines::

    from kennel import debugger

    hook = debugger.get_hook()          # configured by the job; a no-op hook elsewhere
    hook.register_module(model)
    hook.register_loss(criterion)       # an nn.Module loss, e.g. nn.CrossEntropyLoss()
    hook.set_mode(debugger.modes.TRAIN) # and modes.EVAL around validation

and it saves, as JSON lines (see ``_trial`` for the files): every train step's loss and
its time split (data loading, forward, backward, optimizer); every ``save_interval``
steps the per-layer statistics of weights and gradients, optionally of activations, and
the labels seen so far; the mean loss of each evaluation pass.

It works through PyTorch's own hooks, so the script's loop stays as it is: forward
pre/post hooks on the model time the forward pass (data loading is the time from the
end of the previous step to the start of this forward), the loss module's forward hook
sees the loss, the logits and the labels, and the global optimizer step hooks mark
backward's end and the step's end (``torch.optim.Optimizer.step``; a script that steps
no optimizer records no steps).

Cheap by construction: between save steps it takes a few clock readings and keeps the
loss tensor (no ``.item()``, which on a GPU would wait for the device); statistics are
computed only on save steps, all of them stacked into one tensor read back once. On a
GPU the phase times are host times (kernels are asynchronous), as a PyTorch profiler's
CPU view would show them.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from torch.utils.hooks import RemovableHandle

from kennel.debugger._spec import CONFIG_ENV

COLLECTIONS = ("losses", "weights", "gradients", "activations", "labels")
STAT_NAMES = ("mean", "std", "min", "max", "norm", "abs_mean", "zero_frac", "nonfinite")
ACT_NAMES = ("in_mean", "in_std", "out_zero_frac", "dead_frac")
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)
FLUSH_STEPS = 50
FLUSH_SECONDS = 2.0


class modes:
    """The hook's modes, as smdebug names them: ``hook.set_mode(modes.EVAL)`` while validating."""

    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True)
class HookConfig:
    out_dir: Path
    save_interval: int = 100
    collections: frozenset[str] = frozenset({"losses"})
    framework: bool = True
    rank: int = 0

    @classmethod
    def from_json(cls, text: str, environ: Mapping[str, str]) -> HookConfig:
        data = json.loads(text)
        unknown = set(data.get("collections", ())) - set(COLLECTIONS)
        if unknown:
            raise ValueError(f"unknown hook collections {sorted(unknown)}; known: {COLLECTIONS}")
        return cls(
            out_dir=Path(data["out_dir"]),
            save_interval=max(1, int(data.get("save_interval", 100))),
            collections=frozenset(data.get("collections", ("losses",))),
            framework=bool(data.get("framework", True)),
            rank=int(environ.get("RANK", data.get("rank", 0))),
        )


@dataclass
class _Step:
    """Clock readings of the train step in progress."""

    start: float  # wall clock when the step began (the end of the previous one)
    began: float  # perf_counter at the same moment
    forward_start: float | None = None
    forward_end: float | None = None
    backward_end: float | None = None
    hook_seconds: float = 0.0
    batch: int = 0


@dataclass
class _Pending:
    """Tensors kept between flushes; read back from the device in one go."""

    losses: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    framework: list[dict[str, Any]] = field(default_factory=list)
    activations: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class Hook:
    """Saves losses, tensor statistics and step timings of one training process."""

    def __init__(self, config: HookConfig | None) -> None:
        self.config = config
        self.mode = modes.TRAIN
        self.step = 0
        self._module: nn.Module | None = None
        self._handles: list[RemovableHandle] = []
        self._files: dict[str, IO[str]] = {}
        self._pending = _Pending()
        self._current: _Step | None = None
        self._capture = False
        self._last_flush = time.monotonic()
        self._eval_sum: torch.Tensor | None = None
        self._eval_count = 0
        self._label_counts: torch.Tensor | None = None
        self._label_correct: torch.Tensor | None = None
        self._closed = False
        if config is not None:
            config.out_dir.mkdir(parents=True, exist_ok=True)
            atexit.register(self.close)

    @property
    def enabled(self) -> bool:
        return self.config is not None and not self._closed

    def _wants(self, collection: str) -> bool:
        return self.config is not None and collection in self.config.collections

    # What the script calls ------------------------------------------------------------

    def register_module(self, module: nn.Module) -> None:
        """Time this model's forward passes; watch its parameters (and activations)."""
        if not self.enabled or self._module is not None:
            return
        self._module = module
        self._handles += [
            module.register_forward_pre_hook(self._forward_pre),
            module.register_forward_hook(self._forward_post),
            register_optimizer_step_pre_hook(self._optimizer_pre),
            register_optimizer_step_post_hook(self._optimizer_post),
        ]
        if self._wants("activations"):
            for name, child in module.named_modules():
                if isinstance(child, ACTIVATIONS):
                    self._handles += [
                        child.register_forward_pre_hook(self._activation_in(name)),
                        child.register_forward_hook(self._activation_out(name)),
                    ]
        self._current = self._new_step()

    def register_loss(self, loss_module: nn.Module) -> None:
        """Record what this loss module returns (and, with ``labels``, its targets)."""
        if self.enabled:
            self._handles.append(loss_module.register_forward_hook(self._loss_post))

    def record_loss(
        self,
        loss: torch.Tensor,
        logits: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> None:
        """For a functional loss (``F.cross_entropy``): hand the loss over each step."""
        if self.enabled:
            self._take_loss(loss, logits, labels)

    def set_mode(self, mode: str) -> None:
        """``modes.TRAIN`` or ``modes.EVAL``; leaving EVAL writes that pass's mean loss."""
        if mode not in (modes.TRAIN, modes.EVAL):
            raise ValueError(f"mode must be modes.TRAIN or modes.EVAL, not {mode!r}")
        if not self.enabled or mode == self.mode:
            return
        if self.mode == modes.EVAL:
            self._write_eval_loss()
        self.mode = mode
        if mode == modes.TRAIN:
            self._current = self._new_step()  # evaluation time is not data loading

    def save_scalar(self, name: str, value: float) -> None:
        """Any number worth keeping beside the losses (it appears in the report)."""
        if self.enabled:
            record = {"step": self.step, "mode": self.mode, "name": name, "value": float(value)}
            self._write("scalars", [record])

    def close(self) -> None:
        """Write what is pending and stop watching (also run at exit)."""
        if not self.enabled:
            return
        if self.mode == modes.EVAL:
            self._write_eval_loss()
        self._flush()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._closed = True

    # PyTorch's hooks --------------------------------------------------------------------

    def _new_step(self) -> _Step:
        return _Step(start=time.time(), began=time.perf_counter())

    def _forward_pre(self, module: nn.Module, args: Any) -> None:
        step = self._current
        if self.mode != modes.TRAIN or step is None or step.forward_start is not None:
            return
        step.forward_start = time.perf_counter()
        self._capture = self._wants("activations") and self._is_save_step()
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() > 0:
            step.batch = int(args[0].shape[0])

    def _forward_post(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.mode == modes.TRAIN and self._current is not None:
            self._current.forward_end = time.perf_counter()
        self._capture = False

    def _loss_post(self, module: nn.Module, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        logits = args[0] if len(args) > 0 and isinstance(args[0], torch.Tensor) else None
        labels = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None
        self._take_loss(output, logits, labels)

    def _take_loss(
        self, loss: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor | None
    ) -> None:
        value = loss.detach().float().mean()
        if self.mode == modes.EVAL:
            count = int(labels.shape[0]) if labels is not None and labels.dim() > 0 else 1
            total = value * count
            self._eval_sum = total if self._eval_sum is None else self._eval_sum + total
            self._eval_count += count
            return
        if self._wants("losses"):
            self._pending.losses.append((self.step, value))
        if self._wants("labels") and logits is not None and labels is not None:
            self._count_labels(logits.detach(), labels.detach())

    def _count_labels(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if labels.dim() != 1 or logits.dim() != 2 or labels.dtype.is_floating_point:
            return
        classes = int(logits.shape[1])
        counts = torch.bincount(labels, minlength=classes)[:classes]
        correct = torch.bincount(labels[logits.argmax(dim=1) == labels], minlength=classes)
        if self._label_counts is None or self._label_correct is None:
            self._label_counts, self._label_correct = counts, correct[:classes]
        else:
            self._label_counts += counts
            self._label_correct += correct[:classes]

    def _activation_in(self, name: str) -> Callable[[nn.Module, Any], None]:
        def hook(module: nn.Module, args: Any) -> None:
            if self._capture and args and isinstance(args[0], torch.Tensor):
                x = args[0].detach().float()
                self._pending.activations.setdefault(name, []).extend([x.mean(), x.std()])

        return hook

    def _activation_out(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if self._capture and isinstance(output, torch.Tensor) and output.dim() > 1:
                active = output.detach() > 0
                dead = active.flatten(1).any(dim=0).logical_not().float().mean()
                self._pending.activations.setdefault(name, []).extend(
                    [1.0 - active.float().mean(), dead]
                )

        return hook

    def _optimizer_pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        step = self._current
        if self.mode != modes.TRAIN or step is None:
            return
        now = time.perf_counter()
        step.backward_end = now
        if self._is_save_step():
            self._save_tensors()
            step.hook_seconds = time.perf_counter() - now

    def _optimizer_post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        step = self._current
        if self.mode != modes.TRAIN or step is None:
            return
        end = time.perf_counter()
        if self.config is not None and self.config.framework:
            self._pending.framework.append(self._timing(step, end))
        self.step += 1
        self._current = self._new_step()
        if (
            len(self._pending.framework) >= FLUSH_STEPS
            or len(self._pending.losses) >= FLUSH_STEPS
            or time.monotonic() - self._last_flush > FLUSH_SECONDS
        ):
            self._flush()

    # Records ------------------------------------------------------------------------------

    def _is_save_step(self) -> bool:
        return self.config is not None and self.step % self.config.save_interval == 0

    def _timing(self, step: _Step, end: float) -> dict[str, Any]:
        forward_start = step.forward_start if step.forward_start is not None else step.began
        forward_end = step.forward_end if step.forward_end is not None else forward_start
        backward_end = step.backward_end if step.backward_end is not None else forward_end
        return {
            "step": self.step,
            "start": round(step.start, 6),
            "data": round(forward_start - step.began, 6),
            "forward": round(forward_end - forward_start, 6),
            "backward": round(backward_end - forward_end, 6),
            "optimizer": round(end - backward_end - step.hook_seconds, 6),
            "hook": round(step.hook_seconds, 6),
            "total": round(end - step.began, 6),
            "batch": step.batch,
        }

    def _save_tensors(self) -> None:
        """Weights, gradients, activations and labels of this step, one device read."""
        module = self._module
        record: dict[str, Any] = {"step": self.step, "mode": self.mode}
        names: list[tuple[str, str]] = []
        rows: list[torch.Tensor] = []
        if module is not None:
            for name, param in module.named_parameters():
                if self._wants("weights"):
                    names.append(("weights", name))
                    rows.append(_stats(param.detach()))
                if self._wants("gradients") and param.grad is not None:
                    names.append(("gradients", name))
                    rows.append(_stats(param.grad.detach()))
        activations = self._pending.activations
        self._pending.activations = {}
        act_rows = [
            torch.stack([torch.as_tensor(v).float() for v in vs]) for vs in activations.values()
        ]
        values = torch.stack(rows).tolist() if rows else []
        for (kind, name), row in zip(names, values, strict=True):
            record.setdefault(kind, {})[name] = dict(zip(STAT_NAMES, row, strict=True))
        if act_rows:
            for name, row in zip(activations, [r.tolist() for r in act_rows], strict=True):
                record.setdefault("activations", {})[name] = _activation_stats(row)
        if self._label_counts is not None and self._label_correct is not None:
            record["labels"] = {
                "count": self._label_counts.tolist(),
                "correct": self._label_correct.tolist(),
            }
        self._write("tensors", [record])

    def _write_eval_loss(self) -> None:
        if self._eval_sum is not None and self._eval_count:
            loss = float(self._eval_sum) / self._eval_count
            record = {
                "step": self.step,
                "mode": modes.EVAL,
                "loss": loss,
                "count": self._eval_count,
            }
            self._write("losses", [record])
        self._eval_sum, self._eval_count = None, 0

    def _flush(self) -> None:
        pending = self._pending.losses
        if pending:
            values = torch.stack([v for _, v in pending]).tolist()
            self._write(
                "losses",
                [
                    {"step": step, "mode": modes.TRAIN, "loss": value}
                    for (step, _), value in zip(pending, values, strict=True)
                ],
            )
            pending.clear()
        if self._pending.framework:
            self._write("framework", self._pending.framework)
            self._pending.framework = []
        self._last_flush = time.monotonic()

    def _write(self, kind: str, records: Iterable[dict[str, Any]]) -> None:
        assert self.config is not None
        f = self._files.get(kind)
        if f is None:
            f = (self.config.out_dir / f"{kind}.jsonl").open("a", encoding="utf-8")
            self._files[kind] = f
        rank = self.config.rank
        f.write("".join(json.dumps({"rank": rank, **r}) + "\n" for r in records))
        f.flush()


def _stats(tensor: torch.Tensor) -> torch.Tensor:
    """The ``STAT_NAMES`` of one tensor as a 1-D tensor (computed on its device)."""
    flat = tensor.float().flatten()
    if flat.numel() == 0:
        return torch.zeros(len(STAT_NAMES), device=flat.device)
    std = flat.std() if flat.numel() > 1 else torch.zeros((), device=flat.device)
    return torch.stack(
        [
            flat.mean(),
            std,
            flat.min(),
            flat.max(),
            flat.norm(),
            flat.abs().mean(),
            (flat == 0).float().mean(),
            torch.isfinite(flat).logical_not().sum().float(),
        ]
    )


def _activation_stats(row: list[float]) -> dict[str, float]:
    """Means over the calls of one activation module in the step (a ReLU used twice)."""
    calls: dict[str, list[float]] = {}
    for index, value in enumerate(row):
        # The pre hook adds (mean, std) and the post hook (zero_frac, dead) for each call.
        kind = ("in_mean", "in_std", "out_zero_frac", "dead_frac")[index % 4]
        calls.setdefault(kind, []).append(value)
    return {k: sum(v) / len(v) for k, v in calls.items()}


_HOOK: Hook | None = None


def get_hook() -> Hook:
    """This process's hook, configured from ``KENNEL_DEBUGGER_CONFIG``.

    Outside a kennel job (no configuration) it is a disabled hook whose methods do
    nothing, so a script that uses it runs unchanged anywhere. One hook per process,
    as smdebug has it: the optimizer step hooks PyTorch calls are global.
    """
    global _HOOK
    if _HOOK is None:
        text = os.environ.get(CONFIG_ENV)
        _HOOK = Hook(HookConfig.from_json(text, os.environ) if text else None)
    return _HOOK
