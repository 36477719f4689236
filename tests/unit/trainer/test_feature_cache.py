"""The feature cache: an exact key, build once then hit, atomic entries, same objective.

Three real trainer runs (build, hit, uncached) on the 32 px demo digits with a frozen
small CNN back the end-to-end tests; the key, the store and the decision are tested in
process.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tests.unit.trainer._helpers import (
    EPOCH_LINE,
    SMALL_CNN,
    TEST_LINE,
    Run,
    channels,
    load_handler,
    predict_json,
    run_trainer,
    trainer_env,
)

from kennel.trainer._args import TrainerConfig, parse_args
from kennel.trainer._dist import Placement
from kennel.trainer._feature_cache import (
    CACHE_ENV,
    MANIFEST,
    CachedFeatures,
    FeatureCacheError,
    FeatureStore,
    KeyInputs,
    build_features,
    cache_key,
    data_digest,
    decide,
    key_inputs,
    obtain_features,
    preprocessing,
    train_classes,
    weights_identity,
)
from kennel.trainer._models import build_model

LOSS_TOLERANCE = 1e-3
"""Cached and uncached runs draw the same batches in the same order and feed the head the
same numbers; only the backbone's batch composition (64 at build, the run's batch size
uncached) can move a feature in its last bits. Accuracies must match exactly."""
FROZEN = [*SMALL_CNN, "--freeze-backbone", "true", "--epochs", "2", "--seed", "3"]
KEY_LINE = re.compile(r"^feature_cache=(hit|build) key=([0-9a-f]{64})", re.MULTILINE)
CPU = Placement(0, 1, 0, 1, torch.device("cpu"))


def _config(demo: Path, tmp: Path, *extra: str) -> TrainerConfig:
    args = [*channels(demo), "--model-dir", str(tmp / "model"), *FROZEN, *extra]
    return parse_args(args, {})


# The key ------------------------------------------------------------------------------


def _inputs(config: TrainerConfig) -> KeyInputs:
    classes = train_classes(config)
    torch.manual_seed(config.seed)  # as the trainer seeds before building the network
    model = build_model(config.arch, len(classes), freeze_backbone=True)
    return key_inputs(config, model, len(classes))


def test_the_same_inputs_give_the_same_key(demo: Path, tmp_path: Path) -> None:
    config = _config(demo, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)  # another job's download of the same data set
    moved = _config(copy, tmp_path, "--lr", "0.5", "--epochs", "7")
    assert cache_key(_inputs(config)) == cache_key(_inputs(moved))


@pytest.mark.parametrize(
    "changed",
    [
        {"format_version": 2},
        {"data": "0" * 64},
        {"arch": "resnet18"},
        {"preprocessing": preprocessing(64)},
        {"weights": {"source": "random", "seed": 4, "num_classes": 10}},
        {"backbone": "f" * 64},
        {"frameworks": {"torch": "9.9", "torchvision": "0.29", "pillow": "11.0"}},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_every_key_input_changes_the_key(
    demo: Path, tmp_path: Path, changed: dict[str, object]
) -> None:
    inputs = _inputs(_config(demo, tmp_path))
    assert cache_key(dataclasses.replace(inputs, **changed)) != cache_key(inputs)  # type: ignore[arg-type]


def test_the_real_inputs_follow_the_config(demo: Path, tmp_path: Path) -> None:
    """Each config input reaches the key through the function that derives it."""
    base = _inputs(_config(demo, tmp_path))
    assert _inputs(_config(demo, tmp_path, "--seed", "4")).backbone != base.backbone
    assert _inputs(_config(demo, tmp_path, "--image-size", "24")).preprocessing != (
        base.preprocessing
    )
    resnet = _inputs(_config(demo, tmp_path, "--arch", "resnet18"))
    assert (resnet.arch, resnet.backbone) != (base.arch, base.backbone)
    pretrained = dataclasses.replace(_config(demo, tmp_path), pretrained=True, arch="resnet18")
    assert weights_identity(pretrained, 10)["name"] == "ResNet18_Weights.IMAGENET1K_V1"
    state = tmp_path / "a.pt"
    torch.save({"x": torch.zeros(1)}, state)
    first = weights_identity(dataclasses.replace(pretrained, pretrained=False, weights=state), 10)
    torch.save({"x": torch.ones(1)}, state)
    second = weights_identity(dataclasses.replace(pretrained, pretrained=False, weights=state), 10)
    assert first["sha256"] != second["sha256"]


def test_the_data_digest_reads_content_not_times(demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "digits"
    shutil.copytree(demo, copy)
    splits = {"train": copy / "train", "valid": copy / "valid", "test": copy / "test"}
    before = data_digest(splits)
    image = next((copy / "train" / "003.two").glob("*.jpg"))
    os.utime(image, (0, 0))
    assert data_digest(splits) == before, "a modification time is not content"
    data = bytearray(image.read_bytes())
    data[-3] ^= 0xFF  # same size, other bytes
    image.write_bytes(bytes(data))
    changed = data_digest(splits)
    assert changed != before
    image.rename(image.with_name("renamed.jpg"))
    assert data_digest(splits) not in (before, changed)
    assert data_digest({**splits, "test": None}) != data_digest(splits)


# The store: atomic entries, build once ------------------------------------------------


@dataclass
class CountingBuilder:
    """The real builder, counting backbone passes (one per call) so a hit is provable."""

    calls: int = 0

    def __call__(
        self,
        config: TrainerConfig,
        model: torch.nn.Module,
        classes: list[str],
        device: torch.device,
    ) -> CachedFeatures:
        self.calls += 1
        return build_features(config, model, classes, device)


def _obtain(config: TrainerConfig, store: FeatureStore, build: CountingBuilder) -> CachedFeatures:
    classes = train_classes(config)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, len(classes), freeze_backbone=True)
    return obtain_features(config, model, classes, store, CPU.device, lambda _: None, build)


def test_a_build_is_read_back_without_running_the_backbone(demo: Path, tmp_path: Path) -> None:
    config, store, build = (
        _config(demo, tmp_path),
        FeatureStore(str(tmp_path / "c")),
        CountingBuilder(),
    )
    built = _obtain(config, store, build)
    read = _obtain(config, store, build)
    assert build.calls == 1
    assert sorted(read.splits) == ["test", "train", "valid"]
    assert read.classes == built.classes == sorted(p.name for p in (demo / "train").iterdir())
    assert torch.equal(read.splits["train"].features, built.splits["train"].features)
    assert read.splits["train"].features.shape == (200, 1024)  # small-cnn: 64 x 4 x 4


def test_an_entry_without_its_manifest_is_ignored(demo: Path, tmp_path: Path) -> None:
    config, store, build = (
        _config(demo, tmp_path),
        FeatureStore(str(tmp_path / "c")),
        CountingBuilder(),
    )
    key = cache_key(_inputs(config))
    leftover = tmp_path / "c" / key
    leftover.mkdir(parents=True)
    (leftover / "train.pt").write_bytes(b"half a file")
    (leftover / ".partial-0123-valid.pt").write_bytes(b"never renamed")
    assert store.load(key) is None
    _obtain(config, store, build)
    assert build.calls == 1 and (leftover / MANIFEST).is_file()
    assert store.load(key) is not None


def test_a_build_that_dies_before_its_manifest_is_never_read(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, store = _config(demo, tmp_path), FeatureStore(str(tmp_path / "c"))
    put = store._put

    def crash_at_commit(key: str, name: str, data: bytes) -> None:
        if name == MANIFEST:
            raise OSError("disk full")
        put(key, name, data)

    monkeypatch.setattr(store, "_put", crash_at_commit)
    with pytest.raises(OSError, match="disk full"):
        _obtain(config, store, CountingBuilder())
    key = cache_key(_inputs(config))
    assert (tmp_path / "c" / key / "train.pt").is_file()
    assert store.load(key) is None
    assert not list((tmp_path / "c" / key).glob(".partial-*"))


# When the cache applies ---------------------------------------------------------------


def test_the_decision_and_its_reasons(demo: Path, tmp_path: Path) -> None:
    config = _config(demo, tmp_path)
    assert decide(config, {CACHE_ENV: "s3://b/fc"}, CPU).location == "s3://b/fc"
    assert "KENNEL_FEATURE_CACHE_URL" in decide(config, {}, CPU).reason
    off = _config(demo, tmp_path, "--feature-cache", "OFF")
    assert decide(off, {CACHE_ENV: "/x"}, CPU).location is None
    flipped = _config(demo, tmp_path, "--augmentation", "flip")
    decision = decide(flipped, {CACHE_ENV: "/x"}, CPU)
    assert decision.location is None and "--augmentation flip" in decision.line()
    trains = _config(demo, tmp_path, "--freeze-backbone", "false")
    assert "backbone trains" in decide(trains, {CACHE_ENV: "/x"}, CPU).reason
    explicit = _config(demo, tmp_path, "--feature-cache", str(tmp_path / "c"))
    assert decide(explicit, {CACHE_ENV: "/x"}, CPU).location == str(tmp_path / "c")
    ddp = Placement(0, 2, 0, 2, torch.device("cpu"))
    assert decide(config, {CACHE_ENV: "/x"}, ddp).location is None
    with pytest.raises(FeatureCacheError, match="distributed"):
        decide(explicit, {}, ddp)


@pytest.mark.parametrize("extra", [["--augmentation", "standard"], ["--freeze-backbone", "false"]])
def test_an_explicit_cache_that_cannot_apply_is_refused(
    demo: Path, tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _config(demo, tmp_path, "--feature-cache", str(tmp_path / "c"), *extra)
    assert stopped.value.code == 2
    assert "--feature-cache" in capsys.readouterr().err


# End to end: build, hit, uncached -----------------------------------------------------


@dataclass(frozen=True)
class Runs:
    build: Run
    hit: Run
    uncached: Run
    cache: Path
    model_dir: Path


@pytest.fixture(scope="module")
def runs(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("feature-cache")
    env = trainer_env(root / "torch-home")
    env.pop(CACHE_ENV, None)
    cache = root / "cache"

    def run(name: str, feature_cache: str) -> Run:
        args = [*channels(demo), "--model-dir", str(root / name), *FROZEN]
        done = run_trainer([*args, "--feature-cache", feature_cache], env)
        assert done.code == 0, done.explain()
        return done

    return Runs(
        run("build", str(cache)), run("hit", str(cache)), run("off", "off"), cache, root / "hit"
    )


def test_the_second_run_hits_the_first_runs_build(runs: Runs) -> None:
    built, hit = KEY_LINE.findall(runs.build.stdout), KEY_LINE.findall(runs.hit.stdout)
    assert [state for state, _ in built] == ["build"], runs.build.explain()
    assert [state for state, _ in hit] == ["hit"], runs.hit.explain()
    assert built[0][1] == hit[0][1]
    assert runs.build.lines("feature_cache=build key=")[0].split(" seconds=")[1]
    assert runs.uncached.lines("feature_cache=unused reason=--feature-cache off")
    assert not KEY_LINE.search(runs.uncached.stdout)
    for run in (runs.build, runs.hit, runs.uncached):
        assert run.lines("timing setup_seconds="), run.explain()


def test_cached_and_uncached_runs_reach_the_same_objective(runs: Runs) -> None:
    def metrics(run: Run) -> list[tuple[float, ...]]:
        found = [tuple(map(float, m.groups()[1:4])) for m in EPOCH_LINE.finditer(run.stdout)]
        test = TEST_LINE.search(run.stdout)
        assert test and len(found) == 2, run.explain()
        return [*found, tuple(map(float, test.groups()))]

    uncached = metrics(runs.uncached)
    for cached in (metrics(runs.build), metrics(runs.hit)):
        for got, want in zip(cached, uncached, strict=True):
            assert got == pytest.approx(want, abs=LOSS_TOLERANCE), (cached, uncached)
    assert uncached[-1][1] > 0.1, "the frozen random backbone learned nothing at all"


def test_the_saved_model_serves_the_head_applied_to_the_features(runs: Runs, demo: Path) -> None:
    handler = load_handler(runs.model_dir)
    model = handler.model_fn(str(runs.model_dir))
    [entry] = [p for p in runs.cache.iterdir() if (p / MANIFEST).is_file()]
    test = torch.load(entry / "test.pt", weights_only=True)
    state = torch.load(runs.model_dir / "model.pth", weights_only=True)
    first_class = sorted((demo / "test").iterdir())[0]
    images = sorted(first_class.glob("*.jpg"))[:3]  # ImageFolder order: the first rows
    served = [predict_json(handler, model, image.read_bytes(), "image/jpeg")[0] for image in images]
    head = test["features"][:3] @ state["fc.weight"].T + state["fc.bias"]
    assert torch.allclose(torch.tensor(served), head, atol=1e-4)
    assert test["labels"][:3].tolist() == [0, 0, 0]
