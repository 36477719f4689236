"""JSON that comes from outside: ``json.loads`` whose every failure is a ValueError.

``json.loads`` raises a ValueError for malformed text, but a RecursionError for a
well-formed document nested deeper than the interpreter's recursion limit (``[[[[...`` a
few thousand times, a few kB). Every place that parses a request answers a ValueError
with a 400; a RecursionError would get past all of them as a 500.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["NestingError", "loads"]


class NestingError(ValueError):
    """The document is nested too deeply to be parsed."""


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``; a document nested too deeply is a :class:`NestingError`."""
    try:
        return json.loads(data)
    except RecursionError:
        raise NestingError(
            f"the JSON document is nested too deeply (more than about "
            f"{sys.getrecursionlimit()} levels of arrays and objects)"
        ) from None
