"""``kennel.deserializers``: reading ``Predictor.predict``'s responses (SageMaker's names)."""

from kennel.sdk._serializers import (
    BaseDeserializer,
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    NumpyDeserializer,
    SimpleBaseDeserializer,
    StreamDeserializer,
    StringDeserializer,
)

__all__ = [
    "BaseDeserializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "JSONDeserializer",
    "NumpyDeserializer",
    "SimpleBaseDeserializer",
    "StreamDeserializer",
    "StringDeserializer",
]
