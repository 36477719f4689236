"""HyperparameterTuner: SageMaker's arguments mapped onto kennel's TuningJobSpec, the rest
refused by name; ranges; waiting; analytics. A fake API stands in for the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kennel import UnexpectedStatusError
from kennel._errors import ValidationError
from kennel.sdk._tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperbandStrategyConfig,
    HyperparameterTuner,
    HyperparameterTuningJobAnalytics,
    IntegerParameter,
    StrategyConfig,
    TuningJobCompletionCriteriaConfig,
    WarmStartConfig,
    WarmStartTypes,
)
from kennel.tuning import TuningJobSpec

TRAINING = {
    "entry_point": "kennel.trainer",
    "dataset": "digits",
    "hyperparameters": {"arch": "small-cnn", "epochs": 1, "lr": 0.01},
    "instance_type": "ml.m5.large",
    "instance_count": 1,
    "max_runtime_seconds": 600,
    "environment": {},
    "channels": {},
}


class FakeApi:
    """Answers GETs from a table (a callable per path, or a list of answers in turn)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def post(self, path: str, body: Any) -> Any:
        self.posts.append((path, body))
        if path == "/api/v1/tuning-jobs":
            return {"name": body["name"], "status": "InProgress"}
        return {}

    def get(self, path: str, **_: Any) -> Any:
        answer = self.answers[path]
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer() if callable(answer) else answer


class FakeSession:
    def __init__(self) -> None:
        self.api = FakeApi()


class FakeEstimator:
    """What the tuner needs of an Estimator: training_job_spec() and sagemaker_session."""

    def __init__(self, spec: dict[str, Any] | None = None, base_job_name: str | None = None):
        self.sagemaker_session = FakeSession()
        self.spec = dict(TRAINING if spec is None else spec)
        self.base_job_name = base_job_name
        self.inputs: list[Any] = []

    def training_job_spec(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        self.inputs.append(inputs)
        return dict(self.spec)


def tuner(**kwargs: Any) -> HyperparameterTuner:
    arguments: dict[str, Any] = {
        "estimator": FakeEstimator(),
        "objective_metric_name": "validation:loss",
        "hyperparameter_ranges": {"lr": ContinuousParameter(0.001, 0.1, "Logarithmic")},
        "objective_type": "Minimize",
    }
    arguments.update(kwargs)
    return HyperparameterTuner(**arguments)


def test_sagemakers_arguments_become_a_valid_tuning_job_spec() -> None:
    made = tuner(
        hyperparameter_ranges={
            "lr": ContinuousParameter(0.001, 0.1, scaling_type="Logarithmic"),
            "batch-size": CategoricalParameter([16, 32]),
            "epochs": IntegerParameter(1, 3),
        },
        max_jobs=4,
        max_parallel_jobs=2,
        max_runtime_in_seconds=3600,
        early_stopping_type="Auto",
        random_seed=7,
        completion_criteria_config=TuningJobCompletionCriteriaConfig(
            max_number_training_jobs_not_improving=3, target_objective_metric_value=0.05
        ),
    )
    spec = made.tuning_job_spec("digits", job_name="tune-1")
    assert spec == {
        "name": "tune-1",
        "parameter_ranges": {
            "continuous": [
                {"name": "lr", "min_value": 0.001, "max_value": 0.1, "scaling_type": "Logarithmic"}
            ],
            "integer": [{"name": "epochs", "min_value": 1, "max_value": 3, "scaling_type": "Auto"}],
            "categorical": [{"name": "batch-size", "values": [16, 32]}],
        },
        # the tuned ones (lr, epochs) leave the static hyperparameters
        "static_hyperparameters": {"arch": "small-cnn"},
        "objective": {"metric_name": "validation:loss", "type": "Minimize"},
        "strategy": "Bayesian",
        "max_training_jobs": 4,
        "max_parallel_training_jobs": 2,
        "early_stopping": "Auto",
        "entry_point": "kennel.trainer",
        "dataset": "digits",
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "max_runtime_seconds": 600,
        "environment": {},
        "channels": {},
        "max_tuning_runtime_seconds": 3600,
        "random_seed": 7,
        "max_jobs_not_improving": 3,
        "target_objective_value": 0.05,
    }
    TuningJobSpec.model_validate(spec)  # what the server checks
    assert made.estimator.inputs == ["digits"]


def test_defaults_are_sagemakers() -> None:
    made = tuner(objective_type="Maximize", objective_metric_name="validation:accuracy")
    spec = made.tuning_job_spec(job_name="t")
    assert spec["strategy"] == "Bayesian"
    assert spec["objective"]["type"] == "Maximize"
    assert spec["max_training_jobs"] == 1 and spec["max_parallel_training_jobs"] == 1
    assert spec["early_stopping"] == "Off"
    TuningJobSpec.model_validate(spec)


def test_a_grid_without_max_jobs_runs_the_whole_grid() -> None:
    made = tuner(
        strategy="Grid",
        hyperparameter_ranges={"batch-size": CategoricalParameter([16, 32, 64])},
    )
    spec = made.tuning_job_spec(job_name="grid")
    assert spec["max_training_jobs"] == 500  # the server stops at the grid's size
    TuningJobSpec.model_validate(spec)


def test_warm_start_and_hyperband_map_onto_the_spec() -> None:
    warm = tuner(
        warm_start_config=WarmStartConfig(WarmStartTypes.TRANSFER_LEARNING, ["p1", "p2"]),
    ).tuning_job_spec(job_name="warm")
    assert warm["warm_start"] == {"parent_tuning_jobs": ["p1", "p2"], "type": "TransferLearning"}
    TuningJobSpec.model_validate(warm)
    band = tuner(
        strategy="Hyperband",
        strategy_config=StrategyConfig(HyperbandStrategyConfig(max_resource=9, min_resource=1)),
    ).tuning_job_spec(job_name="band")
    assert band["hyperband"] == {"min_resource": 1, "max_resource": 9}
    TuningJobSpec.model_validate(band)
    assert WarmStartConfig("IdenticalDataAndAlgorithm", {"p"}).to_input_req() == {
        "WarmStartType": "IdenticalDataAndAlgorithm",
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "p"}],
    }


