"""Rules on the training labels: ClassImbalance (smdebug's name).

It reads the ``labels`` of the latest save: per class, how many train samples carried
that label and how many of them the model predicted right, counted over every train
step so far. Cumulative counts only grow, so the latest save holds the most evidence.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kennel.debugger._trial import Trial
from kennel.debugger.rules._base import Finding, Parameters, Rule

SHOWN = 5


class ClassImbalanceParams(Parameters):
    threshold_imbalance: float = Field(
        default=10.0,
        gt=1,
        description="Largest allowed ratio between the most and the least frequent class "
        "(classes never seen are left out: a model may have unused outputs).",
    )
    threshold_misprediction: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="Largest allowed fraction of a class's samples predicted wrong.",
    )
    samples: int = Field(
        default=500,
        ge=1,
        description="Labels to see in total before the rule judges (smdebug's default).",
    )
    min_class_samples: int = Field(
        default=50,
        ge=1,
        description="A class's misprediction rate is judged only once it has this many "
        "samples (a rate over a handful says little).",
    )


class ClassImbalance(Rule):
    """Some class is far rarer than another, or mostly predicted wrong.

    The counts cover every train step, including the first ones where the model still
    guesses; the default misprediction threshold is loose enough for that.
    """

    name = "ClassImbalance"
    kind = "debugger"
    summary = (
        "Checks whether the classes are very unevenly represented or one is mostly mispredicted."
    )
    advice = (
        "Rebalance the data: oversample rare classes (WeightedRandomSampler), undersample "
        "frequent ones, or weight the loss per class (CrossEntropyLoss(weight=...)); "
        "collect more samples of the rare classes."
    )
    needs = ("labels",)
    Params = ClassImbalanceParams
    params: ClassImbalanceParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        latest = _latest_labels(trial)
        if latest is None:
            return Finding(None, "No labels saved yet (the labels collection).")
        step, counts, correct = latest
        total = sum(counts)
        if total < p.samples:
            return Finding(
                None, f"{total} label(s) seen by step {step}; the rule judges from {p.samples}."
            )
        seen = {c: n for c, n in enumerate(counts) if n > 0}
        most = max(seen, key=lambda c: seen[c])
        least = min(seen, key=lambda c: seen[c])
        ratio = seen[most] / seen[least]
        if ratio > p.threshold_imbalance:
            rare = sorted(
                (c for c in seen if seen[most] / seen[c] > p.threshold_imbalance),
                key=lambda c: seen[c],
            )
            listed = ", ".join(f"class {c}: {seen[c]}" for c in rare[:SHOWN])
            more = f" and {len(rare) - SHOWN} more" if len(rare) > SHOWN else ""
            return Finding(
                True,
                f"By step {step}, class {most} had {seen[most]} samples and class {least} "
                f"{seen[least]}: {ratio:.3g}x, above {p.threshold_imbalance:g}x. "
                f"Classes more than {p.threshold_imbalance:g}x rarer than class {most}: "
                f"{listed}{more}.",
            )
        wrong = {
            c: 1 - correct[c] / n
            for c, n in seen.items()
            if n >= p.min_class_samples and c < len(correct)
        }
        bad = sorted(
            (c for c, w in wrong.items() if w > p.threshold_misprediction), key=lambda c: -wrong[c]
        )
        if bad:
            listed = ", ".join(f"class {c}: {wrong[c]:.0%} of {seen[c]}" for c in bad[:SHOWN])
            more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
            return Finding(
                True,
                f"By step {step}, more than {p.threshold_misprediction:.0%} of these classes' "
                f"samples were predicted wrong: {listed}{more}.",
            )
        worst = max(wrong.values(), default=0.0)
        return Finding(
            False,
            f"{len(seen)} class(es) over {total} labels by step {step}: at most {ratio:.3g}x "
            f"apart, at most {worst:.0%} of a class mispredicted.",
        )


def _latest_labels(trial: Trial) -> tuple[int, list[int], list[int]] | None:
    """(step, counts, correct) of the last save with labels, or None."""
    best: tuple[int, list[int], list[int]] | None = None
    for record in trial.tensor_records():
        labels: Any = record.get("labels")
        if not isinstance(labels, dict):
            continue
        try:
            step = int(record.get("step", 0))
            counts = [int(n) for n in labels["count"]]
            correct = [int(n) for n in labels.get("correct", [])]
        except (KeyError, TypeError, ValueError):
            continue  # a malformed record is skipped, as _trial skips malformed lines
        if counts and (best is None or step >= best[0]):
            best = (step, counts, correct)
    return best
