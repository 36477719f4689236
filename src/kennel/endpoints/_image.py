"""kennel's own handler functions for the built-in trainer's image classifiers.

A built-in model dir (see ``_onnx.is_builtin_model``) carries ``code/inference.py``, the
trainer's handler, which must keep working on SageMaker without kennel. kennel serves the
same contract with these functions instead, because they are faster where it counts:

* ``model_fn`` runs ``model.onnx`` with ONNX Runtime when the dir has one exported from
  these very weights (its metadata records model.pth's SHA-256), with
  ``KENNEL_MODEL_THREADS`` intra-op threads; otherwise the model's own ``model_fn``
  builds the PyTorch network. ONNX Runtime needs neither torch nor torchvision, so such
  a server never imports them.
* ``input_fn`` decodes and preprocesses in the request's worker thread, with numpy and
  PIL instead of torchvision, into the float NCHW batch ``predict_fn`` runs as it is.
  Preprocessing is ``eval_transform`` step for step (PIL bilinear resize of the short
  side, the same centre crop, ``(x / 255 - mean) / std``); a JPEG at least four times
  the model's size on both sides is decoded at a reduced scale (JPEG draft mode) that
  stays at least twice the model's size, which moves pixels by a few grey levels at most
  (about one at 224 px; under one on average) and is many times faster for a photo.
* ``output_fn`` answers what the trainer's handler answers (``[[score, ...]]`` as JSON,
  or ``.npy``), and with ``top_k=N`` in ``X-Amzn-SageMaker-Custom-Attributes``
  ``{"predictions": [[{"label", "index", "score"}, ...]]}`` with softmax scores.

Bodies: ``image/jpeg``, ``image/png``, ``application/x-image`` (image bytes),
``application/x-npy`` (a uint8 ``HxWx3`` image, ``NxHxWx3`` images, or a float
``(N,) 3 x S x S`` batch already preprocessed), ``application/json`` with
``{"url": "http(s)://..."}`` (fetched under ``_fetch``'s SSRF rules), ``{"image":
"<base64>"}`` or ``{"images": [...]}``. Errors and their statuses are the trainer
handler's where it has them (an unsupported type is a ``ValueError`` the server answers
415 or 406, an unreadable image body 500), so a client sees the same answers whichever
handler serves the model; malformed requests the trainer's handler does not know are 400.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import os
import re
import threading
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kennel import _json
from kennel.endpoints._errors import BadRequestError, ModelLoadError
from kennel.endpoints._fetch import FetchPolicy, fetch_url, open_image_checked
from kennel.endpoints._handlers import HandlerFunctions, RequestContext
from kennel.endpoints._media import ANY, JSON, NPY, media_type
from kennel.endpoints._onnx import (
    CLASSES_FILE,
    CONFIG_FILE,
    HANDLER_FILE,
    ONNX_FILE,
    WEIGHTS_DIGEST_KEY,
    load_torch_model,
    read_json,
    weights_digest,
)

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
INPUT_TYPES = (*IMAGE_TYPES, NPY, JSON)
OUTPUT_TYPES = (JSON, NPY)
THREADS_ENV = "KENNEL_MODEL_THREADS"
MAX_PIXELS = 40_000_000
"""Images whose header claims more pixels are refused before decoding (400)."""
DRAFT_FACTOR = 2
"""JPEG draft mode keeps at least this many times the model's size on each side."""
MAX_BATCH_BYTES = 256 * 2**20
"""The most one request's preprocessed batch (float32 N x 3 x S x S) may take: a body of
a few MB can hold tens of thousands of tiny images, each of which grows to S x S."""
BOXED_RESIZE_FACTOR = 16
"""Past this many times the crop's area, only the part that becomes the crop is resized."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Array = np.ndarray[Any, Any]
Batch = np.ndarray[Any, np.dtype[np.float32]]

_ATTRIBUTE_SEPARATORS = re.compile(r"[,;]")
_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
"""ONNX Runtime's providers in order of preference, where the installed build has them."""


