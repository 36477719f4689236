"""The built-in trainer's model behind a real model server, over HTTP.

The server was started from ``model.tar.gz`` with no port argument, so it answering at
all shows the archive was unpacked and SAGEMAKER_BIND_TO_PORT honoured.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from tests.unit.endpoints._model_servers import ModelServer

from kennel.endpoints import MAX_BODY_BYTES


def _first_jpeg(demo: Path) -> bytes:
    return next(iter(sorted((demo / "test").glob("*/*.jpg")))).read_bytes()


def test_tarball_served_on_the_port_from_sagemaker_bind_to_port(trained: ModelServer) -> None:
    with trained.client() as client:
        answer = client.get("/ping")
    assert answer.status_code == 200, trained.explain()
    assert answer.json() == {"status": "Healthy"}


def test_a_demo_jpeg_gets_ten_scores(trained: ModelServer, demo: Path) -> None:
    with trained.client() as client:
        answer = client.post(
            "/invocations",
            content=_first_jpeg(demo),
            headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    [scores] = answer.json()
    assert len(scores) == 10 and all(isinstance(s, float) for s in scores)


def test_png_and_a_missing_accept_get_the_default_json(trained: ModelServer, demo: Path) -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_first_jpeg(demo))).save(buffer, format="PNG")
    with trained.client() as client:
        answer = client.post(
            "/invocations", content=buffer.getvalue(), headers={"Content-Type": "image/png"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert len(answer.json()[0]) == 10


def test_an_unsupported_content_type_is_415_with_the_handlers_message(
    trained: ModelServer,
) -> None:
    with trained.client() as client:
        answer = client.post(
            "/invocations", content=b"hello", headers={"Content-Type": "text/plain"}
        )
    assert answer.status_code == 415
    body = answer.json()
    assert body["errorType"] == "ValueError"
    assert "unsupported content type 'text/plain'" in body["message"]
    assert "image/jpeg" in body["message"]


def test_a_body_over_6_mb_is_413(trained: ModelServer) -> None:
    with trained.client() as client:
        answer = client.post(
            "/invocations",
            content=b"\0" * (MAX_BODY_BYTES + 1),
            headers={"Content-Type": "image/jpeg"},
        )
        assert answer.status_code == 413
        assert answer.json()["errorType"] == "PayloadTooLarge"
        assert client.get("/ping").status_code == 200


def test_a_body_of_exactly_6_mb_is_not_rejected_for_its_size(trained: ModelServer) -> None:
    with trained.client() as client:
        answer = client.post(
            "/invocations", content=b"\0" * MAX_BODY_BYTES, headers={"Content-Type": "image/jpeg"}
        )
    assert answer.status_code == 500  # not an image: the handler's error, not the limit
    assert "not a readable image" in answer.json()["message"]


def test_a_handler_exception_is_500_with_its_type_and_message(trained: ModelServer) -> None:
    with trained.client() as client:
        answer = client.post(
            "/invocations", content=b"not a jpeg", headers={"Content-Type": "image/jpeg"}
        )
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["errorType"] == "ValueError"
    assert body["message"].startswith("the body is not a readable image")


def test_unknown_routes_and_methods(trained: ModelServer) -> None:
    with trained.client() as client:
        assert client.get("/nope").status_code == 404
        assert client.get("/invocations").status_code == 405
        assert client.post("/ping").status_code == 405
