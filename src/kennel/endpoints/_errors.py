"""The model server's errors, and which HTTP status a handler's exception gets.

The SageMaker toolkit answers 500 for every handler exception. kennel is more precise
where the fault is the client's; the gateway turns any non-2xx answer into SageMaker's
``ModelError`` (424, with OriginalStatusCode and OriginalMessage) either way:

* an exception with an integer ``status_code`` (the toolkit's ``BaseInferenceToolkitError``
  convention, and the two classes below) -> that status;
* an unsupported content type -> **415**: :class:`UnsupportedContentTypeError`, or any
  ``ValueError`` from ``input_fn`` whose message says the content type is not supported
  (kennel's built-in handler, the toolkit's ``UnsupportedFormatError`` and most user
  scripts word it so);
* an unsupported Accept type from ``output_fn`` -> **406**, recognised the same way;
* anything else -> 500.
"""

from __future__ import annotations

import re

from kennel._errors import KennelError

_UNSUPPORTED = r"(unsupported|not supported|cannot handle|can't handle)"
_UNSUPPORTED_CONTENT_TYPE = re.compile(
    rf"{_UNSUPPORTED}.*content[ _-]?type|content[ _-]?type.*{_UNSUPPORTED}",
    re.IGNORECASE | re.DOTALL,
)
_UNSUPPORTED_ACCEPT = re.compile(
    rf"{_UNSUPPORTED}.*accept|accept.*{_UNSUPPORTED}", re.IGNORECASE | re.DOTALL
)


class UnsupportedContentTypeError(ValueError):
    """``input_fn`` cannot decode this Content-Type; the server answers 415."""

    status_code = 415


class UnsupportedAcceptError(ValueError):
    """``output_fn`` cannot encode to this Accept type; the server answers 406."""

    status_code = 406


class BadRequestError(ValueError):
    """The body cannot be what its Content-Type says (e.g. JSON that is not UTF-8): 400."""

    status_code = 400


class ModelLoadError(KennelError):
    """The handler script or the model could not be loaded; the message says what to fix."""

    status = 500
    aws_code = "ModelError"


class HandlerError(KennelError):
    """A handler function raised while serving one request.

    ``stage`` is the function (``input_fn``, ...), ``error_type`` the original exception's
    class name and ``status`` the HTTP status the server answers with.
    """

    aws_code = "ModelError"

    def __init__(self, stage: str, error: Exception) -> None:
        super().__init__(str(error) or type(error).__name__, status=status_for(stage, error))
        self.stage = stage
        self.error_type = type(error).__name__


def status_for(stage: str, error: Exception) -> int:
    """The HTTP status for ``error`` raised by the handler function ``stage``."""
    declared = getattr(error, "status_code", None)
    if isinstance(declared, int) and 400 <= declared <= 599:
        return declared
    if isinstance(error, ValueError):
        text = str(error)
        if stage in ("input_fn", "transform_fn") and _UNSUPPORTED_CONTENT_TYPE.search(text):
            return 415
        if stage in ("output_fn", "transform_fn") and _UNSUPPORTED_ACCEPT.search(text):
            return 406
    return 500
