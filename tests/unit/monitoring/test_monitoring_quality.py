"""model_quality: exact numbers for known predictions and labels."""

from __future__ import annotations

import pytest

from kennel.monitoring._quality import model_quality

CLASSES = ["cat", "dog", "fox"]


def test_accuracy_precision_recall_and_confusion_matrix() -> None:
    actual = ["cat", "cat", "cat", "dog", "dog", "fox", "fox", "fox", "fox", "cat"]
    predicted = ["cat", "cat", "dog", "dog", "cat", "fox", "fox", "dog", "fox", "cat"]
    quality = model_quality(predicted, actual, CLASSES)
    assert quality["n"] == 10
    assert quality["accuracy"] == pytest.approx(7 / 10)
    assert quality["labels"] == CLASSES and quality["unknown_labels"] == []
    # rows: true label, columns: prediction
    assert quality["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 1, 3]]
    cat, dog, fox = (quality["per_class"][c] for c in CLASSES)
    assert cat == {"precision": 3 / 4, "recall": 3 / 4, "support": 4, "predicted": 4}
    assert dog == {"precision": 1 / 3, "recall": 1 / 2, "support": 2, "predicted": 3}
    assert fox == {"precision": 1.0, "recall": 3 / 4, "support": 4, "predicted": 3}
    assert quality["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 3 / 4) / 3)


def test_undefined_precision_and_recall_are_none_not_zero() -> None:
    quality = model_quality(["cat", "cat"], ["cat", "dog"], CLASSES)
    assert quality["per_class"]["fox"] == {
        "precision": None,
        "recall": None,
        "support": 0,
        "predicted": 0,
    }
    assert quality["per_class"]["dog"]["precision"] is None
    assert quality["per_class"]["dog"]["recall"] == 0.0
    assert quality["per_class"]["cat"]["precision"] == 0.5


def test_labels_outside_the_classes_get_their_own_row() -> None:
    quality = model_quality(["cat", "dog"], ["cat", "wolf"], CLASSES)
    assert quality["labels"] == [*CLASSES, "wolf"] and quality["unknown_labels"] == ["wolf"]
    assert quality["confusion_matrix"][3] == [0, 1, 0, 0]
    assert quality["accuracy"] == 0.5


def test_no_labels_and_mismatched_lengths() -> None:
    empty = model_quality([], [], CLASSES)
    assert empty["n"] == 0 and empty["accuracy"] is None
    assert empty["confusion_matrix"] == [[0] * 3] * 3
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        model_quality(["cat", "dog"], ["cat"], CLASSES)
