"""kennel: operationalize an image classifier on your own machines.

SageMaker-style training, tuning and endpoints, Lambda-style functions, IAM-style
least privilege and Application Auto Scaling, on Ray.
"""

from kennel._errors import (
    AccessDeniedError,
    AuthError,
    ConflictError,
    InternalError,
    InvalidSignatureError,
    KennelError,
    MissingAuthenticationTokenError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnrecognizedClientError,
    ValidationError,
)
from kennel._settings import DEFAULT_PORT, Settings

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PORT",
    "AccessDeniedError",
    "AuthError",
    "ConflictError",
    "InternalError",
    "InvalidSignatureError",
    "KennelError",
    "MissingAuthenticationTokenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "Settings",
    "UnrecognizedClientError",
    "ValidationError",
    "__version__",
]
