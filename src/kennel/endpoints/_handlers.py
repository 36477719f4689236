"""The user API of a model server: SageMaker's handler functions, loaded from a model dir.

A model dir holds the model files and, usually, ``code/inference.py`` with the SageMaker
PyTorch handler functions ``model_fn(model_dir)``, ``input_fn(body, content_type)``,
``predict_fn(data, model)`` and ``output_fn(prediction, accept)``. Each missing function
gets the PyTorch toolkit's default (TorchScript model; JSON, NPY and CSV in and out), so
scripts written for SageMaker run unchanged. As in the toolkit, a function may take one
more argument, the request context (:class:`RequestContext`), and ``transform_fn(model,
body, content_type, accept)`` may replace the last three.

When a handler raises, :class:`HandlerError` says which one and which HTTP status the
server answers with (see ``_errors``). Missing functions come from ``_defaults``.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kennel.endpoints._defaults import (
    default_input_fn,
    default_model_fn,
    default_output_fn,
    default_predict_fn,
)
from kennel.endpoints._errors import BadRequestError, HandlerError, ModelLoadError
from kennel.endpoints._media import ANY, JSON, UTF8_TYPES, first_media_type, media_type

log = logging.getLogger(__name__)

DEFAULT_PROGRAM = "inference.py"
CONTAINER_MODEL_DIR = "/opt/ml/model"
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"

Caller = Callable[[Any, Any, "RequestContext"], Any]
"""A two-argument handler function, called with the context only if it takes one."""


# The request context --------------------------------------------------------------------


@dataclass(slots=True)
class RequestContext:
    """What a handler that takes a ``context`` argument gets: the request's custom attributes.

    ``get_request_header`` / ``set_response_header`` mirror the model server context
    SageMaker passes (index 0 is the only request), so scripts that read
    ``X-Amzn-SageMaker-Custom-Attributes`` that way work unchanged. Only the custom
    attributes travel: a handler that sets them gets them echoed in the response header;
    otherwise the response carries none.
    """

    custom_attributes: str | None = None
    response_custom_attributes: str | None = None
    model_dir: str | None = None

    def get_request_header(self, idx: int, key: str) -> str | None:
        """The request header ``key`` (case-insensitive); only custom attributes are kept."""
        return self.custom_attributes if key.lower() == CUSTOM_ATTRIBUTES_HEADER else None

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        """Set a response header; only ``X-Amzn-SageMaker-Custom-Attributes`` is sent."""
        if key.lower() == CUSTOM_ATTRIBUTES_HEADER:
            self.response_custom_attributes = value
        else:
            log.debug("response header %s from a handler is not forwarded", key)


# The handler set ------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlerFunctions:
    """The four functions (or ``transform_fn``) a model is served with, and where they came from."""

    model_fn: Callable[..., Any]
    input_fn: Callable[..., Any]
    predict_fn: Callable[..., Any]
    output_fn: Callable[..., Any]
    transform_fn: Callable[..., Any] | None = None
    source: Path | None = None
    """The user's script, or None when every function is a default."""


@dataclass
class _Callers:
    """The functions, each wrapped once so the hot path does not inspect signatures."""

    input_fn: Caller
    predict_fn: Caller
    output_fn: Caller
    transform_fn: Callable[[Any, Any, str, str, RequestContext], Any] | None = None