# Preprocessing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessor:
    """``eval_transform(size, mean, std)`` in numpy: PIL image -> float32 ``3 x S x S``."""

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    _scale: Array = field(init=False, repr=False, compare=False)
    _offset: Array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        # (x / 255 - mean) / std as one multiply-add per value.
        scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1)
        offset = (-mean / std).astype(np.float32).reshape(3, 1, 1)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "_offset", offset)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Preprocessor:
        """From ``model-config.json``: ``image_size`` and optional ``mean``/``std``."""
        try:
            size = int(config["image_size"])
            mean = _three(config.get("mean", IMAGENET_MEAN))
            std = _three(config.get("std", IMAGENET_STD))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelLoadError(
                f"model-config.json has no usable image_size/mean/std: {error}",
                hint="The built-in trainer writes image_size (and mean/std) there.",
            ) from error
        if size < 1 or not all(s > 0 for s in std):
            raise ModelLoadError(f"model-config.json: bad image_size {size} or std {std}")
        return cls(size, mean, std)

    @property
    def draft_size(self) -> tuple[int, int]:
        return (self.size * DRAFT_FACTOR, self.size * DRAFT_FACTOR)

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """torchvision's ``Resize(size)``: the short side becomes ``size``, the long one
        ``int(size * long / short)``."""
        size = self.size
        if width <= height:
            return size, int(size * height / width)
        return int(size * width / height), size

    def __call__(self, image: Image.Image) -> Batch:
        """One RGB image as a float32 ``3 x S x S`` array, normalised."""
        width, height = image.size
        new_width, new_height = self.resized_size(width, height)
        size = self.size
        # torchvision's CenterCrop: round() of the half margin (round half to even).
        left = int(round((new_width - size) / 2.0))
        top = int(round((new_height - size) / 2.0))
        if new_width * new_height > BOXED_RESIZE_FACTOR * size * size:
            # A long thin image (1 x 40 million pixels is a small PNG) would be resized to
            # gigabytes only to keep a square of it. Resizing just that square's source box
            # moves pixels by at most one grey level from resize-then-crop.
            x_scale, y_scale = width / new_width, height / new_height
            right = min(width, (left + size) * x_scale)
            bottom = min(height, (top + size) * y_scale)
            box = (left * x_scale, top * y_scale, right, bottom)
            image = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
        else:
            if (new_width, new_height) != (width, height):
                image = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
            if (left, top, new_width, new_height) != (0, 0, size, size):
                image = image.crop((left, top, left + size, top + size))
        pixels = np.asarray(image, dtype=np.uint8)
        chw: Batch = pixels.transpose(2, 0, 1).astype(np.float32)
        chw *= self._scale
        chw += self._offset
        return chw

    def check_batch(self, count: int) -> None:
        """Refuse ``count`` images whose preprocessed batch would pass MAX_BATCH_BYTES (400)."""
        each = 3 * self.size * self.size * 4
        if count * each > MAX_BATCH_BYTES:
            raise BadRequestError(
                f"{count} images in one request is more than this model takes at once "
                f"(at most {MAX_BATCH_BYTES // each} of {self.size}x{self.size}); send them "
                "in several requests"
            )

    def batch(self, images: Sequence[Image.Image]) -> Batch:
        if len(images) == 1:
            return self(images[0])[None]
        return np.stack([self(image) for image in images])


