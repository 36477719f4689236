"""The SDK's Predictor and HyperparameterTuner against a real server: a built-in-trainer
job deployed and invoked, autoscaled and deleted; a two-trial tuning job and its table."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests._sdk import sdk_session
from tests._server import RunningServer

from kennel._errors import ConflictError, KennelError, NotFoundError
from kennel.sdk._predictor import Predictor, deploy_training_job
from kennel.sdk._serializers import (
    DataSerializer,
    IdentitySerializer,
    JSONDeserializer,
    NumpyDeserializer,
    NumpySerializer,
)
from kennel.sdk._session import Session
from kennel.sdk._tuner import ContinuousParameter, HyperparameterTuner

pytestmark = pytest.mark.timeout(300)

DATASET = "sdk-predictor-digits"
JOB = "sdk-predictor-job"
ENDPOINT = "sdk-predictor-ep"
SMALL = {"arch": "small-cnn", "epochs": 1, "image-size": 16}


@pytest.fixture(scope="module")
def session(server: RunningServer) -> Iterator[Session]:
    made = sdk_session(server)
    yield made
    made.close()


@pytest.fixture(scope="module")
def digits(session: Session) -> str:
    session.api.post("/api/v1/datasets", {"name": DATASET, "demo": {"image_size": 16}})
    return DATASET


@pytest.fixture(scope="module")
def trained(session: Session, digits: str) -> str:
    session.api.post(
        "/api/v1/training-jobs", {"name": JOB, "dataset": digits, "hyperparameters": SMALL}
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = session.api.get(f"/api/v1/training-jobs/{JOB}")
        if job["status"] not in ("InProgress", "Stopping"):
            assert job["status"] == "Completed", job["failure_reason"]
            return JOB
        time.sleep(0.5)
    raise AssertionError(f"{JOB} did not finish")


@pytest.fixture(scope="module")
def image(server: RunningServer, digits: str) -> Path:
    return next((server.home / "artifacts" / "datasets" / digits / "test").rglob("*.jpg"))


@pytest.fixture(scope="module")
def predictor(session: Session, trained: str) -> Iterator[Predictor]:
    deployed = deploy_training_job(
        session,
        trained,
        initial_instance_count=1,
        instance_type="ml.m5.large",
        endpoint_name=ENDPOINT,
    )
    yield deployed
    with contextlib.suppress(NotFoundError):  # left behind by a failed test
        deployed.delete_endpoint()


def test_deploy_serves_the_job_and_predict_returns_scores(
    predictor: Predictor, image: Path
) -> None:
    assert predictor.describe()["status"] == "InService"
    # the built-in model's defaults: image bytes in, JSON scores out
    assert predictor.content_type == "application/x-image"
    assert predictor.accept == ("application/json",)
    scores = predictor.predict(image.read_bytes())
    assert len(scores) == 1 and len(scores[0]) == 10
    top = predictor.predict(image.read_bytes(), custom_attributes="top_k=3")
    assert [p["label"] for p in top["predictions"][0]][0].startswith("0")
    assert len(top["predictions"][0]) == 3


def test_attach_by_name_with_other_serializers(
    predictor: Predictor, session: Session, image: Path
) -> None:
    by_path = Predictor(
        ENDPOINT,
        sagemaker_session=session,
        serializer=DataSerializer("image/jpeg"),
        deserializer=JSONDeserializer(),
    )
    expected = predictor.predict(image.read_bytes())
    assert by_path.predict(str(image)) == expected
    pixels = np.asarray(Image.open(io.BytesIO(image.read_bytes())).convert("RGB"))
    as_arrays = Predictor(
        ENDPOINT,
        sagemaker_session=session,
        serializer=NumpySerializer(),
        deserializer=NumpyDeserializer(),
    )
    scores = as_arrays.predict(pixels)
    assert scores.shape == (1, 10)
    assert np.allclose(scores, expected, atol=1e-3)


def test_a_model_error_names_what_was_sent(predictor: Predictor, session: Session) -> None:
    octets = Predictor(ENDPOINT, sagemaker_session=session)  # SageMaker's defaults
    assert isinstance(octets.serializer, IdentitySerializer)
    with pytest.raises(KennelError) as caught:
        octets.predict(b"\x00\x01")
    assert caught.value.aws_code == "ModelError"
    assert "application/octet-stream" in caught.value.message
    assert caught.value.hint and "Content-Type application/octet-stream" in caught.value.hint


def test_deploying_over_an_existing_endpoint_is_refused(
    predictor: Predictor, session: Session, trained: str
) -> None:
    with pytest.raises(ConflictError, match=f"Endpoint {ENDPOINT} exists already"):
        deploy_training_job(
            session,
            trained,
            initial_instance_count=1,
            instance_type="ml.m5.large",
            endpoint_name=ENDPOINT,
        )


def test_autoscaling_registers_a_target_and_a_policy(
    predictor: Predictor, session: Session
) -> None:
    answer = predictor.enable_autoscaling(min_capacity=1, max_capacity=2, target_value=100)
    assert answer["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    view = session.api.get(f"/api/v1/endpoints/{ENDPOINT}/scaling")["variants"]
    assert [(v["min_capacity"], v["max_capacity"]) for v in view] == [(1, 2)]
    policy = view[0]["policies"][0]
    assert policy["policy_name"] == answer["PolicyName"]
    assert policy["target_value"] == 100 and policy["metric"] == "InvocationsPerInstance"
    with pytest.raises(KennelError, match="max_capacity"):
        predictor.enable_autoscaling(min_capacity=1, max_capacity=0, target_value=100)
    assert predictor.disable_autoscaling() == [answer["ResourceId"]]
    assert session.api.get(f"/api/v1/endpoints/{ENDPOINT}/scaling")["variants"] == []


def test_delete_endpoint_then_model(predictor: Predictor, session: Session) -> None:
    config = predictor.describe()["config_name"]
    predictor.delete_endpoint()
    with pytest.raises(NotFoundError):
        session.api.get(f"/api/v1/endpoints/{ENDPOINT}")
    with pytest.raises(NotFoundError):
        session.api.get(f"/api/v1/endpoint-configs/{config}")
    predictor.delete_model()  # the models were learnt before the config went
    with pytest.raises(NotFoundError):
        session.api.get(f"/api/v1/models/{JOB}")


def test_tuner_runs_two_trials_and_tabulates_them(session: Session, digits: str) -> None:
    pytest.importorskip("pandas")
    estimator = _estimator(session)
    tuner = HyperparameterTuner(
        estimator,
        objective_metric_name="validation:loss",
        hyperparameter_ranges={"lr": ContinuousParameter(0.01, 0.1, "Logarithmic")},
        objective_type="Minimize",
        strategy="Random",
        max_jobs=2,
        max_parallel_jobs=2,
        random_seed=1,
    )
    tuner.fit(_inputs(digits), job_name="sdk-tune")
    job = tuner.describe()
    assert job["status"] == "Completed", job
    trials = [t["training_job_name"] for t in job["trials"]]
    best = tuner.best_training_job()
    assert best in trials
    frame = tuner.analytics().dataframe()
    assert len(frame) == 2
    assert set(frame["TrainingJobName"]) == set(trials)
    assert frame["lr"].between(0.01, 0.1).all()
    assert (frame["TrainingElapsedTimeSeconds"] > 0).all()
    attached = HyperparameterTuner.attach("sdk-tune", sagemaker_session=session)
    assert attached.best_training_job() == best
    best_estimator = tuner.best_estimator()
    assert str(best_estimator.latest_training_job) == best


def _estimator(session: Session) -> Any:
    """kennel's Estimator for the built-in trainer."""
    from kennel.sdk._estimator import Estimator

    return Estimator("kennel.trainer", hyperparameters=SMALL, sagemaker_session=session)


def _inputs(digits: str) -> Any:
    from kennel.sdk._inputs import DatasetInput

    return DatasetInput(digits)
