"""``kennel.estimator``: the generic estimator (SageMaker's ``sagemaker.estimator``)."""

from kennel.sdk._estimator import Estimator, TrainingJob

__all__ = ["Estimator", "TrainingJob"]