class Handlers:
    """One model's handler functions: ``load()`` once, then call once per request.

    Calling runs input_fn -> predict_fn -> output_fn (or transform_fn) and returns the
    response body and its content type. It is thread-safe as far as the user's functions
    are; the runner decides how many calls run at once.
    """

    def __init__(
        self, model_dir: Path, functions: HandlerFunctions, *, default_accept: str = JSON
    ) -> None:
        self.model_dir = model_dir
        self.functions = functions
        self.default_accept = default_accept
        self._callers = _wrap_all(functions)
        self._model: Any = None
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def model(self) -> Any:
        """What ``model_fn`` returned."""
        if not self._loaded:
            raise RuntimeError("call load() before using the model")
        return self._model

    def load(self) -> None:
        """Run ``model_fn(model_dir)``; slow (it reads the weights), so callers run it once."""
        context = RequestContext(model_dir=str(self.model_dir))
        try:
            self._model = _call_with_context(
                self.functions.model_fn, "model_fn", (str(self.model_dir),), context
            )
        except ModelLoadError:
            raise
        except Exception as error:
            raise ModelLoadError(
                f"model_fn failed: {type(error).__name__}: {error}",
                hint=f"Check model_fn in {self.functions.source or 'the default handler'}.",
            ) from error
        self._loaded = True

    def __call__(
        self,
        body: bytes,
        content_type: str,
        accept: str | None,
        context: RequestContext | None = None,
    ) -> tuple[bytes, str]:
        """Serve one request: the encoded prediction and its content type."""
        model = self.model
        context = context if context is not None else RequestContext()
        if not accept or accept == ANY:
            accept = self.default_accept
        payload: bytes | str = _decode_text(body, content_type)
        callers = self._callers
        if callers.transform_fn is not None:
            result = _stage(
                "transform_fn", callers.transform_fn, model, payload, content_type, accept, context
            )
        else:
            data = _stage("input_fn", callers.input_fn, payload, content_type, context)
            prediction = _stage("predict_fn", callers.predict_fn, data, model, context)
            result = _stage("output_fn", callers.output_fn, prediction, accept, context)
        return _response(result, accept)


def _stage(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    """Call one handler function, turning its exception into a :class:`HandlerError`."""
    try:
        return function(*args)
    except Exception as error:
        raise HandlerError(stage, error) from error


def _decode_text(body: bytes, content_type: str) -> bytes | str:
    """JSON and CSV bodies reach input_fn as ``str``, as the SageMaker toolkit hands them."""
    if media_type(content_type) not in UTF8_TYPES:
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = BadRequestError(f"the {media_type(content_type)} body is not UTF-8: {error}")
        raise HandlerError("input_fn", problem) from error


def _response(result: Any, accept: str) -> tuple[bytes, str]:
    """``output_fn``'s result as (bytes, content type): a body, or a (body, type) tuple."""
    if isinstance(result, tuple):
        if len(result) != 2:
            raise HandlerError("output_fn", TypeError(_BAD_RESULT.format(f"a {len(result)}-tuple")))
        body, content_type = result
    else:
        body, content_type = result, first_media_type(accept)
    if isinstance(body, str):
        return body.encode("utf-8"), str(content_type)
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), str(content_type)
    raise HandlerError("output_fn", TypeError(_BAD_RESULT.format(type(body).__name__)))


_BAD_RESULT = "output_fn returned {}; return bytes, str or a (body, content_type) tuple"


# Wrapping functions by their signature --------------------------------------------------


