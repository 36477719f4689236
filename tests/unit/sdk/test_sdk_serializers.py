"""The SDK's serializers and deserializers: SageMaker's shapes, kennel's content types."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from kennel._errors import ValidationError
from kennel.sdk._serializers import (
    BaseDeserializer,
    BaseSerializer,
    BytesDeserializer,
    CSVDeserializer,
    CSVSerializer,
    DataSerializer,
    IdentitySerializer,
    JSONDeserializer,
    JSONSerializer,
    NumpyDeserializer,
    NumpySerializer,
    StreamDeserializer,
    StringDeserializer,
)


class Stream(io.BytesIO):
    """A response body as botocore hands it over: read once, closed by the deserializer."""


def test_content_types_and_accepts_are_sagemakers() -> None:
    assert IdentitySerializer().CONTENT_TYPE == "application/octet-stream"
    assert IdentitySerializer("image/jpeg").CONTENT_TYPE == "image/jpeg"
    assert JSONSerializer().CONTENT_TYPE == "application/json"
    assert CSVSerializer().CONTENT_TYPE == "text/csv"
    assert NumpySerializer().CONTENT_TYPE == "application/x-npy"
    # SageMaker's file-path/raw-bytes is read by no model server; any image type is.
    assert DataSerializer().CONTENT_TYPE == "application/x-image"
    assert BytesDeserializer().ACCEPT == ("*/*",)
    assert StringDeserializer().ACCEPT == ("application/json",)
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert CSVDeserializer().ACCEPT == ("text/csv",)
    assert NumpyDeserializer().ACCEPT == ("application/x-npy",)
    assert NumpyDeserializer(accept=["application/x-npy", "application/json"]).ACCEPT == (
        "application/x-npy",
        "application/json",
    )


def test_identity_sends_bytes_as_they_are_and_reads_files() -> None:
    assert IdentitySerializer().serialize(b"\x00\xff") == b"\x00\xff"
    assert IdentitySerializer().serialize(io.BytesIO(b"abc")) == b"abc"


def test_json_serializer_turns_arrays_into_lists() -> None:
    body = JSONSerializer().serialize({"inputs": np.arange(3), "k": 2})
    assert json.loads(body) == {"inputs": [0, 1, 2], "k": 2}
    assert json.loads(JSONSerializer().serialize(np.eye(2))) == [[1.0, 0.0], [0.0, 1.0]]
    assert JSONSerializer().serialize('{"already": "json"}') == '{"already": "json"}'


def test_csv_serializer_writes_rows() -> None:
    assert CSVSerializer().serialize([1, 2, 3]) == "1,2,3"
    assert CSVSerializer().serialize([[1, 2], [3, 4]]) == "1,2\n3,4"
    assert CSVSerializer().serialize(np.array([[1.5, 2.0]])) == "1.5,2.0"
    with pytest.raises(ValidationError, match="empty"):
        CSVSerializer().serialize([])


def test_numpy_serializer_writes_npy_without_pickles() -> None:
    image = np.zeros((4, 5, 3), dtype=np.uint8)
    body = NumpySerializer().serialize(image)
    assert np.array_equal(np.load(io.BytesIO(body)), image)
    as_float = np.load(io.BytesIO(NumpySerializer(dtype="float32").serialize([[1, 2]])))
    assert as_float.dtype == np.float32
    with pytest.raises(ValidationError, match="empty"):
        NumpySerializer().serialize([])
    with pytest.raises(ValidationError, match="pickle"):
        NumpySerializer().serialize([{"a": 1}])


def test_data_serializer_reads_a_path_or_takes_bytes(tmp_path: Path) -> None:
    image = tmp_path / "dog.jpg"
    image.write_bytes(b"\xff\xd8jpeg")
    assert DataSerializer().serialize(str(image)) == b"\xff\xd8jpeg"
    assert DataSerializer("image/jpeg").serialize(image) == b"\xff\xd8jpeg"
    assert DataSerializer().serialize(bytearray(b"raw")) == b"raw"
    with pytest.raises(ValidationError, match="could not read"):
        DataSerializer().serialize(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValidationError, match="cannot serialize a int"):
        DataSerializer().serialize(3)


def test_deserializers_read_and_close_the_stream() -> None:
    stream = Stream(b'{"scores": [[0.1, 0.9]]}')
    assert JSONDeserializer().deserialize(stream, "application/json") == {"scores": [[0.1, 0.9]]}
    assert stream.closed
    assert BytesDeserializer().deserialize(Stream(b"\x01"), "x/y") == b"\x01"
    assert StringDeserializer().deserialize(Stream("é".encode()), "text/plain") == "é"
    assert CSVDeserializer().deserialize(Stream(b"1,2\n3,4"), "text/csv") == [
        ["1", "2"],
        ["3", "4"],
    ]
    kept = Stream(b"abc")
    assert StreamDeserializer().deserialize(kept, "text/plain") == (kept, "text/plain")
    assert not kept.closed
    # bytes work too, for a caller that has the body already
    assert JSONDeserializer().deserialize(b"[1]", "application/json") == [1]


def test_json_deserializer_says_what_it_got_when_the_body_is_not_json() -> None:
    with pytest.raises(ValidationError, match=r"text/html, 6 bytes\) is not JSON"):
        JSONDeserializer().deserialize(Stream(b"<html>"), "text/html")


def test_numpy_deserializer_reads_npy_json_and_csv() -> None:
    scores = np.array([[0.25, 0.75]], dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, scores)
    from_npy = NumpyDeserializer().deserialize(Stream(buffer.getvalue()), "application/x-npy")
    assert np.array_equal(from_npy, scores) and from_npy.dtype == np.float32
    from_json = NumpyDeserializer().deserialize(
        Stream(b"[[0.25, 0.75]]"), "application/json; charset=utf-8"
    )
    assert np.allclose(from_json, scores)
    from_csv = NumpyDeserializer(dtype=float).deserialize(Stream(b"1,2\n3,4"), "text/csv")
    assert from_csv.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValidationError, match="cannot read a image/png answer"):
        NumpyDeserializer().deserialize(Stream(b"png"), "image/png")


def test_a_pickled_npy_answer_is_refused_by_default() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        NumpyDeserializer().deserialize(Stream(buffer.getvalue()), "application/x-npy")


def test_sagemaker_style_custom_classes_fit_the_bases() -> None:
    class Upper(BaseSerializer):
        CONTENT_TYPE = "text/plain"

        def serialize(self, data: str) -> bytes:
            return data.upper().encode()

    class Length(BaseDeserializer):
        ACCEPT = ("text/plain",)

        def deserialize(self, stream: io.BytesIO, content_type: str) -> int:
            return len(stream.read())

    assert Upper().serialize("dog") == b"DOG" and Upper().CONTENT_TYPE == "text/plain"
    assert Length().deserialize(Stream(b"four"), "text/plain") == 4


def test_bad_media_types_are_refused_by_argument() -> None:
    with pytest.raises(ValidationError, match="content_type"):
        IdentitySerializer("")
    with pytest.raises(ValidationError, match="accept"):
        JSONDeserializer(accept=[])
    with pytest.raises(ValidationError, match="encoding"):
        StringDeserializer(encoding="no-such-codec")
