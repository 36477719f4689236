"""ONNX for the built-in trainer's image models: recognise them, export them, check the export.

A model dir is *built-in* when ``kennel.trainer`` wrote it and nobody changed its handler:
``model-config.json`` names an architecture the handler can build and ``code/inference.py``
still carries the marker line ``KENNEL_BUILTIN_HANDLER = "image-classifier/1"`` (the file
tells users to delete that line to have their own edits served as they are). kennel then
serves it with its own fast handler (``_image``) instead of the model's code, and can run
it with ONNX Runtime instead of PyTorch, which on a CPU is what makes it fast.

:func:`export_onnx` rebuilds the network with the model dir's own ``model_fn`` (so the
architecture is the one the model was trained with, not whatever this kennel has),
exports it with a dynamic batch axis, records the weights' SHA-256 in the ONNX metadata
(so a server never runs an ONNX file that belongs to other weights) and then checks ONNX
Runtime's logits against PyTorch's on a random batch before the file gets its final name.

Nothing here imports torch or onnxruntime until a function needs them: the model server
imports this module for every model, most of which never touch either.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kennel.endpoints._errors import ModelLoadError

ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "model.pth"
CONFIG_FILE = "model-config.json"
CLASSES_FILE = "classes.json"
HANDLER_FILE = Path("code") / "inference.py"
HANDLER_VERSION = "image-classifier/1"
"""The built-in handler contract this kennel serves; the marker in code/inference.py."""
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
WEIGHTS_DIGEST_KEY = "kennel.weights_sha256"
"""ONNX metadata: the SHA-256 of the model.pth the file was exported from."""
HANDLER_KEY = "kennel.handler"

RELATIVE_TOLERANCE = 1e-3
"""How far ONNX Runtime's logits may be from PyTorch's, relative to the largest logit.

Both compute in float32; ONNX Runtime folds batch norm into the convolutions and sums in
another order, which moves ResNet-50 logits by about 1e-6 of their scale (measured: see
``tests/unit/endpoints/test_onnx_export.py``). A real export fault (a layer missing, batch
norm in training mode, a wrong padding) moves them by 1e-1 of their scale or more. 1e-3
leaves two orders of magnitude on either side."""
ABSOLUTE_TOLERANCE = 1e-5
"""Added to the relative tolerance so logits that are all close to zero still compare."""
CHECK_BATCH = 3
"""The check runs a batch of this size: not the export's sample batch (2), so it also
shows that the batch axis really is dynamic."""
OPSET = 17

_EXPORT_LOCK = threading.Lock()
"""torch.onnx keeps global state while exporting; an API server exports one model at a time."""
_MARKER = re.compile(
    r"^KENNEL_BUILTIN_HANDLER\s*(?::\s*\w+\s*)?=\s*([\"'])" + re.escape(HANDLER_VERSION) + r"\1",
    re.MULTILINE,
)


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how close it is to PyTorch."""

    path: Path
    max_abs_diff: float
    """The largest difference between ONNX Runtime's and PyTorch's logits on the check batch."""
    seconds: float
    """Wall time of the whole export, check included."""
    tolerance: float = 0.0
    """The largest difference the check accepted for this model."""
    exporter: str = "torchscript"
    """Which ``torch.onnx`` exporter produced the file: ``torchscript`` or ``dynamo``."""


# Recognising built-in models ----------------------------------------------------------------


def is_builtin_model(model_dir: Path, script: Path | None = None) -> bool:
    """True if ``model_dir`` is an unmodified built-in trainer model kennel may serve itself.

    ``script`` is the handler the server would import (default ``code/inference.py``); it
    must be that file, carry the marker line, and list the config's ``arch`` in its own
    ``ARCHITECTURES`` (read from the source, so deciding never imports torch).
    """
    model_dir = Path(model_dir)
    handler = model_dir / HANDLER_FILE
    if script is not None and not _same_file(Path(script), handler):
        return False
    try:
        source = handler.read_text(encoding="utf-8")
        config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not _MARKER.search(source) or not isinstance(config, dict):
        return False
    arch = config.get("arch")
    return isinstance(arch, str) and arch in _architectures(source)


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


