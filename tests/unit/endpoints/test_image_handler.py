"""kennel's own handler for built-in trainer models: preprocessing, bodies, answers, backends.

Most tests call the handler in-process on a small CNN; the last ones run a real model
server on the ONNX export, as ``kennel serve-model`` runs it on an endpoint instance.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from tests.unit.endpoints._model_servers import (
    ModelServer,
    free_port,
    from_npy,
    npy,
    start_server,
    stop_server,
    wait_ready,
)

from kennel.endpoints import Handlers, InferenceRunner, RequestContext, load_handlers
from kennel.endpoints._batching import BatchingRunner
from kennel.endpoints._errors import status_for
from kennel.endpoints._image import ImageClassifierHandler, Preprocessor, parse_top_k
from kennel.endpoints._model_server import ServerOptions, create_app, serves_builtin_handler
from kennel.endpoints._onnx import export_onnx, import_handler
from kennel.endpoints._runner import Concurrency, choose_concurrency
from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network, eval_transform

SIZE = 32
CLASSES = [f"{i:03d}.class{i}" for i in range(1, 11)]
MEAN = (0.5, 0.45, 0.4)
STD = (0.25, 0.2, 0.3)


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields with blurred noise: decodes and resizes like a photo does."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    base = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return Image.blend(base, noise.filter(ImageFilter.GaussianBlur(2)), 0.3)


def _encode(image: Image.Image, kind: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **({"quality": 92} if kind == "JPEG" else {}))
    return buffer.getvalue()


def _write(root: Path, *, onnx: bool) -> Path:
    torch.manual_seed(1)
    model_dir = root / ("onnx" if onnx else "torch")
    config = {"arch": "small-cnn", "image_size": SIZE, "mean": MEAN, "std": STD}
    write_model_dir(model_dir, build_network("small-cnn", len(CLASSES)), CLASSES, config)
    if onnx:
        export_onnx(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-handler")
    onnx_dir = _write(root, onnx=True)
    torch_dir = root / "torch"
    shutil.copytree(onnx_dir, torch_dir)
    (torch_dir / "model.onnx").unlink()
    return {"onnx": onnx_dir, "torch": torch_dir}


@pytest.fixture(scope="module")
def onnx_handlers(model_dirs: dict[str, Path]) -> Handlers:
    handlers = load_handlers(model_dirs["onnx"], environ={"KENNEL_MODEL_THREADS": "1"})
    handlers.load()
    return handlers


@pytest.fixture(scope="module")
def own_code(model_dirs: dict[str, Path]) -> tuple[Any, Any]:
    """The model's own code/inference.py and what its model_fn loaded."""
    module = import_handler(model_dirs["torch"])
    return module, module.model_fn(str(model_dirs["torch"]))


def _handler(handlers: Handlers) -> ImageClassifierHandler:
    owner = getattr(handlers.functions.input_fn, "__self__", None)
    assert isinstance(owner, ImageClassifierHandler)
    return owner


def _scores(handlers: Handlers, body: bytes, content_type: str, **context: Any) -> Any:
    answer, kind = handlers(body, content_type, "application/json", RequestContext(**context))
    assert kind == "application/json"
    return json.loads(answer)


# Preprocessing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [(32, 32), (33, 32), (32, 33), (48, 32), (31, 77), (640, 480), (17, 9), (100, 100)],
)
def test_preprocessing_is_eval_transform(width: int, height: int) -> None:
    image = _photo(width, height, seed=width * height)
    expected = eval_transform(SIZE, MEAN, STD)(image).numpy()
    got = Preprocessor(SIZE, MEAN, STD)(image)
    assert got.shape == (3, SIZE, SIZE) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5


def test_preprocessing_at_224_is_eval_transform() -> None:
    image = _photo(300, 257, seed=3)
    expected = eval_transform(224)(image).numpy()
    assert np.abs(Preprocessor(224)(image) - expected).max() < 1e-5


