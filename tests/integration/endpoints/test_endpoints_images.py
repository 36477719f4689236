"""A built-in trainer model behind an endpoint: images in every accepted form, via boto3."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests._images import serve_image
from tests._uploads import small_cnn_archive, upload_model
from tests.integration.endpoints.conftest import Models, unique

from kennel._client import KennelClient

pytestmark = pytest.mark.timeout(300)

CLASSES = ["001.cat", "002.dog", "003.fox"]


def _image(fmt: str, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """Serves one JPEG on 127.0.0.1 (allow-listed for fetching in the test server)."""
    with serve_image(_image("JPEG")) as url:
        yield url


@pytest.fixture(scope="module")
def builtin_endpoint(
    server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("builtin")
    archive = small_cnn_archive(tmp, CLASSES)
    with server.client() as api:
        made = Models(api, tmp)
        name = unique("smallcnn")
        model = upload_model(api, archive, name)
        endpoint = made.endpoint(made.config({"model_name": name}))
        yield endpoint, model
        made.cleanup()


def _scores(runtime: Any, endpoint: str, body: bytes, content_type: str) -> list[list[float]]:
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType=content_type, Accept="application/json", Body=body
    )
    scores: list[list[float]] = json.loads(answer["Body"].read())
    return scores


def test_the_model_is_exported_to_onnx_and_checked(
    builtin_endpoint: tuple[str, dict[str, Any]], api: KennelClient
) -> None:
    _, model = builtin_endpoint
    assert model["kind"] == "builtin-image-classifier"
    assert model["details"]["onnx"]["used"] is True
    assert model["details"]["onnx"]["max_abs_diff"] < 1e-3
    assert model["details"]["num_classes"] == 3
    assert model["onnx_uri"].endswith("model.onnx")


def test_jpeg_png_raw_base64_and_url_inputs_give_the_scores(
    builtin_endpoint: tuple[str, dict[str, Any]], runtime: Any, image_server: str
) -> None:
    endpoint, _ = builtin_endpoint
    jpeg, png = _image("JPEG"), _image("PNG")
    from_jpeg = _scores(runtime, endpoint, jpeg, "image/jpeg")
    assert len(from_jpeg) == 1 and len(from_jpeg[0]) == 3  # [[...]] as the dog-breed endpoint
    assert _scores(runtime, endpoint, jpeg, "application/x-image") == from_jpeg
    from_url = _scores(
        runtime, endpoint, json.dumps({"url": image_server}).encode(), "application/json"
    )
    assert from_url == from_jpeg  # the server fetched the same bytes
    encoded = json.dumps({"image": base64.b64encode(jpeg).decode()}).encode()
    assert _scores(runtime, endpoint, encoded, "application/json") == from_jpeg
    from_png = _scores(runtime, endpoint, png, "image/png")
    assert np.allclose(from_png, from_jpeg, atol=0.5)  # same pixels up to JPEG's loss


def test_top_k_answers_with_class_names(
    builtin_endpoint: tuple[str, dict[str, Any]], runtime: Any
) -> None:
    endpoint, _ = builtin_endpoint
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="image/jpeg",
        Accept="application/json",
        CustomAttributes="top_k=2",
        Body=_image("JPEG"),
    )
    [top] = json.loads(answer["Body"].read())["predictions"]
    assert len(top) == 2
    assert {p["label"] for p in top} <= set(CLASSES)
    assert top[0]["score"] >= top[1]["score"] and 0 < top[0]["score"] <= 1


def test_a_url_to_a_private_address_is_refused_as_a_model_error(
    builtin_endpoint: tuple[str, dict[str, Any]], runtime: Any
) -> None:
    endpoint, _ = builtin_endpoint
    body = json.dumps({"url": "http://10.255.255.1/dog.jpg"}).encode()
    with pytest.raises(runtime.exceptions.ModelError) as refused:
        _scores(runtime, endpoint, body, "application/json")
    error = refused.value.response
    assert error["OriginalStatusCode"] == 400
    assert "KENNEL_FETCH_ALLOW_NETWORKS" in error["OriginalMessage"]
    with pytest.raises(runtime.exceptions.ModelError) as not_image:
        _scores(runtime, endpoint, b"not an image", "image/jpeg")
    assert not_image.value.response["OriginalStatusCode"] in (400, 500)