def _architectures(source: str) -> tuple[str, ...]:
    """The ``ARCHITECTURES = (...)`` tuple of a handler's source; empty if it has none."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "ARCHITECTURES" for target in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return ()
            if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
                return tuple(value)
    return ()


def read_json(model_dir: Path, name: str) -> Any:
    """A JSON file of the model dir; a missing or broken one is a :class:`ModelLoadError`."""
    path = Path(model_dir) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelLoadError(
            f"cannot read {name} of the model in {model_dir}: {error}",
            hint="The built-in trainer writes it next to model.pth; re-run the training job "
            "or restore the file.",
        ) from error


def weights_digest(model_dir: Path) -> str:
    """The SHA-256 of ``model.pth`` (hex): what an ONNX file must have been exported from."""
    digest = hashlib.sha256()
    with (Path(model_dir) / WEIGHTS_FILE).open("rb") as weights:
        while chunk := weights.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


# Loading the model with its own code ------------------------------------------------------


def import_handler(model_dir: Path) -> ModuleType:
    """Import the model dir's own ``code/inference.py`` under a unique module name.

    Unlike the model server's import of a user's script, this does not put ``code/`` on
    ``sys.path``: the built-in handler imports nothing of its own, and the API server that
    exports many models should not collect their folders. The module stays in
    ``sys.modules`` (its dataclasses look themselves up there).
    """
    script = Path(model_dir) / HANDLER_FILE
    name = f"kennel_builtin_handler_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{script} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(name, None)
        raise ModelLoadError(
            f"importing {script} failed: {type(error).__name__}: {error}",
            hint="The built-in handler needs torch, torchvision, numpy and pillow.",
        ) from error
    return module


def load_torch_model(model_dir: Path) -> Any:
    """The model's own ``model_fn(model_dir)``: a ``LoadedModel`` with ``.network`` on CPU."""
    module = import_handler(model_dir)
    try:
        loaded = module.model_fn(str(model_dir))
        loaded.network.to("cpu").eval()
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"the model's model_fn failed: {type(error).__name__}: {error}",
            hint="Check that model.pth matches model-config.json (arch, num_classes).",
        ) from error
    return loaded


# Exporting ----------------------------------------------------------------------------------


def export_onnx(model_dir: Path, *, relative_tolerance: float = RELATIVE_TOLERANCE) -> OnnxExport:
    """Export a built-in model to ``model_dir/model.onnx`` and check it against PyTorch.

    The file is written under a temporary name and renamed only after ONNX Runtime's
    logits matched PyTorch's on a random batch (``max|onnx - torch| <= relative_tolerance
    * max|torch| + 1e-5``); otherwise it is removed and :class:`ModelLoadError` says by how
    much they differed. Takes a couple of seconds for a ResNet-50.
    """
    import torch

    started = time.perf_counter()
    model_dir = Path(model_dir)
    if not is_builtin_model(model_dir):
        raise ModelLoadError(
            f"{model_dir} is not a built-in trainer model, so kennel cannot export it to ONNX",
            hint="Only model dirs written by kennel.trainer with an unmodified "
            "code/inference.py (and its KENNEL_BUILTIN_HANDLER line) are exported.",
        )
    loaded = load_torch_model(model_dir)
    network = loaded.network
    size = int(loaded.config["image_size"])
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 3, size, size, generator=generator)
    target = model_dir / ONNX_FILE
    partial = model_dir / f".{ONNX_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with _EXPORT_LOCK, torch.no_grad():
            exporter = _export(network, sample, partial)
        _add_metadata(partial, {WEIGHTS_DIGEST_KEY: weights_digest(model_dir)})
        checked = torch.randn(CHECK_BATCH, 3, size, size, generator=generator)
        with torch.no_grad():
            expected = network(checked).numpy()
        got = _run_onnx(partial, checked.numpy())
        if got.shape != expected.shape:
            raise ModelLoadError(
                f"the ONNX export of {model_dir} answers shape {got.shape} where PyTorch "
                f"answers {expected.shape}; it is not used",
                hint="Serve the model with PyTorch (delete model.onnx) and report this.",
            )
        diff = float(abs(got - expected).max())
        tolerance = relative_tolerance * float(abs(expected).max()) + ABSOLUTE_TOLERANCE
        if not diff <= tolerance:  # also catches NaN
            raise ModelLoadError(
                f"the ONNX export of {model_dir} differs from PyTorch by up to {diff:.3g} "
                f"(allowed: {tolerance:.3g}, {relative_tolerance:g} of the largest logit); "
                "it is not used",
                hint="Serve the model with PyTorch (kennel does when model.onnx is absent).",
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return OnnxExport(target, diff, time.perf_counter() - started, tolerance, exporter)


def _export(network: Any, sample: Any, path: Path) -> str:
    """Export with the TorchScript exporter (1.5 s for a ResNet-50, one file), else dynamo.

    The dynamo exporter is torch's default now, but it takes ~10x longer for the same
    graph; it is the fallback for when the TorchScript one is gone or fails.
    """
    import torch

    try:
        with warnings.catch_warnings():
            # The "legacy exporter" deprecation and tracer notes: known, and the check
            # after the export is what decides whether the file is used.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network,
                (sample,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        return "torchscript"
    except Exception as first:  # noqa: BLE001 - any failure means: try the other exporter
        path.unlink(missing_ok=True)
        try:
            torch.onnx.export(
                network,
                (sample,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                external_data=False,
                dynamo=True,
                verbose=False,
            )
        except Exception as second:
            raise ModelLoadError(
                f"exporting the model to ONNX failed: {type(first).__name__}: {first}; "
                f"then with the dynamo exporter: {type(second).__name__}: {second}",
                hint="Serve the model with PyTorch (kennel does when model.onnx is absent).",
            ) from second
        return "dynamo"


def _add_metadata(path: Path, values: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    entries = {entry.key: entry for entry in model.metadata_props}
    for key, value in {HANDLER_KEY: HANDLER_VERSION, **values}.items():
        entry = entries.get(key) or model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _run_onnx(path: Path, batch: Any) -> Any:
    import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [logits] = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
    return logits
