"""``kennel.session``: the SDK's connection to a server (SageMaker's ``sagemaker.session``)."""

from kennel.sdk._session import Session

__all__ = ["Session"]