def test_a_big_jpeg_is_drafted_yet_close_to_eval_transform(onnx_handlers: Handlers) -> None:
    """Draft mode decodes at a reduced scale (>= 2x the model's size): pixels move by a
    few grey levels at most, under one on average, and the answer stays the same."""
    photo = _encode(_photo(1200, 900, seed=5))
    full = eval_transform(SIZE, MEAN, STD)(Image.open(io.BytesIO(photo)).convert("RGB")).numpy()
    handler = _handler(onnx_handlers)
    drafted = handler.input_fn(photo, "image/jpeg")
    assert drafted.shape == (1, 3, SIZE, SIZE)
    grey_levels = np.abs(drafted[0] - full) * np.asarray(STD).reshape(3, 1, 1) * 255
    assert grey_levels.max() <= 8 and grey_levels.mean() <= 1, grey_levels.max()
    model = onnx_handlers.model
    logits_full = model.run(full[None])
    logits_drafted = model.run(drafted)
    assert np.argmax(logits_full) == np.argmax(logits_drafted)
    assert np.abs(logits_full - logits_drafted).max() < 0.05 * np.abs(logits_full).max()


# Selection and model_fn ----------------------------------------------------------------------


def test_load_handlers_picks_the_image_handler_for_builtin_models_only(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    _handler(load_handlers(model_dirs["torch"], environ={}))
    edited = tmp_path / "edited"
    shutil.copytree(model_dirs["torch"], edited)
    script = edited / "code" / "inference.py"
    script.write_text(script.read_text().replace("KENNEL_BUILTIN_HANDLER = ", "_UNUSED = "))
    handlers = load_handlers(edited, environ={})
    assert handlers.functions.input_fn.__module__.startswith("kennel_model_code_")
    assert not serves_builtin_handler(edited, {})
    assert serves_builtin_handler(model_dirs["torch"], {})


def test_model_fn_runs_onnx_with_the_threads_given(onnx_handlers: Handlers) -> None:
    model = onnx_handlers.model
    assert model.backend == "onnxruntime" and model.threads == 1
    assert model.session.get_session_options().intra_op_num_threads == 1


def test_without_onnx_the_models_own_code_builds_the_torch_network(
    model_dirs: dict[str, Path], onnx_handlers: Handlers
) -> None:
    handlers = load_handlers(model_dirs["torch"], environ={})
    handlers.load()
    assert handlers.model.backend == "torch"
    batch = np.random.default_rng(0).normal(size=(4, 3, SIZE, SIZE)).astype(np.float32)
    np.testing.assert_allclose(
        handlers.model.run(batch), onnx_handlers.model.run(batch), rtol=1e-4, atol=1e-4
    )


def test_an_onnx_file_of_other_weights_is_not_used(
    model_dirs: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = tmp_path / "retrained"
    shutil.copytree(model_dirs["onnx"], model_dir)
    torch.save(build_network("small-cnn", len(CLASSES)).state_dict(), model_dir / "model.pth")
    handlers = load_handlers(model_dir, environ={})
    with caplog.at_level(logging.WARNING, logger="kennel.endpoints._image"):
        handlers.load()
    assert handlers.model.backend == "torch"
    assert "other weights" in caplog.text


def test_without_model_pth_the_onnx_file_is_all_there_is_and_serves(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = tmp_path / "onnx-only"
    shutil.copytree(model_dirs["onnx"], model_dir)
    (model_dir / "model.pth").unlink()
    handlers = load_handlers(model_dir, environ={})
    handlers.load()
    assert handlers.model.backend == "onnxruntime"


def test_a_broken_onnx_file_falls_back_to_torch(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = tmp_path / "broken"
    shutil.copytree(model_dirs["torch"], model_dir)
    (model_dir / "model.onnx").write_bytes(b"not an onnx model")
    handlers = load_handlers(model_dir, environ={})
    handlers.load()
    assert handlers.model.backend == "torch"


# input_fn ------------------------------------------------------------------------------------


def test_image_bodies_give_the_same_scores_as_the_models_own_handler(
    onnx_handlers: Handlers, own_code: tuple[Any, Any]
) -> None:
    module, loaded = own_code
    photo = _photo(40, 56, seed=9)
    for body, kind in (
        (_encode(photo), "image/jpeg"),
        (_encode(photo, "PNG"), "image/png"),
        (_encode(photo), "application/x-image"),
        (_encode(photo.convert("RGBA"), "PNG"), "image/png"),
        (_encode(photo.convert("L")), "image/jpeg"),
    ):
        [ours] = _scores(onnx_handlers, body, kind)
        theirs = json.loads(
            module.output_fn(module.predict_fn(module.input_fn(body, kind), loaded), None)
        )[0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4, err_msg=kind)


def test_npy_images_and_preprocessed_batches(onnx_handlers: Handlers) -> None:
    handler = _handler(onnx_handlers)
    pixels = np.asarray(_photo(40, 30, seed=2))
    one = handler.input_fn(npy(pixels), "application/x-npy")
    two = handler.input_fn(npy(np.stack([pixels, pixels[::-1]])), "application/x-npy")
    assert one.shape == (1, 3, SIZE, SIZE) and two.shape == (2, 3, SIZE, SIZE)
    np.testing.assert_array_equal(two[0], one[0])
    floats = np.random.default_rng(1).normal(size=(3, SIZE, SIZE))
    np.testing.assert_array_equal(
        handler.input_fn(npy(floats), "application/x-npy"), floats[None].astype(np.float32)
    )
    assert handler.input_fn(npy(np.stack([floats] * 3)), "application/x-npy").shape[0] == 3
    assert len(_scores(onnx_handlers, npy(np.stack([floats] * 3)), "application/x-npy")) == 3


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((3, 16, 16), dtype=np.float32),  # not the model's size
        np.zeros((4, 4), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((0, 3, SIZE, SIZE), dtype=np.float32),
        np.zeros((2, 3, SIZE, SIZE), dtype=np.int64),
    ],
    ids=["wrong-size", "2d", "rgba", "empty", "int64"],
)
def test_npy_of_another_shape_is_a_400_that_says_what_fits(
    onnx_handlers: Handlers, array: Any
) -> None:
    with pytest.raises(ValueError, match=f"Nx3x{SIZE}x{SIZE}") as caught:
        _handler(onnx_handlers).input_fn(npy(array), "application/x-npy")
    assert status_for("input_fn", caught.value) == 400


def test_json_base64_image_and_images(onnx_handlers: Handlers) -> None:
    handler = _handler(onnx_handlers)
    jpeg = base64.b64encode(_encode(_photo(50, 40))).decode()
    assert handler.input_fn(json.dumps({"image": jpeg}), "application/json").shape[0] == 1
    assert handler.input_fn(json.dumps({"images": [jpeg] * 2}), "application/json").shape[0] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"images": []}', "expected a JSON object"),
        ('{"image": "***"}', "not valid base64"),
        ('{"url": 7}', '"url" must be a string'),
        ('{"url": "file:///etc/passwd"}', "only http:// and https://"),
        ('{"url": "http://127.0.0.1:9/x.jpg"}', "loopback"),
    ],
)
def test_bad_json_bodies_are_400(onnx_handlers: Handlers, body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _handler(onnx_handlers).input_fn(body, "application/json")
    assert status_for("input_fn", caught.value) == 400


@pytest.fixture
def image_site() -> Iterator[str]:
    """A local web server with one JPEG at /cat.jpg."""
    jpeg = _encode(_photo(64, 48, seed=4))

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/cat.jpg"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(jpeg)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_is_fetched_when_its_network_is_allowed(
    model_dirs: dict[str, Path], image_site: str, onnx_handlers: Handlers
) -> None:
    env = {"KENNEL_FETCH_ALLOW_NETWORKS": "127.0.0.0/8"}
    handler = ImageClassifierHandler(model_dirs["onnx"], environ=env)
    batch = handler.input_fn(json.dumps({"url": f"{image_site}/cat.jpg"}), "application/json")
    jpeg = _encode(_photo(64, 48, seed=4))
    np.testing.assert_array_equal(batch, handler.input_fn(jpeg, "image/jpeg"))
    with pytest.raises(ValueError, match="answered 404") as caught:
        handler.input_fn(json.dumps({"url": f"{image_site}/dog.jpg"}), "application/json")
    assert status_for("input_fn", caught.value) == 400


