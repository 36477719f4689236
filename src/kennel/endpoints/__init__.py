"""Endpoints: the model server that one endpoint instance runs.

A model server honours SageMaker's hosting contract (``GET /ping``, ``POST /invocations``,
the model in a model dir, the handler functions in ``code/inference.py``) and runs alone
with ``kennel serve-model``. It is three layers, as in LitServe: the handler functions
(the user's API, :func:`load_handlers`), the runner that calls them off the event loop
(:class:`InferenceRunner`; a batching runner would replace it), and the HTTP transport
(:class:`ModelServerApp`, :func:`serve_model`).
"""

from kennel.endpoints._errors import (
    HandlerError,
    ModelLoadError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)
from kennel.endpoints._handlers import HandlerFunctions, Handlers, RequestContext, load_handlers
from kennel.endpoints._model_server import (
    MAX_BODY_BYTES,
    ModelServerApp,
    ServerOptions,
    create_app,
    serve_model,
)
from kennel.endpoints._runner import (
    InferenceRunner,
    Invocation,
    ModelNotReadyError,
    ModelStatus,
    Prediction,
    Runner,
)

__all__ = [
    "MAX_BODY_BYTES",
    "HandlerError",
    "HandlerFunctions",
    "Handlers",
    "InferenceRunner",
    "Invocation",
    "ModelLoadError",
    "ModelNotReadyError",
    "ModelServerApp",
    "ModelStatus",
    "Prediction",
    "RequestContext",
    "Runner",
    "ServerOptions",
    "UnsupportedAcceptError",
    "UnsupportedContentTypeError",
    "create_app",
    "load_handlers",
    "serve_model",
]
