"""The stack file's schema: valid files load, bad ones are refused naming the place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kennel._errors import ValidationError
from kennel.cli.stack import schema_text
from kennel.stack._schema import json_schema, load_stack, parse_stack

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*/stack.yaml"))


def minimal(**sections: Any) -> dict[str, Any]:
    return {"name": "s", **sections}


def refused(data: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_stack(data, where="stack.yaml")
    return caught.value.message


def test_the_examples_are_valid_stacks() -> None:
    assert REPO / "examples" / "quickstart" / "stack.yaml" in EXAMPLES
    for path in EXAMPLES:
        stack, base = load_stack(path)
        assert base == path.parent
        assert stack.endpoints, path


def test_the_published_schema_is_the_models_schema() -> None:
    """docs/stack.schema.json is generated: `kennel stack schema -o docs/stack.schema.json`."""
    published = (REPO / "docs" / "stack.schema.json").read_text()
    assert published == schema_text()
    assert json.loads(published) == json_schema()
    assert json_schema()["title"] == "kennel stack file"


def test_an_unknown_field_is_named_by_its_place() -> None:
    message = refused(minimal(training_jobs={"train": {"hyperparameter": {"lr": 0.1}}}))
    assert "training_jobs.train.hyperparameter" in message
    assert message.startswith("stack.yaml is not a valid stack")


def test_a_bad_value_deep_in_a_block_is_named_by_its_place() -> None:
    endpoint = {"variants": [{"model": "m", "initial_instance_count": 0}]}
    message = refused(minimal(endpoints={"e": endpoint}))
    assert "endpoints.e.variants.0.initial_instance_count" in message


def test_logical_names_follow_the_naming_rule() -> None:
    assert "'bad_name' is not a valid logical name" in refused(
        minimal(datasets={"bad_name": {"demo": {}}})
    )
    long = "t" * 24
    assert "longer than 23 characters" in refused(
        minimal(tuning_jobs={long: yaml.safe_load(TUNING)})
    )


def test_a_data_set_needs_exactly_one_source() -> None:
    message = refused(minimal(datasets={"d": {"demo": {}, "source_url": "https://x/y.zip"}}))
    assert "datasets.d" in message and "exactly one of demo and source_url" in message


def test_scaling_must_name_a_variant_of_the_endpoint() -> None:
    endpoint = {
        "variants": [{"model": "m"}],
        "scaling": [{"variant": "Blue", "min_capacity": 1, "max_capacity": 2}],
    }
    message = refused(minimal(endpoints={"e": endpoint}))
    assert "endpoints.e" in message and "'Blue'" in message


def test_jobs_are_named_by_the_stack() -> None:
    message = refused(minimal(training_jobs={"train": {"name": "mine"}}))
    assert "training_jobs.train" in message and "leave name out" in message


def test_not_a_mapping_and_not_yaml_are_refused(tmp_path: Path) -> None:
    assert "must be a YAML mapping" in refused(["a", "list"])
    broken = tmp_path / "stack.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ValidationError, match="is not valid YAML"):
        load_stack(broken)
    with pytest.raises(ValidationError, match="Cannot read stack file"):
        load_stack(tmp_path / "missing.yaml")


TUNING = """
dataset: d
objective: {metric_name: "validation:loss", type: Minimize}
parameter_ranges:
  continuous: [{name: lr, min_value: 0.001, max_value: 0.1, scaling_type: Logarithmic}]
"""


def test_kennel_stack_schema_prints_it() -> None:
    from typer.testing import CliRunner

    from kennel.cli import app

    result = CliRunner().invoke(app, ["stack", "schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_schema()


def test_kennel_plan_names_the_bad_place_in_one_red_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "stack.yaml"
    bad.write_text("name: s\nmodels:\n  m: {training_job: t, artifact_uri: /x}\n")
    result = subprocess.run(
        [sys.executable, "-m", "kennel", "plan", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KENNEL_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error (ValidationException):") and "models.m" in first
    assert "exactly one of training_job and artifact_uri" in first