def test_unsupported_and_unreadable_bodies_answer_as_the_trainers_handler_does(
    onnx_handlers: Handlers,
) -> None:
    handler = _handler(onnx_handlers)
    with pytest.raises(ValueError, match="unsupported content type 'text/plain'") as caught:
        handler.input_fn(b"hello", "text/plain")
    assert type(caught.value) is ValueError and "image/jpeg" in str(caught.value)
    assert status_for("input_fn", caught.value) == 415
    with pytest.raises(ValueError, match="^the body is not a readable image") as caught:
        handler.input_fn(b"not a jpeg", "image/jpeg")
    assert status_for("input_fn", caught.value) == 500  # as the trainer's handler (pinned)


def test_a_decompression_bomb_is_refused_before_decoding(onnx_handlers: Handlers) -> None:
    bomb = _encode(Image.new("L", (8000, 6000)), "PNG")  # 48 MP, a small file
    with pytest.raises(ValueError, match="refusing to decode") as caught:
        _handler(onnx_handlers).input_fn(bomb, "image/png")
    assert status_for("input_fn", caught.value) == 400


# output_fn -----------------------------------------------------------------------------------


def test_top_k_is_read_from_the_custom_attributes() -> None:
    assert parse_top_k(None) is None
    assert parse_top_k("trace=1") is None
    assert parse_top_k("top_k=3") == 3
    assert parse_top_k("a=1; top_k = 2 ,b=x") == 2
    for bad in ("top_k=0", "top_k=-1", "top_k=two", "top_k="):
        with pytest.raises(ValueError, match="top_k") as caught:
            parse_top_k(bad)
        assert status_for("output_fn", caught.value) == 400


