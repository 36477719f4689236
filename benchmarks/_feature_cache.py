"""Time per trial with and without the trainer's feature cache, on the same trials.

The trials: a frozen, randomly initialised ResNet-18 (no pretrained weights can be
downloaded here; a frozen random backbone costs the same to run) at 224 px on 500 demo
digits (300 train, 100 valid, 100 test), augmentation none, 3 epochs, one trial per
learning rate. Each runs as ``python -m kennel.trainer`` twice: ``--feature-cache off``
(every epoch pushes every image through the backbone) and with a cache that a first,
separate run built (its one-off build time is reported beside the speed-up).

"Time per trial" is the trainer's own ``train_seconds``: the epoch loop (loading and
forwarding the batches, the steps, the validation passes), measured by the trainer the
same way on both paths. It leaves out the Python/torch import and the setup before the
first epoch (building the network; for the cached run, hashing the data set and reading
the cache), which the table shows separately as a whole-trial ratio so the setup cost is
not hidden. The uncached and cached runs of each trial are interleaved, alternating which
goes first, so the machine's drift hits both alike; the ratio is of the medians, with
each pair's own ratio printed for comparison.

The objective is the final-epoch validation loss; both paths shuffle with the run's seed
identically, so the best objective over the trials must agree within
``OBJECTIVE_TOLERANCE``.

    python benchmarks/_feature_cache.py     # prints the table and the dict
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LEARNING_RATES = (0.003, 0.01, 0.03)
EPOCHS = 3
IMAGE_SIZE = 224
PER_CLASS = (30, 10, 10)
OBJECTIVE_TOLERANCE = 1e-3
CACHE_ENV = "KENNEL_FEATURE_CACHE_URL"
TIMEOUT = 600

_TIMING = re.compile(
    r"^timing setup_seconds=([0-9.]+) train_seconds=([0-9.]+) test_seconds=([0-9.]+)$", re.M
)
_EPOCH = re.compile(r"^epoch=(\d+) train_loss=\S+ valid_loss=([0-9.]+) ", re.M)
_STATE = re.compile(r"^feature_cache=(hit|build|unused) ", re.M)
_BUILD = re.compile(r"^feature_cache=build key=\S+ seconds=([0-9.]+)", re.M)


@dataclass(frozen=True)
class Trial:
    """What one trainer run reported about itself."""

    cache: str
    setup_seconds: float
    train_seconds: float
    test_seconds: float
    objective: float
    build_seconds: float | None

    @property
    def whole_seconds(self) -> float:
        return self.setup_seconds + self.train_seconds + self.test_seconds


def measure_feature_cache() -> dict[str, float]:
    """Build once, then the same trials uncached and cached, interleaved; see the module doc."""
    from kennel.datasets import make_demo

    with tempfile.TemporaryDirectory(prefix="kennel-bench-fc-") as work:
        root = Path(work)
        make_demo(root / "digits", image_size=IMAGE_SIZE, per_class=PER_CLASS)
        env = _environment(root / "torch-home")
        cache = str(root / "cache")
        build = _trial(root, env, LEARNING_RATES[0], cache)
        if build.cache != "build" or build.build_seconds is None:
            raise RuntimeError(f"the first cached run did not build the cache: {build}")
        pairs: list[tuple[Trial, Trial]] = []
        for index, lr in enumerate(LEARNING_RATES):
            first, second = ("off", cache) if index % 2 == 0 else (cache, "off")
            runs = {mode: _trial(root, env, lr, mode) for mode in (first, second)}
            pairs.append((runs["off"], runs[cache]))
    _check(pairs)
    result = _summarise(build.build_seconds, pairs)
    _print_table(pairs, result)
    return result


def _environment(torch_home: Path) -> dict[str, str]:
    """Both cores for each run (runs are sequential); nothing inherited that changes a run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "WORLD_SIZE", "RANK"))}
    env.pop(CACHE_ENV, None)
    env.update(
        TORCH_HOME=str(torch_home), SM_NUM_CPUS=str(os.cpu_count() or 1), PYTHONUNBUFFERED="1"
    )
    return env


