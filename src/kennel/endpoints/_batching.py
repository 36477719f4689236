"""Dynamic batching: a :class:`Runner` that predicts several requests in one call.

Each invocation is decoded (``input_fn``) on a pool of its own, so decoding overlaps with
inference, and then waits in a queue. Whenever one of the ``workers`` model threads is
free, the runner takes the oldest waiting input and joins to it what else is waiting with
the same shape, up to ``max_batch_size`` rows; ``predict_fn`` runs once on the
concatenated batch and each request gets its own rows back for its ``output_fn``. Only
when every other worker is busy does a batch wait (at most ``max_batch_delay_ms``) for
more to arrive; while workers are idle, what is waiting is shared out among them instead
of piled onto one (with four clients and two workers: two batches of two, not one of four
and an idle worker).

With ``max_batch_size`` 1 nothing is batched but the stages still run apart: requests
are decoded while others are predicted, and a slow ``input_fn`` (a ``{"url": ...}``
fetch) never holds one of the model's threads. kennel serves its built-in image models
this way; other models get this runner only when they ask for batching.

Batching is opt-in (``KENNEL_MAX_BATCH_SIZE`` > 1) because it asks something of the
handlers that SageMaker's contract does not: ``input_fn`` must return a numpy array or
torch tensor whose first axis is the batch axis, and ``predict_fn`` one output row per
input row (kennel's built-in image handler does). An input of another kind, or one with
more rows than a batch holds, runs alone; ``transform_fn`` handlers are never batched.
A batched ``predict_fn`` that takes a context gets an empty one (the requests' custom
attributes differ), while ``input_fn`` and ``output_fn`` get their request's own.

On a 2-core CPU a ResNet-50 gains nothing from batching over two unbatched runs of one
thread each (ONNX Runtime is ~4.5 images/s per core either way), so it is off by default;
it pays where a batch uses the hardware better than single rows do (GPUs, wide CPUs,
small models with a high per-call overhead).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kennel.endpoints._errors import HandlerError
from kennel.endpoints._handlers import (
    Handlers,
    RequestContext,
    _decode_text,
    _response,
    _stage,
)
from kennel.endpoints._media import ANY
from kennel.endpoints._runner import (
    InferenceRunner,
    Invocation,
    ModelNotReadyError,
    Prediction,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_DELAY_MS = 5.0
"""How long the first request of a batch waits for company; short next to a CNN's predict."""


@dataclass(eq=False)
class _Waiting:
    """One decoded request in the queue: its input, its rows and where its answer goes."""

    data: Any
    rows: int
    key: Hashable | None
    """Inputs with equal keys concatenate; None: this one runs alone."""
    context: RequestContext
    future: asyncio.Future[Any] = field(repr=False)