def test_metric_definitions_in_sagemakers_shape_are_taken() -> None:
    made = tuner(
        objective_metric_name="objective:loss",
        metric_definitions=[{"Name": "objective:loss", "Regex": r"loss=([0-9.]+)"}],
        estimator=FakeEstimator({**TRAINING, "entry_point": "train.py", "source_uri": "u"}),
    )
    spec = made.tuning_job_spec(job_name="custom")
    assert spec["metric_definitions"] == [{"name": "objective:loss", "regex": r"loss=([0-9.]+)"}]
    TuningJobSpec.model_validate(spec)


def test_the_estimators_metric_definitions_are_used_when_the_tuner_has_none() -> None:
    definitions = [{"name": "objective:loss", "regex": r"loss=([0-9.]+)"}]
    made = tuner(
        objective_metric_name="objective:loss",
        estimator=FakeEstimator({**TRAINING, "metric_definitions": definitions}),
    )
    assert made.tuning_job_spec(job_name="x")["metric_definitions"] == definitions


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"tags": [{"Key": "team", "Value": "a"}]}, "tags"),
        ({"estimator_name": "a"}, "estimator_name"),
        ({"autotune": True}, "autotune"),
        ({"hyperparameters_to_keep_static": ["arch"]}, "hyperparameters_to_keep_static"),
        ({"strategy": "Evolutionary"}, "strategy"),
        ({"objective_type": "Best"}, "objective_type"),
        ({"early_stopping_type": "On"}, "early_stopping_type"),
        ({"max_jobs": 0}, "max_jobs"),
        ({"max_jobs": 2, "max_parallel_jobs": 3}, "max_parallel_jobs"),
        ({"max_runtime_in_seconds": 1.5}, "max_runtime_in_seconds"),
        ({"hyperparameter_ranges": {}}, "hyperparameter_ranges"),
        ({"hyperparameter_ranges": {"lr": (0.1, 0.2)}}, "hyperparameter_ranges"),
        ({"base_tuning_job_name": "no_underscores"}, "base_tuning_job_name"),
        ({"strategy": "Grid"}, "Grid"),  # a continuous range
        (
            {"strategy_config": StrategyConfig(HyperbandStrategyConfig(9))},
            "strategy_config",
        ),
        ({"strategy": "Hyperband", "early_stopping_type": "Auto"}, "early_stopping_type"),
        ({"warm_start_config": ("p1",)}, "warm_start_config"),
        ({"metric_definitions": [{"Name": "x"}]}, "metric_definitions"),
        ({"estimator": object()}, "estimator"),
    ],
)
def test_what_kennel_cannot_honour_is_refused_by_name(
    arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        tuner(**arguments)


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: ContinuousParameter(0.1, 0.01), "min_value"),
        (lambda: ContinuousParameter("0.1", 1.0), "min_value"),
        (lambda: ContinuousParameter(0.0, 1.0, "Logarithmic"), "Logarithmic"),
        (lambda: ContinuousParameter(0.5, 1.5, "ReverseLogarithmic"), "ReverseLogarithmic"),
        (lambda: ContinuousParameter(0.1, 1.0, "Exponential"), "scaling_type"),
        (lambda: IntegerParameter(1, 2.5), "max_value"),
        (lambda: IntegerParameter(1, 8, "ReverseLogarithmic"), "scaling_type"),
        (lambda: CategoricalParameter([]), "values"),
        (lambda: CategoricalParameter([1, "1"]), "repeat"),
        (lambda: CategoricalParameter([[1]]), "values"),
        (lambda: WarmStartConfig("Sideways", ["p"]), "warm_start_type"),
        (lambda: WarmStartConfig("TransferLearning", []), "parents"),
        (lambda: HyperbandStrategyConfig(min_resource=0), "min_resource"),
        (
            lambda: TuningJobCompletionCriteriaConfig(complete_on_convergence=True),
            "complete_on_convergence",
        ),
    ],
)
def test_bad_ranges_and_configs_are_refused_by_argument(
    make: Callable[[], Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        make()


def test_ranges_check_values_and_have_sagemakers_wire_shape() -> None:
    lr = ContinuousParameter(0.001, 0.1, "Logarithmic")
    assert lr.is_valid(0.01) and not lr.is_valid(0.5)
    assert IntegerParameter(1, 4).is_valid(2) and not IntegerParameter(1, 4).is_valid(2.5)
    assert CategoricalParameter("adam").values == ["adam"]
    assert CategoricalParameter([True, False]).as_tuning_range("flag") == {
        "Name": "flag",
        "Values": ["true", "false"],
    }
    made = tuner(hyperparameter_ranges={"lr": lr, "epochs": IntegerParameter(1, 4, "Linear")})
    assert made.hyperparameter_ranges() == {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [
            {"Name": "epochs", "MinValue": "1", "MaxValue": "4", "ScalingType": "Linear"}
        ],
        "CategoricalParameterRanges": [],
    }


@pytest.mark.parametrize(
    ("training", "named"),
    [
        ({"output_path": "file:///models"}, "output_path"),
        ({"debugger": {"rules": []}}, "Debugger"),
        ({"profiler": {"enabled": False}}, "profiler"),
        ({"checkpoint_s3_uri": "x"}, "checkpoint_s3_uri"),
    ],
)
def test_training_settings_the_trials_cannot_carry_are_refused(
    training: dict[str, Any], named: str
) -> None:
    made = tuner(estimator=FakeEstimator({**TRAINING, **training}))
    with pytest.raises(ValidationError, match=named):
        made.tuning_job_spec(job_name="t")


def test_the_default_profiler_passes() -> None:
    from kennel.debugger._spec import ProfilerConfig

    profiler = ProfilerConfig().model_dump(mode="json")
    made = tuner(estimator=FakeEstimator({**TRAINING, "profiler": profiler, "name": "job-1"}))
    assert "profiler" not in made.tuning_job_spec(job_name="t")


def test_job_names_fit_sagemakers_32_characters() -> None:
    long_base = tuner(base_tuning_job_name="a-very-long-base-name-for-tuning-jobs")
    name = long_base.tuning_job_spec()["name"]
    assert len(name) <= 32 and name.startswith("a-very-long-base")
    from_estimator = tuner(estimator=FakeEstimator(base_job_name="dogs"))
    assert from_estimator.tuning_job_spec()["name"].startswith("dogs-")
    builtin = tuner().tuning_job_spec()["name"]
    assert builtin.startswith("kennel-trainer-")
    TuningJobSpec.model_validate({**tuner().tuning_job_spec(), "name": builtin})
    with pytest.raises(ValidationError, match="job_name"):
        tuner().tuning_job_spec(job_name="x" * 33)


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"name": "tune-1", "status": status, "failure_reason": None, **extra}


def test_fit_posts_the_spec_and_waits_until_the_job_ends() -> None:
    made = tuner()
    api = made.sagemaker_session.api
    api.answers["/api/v1/tuning-jobs/tune-1"] = [job("InProgress"), job("Completed")]
    slept: list[float] = []
    made.fit("digits", job_name="tune-1", wait=False)
    assert api.posts[0][0] == "/api/v1/tuning-jobs"
    assert made.latest_tuning_job is not None and made.latest_tuning_job.name == "tune-1"
    assert made.wait(sleep=slept.append)["status"] == "Completed"
    assert slept == [1.0]


def test_a_failed_tuning_job_raises_with_its_reason() -> None:
    made = tuner()
    made.sagemaker_session.api.answers["/api/v1/tuning-jobs/tune-1"] = job(
        "Failed", failure_reason="3 of 4 training jobs failed"
    )
    made.fit(job_name="tune-1", wait=False)
    with pytest.raises(UnexpectedStatusError, match="3 of 4 training jobs failed") as caught:
        made.wait()
    assert caught.value.actual_status == "Failed"


def test_fit_refuses_sagemaker_only_arguments_by_name() -> None:
    with pytest.raises(ValidationError, match="include_cls_metadata"):
        tuner().fit(include_cls_metadata=True)
    with pytest.raises(ValidationError, match="estimator_kwargs"):
        tuner().fit(estimator_kwargs={"a": {}})
    with pytest.raises(ValidationError, match="experiment_config"):
        tuner().fit(experiment_config={})


def test_a_server_refusal_names_the_tuners_argument() -> None:
    made = tuner()

    def refuse(path: str, body: Any) -> Any:
        raise ValidationError(
            "Invalid request: max_parallel_training_jobs (2) is more than max_training_jobs (1)"
        )

    made.sagemaker_session.api.post = refuse  # type: ignore[method-assign]
    with pytest.raises(ValidationError, match=r"max_parallel_jobs \(max_parallel_training_jobs\)"):
        made.fit(job_name="t", wait=False)


def test_nothing_to_ask_before_fit() -> None:
    with pytest.raises(ValidationError, match="fit"):
        tuner().best_training_job()


def test_best_training_job_and_its_absence() -> None:
    made = tuner()
    made.fit(job_name="tune-1", wait=False)
    answers = made.sagemaker_session.api.answers
    answers["/api/v1/tuning-jobs/tune-1"] = job("InProgress", best_training_job=None)
    with pytest.raises(ValidationError, match="no completed training job yet"):
        made.best_training_job()
    answers["/api/v1/tuning-jobs/tune-1"] = job(
        "Completed", best_training_job={"training_job_name": "tune-1-001-abc"}
    )
    assert made.best_training_job() == "tune-1-001-abc"


def test_deploy_refuses_what_kennel_has_not() -> None:
    for argument in ("accelerator_type", "kms_key", "data_capture_config"):
        with pytest.raises(ValidationError, match=argument):
            tuner().deploy(1, "ml.m5.large", **{argument: "x"})


SPEC = {
    "parameter_ranges": {
        "continuous": [
            {"name": "lr", "min_value": 0.001, "max_value": 0.1, "scaling_type": "Logarithmic"}
        ],
        "integer": [{"name": "epochs", "min_value": 1, "max_value": 3, "scaling_type": "Auto"}],
        "categorical": [{"name": "optimizer", "values": ["sgd", "adam"]}],
    },
    "objective": {"metric_name": "validation:loss", "type": "Minimize"},
    "metric_definitions": [],
    "strategy": "Random",
    "max_training_jobs": 2,
    "max_parallel_training_jobs": 1,
    "early_stopping": "Off",
    "random_seed": 3,
    "warm_start": None,
    "hyperband": None,
    "max_jobs_not_improving": None,
    "target_objective_value": None,
}
TRIALS = [
    {
        "training_job_name": "tune-1-001-aa",
        "status": "Completed",
        "hyperparameters": {"lr": 0.01, "epochs": 2, "optimizer": "adam", "arch": "small-cnn"},
        "objective": 0.5,
        "created_at": "2026-01-01T10:00:00+00:00",
        "ended_at": "2026-01-01T10:00:12.500000",  # as the server sends it: no offset
    },
    {
        "training_job_name": "tune-1-000-bb",
        "status": "InProgress",
        "hyperparameters": {"lr": "0.002", "epochs": "3", "optimizer": "sgd", "arch": "small-cnn"},
        "objective": None,
        "created_at": "2026-01-01T10:00:01+00:00",
        "ended_at": None,
    },
]


def attached() -> HyperparameterTuner:
    session = FakeSession()
    session.api.answers["/api/v1/tuning-jobs/tune-1"] = {
        **job("Completed"),
        "spec": {**SPEC, "name": "tune-1"},
    }
    session.api.answers["/api/v1/tuning-jobs/tune-1/training-jobs"] = {"training_jobs": TRIALS}
    return HyperparameterTuner.attach("tune-1", sagemaker_session=session)  # type: ignore[arg-type]


def test_attach_rebuilds_the_tuner_from_the_job() -> None:
    made = attached()
    assert made.latest_tuning_job is not None and made.latest_tuning_job.name == "tune-1"
    assert made.strategy == "Random" and made.objective_type == "Minimize"
    assert made.max_jobs == 2 and made.random_seed == 3
    assert made.hyperparameter_ranges()["CategoricalParameterRanges"] == [
        {"Name": "optimizer", "Values": ["sgd", "adam"]}
    ]
    with pytest.raises(ValidationError, match="attached"):
        made.fit()


def test_analytics_dataframe_has_sagemakers_columns() -> None:
    pytest.importorskip("pandas")
    frame = attached().analytics().dataframe()
    assert list(frame.columns) == [
        "lr",
        "epochs",
        "optimizer",
        "TrainingJobName",
        "TrainingJobStatus",
        "FinalObjectiveValue",
        "TrainingStartTime",
        "TrainingEndTime",
        "TrainingElapsedTimeSeconds",
    ]
    first, second = frame.to_dict("records")
    assert first["lr"] == 0.01 and first["epochs"] == 2 and first["optimizer"] == "adam"
    assert first["TrainingElapsedTimeSeconds"] == 12.5
    # values a server sent as text are numbers again; an unfinished trial has no end
    assert second["lr"] == 0.002 and second["epochs"] == 3
    assert second["TrainingEndTime"] is None or str(second["TrainingEndTime"]) in ("NaT", "None")


def test_without_pandas_dataframe_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    analytics = HyperparameterTuningJobAnalytics("tune-1", FakeSession())  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"kennel\[sdk\]"):
        analytics.dataframe()


