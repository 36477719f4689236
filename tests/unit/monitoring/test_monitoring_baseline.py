"""The baseline: what it holds, and that it survives baseline.json + embeddings.npy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.unit.monitoring._monitoring_library import (
    CONFIG,
    IMAGE_SIZE,
    PER_CLASS,
    LibrarySetup,
    library_setup,
)

from kennel._errors import ValidationError
from kennel.monitoring._baseline import (
    EMBEDDINGS_FILE,
    MAX_COMPONENTS,
    STATISTICS,
    Baseline,
    compute_baseline,
    embed,
    image_statistics,
)
from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> LibrarySetup:
    return library_setup(tmp_path_factory)


def test_class_distribution_is_the_train_split_count(setup: LibrarySetup) -> None:
    counts = {c: len(list((setup.dataset / "train" / c).iterdir())) for c in setup.classes}
    assert setup.baseline.class_distribution == counts
    assert set(counts.values()) == {PER_CLASS[0]}
    assert setup.baseline.classes == setup.classes


def test_sampled_images_give_stats_predictions_and_embeddings(setup: LibrarySetup) -> None:
    baseline = setup.baseline
    print(f"\nsetup timings: {setup.timings}; baseline accuracy {baseline.accuracy}")
    assert baseline.n == 10 * PER_CLASS[1] == 300
    assert set(baseline.image_stats) == set(STATISTICS)
    assert all(len(v) == baseline.n for v in baseline.image_stats.values())
    stats = baseline.image_stats
    assert np.all(stats["width"] == IMAGE_SIZE) and np.all(stats["aspect"] == 1.0)
    for name in ("brightness", "contrast", "red", "green", "blue"):
        assert np.all((stats[name] >= 0) & (stats[name] <= 1)), name
    # Demo digits: light ink on dark paper (paper 0..0.35, ink 0.55..1).
    assert 0.1 < stats["brightness"].mean() < 0.5
    assert stats["contrast"].mean() > 0.1 and stats["sharpness"].min() > 0
    assert sum(baseline.predicted_distribution.values()) == baseline.n
    assert baseline.confidences.shape == (baseline.n,)
    assert np.all((baseline.confidences > 0.1 - 1e-9) & (baseline.confidences <= 1))
    assert baseline.accuracy is not None and baseline.accuracy > 0.5
    assert baseline.embedding_dim == 64 * 16  # small-cnn's fc input
    k = baseline.embeddings.shape[1]
    assert baseline.embeddings.shape == (baseline.n, k) and 1 <= k <= MAX_COMPONENTS
    assert baseline.model == {"arch": "small-cnn", "image_size": IMAGE_SIZE}


def test_round_trip_through_files(setup: LibrarySetup, tmp_path: Path) -> None:
    written = setup.baseline.to_files(tmp_path / "baseline")
    assert {p.name for p in written} == {p.name for p in (tmp_path / "baseline").iterdir()}
    loaded = Baseline.from_files(tmp_path / "baseline")
    original = setup.baseline
    assert loaded.summary() == json.loads(json.dumps(original.summary()))
    for name in STATISTICS:
        np.testing.assert_allclose(loaded.image_stats[name], original.image_stats[name])
    np.testing.assert_allclose(loaded.confidences, original.confidences)
    np.testing.assert_allclose(loaded.embeddings, original.embeddings, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        loaded.projection.components, original.projection.components, rtol=1e-5, atol=1e-6
    )
    stored = np.load(tmp_path / "baseline" / EMBEDDINGS_FILE)
    assert stored.dtype == np.float32 and stored.shape == original.embeddings.shape
    # The projection reproduces the stored embeddings from raw ones.
    raw, _ = embed(setup.model, setup.test_images[:5])
    np.testing.assert_allclose(
        loaded.projection.apply(raw), original.projection.apply(raw), rtol=1e-4, atol=1e-4
    )


def test_a_broken_baseline_folder_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="readable baseline"):
        Baseline.from_files(tmp_path)


def test_the_same_seed_gives_the_same_baseline(setup: LibrarySetup) -> None:
    first, second, other = (
        compute_baseline(setup.model_dir, setup.dataset, seed=seed, max_images=40)
        for seed in (0, 0, 1)
    )
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert first.image_stats["brightness"].tolist() == second.image_stats["brightness"].tolist()
    assert first.image_stats["brightness"].tolist() != other.image_stats["brightness"].tolist()
    assert first.n == other.n == 40


def test_a_data_set_with_other_classes_is_refused(setup: LibrarySetup, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    write_model_dir(model_dir, build_network("small-cnn", 3), ["a", "b", "c"], CONFIG)
    with pytest.raises(ValidationError, match="classes are not the model's"):
        compute_baseline(model_dir, setup.dataset)


def test_a_folder_without_a_model_is_refused(setup: LibrarySetup, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a model of kennel's built-in trainer"):
        compute_baseline(tmp_path, setup.dataset)


def test_resnet_embeddings_are_the_input_of_fc(tmp_path: Path) -> None:
    config = {**CONFIG, "arch": "resnet18"}
    write_model_dir(tmp_path, build_network("resnet18", 4), ["a", "b", "c", "d"], config)
    images = [Image.new("RGB", (40, 30), (i * 40, 90, 200 - i * 30)) for i in range(5)]
    embeddings, probabilities = embed(tmp_path, images)
    assert embeddings.shape == (5, 512) and probabilities.shape == (5, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_image_statistics_of_known_images() -> None:
    black = Image.new("RGB", (20, 10), (0, 0, 0))
    red = Image.new("RGB", (10, 10), (255, 0, 0))
    checker = Image.fromarray(((np.indices((16, 16)).sum(axis=0) % 2) * 255).astype(np.uint8))
    stats = image_statistics([black, red, checker])
    assert stats["width"].tolist() == [20, 10, 16] and stats["aspect"].tolist() == [2, 1, 1]
    assert stats["brightness"][0] == 0 and stats["brightness"][1] == pytest.approx(0.299)
    assert stats["red"].tolist()[:2] == [0, 1] and stats["green"][1] == 0
    assert stats["contrast"][1] == pytest.approx(0, abs=1e-9) and stats["contrast"][
        2
    ] == pytest.approx(0.5)
    assert stats["sharpness"][0] == 0 and stats["sharpness"][2] == pytest.approx(16)
