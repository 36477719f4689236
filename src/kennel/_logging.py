"""The server's logging: text lines (the default) or one JSON object per line.

In JSON (``KENNEL_LOG_FORMAT=json``) every record carries ``time``, ``level``,
``logger`` and ``message``; inside a request also ``request_id``, the id the client got
in ``x-amzn-RequestId`` (the gateway's outermost layer sets :data:`REQUEST_ID`); with an
exception ``exc_info``, the formatted traceback. The gateway then also writes one access
line per request (logger ``kennel.access``): method, path, status, duration, principal.

Nothing here logs a header, a query string or a body, so no signature, secret key or
session token reaches the log (a presigned URL carries its token in the query string).
Should a message or a traceback carry one anyway (an exception that quotes a URL or a
response), both formats mask it: see :func:`redact`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("kennel_request_id", default=None)
"""The request being served in this context (an asyncio task, or a thread it started
with its context copied: ``asyncio.to_thread`` and Starlette's thread pool do)."""

ACCESS_LOGGER = "kennel.access"
"""The gateway's one line per request, written in JSON mode only (the text log stays as
it always was)."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FIELDS = "fields"
"""``log.info(..., extra={"fields": {...}})``: extra keys of a record's JSON object."""

LogFormat = Literal["text", "json"]

_SECRETS = re.compile(
    r"(?i)("
    r"(?:x-amz-)?signature=|"  # SigV4: the Authorization header and presigned URLs
    r"x-amz-security-token[\"']?\s*[:=]\s*[\"']?|"
    r"(?:aws_)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?|"
    r"(?:aws_)?session_?token[\"']?\s*[:=]\s*[\"']?|"
    r"(?:new_?|old_?)?password[\"']?\s*[:=]\s*[\"']?|"  # IAM login profiles, console sign-in
    r"kennel-console=|"  # the console's session cookie
    r"<(?:SecretAccessKey|SessionToken)>"
    r")"
    r"[^\s\"'&,<>]+"
)
REDACTED = "***"
_WORDS = ("signature=", "token", "secret", "password", "kennel-console=")


def redact(text: str) -> str:
    """``text`` with SigV4 signatures, session tokens, secret access keys, passwords and
    the console's session cookie masked, in the forms they take in headers, query
    strings, JSON, XML and AWS's ini files."""
    lowered = text.lower()
    # Every form names one of these; most lines name none, and skip the slower regex.
    if not any(word in lowered for word in _WORDS):
        return text
    return _SECRETS.sub(lambda m: m.group(1) + REDACTED, text)


class TextFormatter(logging.Formatter):
    """The text log's lines, with :func:`redact` applied."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(str(key), value)
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: LogFormat) -> None:
    """Set up the root logger for the server process (call once, before anything logs)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    if log_format == "json":
        logging.captureWarnings(True)
        _route_ray_logs_to_root()


def _route_ray_logs_to_root() -> None:
    """Ray gives its ``ray`` logger a plain-text handler of its own when first imported;
    import it now and send its records through the root handler instead, so every line
    of a JSON log is JSON. (The server imports Ray moments later anyway.)"""
    import ray  # noqa: F401 - imported for its logging set-up

    ray_logger = logging.getLogger("ray")
    ray_logger.handlers.clear()
    ray_logger.propagate = True
