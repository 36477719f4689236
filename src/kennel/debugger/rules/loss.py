"""Rules on the loss curves: LossNotDecreasing, Overfit, Overtraining (smdebug's names).

They read ``trial.losses("train")`` (one point per train step) and ``trial.losses("eval")``
(one point per evaluation pass, at the number of train steps done before it). Each one
scans the whole history and reports the first time the condition held, so its answer
only ever goes from "no" to "yes" as data arrives: how often the engine evaluates a rule
must not change what it finds.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise
from statistics import fmean
from typing import Any, Literal

from pydantic import Field, field_validator

from kennel.debugger._trial import Trial
from kennel.debugger.rules._base import Finding, Parameters, Rule

Point = tuple[int, float]

TRAIN_WINDOW = 50
"""Train steps averaged into one value by default. A mini-batch loss varies by tens of
percent from batch to batch even when training goes well; the mean of 50 varies by a few,
less than a learning model improves over 50 steps (10, smdebug's window, fired on every
healthy run tried)."""
EVAL_WINDOW = 2
"""Evaluations averaged by default: each is already a mean over the validation set."""


def _windows(points: Sequence[Point], size: int) -> list[Sequence[Point]]:
    """Consecutive, non-overlapping windows of ``size`` points, counted from the first;
    an incomplete last window is left out (it would compare fewer, noisier points)."""
    return [points[i : i + size] for i in range(0, len(points) - size + 1, size)]


def _mean(points: Sequence[Point]) -> float:
    return fmean(v for _, v in points)


def _span(points: Sequence[Point]) -> str:
    return f"steps {points[0][0]}-{points[-1][0]}"


class LossNotDecreasingParams(Parameters):
    mode: Literal["train", "eval"] = Field(
        default="train",
        description="Which loss to watch: 'train' (one value per step) or 'eval' (one per "
        "evaluation pass); SageMaker's 'TRAIN'/'EVAL' are accepted.",
    )
    num_steps: int | None = Field(
        default=None,
        ge=1,
        description="Window size in loss values (train steps, or evaluations in eval mode): "
        "the mean of each window is compared with the mean of the window before it. "
        f"Default {TRAIN_WINDOW} train steps (the mean of fewer mini-batch losses is too "
        f"noisy to compare), or {EVAL_WINDOW} evaluations in eval mode.",
    )
    diff_percent: float = Field(
        default=0.1,
        ge=0,
        le=100,
        description="By how many percent each window's mean loss must fall below the "
        "previous window's; less than that fires the rule.",
    )
    start_step: int = Field(
        default=0,
        ge=0,
        description="Loss values before this train step are ignored (e.g. a warm-up).",
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class LossNotDecreasing(Rule):
    """Means of consecutive windows of ``num_steps`` losses must keep falling.

    Means over windows rather than single values, because a single mini-batch loss is
    noisy; windows are counted from ``start_step`` so each pair is judged once, whatever
    the moment the rule is evaluated. A NaN loss counts as not decreasing.
    """

    name = "LossNotDecreasing"
    kind = "debugger"
    summary = "Checks that the mean loss keeps falling from one window of steps to the next."
    advice = (
        "Check the learning rate (too high makes the loss bounce, too low or zero makes it "
        "flat), that the parameters are given to the optimizer and not frozen, and that "
        "labels match inputs; if the model has converged, stop training."
    )
    needs = ("losses",)
    Params = LossNotDecreasingParams
    params: LossNotDecreasingParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        points = [(s, v) for s, v in trial.losses(p.mode) if s >= p.start_step]
        size = p.num_steps or (TRAIN_WINDOW if p.mode == "train" else EVAL_WINDOW)
        windows = _windows(points, size)
        unit = "steps" if p.mode == "train" else "evaluations"
        if len(windows) < 2:
            return Finding(
                None,
                f"{len(points)} {p.mode} loss value(s) from step {p.start_step}; two windows "
                f"of {size} {unit} ({2 * size} values) are needed.",
            )
        for before, after in pairwise(windows):
            old, new = _mean(before), _mean(after)
            # Written as "not decreased" so that a NaN mean fires.
            if not new <= old - abs(old) * p.diff_percent / 100:
                change = (new - old) / abs(old) * 100 if old else math.inf
                return Finding(
                    True,
                    f"The mean {p.mode} loss over {_span(after)} was {new:.4g}, against "
                    f"{old:.4g} over {_span(before)} ({change:+.2f}%); it should fall by at "
                    f"least {p.diff_percent:g}% from one window of {size} {unit} to "
                    "the next.",
                )
        first, last = _mean(windows[0]), _mean(windows[-1])
        return Finding(
            False,
            f"The mean {p.mode} loss fell in each of {len(windows) - 1} window(s) of "
            f"{size} {unit}: from {first:.4g} ({_span(windows[0])}) to {last:.4g} "
            f"({_span(windows[-1])}).",
        )


class OverfitParams(Parameters):
    start_step: int = Field(
        default=0, ge=0, description="Evaluations before this train step are ignored."
    )
    patience: int = Field(
        default=2,
        ge=1,
        description="How many consecutive evaluations must show the gap before it fires.",
    )
    ratio_threshold: float = Field(
        default=0.5,
        ge=0,
        description="Largest allowed (eval loss - train loss) / train loss, where the train "
        "loss is the mean over the steps since the previous evaluation.",
    )
    min_difference: float = Field(
        default=0.1,
        ge=0,
        description="The eval loss must also exceed the train loss by at least this much "
        "(absolute, in loss units): once both are small their ratio is large and noisy "
        "(0.03 against 0.003 is 10x, yet both are excellent).",
    )


class Overfit(Rule):
    """The validation loss pulls away from the training loss.

    Each evaluation is compared with the mean train loss of the steps run since the
    previous one (what the model was trained on meanwhile). The defaults are looser than
    smdebug's (ratio 0.1, one evaluation), which fired on healthy runs: a gap of a few
    tens of percent between two small losses is ordinary, and one noisy evaluation is
    not overfitting. So the gap must be large relative to the train loss, material in
    absolute terms, and last ``patience`` evaluations.
    """

    name = "Overfit"
    kind = "debugger"
    summary = "Checks whether the validation loss rises well above the training loss."
    advice = (
        "The model memorises the training data: add data or augmentation, regularise "
        "(weight decay, dropout), use a smaller model, or stop earlier."
    )
    needs = ("losses",)
    Params = OverfitParams
    params: OverfitParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        train = trial.losses("train")
        train_steps = [s for s, _ in train]
        previous = -1
        streak: list[str] = []
        checked = 0
        worst = -math.inf
        for step, eval_loss in trial.losses("eval"):
            # The steps since the previous evaluation (bisect: a long job has many of both).
            window = train[bisect_left(train_steps, previous) : bisect_left(train_steps, step)]
            previous = step
            if step < p.start_step or not window:
                continue  # no training since the last evaluation: nothing to compare
            train_loss = _mean(window)
            ratio = (eval_loss - train_loss) / abs(train_loss) if train_loss else math.inf
            checked += 1
            worst = max(worst, ratio)
            if ratio > p.ratio_threshold and eval_loss - train_loss >= p.min_difference:
                streak.append(
                    f"step {step}: eval {eval_loss:.4g} vs train {train_loss:.4g} "
                    f"(ratio {ratio:.3g})"
                )
            else:
                streak = []
            if len(streak) >= p.patience:
                return Finding(
                    True,
                    f"The eval loss was more than {p.ratio_threshold:.0%} above the train "
                    f"loss for {len(streak)} evaluation(s) in a row: "
                    + "; ".join(streak[-3:])
                    + ".",
                )
        if not checked:
            return Finding(
                None,
                "No evaluation with train steps before it"
                + (f" from step {p.start_step}" if p.start_step else "")
                + "; the script must call set_mode(modes.EVAL) around its validation pass.",
            )
        return Finding(
            False,
            f"{checked} evaluation(s) compared; the largest (eval - train) / train ratio "
            f"was {worst:.3g} (threshold {p.ratio_threshold:g}).",
        )


class OvertrainingParams(Parameters):
    patience_train: int = Field(
        default=5,
        ge=1,
        description="Windows of train_window steps without the mean train loss improving "
        "by delta before it fires.",
    )
    patience_validation: int = Field(
        default=10,
        ge=1,
        description="Evaluations without the eval loss improving by delta before it fires.",
    )
    delta: float = Field(
        default=0.01,
        ge=0,
        description="How much lower than the best so far (absolute, in loss units) a loss "
        "must be to count as an improvement.",
    )
    train_window: int = Field(
        default=TRAIN_WINDOW,
        ge=1,
        description="Train steps averaged into one train loss value: the best of noisy "
        "values is a lucky one, hard to beat even while the model still learns.",
    )


class Overtraining(Rule):
    """Training goes on while nothing improves any more (smdebug's Overtraining).

    The validation loss has not beaten its best by ``delta`` for ``patience_validation``
    evaluations, or the windowed train loss for ``patience_train`` windows.
    """

    name = "Overtraining"
    kind = "debugger"
    summary = "Checks whether the train or validation loss stopped improving for a while."
    advice = (
        "Stop earlier (early stopping on the validation loss), or lower the learning rate "
        "when the loss plateaus; keep the checkpoint with the best validation loss."
    )
    needs = ("losses",)
    Params = OvertrainingParams
    params: OvertrainingParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        evals = trial.losses("eval")
        windows = _windows(trial.losses("train"), p.train_window)
        train = [(w[-1][0], _mean(w)) for w in windows]
        stalled = _stalled(evals, p.patience_validation, p.delta)
        if stalled:
            best, since = stalled
            return Finding(
                True,
                f"The eval loss has not improved by {p.delta:g} on its best "
                f"({best[1]:.4g} at step {best[0]}) for {p.patience_validation} "
                f"evaluations (until step {since[0]}, eval loss {since[1]:.4g}).",
            )
        stalled = _stalled(train, p.patience_train, p.delta)
        if stalled:
            best, since = stalled
            return Finding(
                True,
                f"The mean train loss (windows of {p.train_window} steps) has not improved "
                f"by {p.delta:g} on its best ({best[1]:.4g}, window ending at step "
                f"{best[0]}) for {p.patience_train} windows (until step {since[0]}, "
                f"{since[1]:.4g}).",
            )
        enough_eval = len(evals) > p.patience_validation
        enough_train = len(train) > p.patience_train
        seen = (
            f"{len(evals)} evaluation(s) (patience {p.patience_validation}) and "
            f"{len(train)} train window(s) of {p.train_window} steps "
            f"(patience {p.patience_train})"
        )
        if not enough_eval and not enough_train:
            return Finding(None, f"{seen}: too few to tell a plateau.")
        return Finding(False, f"Both losses kept improving by {p.delta:g}: {seen}.")


def _stalled(points: Sequence[Point], patience: int, delta: float) -> tuple[Point, Point] | None:
    """(best, point where patience ran out) the first time ``patience`` values in a row did
    not beat the best so far by ``delta``; None if that never happened."""
    best: Point | None = None
    waited = 0
    for point in points:
        # A NaN never improves: "not <" keeps it from ever becoming the best.
        if best is None or point[1] < best[1] - delta:
            best, waited = point, 0
            continue
        waited += 1
        if waited >= patience:
            return best, point
    return None
