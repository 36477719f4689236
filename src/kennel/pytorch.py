"""``kennel.pytorch``: the PyTorch estimator (SageMaker's ``sagemaker.pytorch``)."""

from kennel.sdk._estimator import PyTorch

__all__ = ["PyTorch"]