def test_kennels_estimator_gives_a_template_the_server_takes() -> None:
    from kennel.sdk._estimator import Estimator
    from kennel.sdk._inputs import DatasetInput

    estimator = Estimator(
        "kennel.trainer",
        hyperparameters={"arch": "small-cnn", "epochs": 1, "lr": 0.05},
        sagemaker_session=FakeSession(),  # type: ignore[arg-type]
        base_job_name="digits",
    )
    made = tuner(estimator=estimator)
    spec = made.tuning_job_spec(DatasetInput("digits"))
    assert spec["name"].startswith("digits-") and spec["dataset"] == "digits"
    assert spec["static_hyperparameters"] == {"arch": "small-cnn", "epochs": "1"}
    TuningJobSpec.model_validate(spec)
    quiet = Estimator(
        "kennel.trainer",
        sagemaker_session=FakeSession(),  # type: ignore[arg-type]
        disable_profiler=True,
    )
    with pytest.raises(ValidationError, match="profiler"):
        tuner(estimator=quiet).tuning_job_spec(job_name="t")


def test_warm_started_children_name_the_parent() -> None:
    made = tuner()
    made.fit(job_name="tune-1", wait=False)
    child = made.transfer_learning_tuner(additional_parents=["older"])
    assert child.latest_tuning_job is None and made.latest_tuning_job is not None
    spec = child.tuning_job_spec(job_name="tune-2")
    assert spec["warm_start"] == {
        "parent_tuning_jobs": ["tune-1", "older"],
        "type": "TransferLearning",
    }
    identical = made.identical_dataset_and_algorithm_tuner()
    assert identical.tuning_job_spec(job_name="tune-3")["warm_start"]["type"] == (
        "IdenticalDataAndAlgorithm"
    )
    assert made.warm_start_config is None