def test_top_k_answers_labels_and_softmax_scores(onnx_handlers: Handlers) -> None:
    body = _encode(_photo(32, 32, seed=6))
    [logits] = _scores(onnx_handlers, body, "image/jpeg")
    answer = _scores(onnx_handlers, body, "image/jpeg", custom_attributes="top_k=3")
    [best] = answer["predictions"]
    probabilities = np.exp(np.asarray(logits) - max(logits))
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities)[:3]
    assert [p["index"] for p in best] == order.tolist()
    assert [p["label"] for p in best] == [CLASSES[i] for i in order]
    np.testing.assert_allclose([p["score"] for p in best], probabilities[order], rtol=1e-5)
    everything = _scores(onnx_handlers, body, "image/jpeg", custom_attributes="top_k=99")
    assert len(everything["predictions"][0]) == len(CLASSES)
    assert sum(p["score"] for p in everything["predictions"][0]) == pytest.approx(1.0)


def test_npy_out_and_unsupported_accept_types(onnx_handlers: Handlers) -> None:
    body = _encode(_photo(32, 32, seed=7))
    answer, kind = onnx_handlers(body, "image/jpeg", "application/x-npy", RequestContext())
    assert kind == "application/x-npy" and from_npy(answer).shape == (1, len(CLASSES))
    handler = _handler(onnx_handlers)
    scores = np.zeros((1, len(CLASSES)), dtype=np.float32)
    with pytest.raises(ValueError, match="unsupported accept type 'text/csv'") as caught:
        handler.output_fn(scores, "text/csv", RequestContext())
    assert status_for("output_fn", caught.value) == 406
    with pytest.raises(ValueError, match="top-k answers are application/json") as caught:
        handler.output_fn(scores, "application/x-npy", RequestContext(custom_attributes="top_k=1"))
    assert status_for("output_fn", caught.value) == 406


# Concurrency settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vcpus", "expected"),
    [(1, (1, 1)), (2, (2, 1)), (4, (4, 1)), (6, (3, 2)), (8, (4, 2)), (16, (4, 4))],
)
def test_builtin_models_get_single_threaded_workers_per_vcpu(
    vcpus: int, expected: tuple[int, int]
) -> None:
    assert choose_concurrency(builtin=True, vcpus=vcpus) == Concurrency(*expected)


def test_given_settings_are_kept_and_the_rest_derived() -> None:
    assert choose_concurrency(builtin=True, vcpus=8, workers=1) == Concurrency(1, 8)
    assert choose_concurrency(builtin=True, vcpus=8, threads=4) == Concurrency(2, 4)
    assert choose_concurrency(builtin=True, vcpus=2, workers=3, threads=3) == Concurrency(3, 3)
    assert choose_concurrency(builtin=True, cpu_count=2) == Concurrency(2, 1)
    assert choose_concurrency(builtin=False, cpu_count=2) == Concurrency(1, None)
    assert choose_concurrency(builtin=False, vcpus=4) == Concurrency(1, 4)
    assert choose_concurrency(builtin=False, vcpus=4, workers=2) == Concurrency(2, 2)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        choose_concurrency(builtin=True, workers=0)


