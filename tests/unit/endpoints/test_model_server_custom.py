"""A user's own ``code/inference.py`` behind a real model server, over HTTP."""

from __future__ import annotations

import threading
import time

import httpx
from tests.unit.endpoints._model_servers import ModelServer


def test_ping_was_503_while_model_fn_ran_then_200(custom: ModelServer) -> None:
    assert custom.pings[-1] == 200
    assert 503 in custom.pings, custom.pings


def test_the_users_functions_are_used_with_a_tuple_result(custom: ModelServer) -> None:
    with custom.client() as client:
        answer = client.post(
            "/invocations", content=b"woof", headers={"Content-Type": "text/plain"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.echo+json"
    assert answer.json() == {"echo": "hello echo:woof", "accept": "application/json"}
    assert "x-amzn-sagemaker-custom-attributes" not in answer.headers


def test_accept_is_passed_through_and_star_means_the_default(custom: ModelServer) -> None:
    with custom.client() as client:
        sent = {"Content-Type": "text/plain", "Accept": "application/x-anything"}
        explicit = client.post("/invocations", content=b"a", headers=sent)
        sent["Accept"] = "*/*"
        star = client.post("/invocations", content=b"a", headers=sent)
    assert explicit.json()["accept"] == "application/x-anything"
    assert star.json()["accept"] == "application/json"


def test_custom_attributes_reach_the_handler_and_its_answer_is_echoed(
    custom: ModelServer,
) -> None:
    with custom.client() as client:
        answer = client.post(
            "/invocations",
            content=b"x",
            headers={"Content-Type": "text/plain", "X-Amzn-SageMaker-Custom-Attributes": "k=v"},
        )
    assert answer.status_code == 200
    assert answer.headers["x-amzn-sagemaker-custom-attributes"] == "seen=k=v"


def test_an_exception_in_predict_fn_is_500_with_its_type(custom: ModelServer) -> None:
    with custom.client() as client:
        answer = client.post(
            "/invocations", content=b"", headers={"Content-Type": "application/x-raise"}
        )
    assert answer.status_code == 500
    assert answer.json() == {
        "message": "the model divided by zero",
        "errorType": "ZeroDivisionError",
    }


def test_a_users_unsupported_content_type_message_is_415(custom: ModelServer) -> None:
    with custom.client() as client:
        answer = client.post("/invocations", content=b"{}", headers={"Content-Type": "image/gif"})
    assert answer.status_code == 415
    assert answer.json()["message"] == "content type image/gif is not supported by this model"


def test_ping_answers_fast_while_a_slow_predict_runs(custom: ModelServer) -> None:
    slow: dict[str, httpx.Response] = {}

    def invoke_slowly() -> None:
        with custom.client() as client:
            headers = {"Content-Type": "application/x-slow"}
            slow["answer"] = client.post("/invocations", content=b"", headers=headers)

    worker = threading.Thread(target=invoke_slowly)
    started = time.monotonic()
    worker.start()
    time.sleep(0.5)  # the request is in predict_fn's 3 s sleep by now
    with custom.client(timeout=2.0) as client:
        for _ in range(5):
            asked = time.monotonic()
            assert client.get("/ping").status_code == 200
            assert time.monotonic() - asked < 2.0
            time.sleep(0.1)
    assert time.monotonic() - started < 3.0, "the pings had to wait for the slow predict"
    worker.join(timeout=30)
    assert slow["answer"].status_code == 200
