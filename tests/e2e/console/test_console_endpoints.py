"""The console's model and endpoint pages: an endpoint's status, instances and metrics,
the test panel (an uploaded image and an image URL give the top 5), and deploying a
model from its page."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests._images import serve_image
from tests._server import RunningServer
from tests._uploads import small_cnn_archive, upload_model, upload_sources
from tests.integration.endpoints.conftest import Models, unique, wait_status

# Slow: about 60-100 s (a model, an endpoint, a deploy); CI runs it. The flow test
# (test_console_flow.py) covers deploy and the test panel in the default run.
pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

# Breed-like names in the dog-breed data set's form ("NNN.Name"): the page strips the number.
BREEDS = [f"{i:03d}.{name}" for i, name in enumerate(
    ["Affenpinscher", "Afghan_hound", "Airedale_terrier", "Akita", "Alaskan_malamute",
     "American_foxhound", "Basenji", "Beagle"], start=1)]  # fmt: skip


TERMINAL = ("Completed", "Failed", "Stopped")


def _image(fmt: str) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def deployed(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(model, endpoint): a small-cnn model behind an InService endpoint."""
    tmp = tmp_path_factory.mktemp("console-endpoints")
    archive = small_cnn_archive(tmp, BREEDS)
    with server.client() as api:
        made = Models(api, tmp)
        model = unique("breeds")
        upload_model(api, archive, model)
        endpoint = made.endpoint(made.config({"model_name": model}))
        _register_scaling(server, endpoint)
        try:
            yield model, endpoint
        finally:
            made.cleanup()


# A training script that "trains" in no time: it writes a custom model (handler functions
# and a file) into SM_MODEL_DIR, so the job completes with a model.tar.gz to serve.
MAKE_MODEL = r"""
import os
from pathlib import Path

model_dir = Path(os.environ["SM_MODEL_DIR"])
(model_dir / "code").mkdir(parents=True, exist_ok=True)
(model_dir / "version.txt").write_text("from-job")
(model_dir / "code" / "inference.py").write_text(
    "def model_fn(model_dir):\n    return {}\n"
    "def predict_fn(data, model):\n    return data\n"
)
print("model written")
"""


