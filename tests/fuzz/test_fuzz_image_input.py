"""The model server's image decoding on hostile bodies: a batch, or a ValueError.

kennel's own handler for built-in image classifiers (``kennel.endpoints._image``) decodes
image files, ``.npy`` arrays and JSON with base64 images. Seeds are small images in every
format and mode PIL writes, arrays of every shape the handler takes, and JSON envelopes
of both; they are mutated byte by byte. Whatever the body, ``input_fn`` returns a float32
``N x 3 x S x S`` batch or raises the ValueError its contract names (the server answers it
400 or 415; 500 only for "not a readable image", as the trainer's own handler does), and
does so quickly: a long thin image or ten thousand one-pixel images must not grow into
gigabytes.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from tests.fuzz._fuzz import fuzz_settings, json_bodies, json_values, mutated, outcome, quick

from kennel.endpoints._errors import status_for
from kennel.endpoints._image import IMAGE_TYPES, INPUT_TYPES, ImageClassifierHandler, parse_top_k
from kennel.endpoints._onnx import CLASSES_FILE, CONFIG_FILE

SIZE = 32
UNREADABLE = "the body is not a readable image"


def _handler(folder: Path, size: int) -> ImageClassifierHandler:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps({"image_size": size}))
    (folder / CLASSES_FILE).write_text(json.dumps(["cat", "dog"]))
    return ImageClassifierHandler(folder, environ={})


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> ImageClassifierHandler:
    return _handler(tmp_path_factory.mktemp("model-32"), SIZE)


@pytest.fixture(scope="module")
def handler_224(tmp_path_factory: pytest.TempPathFactory) -> ImageClassifierHandler:
    return _handler(tmp_path_factory.mktemp("model-224"), 224)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _image_seeds() -> list[bytes]:
    rng = np.random.default_rng(7)
    picture = Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    seeds = []
    for fmt, modes in (
        ("PNG", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"]),
        ("JPEG", ["RGB", "L", "CMYK"]),
        ("GIF", ["P", "L"]),
        ("BMP", ["RGB", "L", "1"]),
        ("TIFF", ["RGB", "CMYK", "I;16", "F"]),
        ("WEBP", ["RGB", "RGBA"]),
        ("PPM", ["RGB"]),
        ("ICO", ["RGBA"]),
    ):
        for mode in modes:
            try:
                seeds.append(_encode(picture.convert(mode), fmt))
            except (OSError, KeyError, ValueError):
                continue  # a format or mode this PIL build does not write
    seeds.append(_encode(Image.new("L", (1, 3000)), "PNG"))
    seeds.append(_encode(Image.new("RGB", (3000, 1)), "JPEG"))
    return seeds


def _npy(array: np.ndarray[Any, Any], **options: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **options)
    return buffer.getvalue()


def _npy_seeds() -> list[bytes]:
    rng = np.random.default_rng(8)
    return [
        _npy(rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)),
        _npy(rng.integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)),
        _npy(rng.standard_normal((3, SIZE, SIZE)).astype(np.float32)),
        _npy(rng.standard_normal((2, 3, SIZE, SIZE)).astype(np.float16)),
        _npy(np.asfortranarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8))),
        _npy(rng.integers(0, 256, (6, 7, 3)).astype(">u2")),
        _npy(np.zeros((0, 4, 3), dtype=np.uint8)),
        _npy(np.zeros((), dtype=np.uint8)),
        _npy(np.array([(1, 2.0)], dtype=[("a", "u1"), ("b", "f4")])),
        _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
    ]


IMAGES = _image_seeds()
ARRAYS = _npy_seeds()


def npy_with_header(shape: tuple[int, ...], descr: str, fortran: bool, data: bytes) -> bytes:
    """A .npy file whose header says anything at all, followed by ``data``."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def check(handler: ImageClassifierHandler, body: bytes | str, content_type: str) -> None:
    with quick(f"input_fn({content_type!r}, {len(body)} bytes)"):
        result = outcome(lambda: handler.input_fn(body, content_type), ValueError)
    if isinstance(result, ValueError):
        status = status_for("input_fn", result)
        assert status in (400, 415) or str(result).startswith(UNREADABLE), (status, result)
        return
    size = handler.preprocess.size
    assert result.dtype == np.float32 and result.ndim == 4 and result.shape[1:] == (3, size, size)


@given(
    body=mutated(IMAGES) | st.sampled_from(IMAGES) | st.binary(max_size=200),
    kind=st.sampled_from(IMAGE_TYPES),
)
@fuzz_settings(max_examples=300)
def test_image_bodies(handler: ImageClassifierHandler, body: bytes, kind: str) -> None:
    check(handler, body, kind)


@given(
    body=st.one_of(
        mutated(ARRAYS),
        st.sampled_from(ARRAYS),
        st.builds(
            npy_with_header,
            st.lists(st.integers(0, 2**40), max_size=5).map(tuple),
            st.sampled_from(["|u1", "<f4", "<f2", ">f8", "|b1", "<c8", "|O", "<U3", "|V8", "x"]),
            st.booleans(),
            st.binary(max_size=256),
        ),
    )
)
@fuzz_settings(max_examples=300)
def test_npy_bodies(handler: ImageClassifierHandler, body: bytes) -> None:
    check(handler, body, "application/x-npy")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _no_url(value: Any) -> Any:
    """A URL would be fetched (from the network): the fetching has its own tests."""
    if isinstance(value, dict):
        value.pop("url", None)
    return value


