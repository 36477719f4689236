"""The SDK's estimators against a real server: a user's PyTorch script on two instances
with Debugger and profiler rules, the built-in trainer on a data set, a failing script,
and a role kennel does not have."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._server import RunningServer

from kennel import UnexpectedStatusError
from kennel._errors import ValidationError
from kennel._settings import load_settings
from kennel.sdk._debugger import ProfilerRule, Rule, rule_configs
from kennel.sdk._estimator import Estimator, PyTorch, TrainingJob
from kennel.sdk._inputs import DatasetInput
from kennel.sdk._session import Session

SCRIPTS = Path(__file__).parent / "scripts"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def session(server: RunningServer) -> Iterator[Session]:
    """A Session as a user has one: the server's profile, read from its files."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "KENNEL_HOME"):
            patch.setenv(name, server.env[name])
        made = Session(endpoint_url=server.url, settings=load_settings(home=server.home))
        assert made.api.endpoint_url == server.url  # credentials read now, from those files
    yield made
    made.close()


@pytest.fixture(scope="module")
def role(server: RunningServer) -> str:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    created = iam.create_role(RoleName="sdk-trainer", AssumeRolePolicyDocument=json.dumps(TRUST))
    return str(created["Role"]["Arn"])


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingJob, "poll_seconds", 0.25)


def test_a_pytorch_script_on_two_instances_with_rules(
    session: Session, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_version = ".".join(importlib.metadata.version("torch").split(".")[:2])
    estimator = PyTorch(
        entry_point="train_mlp.py",
        source_dir=str(SCRIPTS),
        role=role,
        framework_version=torch_version,
        py_version=f"py{sys.version_info.major}{sys.version_info.minor}",
        instance_count=2,
        instance_type="ml.m5.large",
        hyperparameters={"epochs": 2, "steps": 15},
        metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
        distribution={"torch_distributed": {"enabled": True}},
        rules=[
            Rule.sagemaker(rule_configs.exploding_tensor()),
            ProfilerRule.sagemaker(rule_configs.ProfilerReport()),
        ],
        base_job_name="sdk-mlp",
        sagemaker_session=session,
    )
    estimator.fit(wait=True, logs=True)

    out = capsys.readouterr().out
    assert "[algo-1] epoch=1 loss=" in out and "[algo-2] epoch=1 loss=" in out
    assert "*  ExplodingTensor: NoIssuesFound" in out
    job = estimator.latest_training_job
    assert job is not None and job.name.startswith("sdk-mlp-")
    with tarfile.open(estimator.model_data) as tar:
        assert tar.getnames() == ["model.pth"]
    summary = {r["RuleConfigurationName"]: r for r in estimator.rule_job_summary()}
    assert summary["ExplodingTensor"]["RuleEvaluationStatus"] == "NoIssuesFound"
    assert summary["ProfilerReport"]["RuleEvaluationStatus"] in ("NoIssuesFound", "IssuesFound")
    described = estimator.describe()
    assert described["hyperparameters"] == {"epochs": "2", "steps": "15"}
    assert (
        "debugger" in described and described["debugger"]["rules"][0]["rule"] == "ExplodingTensor"
    )

    attached = PyTorch.attach(job.name, sagemaker_session=session)
    assert attached.describe()["name"] == job.name
    assert attached.model_data == estimator.model_data
    assert attached.training_job_spec(job_name="again")["source_uri"] == described["source_uri"]


def test_the_builtin_trainer_on_a_data_set(
    session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    session.api.post("/api/v1/datasets", {"name": "sdk-demo", "demo": {"image_size": 16}})
    estimator = Estimator(
        entry_point="kennel.trainer",
        instance_type="ml.m5.large",
        hyperparameters={"arch": "small-cnn", "epochs": 1, "image-size": 16},
        sagemaker_session=session,
    )
    estimator.fit(DatasetInput("sdk-demo"), logs="Training")
    assert "valid_accuracy=" in capsys.readouterr().out
    job = estimator.describe()
    assert job["status"] == "Completed"
    assert set(job["channels"]) == {"train", "valid", "test"}
    assert "validation:accuracy" in job["final_metrics"]
    assert estimator.model_data.endswith("/output/model.tar.gz")


def test_a_failing_script_raises_naming_the_job_and_the_reason(session: Session) -> None:
    estimator = PyTorch(
        entry_point="failing.py", source_dir=str(SCRIPTS), sagemaker_session=session
    )
    with pytest.raises(UnexpectedStatusError) as caught:
        estimator.fit(job_name="sdk-failing", logs=False)
    assert "sdk-failing" in str(caught.value)
    assert "ZeroDivisionError" in str(caught.value)
    assert caught.value.actual_status == "Failed"


def test_a_role_kennel_does_not_have_is_refused_before_any_job(session: Session, role: str) -> None:
    missing = role.replace("sdk-trainer", "no-such-role")
    estimator = PyTorch(
        entry_point="train_mlp.py", source_dir=str(SCRIPTS), role=missing, sagemaker_session=session
    )
    with pytest.raises(ValidationError, match="does not exist in kennel"):
        estimator.fit(job_name="sdk-no-role")
    jobs = session.api.get("/api/v1/training-jobs")["training_jobs"]
    assert "sdk-no-role" not in {j["name"] for j in jobs}
