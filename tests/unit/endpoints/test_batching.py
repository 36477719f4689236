"""Dynamic batching: requests that wait together are predicted together, and come apart.

The runner is driven in-process with a handler that records the batches its predict_fn
sees; the last test runs a real model server with ``KENNEL_MAX_BATCH_SIZE`` on a
built-in model's ONNX export.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.unit.endpoints._model_servers import (
    ModelServer,
    free_port,
    npy,
    start_server,
    stop_server,
    wait_ready,
)

from kennel.endpoints import (
    HandlerError,
    Invocation,
    ModelNotReadyError,
    ModelStatus,
    load_handlers,
)
from kennel.endpoints._batching import BatchingRunner
from kennel.endpoints._onnx import export_onnx
from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network

TIMEOUT = 30.0

ROWS_HANDLER = '''
"""Row-wise handlers: JSON rows in, twice the rows out; predict_fn records its batches."""
import json
import threading
import time

import numpy as np


class Model:
    def __init__(self):
        self.batches = []
        self.lock = threading.Lock()


def model_fn(model_dir):
    return Model()


def input_fn(body, content_type, context):
    if content_type == "application/x-refused":
        raise ValueError(f"content type {content_type} is not supported")
    rows = json.loads(body)
    if content_type == "application/x-dict":
        return {"rows": rows}
    return np.asarray(rows, dtype=np.float32)


def predict_fn(data, model, context):
    if isinstance(data, dict):
        return np.asarray(data["rows"], dtype=np.float32) * 10
    with model.lock:
        model.batches.append((len(data), context.custom_attributes))
    time.sleep(0.05)
    if data.size and (data == -1).any():
        raise ZeroDivisionError("the model divided by zero")
    if data.size and (data == -2).any():
        return data[:1] * 2
    return data * 2


def output_fn(prediction, accept, context):
    return json.dumps({"rows": prediction.tolist(), "attributes": context.custom_attributes})
'''

TRANSFORM_HANDLER = """
def model_fn(model_dir):
    return "model"


def transform_fn(model, body, content_type, accept):
    return body.upper(), "text/plain"
"""


def _model(tmp_path: Path, script: str) -> Path:
    (tmp_path / "code").mkdir(parents=True, exist_ok=True)
    (tmp_path / "code" / "inference.py").write_text(script, encoding="utf-8")
    return tmp_path


def _runner(model_dir: Path, **settings: Any) -> BatchingRunner:
    options: dict[str, Any] = {"max_batch_size": 4, "max_batch_delay_ms": 100.0, "workers": 1}
    options.update(settings)
    runner = BatchingRunner(lambda: load_handlers(model_dir, environ={}), **options)
    runner.start()
    assert runner.wait_loaded(timeout=TIMEOUT) is ModelStatus.READY, runner.failure
    return runner


@pytest.fixture
def rows_model(tmp_path: Path) -> Path:
    return _model(tmp_path, ROWS_HANDLER)


def _rows(
    rows: Any, content_type: str = "application/json", attributes: str | None = None
) -> Invocation:
    return Invocation(json.dumps(rows).encode(), content_type, "application/json", attributes)


async def _all(runner: BatchingRunner, invocations: list[Invocation]) -> list[Any]:
    """Invoke everything at once; each answer's JSON, or the exception it raised."""
    tasks = [runner.invoke(invocation) for invocation in invocations]
    answers = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT)
    return [a if isinstance(a, BaseException) else json.loads(a.body) for a in answers]


def _batches(runner: BatchingRunner) -> list[tuple[int, str | None]]:
    return list(runner._handlers.model.batches)  # type: ignore[union-attr]


def test_requests_waiting_together_are_predicted_together(rows_model: Path) -> None:
    runner = _runner(rows_model)
    try:
        answers = asyncio.run(
            _all(runner, [_rows([[i, 10 + i]], attributes=f"n={i}") for i in range(8)])
        )
    finally:
        runner.close()
    for i, answer in enumerate(answers):
        assert answer == {"rows": [[2 * i, 20 + 2 * i]], "attributes": f"n={i}"}
    sizes = [rows for rows, _ in _batches(runner)]
    assert sum(sizes) == 8 and max(sizes) <= 4
    assert len(sizes) < 8, f"nothing was batched: {sizes}"
    assert runner.batch_sizes == sizes
    # A batch of several requests gets an empty context; a request alone gets its own.
    assert all(attributes is None for rows, attributes in _batches(runner) if rows > 1)


def test_with_idle_workers_the_waiting_requests_are_shared_out(rows_model: Path) -> None:
    """Four requests and two idle workers: never one batch of four and an idle worker."""
    runner = _runner(rows_model, workers=2, max_batch_delay_ms=200.0)
    try:
        answers = asyncio.run(_all(runner, [_rows([[i, i]]) for i in range(4)]))
    finally:
        runner.close()
    assert [answer["rows"] for answer in answers] == [[[2 * i, 2 * i]] for i in range(4)]
    sizes = [rows for rows, _ in _batches(runner)]
    assert sum(sizes) == 4 and len(sizes) >= 2 and max(sizes) <= 3, sizes


def test_rows_count_towards_the_batch_and_a_big_request_runs_alone(rows_model: Path) -> None:
    runner = _runner(rows_model)
    requests = [_rows([[1, 1]] * 3), _rows([[2, 2]] * 2), _rows([[3, 3]] * 6), _rows([[4, 4]])]
    try:
        answers = asyncio.run(_all(runner, requests))
    finally:
        runner.close()
    assert [len(answer["rows"]) for answer in answers] == [3, 2, 6, 1]
    assert answers[2]["rows"] == [[6, 6]] * 6
    sizes = sorted(rows for rows, _ in _batches(runner))
    assert 6 in sizes and all(size <= 4 for size in sizes if size != 6)


