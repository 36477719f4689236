"""examples/dog-breeds/stack.yaml, the flagship, planned offline against a real server:
the file says what the dog-breed project ran, every block validates (the schema, then each
kind's plan-time checks: the role's policy as IAM parses it, the function's package),
every action is create, in dependency order, with the physical names ``up`` would use,
and planning made nothing (the data set would be fetched only by ``up``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from tests._server import REPO, RunningServer

from kennel._client import KennelClient
from kennel._errors import NotFoundError
from kennel.stack._schema import load_stack

pytestmark = pytest.mark.timeout(300)

FLAGSHIP = REPO / "examples" / "dog-breeds" / "stack.yaml"
DOG_IMAGES = "https://s3-us-west-1.amazonaws.com/udacity-aind/dog-project/dogImages.zip"
ORDER = [
    "datasets.dog-breeds-images",
    "tuning_jobs.dog-breeds-hpo",
    "training_jobs.dog-breeds-train",
    "models.dog-breeds-model",
    "endpoints.dog-breeds",
    "roles.dog-breeds-invoker",
    "functions.dog-breeds-classify",
]
HASHED = {"tuning_jobs", "training_jobs", "models"}
NO_NETWORK = "http://127.0.0.1:9"
"""A proxy nothing listens on: any request the CLI sent beyond the loopback server fails."""


def test_the_file_says_what_the_project_ran() -> None:
    stack, _ = load_stack(FLAGSHIP)
    assert stack.datasets["dog-breeds-images"].source_url == DOG_IMAGES

    hpo = stack.tuning_jobs["dog-breeds-hpo"]
    (lr,) = hpo.parameter_ranges.continuous
    assert (lr.name, lr.min_value, lr.max_value) == ("lr", 0.001, 0.1)
    (batch,) = hpo.parameter_ranges.categorical
    assert (batch.name, batch.values) == ("batch-size", [32, 64, 128, 256, 512])
    assert hpo.entry_point == "kennel.trainer"
    assert hpo.static_hyperparameters["arch"] == "resnet50"
    assert hpo.static_hyperparameters["pretrained"] is True
    assert hpo.max_training_jobs == 4
    (metric,) = hpo.metric_definitions
    assert metric.name == hpo.objective.metric_name and hpo.objective.type == "Minimize"
    assert re.search(metric.regex, "epoch=5 test_loss=0.8123 test_accuracy=0.81").group(1) == (
        "0.8123"
    )

    train = stack.training_jobs["dog-breeds-train"]
    assert train.hyperparameters_from == "dog-breeds-hpo"
    assert (train.instance_type, train.instance_count) == ("ml.m5.xlarge", 3)
    assert train.debugger is not None
    assert [r.configuration_name for r in train.debugger.rules] == [
        "VanishingGradient",
        "Overfit",
        "Overtraining",
        "PoorWeightInitialization",
        "LossNotDecreasing",
    ]
    assert [r.rule for r in train.profiler.rules] == ["ProfilerReport"]

    endpoint = stack.endpoints["dog-breeds"]
    (variant,) = endpoint.variants
    assert (variant.model, variant.instance_type, variant.initial_instance_count) == (
        "dog-breeds-model",
        "ml.m5.large",
        1,
    )
    (scaling,) = endpoint.scaling
    assert (scaling.min_capacity, scaling.max_capacity) == (1, 3)
    (policy,) = scaling.policies
    tracking = policy.put_request("dog-breeds", scaling.variant)[
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (tracking["TargetValue"], tracking["ScaleOutCooldown"], tracking["ScaleInCooldown"]) == (
        10,
        30,
        30,
    )

    role = stack.roles["dog-breeds-invoker"]
    assert role.managed_policies == []
    statements = [s for doc in role.policies.values() for s in doc["Statement"]]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": "${endpoints.dog-breeds.arn}",
        }
    ]

    function = stack.functions["dog-breeds-classify"]
    assert function.role == "dog-breeds-invoker"
    assert (function.reserved_concurrency, function.provisioned_concurrency) == (5, 2)
    assert function.url is not None


def test_plan_offline_creates_everything_in_order_and_makes_nothing(
    server: RunningServer, api: KennelClient
) -> None:
    env = {
        **server.env,
        "HTTP_PROXY": NO_NETWORK,
        "HTTPS_PROXY": NO_NETWORK,
        "ALL_PROXY": NO_NETWORK,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    result = subprocess.run(
        [sys.executable, "-m", "kennel", "plan", str(FLAGSHIP), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    steps: list[dict[str, Any]] = planned["steps"]

    assert planned["stack"] == "dog-breeds"
    assert [s["address"] for s in steps] == ORDER
    assert {s["action"] for s in steps} == {"create"}, steps
    for step in steps:
        if step["kind"] in HASHED:
            assert step["physical"] == f"{step['name']}-{step['fingerprint'][:8]}"
        else:
            assert step["physical"] == step["name"]
    tuning = next(s for s in steps if s["kind"] == "tuning_jobs")
    assert len(tuning["physical"]) <= 32  # its trials add -NNN-xxxxxxxx to it
    role = next(s for s in steps if s["kind"] == "roles")
    assert "endpoints.dog-breeds.arn" in role["reason"]  # known once the endpoint exists

    instance_types = {t["name"] for t in api.get("/api/v1/instance-types")["instance_types"]}
    assert {"ml.m5.xlarge", "ml.m5.large"} <= instance_types

    assert_nothing_made(server, api, {s["physical"] for s in steps})


def assert_nothing_made(server: RunningServer, api: KennelClient, names: set[str]) -> None:
    for path in ("datasets/dog-breeds-images", "endpoints/dog-breeds", "stacks/dog-breeds"):
        with pytest.raises(NotFoundError):
            api.get(f"/api/v1/{path}")
    listed = [
        item["name"]
        for path, key in (
            ("datasets", "datasets"),
            ("tuning-jobs", "tuning_jobs"),
            ("training-jobs", "training_jobs"),
            ("models", "models"),
            ("endpoint-configs", "endpoint_configs"),
        )
        for item in api.get(f"/api/v1/{path}")[key]
    ]
    assert not [n for n in listed if n.startswith("dog-breeds")], listed
    assert not names & set(listed)
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="dog-breeds-invoker")
    lam = server.session.client("lambda", endpoint_url=server.url, region_name="us-east-1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="dog-breeds-classify")
