"""The HTTP transport of a model server: SageMaker's hosting contract as a bare ASGI app.

``GET /ping`` answers 200 once the model is loaded and 503 before (or if loading failed,
with the reason); it runs on the event loop and never waits for inference.
``POST /invocations`` reads the body once (at most 6 MB = 6 MiB, InvokeEndpoint's limit; larger
bodies get 413), hands it with Content-Type, Accept and X-Amzn-SageMaker-Custom-Attributes
to the runner and returns what the handlers produced. Errors are
``{"message": ..., "errorType": ...}``: 500 for a handler's exception, 415 for an
unsupported Content-Type, 406 for an unsupported Accept (see ``_errors``), 503 while the
model loads; the gateway turns any of them into SageMaker's ModelError.

The app is plain ASGI rather than a Starlette router or FastAPI: two routes need no
routing table, and the gateway's overhead target (p50 <= 1 ms over this server) leaves no
room for request objects, validation or per-request logging.

Environment, as in a SageMaker container (arguments win over it):

* ``SAGEMAKER_BIND_TO_PORT`` - the port (default 8080);
* ``SAGEMAKER_MODEL_SERVER_WORKERS`` - how many requests run the handlers at once, as
  threads sharing one model;
* ``KENNEL_MODEL_THREADS`` - intra-op threads per request (torch's, or ONNX Runtime's for
  a built-in model);
* ``KENNEL_INSTANCE_VCPUS`` - the instance's vCPUs (default ``os.cpu_count()``): workers
  and threads left unset are derived from it (``choose_concurrency``): a built-in image
  model gets one single-threaded worker per vCPU (up to 4, then more threads each), any
  other model one worker using the instance's vCPUs (torch's default without the variable);
* ``KENNEL_MAX_BATCH_SIZE`` / ``KENNEL_MAX_BATCH_DELAY_MS`` - dynamic batching (see
  ``_batching``; default 1 = off);
* ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` - Accept for requests without one or ``*/*``;
* ``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY`` - where the handler script is.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.types import Receive, Scope, Send

from kennel._errors import KennelError
from kennel.endpoints._batching import DEFAULT_MAX_BATCH_DELAY_MS, BatchingRunner
from kennel.endpoints._errors import HandlerError, ModelLoadError
from kennel.endpoints._handlers import find_script, load_handlers
from kennel.endpoints._onnx import is_builtin_model
from kennel.endpoints._runner import (
    InferenceRunner,
    Invocation,
    ModelStatus,
    Prediction,
    Runner,
    choose_concurrency,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 6 * 2**20
"""InvokeEndpoint's payload limit (6 MB)."""
DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
"""kennel's instances sit behind its gateway on the same machine; pass ``0.0.0.0`` to be
reachable from elsewhere, as a SageMaker container is."""
KEEP_ALIVE_SECONDS = 75
"""Longer than any client pool keeps an idle connection (httpx: 5 s), so the server never
closes a connection the gateway is just reusing."""
_DRAIN_LIMIT = 64 * 2**20
"""An oversized body is read and discarded up to this much, so the client gets its 413
instead of a reset; beyond it the connection is closed."""

