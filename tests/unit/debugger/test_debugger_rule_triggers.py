"""Each debugger rule fires on a real (tiny, CPU) PyTorch run built to cause its problem,
and all of them stay quiet on a healthy run.

The runs go through the real ``Hook`` (PyTorch's module and optimizer hooks) into
``tmp_path/algo-1`` and are read back with ``read_trial``, as the server does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.unit.debugger.test_debugger_rules import DEBUGGER_RULES
from torch import nn

from kennel.debugger import Trial, read_trial
from kennel.debugger._hook import Hook, HookConfig, modes
from kennel.debugger.rules import Finding, rule_class

ALL_COLLECTIONS = frozenset({"losses", "weights", "gradients", "activations", "labels"})

Data = tuple[torch.Tensor, torch.Tensor]
MakeOptimizer = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def blobs(n: int, features: int = 16, classes: int = 2, seed: int = 0) -> Data:
    """An easy problem: each class a unit-variance cloud around its own centre, the
    centres ~6 apart (nearly separable, yet not learnt to a zero loss in a few epochs)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=torch.Generator().manual_seed(99))
    y = torch.arange(n) % classes
    x = centres[y] + torch.randn(n, features, generator=g)
    return x, y


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with one nn.ReLU module each (the hook watches each separately),
    Kaiming-initialised with zero biases."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        linear = nn.Linear(a, b)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linear(model: nn.Sequential, index: int) -> nn.Linear:
    layer = model[index]
    assert isinstance(layer, nn.Linear)
    return layer


def sgd(lr: float, momentum: float = 0.0) -> MakeOptimizer:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def adam(lr: float) -> MakeOptimizer:
    return lambda params: torch.optim.Adam(params, lr=lr)


def train(
    tmp_path: Path,
    model: nn.Module,
    data: Data,
    *,
    optimizer: MakeOptimizer,
    epochs: int,
    valid: Data | None = None,
    batch_size: int = 32,
    save_interval: int = 5,
) -> Trial:
    """A plain training loop with the hook, an eval pass per epoch when ``valid`` is given;
    returns what the hook wrote, read back as the server reads it."""
    hook = Hook(HookConfig(tmp_path / "algo-1", save_interval, ALL_COLLECTIONS, rank=0))
    criterion = nn.CrossEntropyLoss()
    try:
        hook.register_module(model)
        hook.register_loss(criterion)
        opt = optimizer([p for p in model.parameters() if p.requires_grad])
        x, y = data
        order = torch.Generator().manual_seed(1)
        for _ in range(epochs):
            hook.set_mode(modes.TRAIN)
            model.train()
            for batch in torch.split(torch.randperm(len(x), generator=order), batch_size):
                opt.zero_grad()
                criterion(model(x[batch]), y[batch]).backward()
                opt.step()
            if valid is not None:
                hook.set_mode(modes.EVAL)
                model.eval()
                with torch.no_grad():
                    for i in range(0, len(valid[0]), 256):
                        vx, vy = valid[0][i : i + 256], valid[1][i : i + 256]
                        criterion(model(vx), vy)
    finally:
        hook.close()  # also removes its global optimizer hooks before the next run
    return read_trial(tmp_path)


def evaluate(name: str, trial: Trial) -> Finding:
    return rule_class(name)().evaluate(trial)


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)  # initialisation and torch.rand in the tests


# Healthy ------------------------------------------------------------------------------


def test_a_healthy_run_keeps_every_rule_quiet(tmp_path: Path) -> None:
    """A Kaiming-initialised MLP learning an easy problem at a sensible learning rate,
    evaluated once per epoch; long enough for every rule to judge, not to converge."""
    trial = train(
        tmp_path,
        mlp([16, 32, 32, 2]),
        blobs(1024),
        valid=blobs(512, seed=1),
        optimizer=sgd(0.01),
        epochs=6,
    )
    evals = [loss for _, loss in trial.losses("eval")]
    assert evals == sorted(evals, reverse=True)  # it does learn throughout
    findings = {name: evaluate(name, trial) for name in DEBUGGER_RULES}
    assert not [f for f in findings.values() if f.issue], findings
    # Quiet because all is well, not for want of data; Overtraining needs more than six
    # evaluations or 300 steps by default, so it is asked with shorter patience too.
    assert findings.pop("Overtraining").issue is None
    assert all(f.issue is False for f in findings.values()), findings
    patient = {"patience_validation": 2, "patience_train": 2, "train_window": 20, "delta": 1e-3}
    assert rule_class("Overtraining")(patient).evaluate(trial).issue is False


# One run per rule, built to make it fire ---------------------------------------------


def test_a_far_too_high_learning_rate_explodes(tmp_path: Path) -> None:
    trial = train(tmp_path, mlp([16, 32, 32, 2]), blobs(256), optimizer=sgd(1e6), epochs=1)
    finding = evaluate("ExplodingTensor", trial)
    assert finding.issue is True, finding
    assert "At step" in finding.details
    assert any(word in finding.details for word in ("nan", "inf", "non-finite")), finding


