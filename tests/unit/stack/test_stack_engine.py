"""The stack engine without a server: references, order, cycles, resolution, fingerprints
and plan decisions, with in-memory handlers standing in for the resource kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kennel._errors import ValidationError
from kennel.stack._engine import (
    Graph,
    Plan,
    Record,
    _reverse,
    build_graph,
    hash_folder,
    plan_graph,
    resolve_outputs,
)
from kennel.stack._record import StackRecord, StackResource
from kennel.stack._schema import KINDS, parse_stack
from kennel.stack._types import UNKNOWN, Address, StackContext, Step


class MemoryHandler:
    """A resource kind kept in a dict: enough to watch the engine decide."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.made: dict[str, dict[str, Any]] = {}
        self.dead: set[str] = set()
        self.planned: list[tuple[str, dict[str, Any]]] = []

    def references(self, block: Any) -> set[Address]:
        return set()  # the engine knows the reference fields of every kind

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = spec.get("name", address.name)
        self.planned.append((name, spec))
        if name in self.dead:
            return Step(address, "replace", name, f"{name} ended Failed")
        if name not in self.made:
            return Step(address, "create", name, "does not exist")
        if self.made[name] != spec:
            return Step(address, "update", name, "spec differs")
        return Step(address, "none", name, "unchanged")

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        self.made[step.physical] = step.spec
        return self.attributes(ctx, step.physical)

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        return {"name": physical, "arn": f"arn:fake:{self.kind}/{physical}"}

    def delete(self, ctx: StackContext, physical: str) -> None:
        self.made.pop(physical, None)


STACK = {
    "name": "s",
    "datasets": {"digits": {"demo": {"image_size": 16}}},
    "tuning_jobs": {
        "hpo": {
            "dataset": "digits",
            "objective": {"metric_name": "validation:loss", "type": "Minimize"},
            "parameter_ranges": {
                "continuous": [
                    {
                        "name": "lr",
                        "min_value": 0.001,
                        "max_value": 0.1,
                        "scaling_type": "Logarithmic",
                    }
                ]
            },
            "max_training_jobs": 2,
        }
    },
    "training_jobs": {
        "train": {
            "dataset": "digits",
            "hyperparameters_from": "hpo",
            "hyperparameters": {"epochs": 1},
        }
    },
    "models": {"classifier": {"training_job": "train"}},
    "endpoints": {
        "classifier": {
            "variants": [{"model": "classifier"}],
            "scaling": [{"min_capacity": 1, "max_capacity": 3}],
        }
    },
    "roles": {
        "invoker": {
            "policies": {
                "invoke": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sagemaker:InvokeEndpoint",
                            "Resource": "${endpoints.classifier.arn}",
                        }
                    ],
                }
            }
        }
    },
    "functions": {
        "predict": {
            "code": "fn",
            "role": "invoker",
            "environment": {"ENDPOINT_NAME": "${endpoints.classifier.name}"},
        }
    },
    "outputs": {"endpoint": "${endpoints.classifier}", "arn": "${endpoints.classifier.arn}"},
}


@pytest.fixture
def handlers() -> dict[str, MemoryHandler]:
    return {kind: MemoryHandler(kind) for kind in KINDS}


@pytest.fixture
def ctx(tmp_path: Path) -> StackContext:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "lambda_function.py").write_text("def lambda_handler(e, c):\n    return 1\n")
    return StackContext(api=None, base=tmp_path, stack="s", aws=lambda _service: None)  # type: ignore[arg-type]


def graph_of(data: dict[str, Any], ctx: StackContext, handlers: dict[str, Any]) -> Graph:
    return build_graph(parse_stack(data), ctx.base, handlers, where="stack.yaml")


def empty_record() -> Record:
    return Record("s", StackRecord(status="UpInProgress"), exists=False)


def planned(
    data: dict[str, Any],
    ctx: StackContext,
    handlers: dict[str, Any],
    record: Record | None = None,
) -> Plan:
    return plan_graph(ctx, graph_of(data, ctx, handlers), handlers, record or empty_record())


def actions(result: Plan) -> dict[str, tuple[str, str]]:
    return {str(s.address): (s.action, s.physical) for s in result.steps if s.action != "delete"}