def _three(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


# The model ----------------------------------------------------------------------------------


@dataclass
class ImageModel:
    """What ``model_fn`` returns: a function from a float NCHW batch to logits."""

    backend: str
    """``onnxruntime`` or ``torch``."""
    run: Callable[[Batch], Array]
    image_size: int
    threads: int | None = None
    session: Any = None
    network: Any = None


# The handler --------------------------------------------------------------------------------


class ImageClassifierHandler:
    """The handler functions for one built-in model dir (bound methods, thread-safe)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.threads = threads
        config = read_json(self.model_dir, CONFIG_FILE)
        classes = read_json(self.model_dir, CLASSES_FILE)
        if not isinstance(config, dict):
            raise ModelLoadError(f"{CONFIG_FILE} in {model_dir} is not a JSON object")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ModelLoadError(f"{CLASSES_FILE} in {model_dir} is not a list of names")
        self.config: dict[str, Any] = config
        self.classes: list[str] = classes
        self.preprocess = Preprocessor.from_config(config)
        env = os.environ if environ is None else environ
        self.vcpus = _vcpus(env)
        try:
            self.fetch_policy = FetchPolicy.from_env(env)
        except ValueError as error:
            raise ModelLoadError(str(error), hint="Fix the KENNEL_FETCH_* variable.") from error

    def functions(self) -> HandlerFunctions:
        return HandlerFunctions(
            model_fn=self.model_fn,
            input_fn=self.input_fn,
            predict_fn=self.predict_fn,
            output_fn=self.output_fn,
            source=self.model_dir / HANDLER_FILE,
        )

    # model_fn -----------------------------------------------------------------------------

    def model_fn(self, model_dir: str) -> ImageModel:
        """ONNX Runtime on ``model.onnx`` if it belongs to these weights, else PyTorch."""
        folder = Path(model_dir)
        onnx_path = folder / ONNX_FILE
        if onnx_path.is_file():
            model = self._onnx_model(folder, onnx_path)
            if model is not None:
                return model
        return self._torch_model(folder)

    def _onnx_model(self, folder: Path, path: Path) -> ImageModel | None:
        try:
            import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]

            options = ort.SessionOptions()
            if self.threads is not None:
                options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            providers = [p for p in _PROVIDERS if p in ort.get_available_providers()]
            session = ort.InferenceSession(str(path), options, providers=providers)
            recorded = session.get_modelmeta().custom_metadata_map.get(WEIGHTS_DIGEST_KEY)
            shape = list(session.get_inputs()[0].shape)
        except Exception as error:  # noqa: BLE001 - ONNX is an optimisation; PyTorch serves
            log.warning("%s cannot be loaded (%s); serving with PyTorch", path, error)
            return None
        size = self.preprocess.size
        if shape[1:] != [3, size, size]:
            log.warning("%s takes %s, not N x 3 x %d x %d; serving with PyTorch", path, shape, size)
            return None
        actual = _digest_or_none(folder) if recorded is not None else None
        if actual is not None and recorded != actual:
            log.warning("%s belongs to other weights than model.pth; serving with PyTorch", path)
            return None
        if recorded is None:
            log.info("%s records no weights digest; trusting it", path)
        input_name = session.get_inputs()[0].name
        output_names = [session.get_outputs()[0].name]
        solo = self._solo_session(ort, path, providers)
        lock = threading.Lock()
        running = 0

        def run(batch: Batch) -> Array:
            # A request that finds no other running gets every vCPU (one request alone
            # would otherwise use one core of several); under load each run keeps to its
            # worker's threads, which is what makes concurrent requests add up.
            nonlocal running
            with lock:
                chosen = solo if solo is not None and running == 0 else session
                running += 1
            try:
                logits: Array = chosen.run(output_names, {input_name: batch})[0]
            finally:
                with lock:
                    running -= 1
            return logits

        log.info(
            "serving %s with ONNX Runtime (intra-op threads: %s; %s alone)",
            path,
            self.threads,
            self.vcpus if solo is not None else self.threads,
        )
        return ImageModel("onnxruntime", run, size, self.threads, session=session)

    def _solo_session(self, ort: Any, path: Path, providers: list[str]) -> Any:
        """A second session on all the instance's vCPUs, for a request that runs alone."""
        if self.threads is None or self.vcpus <= self.threads:
            return None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.vcpus
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            return ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # noqa: BLE001 - an optimisation only
            log.warning("no all-core session for lone requests: %s", error)
            return None

    def _torch_model(self, folder: Path) -> ImageModel:
        """The model's own ``model_fn`` builds the network (on the GPU if there is one)."""
        import torch

        loaded = load_torch_model(folder)
        network = loaded.network
        device = getattr(loaded, "device", torch.device("cpu"))
        network.to(device)

        def run(batch: Batch) -> Array:
            with torch.inference_mode():
                logits: Array = network(torch.from_numpy(batch).to(device)).cpu().numpy()
            return logits

        log.info("serving %s with PyTorch (no usable %s)", folder, ONNX_FILE)
        return ImageModel("torch", run, self.preprocess.size, self.threads, network=network)

    # input_fn -----------------------------------------------------------------------------

    def input_fn(self, body: bytes | bytearray | str, content_type: str) -> Batch:
        """A float32 ``N x 3 x S x S`` batch, preprocessed, from any supported body."""
        kind = media_type(content_type)
        if kind in IMAGE_TYPES:
            return self.preprocess.batch([self._decode(_raw(body))])
        if kind == NPY:
            return self._from_array(_load_npy(_raw(body)))
        if kind == JSON:
            return self._from_json(body)
        raise ValueError(
            f"unsupported content type {content_type!r}; supported: {', '.join(INPUT_TYPES)}"
        )

    def _decode(self, raw: bytes) -> Image.Image:
        """A request's image bytes as RGB; unreadable bytes are the trainer handler's error."""
        try:
            with Image.open(io.BytesIO(raw)):
                pass  # the header only: is this an image at all?
        except Image.DecompressionBombError:
            pass  # open_image_checked refuses it below, with a 400
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            raise ValueError(f"the body is not a readable image: {error}") from error
        return open_image_checked(raw, MAX_PIXELS, self.preprocess.draft_size)

    def _from_array(self, array: Array) -> Batch:
        size = self.preprocess.size
        if array.dtype == np.uint8 and array.ndim in (3, 4) and array.shape[-1] == 3:
            images = array[None] if array.ndim == 3 else array
            if len(images) and min(images.shape[1:3]) > 0:
                self.preprocess.check_batch(len(images))
                pictures = [Image.fromarray(np.ascontiguousarray(one)) for one in images]
                return self.preprocess.batch(pictures)
        elif np.issubdtype(array.dtype, np.floating) and array.ndim in (3, 4):
            batch = array[None] if array.ndim == 3 else array
            if len(batch) and batch.shape[1:] == (3, size, size):
                return np.ascontiguousarray(batch, dtype=np.float32)
        raise BadRequestError(
            f"expected a uint8 HxWx3 image (or NxHxWx3 images) or a float batch of shape "
            f"Nx3x{size}x{size} (or 3x{size}x{size}), preprocessed like eval_transform; "
            f"got dtype {array.dtype} and shape {array.shape}"
        )

    def _from_json(self, body: bytes | bytearray | str) -> Batch:
        try:
            payload = _json.loads(body)
        except ValueError as error:
            raise BadRequestError(f"the body is not valid JSON: {error}") from error
        if not isinstance(payload, dict):
            raise BadRequestError(_JSON_SHAPES)
        if "url" in payload:
            url = payload["url"]
            if not isinstance(url, str):
                raise BadRequestError(f'"url" must be a string; {_JSON_SHAPES}')
            data, _ = fetch_url(url, self.fetch_policy)
            image = open_image_checked(data, MAX_PIXELS, self.preprocess.draft_size)
            return self.preprocess.batch([image])
        encoded = payload.get("images", [payload["image"]] if "image" in payload else None)
        if not (isinstance(encoded, list) and encoded and all(isinstance(e, str) for e in encoded)):
            raise BadRequestError(_JSON_SHAPES)
        self.preprocess.check_batch(len(encoded))
        return self.preprocess.batch([self._decode(_b64(text)) for text in encoded])

    # predict_fn / output_fn ---------------------------------------------------------------

    def predict_fn(self, data: Batch, model: ImageModel) -> Array:
        """Logits, one row per image."""
        return model.run(data)

    def output_fn(
        self, prediction: Array, accept: str | None, context: RequestContext
    ) -> tuple[bytes, str]:
        """Scores as JSON ``[[...]]`` or ``.npy``; top-k labels when asked for ``top_k``."""
        top_k = parse_top_k(context.custom_attributes)
        for part in (accept or JSON).split(","):
            kind = media_type(part)
            if kind in (JSON, ANY, "application/*", ""):
                if top_k is not None:
                    return json.dumps(self._top_k(prediction, top_k)).encode(), JSON
                return json.dumps(np.asarray(prediction).tolist()).encode(), JSON
            if kind == NPY and top_k is None:
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(prediction), allow_pickle=False)
                return buffer.getvalue(), NPY
        if top_k is not None:
            raise ValueError(
                f"unsupported accept type {accept!r} with top_k: top-k answers are {JSON}"
            )
        supported = ", ".join(OUTPUT_TYPES)
        raise ValueError(f"unsupported accept type {accept!r}; supported: {supported}")

    def _top_k(self, logits: Array, k: int) -> dict[str, Any]:
        scores = np.asarray(logits, dtype=np.float64)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        k = min(k, scores.shape[1])
        names = self.classes
        rows = []
        for row in scores:
            best = np.argsort(-row, kind="stable")[:k]
            rows.append(
                [
                    {
                        "label": names[i] if i < len(names) else str(i),
                        "index": int(i),
                        "score": float(row[i]),
                    }
                    for i in best
                ]
            )
        return {"predictions": rows}


