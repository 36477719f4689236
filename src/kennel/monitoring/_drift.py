"""Compare a window of live traffic with a model's baseline: four checks, each with evidence.

- ``embedding_drift``: do the window's images land where the training images did in the
  model's feature space? MMD^2 between the PCA-projected embeddings with an RBF kernel
  (median-heuristic bandwidth on the pooled samples) and a seeded permutation test: the
  p-value is the share of label permutations whose MMD^2 reaches the observed one, so
  the threshold is calibrated by the data, not a magic number. Violated when p < alpha.
- ``image_statistics``: two-sample KS per statistic (brightness, sharpness, ...),
  Bonferroni-corrected over the statistics; the evidence names those that moved.
- ``class_mix``: the predicted classes against the baseline's predictions on held-out
  images (or the train split's class counts when it has none): population stability
  index plus a chi-squared test of the two samples' counts. Violated when the shift is
  both large (PSI > ``psi``) and significant (p < alpha): PSI alone is noisy for small
  windows, and a test alone flags negligible shifts in large ones.
- ``confidence``: the mean top-class probability dropped by more than ``confidence_drop``.

A check whose window is smaller than ``min_samples`` is not violated and says so. Every
random choice (subsampling, permutations) comes from ``Thresholds.seed``: the same
window gives the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image
from scipy import stats  # type: ignore[import-untyped]

from kennel._errors import ValidationError
from kennel.monitoring._baseline import (
    STATISTICS,
    Baseline,
    FloatArray,
    embed,
    finite_or_none,
    image_statistics,
)

CHECKS = ("embedding_drift", "image_statistics", "class_mix", "confidence")
PSI_EPSILON = 1e-4
"""Share given to a class no sample fell in, so PSI stays finite (and large)."""
TOO_FEW = "too few samples"


@dataclass(frozen=True)
class Thresholds:
    """When a check is violated, and how much work it may do."""

    alpha: float = 0.01
    """Significance level of the statistical tests (after Bonferroni for image stats)."""
    psi: float = 0.25
    confidence_drop: float = 0.1
    """Absolute drop of the mean top-class probability."""
    min_samples: int = 20
    permutations: int = 500
    max_samples: int = 500
    """Larger windows (and baselines) are subsampled to this many for the MMD test."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValidationError(f"alpha {self.alpha} must be between 0 and 1.")
        if self.psi <= 0 or self.confidence_drop <= 0:
            raise ValidationError("psi and confidence_drop must be positive.")
        if self.min_samples < 2 or self.permutations < 1 or self.max_samples < 2:
            raise ValidationError(
                "min_samples and max_samples must be at least 2, permutations at least 1."
            )
        if 1 / (1 + self.permutations) >= self.alpha:
            raise ValidationError(
                f"{self.permutations} permutations cannot give a p-value below alpha {self.alpha}.",
                hint=f"Use at least {math.ceil(1 / self.alpha)} permutations.",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Thresholds:
        """Thresholds from stored JSON; unknown keys are ignored, missing ones default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


@dataclass
class Window:
    """What is compared with the baseline: per-image data from the window's images (raw
    embeddings, statistics) and the predictions (class index, confidence) the endpoint
    made, each possibly empty."""

    embeddings: FloatArray | None = None
    image_stats: dict[str, FloatArray] | None = None
    predictions: list[tuple[int, float]] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return 0 if self.embeddings is None else int(self.embeddings.shape[0])

    @classmethod
    def from_images(
        cls,
        model: Any,
        images: Sequence[Image.Image],
        predictions: Sequence[tuple[int, float]] | None = None,
    ) -> Window:
        """Embed ``images`` with ``model`` (a model dir or ``load_model``'s result) and
        measure them. ``predictions`` are the endpoint's answers as captured; without
        them the model's own predictions on the images stand in."""
        if not images:
            return cls(predictions=list(predictions or []))
        embeddings, probabilities = embed(model, images)
        if predictions is None:
            predictions = [(int(row.argmax()), float(row.max())) for row in probabilities]
        return cls(embeddings, image_statistics(images), list(predictions))

    @classmethod
    def from_predictions(cls, predictions: Sequence[tuple[int, float]]) -> Window:
        return cls(predictions=list(predictions))


def prediction_from_scores(scores: Sequence[float]) -> tuple[int, float]:
    """(class index, confidence) from one output row: probabilities as they are, anything
    else (the built-in handler answers logits) through a softmax."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("expected a non-empty list of finite scores")
    is_distribution = values.min() >= 0 and abs(values.sum() - 1) < 1e-3
    if not is_distribution:
        shifted = np.exp(values - values.max())
        values = shifted / shifted.sum()
    index = int(values.argmax())
    return index, float(values[index])


@dataclass
class Check:
    name: str
    statistic: float | None
    threshold: float
    p_value: float | None
    violated: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    """Window samples the check used."""
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "statistic": _json_number(self.statistic),
            "threshold": self.threshold,
            "p_value": _json_number(self.p_value),
            "violated": self.violated,
            "evidence": self.evidence,
            "n": self.n,
            "note": self.note,
        }


@dataclass
class DriftResult:
    checks: list[Check]
    thresholds: Thresholds

    @property
    def violations(self) -> list[Check]:
        return [check for check in self.checks if check.violated]

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [check.to_dict() for check in self.checks],
            "violations": [check.name for check in self.violations],
            "thresholds": self.thresholds.to_dict(),
        }

    def metrics(self) -> dict[str, float]:
        """Flat numbers for the metrics time series; a check that did not run has none."""
        out: dict[str, float] = {"violations": float(len(self.violations))}
        for check in self.checks:
            out.update(
                {k: v for k, v in check.evidence.get("metrics", {}).items() if v is not None}
            )
        return out


def compare(
    baseline: Baseline, window: Window, thresholds: Thresholds | None = None
) -> DriftResult:
    """Run the four checks of the module docstring on ``window`` against ``baseline``."""
    limits = thresholds or Thresholds()
    return DriftResult(
        [
            embedding_check(baseline, window, limits),
            image_statistics_check(baseline, window, limits),
            class_mix_check(baseline, window, limits),
            confidence_check(baseline, window, limits),
        ],
        limits,
    )


# Embedding drift ------------------------------------------------------------------------------


def embedding_check(baseline: Baseline, window: Window, limits: Thresholds) -> Check:
    check = Check("embedding_drift", None, limits.alpha, None, False, n=window.n_images)
    if window.embeddings is None or window.n_images < limits.min_samples:
        check.note = _too_few(window.n_images, limits.min_samples, "images")
        return check
    if baseline.n < limits.min_samples:
        check.note = _too_few(baseline.n, limits.min_samples, "baseline images")
        return check
    rng = np.random.default_rng(limits.seed)
    base = _subsample(baseline.embeddings, limits.max_samples, rng)
    live = _subsample(baseline.projection.apply(window.embeddings), limits.max_samples, rng)
    mmd2, p_value, null = mmd_permutation_test(base, live, limits.permutations, rng)
    check.statistic, check.p_value = mmd2, p_value
    check.violated = p_value < limits.alpha
    check.evidence = {
        "test": "MMD^2 (RBF kernel, median heuristic; biased estimator) permutation test",
        "mmd2": mmd2,
        "null_mmd2_p99": float(np.quantile(null, 0.99)),
        "permutations": limits.permutations,
        "baseline_samples": int(base.shape[0]),
        "window_samples": int(live.shape[0]),
        "dimensions": int(base.shape[1]),
        "mean_shift": float(np.linalg.norm(live.mean(axis=0) - base.mean(axis=0))),
        "metrics": {"embedding_mmd": mmd2, "embedding_p_value": p_value},
    }
    return check


def mmd_permutation_test(
    x: FloatArray, y: FloatArray, permutations: int, rng: np.random.Generator
) -> tuple[float, float, FloatArray]:
    """(MMD^2 of x vs y, permutation p-value, the permuted MMD^2 values).

    The kernel matrix of the pooled samples is computed once; each permutation is a
    reassignment of the pooled rows, so its MMD^2 is ``a' K a`` with ``a`` = 1/n for the
    rows called x and -1/m for the others: all permutations are one matrix product.
    """
    pooled = np.vstack([x, y])
    n, total = x.shape[0], pooled.shape[0]
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = distances[np.triu_indices(total, k=1)]
    positive = upper[upper > 0]
    bandwidth = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-distances / bandwidth)
    labels = np.concatenate([np.ones(n, bool), np.zeros(total - n, bool)])
    orders = np.argsort(rng.random((permutations, total)), axis=1)
    assignments = np.vstack([labels, labels[orders]])
    weights = np.where(assignments, 1.0 / n, -1.0 / (total - n))
    values = np.einsum("pi,pi->p", weights @ kernel, weights)
    observed, null = float(values[0]), values[1:]
    p_value = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + permutations)
    return observed, p_value, null


def _subsample(rows: FloatArray, limit: int, rng: np.random.Generator) -> FloatArray:
    if rows.shape[0] <= limit:
        return rows
    return rows[np.sort(rng.choice(rows.shape[0], size=limit, replace=False))]


# Image statistics -----------------------------------------------------------------------------


def image_statistics_check(baseline: Baseline, window: Window, limits: Thresholds) -> Check:
    check = Check("image_statistics", None, limits.alpha, None, False, n=window.n_images)
    if window.image_stats is None or window.n_images < limits.min_samples:
        check.note = _too_few(window.n_images, limits.min_samples, "images")
        return check
    names = [s for s in STATISTICS if s in baseline.image_stats and s in window.image_stats]
    per_stat: dict[str, dict[str, float]] = {}
    for name in names:
        base, live = baseline.image_stats[name], window.image_stats[name]
        result = stats.ks_2samp(base, live)
        ks, p = float(result.statistic), float(result.pvalue)
        per_stat[name] = {
            "ks": ks,
            "p_value": p,
            "p_adjusted": min(1.0, p * len(names)),
            "baseline_mean": float(base.mean()),
            "window_mean": float(live.mean()),
        }
    drifted = sorted(
        (n for n, s in per_stat.items() if s["p_adjusted"] < limits.alpha),
        key=lambda n: -per_stat[n]["ks"],
    )
    check.statistic = max((s["ks"] for s in per_stat.values()), default=0.0)
    check.p_value = min((s["p_adjusted"] for s in per_stat.values()), default=1.0)
    check.violated = bool(drifted)
    check.evidence = {
        "test": f"two-sample KS per statistic, Bonferroni over {len(names)}",
        "drifted": drifted,
        "statistics": per_stat,
        "metrics": {f"image_{n}_ks": s["ks"] for n, s in per_stat.items()},
    }
    return check


# Class mix --------------------------------------------------------------------------------------


def class_mix_check(baseline: Baseline, window: Window, limits: Thresholds) -> Check:
    n = len(window.predictions)
    check = Check("class_mix", None, limits.psi, None, False, n=n)
    if n < limits.min_samples:
        check.note = _too_few(n, limits.min_samples, "predictions")
        return check
    k = len(baseline.classes)
    indices = np.array([index for index, _ in window.predictions])
    if np.any((indices < 0) | (indices >= k)):
        raise ValidationError(
            f"A prediction's class index is outside the model's {k} classes.",
            hint="Compare a window with the baseline of the model that served it.",
        )
    live = np.bincount(indices, minlength=k).astype(np.float64)
    reference, source = baseline.predicted_counts, "baseline predictions"
    if reference.sum() == 0:
        reference, source = baseline.class_counts, "train split labels"
    psi = population_stability_index(reference, live)
    chi2, p_value = _chi_squared(reference, live)
    check.statistic, check.p_value = psi, p_value
    check.violated = psi > limits.psi and p_value < limits.alpha
    base_share, live_share = reference / reference.sum(), live / n
    shifts = sorted(range(k), key=lambda i: -abs(live_share[i] - base_share[i]))[:5]
    check.evidence = {
        "test": "population stability index and chi-squared test of the two samples",
        "reference": source,
        "psi": psi,
        "chi2": chi2,
        "chi2_p_value": p_value,
        "psi_vs_train_labels": population_stability_index(baseline.class_counts, live),
        "top_shifts": [
            {
                "class": baseline.classes[i],
                "baseline_share": float(base_share[i]),
                "window_share": float(live_share[i]),
            }
            for i in shifts
        ],
        "window_counts": {c: int(live[i]) for i, c in enumerate(baseline.classes)},
        "metrics": {"class_mix_psi": psi, "class_mix_chi2_p_value": p_value},
    }
    return check


def population_stability_index(reference: FloatArray, current: FloatArray) -> float:
    """sum((q - p) * ln(q / p)) over classes, shares floored at ``PSI_EPSILON``."""
    if reference.sum() <= 0 or current.sum() <= 0:
        return 0.0
    p = np.maximum(reference / reference.sum(), PSI_EPSILON)
    q = np.maximum(current / current.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _chi_squared(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Chi-squared test that two samples of class counts share one distribution."""
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


# Confidence -------------------------------------------------------------------------------------


def confidence_check(baseline: Baseline, window: Window, limits: Thresholds) -> Check:
    n = len(window.predictions)
    check = Check("confidence", None, limits.confidence_drop, None, False, n=n)
    if n < limits.min_samples or baseline.confidences.size == 0:
        check.note = _too_few(n, limits.min_samples, "predictions")
        return check
    live = np.array([confidence for _, confidence in window.predictions], dtype=np.float64)
    base_mean, live_mean = float(baseline.confidences.mean()), float(live.mean())
    drop = base_mean - live_mean
    ks = stats.ks_2samp(baseline.confidences, live)
    check.statistic, check.p_value = drop, float(ks.pvalue)
    check.violated = drop > limits.confidence_drop
    check.evidence = {
        "test": "drop of the mean top-class probability (KS p-value for information)",
        "baseline_mean": base_mean,
        "window_mean": live_mean,
        "drop": drop,
        "ks": float(ks.statistic),
        "metrics": {"confidence_mean": live_mean, "confidence_drop": drop},
    }
    return check


def _too_few(n: int, minimum: int, what: str) -> str:
    return f"{TOO_FEW}: {n} {what}, at least {minimum} needed"


def _json_number(value: float | None) -> float | None:
    return None if value is None else finite_or_none(float(value))
