"""A model dir with only a TorchScript ``model.pth``: the toolkit's default handlers."""

from __future__ import annotations

import json

import numpy as np
from tests.unit.endpoints._model_servers import ModelServer, from_npy, npy

ROWS = [[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]]
EXPECTED = [[14.5, 0.0], [4.5, 0.5]]
"""The Affine model of conftest: ``x @ [[1, 2, 3], [-1, 0, 0.5]].T + [0.5, -0.5]``."""


def test_json_in_json_out(scripted: ModelServer) -> None:
    with scripted.client() as client:
        answer = client.post(
            "/invocations", content=json.dumps(ROWS), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == EXPECTED


def test_npy_in_npy_out(scripted: ModelServer) -> None:
    with scripted.client() as client:
        answer = client.post(
            "/invocations",
            content=npy(np.array(ROWS, dtype=np.float32)),
            headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-npy"
    np.testing.assert_allclose(from_npy(answer.content), EXPECTED)


def test_csv_in_and_the_first_supported_accept_out(scripted: ModelServer) -> None:
    with scripted.client() as client:
        answer = client.post(
            "/invocations",
            content=b"1,2,3\n0,-1,2\n",
            headers={"Content-Type": "text/csv", "Accept": "image/png, text/csv"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv"
    assert answer.text.splitlines() == ["14.5,0", "4.5,0.5"]


def test_unsupported_types_are_415_and_406(scripted: ModelServer) -> None:
    with scripted.client() as client:
        unsupported_in = client.post(
            "/invocations", content=b"\xff", headers={"Content-Type": "image/jpeg"}
        )
        unsupported_out = client.post(
            "/invocations",
            content=json.dumps(ROWS),
            headers={"Content-Type": "application/json", "Accept": "image/png"},
        )
    assert unsupported_in.status_code == 415
    assert unsupported_in.json()["errorType"] == "UnsupportedContentTypeError"
    assert "input_fn" in unsupported_in.json()["message"]
    assert unsupported_out.status_code == 406
    assert unsupported_out.json()["errorType"] == "UnsupportedAcceptError"


def test_json_that_is_not_utf8_is_400(scripted: ModelServer) -> None:
    with scripted.client() as client:
        answer = client.post(
            "/invocations", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400
    assert "not UTF-8" in answer.json()["message"]
