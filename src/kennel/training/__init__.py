"""Training jobs: the SageMaker training contract on Ray instances."""

from kennel.cluster._catalog import CATALOG, InstanceType, instance_type
from kennel.training._jobs import TrainingService
from kennel.training._spec import BUILTIN_TRAINER, MetricDefinition, TrainingJobSpec

__all__ = [
    "BUILTIN_TRAINER",
    "CATALOG",
    "InstanceType",
    "MetricDefinition",
    "TrainingJobSpec",
    "TrainingService",
    "instance_type",
]