_JSON = b"application/json"
_HEALTHY = json.dumps({"status": "Healthy"}).encode()
_LOADING = json.dumps({"status": "Loading"}).encode()
_OCTET_STREAM = "application/octet-stream"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
THREADS_ENV = "KENNEL_MODEL_THREADS"
VCPUS_ENV = "KENNEL_INSTANCE_VCPUS"
MAX_BATCH_SIZE_ENV = "KENNEL_MAX_BATCH_SIZE"
MAX_BATCH_DELAY_ENV = "KENNEL_MAX_BATCH_DELAY_MS"


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class ModelServerApp:
    """The ASGI app: routes ``/ping`` and ``/invocations`` to a :class:`Runner`."""

    def __init__(self, runner: Runner, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.runner = runner
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/invocations":
                await self._invocations(scope, receive, send)
            elif path == "/ping":
                await self._ping(scope, send)
            else:
                await _error(send, 404, f"no route {path}; use /ping or /invocations", "NotFound")
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _ping(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _method_not_allowed(send, "GET")
            return
        status = self.runner.status
        if status is ModelStatus.READY:
            await _respond(send, 200, _HEALTHY, _JSON)
        elif status is ModelStatus.LOADING:
            await _respond(send, 503, _LOADING, _JSON)
        else:
            failed = {"status": "Failed", "message": self.runner.failure}
            await _respond(send, 503, json.dumps(failed).encode(), _JSON)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _method_not_allowed(send, "POST")
            return
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _BodyTooLarge:
            limit = f"{self.max_body_bytes / 2**20:g} MB"
            await _error(send, 413, f"the request body is over {limit}", "PayloadTooLarge")
            return
        except _ClientGone:
            return
        try:
            prediction = await self.runner.invoke(_invocation(scope, body))
        except HandlerError as error:
            _log_handler_error(error)
            await _error(send, error.status, error.message, error.error_type)
            return
        except KennelError as error:
            await _error(send, error.status, error.message, type(error).__name__)
            return
        except Exception as error:
            log.exception("invocation failed outside the handlers")
            await _error(send, 500, str(error) or type(error).__name__, type(error).__name__)
            return
        await _send_prediction(send, prediction)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start loading at startup without waiting for it: /ping says 503 until done."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.runner.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.runner.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _invocation(scope: Scope, body: bytes) -> Invocation:
    """The three headers the handlers see, from the raw header list in one pass."""
    content_type = accept = attributes = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"accept":
            accept = value.decode("latin-1")
        elif name == b"x-amzn-sagemaker-custom-attributes":
            attributes = value.decode("latin-1")
    # HTTP's meaning of a body without a type (RFC 9110 8.3).
    return Invocation(body, content_type or _OCTET_STREAM, accept, attributes)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            if more:
                await _drain(receive)
            raise _BodyTooLarge
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(receive: Receive) -> None:
    discarded = 0
    while discarded < _DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        discarded += len(message.get("body", b""))


async def _send_prediction(send: Send, prediction: Prediction) -> None:
    headers = [
        (b"content-type", prediction.content_type.encode("latin-1")),
        (b"content-length", str(len(prediction.body)).encode()),
    ]
    if prediction.custom_attributes is not None:
        attributes = prediction.custom_attributes.encode("latin-1")
        headers.append((b"x-amzn-sagemaker-custom-attributes", attributes))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": prediction.body})


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str, error_type: str) -> None:
    body = json.dumps({"message": message, "errorType": error_type}).encode()
    await _respond(send, status, body, _JSON)


async def _method_not_allowed(send: Send, allowed: str) -> None:
    body = json.dumps({"message": f"use {allowed}", "errorType": "MethodNotAllowed"}).encode()
    await _respond(send, 405, body, _JSON, ((b"allow", allowed.encode()),))


def _log_handler_error(error: HandlerError) -> None:
    """Server faults with their traceback (the user's bug is in it); client faults briefly."""
    if error.status >= 500:
        cause = error.__cause__ or error
        log.error("%s raised %s: %s", error.stage, error.error_type, error, exc_info=cause)
    else:
        log.debug("%s rejected the request (%d): %s", error.stage, error.status, error)


# Building and running ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    """How one model server runs; :meth:`resolve` fills the gaps from the environment."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    threads: int | None = None
    vcpus: int | None = None
    """The instance's vCPUs (``KENNEL_INSTANCE_VCPUS``); None: ``os.cpu_count()``."""
    max_batch_size: int = 1
    max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS
    chosen_by_server: frozenset[str] = field(default=frozenset(), compare=False)
    """Which of ``workers``/``threads`` neither an argument nor the environment set: the
    server picks them for the model it loads (``choose_concurrency``), and ``workers=1``,
    ``threads=None`` above are only what a model of unknown code gets."""

    @classmethod
    def resolve(
        cls,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        *,
        workers: int | None = None,
        threads: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServerOptions:
        """Arguments first, then the SageMaker/kennel environment variables, then defaults."""
        env = os.environ if environ is None else environ
        if port is None:
            port = _env_int(env, "SAGEMAKER_BIND_TO_PORT", minimum=0)
        if workers is None:
            workers = _env_int(env, WORKERS_ENV)
        if threads is None:
            threads = _env_int(env, THREADS_ENV)
        chosen = {"workers"} if workers is None else set()
        if threads is None:
            chosen.add("threads")
        delay = _env_float(env, MAX_BATCH_DELAY_ENV)
        return cls(
            host=host,
            port=DEFAULT_PORT if port is None else port,
            workers=workers or 1,
            threads=threads,
            vcpus=_env_int(env, VCPUS_ENV),
            max_batch_size=_env_int(env, MAX_BATCH_SIZE_ENV) or 1,
            max_batch_delay_ms=DEFAULT_MAX_BATCH_DELAY_MS if delay is None else delay,
            chosen_by_server=frozenset(chosen),
        )

    def concurrency_settings(self) -> tuple[int | None, int | None]:
        """(workers, threads) for :func:`create_app`: None where the server chooses."""
        chosen = self.chosen_by_server
        return (
            None if "workers" in chosen else self.workers,
            None if "threads" in chosen else self.threads,
        )


def _env_int(env: Mapping[str, str], name: str, *, minimum: int = 1) -> int | None:
    """A whole-number setting, None when unset; a bad value stops the server with its name."""
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_float(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {text!r}")
    return value


def create_app(
    model_dir: Path,
    *,
    workers: int | None = None,
    threads: int | None = None,
    vcpus: int | None = None,
    max_batch_size: int = 1,
    max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS,
    max_body_bytes: int = MAX_BODY_BYTES,
    environ: Mapping[str, str] | None = None,
) -> ModelServerApp:
    """The ASGI app for ``model_dir``; it starts loading the model at ASGI startup.

    ``workers``/``threads`` None are chosen for the model (``choose_concurrency``); a
    built-in model's handler gets its threads as ``KENNEL_MODEL_THREADS``.
    ``max_batch_size`` > 1 serves with dynamic batching (:class:`BatchingRunner`); a built-in
    model is served by that runner in any case, with batches of one by default.
    """
    model_dir = Path(model_dir)
    env = os.environ if environ is None else environ
    builtin = serves_builtin_handler(model_dir, env)
    chosen = choose_concurrency(builtin=builtin, vcpus=vcpus, workers=workers, threads=threads)
    if builtin and chosen.threads is not None:
        environ = {**env, THREADS_ENV: str(chosen.threads)}
    load = partial(load_handlers, model_dir, environ)
    runner: InferenceRunner
    if max_batch_size > 1 or builtin:
        # Built-in models always decode on threads of their own (BatchingRunner, batches of
        # one unless asked for more): decoding overlaps inference, and a slow {"url": ...}
        # fetch never holds a model worker.
        runner = BatchingRunner(
            load,
            max_batch_size=max_batch_size,
            max_batch_delay_ms=max_batch_delay_ms,
            workers=chosen.workers,
            threads=chosen.threads,
        )
    else:
        runner = InferenceRunner(load, workers=chosen.workers, threads=chosen.threads)
    log.info(
        "%s model: %d workers x %s intra-op threads, %s",
        "built-in image" if builtin else "custom",
        chosen.workers,
        chosen.threads or "default",
        f"batches of up to {max_batch_size} within {max_batch_delay_ms:g} ms"
        if max_batch_size > 1
        else "no batching" + (", decoding on threads of its own" if builtin else ""),
    )
    return ModelServerApp(runner, max_body_bytes=max_body_bytes)


def serves_builtin_handler(model_dir: Path, environ: Mapping[str, str]) -> bool:
    """True if ``load_handlers`` will serve ``model_dir`` with kennel's image handler."""
    try:
        script = find_script(model_dir, environ)
    except ModelLoadError:
        return False  # loading reports it
    return script is not None and is_builtin_model(model_dir, script)


def serve_model(
    model_dir: Path,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    *,
    workers: int | None = None,
    threads: int | None = None,
) -> None:
    """Serve ``model_dir`` with uvicorn until SIGTERM/SIGINT; returns after a clean stop."""
    options = ServerOptions.resolve(host, port, workers=workers, threads=threads)
    chosen_workers, chosen_threads = options.concurrency_settings()
    app = create_app(
        Path(model_dir),
        workers=chosen_workers,
        threads=chosen_threads,
        vcpus=options.vcpus,
        max_batch_size=options.max_batch_size,
        max_batch_delay_ms=options.max_batch_delay_ms,
    )
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="info",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=10,
    )
    _quiet_stop_signals()
    log.info("serving %s on http://%s:%d", model_dir, options.host, options.port)
    uvicorn.Server(config).run()


def _quiet_stop_signals() -> None:
    """Let a SIGTERM'd server return normally, so callers' cleanup (temp dirs) runs.

    uvicorn re-raises the signal that stopped it once shut down, with the handlers it found
    at start; with these that re-raise is a log line instead of the process dying.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _log_stop_signal)


def _log_stop_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("model server stopped on %s", signal.Signals(signum).name)