_JSON_SHAPES = (
    'expected a JSON object {"url": "https://..."}, {"image": "<base64>"} or '
    '{"images": ["<base64>", ...]}'
)


def parse_top_k(attributes: str | None) -> int | None:
    """``top_k=N`` from custom attributes (``key=value`` pairs split by ``,`` or ``;``)."""
    if not attributes:
        return None
    for pair in _ATTRIBUTE_SEPARATORS.split(attributes):
        key, sep, value = pair.partition("=")
        if sep and key.strip().lower() == "top_k":
            text = value.strip()
            # isascii: int() takes other scripts' digits, and refuses over 4300 of them.
            if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
                raise BadRequestError(
                    f"top_k in X-Amzn-SageMaker-Custom-Attributes must be a whole number "
                    f"of at least 1, got {text!r}"
                )
            return int(text)
    return None


def _digest_or_none(folder: Path) -> str | None:
    """model.pth's digest; None if it cannot be read (then the ONNX file is all there is)."""
    try:
        return weights_digest(folder)
    except OSError as error:
        log.warning("cannot read model.pth to check model.onnx against it: %s", error)
        return None


def _raw(body: bytes | bytearray | str) -> bytes:
    if isinstance(body, bytes):
        return body
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


# What numpy raises for a malformed .npy header (it parses the header as a Python literal).
_NPY_HEADER_ERRORS = (ValueError, EOFError, OSError, SyntaxError, tokenize.TokenError)


