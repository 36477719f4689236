"""The built-in trainer's step loop against a bare PyTorch loop, and 1 vs 2 instances.

Part 1 (in process): the same ResNet-18, the same decoded batches of the demo set, the
same optimizer; the bare loop is the textbook ``zero_grad / forward / backward / step``.
Each trainer measurement is paired with a bare-loop probe right before and right after
it, and its ratio is taken to the mean of the two (these machines drift).

Part 2 (through a real kennel server): the same built-in-trainer job on 1 and on 2
instances (DDP over gloo), their throughput, wall time and final accuracy side by side.
On a 2-core machine two instances share the cores, so this shows the cost of DDP's
communication rather than a speed-up.

Part 3 (in process): the same train_epoch with the debugger hook and the profiler on
(framework metrics every step; losses, weights, gradients and labels saved every
``HOOK_SAVE_INTERVAL`` steps, one save per round, four times as often as the default;
the system monitor sampling the process every 500 ms) against the same loop with them
off, paired and interleaved the same way; the overhead is 1 - on/off throughput.

    RESULT trainer_vs_bare <ratio> goal>=0.95
    RESULT profiler_overhead_pct <pct> goal<=5
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROUNDS = int(os.environ.get("KENNEL_BENCH_ROUNDS", "9"))
BATCHES = int(os.environ.get("KENNEL_BENCH_BATCHES", "4"))
HOOK_BATCHES = int(os.environ.get("KENNEL_BENCH_HOOK_BATCHES", "25"))
HOOK_SAVE_INTERVAL = HOOK_BATCHES
IMAGE_SIZE, BATCH_SIZE = 64, 32


def in_process(work: Path) -> float:
    from kennel.datasets import make_demo
    from kennel.trainer._args import parse_args
    from kennel.trainer._data import build_loaders
    from kennel.trainer._dist import start
    from kennel.trainer._loop import Fit, Network, train_epoch
    from kennel.trainer._models import build_model

    torch.set_num_threads(os.cpu_count() or 1)
    data = work / "demo"
    make_demo(data, image_size=IMAGE_SIZE)
    config = parse_args(
        [
            "--train",
            str(data / "train"),
            "--valid",
            str(data / "valid"),
            "--model-dir",
            str(work / "model"),
            "--arch",
            "resnet18",
            "--image-size",
            str(IMAGE_SIZE),
            "--batch-size",
            str(BATCH_SIZE),
            "--augmentation",
            "none",
        ],
        environ={},
    )
    placement = start({})
    loaders = build_loaders(config, placement)
    batches = [b for _, b in zip(range(BATCHES), loaders.train, strict=False)]
    model = build_model("resnet18", 10, pretrained=False, weights=None, freeze_backbone=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    run = Fit(
        Network(model, model, False),
        optimizer,
        replace(loaders, train=batches),
        placement,
        lambda _line: None,
        {},
    )

    def bare() -> float:
        model.train()
        started = time.perf_counter()
        for images, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        return len(batches) * BATCH_SIZE / (time.perf_counter() - started)

    def trainer() -> float:
        started = time.perf_counter()
        train_epoch(run, 1, 0, 0)
        return len(batches) * BATCH_SIZE / (time.perf_counter() - started)

    bare(), trainer()  # warm-up
    ratios, bares, trainers = [], [], []
    for _ in range(ROUNDS):
        before, candidate, after = bare(), trainer(), bare()
        ratios.append(candidate / ((before + after) / 2))
        bares += [before, after]
        trainers.append(candidate)
    print(f"{'loop (ResNet-18, 64 px, batch 32)':<40}{'median samples/s':>18}")
    print(f"{'bare PyTorch':<40}{statistics.median(bares):>18.1f}")
    print(f"{'kennel.trainer train_epoch':<40}{statistics.median(trainers):>18.1f}")
    print(f"per-round ratios: {' '.join(f'{r:.3f}' for r in ratios)}")
    return statistics.median(ratios)


def hook_overhead(work: Path) -> float:
    """Throughput with the debugger hook and profiler on vs off; the overhead in %."""
    from kennel.datasets import make_demo
    from kennel.debugger._hook import Hook, HookConfig
    from kennel.debugger._system import SystemMonitor
    from kennel.trainer._args import parse_args
    from kennel.trainer._data import build_loaders
    from kennel.trainer._dist import start
    from kennel.trainer._loop import Fit, Network, train_epoch
    from kennel.trainer._models import build_model

    torch.set_num_threads(os.cpu_count() or 1)
    data = work / "demo-hook"
    make_demo(data, image_size=IMAGE_SIZE)
    argv = ["--train", str(data / "train"), "--valid", str(data / "valid")]
    argv += ["--model-dir", str(work / "model"), "--image-size", str(IMAGE_SIZE)]
    argv += ["--batch-size", str(BATCH_SIZE), "--augmentation", "none"]
    config = parse_args(argv, environ={})
    placement = start({})
    loaders = build_loaders(config, placement)
    batches: list[Any] = []
    while len(batches) < HOOK_BATCHES:  # the demo set may hold fewer: cycle it
        batches += [
            b for _, b in zip(range(HOOK_BATCHES - len(batches)), loaders.train, strict=False)
        ]
    model = build_model("resnet18", 10, pretrained=False, weights=None, freeze_backbone=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    shared = (optimizer, replace(loaders, train=batches), placement, lambda _line: None, {})
    off = Fit(Network(model, model, False), *shared, criterion=criterion)
    collections = frozenset({"losses", "weights", "gradients", "labels"})

    def timed(run: Fit) -> float:
        started = time.perf_counter()
        train_epoch(run, 1, 0, 0)
        return len(batches) * BATCH_SIZE / (time.perf_counter() - started)

    def hooked(round_index: int) -> float:
        out = work / "debug" / f"round-{round_index}"
        hook = Hook(HookConfig(out, HOOK_SAVE_INTERVAL, collections, framework=True))
        hook.register_module(model)
        hook.register_loss(criterion)
        on = Fit(Network(model, model, False), *shared, criterion=criterion, hook=hook)
        with SystemMonitor(out, os.getpid(), torch.get_num_threads(), 0.5):
            speed = timed(on)
        hook.close()
        return speed

    timed(off), hooked(-1)  # warm-up
    ratios, offs, ons = [], [], []
    for index in range(ROUNDS):
        before, candidate, after = timed(off), hooked(index), timed(off)
        ratios.append(candidate / ((before + after) / 2))
        offs += [before, after]
        ons.append(candidate)
    steps = sum(1 for _ in (work / "debug" / "round-0" / "framework.jsonl").open())
    print(f"\n{'loop (ResNet-18, 64 px, batch 32)':<40}{'median samples/s':>18}")
    print(f"{'hook and profiler off':<40}{statistics.median(offs):>18.1f}")
    print(f"{'hook and profiler on':<40}{statistics.median(ons):>18.1f}")
    print(f"per-round ratios: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"({steps} steps recorded per round, {HOOK_BATCHES} steps per round)")
    return (1 - statistics.median(ratios)) * 100


def through_the_platform(work: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests._server import start_server, stop_server

    server = start_server(work / "home")
    rows: list[tuple[str, Any, Any, float]] = []
    try:
        with server.client() as api:
            api.post("/api/v1/datasets", {"name": "bench", "demo": {"image_size": 32}})
            for count in (1, 2):
                spec = {
                    "name": f"bench-{count}",
                    "dataset": "bench",
                    "instance_type": "ml.m5.large",
                    "instance_count": count,
                    "hyperparameters": {
                        "arch": "small-cnn",
                        "epochs": 4,
                        "image-size": 32,
                        "lr": 0.05,
                        "batch-size": 32,
                        "seed": 1,
                    },
                }
                started = time.monotonic()
                api.post("/api/v1/training-jobs", spec)
                job = api.get(f"/api/v1/training-jobs/bench-{count}")
                while job["status"] in ("InProgress", "Stopping"):
                    time.sleep(0.5)
                    job = api.get(f"/api/v1/training-jobs/bench-{count}")
                if job["status"] != "Completed":
                    raise SystemExit(f"bench-{count} {job['status']}: {job['failure_reason']}")
                metrics = job["final_metrics"]
                rows.append(
                    (
                        f"{count} x ml.m5.large",
                        metrics.get("train:samples_per_sec"),
                        metrics.get("test:accuracy"),
                        time.monotonic() - started,
                    )
                )
    finally:
        stop_server(server)
    print(
        f"\n{'job (small CNN, 32 px, 4 epochs)':<34}{'samples/s':>12}{'test acc':>10}{'wall s':>9}"
    )
    for name, speed, acc, wall in rows:
        print(f"{name:<34}{speed:>12.1f}{acc:>10.3f}{wall:>9.1f}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kennel-bench-") as tmp:
        ratio = in_process(Path(tmp))
        overhead = hook_overhead(Path(tmp))
        if os.environ.get("KENNEL_BENCH_SKIP_JOBS") != "1":
            through_the_platform(Path(tmp))
    print(f"RESULT trainer_vs_bare {ratio:.3f} goal>=0.95")
    print(f"RESULT profiler_overhead_pct {max(overhead, 0.0):.2f} goal<=5")


if __name__ == "__main__":
    main()
