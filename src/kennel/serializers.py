"""``kennel.serializers``: request bodies for ``Predictor.predict`` (SageMaker's names)."""

from kennel.sdk._serializers import (
    BaseSerializer,
    CSVSerializer,
    DataSerializer,
    IdentitySerializer,
    JSONSerializer,
    NumpySerializer,
    SimpleBaseSerializer,
)

__all__ = [
    "BaseSerializer",
    "CSVSerializer",
    "DataSerializer",
    "IdentitySerializer",
    "JSONSerializer",
    "NumpySerializer",
    "SimpleBaseSerializer",
]
