"""Media types the model server and its default handlers speak."""

from __future__ import annotations

JSON = "application/json"
NPY = "application/x-npy"
CSV = "text/csv"
ANY = "*/*"
OCTET_STREAM = "application/octet-stream"
UTF8_TYPES = frozenset({JSON, CSV})
"""Bodies the SageMaker toolkit hands to ``input_fn`` as ``str`` rather than ``bytes``."""


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    if not header:
        return ""
    if ";" not in header and header.islower():
        return header.strip()
    return header.split(";", 1)[0].strip().lower()


def first_media_type(accept: str) -> str:
    """The response type for a body sent without one: the first type the client listed."""
    return media_type(accept.split(",", 1)[0]) if "," in accept else accept
