"""The inference runner: between the HTTP transport and the handler functions.

The transport never calls a handler itself; it hands an :class:`Invocation` to a
:class:`Runner` and awaits a :class:`Prediction`. :class:`InferenceRunner` loads the model
in a background thread (so ``/ping`` answers 503 meanwhile instead of the port staying
closed) and runs each request on a small thread pool, off the event loop: torch releases
the GIL while it computes, so ``/ping`` and request parsing go on during a long predict.

Dynamic batching is a different :class:`Runner`, not a change here: its ``invoke`` puts
the invocation on a queue and awaits a future, and a loop thread takes up to N queued
invocations (or what arrived within a few milliseconds), runs the handlers once on the
batch and resolves each future with its row. The transport stays as it is.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from kennel._errors import KennelError
from kennel.endpoints._handlers import Handlers, RequestContext

log = logging.getLogger(__name__)


class ModelStatus(enum.Enum):
    """Where the model is in its life; ``/ping`` is 200 only when ``READY``."""

    LOADING = "Loading"
    READY = "Ready"
    FAILED = "Failed"


class ModelNotReadyError(KennelError):
    """An invocation arrived while the model is loading, or after loading it failed."""

    status = 503
    aws_code = "ModelNotReady"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One request as the handlers see it: the body and the headers that matter to them."""

    body: bytes
    content_type: str
    accept: str | None
    custom_attributes: str | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """One response: the encoded output, its content type, custom attributes to echo."""

    body: bytes
    content_type: str
    custom_attributes: str | None = None


class Runner(Protocol):
    """What the transport needs from whatever runs the model (one at a time or batched)."""

    @property
    def status(self) -> ModelStatus: ...

    @property
    def failure(self) -> str | None: ...

    def start(self) -> None: ...

    async def invoke(self, invocation: Invocation) -> Prediction: ...

    def close(self) -> None: ...


class InferenceRunner:
    """Loads the handlers once in a thread, then runs invocations on ``workers`` threads.

    ``load`` imports the user's code and returns the handlers; ``Handlers.load()`` (the
    user's ``model_fn``) runs right after it in the same thread. ``threads`` sets torch's
    intra-op threads once torch is imported (by the user's code or a default handler).
    """

    def __init__(
        self,
        load: Callable[[], Handlers],
        *,
        workers: int = 1,
        threads: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._load = load
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kennel-model")
        self._handlers: Handlers | None = None
        self._status = ModelStatus.LOADING
        self._failure: str | None = None
        self._loader: threading.Thread | None = None

    @property
    def status(self) -> ModelStatus:
        return self._status

    @property
    def failure(self) -> str | None:
        """Why loading failed, in words a person can act on; None unless ``FAILED``."""
        return self._failure

    def start(self) -> None:
        """Begin loading in a daemon thread (a hung model_fn must not keep the process up)."""
        if self._loader is None:
            self._loader = threading.Thread(target=self._load_model, name="kennel-model-load")
            self._loader.daemon = True
            self._loader.start()

    def wait_loaded(self, timeout: float | None = None) -> ModelStatus:
        """Block until loading ends (or ``timeout``); for in-process users and tests."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self._status

    async def invoke(self, invocation: Invocation) -> Prediction:
        handlers = self._handlers
        if handlers is None:
            raise ModelNotReadyError(self._not_ready_message())
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _run, handlers, invocation)

    def close(self) -> None:
        """Stop taking work; requests already running finish in their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _load_model(self) -> None:
        started = time.perf_counter()
        try:
            handlers = self._load()
            self._limit_torch_threads()
            handlers.load()
            self._limit_torch_threads()
        except Exception as error:
            self._failure = f"{type(error).__name__}: {error}"
            self._status = ModelStatus.FAILED
            log.exception("loading the model failed")
            return
        self._handlers = handlers
        self._status = ModelStatus.READY
        log.info("model loaded in %.2f s", time.perf_counter() - started)

    def _limit_torch_threads(self) -> None:
        """Apply ``threads`` if torch is in use; never import torch just for this."""
        torch = sys.modules.get("torch")
        if self._threads is not None and torch is not None:
            torch.set_num_threads(self._threads)

    def _not_ready_message(self) -> str:
        if self._status is ModelStatus.FAILED:
            return f"the model failed to load: {self._failure}"
        return "the model is still loading; wait until GET /ping answers 200"


@dataclass(frozen=True, slots=True)
class Concurrency:
    """How a model runs on an instance: ``workers`` requests at once, each with ``threads``
    intra-op threads (None: the library's own choice)."""

    workers: int
    threads: int | None


MAX_TUNED_WORKERS = 4
"""Built-in models get at most this many workers; more cores go to threads per request."""


def choose_concurrency(
    *,
    builtin: bool,
    vcpus: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    cpu_count: int | None = None,
) -> Concurrency:
    """Workers x intra-op threads for a model; given values are kept, the rest derived.

    ``vcpus`` is the instance's CPU count (``KENNEL_INSTANCE_VCPUS``), else ``cpu_count``
    (default ``os.cpu_count()``).

    * Built-in image models (kennel's thread-safe handler, ONNX Runtime or torch): many
      single-threaded runs beat one run on all cores, since a batch-1 CNN scales poorly
      across threads (measured on 2 vCPUs, ResNet-50 in ONNX Runtime: 2 workers x 1
      thread ~9 images/s, 1 x 2 threads ~3.5-4.5). So one worker per vCPU up to
      :data:`MAX_TUNED_WORKERS` (enough for the concurrency a gateway sends an instance),
      with the vCPUs shared out as threads beyond that: 2 -> 2x1, 8 -> 4x2, 16 -> 4x4.
    * Any other model: one worker, as the SageMaker toolkit's default for an unknown
      handler (it may not be thread-safe), using the instance's vCPUs when they are
      known and the library's default otherwise.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    cpus = vcpus if vcpus is not None else (cpu_count or os.cpu_count() or 1)
    cpus = max(1, cpus)
    if not builtin:
        workers = workers or 1
        if threads is None and vcpus is not None:
            threads = max(1, vcpus // workers)
        return Concurrency(workers, threads)
    if workers is None:
        threads = threads or -(-cpus // MAX_TUNED_WORKERS)  # ceil: 1 up to 4 vCPUs
        workers = max(1, cpus // threads)
    elif threads is None:
        threads = max(1, cpus // workers)
    return Concurrency(workers, threads)


def _run(handlers: Handlers, invocation: Invocation) -> Prediction:
    """One request in a worker thread, with its context for handlers that take one."""
    context = RequestContext(custom_attributes=invocation.custom_attributes)
    body, content_type = handlers(
        invocation.body, invocation.content_type, invocation.accept, context
    )
    return Prediction(body, content_type, context.response_custom_attributes)
