"""Serializers and deserializers in the shape of ``sagemaker.serializers`` and
``sagemaker.deserializers``.

A :class:`~kennel.sdk._predictor.Predictor` turns what ``predict(data)`` gets into a request
body with its serializer (whose ``CONTENT_TYPE`` becomes the request's ``Content-Type``) and
the answer into a Python object with its deserializer (whose ``ACCEPT`` becomes ``Accept``).
A serializer or deserializer written for the SageMaker SDK works unchanged: a serializer
has ``CONTENT_TYPE`` and ``serialize(data)``; a deserializer has ``ACCEPT`` (a tuple of
media types) and ``deserialize(stream, content_type)``, where ``stream`` has ``read()`` and
``close()``.

What the built-in trainer's models take and give (``kennel.trainer.inference`` and
kennel's faster handler for them): image bytes as ``image/jpeg``, ``image/png`` or
``application/x-image`` (:class:`IdentitySerializer` or :class:`DataSerializer`),
``application/x-npy`` (:class:`NumpySerializer`: a uint8 ``HxWx3`` image, ``NxHxWx3``
images, or a preprocessed float ``Nx3xSxS`` batch) and ``application/json``
(:class:`JSONSerializer` with ``{"image": "<base64>"}`` or ``{"url": "https://..."}``);
scores come back as JSON ``[[score, ...], ...]`` (:class:`JSONDeserializer`) or ``.npy``
(:class:`NumpyDeserializer`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kennel._errors import ValidationError

__all__ = [
    "BaseDeserializer",
    "BaseSerializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "CSVSerializer",
    "DataSerializer",
    "IdentitySerializer",
    "JSONDeserializer",
    "JSONSerializer",
    "NumpyDeserializer",
    "NumpySerializer",
    "SimpleBaseDeserializer",
    "SimpleBaseSerializer",
    "StreamDeserializer",
    "StringDeserializer",
]

JSON = "application/json"
NPY = "application/x-npy"
NPZ = "application/x-npz"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
IMAGE = "application/x-image"
"""Any image format: the model server reads JPEG, PNG and the rest by their bytes."""


@runtime_checkable
class Readable(Protocol):
    """What a deserializer reads: a response body stream (or any file-like object)."""

    def read(self, size: int = -1, /) -> bytes: ...


# Serializers -------------------------------------------------------------------------------


class BaseSerializer(ABC):
    """Turns what ``Predictor.predict`` gets into the request body.

    Subclasses give ``CONTENT_TYPE`` (a property or a class attribute), the request's
    ``Content-Type``.
    """

    @property
    @abstractmethod
    def CONTENT_TYPE(self) -> str:
        """The request's ``Content-Type``."""

    @abstractmethod
    def serialize(self, data: Any) -> Any:
        """The request body for ``data`` (bytes, or a str sent as UTF-8).

        Args:
            data: What ``Predictor.predict`` was given.

        Returns:
            The body to send.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(content_type={self.CONTENT_TYPE!r})"


class SimpleBaseSerializer(BaseSerializer):
    """A serializer whose content type is given when it is made.

    Args:
        content_type: The request's ``Content-Type``.
    """

    def __init__(self, content_type: str = JSON) -> None:
        if not isinstance(content_type, str) or not content_type.strip():
            raise ValidationError(
                f"content_type must be a media type such as {JSON!r}, got {content_type!r}."
            )
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:
        """The request's ``Content-Type``."""
        return self.content_type


class IdentitySerializer(SimpleBaseSerializer):
    """Sends the data as it is (bytes, or a str as UTF-8): SageMaker's default.

    For an image classifier served by kennel give an image content type:
    ``IdentitySerializer("image/jpeg")`` (or ``"application/x-image"`` for any format).

    Args:
        content_type: The request's ``Content-Type`` (default:
            ``application/octet-stream``, as in SageMaker).
    """

    def __init__(self, content_type: str = OCTET_STREAM) -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        """``data`` unchanged; a file-like object is read.

        Args:
            data: bytes, bytearray, memoryview, str or an open file.

        Returns:
            The body to send.
        """
        if isinstance(data, Readable):
            return data.read()
        return data


class JSONSerializer(SimpleBaseSerializer):
    """Sends the data as JSON; NumPy arrays (also inside a dict) become nested lists.

    Args:
        content_type: The request's ``Content-Type`` (default: ``application/json``).
    """

    def __init__(self, content_type: str = JSON) -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        """``data`` as a JSON document; a str or file-like object is sent as it is.

        Args:
            data: Anything ``json.dumps`` takes, NumPy arrays included; a str (taken to be
                JSON already) or an open file.

        Returns:
            The JSON text.
        """
        if isinstance(data, Readable):
            return data.read()
        if isinstance(data, str):
            return data
        if isinstance(data, dict):
            return json.dumps({key: _plain(value) for key, value in data.items()})
        return json.dumps(_plain(data))


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars as the lists and numbers ``json`` knows."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


