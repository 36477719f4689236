"""MonitoringService with the real worker code (in process): baseline, drift, report.

An untrained small-cnn on a tiny synthetic data set: what is checked is the glue (the
job folder, the library's calls, the execution and report), with one contrast the checks
cannot miss: the same kind of images (no violation) vs inverted ones (image statistics).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.unit.monitoring._capture_files import record, write_capture

from kennel._settings import Settings
from kennel.monitoring._service import MonitoringService
from kennel.monitoring._worker import InProcessWorker
from kennel.store import ArtifactStore, Database, Endpoint, EndpointConfig, Model, TrainingJob
from kennel.trainer import inference
from kennel.trainer._package import package_model, write_model_dir

CLASSES = ["001.red", "002.green", "003.blue"]
T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def _image(cls: int, seed: int, invert: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (24, 24, 3)).astype(np.int16)
    pixels[..., cls] += 90
    if invert:
        pixels = 255 - pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def world(db: Database, tmp_path: Path) -> tuple[MonitoringService, ArtifactStore]:
    torch.manual_seed(0)
    config = {"arch": "small-cnn", "image_size": 24}
    write_model_dir(tmp_path / "model", inference.build_network("small-cnn", 3), CLASSES, config)
    archive = package_model(tmp_path / "model", tmp_path / "model.tar.gz")
    dataset = tmp_path / "digits"
    for split, count in (("train", 20), ("valid", 30), ("test", 5)):
        for c, name in enumerate(CLASSES):
            folder = dataset / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.png").write_bytes(_image(c, 1000 * c + i + hash(split) % 97))
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    settings = Settings(home=tmp_path / "home")
    settings.tmp_dir.mkdir(parents=True)
    with db.session() as session:
        session.add(
            TrainingJob(
                name="j",
                status="Completed",
                secondary_status="Completed",
                entry_point="builtin",
                instance_type="ml.m5.large",
                instance_count=1,
                max_runtime_seconds=60,
                output_path="x",
                channels={"train": f"{dataset}/train"},
            )
        )
        session.add(
            Model(
                name="m",
                arn="arn:aws:sagemaker:r:1:model/m",
                artifact_uri=str(archive),
                kind="builtin-image-classifier",
                source="training-job/j",
            )
        )
        session.add(
            EndpointConfig(
                name="c", arn="a", variants=[{"variant_name": "AllTraffic", "model_name": "m"}]
            )
        )
        session.add(Endpoint(name="dogs", arn="a", status="InService", config_name="c"))
    service = MonitoringService(db, artifacts, settings, clock=lambda: T0, worker=InProcessWorker())
    return service, artifacts


def test_same_images_pass_inverted_images_are_flagged_and_labels_give_accuracy(
    world: tuple[MonitoringService, ArtifactStore], db: Database
) -> None:
    service, artifacts = world
    service.on_model_created("m")
    service.wait_baseline("m", 120)
    with db.session() as session:
        row = session.get(Model, "m")
        assert row is not None
        assert row.details["baseline"]["status"] == "Completed", row.details["baseline"]

    def traffic(start: datetime, invert: bool) -> list[dict[str, object]]:
        records = []
        for i in range(45):
            cls = i % 3
            logits = [0.0, 0.0, 0.0]
            logits[cls if i % 5 else (cls + 1) % 3] = 3.0  # 80 % right
            records.append(
                record(
                    "dogs",
                    start + timedelta(seconds=i),
                    body=_image(cls, 50_000 + i, invert),
                    output=[logits],
                    inference_id=f"{start:%H%M}-{i}",
                )
            )
        write_capture(artifacts, "dogs", records, start)
        return records

    first = traffic(T0 - timedelta(minutes=50), invert=False)
    clean = service.run("dogs", None)
    checks = {c["name"]: c for c in clean["result"]["checks"]}
    assert set(checks) == {"embedding_drift", "image_statistics", "class_mix", "confidence"}
    # The captured outputs are made up (confident, balanced) while the untrained model's
    # baseline is not, so only the image checks are meant to pass here.
    assert not checks["embedding_drift"]["violated"], checks["embedding_drift"]
    assert not checks["image_statistics"]["violated"], checks["image_statistics"]
    page = service.report("dogs", clean["id"])
    assert "<html" in page.lower() and "Drift over time" in page

    traffic(T0 - timedelta(minutes=20), invert=True)
    from kennel.monitoring._schedule import RunSpec

    drifted = service.run("dogs", RunSpec(start=T0 - timedelta(minutes=30), end=T0))
    assert drifted["status"] == "CompletedWithViolations"
    assert "image_statistics" in drifted["result"]["violations"]

    labels = [
        json.dumps({"inference_id": r["eventMetadata"]["inferenceId"], "label": CLASSES[i % 3]})  # type: ignore[index]
        for i, r in enumerate(first)
    ]
    service.put_labels("dogs", "\n".join(labels).encode())
    again = service.run(
        "dogs", RunSpec(start=T0 - timedelta(hours=1), end=T0 - timedelta(minutes=30))
    )
    quality = again["result"]["quality"]
    assert quality["n"] == 45
    assert quality["accuracy"] == pytest.approx(36 / 45)
    assert again["metrics"]["accuracy"] == pytest.approx(36 / 45)
