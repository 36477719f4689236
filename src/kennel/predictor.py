"""``kennel.predictor``: calling and managing an endpoint (SageMaker's ``sagemaker.predictor``)."""

from kennel.sdk._predictor import Predictor

__all__ = ["Predictor"]