def applied(result: Plan, handlers: dict[str, MemoryHandler]) -> Record:
    """Apply every step in memory and write the record an ``up`` would have written."""
    record = empty_record()
    for step in result.steps:
        handlers[step.address.kind].made[step.physical] = step.spec
        record.body.resources.append(
            StackResource(
                address=str(step.address),
                physical=step.physical,
                status="Ready",
                fingerprint=step.fingerprint,
                spec={k: v for k, v in step.spec.items() if k != "name"},
            )
        )
    return record


def copy_with(path: list[str], value: Any) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(STACK)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


# References and order ---------------------------------------------------------------------


def test_blocks_come_in_dependency_order(ctx: StackContext, handlers: dict[str, Any]) -> None:
    graph = graph_of(STACK, ctx, handlers)
    order = [str(a) for a in graph.order]
    assert order == [
        "datasets.digits",
        "tuning_jobs.hpo",
        "training_jobs.train",
        "models.classifier",
        "endpoints.classifier",
        "roles.invoker",
        "functions.predict",
    ]
    assert graph.nodes[Address("roles", "invoker")].upstream == {
        Address("endpoints", "classifier"): ["policies.invoke.Statement[0].Resource"]
    }
    assert graph.nodes[Address("endpoints", "classifier")].upstream == {
        Address("models", "classifier"): ["variants[0].model"]
    }