def _positional_count(function: Callable[..., Any]) -> int | None:
    """How many positional arguments ``function`` takes; None if it takes ``*args``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(kind in positional for kind in kinds)


def _takes_context(function: Callable[..., Any], name: str, arity: int) -> bool:
    """True if ``function`` takes the context as an extra last argument (toolkit rule)."""
    count = _positional_count(function)
    if count is None or count == arity:
        return False
    if count == arity + 1:
        return True
    raise ModelLoadError(
        f"{name} takes {count} arguments; expected {arity} (or {arity + 1} with a context)",
        hint="Use the SageMaker handler signatures, e.g. input_fn(body, content_type).",
    )


def _call_with_context(
    function: Callable[..., Any], name: str, args: tuple[Any, ...], context: RequestContext
) -> Any:
    if _takes_context(function, name, len(args)):
        return function(*args, context)
    return function(*args)


def _wrap(function: Callable[..., Any], name: str) -> Caller:
    if _takes_context(function, name, 2):
        return function
    return lambda first, second, _context: function(first, second)


def _wrap_transform(
    function: Callable[..., Any],
) -> Callable[[Any, Any, str, str, RequestContext], Any]:
    if _takes_context(function, "transform_fn", 4):
        return function
    return lambda model, body, content_type, accept, _context: function(
        model, body, content_type, accept
    )


def _wrap_all(functions: HandlerFunctions) -> _Callers:
    transform = functions.transform_fn
    return _Callers(
        input_fn=_wrap(functions.input_fn, "input_fn"),
        predict_fn=_wrap(functions.predict_fn, "predict_fn"),
        output_fn=_wrap(functions.output_fn, "output_fn"),
        transform_fn=_wrap_transform(transform) if transform is not None else None,
    )


# Finding and importing the user's script ------------------------------------------------


def load_handlers(model_dir: Path, environ: Mapping[str, str] | None = None) -> Handlers:
    """The handlers for ``model_dir``: the user's script where it has them, else defaults.

    The script is ``SAGEMAKER_PROGRAM`` (default ``inference.py``) in
    ``SAGEMAKER_SUBMIT_DIRECTORY`` when that is a local folder (``/opt/ml/model/...``
    is read as ``model_dir/...``), else in ``model_dir/code``. The model is not loaded
    yet: call ``load()``, which is the slow part.

    A built-in trainer model whose ``code/inference.py`` is unmodified (it keeps its
    ``KENNEL_BUILTIN_HANDLER`` line) is served with kennel's own image handler
    (``_image``: ONNX Runtime when exported, faster preprocessing) instead of that script.
    """
    env = os.environ if environ is None else environ
    model_dir = Path(model_dir)
    script = find_script(model_dir, env)
    # Imported here: the ONNX and image modules are for built-in models only.
    from kennel.endpoints._onnx import is_builtin_model

    if script is not None and is_builtin_model(model_dir, script):
        from kennel.endpoints._image import image_handler_functions

        functions = image_handler_functions(model_dir, env)
    else:
        module = _import_script(script) if script is not None else None
        functions = _functions_from(module, script)
    default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON
    return Handlers(model_dir, functions, default_accept=default_accept)


def find_script(model_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """The handler script to import, or None when the model has none (defaults only)."""
    program = environ.get("SAGEMAKER_PROGRAM", "").strip()
    name = program or DEFAULT_PROGRAM
    if not name.endswith(".py"):
        name += ".py"
    script = _code_dir(model_dir, environ.get("SAGEMAKER_SUBMIT_DIRECTORY", "")) / name
    if script.is_file():
        return script
    if program:
        raise ModelLoadError(
            f"SAGEMAKER_PROGRAM names {program!r} but {script} does not exist",
            hint="Put the script in the model's code/ folder or fix SAGEMAKER_PROGRAM.",
        )
    return None


def _code_dir(model_dir: Path, submit_directory: str) -> Path:
    submit = submit_directory.strip()
    if submit == CONTAINER_MODEL_DIR or submit.startswith(CONTAINER_MODEL_DIR + "/"):
        return model_dir / submit[len(CONTAINER_MODEL_DIR) :].lstrip("/")
    if submit and "://" not in submit and Path(submit).is_dir():
        return Path(submit)
    if submit:
        log.debug("SAGEMAKER_SUBMIT_DIRECTORY %s is not a local folder; using code/", submit)
    return model_dir / "code"


def _import_script(script: Path) -> ModuleType:
    """Import ``script`` under a unique name, with its folder importable for its own imports.

    The module is in ``sys.modules`` before it runs because dataclasses (and pickle) look
    their module up by name while it is being defined; the unique name keeps two models in
    one process apart.
    """
    name = f"kennel_model_code_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{script} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ModelLoadError(
            f"importing {script} failed: {type(error).__name__}: {error}",
            hint="Run the script with `python` in the model dir's code/ folder to see the error.",
        ) from error
    return module


def _functions_from(module: ModuleType | None, source: Path | None) -> HandlerFunctions:
    found = {name: _function(module, name) for name in _HANDLER_NAMES}
    transform = found.pop("transform_fn")
    if transform is not None and any(found[n] for n in ("input_fn", "predict_fn", "output_fn")):
        raise ModelLoadError(
            f"{source} defines transform_fn and input_fn/predict_fn/output_fn",
            hint="Define transform_fn alone, or the three functions without it.",
        )
    return HandlerFunctions(
        model_fn=found["model_fn"] or default_model_fn,
        input_fn=found["input_fn"] or default_input_fn,
        predict_fn=found["predict_fn"] or default_predict_fn,
        output_fn=found["output_fn"] or default_output_fn,
        transform_fn=transform,
        source=source,
    )


_HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


def _function(module: ModuleType | None, name: str) -> Callable[..., Any] | None:
    value = getattr(module, name, None) if module is not None else None
    if value is not None and not callable(value):
        raise ModelLoadError(f"{name} in {module.__file__ if module else '?'} is not a function")
    return value
