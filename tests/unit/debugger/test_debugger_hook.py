"""The training-script hook: what it writes, when, and that it costs nothing when off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from kennel.debugger import read_trial
from kennel.debugger._hook import CONFIG_ENV, Hook, HookConfig, modes

ALL = frozenset({"losses", "weights", "gradients", "activations", "labels"})


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def train(hook: Hook, steps: int = 12, eval_batches: int = 3) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    criterion = nn.CrossEntropyLoss()
    hook.register_module(model)
    hook.register_loss(criterion)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        x, y = torch.randn(8, 16), torch.randint(0, 4, (8,))
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    hook.set_mode(modes.EVAL)
    with torch.no_grad():
        for _ in range(eval_batches):
            criterion(model(torch.randn(8, 16)), torch.randint(0, 4, (8,)))
    hook.set_mode(modes.TRAIN)
    hook.close()
    return model


def test_the_hook_writes_losses_steps_and_tensors_at_its_interval(tmp_path: Path) -> None:
    out = tmp_path / "algo-1"
    train(Hook(HookConfig(out, save_interval=5, collections=ALL, framework=True, rank=0)))
    losses = lines(out / "losses.jsonl")
    assert [r["step"] for r in losses if r["mode"] == "train"] == list(range(12))
    (evaluation,) = [r for r in losses if r["mode"] == "eval"]
    assert evaluation["count"] == 24 and evaluation["loss"] > 0
    steps = lines(out / "framework.jsonl")
    assert [s["step"] for s in steps] == list(range(12))
    for s in steps:
        assert s["batch"] == 8
        parts = s["data"] + s["forward"] + s["backward"] + s["optimizer"] + s["hook"]
        assert parts == pytest.approx(s["total"], abs=1e-4)
    tensors = lines(out / "tensors.jsonl")
    assert [t["step"] for t in tensors] == [0, 5, 10]
    first = tensors[0]
    assert set(first["weights"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert set(first["gradients"]) == set(first["weights"])
    assert first["gradients"]["0.weight"]["norm"] > 0
    assert set(first["activations"]["1"]) == {"in_mean", "in_std", "out_zero_frac", "dead_frac"}
    assert sum(tensors[-1]["labels"]["count"]) == 8 * 11  # labels of steps 0..10
    trial = read_trial(tmp_path)
    assert len(trial.losses("train")) == 12 and len(trial.losses("eval")) == 1


def test_the_stats_are_the_tensors_own(tmp_path: Path) -> None:
    out = tmp_path / "algo-1"
    model = train(Hook(HookConfig(out, save_interval=100, collections=ALL)), steps=1)
    weights = lines(out / "tensors.jsonl")[0]["weights"]["2.bias"]
    # Saved before the step's update: compare with what the update started from.
    assert weights["nonfinite"] == 0 and weights["zero_frac"] == 0
    assert weights["min"] <= weights["mean"] <= weights["max"]
    assert model[2].bias.numel() == 4


def test_only_the_asked_collections_are_saved(tmp_path: Path) -> None:
    out = tmp_path / "algo-1"
    train(
        Hook(HookConfig(out, save_interval=5, collections=frozenset({"losses"}), framework=False))
    )
    assert not (out / "framework.jsonl").exists()
    tensors = lines(out / "tensors.jsonl")
    assert all(set(t) == {"rank", "step", "mode"} for t in tensors)


def test_a_hook_without_configuration_does_nothing(tmp_path: Path) -> None:
    hook = Hook(None)
    train(hook)
    hook.save_scalar("x", 1.0)
    assert not hook.enabled and list(tmp_path.iterdir()) == []


def test_bad_modes_and_collections_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="modes.TRAIN"):
        Hook(HookConfig(tmp_path)).set_mode("predict")
    with pytest.raises(ValueError, match="collections"):
        HookConfig.from_json(json.dumps({"out_dir": str(tmp_path), "collections": ["x"]}), {})


def test_the_configuration_comes_from_the_job_and_the_rank_from_ddp(tmp_path: Path) -> None:
    text = json.dumps({"out_dir": str(tmp_path), "save_interval": 7, "collections": ["losses"]})
    config = HookConfig.from_json(text, {"RANK": "3", CONFIG_ENV: text})
    assert (config.save_interval, config.rank, config.framework) == (7, 3, True)