@pytest.fixture(scope="module")
def completed_job(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Completed training job with a model, made in seconds."""
    folder = tmp_path_factory.mktemp("make-model")
    script = folder / "make_model.py"
    script.write_text(MAKE_MODEL)
    source_uri = upload_sources(server, folder, script)
    name = unique("console-job")
    spec = {
        "name": name,
        "entry_point": "make_model.py",
        "source_uri": source_uri,
        "profiler": {"enabled": False, "rules": []},
    }
    with server.client() as api:
        api.post("/api/v1/training-jobs", spec)
        deadline = time.monotonic() + 120
        while (job := api.get(f"/api/v1/training-jobs/{name}"))["status"] not in TERMINAL:
            assert time.monotonic() < deadline, f"{name} did not finish"
            time.sleep(0.5)
    assert job["status"] == "Completed", job
    return name


def _register_scaling(server: RunningServer, endpoint: str) -> None:
    """A target-tracking policy the page shows (a target no test load reaches)."""
    scaling = server.session.client(
        "application-autoscaling", endpoint_url=server.url, region_name="us-east-1"
    )
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    scaling.put_scaling_policy(
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10_000.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
        **target,
    )


def _scores(page: Any) -> list[float]:
    """The scores the test panel shows, once a new answer is in."""
    page.locator(".test-result .loading").wait_for(state="detached", timeout=30_000)
    items = page.locator(".test-result .scores li")
    items.first.wait_for(timeout=30_000)
    return [float(s) for s in items.evaluate_all("(lis) => lis.map((li) => li.dataset.score)")]


def test_the_endpoint_page_shows_its_instance_and_tests_an_upload_and_a_url(
    console: Any, deployed: tuple[str, str]
) -> None:
    _, endpoint = deployed
    page = console.page
    console.goto(f"#/endpoints/{endpoint}")
    page.get_by_role("heading", level=1, name=endpoint).wait_for()
    status = page.get_by_role("region", name="Status")
    status.locator(".badge", has_text="InService").wait_for()
    instances = page.get_by_role("region", name="Instances of AllTraffic")
    assert instances.locator("tbody tr").count() == 1
    assert "yes" in instances.locator("tbody tr").inner_text()
    policies = page.get_by_role("region", name="Scaling policies")
    assert "InvocationsPerInstance" in policies.locator("tbody tr").inner_text()

    page.get_by_label("Image file").set_input_files(
        {"name": "dog.png", "mimeType": "image/png", "buffer": _image("PNG")}
    )
    page.get_by_role("img", name="The image to send").wait_for()
    page.get_by_role("button", name="Test", exact=True).click()
    scores = _scores(page)
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    labels = page.locator(".test-result .scores .label").all_inner_texts()
    assert set(labels) <= {b.split(".", 1)[1].replace("_", " ") for b in BREEDS}
    assert "ms" in page.locator(".test-meta").inner_text()
    console.screenshot("endpoint-test-upload-1280")

    with serve_image(_image("JPEG")) as url:
        page.get_by_label("or image URL").fill(url)
        assert page.get_by_label("Image file").input_value() == ""  # the URL is what is sent
        page.get_by_label("or image URL").press("Enter")  # the form submits from the keyboard
        from_url = _scores(page)
    assert len(from_url) == 5 and from_url == sorted(from_url, reverse=True)

    # The invocations reach the chart within a few metric periods (1 s in the tests).
    page.wait_for_function(
        """() => {
            const el = document.querySelector('.chart[data-metric="Invocations"]');
            return el && el.data && el.data.some((t) => t.y.some((v) => v > 0));
        }""",
        timeout=30_000,
    )
    page.locator(".chart[data-metric='ModelLatency'] .main-svg").first.wait_for()
    console.screenshot("endpoint-metrics-1280")


def test_the_model_page_deploys_a_second_endpoint(
    console: Any, deployed: tuple[str, str], server: RunningServer
) -> None:
    model, endpoint = deployed
    page = console.page
    console.goto("#/models")
    page.get_by_role("link", name=model, exact=True).click()
    page.get_by_role("heading", level=1, name=model).wait_for()
    assert "small-cnn" in page.get_by_role("region", name="Model", exact=True).inner_text()
    page.get_by_role("region", name="Endpoints using it").get_by_role(
        "link", name=endpoint
    ).wait_for()
    console.screenshot("model-1280")

    deploy_form = page.get_by_role("form", name="Deploy this model")
    page.get_by_label("Endpoint name").fill(endpoint)  # taken: refused where it was asked
    page.get_by_role("button", name="Deploy").click()
    assert "already exists" in deploy_form.get_by_role("alert").inner_text()

    second = unique("console-ep")
    page.get_by_label("Endpoint name").fill(second)
    page.get_by_label("Instance type").select_option("ml.t3.medium")
    page.get_by_label("Initial instance count").fill("1")
    try:
        page.get_by_role("button", name="Deploy").click()
        page.get_by_role("heading", level=1, name=second).wait_for()
        assert page.url.endswith(f"#/endpoints/{second}")
        page.get_by_role("region", name="Status").locator(".badge", has_text="InService").wait_for(
            timeout=90_000
        )
        page.get_by_role("region", name="Instances of AllTraffic").locator("tbody tr").wait_for()
        console.screenshot("endpoint-deployed-1280")
    finally:
        console.goto("#/endpoints")  # leave the page before its endpoint goes away
        page.get_by_role("heading", level=1, name="Endpoints").wait_for()
        _delete(server, second)


def _delete(server: RunningServer, endpoint: str) -> None:
    with server.client() as api:
        try:
            wait_status(api, endpoint, ("InService", "Failed"), timeout=90)
            api.delete(f"/api/v1/endpoints/{endpoint}")
        except Exception:  # noqa: BLE001 - not created: nothing to delete
            return


def test_a_model_is_created_from_a_completed_training_job(
    console: Any, completed_job: str, server: RunningServer
) -> None:
    page = console.page
    console.goto("#/models")
    form = page.get_by_role("form", name="Create a model from a training job")
    form.get_by_label("Training job").select_option(completed_job)
    assert form.get_by_label("Model name").input_value() == completed_job  # named after it
    model = unique("from-job")
    form.get_by_label("Model name").fill(model)
    console.screenshot("models-1280")
    try:
        form.get_by_role("button", name="Create model").click()
        page.get_by_role("heading", level=1, name=model).wait_for()
        facts = page.get_by_role("region", name="Model", exact=True)
        facts.get_by_role("link", name=completed_job).wait_for()
        assert "Custom" in facts.inner_text()
        console.goto("#/models")
        page.get_by_role("link", name=model, exact=True).wait_for()
    finally:
        with server.client() as api:
            api.delete(f"/api/v1/models/{model}")


def test_the_endpoint_page_fits_a_phone(narrow_console: Any, deployed: tuple[str, str]) -> None:
    model, endpoint = deployed
    page = narrow_console.page
    narrow_console.goto(f"#/endpoints/{endpoint}")
    page.get_by_role("region", name="Status").locator(".badge", has_text="InService").wait_for()
    page.locator(".chart[data-metric='Invocations'] .main-svg").first.wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("endpoint-390")
    narrow_console.goto("#/endpoints")
    page.get_by_role("region", name="Endpoints").first.wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("endpoints-390")
    narrow_console.goto(f"#/models/{model}")
    page.get_by_role("button", name="Deploy").wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("model-390")