def test_inputs_of_other_shapes_or_kinds_are_not_mixed(rows_model: Path) -> None:
    runner = _runner(rows_model)
    requests = [
        _rows([[1, 2]]),
        _rows([[1, 2, 3]]),
        _rows([[5, 6]]),
        _rows([[7]], "application/x-dict"),
        _rows([[1, 2, 3, 4]]),
    ]
    try:
        answers = asyncio.run(_all(runner, requests))
    finally:
        runner.close()
    assert [answer["rows"] for answer in answers] == [
        [[2, 4]],
        [[2, 4, 6]],
        [[10, 12]],
        [[70]],
        [[2, 4, 6, 8]],
    ]


def test_a_failing_predict_fails_its_batch_only(rows_model: Path) -> None:
    runner = _runner(rows_model)
    try:
        answers = asyncio.run(_all(runner, [_rows([[-1, 0]]), _rows([[1, 0]])]))
        later = asyncio.run(_all(runner, [_rows([[3, 0]])]))
    finally:
        runner.close()
    failed = [a for a in answers if isinstance(a, HandlerError)]
    assert failed and all(e.stage == "predict_fn" and e.status == 500 for e in failed)
    assert "divided by zero" in failed[0].message
    assert later == [{"rows": [[6, 0]], "attributes": None}]


def test_a_predict_fn_that_is_not_row_wise_is_reported(rows_model: Path) -> None:
    runner = _runner(rows_model, max_batch_delay_ms=300.0)
    try:
        answers = asyncio.run(_all(runner, [_rows([[-2, 0]]), _rows([[1, 0]]), _rows([[2, 0]])]))
    finally:
        runner.close()
    errors = [a for a in answers if isinstance(a, HandlerError)]
    assert errors, answers
    assert all("one output row per input row" in e.message for e in errors)


def test_a_bad_body_fails_its_request_only(rows_model: Path) -> None:
    runner = _runner(rows_model)
    try:
        answers = asyncio.run(
            _all(runner, [_rows([[1, 1]], "application/x-refused"), _rows([[2, 2]])])
        )
    finally:
        runner.close()
    assert isinstance(answers[0], HandlerError) and answers[0].status == 415
    assert answers[1]["rows"] == [[4, 4]]


def test_without_delay_a_lone_request_does_not_wait(rows_model: Path) -> None:
    runner = _runner(rows_model, max_batch_delay_ms=0.0, workers=2)
    try:
        answers = asyncio.run(_all(runner, [_rows([[1, 2]])]))
    finally:
        runner.close()
    assert answers == [{"rows": [[2, 4]], "attributes": None}]


def test_transform_fn_handlers_run_unbatched(tmp_path: Path) -> None:
    runner = _runner(_model(tmp_path, TRANSFORM_HANDLER))
    try:
        invocation = Invocation(b"abc", "text/plain", "text/plain")
        answer = asyncio.run(asyncio.wait_for(runner.invoke(invocation), TIMEOUT))
    finally:
        runner.close()
    assert (answer.body, answer.content_type) == (b"ABC", "text/plain")


def test_not_loaded_or_closed_is_not_ready(rows_model: Path) -> None:
    waiting = BatchingRunner(lambda: load_handlers(rows_model, environ={}), max_batch_size=2)
    with pytest.raises(ModelNotReadyError, match="still loading"):
        asyncio.run(waiting.invoke(_rows([[1]])))
    waiting.close()
    runner = _runner(rows_model)
    runner.close()
    with pytest.raises(ModelNotReadyError, match="shutting down"):
        asyncio.run(runner.invoke(_rows([[1]])))


def test_settings_are_checked(rows_model: Path) -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchingRunner(lambda: load_handlers(rows_model), max_batch_size=0)
    with pytest.raises(ValueError, match="max_batch_delay_ms"):
        BatchingRunner(lambda: load_handlers(rows_model), max_batch_size=2, max_batch_delay_ms=-1)


# A real server with batching on a built-in model ---------------------------------------------


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModelServer, Path]]:
    root = tmp_path_factory.mktemp("batched")
    torch.manual_seed(2)
    classes = [f"{i:03d}.class{i}" for i in range(1, 6)]
    model_dir = root / "model"
    write_model_dir(
        model_dir, build_network("small-cnn", 5), classes, {"arch": "small-cnn", "image_size": 32}
    )
    export_onnx(model_dir)
    env = {"KENNEL_MAX_BATCH_SIZE": "4", "KENNEL_MAX_BATCH_DELAY_MS": "20"}
    server = start_server(model_dir, root / "server.log", port=free_port(), env=env)
    try:
        yield wait_ready(server), model_dir
    finally:
        assert stop_server(server) == 0, server.explain()


def test_a_batching_server_answers_each_request_as_an_unbatched_one_would(
    batched: tuple[ModelServer, Path],
) -> None:
    server, model_dir = batched
    assert "batches of up to 4 within 20 ms" in server.log.read_text(), server.explain()
    handlers = load_handlers(model_dir, environ={})
    handlers.load()
    images = [
        np.random.default_rng(seed).integers(0, 256, (40, 36, 3), dtype=np.uint8)
        for seed in range(12)
    ]
    bodies = [npy(image) for image in images]

    def post(body: bytes) -> Any:
        with server.client() as client:
            answer = client.post(
                "/invocations", content=body, headers={"Content-Type": "application/x-npy"}
            )
        assert answer.status_code == 200, answer.text
        return answer.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(post, bodies))
    for body, answer in zip(bodies, answers, strict=True):
        expected = json.loads(handlers(body, "application/x-npy", "application/json")[0])
        np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-5)
