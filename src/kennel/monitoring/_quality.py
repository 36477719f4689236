"""Live model quality once ground truth arrives: accuracy, per-class precision and recall,
and the confusion matrix of the predictions that have a label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def model_quality(
    predicted: Sequence[str], actual: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """Quality of ``predicted`` against the true labels ``actual`` (same order and length).

    The matrix's labels are ``classes`` followed by any other label seen (a typo in the
    ground truth shows up as its own row rather than vanishing); rows are the true label,
    columns the prediction. A class never predicted has precision None and one never
    labelled recall None: undefined, not zero.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predictions but {len(actual)} labels")
    known = set(classes)
    extra = sorted({*predicted, *actual} - known)
    labels = [*classes, *extra]
    position = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for guess, truth in zip(predicted, actual, strict=True):
        matrix[position[truth]][position[guess]] += 1
    per_class: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(labels):
        support = sum(matrix[i])
        predicted_count = sum(row[i] for row in matrix)
        hits = matrix[i][i]
        per_class[label] = {
            "precision": hits / predicted_count if predicted_count else None,
            "recall": hits / support if support else None,
            "support": support,
            "predicted": predicted_count,
        }
    n = len(actual)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    recalls = [v["recall"] for v in per_class.values() if v["recall"] is not None]
    return {
        "n": n,
        "accuracy": correct / n if n else None,
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else None,
        "labels": labels,
        "unknown_labels": extra,
        "per_class": per_class,
        "confusion_matrix": matrix,
    }