def _trial(root: Path, env: dict[str, str], lr: float, feature_cache: str) -> Trial:
    data = root / "digits"
    args = [
        "--train", str(data / "train"), "--valid", str(data / "valid"),
        "--test", str(data / "test"), "--model-dir", str(root / "model"),
        "--arch", "resnet18", "--pretrained", "false", "--freeze-backbone", "true",
        "--image-size", str(IMAGE_SIZE), "--augmentation", "none", "--epochs", str(EPOCHS),
        "--batch-size", "32", "--lr", str(lr), "--seed", "0", "--log-interval", "0",
        "--feature-cache", feature_cache,
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "kennel.trainer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trainer failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return _parse(done.stdout)


def _parse(stdout: str) -> Trial:
    timing, state, build = _TIMING.search(stdout), _STATE.search(stdout), _BUILD.search(stdout)
    epochs = _EPOCH.findall(stdout)
    if timing is None or state is None or len(epochs) != EPOCHS:
        raise RuntimeError(f"unexpected trainer output:\n{stdout[-3000:]}")
    setup, train, test = (float(value) for value in timing.groups())
    built = float(build[1]) if build else None
    return Trial(state[1], setup, train, test, float(epochs[-1][1]), built)


def _check(pairs: list[tuple[Trial, Trial]]) -> None:
    for uncached, cached in pairs:
        if (uncached.cache, cached.cache) != ("unused", "hit"):
            raise RuntimeError(
                f"expected an uncached run and a cache hit, got {uncached}, {cached}"
            )


def _summarise(build_seconds: float, pairs: list[tuple[Trial, Trial]]) -> dict[str, float]:
    uncached = statistics.median(u.train_seconds for u, _ in pairs)
    cached = statistics.median(c.train_seconds for _, c in pairs)
    whole = statistics.median(u.whole_seconds for u, _ in pairs) / statistics.median(
        c.whole_seconds for _, c in pairs
    )
    return {
        "build_seconds": build_seconds,
        "uncached_trial_seconds": uncached,
        "cached_trial_seconds": cached,
        "speedup": uncached / max(cached, 1e-9),
        "whole_trial_speedup": whole,
        "objective_uncached": min(u.objective for u, _ in pairs),
        "objective_cached": min(c.objective for _, c in pairs),
        "objective_max_difference": max(abs(u.objective - c.objective) for u, c in pairs),
        "objective_tolerance": OBJECTIVE_TOLERANCE,
    }


def _print_table(pairs: list[tuple[Trial, Trial]], result: dict[str, float]) -> None:
    print(
        f"feature cache: resnet18 frozen (random init), {IMAGE_SIZE} px, "
        f"{sum(PER_CLASS) * 10} images, {EPOCHS} epochs, batch 32"
    )
    header = f"{'lr':>7} {'uncached s':>11} {'cached s':>9} {'ratio':>8} "
    header += f"{'setup u/c s':>13} {'valid_loss u':>13} {'valid_loss c':>13}"
    print(header)
    for lr, (u, c) in zip(LEARNING_RATES, pairs, strict=True):
        print(
            f"{lr:>7g} {u.train_seconds:>11.3f} {c.train_seconds:>9.4f} "
            f"{u.train_seconds / max(c.train_seconds, 1e-9):>8.0f} "
            f"{u.setup_seconds:>6.2f}/{c.setup_seconds:<6.2f} "
            f"{u.objective:>13.4f} {c.objective:>13.4f}"
        )
    print(
        f"cache build (one-off): {result['build_seconds']:.1f} s; per-trial speed-up "
        f"(median train_seconds) {result['speedup']:.0f}x; whole trial incl. setup and test "
        f"{result['whole_trial_speedup']:.1f}x; best objective uncached "
        f"{result['objective_uncached']:.4f} vs cached {result['objective_cached']:.4f} "
        f"(tolerance {OBJECTIVE_TOLERANCE:g})"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    measured = measure_feature_cache()
    print({name: round(value, 6) for name, value in measured.items()})
    print(f"took {time.perf_counter() - started:.0f} s")
