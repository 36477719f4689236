"""Handler loading and calling, in process: script discovery, defaults, errors, settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from kennel.endpoints import (
    HandlerError,
    InferenceRunner,
    Invocation,
    ModelLoadError,
    ModelNotReadyError,
    ModelStatus,
    RequestContext,
    ServerOptions,
    load_handlers,
)
from kennel.endpoints._errors import status_for


def _script(model: Path, text: str, name: str = "inference.py") -> Path:
    (model / "code").mkdir(parents=True, exist_ok=True)
    script = model / "code" / name
    script.write_text(text, encoding="utf-8")
    return script


def test_a_model_without_code_gets_every_default(scripted_model: Path) -> None:
    handlers = load_handlers(scripted_model, environ={})
    assert handlers.functions.source is None
    handlers.load()
    body, content_type = handlers(b"[[1, 1, 1]]", "application/json", None)
    assert (json.loads(body), content_type) == ([[6.5, -1.0]], "application/json")


def test_missing_functions_fall_back_to_the_defaults(tmp_path: Path, scripted_model: Path) -> None:
    (tmp_path / "model.pth").write_bytes((scripted_model / "model.pth").read_bytes())
    _script(tmp_path, "def output_fn(prediction, accept):\n    return str(prediction.shape)\n")
    handlers = load_handlers(tmp_path, environ={})
    handlers.load()
    assert handlers(b"[[1, 1, 1]]", "application/json", "text/plain") == (
        b"torch.Size([1, 2])",
        "text/plain",
    )


def test_sagemaker_program_picks_the_script(tmp_path: Path) -> None:
    _script(tmp_path, "def model_fn(model_dir):\n    return 'default'\n")
    _script(tmp_path, "def model_fn(model_dir):\n    return 'chosen'\n", name="serve.py")
    handlers = load_handlers(tmp_path, environ={"SAGEMAKER_PROGRAM": "serve.py"})
    handlers.load()
    assert handlers.model == "chosen"
    with pytest.raises(ModelLoadError, match="SAGEMAKER_PROGRAM names 'missing.py'"):
        load_handlers(tmp_path, environ={"SAGEMAKER_PROGRAM": "missing.py"})


def test_a_container_submit_directory_means_the_model_dir(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "inference.py").write_text("def model_fn(d):\n    return 'src'\n")
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/src"}
    handlers = load_handlers(tmp_path, environ=env)
    assert handlers.functions.source == tmp_path / "src" / "inference.py"


def test_a_state_dict_needs_a_model_fn_and_the_error_says_so(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "model.pth")
    handlers = load_handlers(tmp_path, environ={})
    with pytest.raises(ModelLoadError, match="not a TorchScript model, so it needs a model_fn"):
        handlers.load()


def test_a_script_that_fails_to_import_names_itself(tmp_path: Path) -> None:
    script = _script(tmp_path, "import no_such_module_for_kennel\n")
    with pytest.raises(ModelLoadError, match=f"importing {script} failed: ModuleNotFoundError"):
        load_handlers(tmp_path, environ={})


def test_wrong_signatures_are_rejected_at_load(tmp_path: Path) -> None:
    _script(tmp_path, "def input_fn(a, b, c, d):\n    return a\n")
    with pytest.raises(ModelLoadError, match="input_fn takes 4 arguments; expected 2"):
        load_handlers(tmp_path, environ={})


def test_transform_fn_replaces_the_three_functions(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "def model_fn(model_dir):\n    return 2\n"
        "def transform_fn(model, body, content_type, accept):\n"
        "    return (body * model, content_type)\n",
    )
    handlers = load_handlers(tmp_path, environ={})
    handlers.load()
    assert handlers(b"ab", "application/octet-stream", None) == (
        b"abab",
        "application/octet-stream",
    )


def test_output_of_the_wrong_type_is_a_500_handler_error(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "def model_fn(d):\n    return None\n"
        "def input_fn(body, content_type):\n    return body\n"
        "def predict_fn(data, model):\n    return data\n"
        "def output_fn(prediction, accept):\n    return {'not': 'bytes'}\n",
    )
    handlers = load_handlers(tmp_path, environ={})
    handlers.load()
    with pytest.raises(HandlerError) as caught:
        handlers(b"x", "application/octet-stream", None)
    assert caught.value.status == 500 and caught.value.error_type == "TypeError"
    assert "return bytes, str or a (body, content_type) tuple" in caught.value.message


def test_context_reaches_functions_that_take_one(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "def model_fn(model_dir, context):\n    return context.model_dir\n"
        "def input_fn(body, content_type, context):\n"
        "    return context.get_request_header(0, 'X-Amzn-SageMaker-Custom-Attributes')\n"
        "def predict_fn(data, model):\n    return data\n"
        "def output_fn(prediction, accept):\n    return prediction\n",
    )
    handlers = load_handlers(tmp_path, environ={})
    handlers.load()
    assert handlers.model == str(tmp_path)
    answer = handlers(b"", "x/y", "text/plain", RequestContext(custom_attributes="a=1"))
    assert answer == (b"a=1", "text/plain")


def test_statuses_for_handler_exceptions() -> None:
    class ToolkitError(Exception):
        status_code = 422

    assert status_for("predict_fn", ToolkitError()) == 422
    content_type = ValueError("Content type image/gif is not supported by this framework.")
    assert status_for("input_fn", content_type) == 415
    assert status_for("predict_fn", content_type) == 500
    assert status_for("output_fn", ValueError("unsupported accept type 'x/y'")) == 406
    assert status_for("input_fn", ValueError("the body is not a readable image")) == 500
    assert status_for("input_fn", KeyError("image")) == 500


def test_options_take_arguments_then_environment_then_defaults() -> None:
    env = {
        "SAGEMAKER_BIND_TO_PORT": "9001",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "KENNEL_MODEL_THREADS": "2",
    }
    assert ServerOptions.resolve(environ={}) == ServerOptions("127.0.0.1", 8080, 1, None)
    assert ServerOptions.resolve(environ=env) == ServerOptions("127.0.0.1", 9001, 3, 2)
    given = ServerOptions.resolve("0.0.0.0", 7000, workers=1, threads=4, environ=env)
    assert given == ServerOptions("0.0.0.0", 7000, 1, 4)
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS must be at least 1"):
        ServerOptions.resolve(environ={"SAGEMAKER_MODEL_SERVER_WORKERS": "0"})


def test_a_failed_load_is_reported_and_invocations_are_refused(tmp_path: Path) -> None:
    _script(tmp_path, "def model_fn(model_dir):\n    raise OSError('weights missing')\n")
    runner = InferenceRunner(lambda: load_handlers(tmp_path, environ={}))
    runner.start()
    assert runner.wait_loaded(timeout=30) is ModelStatus.FAILED
    assert runner.failure is not None and "weights missing" in runner.failure
    with pytest.raises(ModelNotReadyError, match="failed to load"):
        asyncio.run(runner.invoke(Invocation(b"", "text/plain", None)))
    runner.close()