json_envelopes = st.one_of(
    st.builds(lambda image: {"image": _b64(image)}, mutated(IMAGES) | st.sampled_from(IMAGES)),
    st.builds(
        lambda images: {"images": [_b64(i) for i in images]},
        st.lists(mutated(IMAGES) | st.sampled_from(IMAGES), max_size=4),
    ),
    st.builds(lambda text: {"image": text}, st.text(max_size=40)),
    st.builds(lambda value: {"images": value}, json_values),
    json_values,
).map(_no_url)


@given(body=json_envelopes.map(json.dumps) | json_bodies.filter(lambda raw: b'"url"' not in raw))
@fuzz_settings(max_examples=300)
def test_json_bodies(handler: ImageClassifierHandler, body: str | bytes) -> None:
    check(handler, body, "application/json")


@given(
    content_type=st.sampled_from(INPUT_TYPES).flatmap(
        lambda kind: st.sampled_from([kind, kind.upper(), f"{kind}; charset=utf-8", f" {kind} "])
    )
    | st.text(max_size=40),
    body=st.sampled_from(IMAGES[:2] + ARRAYS[:2] + [b'{"image": ""}']),
)
@fuzz_settings(max_examples=150)
def test_content_types(handler: ImageClassifierHandler, content_type: str, body: bytes) -> None:
    check(handler, body, content_type)


@given(
    attributes=st.none()
    | st.text(max_size=60)
    | st.sampled_from(["top_k=3", "top_k=0", "top_k=-1", "top_k=٣", "top_k=" + "9" * 5000])
)
@fuzz_settings(max_examples=200)
def test_custom_attributes(attributes: str | None) -> None:
    result = outcome(lambda: parse_top_k(attributes), ValueError)
    assert result is None or isinstance(result, int | ValueError)
    if isinstance(result, ValueError):
        assert status_for("input_fn", result) == 400


# --- bodies that are small but grow -----------------------------------------------------------

GROWING: list[tuple[str, Callable[[], bytes], str]] = [
    ("a 1 x 2,000,000 PNG", lambda: _encode(Image.new("L", (1, 2_000_000)), "PNG"), "image/png"),
    ("a 2,000,000 x 1 PNG", lambda: _encode(Image.new("RGB", (2_000_000, 1)), "PNG"), "image/png"),
    (
        "a 1 x 1,000,000 x 3 array",
        lambda: _npy(np.zeros((1, 1_000_000, 3), np.uint8)),
        "application/x-npy",
    ),
    (
        "100,000 one-pixel images",
        lambda: _npy(np.zeros((100_000, 1, 1, 3), np.uint8)),
        "application/x-npy",
    ),
    (
        "5,000 tiny base64 PNGs",
        lambda: json.dumps(
            {"images": [_b64(_encode(Image.new("L", (1, 1)), "PNG"))] * 5000}
        ).encode(),
        "application/json",
    ),
]


@pytest.mark.parametrize(("what", "make", "kind"), GROWING, ids=[g[0] for g in GROWING])
def test_small_bodies_do_not_grow_into_gigabytes(
    handler_224: ImageClassifierHandler, what: str, make: Callable[[], bytes], kind: str
) -> None:
    body = make()
    assert len(body) < 7 * 2**20, what  # fits in one InvokeEndpoint request
    check(handler_224, body, kind)


# --- the trainer's own handler (code/inference.py, which SageMaker runs as it is) -------------


@pytest.fixture(scope="module")
def trainer_input_fn() -> Callable[[bytes | str, str], Any]:
    inference = pytest.importorskip("kennel.trainer.inference")  # needs torch
    return inference.input_fn  # type: ignore[no-any-return]


@given(
    case=st.one_of(
        st.tuples(mutated(IMAGES) | st.binary(max_size=100), st.sampled_from(IMAGE_TYPES)),
        st.tuples(
            mutated(ARRAYS)
            | st.builds(
                npy_with_header,
                st.lists(st.integers(0, 2**40), max_size=4).map(tuple),
                st.sampled_from(["|u1", "<f4", "|O", "x"]),
                st.booleans(),
                st.binary(max_size=64),
            ),
            st.just("application/x-npy"),
        ),
        st.tuples(json_envelopes.map(json.dumps) | json_bodies, st.just("application/json")),
    )
)
@fuzz_settings(max_examples=300)
def test_the_trainers_handler(
    trainer_input_fn: Callable[[bytes | str, str], Any], case: tuple[Any, str]
) -> None:
    """Its contract: decoded images or a batch, else a ValueError (SageMaker answers 500)."""
    body, kind = case
    with quick("inference.input_fn"):
        outcome(lambda: trainer_input_fn(body, kind), ValueError)
