"""compare(): same-distribution windows pass, visibly different ones are flagged, with the
statistic named in the evidence; class mix, confidence and small windows."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from tests.unit.monitoring._monitoring_library import (
    LibrarySetup,
    blurred,
    inverted,
    library_setup,
    sample,
)

from kennel._errors import ValidationError
from kennel.monitoring._drift import (
    CHECKS,
    TOO_FEW,
    DriftResult,
    Thresholds,
    Window,
    compare,
    mmd_permutation_test,
    population_stability_index,
    prediction_from_scores,
)

WINDOW = 100
SEEDS = (11, 22, 33, 44, 55)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> LibrarySetup:
    return library_setup(tmp_path_factory)


def _summary(name: str, result: DriftResult) -> str:
    parts = [
        f"{c.name}: stat={c.statistic:.4g} p={c.p_value or 0:.3g}"
        + (" VIOLATED" if c.violated else "")
        for c in result.checks
        if c.statistic is not None
    ]
    return f"{name:>9}  " + "; ".join(parts)


def test_a_window_from_the_same_data_set_shows_no_drift(setup: LibrarySetup) -> None:
    window = Window.from_images(setup.model, sample(setup.test_images, WINDOW, seed=0))
    result = compare(setup.baseline, window)
    print("\n" + _summary("same", result))
    assert [c.name for c in result.checks] == list(CHECKS)
    assert result.violations == [], result.to_dict()
    assert all(c.note is None and c.n == WINDOW for c in result.checks)
    assert result.check("embedding_drift").p_value > 0.05  # type: ignore[operator]


def test_no_drift_holds_over_several_random_windows(setup: LibrarySetup) -> None:
    """5 windows x 4 checks at alpha 0.01: about 0.2 false positives expected; allow 1."""
    false_positives = []
    for seed in SEEDS:
        window = Window.from_images(setup.model, sample(setup.test_images, WINDOW, seed=seed))
        result = compare(setup.baseline, window, Thresholds(seed=seed))
        print("\n" + _summary(f"seed {seed}", result), end="")
        false_positives += [(seed, c.name) for c in result.violations]
    assert len(false_positives) <= 1, false_positives


@pytest.mark.parametrize(
    ("kind", "statistic"), [("inverted", "brightness"), ("blurred", "sharpness")]
)
def test_visibly_different_images_are_flagged(
    setup: LibrarySetup, kind: str, statistic: str
) -> None:
    images = sample(setup.test_images, WINDOW, seed=0)
    changed = inverted(images) if kind == "inverted" else blurred(images)
    result = compare(setup.baseline, Window.from_images(setup.model, changed))
    print("\n" + _summary(kind, result))
    embedding = result.check("embedding_drift")
    assert embedding.violated and embedding.p_value is not None and embedding.p_value < 0.01
    assert embedding.evidence["mmd2"] > embedding.evidence["null_mmd2_p99"]
    image_stats = result.check("image_statistics")
    assert image_stats.violated
    assert statistic in image_stats.evidence["drifted"]
    assert image_stats.evidence["statistics"][statistic]["p_adjusted"] < 1e-6
    assert {"embedding_drift", "image_statistics"} <= {c.name for c in result.violations}
    metrics = result.metrics()
    assert metrics["embedding_mmd"] == embedding.statistic
    assert metrics[f"image_{statistic}_ks"] > 0.5
    json.dumps(result.to_dict())  # stored as the execution's result


def test_darkened_images_are_flagged_on_brightness(setup: LibrarySetup) -> None:
    images = [im.point(lambda v: v * 0.4) for im in sample(setup.test_images, WINDOW, seed=0)]
    result = compare(setup.baseline, Window.from_images(setup.model, images))
    print("\n" + _summary("darkened", result))
    assert result.check("embedding_drift").violated
    assert "brightness" in result.check("image_statistics").evidence["drifted"]


def test_compare_is_deterministic_and_fast_at_300_by_300(setup: LibrarySetup) -> None:
    window = Window.from_images(setup.model, setup.test_images[:300])
    assert window.n_images == 300
    started = time.perf_counter()
    first = compare(setup.baseline, window)
    elapsed = time.perf_counter() - started
    second = compare(setup.baseline, window)
    print(f"\ncompare 300 x 300: {elapsed:.3f} s")
    assert first.to_dict() == second.to_dict()
    assert elapsed < 2.0


def test_a_window_predicting_one_class_is_flagged_on_class_mix(setup: LibrarySetup) -> None:
    result = compare(setup.baseline, Window.from_predictions([(3, 0.97)] * 60))
    check = result.check("class_mix")
    print(f"\none class: psi={check.statistic:.3g} chi2 p={check.p_value:.3g}")
    assert check.violated and check.statistic is not None and check.statistic > 0.25
    assert check.p_value is not None and check.p_value < 1e-6
    assert check.evidence["top_shifts"][0]["class"] == setup.classes[3]
    assert check.evidence["top_shifts"][0]["window_share"] == 1.0
    assert check.evidence["window_counts"][setup.classes[3]] == 60
    assert result.metrics()["class_mix_psi"] == check.statistic
    assert not result.check("confidence").violated
    # Without images the image checks do not run, and say why.
    assert result.check("embedding_drift").note.startswith(TOO_FEW)  # type: ignore[union-attr]


def test_a_window_predicting_like_the_baseline_passes_class_mix(setup: LibrarySetup) -> None:
    predictions = [
        (index, 0.9)
        for index, name in enumerate(setup.classes)
        for _ in range(setup.baseline.predicted_distribution[name])
    ]
    check = compare(setup.baseline, Window.from_predictions(predictions)).check("class_mix")
    assert not check.violated and check.statistic == pytest.approx(0, abs=1e-9)


def test_a_confidence_drop_is_flagged(setup: LibrarySetup) -> None:
    low = [(i % 10, 0.3) for i in range(50)]
    check = compare(setup.baseline, Window.from_predictions(low)).check("confidence")
    assert check.violated and check.statistic is not None
    assert check.statistic == pytest.approx(setup.baseline.confidences.mean() - 0.3)
    assert check.evidence["window_mean"] == pytest.approx(0.3)


def test_too_small_windows_are_not_violated_and_say_so(setup: LibrarySetup) -> None:
    images = inverted(sample(setup.test_images, 10, seed=0))
    result = compare(setup.baseline, Window.from_images(setup.model, images, [(0, 0.1)] * 10))
    assert result.violations == []
    for check in result.checks:
        assert check.note is not None and check.note.startswith(TOO_FEW), check
        assert check.statistic is None
    empty = compare(setup.baseline, Window.from_images(setup.model, []))
    assert empty.violations == [] and all(c.n == 0 for c in empty.checks)
    assert empty.metrics() == {"violations": 0.0}


def test_a_prediction_outside_the_classes_is_refused(setup: LibrarySetup) -> None:
    with pytest.raises(ValidationError, match="outside the model's 10 classes"):
        compare(setup.baseline, Window.from_predictions([(10, 0.5)] * 30))


def test_mmd_permutation_test_on_synthetic_samples() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    _, p_same, null = mmd_permutation_test(x, y, 200, np.random.default_rng(1))
    _, p_shifted, _ = mmd_permutation_test(x, y + 0.5, 200, np.random.default_rng(1))
    assert p_same > 0.05 and p_shifted == pytest.approx(1 / 201)
    assert null.shape == (200,)


def test_psi_and_thresholds_helpers() -> None:
    same = np.array([10.0, 20.0, 30.0])
    assert population_stability_index(same, same * 3) == pytest.approx(0)
    assert population_stability_index(same, np.array([0.0, 0.0, 5.0])) > 1
    stored = Thresholds(alpha=0.05, seed=3).to_dict()
    assert Thresholds.from_dict({**stored, "unknown": 1}) == Thresholds(alpha=0.05, seed=3)
    assert Thresholds.from_dict(None) == Thresholds()
    with pytest.raises(ValidationError):
        Thresholds(alpha=1.5)
    with pytest.raises(ValidationError, match="cannot give a p-value below alpha"):
        Thresholds(alpha=0.01, permutations=50)


def test_prediction_from_scores_reads_logits_and_probabilities() -> None:
    index, confidence = prediction_from_scores([0.1, 0.7, 0.2])
    assert index == 1 and confidence == pytest.approx(0.7)
    index, confidence = prediction_from_scores([2.0, 0.0, -1.0])
    assert index == 0 and confidence == pytest.approx(np.exp(2) / (np.exp(2) + 1 + np.exp(-1)))
    with pytest.raises(ValueError):
        prediction_from_scores([])
