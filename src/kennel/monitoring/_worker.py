"""The heavy half of monitoring (torch, the drift tests, the report), run off the gateway.

``python -m kennel.monitoring._worker baseline MODEL_DIR DATASET_DIR OUT_DIR`` computes a
baseline; ``python -m kennel.monitoring._worker analyze JOB_DIR`` compares the window a
job folder holds with its baseline and writes ``result.json`` and ``report.html`` there.
The service prepares the folders (``_service``); ``InProcessWorker`` runs the same code in
the calling process (tests), ``SubprocessWorker`` in a child process (the server).

A job folder: ``request.json`` (endpoint, execution, history, thresholds, one entry per
record: image file, prediction, label), ``images/``, ``baseline/`` and ``model/``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from kennel._errors import InternalError

RESULT_FILE = "result.json"
REPORT_FILE = "report.html"
REQUEST_FILE = "request.json"
MAX_SAMPLES = 8
"""Window images shown in the report."""


class Worker(Protocol):
    def baseline(self, model_dir: Path, dataset_dir: Path, out: Path) -> dict[str, Any]: ...

    def analyze(self, job: Path) -> dict[str, Any]: ...


class InProcessWorker:
    def baseline(self, model_dir: Path, dataset_dir: Path, out: Path) -> dict[str, Any]:
        return baseline_job(model_dir, dataset_dir, out)

    def analyze(self, job: Path) -> dict[str, Any]:
        return analyze_job(job)


class SubprocessWorker:
    """Each job in a fresh Python process: torch never loads into the gateway."""

    def __init__(self, timeout_seconds: float = 1800.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def baseline(self, model_dir: Path, dataset_dir: Path, out: Path) -> dict[str, Any]:
        self._run(["baseline", str(model_dir), str(dataset_dir), str(out)])
        return _read_json(out / RESULT_FILE)

    def analyze(self, job: Path) -> dict[str, Any]:
        self._run(["analyze", str(job)])
        return _read_json(job / RESULT_FILE)

    def close(self) -> None:
        """Stop the jobs still running (the server is stopping)."""
        with self._lock:
            children = list(self._children)
        for child in children:
            child.kill()

    def _run(self, args: list[str]) -> None:
        command = [sys.executable, "-m", "kennel.monitoring._worker", *args]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with self._lock:
            self._children.add(child)
        try:
            stdout, stderr = child.communicate(timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise InternalError(
                f"The monitoring worker ({args[0]}) ran past {self.timeout_seconds:g} s."
            ) from None
        finally:
            with self._lock:
                self._children.discard(child)
        if child.returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
            raise InternalError(f"The monitoring worker ({args[0]}) failed: {tail[0]}")


def _read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# The jobs ------------------------------------------------------------------------------------


def baseline_job(model_dir: Path, dataset_dir: Path, out: Path) -> dict[str, Any]:
    from kennel.monitoring._baseline import compute_baseline

    baseline = compute_baseline(model_dir, dataset_dir)
    baseline.to_files(out)
    summary = baseline.summary()
    (out / RESULT_FILE).write_text(json.dumps(summary, default=str), encoding="utf-8")
    return summary


def analyze_job(job: Path) -> dict[str, Any]:
    from PIL import Image

    from kennel.monitoring import _drift, _quality, _report
    from kennel.monitoring._baseline import Baseline, load_model

    request = _read_json(job / REQUEST_FILE)
    baseline = Baseline.from_files(job / "baseline")
    model = load_model(job / "model")
    images: list[Image.Image] = []
    samples: list[bytes] = []
    undecodable = 0
    for entry in request["records"]:
        if not entry.get("image"):
            continue
        raw = (job / entry["image"]).read_bytes()
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except Exception:  # noqa: BLE001 - a capture that is not an image is counted
            undecodable += 1
            continue
        images.append(image.convert("RGB"))
        if len(samples) < MAX_SAMPLES:
            samples.append(raw)
    predictions = [
        (int(e["prediction"][0]), float(e["prediction"][1]))
        for e in request["records"]
        if e.get("prediction")
    ]
    window = _drift.Window.from_images(model, images, predictions=predictions or None)
    thresholds = _drift.Thresholds.from_dict(request.get("thresholds"))
    drift = _drift.compare(baseline, window, thresholds)
    labelled = [e for e in request["records"] if e.get("actual") and e.get("predicted")]
    quality = (
        _quality.model_quality(
            [e["predicted"] for e in labelled], [e["actual"] for e in labelled], baseline.classes
        )
        if labelled
        else None
    )
    metrics = {k: float(v) for k, v in drift.metrics().items()}
    if quality is not None and quality.get("accuracy") is not None:
        metrics["accuracy"] = float(quality["accuracy"])
        metrics["labelled"] = float(quality["n"])
    result = {
        **drift.to_dict(),
        "violations": [c.name for c in drift.violations],
        "metrics": metrics,
        "quality": quality,
        "undecodable_images": undecodable,
        "analysed_images": len(images),
    }
    execution = {
        **request["execution"],
        "status": "CompletedWithViolations" if drift.violations else "Completed",
        "result": result,
        "metrics": metrics,
        "quality": quality,
    }
    page = _report.render_report(
        endpoint=request["endpoint"],
        execution=execution,
        history=request.get("history", []),
        baseline=baseline,
        samples=samples,
    )
    (job / REPORT_FILE).write_text(page, encoding="utf-8")
    (job / RESULT_FILE).write_text(json.dumps(result, default=_plain), encoding="utf-8")
    return _read_json(job / RESULT_FILE)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in a result, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def main(argv: list[str]) -> int:
    if argv[:1] == ["baseline"] and len(argv) == 4:
        baseline_job(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    if argv[:1] == ["analyze"] and len(argv) == 2:
        analyze_job(Path(argv[1]))
        return 0
    sys.stderr.write("usage: baseline MODEL_DIR DATASET_DIR OUT_DIR | analyze JOB_DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
