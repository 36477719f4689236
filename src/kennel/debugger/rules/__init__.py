"""The built-in rules; importing this package registers them (see ``_base``).

``loss``: LossNotDecreasing, Overfit, Overtraining; ``tensors``: VanishingGradient,
ExplodingTensor, PoorWeightInitialization, DeadRelu; ``data``: ClassImbalance;
``system`` (profiler rules): CPUBottleneck, IOBottleneck, LowGPUUtilization,
StepOutlier, BatchSize, LoadBalancing and ProfilerReport (all of them at once).
"""

from kennel.debugger.rules import data, loss, system, tensors
from kennel.debugger.rules._base import REGISTRY, Finding, Parameters, Rule, rule_class, snake_case

__all__ = [
    "REGISTRY",
    "Finding",
    "Parameters",
    "Rule",
    "data",
    "loss",
    "rule_class",
    "snake_case",
    "system",
    "tensors",
]
