"""The SDK's Estimator, PyTorch, TrainingInput and sagemaker.debugger names, without a
server: the bodies they post, what they refuse (naming the argument), and fit's waiting
and printing against a small fake of kennel's HTTP API."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import pytest

from kennel import UnexpectedStatusError
from kennel._errors import NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.debugger._spec import DEFAULT_COLLECTIONS
from kennel.sdk import _estimator
from kennel.sdk._debugger import (
    CollectionConfig,
    DebuggerHookConfig,
    ProfilerConfig,
    ProfilerRule,
    Rule,
    rule_configs,
)
from kennel.sdk._estimator import Estimator, PyTorch, TrainingJob
from kennel.sdk._inputs import DatasetInput, TrainingInput
from kennel.sdk._session import Session

ROLE = "arn:aws:iam::000000000000:role/trainer"


class FakeResponse:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def json(self) -> dict[str, Any]:
        return self.body


class FakeApi:
    """Records calls; serves jobs whose logs are given per host, which end (Completed, or
    as ``final``) once their logs have been read to the end."""

    endpoint_url = "http://kennel.test"
    region = "us-east-1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.uploads = 0
        self.jobs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, dict[str, str]] = {}
        self.final: dict[str, tuple[str, str | None]] = {}
        self.read: dict[tuple[str, str], int] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> FakeResponse:
        self.calls.append((method, path, kwargs))
        assert method == "PUT" and path == "/api/v1/uploads/sourcedir.tar.gz"
        assert kwargs["upload"].is_file()
        self.uploads += 1
        return FakeResponse({"uri": f"/store/uploads/{self.uploads}/sourcedir.tar.gz"})

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        self.calls.append(("POST", path, body))
        if path == "/api/v1/training-jobs":
            job = {
                **body,
                "status": "InProgress",
                "secondary_status": "Starting",
                "status_message": "Launch requested",
                "failure_reason": None,
                "model_artifact_uri": None,
                "billable_seconds": 0,
                "rule_evaluations": [
                    {
                        "rule_configuration_name": r.get("name") or r["rule"],
                        "status": "InProgress",
                        "status_details": "",
                        "advice": "",
                        "last_modified_time": None,
                    }
                    for block in ("debugger", "profiler")
                    for r in (body.get(block) or {}).get("rules", [])
                ],
            }
            self.jobs[body["name"]] = job
            self.logs.setdefault(body["name"], {})
            return job
        if path.endswith("/stop"):
            return self.jobs[path.split("/")[-2]]
        raise AssertionError(path)

    def get(self, path: str, **kwargs: Any) -> Any:
        self.calls.append(("GET", path, kwargs))
        parts = path.split("/")
        name = parts[4]
        if name not in self.jobs:
            raise NotFoundError(f"Training job {name!r} does not exist.")
        job = self.jobs[name]
        if parts[-1] == "logs":
            host, offset = kwargs["params"]["host"], kwargs["params"]["offset"]
            text = self.logs[name].get(host, "")
            data = text[offset : offset + 7]  # small chunks: lines arrive in pieces
            self.read[(name, host)] = offset + len(data)
            self._maybe_end(name)
            return {
                "host": host,
                "data": data,
                "next_offset": offset + len(data),
                "complete": job["status"] not in ("InProgress", "Stopping"),
                "status": job["status"],
                "secondary_status": job["secondary_status"],
            }
        self._maybe_end(name)
        return dict(job)

    def _maybe_end(self, name: str) -> None:
        job = self.jobs[name]
        hosts = [f"algo-{i + 1}" for i in range(job["instance_count"])]
        done = all(self.read.get((name, h), 0) >= len(self.logs[name].get(h, "")) for h in hosts)
        if done and job["status"] == "InProgress":
            status, reason = self.final.get(name, ("Completed", None))
            job.update(status=status, secondary_status=status, failure_reason=reason)
            if status == "Completed":
                job["model_artifact_uri"] = f"/store/training-jobs/{name}/output/model.tar.gz"
                job["billable_seconds"] = 12
            for rule in job["rule_evaluations"]:
                rule["status"] = "NoIssuesFound"

    def posted(self) -> list[dict[str, Any]]:
        return [c[2] for c in self.calls if c[0] == "POST" and c[1] == "/api/v1/training-jobs"]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def session(api: FakeApi, tmp_path: Path) -> Session:
    made = Session(endpoint_url=api.endpoint_url, settings=Settings(home=tmp_path / "home"))
    made._api = api  # type: ignore[assignment]
    return made


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train.py").write_text("print('training')\n")
    (folder / "util.py").write_text("X = 1\n")
    return folder


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingJob, "poll_seconds", 0.0)


def pytorch(session: Session, source: Path, **kwargs: Any) -> PyTorch:
    arguments: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(source),
        "instance_count": 2,
        "instance_type": "ml.m5.xlarge",
        "sagemaker_session": session,
    }
    return PyTorch(**{**arguments, **kwargs})


# The body -----------------------------------------------------------------------------------


def test_the_body_carries_what_the_estimator_was_given(session: Session, source: Path) -> None:
    estimator = pytorch(
        session,
        source,
        hyperparameters={"epochs": 3, "lr": 0.5, "amp": True, "arch": "mlp"},
        metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
        max_run=600,
        environment={"SEED": "1"},
        base_job_name="mnist",
        output_path="/store/models",
    )
    body = estimator.training_job_spec("/data/train", job_name="mnist-1")
    assert body["name"] == "mnist-1"
    assert body["entry_point"] == "train.py"
    assert body["source_uri"] == "/store/uploads/1/sourcedir.tar.gz"
    assert body["hyperparameters"] == {"epochs": "3", "lr": "0.5", "amp": "true", "arch": "mlp"}
    assert estimator.hyperparameters() == body["hyperparameters"]
    assert body["metric_definitions"] == [{"name": "train:loss", "regex": r"loss=([0-9.]+)"}]
    assert body["instance_count"] == 2 and body["instance_type"] == "ml.m5.xlarge"
    assert body["max_runtime_seconds"] == 600
    assert body["environment"] == {"SEED": "1"}
    assert body["channels"] == {"training": "/data/train"}
    # SageMaker's layout: <output_path>/<job name>/output/model.tar.gz
    assert body["output_path"] == "/store/models/mnist-1/output"
    assert body["profiler"] == {"enabled": True, "interval_ms": 500}
    assert "debugger" not in body
    generated = estimator.training_job_spec()["name"]
    assert generated.startswith("mnist-") and len(generated) == len("mnist-") + 23


def test_the_source_is_uploaded_once_and_again_when_a_file_changes(
    session: Session, api: FakeApi, source: Path
) -> None:
    estimator = pytorch(session, source)
    first = estimator.training_job_spec()["source_uri"]
    assert estimator.training_job_spec()["source_uri"] == first
    assert api.uploads == 1
    (source / "util.py").write_text("X = 2  # changed\n")
    assert estimator.training_job_spec()["source_uri"] != first
    assert api.uploads == 2


def test_a_script_without_source_dir_is_uploaded_alone(
    session: Session, api: FakeApi, source: Path
) -> None:
    estimator = Estimator(entry_point=str(source / "train.py"), sagemaker_session=session)
    body = estimator.training_job_spec()
    assert body["entry_point"] == "train.py"
    assert api.uploads == 1
    assert body["name"].startswith("training-job-")
    missing = Estimator(entry_point="nowhere.py", sagemaker_session=session)
    with pytest.raises(ValidationError, match="entry_point 'nowhere.py'"):
        missing.training_job_spec()
    with pytest.raises(ValidationError, match="entry_point 'nope.py' is not in source_dir"):
        pytorch(session, source, entry_point="nope.py").training_job_spec()


def test_the_builtin_trainer_needs_no_source(session: Session, api: FakeApi) -> None:
    estimator = Estimator(
        entry_point="kennel.trainer",
        hyperparameters={"arch": "small-cnn"},
        sagemaker_session=session,
    )
    body = estimator.training_job_spec(DatasetInput("flowers"))
    assert body["entry_point"] == "kennel.trainer"
    assert "source_uri" not in body
    assert body["dataset"] == "flowers"
    assert api.uploads == 0
    with pytest.raises(ValidationError, match="source_dir is not used"):
        Estimator(entry_point="kennel.trainer", source_dir="src", sagemaker_session=session)


def test_a_source_dir_that_is_an_archive_uri_is_used_as_it_is(
    session: Session, api: FakeApi
) -> None:
    estimator = pytorch(session, Path("x"), source_dir="s3://bucket/code/sourcedir.tar.gz")
    assert estimator.training_job_spec()["source_uri"] == "s3://bucket/code/sourcedir.tar.gz"
    assert api.uploads == 0


def test_hyperparameters_and_metric_definitions_are_checked(session: Session) -> None:
    with pytest.raises(ValidationError, match=r"hyperparameters\['layers'\] is a list"):
        Estimator(entry_point="kennel.trainer", hyperparameters={"layers": [1, 2]})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match=r"metric_definitions\[0\].*exactly 'Name'"):
        Estimator(entry_point="kennel.trainer", metric_definitions=[{"Name": "a"}])
    with pytest.raises(ValidationError, match="needs a group"):
        Estimator(entry_point="kennel.trainer", metric_definitions=[{"Name": "a", "Regex": "loss"}])
    estimator = Estimator(entry_point="kennel.trainer", sagemaker_session=session)
    estimator.set_hyperparameters(epochs=2, freeze=False)
    assert estimator.hyperparameters() == {"epochs": "2", "freeze": "false"}


# Inputs ---------------------------------------------------------------------------------------


def test_the_forms_of_inputs(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estimator = Estimator(entry_point="kennel.trainer", sagemaker_session=session)
    (tmp_path / "valid").mkdir()
    monkeypatch.chdir(tmp_path)
    body = estimator.training_job_spec(
        {"train": "s3://bucket/train", "valid": TrainingInput("valid")}, job_name="j"
    )
    assert body["channels"] == {"train": "s3://bucket/train", "valid": str(tmp_path / "valid")}
    assert "dataset" not in body
    one = estimator.training_job_spec(TrainingInput("s3://bucket/all"), job_name="j")
    assert one["channels"] == {"training": "s3://bucket/all"}
    assert "channels" not in estimator.training_job_spec(None, job_name="j")
    with pytest.raises(ValidationError, match="channel 'train' is a DatasetInput"):
        estimator.training_job_spec({"train": DatasetInput("d")})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="not int"):
        estimator.training_job_spec(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"distribution": "ShardedByS3Key"}, "distribution='ShardedByS3Key'"),
        ({"content_type": "text/csv"}, "content_type='text/csv'"),
        ({"input_mode": "Pipe"}, "input_mode='Pipe'"),
        ({"compression": "Gzip"}, "compression='Gzip'"),
        ({"s3_data_type": "ManifestFile"}, "s3_data_type='ManifestFile'"),
        ({"shuffle_config": {"Seed": 1}}, "shuffle_config"),
    ],
)
def test_training_input_refuses_what_kennel_cannot_do(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TrainingInput("s3://bucket/train", **kwargs)
    assert words in str(caught.value)
    assert caught.value.hint


def test_training_input_takes_sagemakers_defaults() -> None:
    given = TrainingInput(
        "s3://b/t", distribution="FullyReplicated", input_mode="FastFile", attribute_names=None
    )
    assert given.uri() == "s3://b/t"


# Refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"image_uri": "123.dkr.ecr/pytorch:2"}, "image_uri="),
        ({"use_spot_instances": True}, "use_spot_instances=True"),
        ({"max_wait": 3600}, "max_wait=3600"),
        ({"volume_size": 100}, "volume_size=100"),
        ({"subnets": ["subnet-1"]}, "subnets="),
        ({"security_group_ids": ["sg-1"]}, "security_group_ids="),
        ({"checkpoint_s3_uri": "s3://b/ckpt"}, "checkpoint_s3_uri="),
        ({"input_mode": "Pipe"}, "input_mode='Pipe'"),
        ({"tags": [{"Key": "team", "Value": "ml"}]}, "tags="),
        ({"enable_network_isolation": True}, "enable_network_isolation=True"),
        ({"keep_alive_period_in_seconds": 600}, "keep_alive_period_in_seconds=600"),
        ({"instance_type": "local"}, "local mode"),
        ({"instance_count": 0}, "instance_count=0"),
        ({"max_run": 0}, "max_run=0"),
        ({"role": "trainer"}, "role 'trainer' is not an IAM role ARN"),
        ({"environment": {"N": 1}}, "environment="),
        ({"base_job_name": "my_job"}, "base_job_name name 'my_job'"),
    ],
)
def test_what_kennel_cannot_honour_is_refused_by_name(
    session: Session, source: Path, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        pytorch(session, source, **kwargs)
    assert words in str(caught.value)


def test_an_unknown_argument_is_refused_with_a_suggestion(session: Session, source: Path) -> None:
    with pytest.raises(ValidationError, match="unknown argument 'hyperparameter'") as caught:
        Estimator(entry_point="kennel.trainer", hyperparameter={"a": 1})
    assert caught.value.hint == "Did you mean 'hyperparameters'?"


def test_sagemakers_not_used_values_pass(session: Session, source: Path) -> None:
    estimator = pytorch(
        session,
        source,
        use_spot_instances=False,
        volume_size=30,
        input_mode="File",
        tags=None,
        subnets=None,
        enable_sagemaker_metrics=True,
        container_log_level=20,
        disable_output_compression=False,
    )
    assert estimator.training_job_spec()["instance_count"] == 2


def test_entry_point_is_needed(session: Session) -> None:
    with pytest.raises(ValidationError, match="needs entry_point"):
        Estimator(sagemaker_session=session)


def test_a_role_is_checked_once_against_kennels_iam(
    session: Session, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(_estimator, "role_exists", lambda s, role: checked.append(role))
    estimator = pytorch(session, source, role=ROLE)
    estimator.training_job_spec()
    estimator.training_job_spec()
    assert checked == [ROLE]
    assert estimator.role == ROLE


# PyTorch ------------------------------------------------------------------------------------------


def test_framework_and_python_versions_are_those_kennel_runs(
    session: Session, source: Path
) -> None:
    major, minor = importlib.metadata.version("torch").split(".")[:2]
    running = f"py{sys.version_info.major}{sys.version_info.minor}"
    made = pytorch(session, source, framework_version=f"{major}.{minor}", py_version=running)
    assert made.framework_version == f"{major}.{minor}"
    pytorch(session, source, framework_version=major, py_version="py3")
    with pytest.raises(ValidationError, match="framework_version='1.8'") as caught:
        pytorch(session, source, framework_version="1.8")
    assert caught.value.hint == f"Give framework_version='{major}.{minor}', or leave it out."
    with pytest.raises(ValidationError, match="py_version='py27'") as python:
        pytorch(session, source, py_version="py27")
    assert running in str(python.value.hint)
    with pytest.raises(ValidationError, match="not like 'py311'"):
        pytorch(session, source, py_version="3.11")


@pytest.mark.parametrize(
    "distribution",
    [
        None,
        {"torch_distributed": {"enabled": True}},
        {"pytorchddp": {"enabled": True}},
    ],
)
def test_torch_distributed_launchers_need_no_switch(
    session: Session, source: Path, distribution: dict[str, Any] | None
) -> None:
    assert pytorch(session, source, distribution=distribution).instance_count == 2


@pytest.mark.parametrize(
    ("distribution", "words"),
    [
        ({"smdistributed": {"dataparallel": {"enabled": True}}}, "'smdistributed'"),
        ({"mpi": {"enabled": True}}, "'mpi'"),
        ({"torch_distributed": {"enabled": True, "nproc": 2}}, "only {'enabled': True}"),
    ],
)
def test_other_distribution_strategies_are_refused(
    session: Session, source: Path, distribution: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError, match="distribution") as caught:
        pytorch(session, source, distribution=distribution)
    assert words in str(caught.value)


def test_pytorch_jobs_are_named_like_sagemakers(session: Session, source: Path) -> None:
    assert pytorch(session, source).training_job_spec()["name"].startswith("pytorch-training-")


# Debugger and profiler ---------------------------------------------------------------------------


def test_rules_become_the_debugger_and_profiler_blocks(session: Session, source: Path) -> None:
    rules = [
        Rule.sagemaker(
            rule_configs.vanishing_gradient(),
            rule_parameters={"threshold": "1e-6"},
            actions=rule_configs.ActionList(rule_configs.StopTraining()),
        ),
        Rule.sagemaker(rule_configs.exploding_tensor(), name="exploding"),
        ProfilerRule.sagemaker(rule_configs.ProfilerReport()),
        ProfilerRule.sagemaker(rule_configs.CPUBottleneck(threshold=70)),
    ]
    body = pytorch(session, source, rules=rules).training_job_spec()
    assert body["debugger"] == {
        "collections": list(DEFAULT_COLLECTIONS),
        "rules": [
            {
                "rule": "VanishingGradient",
                "parameters": {"threshold": "1e-6"},
                "actions": ["StopTraining"],
            },
            {"rule": "ExplodingTensor", "parameters": {}, "name": "exploding"},
        ],
    }
    assert body["profiler"] == {
        "enabled": True,
        "interval_ms": 500,
        "rules": [
            {"rule": "ProfilerReport", "parameters": {}},
            {"rule": "CPUBottleneck", "parameters": {"threshold": 70}},
        ],
    }


def test_the_collections_a_rule_reads_are_added(session: Session, source: Path) -> None:
    dead = [Rule.sagemaker(rule_configs.dead_relu())]
    default_hook = pytorch(session, source, rules=dead).training_job_spec()
    assert default_hook["debugger"]["collections"] == [*DEFAULT_COLLECTIONS, "activations"]
    hook = DebuggerHookConfig(
        hook_parameters={"save_interval": "10"},
        collection_configs=[CollectionConfig("losses"), CollectionConfig("biases")],
    )
    body = pytorch(session, source, rules=dead, debugger_hook_config=hook).training_job_spec()
    assert body["debugger"]["collections"] == ["losses", "weights", "activations"]
    assert body["debugger"]["save_interval"] == 10
    extra = [
        Rule.sagemaker(
            rule_configs.overfit(), collections_to_save=[CollectionConfig("relu_activations")]
        )
    ]
    hooked = pytorch(session, source, rules=extra, debugger_hook_config=DebuggerHookConfig())
    assert hooked.training_job_spec()["debugger"]["collections"] == [
        *DEFAULT_COLLECTIONS,
        "activations",
    ]


def test_a_hook_without_rules_saves_what_it_is_told(session: Session, source: Path) -> None:
    hook = DebuggerHookConfig(
        collection_configs=[
            CollectionConfig("gradients", parameters={"save_interval": "5"}),
            CollectionConfig("weights", parameters={"save_interval": "5"}),
        ]
    )
    body = pytorch(session, source, debugger_hook_config=hook).training_job_spec()
    assert body["debugger"] == {"collections": ["gradients", "weights"], "save_interval": 5}


def test_the_profilers_settings(session: Session, source: Path) -> None:
    fast = pytorch(
        session, source, profiler_config=ProfilerConfig(system_monitor_interval_millis=100)
    )
    assert fast.training_job_spec()["profiler"] == {"enabled": True, "interval_ms": 100}
    off = pytorch(session, source, disable_profiler=True)
    assert off.training_job_spec()["profiler"] == {"enabled": False}
    also_off = pytorch(session, source, profiler_config=ProfilerConfig(disable_profiler=True))
    assert also_off.training_job_spec()["profiler"] == {"enabled": False}


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: Rule.sagemaker(rule_configs.overfit(), rule_parameters={"nope": "1"}),
            "nope",
        ),
        (
            lambda: Rule.sagemaker(rule_configs.overfit(), rule_parameters={"patience": "x"}),
            "patience",
        ),
        (lambda: rule_configs.CPUBottleneck(nope=1), "nope"),
        (lambda: Rule.sagemaker(rule_configs.ProfilerReport()), "ProfilerRule.sagemaker"),
        (lambda: ProfilerRule.sagemaker(rule_configs.dead_relu()), "rule_configs.dead_relu()"),
        (lambda: Rule.sagemaker({"DebugRuleConfiguration": {}}), "takes a rule from"),  # type: ignore[arg-type]
        (lambda: Rule.sagemaker(rule_configs.overfit(), s3_output_path="s3://b/r"), "s3_output"),
        (lambda: Rule.custom(name="mine", image_uri="x"), "built-in rules"),
        (lambda: rule_configs.Email("me@example.com"), "e-mail"),
        (lambda: rule_configs.SMS("+100"), "SMS"),
        (lambda: rule_configs.ActionList("Email"), "StopTraining()"),  # type: ignore[arg-type]
        (lambda: rule_configs.StopTraining(training_job_prefix="other"), "training_job_prefix"),
        (lambda: rule_configs.weight_update_ratio(), "VanishingGradient"),  # type: ignore[attr-defined]
        (lambda: CollectionConfig("sm_metrics"), "sm_metrics"),
        (lambda: CollectionConfig("weights", parameters={"include_regex": ".*"}), "include_regex"),
        (lambda: DebuggerHookConfig(hook_parameters={"save_steps": "1,2"}), "save_steps"),
        (lambda: DebuggerHookConfig(s3_output_path="s3://b/d"), "s3_output_path"),
        (
            lambda: DebuggerHookConfig(
                hook_parameters={"save_interval": "10"},
                collection_configs=[CollectionConfig("weights", {"save_interval": "5"})],
            ),
            "one interval",
        ),
        (lambda: ProfilerConfig(system_monitor_interval_millis=123), "123"),
        (lambda: ProfilerConfig(framework_profile_params=object()), "framework_profile_params"),
    ],
)
def test_debugger_settings_kennel_cannot_honour_are_refused(make: Any, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make()
    assert words in str(caught.value) + str(caught.value.hint)


def test_rules_that_need_what_is_turned_off_are_refused(session: Session, source: Path) -> None:
    with pytest.raises(ValidationError, match="debugger_hook_config=False"):
        pytorch(
            session,
            source,
            rules=[Rule.sagemaker(rule_configs.overfit())],
            debugger_hook_config=False,
        )
    with pytest.raises(ValidationError, match="disable_profiler=True"):
        pytorch(
            session,
            source,
            rules=[ProfilerRule.sagemaker(rule_configs.StepOutlier())],
            disable_profiler=True,
        )
    with pytest.raises(ValidationError, match="named 'VanishingGradient'"):
        pytorch(
            session,
            source,
            rules=[
                Rule.sagemaker(rule_configs.vanishing_gradient()),
                Rule.sagemaker(rule_configs.vanishing_gradient()),
            ],
        )
    with pytest.raises(ValidationError, match=r"rules\[0\] is a dict"):
        pytorch(session, source, rules=[{"rule": "overfit"}])  # type: ignore[list-item]


# fit, wait, logs ------------------------------------------------------------------------------


def test_fit_prints_every_instances_log_and_the_rule_statuses(
    session: Session, api: FakeApi, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    estimator = pytorch(session, source, rules=[Rule.sagemaker(rule_configs.exploding_tensor())])
    api.logs["job-1"] = {
        "algo-1": "epoch=0 loss=1.0\nepoch=1 loss=0.5\n",
        "algo-2": "rank 1 ready\nno newline at the end",
    }
    estimator.fit({"train": "/data/train"}, job_name="job-1")
    out = capsys.readouterr().out
    assert "[algo-1] epoch=0 loss=1.0\n[algo-1] epoch=1 loss=0.5\n" in out
    assert "[algo-2] rank 1 ready\n" in out
    assert "[algo-2] no newline at the end\n" in out
    assert "Starting - Launch requested" in out
    assert "*  ExplodingTensor: NoIssuesFound" in out
    assert "Billable seconds: 12" in out
    assert estimator.latest_training_job == "job-1"
    assert estimator.latest_training_job is not None
    assert estimator.latest_training_job.name == "job-1"
    assert estimator.model_data == "/store/training-jobs/job-1/output/model.tar.gz"
    assert estimator.rule_job_summary() == [
        {
            "RuleConfigurationName": "ExplodingTensor",
            "RuleEvaluationStatus": "NoIssuesFound",
            "StatusDetails": "",
            "LastModifiedTime": None,
            "Advice": "",
        }
    ]
    assert estimator.describe()["status"] == "Completed"


def test_one_instance_prints_without_a_prefix_and_logs_false_prints_nothing(
    session: Session, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    estimator = Estimator(entry_point="kennel.trainer", sagemaker_session=session)
    api.logs["one"] = {"algo-1": "epoch=0 valid_accuracy=0.5\n"}
    estimator.fit(DatasetInput("d"), job_name="one")
    assert "\nepoch=0 valid_accuracy=0.5\n" in capsys.readouterr().out
    api.logs["quiet"] = {}
    estimator.fit(DatasetInput("d"), job_name="quiet", logs=False)
    assert capsys.readouterr().out == ""
    estimator.fit(DatasetInput("d"), job_name="later", wait=False)
    assert api.jobs["later"]["status"] == "InProgress"
    with pytest.raises(ValidationError, match="logs='Some'"):
        estimator.fit(job_name="x", logs="Some")


def test_a_failed_job_raises_naming_the_job_and_the_reason(
    session: Session, api: FakeApi, source: Path
) -> None:
    estimator = pytorch(session, source)
    api.logs["broken"] = {"algo-1": "Traceback ...\n"}
    api.final["broken"] = ("Failed", "AlgorithmError: ZeroDivisionError: division by zero")
    with pytest.raises(UnexpectedStatusError) as caught:
        estimator.fit(job_name="broken")
    assert "broken" in str(caught.value)
    assert "ZeroDivisionError" in str(caught.value)
    assert caught.value.actual_status == "Failed"
    with pytest.raises(ValidationError, match="broken has no model: it is Failed"):
        _ = estimator.model_data


def test_a_stopped_job_is_an_end_like_sagemakers(
    session: Session, api: FakeApi, source: Path
) -> None:
    api.logs["stopped"] = {}
    api.final["stopped"] = ("Stopped", None)
    estimator = pytorch(session, source)
    estimator.fit(job_name="stopped", logs=False)
    assert estimator.describe()["status"] == "Stopped"


def test_before_fit_there_is_no_job(session: Session, source: Path) -> None:
    estimator = pytorch(session, source)
    with pytest.raises(ValidationError, match="no training job yet"):
        estimator.describe()
    with pytest.raises(ValidationError, match="no training job yet"):
        _ = estimator.model_data
    with pytest.raises(ValidationError, match="experiment_config"):
        estimator.fit(experiment_config={"ExperimentName": "e"})


def test_attach_gives_an_estimator_of_the_same_job(
    session: Session, api: FakeApi, source: Path
) -> None:
    rules = [Rule.sagemaker(rule_configs.overfit())]
    original = pytorch(
        session,
        source,
        rules=rules,
        hyperparameters={"epochs": 2},
        metric_definitions=[{"Name": "loss", "Regex": "loss=(.+)"}],
        output_path="/store/out",
    )
    api.logs["first"] = {}
    original.fit(job_name="first", logs=False)
    # What the server answers has the blocks validated (defaults filled in).
    api.jobs["first"]["debugger"] = {**api.jobs["first"]["debugger"], "save_interval": 100}
    attached = PyTorch.attach("first", sagemaker_session=session)
    assert isinstance(attached, PyTorch)
    assert attached.latest_training_job == "first"
    assert attached.model_data == original.model_data
    again = attached.training_job_spec(job_name="second")
    assert again["entry_point"] == "train.py"
    assert again["source_uri"] == api.jobs["first"]["source_uri"]
    assert again["hyperparameters"] == {"epochs": "2"}
    assert again["metric_definitions"] == [{"name": "loss", "regex": "loss=(.+)"}]
    assert again["output_path"] == "/store/out/second/output"
    assert again["debugger"]["rules"] == api.jobs["first"]["debugger"]["rules"]
    assert api.uploads == 1
    with pytest.raises(NotFoundError):
        Estimator.attach("nothing", sagemaker_session=session)


def test_deploy_hands_the_job_to_the_predictor_module(
    session: Session, api: FakeApi, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kennel.sdk import _predictor

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        _predictor, "deploy_training_job", lambda *a, **k: calls.append((a, k)) or "predictor"
    )
    estimator = pytorch(session, source)
    with pytest.raises(ValidationError, match="no training job yet"):
        estimator.deploy(1, "ml.m5.large")
    api.logs["served"] = {}
    estimator.fit(job_name="served", logs=False)
    with pytest.raises(ValidationError, match="accelerator_type='ml.eia1.medium'"):
        estimator.deploy(1, "ml.m5.large", accelerator_type="ml.eia1.medium")
    with pytest.raises(ValidationError, match="needs initial_instance_count"):
        estimator.deploy()
    assert estimator.deploy(1, "ml.m5.large", endpoint_name="ep", tags=None) == "predictor"
    (args, kwargs) = calls[0]
    assert args == (session, "served")
    assert kwargs == {
        "initial_instance_count": 1,
        "instance_type": "ml.m5.large",
        "endpoint_name": "ep",
        "serializer": None,
        "deserializer": None,
        "wait": True,
    }


def test_the_training_job_handle_is_its_name(session: Session, api: FakeApi) -> None:
    job = TrainingJob("handle", session)
    assert job == "handle" and job.job_name == "handle" and f"{job}" == "handle"
    api.jobs["handle"] = {"name": "handle", "status": "InProgress", "instance_count": 1}
    job.stop()
    assert ("POST", "/api/v1/training-jobs/handle/stop", {}) in api.calls