def test_a_string_reference_orders_blocks_against_the_sections(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    """A data set whose URL names a function's URL comes after the function."""
    data = copy_with(["datasets", "extra"], {"source_url": "${functions.predict.url}/data.zip"})
    order = [str(a) for a in graph_of(data, ctx, handlers).order]
    assert order.index("functions.predict") < order.index("datasets.extra")
    assert order[0] == "datasets.digits"


def test_an_unknown_reference_field_is_refused_naming_its_place(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    data = copy_with(["endpoints", "classifier", "variants"], [{"model": "clasifier"}])
    with pytest.raises(ValidationError) as caught:
        graph_of(data, ctx, handlers)
    message = caught.value.message
    assert message.startswith("stack.yaml: ")
    assert "endpoints.classifier.variants[0].model: refers to models.clasifier" in message
    assert "(its models: classifier)" in message


def test_an_unknown_string_reference_is_refused_naming_its_place(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    data = copy_with(
        ["functions", "predict", "environment"], {"ENDPOINT_NAME": "${endpoints.clasifier.name}"}
    )
    data["outputs"] = {"url": "${functions.nope.url}", "x": "${widgets.a.b}"}
    with pytest.raises(ValidationError) as caught:
        graph_of(data, ctx, handlers)
    message = caught.value.message
    assert "functions.predict.environment.ENDPOINT_NAME: refers to endpoints.clasifier" in message
    assert "outputs.url: refers to functions.nope" in message
    assert "outputs.x: refers to widgets.a, but 'widgets' is not a section" in message


def test_a_data_set_not_in_the_stack_is_looked_for_on_the_server(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    data = copy_with(["training_jobs", "train", "dataset"], "dogImages")
    graph = graph_of(data, ctx, handlers)
    node = graph.nodes[Address("training_jobs", "train")]
    assert node.external == {"training_jobs.train.dataset": "dogImages"}
    assert Address("datasets", "dogImages") not in node.upstream


def test_a_cycle_is_refused_naming_it(ctx: StackContext, handlers: dict[str, Any]) -> None:
    data = copy_with(
        ["endpoints", "classifier", "variants"],
        [{"model": "classifier", "instance_type": "${roles.invoker.name}"}],
    )
    with pytest.raises(ValidationError) as caught:
        graph_of(data, ctx, handlers)
    message = caught.value.message
    assert "the references form a cycle" in message
    assert (
        "endpoints.classifier -> roles.invoker -> endpoints.classifier" in message
        or "roles.invoker -> endpoints.classifier -> roles.invoker" in message
    )
    assert "endpoints.classifier.variants[0].instance_type" in message


def test_a_block_referring_to_itself_is_refused(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    data = copy_with(["functions", "predict", "description"], "${functions.predict.url}")
    with pytest.raises(ValidationError, match="functions.predict.description: refers to its own"):
        graph_of(data, ctx, handlers)


def test_a_kind_without_a_handler_is_refused(ctx: StackContext, handlers: dict[str, Any]) -> None:
    del handlers["functions"]
    with pytest.raises(ValidationError, match=r"kennel.stack._functions is missing"):
        graph_of(STACK, ctx, handlers)


# Resolution and fingerprints ----------------------------------------------------------------


def test_a_first_plan_creates_everything_with_hashed_names_for_immutable_kinds(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    result = planned(STACK, ctx, handlers)
    found = actions(result)
    assert {a for a, _ in found.values()} == {"create"}
    assert found["datasets.digits"][1] == "digits"
    assert found["endpoints.classifier"][1] == "classifier"
    for address in ("tuning_jobs.hpo", "training_jobs.train", "models.classifier"):
        logical = address.split(".")[1]
        assert (
            found[address][1].startswith(logical + "-")
            and len(found[address][1]) == len(logical) + 9
        )
    steps = {str(s.address): s for s in result.steps}
    # Reference fields become the upstream's physical name ...
    assert steps["models.classifier"].spec["training_job"] == found["training_jobs.train"][1]
    assert steps["training_jobs.train"].spec["hyperparameters_from"] == found["tuning_jobs.hpo"][1]
    assert (
        steps["endpoints.classifier"].spec["variants"][0]["model"]
        == (found["models.classifier"][1])
    )
    # ... and ${...} its value, or a stand-in when it is known only after apply.
    resource = steps["roles.invoker"].spec["policies"]["invoke"]["Statement"][0]["Resource"]
    assert resource == UNKNOWN.format("endpoints.classifier.arn")
    assert "uses endpoints.classifier.arn" in steps["roles.invoker"].reason
    # A name is known before anything is made.
    env = steps["functions.predict"].spec["environment"]
    assert env == {"ENDPOINT_NAME": "classifier"}
    assert steps["functions.predict"].spec["code"] == str(ctx.base / "fn")


def test_a_second_plan_after_apply_changes_nothing(
    ctx: StackContext, handlers: dict[str, MemoryHandler]
) -> None:
    first = planned(STACK, ctx, handlers)
    record = applied(first, handlers)
    # The role was made with a stand-in ARN; up applies it with the real one.
    role = first.steps[[str(s.address) for s in first.steps].index("roles.invoker")]
    role.spec["policies"]["invoke"]["Statement"][0]["Resource"] = "arn:fake:endpoints/classifier"
    handlers["roles"].made["invoker"] = role.spec
    again = planned(STACK, ctx, handlers, record)
    assert {a for a, _ in actions(again).values()} == {"none"}, actions(again)
    assert again.changes == 0
    assert [s.physical for s in again.steps] == [s.physical for s in first.steps]


def test_a_changed_hyperparameter_replaces_the_job_and_the_model_and_updates_the_endpoint(
    ctx: StackContext, handlers: dict[str, MemoryHandler]
) -> None:
    first = planned(STACK, ctx, handlers)
    record = applied(first, handlers)
    changed = copy_with(["training_jobs", "train", "hyperparameters"], {"epochs": 2})
    again = planned(changed, ctx, handlers, record)
    found = actions(again)
    before = actions(first)
    assert found["datasets.digits"][0] == "none"
    assert found["tuning_jobs.hpo"] == ("none", before["tuning_jobs.hpo"][1])
    assert found["training_jobs.train"][0] == "replace"
    assert found["training_jobs.train"][1] != before["training_jobs.train"][1]
    assert found["models.classifier"][0] == "replace"
    assert found["endpoints.classifier"] == ("update", "classifier")
    steps = {str(s.address): s for s in again.steps if s.action != "delete"}
    assert steps["training_jobs.train"].reason == "hyperparameters.epochs 1 -> 2"
    assert steps["models.classifier"].reason == (
        f"training_job {before['training_jobs.train'][1]} -> {found['training_jobs.train'][1]}"
    )
    removals = {(str(s.address), s.physical): s.reason for s in again.steps if s.action == "delete"}
    assert set(removals) == {
        ("training_jobs.train", before["training_jobs.train"][1]),
        ("models.classifier", before["models.classifier"][1]),
    }
    assert (
        "the job stays as a record"
        in removals[("training_jobs.train", before["training_jobs.train"][1])]
    )


def test_a_removed_block_is_planned_for_deletion(
    ctx: StackContext, handlers: dict[str, MemoryHandler]
) -> None:
    record = applied(planned(STACK, ctx, handlers), handlers)
    record.body.resources.append(
        StackResource(address="datasets.theirs", physical="theirs", status="Ready", owned=False)
    )
    data = copy_with(["functions"], {})
    again = planned(data, ctx, handlers, record)
    removals = [(str(s.address), s.action, s.reason) for s in again.steps if s.action == "delete"]
    assert removals == [("functions.predict", "delete", "no longer in the stack file")]


def test_a_changed_source_folder_is_a_new_job(
    ctx: StackContext, handlers: dict[str, MemoryHandler]
) -> None:
    source = ctx.base / "src"
    source.mkdir()
    (source / "train.py").write_text("print(1)\n")
    data = copy_with(["training_jobs", "train", "source_dir"], "src")
    data["training_jobs"]["train"]["entry_point"] = "train.py"
    first = actions(planned(data, ctx, handlers))["training_jobs.train"][1]
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"cache")
    assert actions(planned(data, ctx, handlers))["training_jobs.train"][1] == first
    (source / "train.py").write_text("print(2)\n")
    second = actions(planned(data, ctx, handlers))["training_jobs.train"][1]
    assert second != first
    spec = {str(s.address): s.spec for s in planned(data, ctx, handlers).steps}
    assert spec["training_jobs.train"]["source_dir"] == str(source)


def test_a_missing_folder_is_refused_naming_the_block(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    data = copy_with(["training_jobs", "train", "source_dir"], "nowhere")
    with pytest.raises(ValidationError, match=r"training_jobs.train.source_dir: .*nowhere"):
        planned(data, ctx, handlers)


def test_a_dead_job_gets_a_new_attempt_under_a_new_name(
    ctx: StackContext, handlers: dict[str, MemoryHandler]
) -> None:
    first = actions(planned(STACK, ctx, handlers))
    handlers["training_jobs"].dead.add(first["training_jobs.train"][1])
    again = planned(STACK, ctx, handlers)
    found = actions(again)
    assert found["training_jobs.train"][0] == "replace"
    assert found["training_jobs.train"][1] != first["training_jobs.train"][1]
    assert found["training_jobs.train"][1].startswith("train-")
    reason = next(s.reason for s in again.steps if s.address.kind == "training_jobs")
    assert reason == f"attempt 2: {first['training_jobs.train'][1]} ended Failed"
    # Dependents follow the new name; the plan is the same each time it is made.
    assert found["models.classifier"][1] != first["models.classifier"][1]
    assert actions(planned(STACK, ctx, handlers)) == found


def test_folder_hashes_see_names_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x")
    one = hash_folder(tmp_path)
    (tmp_path / "a.py").rename(tmp_path / "b.py")
    assert hash_folder(tmp_path) != one


# Outputs and the order of removal -----------------------------------------------------------


def test_outputs_take_attribute_values(ctx: StackContext, handlers: dict[str, Any]) -> None:
    from kennel.stack._engine import Known

    state = {Address("endpoints", "classifier"): Known("classifier", {"name": "e", "arn": 7}, True)}
    stack = parse_stack(
        {
            **STACK,
            "outputs": {
                "n": "${endpoints.classifier}",
                "a": "${endpoints.classifier.arn}",
                "t": "is ${endpoints.classifier.arn}!",
            },
        }
    )
    assert resolve_outputs(stack, state) == {"n": "e", "a": 7, "t": "is 7!"}


def test_removal_goes_dependents_first() -> None:
    def entry(address: str, *depends_on: str) -> StackResource:
        return StackResource(
            address=address, physical=address, status="Ready", depends_on=list(depends_on)
        )

    resources = [
        entry("datasets.d"),
        entry("training_jobs.t", "datasets.d"),
        entry("models.m", "training_jobs.t"),
        entry("endpoints.e", "models.m"),
        entry("roles.r", "endpoints.e"),
        entry("functions.f", "roles.r", "endpoints.e"),
        entry("models.m", "training_jobs.t"),
    ]
    order = [r.address for r in _reverse(resources)]
    assert order == [
        "functions.f",
        "roles.r",
        "endpoints.e",
        "models.m",
        "models.m",
        "training_jobs.t",
        "datasets.d",
    ]