def test_builtin_models_decode_on_threads_of_their_own(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    builtin = create_app(model_dirs["onnx"], environ={}, vcpus=2).runner
    assert isinstance(builtin, BatchingRunner)
    assert (builtin.max_batch_size, builtin.workers) == (1, 2)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return 1\n")
    custom = create_app(tmp_path, environ={}, vcpus=2).runner
    assert type(custom) is InferenceRunner
    batching = create_app(tmp_path, environ={}, max_batch_size=3).runner
    assert isinstance(batching, BatchingRunner) and batching.max_batch_size == 3
    for runner in (builtin, custom, batching):
        runner.close()


def test_server_options_read_the_instance_and_batching_variables() -> None:
    env = {
        "KENNEL_INSTANCE_VCPUS": "4",
        "KENNEL_MAX_BATCH_SIZE": "8",
        "KENNEL_MAX_BATCH_DELAY_MS": "2.5",
        "KENNEL_MODEL_THREADS": "2",
    }
    options = ServerOptions.resolve(environ=env)
    assert (options.vcpus, options.max_batch_size, options.max_batch_delay_ms) == (4, 8, 2.5)
    assert options.concurrency_settings() == (None, 2)
    assert ServerOptions.resolve(environ={}).concurrency_settings() == (None, None)
    given = ServerOptions.resolve(workers=3, environ={})
    assert given.concurrency_settings() == (3, None)
    for name, value in (("KENNEL_MAX_BATCH_DELAY_MS", "-1"), ("KENNEL_INSTANCE_VCPUS", "0")):
        with pytest.raises(ValueError, match=name):
            ServerOptions.resolve(environ={name: value})


# A real model server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServer]:
    logs = tmp_path_factory.mktemp("image-server")
    env = {"KENNEL_INSTANCE_VCPUS": "2", "KENNEL_FETCH_ALLOW_NETWORKS": "127.0.0.0/8"}
    server = start_server(model_dirs["onnx"], logs / "server.log", port=free_port(), env=env)
    try:
        yield wait_ready(server)
    finally:
        assert stop_server(server) == 0, server.explain()


def test_the_server_runs_onnx_without_importing_torch(served: ModelServer) -> None:
    log = served.log.read_text()
    assert "built-in image model: 2 workers x 1 intra-op threads" in log, served.explain()
    assert "with ONNX Runtime" in log, served.explain()
    maps = Path(f"/proc/{served.process.pid}/maps")
    if maps.exists():
        assert "libtorch" not in maps.read_text(), "the ONNX path imported torch"


def test_the_server_answers_scores_top_k_and_errors(
    served: ModelServer, onnx_handlers: Handlers, image_site: str
) -> None:
    jpeg = _encode(_photo(64, 80, seed=8))
    with served.client() as client:
        scores = client.post("/invocations", content=jpeg, headers={"Content-Type": "image/jpeg"})
        assert scores.status_code == 200, scores.text
        np.testing.assert_allclose(
            scores.json(), _scores(onnx_handlers, jpeg, "image/jpeg"), rtol=1e-5, atol=1e-5
        )
        top = client.post(
            "/invocations",
            content=jpeg,
            headers={
                "Content-Type": "image/jpeg",
                "X-Amzn-SageMaker-Custom-Attributes": "top_k=2",
            },
        )
        assert top.status_code == 200 and len(top.json()["predictions"][0]) == 2
        fetched = client.post("/invocations", json={"url": f"{image_site}/cat.jpg"})
        assert fetched.status_code == 200, fetched.text
        statuses = {
            "415": client.post("/invocations", content=b"x", headers={"Content-Type": "text/x"}),
            "406": client.post(
                "/invocations",
                content=jpeg,
                headers={"Content-Type": "image/jpeg", "Accept": "text/csv"},
            ),
            "400": client.post(
                "/invocations",
                content=jpeg,
                headers={
                    "Content-Type": "image/jpeg",
                    "X-Amzn-SageMaker-Custom-Attributes": "top_k=many",
                },
            ),
        }
    for status, answer in statuses.items():
        assert str(answer.status_code) == status, answer.text