def test_a_frozen_network_does_not_decrease_its_loss(tmp_path: Path) -> None:
    # A learning rate of zero (a schedule that decayed it away): nothing moves. An epoch
    # is one window of 50 steps, so each window's mean is over the same samples.
    trial = train(tmp_path, mlp([16, 32, 32, 2]), blobs(1600), optimizer=sgd(0.0), epochs=3)
    finding = evaluate("LossNotDecreasing", trial)
    assert finding.issue is True, finding
    assert "mean train loss over steps" in finding.details


def test_memorising_random_labels_overfits(tmp_path: Path) -> None:
    x, _ = blobs(64)
    noise = (x, torch.randint(0, 2, (64,)))  # nothing to learn but the samples themselves
    valid = (blobs(256, seed=1)[0], torch.randint(0, 2, (256,)))
    trial = train(
        tmp_path,
        mlp([16, 256, 256, 2]),
        noise,
        valid=valid,
        optimizer=adam(0.01),
        epochs=30,
        batch_size=16,
    )
    finding = evaluate("Overfit", trial)
    assert finding.issue is True, finding
    assert "above the train loss" in finding.details


def test_training_on_after_the_validation_loss_stopped_improving_overtrains(
    tmp_path: Path,
) -> None:
    x, y = blobs(128)
    # Noisy labels: the eval loss bottoms out within a few epochs, then rises as the
    # noise is memorised; training goes on regardless.
    flipped = torch.rand(128) < 0.3
    valid = blobs(256, seed=1)
    trial = train(
        tmp_path,
        mlp([16, 128, 128, 2]),
        (x, torch.where(flipped, 1 - y, y)),
        valid=valid,
        optimizer=adam(0.01),
        epochs=20,
        batch_size=16,
    )
    finding = evaluate("Overtraining", trial)
    assert finding.issue is True, finding
    assert "eval loss has not improved by 0.01 on its best" in finding.details
    assert "for 10 evaluations" in finding.details


def test_a_deep_sigmoid_stack_with_small_weights_vanishes(tmp_path: Path) -> None:
    layers: list[nn.Module] = []
    for _ in range(8):
        layer = nn.Linear(32, 32)
        nn.init.normal_(layer.weight, std=0.01)  # each layer shrinks the gradient ~60x
        layers += [layer, nn.Sigmoid()]
    model = nn.Sequential(nn.Linear(16, 32), *layers, nn.Linear(32, 2))
    trial = train(tmp_path, model, blobs(128), optimizer=sgd(0.01), epochs=1)
    finding = evaluate("VanishingGradient", trial)
    assert finding.issue is True, finding
    assert "At step 0" in finding.details and "0.weight" in finding.details


def test_one_layer_scaled_down_is_a_poor_initialisation(tmp_path: Path) -> None:
    model = mlp([16, 32, 32, 32, 2])
    with torch.no_grad():
        linear(model, 2).weight.mul_(1e-4)
    trial = train(tmp_path, model, blobs(128), optimizer=sgd(0.01), epochs=1)
    finding = evaluate("PoorWeightInitialization", trial)
    assert finding.issue is True, finding
    # The first ReLU has the largest spread; those after the scaled layer, tiny ones.
    assert "At step 0" in finding.details and "(1)" in finding.details


def test_all_zero_weights_are_a_poor_initialisation(tmp_path: Path) -> None:
    model = mlp([16, 32, 32, 2])
    with torch.no_grad():
        linear(model, 2).weight.zero_()
    trial = train(tmp_path, model, blobs(128), optimizer=sgd(0.01), epochs=1)
    finding = evaluate("PoorWeightInitialization", trial)
    assert finding.issue is True, finding
    assert "2.weight" in finding.details


def test_a_huge_negative_bias_kills_the_relus(tmp_path: Path) -> None:
    model = mlp([16, 32, 32, 2])
    with torch.no_grad():
        linear(model, 0).bias.fill_(-100.0)
    trial = train(tmp_path, model, blobs(256), optimizer=sgd(0.01), epochs=2)
    finding = evaluate("DeadRelu", trial)
    assert finding.issue is True, finding
    assert "1 (100% dead" in finding.details


def test_a_thirty_to_one_class_ratio_is_imbalanced(tmp_path: Path) -> None:
    x, y = blobs(1200)
    keep = (y == 0) | (torch.arange(1200) % 60 == 1)  # 600 of class 0, 20 of class 1
    trial = train(tmp_path, mlp([16, 32, 32, 2]), (x[keep], y[keep]), optimizer=sgd(0.01), epochs=2)
    finding = evaluate("ClassImbalance", trial)
    assert finding.issue is True, finding
    assert "class 0 had" in finding.details and "class 1" in finding.details
    assert "above 10x" in finding.details


def test_a_rare_class_that_looks_like_another_is_mispredicted(tmp_path: Path) -> None:
    x, y = blobs(900, classes=3)
    lookalike = (y == 2) & (torch.arange(900) % 15 == 2)  # 60 of class 2 ...
    class_0 = blobs(900, classes=3, seed=5)[0].roll(2, dims=0)  # (class 0 at y == 2)
    x = torch.where(lookalike[:, None], class_0, x)  # ... drawn like class 0
    keep = (y != 2) | lookalike
    trial = train(tmp_path, mlp([16, 32, 32, 3]), (x[keep], y[keep]), optimizer=sgd(0.01), epochs=3)
    finding = evaluate("ClassImbalance", trial)
    assert finding.issue is True, finding
    assert "predicted wrong: class 2" in finding.details