def _load_npy(raw: bytes) -> Array:
    """The array of a .npy body, whose header must declare exactly the data that follows:
    numpy allocates what the header declares before reading, so a 100-byte body claiming
    a shape of (6000000000,) would otherwise ask for 24 GB."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"kennel reads .npy format 1.0 and 2.0, not {version[0]}.{version[1]}")
    except _NPY_HEADER_ERRORS as error:
        raise BadRequestError(f"the body is not a .npy array: {error}") from error
    if dtype.hasobject:
        raise BadRequestError("the .npy array holds Python objects (pickled); send numbers")
    declared = math.prod(shape) * dtype.itemsize
    sent = len(raw) - stream.tell()
    if declared != sent:
        raise BadRequestError(
            f"the .npy header declares a {dtype} array of shape {shape} ({declared} bytes), "
            f"but {sent} bytes follow it"
        )
    try:
        array: Array = np.load(io.BytesIO(raw), allow_pickle=False)
    except _NPY_HEADER_ERRORS as error:
        raise BadRequestError(f"the body is not a .npy array: {error}") from error
    if not isinstance(array, np.ndarray):
        raise BadRequestError("the body is not a single .npy array")
    return array


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequestError(f"the image is not valid base64: {error}") from error


# Selection by load_handlers -----------------------------------------------------------------


def image_handler_functions(
    model_dir: Path, environ: Mapping[str, str] | None = None
) -> HandlerFunctions:
    """The functions a built-in model is served with; ``KENNEL_MODEL_THREADS`` from
    ``environ`` sets ONNX Runtime's intra-op threads (the server puts its choice there)."""
    env = os.environ if environ is None else environ
    return ImageClassifierHandler(model_dir, threads=_threads(env), environ=env).functions()


def _vcpus(environ: Mapping[str, str]) -> int:
    """The instance's vCPUs (``KENNEL_INSTANCE_VCPUS``), else this machine's CPU count."""
    text = environ.get("KENNEL_INSTANCE_VCPUS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return os.cpu_count() or 1


def _threads(environ: Mapping[str, str]) -> int | None:
    text = environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ModelLoadError(f"{THREADS_ENV} must be a whole number, got {text!r}") from None
    if value < 1:
        raise ModelLoadError(f"{THREADS_ENV} must be at least 1, got {value}")
    return value
