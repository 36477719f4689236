"""The SageMaker training environment each instance gets, and the catalog."""

import json

import pytest

from kennel._errors import ValidationError
from kennel.training import CATALOG, instance_type
from kennel.training._runner import sm_environment

PATHS = {
    "model": "/w/model",
    "output": "/w/output",
    "output_data": "/w/output/data",
    "input": "/w/input",
    "input_config": "/w/input/config",
    "checkpoints": "/w/checkpoints",
    "code": "/w/code",
}


def environment(count: int, rank: int) -> dict[str, str]:
    hosts = [f"algo-{i + 1}" for i in range(count)]
    job = {
        "name": "job-1",
        "entry_point": "hpo.py",
        "hyperparameters": {"lr": "0.01", "batch-size": "32"},
        "environment": {"EXTRA": "1"},
    }
    placement = {"threads_per_instance": 2, "gpus_per_instance": 0.0}
    channels = {"train": "/w/input/data/train", "valid": "/w/input/data/valid"}
    return sm_environment(
        job, hosts, hosts[rank], placement, channels, PATHS, master=("10.0.0.5", 29500), rank=rank
    )


def test_single_instance_contract() -> None:
    env = environment(1, 0)
    assert env["SM_MODEL_DIR"] == "/w/model"
    assert env["SM_CHANNEL_TRAIN"] == "/w/input/data/train"
    assert json.loads(env["SM_CHANNELS"]) == ["train", "valid"]
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HPS"]) == {"lr": "0.01", "batch-size": "32"}
    assert env["SM_HP_BATCH_SIZE"] == "32"
    assert json.loads(env["SM_USER_ARGS"]) == ["--lr", "0.01", "--batch-size", "32"]
    assert env["SM_NUM_CPUS"] == "2" and env["SM_NUM_GPUS"] == "0"
    assert env["OMP_NUM_THREADS"] == "2"
    assert json.loads(env["SM_TRAINING_ENV"])["current_host"] == "algo-1"
    assert env["EXTRA"] == "1"
    assert "WORLD_SIZE" not in env and "MASTER_ADDR" not in env


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_multi_instance_adds_torch_distributed(rank: int) -> None:
    env = environment(3, rank)
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("10.0.0.5", "29500")
    assert (env["WORLD_SIZE"], env["RANK"], env["LOCAL_RANK"]) == ("3", str(rank), "0")
    assert env["SM_CURRENT_HOST"] == f"algo-{rank + 1}"


def test_catalog_lookup() -> None:
    assert instance_type("ml.m5.xlarge").vcpus == 4
    assert {"ml.t3.medium", "ml.c5.xlarge", "ml.g4dn.xlarge", "ml.p3.2xlarge"} <= set(CATALOG)
    with pytest.raises(ValidationError, match="Unknown instance type") as caught:
        instance_type("ml.m5.huge")
    assert "ml.m5.large" in (caught.value.hint or "")
