"""Recognising built-in trainer models and exporting them to ONNX, checked against PyTorch."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]
import pytest
import torch

from kennel.endpoints import ModelLoadError, _onnx
from kennel.endpoints._onnx import (
    ONNX_FILE,
    WEIGHTS_DIGEST_KEY,
    export_onnx,
    is_builtin_model,
    load_torch_model,
)
from kennel.trainer import inference
from kennel.trainer._package import write_model_dir
from kennel.trainer.inference import build_network

CLASSES = [f"{i:03d}.class{i}" for i in range(1, 8)]


def _model_dir(root: Path, arch: str = "small-cnn", size: int = 32, classes: int = 7) -> Path:
    names = [f"{i:03d}.class{i}" for i in range(1, classes + 1)]
    model_dir = root / arch
    torch.manual_seed(0)
    write_model_dir(
        model_dir, build_network(arch, classes), names, {"arch": arch, "image_size": size}
    )
    return model_dir


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return _model_dir(tmp_path)


def _without_marker(model_dir: Path) -> None:
    script = model_dir / "code" / "inference.py"
    lines = script.read_text().splitlines(keepends=True)
    script.write_text("".join(line for line in lines if "KENNEL_BUILTIN_HANDLER" not in line))


# is_builtin_model ----------------------------------------------------------------------------


def test_a_fresh_trainer_model_dir_is_builtin(small: Path) -> None:
    assert is_builtin_model(small)
    assert is_builtin_model(small, small / "code" / "inference.py")


def test_the_marker_is_in_the_trainers_handler_and_the_architectures_are_its_own() -> None:
    assert inference.KENNEL_BUILTIN_HANDLER == _onnx.HANDLER_VERSION
    source = Path(inference.__file__).read_text(encoding="utf-8")
    assert _onnx._architectures(source) == inference.ARCHITECTURES


def test_deleting_the_marker_line_makes_it_a_custom_model(small: Path) -> None:
    _without_marker(small)
    assert not is_builtin_model(small)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "model-config.json").unlink(),
        lambda d: (d / "model-config.json").write_text("not json"),
        lambda d: (d / "model-config.json").write_text(json.dumps({"arch": "vgg11"})),
        lambda d: (d / "model-config.json").write_text(json.dumps(["resnet50"])),
        lambda d: (d / "code" / "inference.py").unlink(),
        lambda d: (d / "code" / "inference.py").write_text('KENNEL_BUILTIN_HANDLER = "x/2"\n'),
    ],
    ids=["no-config", "bad-json", "unknown-arch", "not-an-object", "no-handler", "other-marker"],
)
def test_what_is_not_builtin(small: Path, damage: Any) -> None:
    damage(small)
    assert not is_builtin_model(small)


def test_another_script_than_code_inference_py_is_not_the_builtin_handler(small: Path) -> None:
    other = small / "code" / "serve.py"
    shutil.copy(small / "code" / "inference.py", other)
    assert not is_builtin_model(small, other)


# export_onnx ---------------------------------------------------------------------------------


def test_export_writes_a_checked_onnx_file_with_a_dynamic_batch(small: Path) -> None:
    exported = export_onnx(small)
    assert exported.path == small / ONNX_FILE and exported.path.is_file()
    assert exported.exporter in ("torchscript", "dynamo")
    assert 0 <= exported.max_abs_diff <= exported.tolerance
    assert exported.seconds > 0
    assert sorted(p.name for p in small.iterdir() if p.name.startswith(".")) == []

    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    digest = hashlib.sha256((small / "model.pth").read_bytes()).hexdigest()
    assert session.get_modelmeta().custom_metadata_map[WEIGHTS_DIGEST_KEY] == digest
    network = load_torch_model(small).network
    for batch in (1, 5):
        images = np.random.default_rng(batch).normal(size=(batch, 3, 32, 32)).astype(np.float32)
        [logits] = session.run(None, {"input": images})
        with torch.no_grad():
            expected = network(torch.from_numpy(images)).numpy()
        assert logits.shape == (batch, len(CLASSES))
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_an_export_that_differs_from_pytorch_is_refused_and_removed(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _onnx._run_onnx

    def off_by_a_bit(path: Path, batch: Any) -> Any:
        logits = real(path, batch)
        logits[0, 0] += 0.05 * float(np.abs(logits).max()) + 0.01
        return logits

    monkeypatch.setattr(_onnx, "_run_onnx", off_by_a_bit)
    with pytest.raises(ModelLoadError, match="differs from PyTorch by up to"):
        export_onnx(small)
    assert [p.name for p in small.iterdir() if "onnx" in p.name] == []


def test_exporting_a_model_that_is_not_builtin_says_so(small: Path) -> None:
    _without_marker(small)
    with pytest.raises(ModelLoadError, match="not a built-in trainer model"):
        export_onnx(small)
    assert not (small / ONNX_FILE).exists()


def test_export_of_weights_that_do_not_fit_the_config_fails_clearly(small: Path) -> None:
    other = build_network("small-cnn", 3)
    torch.save(other.state_dict(), small / "model.pth")
    with pytest.raises(ModelLoadError, match="model_fn failed"):
        export_onnx(small)


def test_resnet50_with_133_classes_exports_within_a_millionth_of_its_scale(
    tmp_path: Path,
) -> None:
    """The tolerance's justification: ORT differs from PyTorch by ~1e-6 of the logits' scale."""
    model_dir = _model_dir(tmp_path, "resnet50", 224, 133)
    started = time.perf_counter()
    exported = export_onnx(model_dir)
    assert time.perf_counter() - started < 60
    scale = (exported.tolerance - _onnx.ABSOLUTE_TOLERANCE) / _onnx.RELATIVE_TOLERANCE
    assert exported.max_abs_diff <= 1e-5 * scale, (exported.max_abs_diff, scale)
    assert exported.path.stat().st_size < 1.1 * (model_dir / "model.pth").stat().st_size
