"""Rules on saved tensor statistics: VanishingGradient, ExplodingTensor,
PoorWeightInitialization, DeadRelu (smdebug's names).

They read ``trial.tensor_records()``: every ``save_interval`` train steps, per-parameter
statistics of weights and gradients and per-activation-module statistics (see
``_trial``). Like the loss rules they report the first time their condition held, so
what they find does not depend on when the engine evaluates them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from kennel.debugger._trial import Trial
from kennel.debugger.rules._base import Finding, Parameters, Rule

SHOWN = 5
"""Layers named in a finding; more are counted, not listed (a ResNet has hundreds)."""


def _records(trial: Trial, collection: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(step, {name: stats}) of the saves that hold ``collection``, in step order."""
    records = sorted(trial.tensor_records(), key=lambda r: int(r.get("step", 0)))
    for record in records:
        values = record.get(collection)
        if isinstance(values, dict) and values:
            yield int(record.get("step", 0)), values


def _number(stats: dict[str, Any], key: str) -> float:
    """A statistic as a float; a missing or malformed one reads as NaN (never compares)."""
    try:
        return float(stats[key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


class VanishingGradientParams(Parameters):
    threshold: float = Field(
        default=1e-7,
        gt=0,
        description="A layer's gradient is vanishing when its mean absolute value is below "
        "this (smdebug's default).",
    )
    start_step: int = Field(default=0, ge=0, description="Saves before this step are ignored.")


class VanishingGradient(Rule):
    """Some layer's gradient is (almost) all zeros while others' are not.

    The mean absolute value is used, as in smdebug: one large entry keeps a layer
    learning, but a mean of 1e-7 means its weights practically do not move. Unlike
    smdebug, a save where every gradient is tiny does not count: the largest must be at
    least ``SIGNAL`` times the threshold. All gradients are tiny when the loss is, on a
    batch the model already fits (a converged model's saves would fire otherwise); a
    vanishing gradient is one that shrinks on its way back through the layers.
    """

    name = "VanishingGradient"
    kind = "debugger"
    summary = "Checks whether the gradients of some layers become vanishingly small."
    advice = (
        "Use ReLU-like activations instead of sigmoid/tanh in deep stacks, an initialisation "
        "suited to them (Kaiming/Xavier), normalisation layers or residual connections; check "
        "that no layer is scaled down to almost nothing."
    )
    needs = ("gradients",)
    Params = VanishingGradientParams
    params: VanishingGradientParams

    SIGNAL: ClassVar[float] = 1000.0

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        saves = quiet = 0
        smallest: tuple[float, str, int] | None = None
        for step, gradients in _records(trial, "gradients"):
            if step < p.start_step:
                continue
            saves += 1
            means = {
                name: v
                for name, stats in gradients.items()
                if math.isfinite(v := _number(stats, "abs_mean"))
            }
            if not means or max(means.values()) < p.threshold * self.SIGNAL:
                quiet += 1
                continue
            low = sorted((v, name) for name, v in means.items() if v < p.threshold)
            top = max(means, key=lambda n: means[n])
            if low:
                layers = [f"{name} {v:.3g}" for v, name in low]
                return Finding(
                    True,
                    f"At step {step} the gradients of {len(low)} of {len(means)} parameter(s) "
                    f"had a mean absolute value below {p.threshold:g}: {_listing(layers)} "
                    f"(the largest: {top} {means[top]:.3g}).",
                )
            value, name = min((v, n) for n, v in means.items())
            if smallest is None or value < smallest[0]:
                smallest = (value, name, step)
        if not saves:
            return Finding(None, "No gradients saved yet (the gradients collection).")
        notes = [f"{saves} save(s) checked: no mean absolute gradient below {p.threshold:g}"]
        if smallest:
            notes.append(f"the smallest was {smallest[1]} at step {smallest[2]}: {smallest[0]:.3g}")
        if quiet:
            notes.append(
                f"{quiet} save(s) skipped where no gradient reached {p.threshold * self.SIGNAL:g} "
                "(a batch the model already fits)"
            )
        return Finding(False, "; ".join(notes) + ".")


class ExplodingTensorParams(Parameters):
    only_nan: bool = Field(
        default=False,
        description="Fire on NaN only; infinities and huge values are then let through.",
    )
    threshold: float = Field(
        default=1e20,
        gt=0,
        description="Finite values larger than this in absolute value count as exploded too "
        "(unless only_nan): a float32 tensor this large overflows a few steps later.",
    )


class ExplodingTensor(Rule):
    """A NaN, an infinity or an absurdly large value in the losses, weights or gradients.

    The saved statistics count non-finite values without telling NaN from infinity;
    NaN is read from the minimum and maximum, which PyTorch propagates NaN into.
    """

    name = "ExplodingTensor"
    kind = "debugger"
    summary = "Checks the losses, weights and gradients for NaN, infinite or huge values."
    advice = (
        "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), check the "
        "inputs for NaN/inf and normalise them, and guard log/division against zero."
    )
    needs = ()
    Params = ExplodingTensorParams
    params: ExplodingTensorParams

    def evaluate(self, trial: Trial) -> Finding:
        problems: dict[int, list[str]] = {}
        losses = 0
        for mode in ("train", "eval"):
            for step, loss in trial.losses(mode):
                losses += 1
                if self._bad(loss, loss, 0 if math.isfinite(loss) else 1):
                    problems.setdefault(step, []).append(f"the {mode} loss was {loss}")
        saves = 0
        for collection in ("weights", "gradients"):
            for step, tensors in _records(trial, collection):
                saves += 1
                bad = [
                    self._describe(name, stats)
                    for name, stats in tensors.items()
                    if self._bad(
                        _number(stats, "min"), _number(stats, "max"), _number(stats, "nonfinite")
                    )
                ]
                if bad:
                    problems.setdefault(step, []).append(
                        f"{len(bad)} of {len(tensors)} {collection} ({_listing(bad)})"
                    )
        if problems:
            step = min(problems)
            return Finding(True, f"At step {step}: " + "; ".join(problems[step]) + ".")
        if not losses and not saves:
            return Finding(None, "No losses or tensors saved yet.")
        what = "NaN" if self.params.only_nan else f"NaN, inf or |value| > {self.params.threshold:g}"
        return Finding(False, f"No {what} in {losses} loss value(s) and {saves} tensor save(s).")

    def _bad(self, low: float, high: float, nonfinite: float) -> bool:
        # Only with a non-finite count: a missing statistic also reads as NaN.
        nan = nonfinite > 0 and (math.isnan(low) or math.isnan(high))
        if self.params.only_nan:
            return nan
        huge = max(abs(low), abs(high)) > self.params.threshold
        return nan or huge or nonfinite > 0

    @staticmethod
    def _describe(name: str, stats: dict[str, Any]) -> str:
        count = _number(stats, "nonfinite")
        low, high = _number(stats, "min"), _number(stats, "max")
        if count > 0:
            return f"{name}: {count:.0f} non-finite"
        return f"{name}: min {low:.3g}, max {high:.3g}"


class PoorWeightInitializationParams(Parameters):
    threshold: float = Field(
        default=10.0,
        gt=1,
        description="Largest allowed ratio between the largest and the smallest standard "
        "deviation of the activation layers' inputs at one step.",
    )
    steps: int = Field(
        default=10,
        ge=1,
        description="How many of the first saves with activations to look at "
        "(initialisation shows in the first steps).",
    )
    check_zero_weights: bool = Field(
        default=True,
        description="Also fire when a '*.weight' parameter is all zeros at the first save "
        "(every unit of the layer then computes the same thing). Turn it off for nets that "
        "zero-initialise a normalisation scale on purpose (e.g. the last BatchNorm of a "
        "residual block).",
    )


class PoorWeightInitialization(Rule):
    """The activations' inputs have wildly different spreads across layers at the start.

    A good initialisation (Kaiming, Xavier) keeps the variance of each layer's
    pre-activations commensurate; a layer scaled far down (or up) shows as an activation
    input whose standard deviation is orders of magnitude off the others. Each
    activation module is one layer here: a single ``nn.ReLU`` reused across layers is
    averaged over its calls and so cannot show the difference.
    """

    name = "PoorWeightInitialization"
    kind = "debugger"
    summary = (
        "Checks whether activation inputs differ wildly in spread across layers early on, "
        "or a layer's weights start all zeros."
    )
    advice = (
        "Initialise weights for the activation in use (torch.nn.init.kaiming_normal_ for "
        "ReLU, xavier_uniform_ for tanh/sigmoid), never all zeros or constants; normalise "
        "the inputs and consider normalisation layers."
    )
    needs = ("activations",)
    Params = PoorWeightInitializationParams
    params: PoorWeightInitializationParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        zeros = self._zero_weights(trial) if p.check_zero_weights else None
        if zeros:
            return Finding(True, zeros)
        saves = 0
        widest = 0.0
        for step, layers in _records(trial, "activations"):
            if saves >= p.steps:
                break
            saves += 1
            stds = {
                name: std
                for name, stats in layers.items()
                if math.isfinite(std := _number(stats, "in_std"))
            }
            if len(stds) < 2:
                continue
            low = min(stds, key=lambda n: stds[n])
            high = max(stds, key=lambda n: stds[n])
            ratio = stds[high] / stds[low] if stds[low] > 0 else math.inf
            if ratio > p.threshold:
                return Finding(
                    True,
                    f"At step {step} the inputs of the activation layers had standard "
                    f"deviations from {stds[low]:.3g} ({low}) to {stds[high]:.3g} ({high}): "
                    f"a ratio of {ratio:.3g}, above {p.threshold:g}.",
                )
            widest = max(widest, ratio)
        if not saves:
            return Finding(None, "No activations saved yet (the activations collection).")
        if not widest:
            return Finding(
                False,
                "Fewer than two activation layers (nn.ReLU and the like, one module per "
                "layer) to compare.",
            )
        return Finding(
            False,
            f"In the first {saves} save(s) the activation inputs' standard deviations were "
            f"within a ratio of {widest:.3g} (threshold {p.threshold:g}).",
        )

    @staticmethod
    def _zero_weights(trial: Trial) -> str | None:
        for step, weights in _records(trial, "weights"):
            zero = [
                name
                for name, stats in weights.items()
                if name.endswith("weight") and _number(stats, "zero_frac") == 1.0
            ]
            if zero:
                return f"At step {step} these weights were all zeros: {_listing(zero)}."
            return None  # only the first save shows the initialisation
        return None


class DeadReluParams(Parameters):
    threshold_layer: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="Percent of a layer's units that must be dead (never positive over the "
        "whole saved batch) for the layer to count as dead, as in smdebug.",
    )
    patience: int = Field(
        default=3,
        ge=1,
        description="Consecutive saves in which the same layer must be dead before it fires "
        "(one odd batch is not enough).",
    )


class DeadRelu(Rule):
    """Too many units of an activation layer output zero for every sample of a batch.

    A ReLU unit that is never positive passes no gradient, so it never recovers. The hook
    measures "never positive" over the save step's batch (smdebug's threshold_inactivity
    would need per-unit history, which is not saved), so very small batches overstate it.
    Every activation module the hook watches counts (ReLU, LeakyReLU, GELU, ...).
    """

    name = "DeadRelu"
    kind = "debugger"
    summary = "Checks whether many units of an activation layer are dead (never active)."
    advice = (
        "Lower the learning rate, initialise biases at zero or slightly positive with "
        "Kaiming weights, or use LeakyReLU/ELU/GELU; normalise the inputs to the layer."
    )
    needs = ("activations",)
    Params = DeadReluParams
    params: DeadReluParams

    def evaluate(self, trial: Trial) -> Finding:
        p = self.params
        streaks: dict[str, list[tuple[int, float]]] = {}
        saves = 0
        worst = (0.0, "", 0)
        for step, layers in _records(trial, "activations"):
            saves += 1
            for name, stats in layers.items():
                dead = _number(stats, "dead_frac") * 100
                if dead > p.threshold_layer:
                    streaks.setdefault(name, []).append((step, dead))
                else:
                    streaks.pop(name, None)
                if dead > worst[0]:  # NaN never is
                    worst = (dead, name, step)
            fired = sorted(name for name, s in streaks.items() if len(s) >= p.patience)
            if fired:
                layers_text = [
                    f"{name} ({streaks[name][-1][1]:.0f}% dead at step "
                    f"{streaks[name][-1][0]}, since step {streaks[name][0][0]})"
                    for name in fired
                ]
                return Finding(
                    True,
                    f"More than {p.threshold_layer:g}% of the units were dead for "
                    f"{p.patience} save(s) in a row in {_listing(layers_text)}.",
                )
        if saves < p.patience:
            return Finding(
                None,
                f"{saves} save(s) with activations; {p.patience} in a row are needed.",
            )
        detail = f"; the most: {worst[1]} {worst[0]:.0f}% at step {worst[2]}" if worst[1] else ""
        return Finding(
            False,
            f"{saves} save(s) checked: no layer above {p.threshold_layer:g}% dead units for "
            f"{p.patience} saves in a row{detail}.",
        )
