"""State: SQLAlchemy models and the database, artifacts through fsspec."""

from kennel.store._artifacts import ArtifactStore
from kennel.store._db import Database
from kennel.store._models import (
    AccessKey,
    Account,
    Base,
    Dataset,
    Endpoint,
    EndpointConfig,
    MetricSample,
    Model,
    TrainingJob,
    User,
)

__all__ = [
    "AccessKey",
    "Account",
    "ArtifactStore",
    "Base",
    "Database",
    "Dataset",
    "Endpoint",
    "EndpointConfig",
    "MetricSample",
    "Model",
    "TrainingJob",
    "User",
]
