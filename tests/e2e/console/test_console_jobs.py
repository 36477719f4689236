"""The console's data set, training job and tuning job pages against a real server: a
data set's classes and sample images, a training job followed live to Completed (log,
metric chart, rules, profiler report), the Stop button, and a 2-trial tuning job."""

from __future__ import annotations

import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._server import RunningServer
from tests._uploads import upload_sources

from kennel.datasets import make_demo

# Slow: about 70 s (training and tuning jobs queue on 2 cores); CI runs it.
pytestmark = pytest.mark.slow

INTEGRATION = Path(__file__).parents[2] / "integration"
TRAINING_SCRIPT = INTEGRATION / "training" / "scripts" / "sagemaker_style.py"
TUNING_SCRIPT = INTEGRATION / "tuning" / "scripts" / "tuning_objective.py"
LOSS = {"name": "test:loss", "regex": r"Test set: Average loss: ([0-9\.]+)"}
OBJECTIVE = {"name": "objective:loss", "regex": r"objective_loss=([0-9.]+)"}
TERMINAL = ("Completed", "Failed", "Stopped")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def dataset(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo digits with a few images per class: quick to upload and to copy per job."""
    folder = tmp_path_factory.mktemp("digits")
    make_demo(folder / "digits", image_size=16, per_class=(4, 2, 2))
    archive = folder / "digits.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "digits", arcname="digits")
    name = unique("console-digits")
    with server.client() as api:
        api.request("PUT", f"/api/v1/datasets/{name}", upload=archive)
    return name


@pytest.fixture(scope="module")
def sources(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "training": upload_sources(server, tmp_path_factory.mktemp("t"), TRAINING_SCRIPT),
        "tuning": upload_sources(server, tmp_path_factory.mktemp("h"), TUNING_SCRIPT),
    }


@pytest.fixture(scope="module")
def tuning_job(server: RunningServer, dataset: str, sources: dict[str, str]) -> Iterator[str]:
    """Started first, so its two short trials run while the other tests look at pages."""
    name = unique("console-tune")
    spec = {
        "name": name,
        "dataset": dataset,
        "entry_point": "tuning_objective.py",
        "source_uri": sources["tuning"],
        "metric_definitions": [OBJECTIVE],
        "objective": {"metric_name": "objective:loss", "type": "Minimize"},
        "strategy": "Grid",
        "random_seed": 1,
        # More epochs, lower loss (0.8 ** (epochs - 1)): the 3-epoch trial is the best.
        "parameter_ranges": {"categorical": [{"name": "epochs", "values": [1, 3]}]},
        "max_training_jobs": 2,
        "max_parallel_training_jobs": 2,
    }
    with server.client() as api:
        api.post("/api/v1/tuning-jobs", spec)
    yield name


def start_training(server: RunningServer, dataset: str, source_uri: str, sleep: int) -> str:
    name = unique("console-job")
    spec = {
        "name": name,
        "dataset": dataset,
        "entry_point": "sagemaker_style.py",
        "source_uri": source_uri,
        "metric_definitions": [LOSS],
        "hyperparameters": {"lr": 0.05, "sleep": sleep},
    }
    with server.client() as api:
        api.post("/api/v1/training-jobs", spec)
    return name


def wait_for(server: RunningServer, path: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with server.client() as api:
        while time.monotonic() < deadline:
            job: dict[str, Any] = api.get(path)
            if job["status"] in TERMINAL:
                return job
            time.sleep(0.5)
    raise AssertionError(f"{path} did not end in {timeout} s")


def test_the_data_set_page_shows_classes_counts_and_sample_images(
    console: Any, dataset: str, tuning_job: str
) -> None:
    page = console.page
    console.goto("#/datasets")
    page.get_by_role("link", name=dataset).click()
    page.get_by_role("heading", name=dataset, level=1).wait_for()
    classes = page.get_by_role("region", name="Images per class and split")
    assert "001.zero" in classes.inner_text() and "010.nine" in classes.inner_text()
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
    first = page.get_by_role("img", name="001.zero: train image 1")
    first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.samples img')].some("
        "(img) => img.complete && img.naturalWidth > 0)",
        timeout=20_000,
    )
    assert first.get_attribute("src").startswith("blob:")
    console.screenshot("jobs-dataset-1280")


def test_a_training_job_is_followed_live_until_it_completes(
    console: Any, server: RunningServer, dataset: str, sources: dict[str, str]
) -> None:
    name = start_training(server, dataset, sources["training"], sleep=2)
    page = console.page
    console.goto(f"#/training-jobs/{name}")
    page.get_by_role("heading", name=name, level=1).wait_for()
    page.evaluate("() => { window.__sameDocument = true; }")
    facts = page.locator("dl.facts").first
    facts.locator(".badge", has_text="Completed").wait_for(timeout=90_000)
    assert page.evaluate("() => window.__sameDocument === true")  # no reload happened
    log = page.get_by_role("log", name=f"Log of {name}")
    page.wait_for_function(
        "(el) => el.textContent.includes('Test set: Average loss: 0.1250')",
        arg=log.element_handle(),
        timeout=20_000,
    )
    assert "classes=10 lr=0.05" in log.inner_text()
    page.wait_for_selector(".metric-chart[data-metric='test:loss'] .main-svg", timeout=20_000)
    rules = page.get_by_role("region", name="Rule evaluations")
    assert "ProfilerReport" in rules.inner_text()
    assert not page.get_by_role("button", name="Stop").count()  # an ended job cannot stop
    page.get_by_role("button", name="Show the report here").click()
    report = page.frame_locator("iframe.report")
    report.get_by_role("heading", name=f"Profiler report: {name}").wait_for(timeout=30_000)
    console.screenshot("jobs-training-job-1280")

    console.goto("#/training-jobs")
    page.get_by_label("Status").select_option("Completed")
    page.get_by_role("link", name=name).wait_for()
    page.get_by_label("Status").select_option("Failed")
    page.get_by_role("link", name=name).wait_for(state="detached")


def test_a_running_job_stops_after_a_confirmation(
    console: Any, server: RunningServer, dataset: str, sources: dict[str, str]
) -> None:
    name = start_training(server, dataset, sources["training"], sleep=60)
    page = console.page
    console.goto(f"#/training-jobs/{name}")
    log = page.get_by_role("log", name=f"Log of {name}")
    page.wait_for_function(
        "(el) => el.textContent.includes('sleeping step=')",
        arg=log.element_handle(),
        timeout=60_000,
    )
    page.get_by_role("button", name="Stop", exact=True).click()
    confirm = page.get_by_role("button", name="Stop the job")
    assert page.evaluate("() => document.activeElement.textContent") == "Stop the job"
    page.get_by_role("button", name="Cancel").click()
    assert not confirm.count()
    page.get_by_role("button", name="Stop", exact=True).click()
    confirm.click()
    page.locator("dl.facts .badge", has_text="Stop").first.wait_for(timeout=30_000)
    assert wait_for(server, f"/api/v1/training-jobs/{name}", timeout=60)["status"] == "Stopped"
    page.locator("dl.facts .badge", has_text="Stopped").first.wait_for(timeout=15_000)


def test_the_job_pages_fit_a_phone(
    narrow_console: Any, server: RunningServer, dataset: str, tuning_job: str
) -> None:
    tuning = wait_for(server, f"/api/v1/tuning-jobs/{tuning_job}")
    trial = tuning["best_training_job"]["training_job_name"]  # a training job with metrics
    page = narrow_console.page
    narrow_console.goto(f"#/training-jobs/{trial}")
    page.wait_for_selector(".metric-chart .main-svg", timeout=20_000)
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("jobs-training-job-390")
    narrow_console.goto(f"#/tuning-jobs/{tuning_job}")
    page.wait_for_selector(".objective-chart .main-svg", timeout=20_000)
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("jobs-tuning-job-390")
    narrow_console.goto(f"#/datasets/{dataset}")
    page.get_by_role("img", name="001.zero: train image 1").wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("jobs-dataset-390")


def test_a_tuning_job_shows_its_trials_and_objective_chart(
    console: Any, server: RunningServer, tuning_job: str
) -> None:
    wait_for(server, f"/api/v1/tuning-jobs/{tuning_job}", timeout=90)
    page = console.page
    console.goto("#/tuning-jobs")
    page.get_by_role("link", name=tuning_job).click()
    page.get_by_role("heading", name=tuning_job, level=1).wait_for()
    trials = page.get_by_role("region", name="Trials", exact=True)
    trials.locator("tbody tr").nth(1).wait_for()
    best = trials.locator("tr.best")
    assert best.count() == 1 and "epochs" in trials.inner_text()
    assert best.locator("td[data-label='epochs']").inner_text() == "3"
    page.wait_for_selector(".objective-chart .main-svg", timeout=20_000)
    best.get_by_role("link").click()
    page.locator("dl.facts .badge", has_text="Completed").first.wait_for()
    console.screenshot("jobs-tuning-trial-1280")
    console.goto(f"#/tuning-jobs/{tuning_job}")
    page.wait_for_selector(".objective-chart .main-svg", timeout=20_000)
    console.screenshot("jobs-tuning-job-1280")


def test_a_user_who_may_not_read_logs_sees_access_denied_there(
    new_context: Any, server: RunningServer, tuning_job: str
) -> None:
    trial = wait_for(server, f"/api/v1/tuning-jobs/{tuning_job}")["best_training_job"]
    name = trial["training_job_name"]
    user = unique("jobs-reader")
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    iam.create_user(UserName=user)
    allow = {"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [allow]}
    iam.put_user_policy(UserName=user, PolicyName="describe", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    console = new_context()
    console.expect_error(r"status of 403")
    console.sign_in_with_key(key["AccessKeyId"], key["SecretAccessKey"])
    console.goto(f"#/training-jobs/{name}")
    console.page.get_by_role("heading", name=name, level=1).wait_for()
    denied = console.page.get_by_role("region", name="Log").get_by_role("alert")
    denied.wait_for()
    assert "Access denied" in denied.inner_text() and "logs:GetLogEvents" in denied.inner_text()
    metrics = console.page.get_by_role("region", name="Metrics").get_by_role("alert")
    assert "Access denied" in metrics.inner_text()
    console.screenshot("jobs-training-job-denied-1280")
    console.assert_no_errors()