class BatchingRunner(InferenceRunner):
    """An :class:`InferenceRunner` whose predictions run in batches (see the module doc).

    ``workers`` threads run batches at once, each with ``threads`` intra-op threads;
    ``decoders`` threads run ``input_fn``/``output_fn`` (default: two per worker, at least
    four, so URL fetches that wait on the network do not hold up decoding).
    ``max_batch_size`` counts rows, so a request of several images counts them all.
    """

    def __init__(
        self,
        load: Callable[[], Handlers],
        *,
        max_batch_size: int,
        max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS,
        workers: int = 1,
        threads: int | None = None,
        decoders: int | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if not max_batch_delay_ms >= 0:
            raise ValueError(f"max_batch_delay_ms must be >= 0, got {max_batch_delay_ms}")
        super().__init__(load, workers=workers, threads=threads)
        self.max_batch_size = max_batch_size
        self.max_batch_delay = max_batch_delay_ms / 1000.0
        self.workers = workers
        self._decoders = ThreadPoolExecutor(
            max_workers=decoders or max(4, 2 * workers), thread_name_prefix="kennel-decode"
        )
        self._waiting: deque[_Waiting] = deque()
        self._arrived: asyncio.Event | None = None
        self._collector: asyncio.Task[None] | None = None
        self._closed = False
        self._busy = 0
        """Workers running a batch or holding a slot to form one."""
        self.batch_sizes: list[int] = []
        """Rows per predict_fn call, newest last (at most the last 1000): for tests and probes."""

    async def invoke(self, invocation: Invocation) -> Prediction:
        handlers = self._handlers
        if handlers is None or self._closed:
            raise ModelNotReadyError(
                "the model server is shutting down" if self._closed else self._not_ready_message()
            )
        if handlers.functions.transform_fn is not None:
            return await super().invoke(invocation)
        loop = asyncio.get_running_loop()
        arrived = self._start_collector(loop, handlers)
        context = RequestContext(custom_attributes=invocation.custom_attributes)
        accept = invocation.accept
        if not accept or accept == ANY:
            accept = handlers.default_accept
        data = await loop.run_in_executor(self._decoders, _decode, handlers, invocation, context)
        waiting = _Waiting(data, *_batch_key(data), context, loop.create_future())
        self._waiting.append(waiting)
        arrived.set()
        rows = await waiting.future
        body, content_type = await loop.run_in_executor(
            self._decoders, _encode, handlers, rows, accept, context
        )
        return Prediction(body, content_type, context.response_custom_attributes)

    def close(self) -> None:
        self._closed = True
        if self._collector is not None:
            self._collector.cancel()
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(
                    ModelNotReadyError("the model server is shutting down")
                )
        self._decoders.shutdown(wait=False, cancel_futures=True)
        super().close()

    # The collector: one task on the event loop forms the batches ---------------------------

    def _start_collector(
        self, loop: asyncio.AbstractEventLoop, handlers: Handlers
    ) -> asyncio.Event:
        if self._arrived is None or self._collector is None or self._collector.done():
            self._arrived = asyncio.Event()
            self._busy = 0  # a new event loop (tests): nothing of the old one runs
            self._collector = loop.create_task(self._collect(handlers, self._arrived))
        return self._arrived

    async def _collect(self, handlers: Handlers, arrived: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.workers)
        while True:
            await slots.acquire()
            self._busy += 1
            batch: list[_Waiting] = []
            try:
                batch = await self._next_batch(loop, arrived)
                running = loop.run_in_executor(self._pool, _predict, handlers, batch)
            except asyncio.CancelledError:
                _fail(batch, ModelNotReadyError("the model server is shutting down"))
                raise
            except Exception as error:  # noqa: BLE001 - e.g. the pool shut down: answer, never hang
                self._busy -= 1
                slots.release()
                _fail(batch, error)
                continue
            self._record(sum(w.rows for w in batch))
            running.add_done_callback(partial(self._finish, slots, batch))

    async def _next_batch(
        self, loop: asyncio.AbstractEventLoop, arrived: asyncio.Event
    ) -> list[_Waiting]:
        """The oldest waiting input and what joins it.

        While other workers are idle, the batch takes only its share of what is waiting
        (the rest goes to them) and does not wait: piling everything onto one worker would
        leave the others idle. Only the last free worker waits up to the delay for company.
        """
        while not self._waiting:
            arrived.clear()
            await arrived.wait()
        first = self._waiting.popleft()
        batch, rows = [first], first.rows
        if first.key is None:
            return batch
        deadline = loop.time() + self.max_batch_delay
        while True:
            idle = self.workers - self._busy
            room = self.max_batch_size
            if idle > 0:
                waiting = rows + sum(w.rows for w in self._waiting)
                room = min(room, -(-waiting // (idle + 1)))
            if rows >= room:
                break
            joining = self._take(first.key, room - rows)
            if joining is not None:
                batch.append(joining)
                rows += joining.rows
                continue
            if idle > 0:
                break
            left = deadline - loop.time()
            if left <= 0:
                break
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), left)
            except TimeoutError:
                break
        return batch

    def _take(self, key: Hashable, room: int) -> _Waiting | None:
        """The oldest waiting input with ``key`` and at most ``room`` rows, removed."""
        for index, waiting in enumerate(self._waiting):
            if waiting.key == key and waiting.rows <= room:
                del self._waiting[index]
                return waiting
        return None

    def _finish(
        self, slots: asyncio.Semaphore, batch: list[_Waiting], done: asyncio.Future[list[Any]]
    ) -> None:
        self._busy -= 1
        slots.release()
        if done.cancelled():
            _fail(batch, ModelNotReadyError("the model server is shutting down"))
            return
        error = done.exception()
        if error is not None:
            _fail(batch, error)
            return
        for waiting, rows in zip(batch, done.result(), strict=True):
            if not waiting.future.done():
                waiting.future.set_result(rows)

    def _record(self, rows: int) -> None:
        self.batch_sizes.append(rows)
        if len(self.batch_sizes) > 1000:
            del self.batch_sizes[:500]


def _fail(batch: list[_Waiting], error: BaseException) -> None:
    for waiting in batch:
        if not waiting.future.done():
            waiting.future.set_exception(error)


# The three stages, in the pools' threads ----------------------------------------------------


def _decode(handlers: Handlers, invocation: Invocation, context: RequestContext) -> Any:
    payload = _decode_text(invocation.body, invocation.content_type)
    callers = handlers._callers
    return _stage("input_fn", callers.input_fn, payload, invocation.content_type, context)


def _predict(handlers: Handlers, batch: list[_Waiting]) -> list[Any]:
    """One predict_fn call for the batch; each request's rows of the result."""
    predict = handlers._callers.predict_fn
    if len(batch) == 1:
        only = batch[0]
        return [_stage("predict_fn", predict, only.data, handlers.model, only.context)]
    data = _concatenate([waiting.data for waiting in batch])
    prediction = _stage("predict_fn", predict, data, handlers.model, RequestContext())
    total = sum(waiting.rows for waiting in batch)
    if _rows(prediction) != total:
        problem = ValueError(
            f"predict_fn returned {type(prediction).__name__} "
            f"{getattr(prediction, 'shape', '')} for a batch of {total} rows; dynamic "
            "batching (KENNEL_MAX_BATCH_SIZE > 1) needs one output row per input row"
        )
        raise HandlerError("predict_fn", problem)
    parts: list[Any] = []
    start = 0
    for waiting in batch:
        parts.append(prediction[start : start + waiting.rows])
        start += waiting.rows
    return parts


def _encode(
    handlers: Handlers, prediction: Any, accept: str, context: RequestContext
) -> tuple[bytes, str]:
    result = _stage("output_fn", handlers._callers.output_fn, prediction, accept, context)
    return _response(result, accept)


# What can be batched ------------------------------------------------------------------------


def _batch_key(data: Any) -> tuple[int, Hashable | None]:
    """(rows, key): inputs with equal keys concatenate along their first axis."""
    rows = _rows(data)
    if rows is None or rows < 1:
        return 1, None
    kind = type(data)
    return rows, (kind.__module__, kind.__name__, str(data.dtype), tuple(data.shape[1:]))


def _rows(data: Any) -> int | None:
    """The length of the first axis of a numpy array or torch tensor, else None."""
    import numpy as np

    torch = sys.modules.get("torch")
    is_tensor = torch is not None and isinstance(data, torch.Tensor)
    if (isinstance(data, np.ndarray) or is_tensor) and data.ndim >= 1:
        return int(data.shape[0])
    return None


def _concatenate(parts: list[Any]) -> Any:
    import numpy as np

    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    torch = sys.modules["torch"]
    return torch.cat(parts)
