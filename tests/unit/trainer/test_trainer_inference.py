"""The handler shipped in every model (``code/inference.py``), request by request.

The model here is untrained (random weights written by the packaging code), which is all
the content-type handling needs; ``test_trainer_standalone`` covers a trained one.
"""

from __future__ import annotations

import base64
import io
import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.unit.trainer._helpers import load_handler, predict_json

from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network

CLASSES = ["001.cat", "002.dog", "003.fox"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Any]:
    model_dir = tmp_path_factory.mktemp("handler") / "model"
    config = {"arch": "small-cnn", "image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3}
    write_model_dir(model_dir, build_network("small-cnn", len(CLASSES)), CLASSES, config)
    handler = load_handler(model_dir)
    return handler, handler.model_fn(str(model_dir))


def _encoded(image_format: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=image_format)
    return buffer.getvalue()


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_model_fn_returns_network_classes_and_transform(served: tuple[ModuleType, Any]) -> None:
    _, model = served
    assert model.classes == CLASSES
    assert not model.network.training
    assert tuple(model.transform(Image.new("RGB", (50, 70))).shape) == (3, 32, 32)


@pytest.mark.parametrize(
    ("content_type", "image_format"),
    [
        ("image/jpeg", "JPEG"),
        ("image/png", "PNG"),
        ("application/x-image", "PNG"),
        ("Image/JPEG; charset=binary", "JPEG"),
    ],
)
def test_image_bodies_give_one_row_of_scores(
    served: tuple[ModuleType, Any], content_type: str, image_format: str
) -> None:
    handler, model = served
    scores = predict_json(handler, model, _encoded(image_format), content_type)
    assert len(scores) == 1 and len(scores[0]) == len(CLASSES)


def test_json_base64_image_and_images(served: tuple[ModuleType, Any]) -> None:
    handler, model = served
    one = base64.b64encode(_encoded("JPEG")).decode()
    single = predict_json(handler, model, json.dumps({"image": one}).encode(), "application/json")
    batch = predict_json(handler, model, json.dumps({"images": [one, one]}), "application/json")
    assert len(single) == 1 and len(batch) == 2
    assert batch[0] == pytest.approx(single[0], abs=1e-5)


def test_json_url_is_left_to_the_serving_layer(served: tuple[ModuleType, Any]) -> None:
    handler, _ = served
    body = json.dumps({"url": "https://example.com/dog.jpg"}).encode()
    with pytest.raises(ValueError, match="URL inputs .* handled by the serving layer"):
        handler.input_fn(body, "application/json")


def test_npy_uint8_images_and_float_batches(served: tuple[ModuleType, Any]) -> None:
    handler, model = served
    pixels = np.full((30, 40, 3), 128, dtype=np.uint8)
    assert len(predict_json(handler, model, _npy(pixels), "application/x-npy")) == 1
    assert len(predict_json(handler, model, _npy(np.stack([pixels] * 3)), "application/x-npy")) == 3
    batch = np.zeros((2, 3, 32, 32), dtype=np.float32)
    assert len(predict_json(handler, model, _npy(batch), "application/x-npy")) == 2


def test_npy_output_round_trips(served: tuple[ModuleType, Any]) -> None:
    handler, model = served
    logits = handler.predict_fn(handler.input_fn(_encoded("PNG"), "image/png"), model)
    body = handler.output_fn(logits, "application/x-npy")
    assert np.load(io.BytesIO(body)).shape == (1, len(CLASSES))
    assert json.loads(handler.output_fn(logits, None)) == logits.tolist()


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"x", "text/csv", "unsupported content type 'text/csv'; supported: image/jpeg"),
        (b"not an image", "image/jpeg", "not a readable image"),
        (b"{", "application/json", "not valid JSON"),
        (b'{"image": "%%%"}', "application/json", "not valid base64"),
        (b'{"other": 1}', "application/json", "expected"),
        (b"nope", "application/x-npy", "not a .npy array"),
    ],
)
def test_bad_requests_raise_value_error(
    served: tuple[ModuleType, Any], body: bytes, content_type: str, message: str
) -> None:
    handler, _ = served
    with pytest.raises(ValueError, match=message):
        handler.input_fn(body, content_type)


def test_npy_of_the_wrong_shape_is_refused(served: tuple[ModuleType, Any]) -> None:
    handler, _ = served
    with pytest.raises(ValueError, match="HxWx3"):
        handler.input_fn(_npy(np.zeros((4, 4), dtype=np.uint8)), "application/x-npy")


def test_unsupported_accept_lists_the_supported_ones(served: tuple[ModuleType, Any]) -> None:
    handler, model = served
    logits = handler.predict_fn(handler.input_fn(_encoded("PNG"), "image/png"), model)
    with pytest.raises(ValueError, match="supported: application/json, application/x-npy"):
        handler.output_fn(logits, "text/csv")