class CSVSerializer(SimpleBaseSerializer):
    """Sends the data as CSV: a row per inner sequence, values separated by commas.

    Args:
        content_type: The request's ``Content-Type`` (default: ``text/csv``).
    """

    def __init__(self, content_type: str = CSV) -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        """``data`` as CSV text.

        Args:
            data: A list (one row), a list of lists or a 1- or 2-D array (rows), a str
                (sent as it is) or an open file.

        Returns:
            The CSV text.
        """
        if isinstance(data, Readable):
            return data.read()
        if isinstance(data, str):
            return data
        if isinstance(data, np.ndarray):
            if data.ndim > 2:
                raise ValidationError(
                    f"CSVSerializer takes 1- or 2-dimensional arrays, got shape {data.shape}."
                )
            data = data.tolist()
        if not isinstance(data, Iterable):
            raise ValidationError(
                f"CSVSerializer cannot serialize a {type(data).__name__}; give a list, a "
                "list of lists, an array or a str."
            )
        rows = list(data)
        if not rows:
            raise ValidationError("CSVSerializer cannot serialize an empty list.")
        if all(_is_row(row) for row in rows):
            return "\n".join(_csv_row(row) for row in rows)
        return _csv_row(rows)


def _is_row(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


def _csv_row(values: Iterable[Any]) -> str:
    return ",".join(str(_plain(value)) for value in values)


class NumpySerializer(SimpleBaseSerializer):
    """Sends the data as a ``.npy`` array (what ``numpy.save`` writes).

    kennel's built-in image models take a uint8 ``HxWx3`` image, ``NxHxWx3`` images, or a
    float ``Nx3xSxS`` batch already preprocessed.

    Args:
        dtype: The dtype to convert lists to (default: NumPy's choice).
        content_type: The request's ``Content-Type`` (default: ``application/x-npy``).
    """

    def __init__(self, dtype: Any = None, content_type: str = NPY) -> None:
        super().__init__(content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> Any:
        """``data`` as ``.npy`` bytes (without pickles).

        Args:
            data: An array, or what ``numpy.array`` makes one of; an open file is sent as
                it is.

        Returns:
            The ``.npy`` bytes.
        """
        if isinstance(data, Readable):
            return data.read()
        array = data if isinstance(data, np.ndarray) else np.array(data, dtype=self.dtype)
        if array.size == 0:
            raise ValidationError("NumpySerializer cannot serialize an empty array.")
        if array.dtype == object:
            raise ValidationError(
                "NumpySerializer takes numbers of one shape; these values make an object "
                "array, which .npy could only hold as a pickle."
            )
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()


class DataSerializer(SimpleBaseSerializer):
    """Sends a file's bytes, given its path, or bytes as they are: for images and audio.

    SageMaker's default content type here is ``file-path/raw-bytes``, which no model server
    reads; kennel's is ``application/x-image`` (any image format), what its image models
    take.

    Args:
        content_type: The request's ``Content-Type`` (default: ``application/x-image``).
    """

    def __init__(self, content_type: str = IMAGE) -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        """The file's bytes, or ``data`` when it is bytes already.

        Args:
            data: A path (str or ``pathlib.Path``), bytes, or an open binary file.

        Returns:
            The bytes to send.
        """
        if isinstance(data, str | Path):
            path = Path(data)
            try:
                return path.read_bytes()
            except OSError as error:
                raise ValidationError(
                    f"DataSerializer could not read {str(path)!r}: {error.strerror or error}.",
                    hint="Give the path of an existing file, or its bytes.",
                ) from error
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data)
        if isinstance(data, Readable):
            return data.read()
        raise ValidationError(
            f"DataSerializer cannot serialize a {type(data).__name__}; give a file path or bytes."
        )


# Deserializers -----------------------------------------------------------------------------


class BaseDeserializer(ABC):
    """Turns the answer's body into a Python object.

    Subclasses give ``ACCEPT`` (a property or a class attribute), the media types asked
    for, sent as the ``Accept`` header.
    """

    @property
    @abstractmethod
    def ACCEPT(self) -> tuple[str, ...]:
        """The media types asked for, in order of preference."""

    @abstractmethod
    def deserialize(self, stream: Any, content_type: str) -> Any:
        """The answer as a Python object.

        Args:
            stream: The body: an object with ``read()`` (closed after reading), or bytes.
            content_type: The answer's ``Content-Type``.

        Returns:
            The decoded answer.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(accept={self.ACCEPT!r})"


class SimpleBaseDeserializer(BaseDeserializer):
    """A deserializer whose accepted media types are given when it is made.

    Args:
        accept: One media type or several (in order of preference).
    """

    def __init__(self, accept: str | Sequence[str] = "*/*") -> None:
        accepted = (accept,) if isinstance(accept, str) else tuple(accept)
        if not accepted or not all(isinstance(a, str) and a.strip() for a in accepted):
            raise ValidationError(f"accept must be a media type or a list of them, got {accept!r}.")
        self.accept = accept

    @property
    def ACCEPT(self) -> tuple[str, ...]:
        """The media types asked for, in order of preference."""
        return (self.accept,) if isinstance(self.accept, str) else tuple(self.accept)


def _read(stream: Any) -> bytes:
    """All of ``stream`` (closed after), or ``stream`` itself when it is bytes or a str."""
    if isinstance(stream, bytes | bytearray | memoryview):
        return bytes(stream)
    if isinstance(stream, str):
        return stream.encode("utf-8")
    try:
        data = stream.read()
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def _media_type(content_type: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class BytesDeserializer(SimpleBaseDeserializer):
    """The body's bytes, as they are: SageMaker's default.

    Args:
        accept: The media types asked for (default: ``*/*``).
    """

    def __init__(self, accept: str | Sequence[str] = "*/*") -> None:
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> bytes:
        """The body's bytes.

        Args:
            stream: The body (closed after reading).
            content_type: The answer's ``Content-Type`` (not used).

        Returns:
            The bytes.
        """
        return _read(stream)


class StringDeserializer(SimpleBaseDeserializer):
    """The body as text.

    Args:
        encoding: The text's encoding (default: UTF-8).
        accept: The media types asked for (default: ``application/json``, as in SageMaker).
    """

    def __init__(self, encoding: str = "UTF-8", accept: str | Sequence[str] = JSON) -> None:
        super().__init__(accept)
        try:
            codecs.lookup(encoding)
        except LookupError as error:
            raise ValidationError(f"encoding {encoding!r} is not a known encoding.") from error
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> str:
        """The body decoded as text.

        Args:
            stream: The body (closed after reading).
            content_type: The answer's ``Content-Type`` (not used).

        Returns:
            The text.
        """
        return _read(stream).decode(self.encoding)


class JSONDeserializer(SimpleBaseDeserializer):
    """The body parsed as JSON: for the built-in image models, ``[[score, ...], ...]``.

    Args:
        accept: The media types asked for (default: ``application/json``).
    """

    def __init__(self, accept: str | Sequence[str] = JSON) -> None:
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> Any:
        """The body's JSON value.

        Args:
            stream: The body (closed after reading).
            content_type: The answer's ``Content-Type`` (not used).

        Returns:
            The parsed value.
        """
        body = _read(stream)
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValidationError(
                f"The answer ({content_type or 'no content type'}, {len(body)} bytes) is not "
                f"JSON: {error}.",
                hint="Ask for what the model answers: use BytesDeserializer to see the body.",
            ) from error


class CSVDeserializer(SimpleBaseDeserializer):
    """The body parsed as CSV: a list of rows, each a list of strings.

    Args:
        encoding: The text's encoding (default: UTF-8).
        accept: The media types asked for (default: ``text/csv``).
    """

    def __init__(self, encoding: str = "utf-8", accept: str | Sequence[str] = CSV) -> None:
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> list[list[str]]:
        """The rows of the CSV body.

        Args:
            stream: The body (closed after reading).
            content_type: The answer's ``Content-Type`` (not used).

        Returns:
            The rows.
        """
        text = _read(stream).decode(self.encoding)
        return list(csv.reader(text.splitlines()))


class StreamDeserializer(SimpleBaseDeserializer):
    """The body unread: ``(stream, content_type)``; the caller reads and closes it.

    Args:
        accept: The media types asked for (default: ``*/*``).
    """

    def __init__(self, accept: str | Sequence[str] = "*/*") -> None:
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> tuple[Any, str]:
        """The stream and its content type, as they came.

        Args:
            stream: The body.
            content_type: The answer's ``Content-Type``.

        Returns:
            ``(stream, content_type)``.
        """
        return stream, content_type


class NumpyDeserializer(SimpleBaseDeserializer):
    """The body as a NumPy array, read by the answer's content type.

    ``application/x-npy`` (and ``x-npz``), ``application/json`` (nested lists) and
    ``text/csv`` are read; so a model that answers JSON still gives an array.

    Args:
        dtype: The dtype of the array made from JSON or CSV (default: NumPy's choice).
        accept: The media types asked for (default: ``application/x-npy``).
        allow_pickle: Whether ``.npy`` bodies may hold pickled objects (default: False:
            unpickling runs code the server chose).
    """

    def __init__(
        self,
        dtype: Any = None,
        accept: str | Sequence[str] = NPY,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: Any, content_type: str) -> Any:
        """The body as an array (for ``.npz``, the dict-like ``NpzFile``).

        Args:
            stream: The body (closed after reading).
            content_type: The answer's ``Content-Type``.

        Returns:
            The array.
        """
        body = _read(stream)
        kind = _media_type(content_type)
        if kind == NPY:
            return np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
        if kind == NPZ:
            return np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
        if kind == JSON:
            return np.array(json.loads(body), dtype=self.dtype)
        if kind == CSV:
            rows = list(csv.reader(body.decode("utf-8").splitlines()))
            return np.array(rows, dtype=self.dtype)
        raise ValidationError(
            f"NumpyDeserializer cannot read a {content_type or 'untyped'} answer; it reads "
            f"{NPY}, {NPZ}, {JSON} and {CSV}.",
            hint="Use BytesDeserializer to see the body as it is.",
        )
