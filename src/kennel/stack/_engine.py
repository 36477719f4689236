"""The stack engine: references into a dependency order, then plan, up and down.

A block names others in its reference fields (``dataset``, ``hyperparameters_from``,
``training_job``, a variant's ``model``, a function's ``role``) and with
``${kind.name.attribute}`` inside any string. The engine turns those into a graph, refuses
an unknown reference or a cycle naming the place, and walks the blocks in dependency
order (ties in the order of the file's sections).

Each block is resolved before its handler sees it: a reference field becomes the
upstream's physical name, ``${...}`` its attribute's value, a folder (``source_dir``, a
function's ``code``) an absolute path. The block's *fingerprint* hashes the same block
with references written as upstream physical names and folders as their contents' hash,
so it is known before anything runs; immutable kinds take their physical names from it
(``train-1a2b3c4d``), and a change anywhere upstream gives a new name downstream.

``up`` plans each block again just before applying it (with its upstreams' real
attributes), so a second run finds everything by name and does nothing, and a run after
an interruption waits for a job an earlier run started instead of starting it twice. The
server keeps a record of the stack (``/api/v1/stacks``), written before each resource is
acted on and after it is ready; ``down`` reads it, so it removes what the stack made
whatever the file says by then.

A handler of an immutable kind answers ``replace`` with the physical name it was asked
about when the resource of that name ended unusable (a Failed or Stopped job, whose
name is taken for good): the engine then tries the next *attempt*, a name from the same
fingerprint salted with the attempt number.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import graphlib
import hashlib
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kennel._client import path_segment
from kennel._errors import KennelError, NotFoundError, ValidationError
from kennel.stack._lock import StackLock
from kennel.stack._record import ResourceStatus, StackRecord, StackResource
from kennel.stack._schema import KINDS, REFERENCE, StackFile
from kennel.stack._types import (
    IMMUTABLE_KINDS,
    UNKNOWN,
    Address,
    Handler,
    StackContext,
    Step,
    fingerprint,
    physical,
)

STACKS = "/api/v1/stacks"
MAX_ATTEMPTS = 10

REFERENCE_FIELDS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "tuning_jobs": ((("dataset",), "datasets"),),
    "training_jobs": ((("dataset",), "datasets"), (("hyperparameters_from",), "tuning_jobs")),
    "models": ((("training_job",), "training_jobs"),),
    "endpoints": ((("variants", "*", "model"), "models"),),
    "functions": ((("role",), "roles"),),
}
"""Reference fields by kind: a path into the block (``*``: every item of a list) and the
kind it names."""
EXTERNAL_KINDS = frozenset({"datasets"})
"""A reference field may name one of these that is on the server but not in the stack."""
FILE_FIELDS = {"tuning_jobs": "source_dir", "training_jobs": "source_dir", "functions": "code"}
"""Folders, relative to the stack file: hashed by content into the fingerprint."""
_SKIPPED_FILES = ("__pycache__", ".ipynb_checkpoints", ".DS_Store")
_OPTIONAL_HANDLERS = (("kennel.stack._iam", "roles"), ("kennel.stack._functions", "functions"))

Path_ = tuple[str | int, ...]


class StackError(KennelError):
    """``kennel up`` or ``down`` stopped: what failed, what exists and what does not."""

    status = 409
    aws_code = "StackFailed"


# Handlers -------------------------------------------------------------------------------


def default_handlers() -> dict[str, Handler]:
    """The SageMaker kinds' handlers, plus roles and functions when their modules exist."""
    from kennel.stack._sagemaker import sagemaker_handlers

    found: dict[str, Handler] = {h.kind: h for h in sagemaker_handlers()}
    for module_name, kind in _OPTIONAL_HANDLERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module_name
                and getattr(value, "kind", None) == kind
                and callable(getattr(value, "plan", None))
            ):
                found[kind] = value()
                break
    return found


# The graph ------------------------------------------------------------------------------


@dataclass
class Node:
    """A block of the stack and what it refers to."""

    address: Address
    block: Any
    data: dict[str, Any]
    """The block as written (fields left out stay out)."""
    upstream: dict[Address, list[str]] = field(default_factory=dict)
    """Each block this one needs, with the places that name it."""
    fields: list[tuple[Path_, Address]] = field(default_factory=list)
    """Reference fields naming a block of the stack."""
    external: dict[str, str] = field(default_factory=dict)
    """Places naming a data set on the server (not in the stack), and its name."""


@dataclass
class Graph:
    stack: StackFile
    base: Path
    nodes: dict[Address, Node]
    order: list[Address]


def build_graph(
    stack: StackFile,
    base: Path,
    handlers: dict[str, Handler],
    *,
    where: str = "stack",
) -> Graph:
    """The blocks in dependency order; every unknown reference or cycle refused at once.

    Raises:
        ValidationError: A reference names nothing the stack has, a kind has no handler,
            or the references form a cycle (all named by their place in the file).
    """
    nodes: dict[Address, Node] = {}
    for kind in KINDS:
        for name, block in getattr(stack, kind).items():
            address = Address(kind, name)
            data = block.model_dump(mode="json", exclude_unset=True)
            nodes[address] = Node(address, block, data)
    problems: list[str] = []
    for node in nodes.values():
        if node.address.kind not in handlers:
            module = "_iam" if node.address.kind == "roles" else f"_{node.address.kind}"
            problems.append(
                f"{node.address}: this kennel has no handler for {node.address.kind} "
                f"(kennel.stack.{module} is missing)"
            )
            continue
        problems += _field_references(node, nodes, handlers[node.address.kind])
        for place, address, _attr in _string_references(node.data):
            problems += _check_reference(node, f"{node.address}.{place}", address, nodes)
            if address in nodes:
                node.upstream.setdefault(address, []).append(place)
    for key, value in stack.outputs.items():
        for _, address, _attr in _string_references(value):
            if address not in nodes:
                problems.append(f"outputs.{key}: {_unknown(address, nodes)}")
    if problems:
        raise ValidationError(
            f"{where}: " + "; ".join(problems),
            hint="Name blocks by the logical names the stack gives them (kind.name).",
        )
    return Graph(stack, base, nodes, _order(nodes, where))


def _field_references(node: Node, nodes: dict[Address, Node], handler: Handler) -> list[str]:
    problems: list[str] = []
    kind = node.address.kind
    seen: set[Address] = set()
    for pattern, target_kind in REFERENCE_FIELDS.get(kind, ()):
        for path, value in _matches(node.data, pattern):
            if not isinstance(value, str) or "${" in value:
                continue  # a ${...} in a reference field is resolved like any other
            if kind == "functions" and value.startswith("arn:"):
                continue  # a role outside the stack, by ARN
            address = Address(target_kind, value)
            place = _place(path)
            seen.add(address)
            if address in nodes:
                node.fields.append((path, address))
                node.upstream.setdefault(address, []).append(place)
            elif target_kind in EXTERNAL_KINDS:
                node.external[f"{node.address}.{place}"] = value
            else:
                problems.append(f"{node.address}.{place}: {_unknown(address, nodes)}")
    for address in sorted(handler.references(node.block) - seen):
        place = _find_place(node.data, address.name) or "(a reference)"
        problems += _check_reference(node, f"{node.address}.{place}", address, nodes)
        if address in nodes:
            node.upstream.setdefault(address, []).append(place)
    return problems


def _check_reference(
    node: Node, place: str, address: Address, nodes: dict[Address, Node]
) -> list[str]:
    if address == node.address:
        return [f"{place}: refers to its own block"]
    if address not in nodes:
        return [f"{place}: {_unknown(address, nodes)}"]
    return []


def _unknown(address: Address, nodes: dict[Address, Node]) -> str:
    if address.kind not in KINDS:
        return f"refers to {address}, but {address.kind!r} is not a section ({', '.join(KINDS)})"
    names = sorted(a.name for a in nodes if a.kind == address.kind)
    have = ", ".join(names) if names else "none"
    return f"refers to {address}, which the stack does not declare (its {address.kind}: {have})"


def _order(nodes: dict[Address, Node], where: str) -> list[Address]:
    sorter: graphlib.TopologicalSorter[Address] = graphlib.TopologicalSorter()
    for address, node in nodes.items():
        sorter.add(address, *node.upstream)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle: list[Address] = list(error.args[1])
        path = " -> ".join(str(a) for a in reversed(cycle))
        places = [
            f"{a}.{nodes[a].upstream[b][0]}"
            for a, b in zip(reversed(cycle), list(reversed(cycle))[1:], strict=False)
            if a in nodes and b in nodes[a].upstream
        ]
        raise ValidationError(
            f"{where}: the references form a cycle: {path} (each needs the next made first"
            + (f"; see {', '.join(places)}" if places else "")
            + ")",
            hint="Break the cycle: one of these blocks must not refer to the next.",
        ) from None
    order: list[Address] = []
    while sorter.is_active():
        for address in sorted(sorter.get_ready(), key=_kind_rank):
            order.append(address)
            sorter.done(address)
    return order


def _kind_rank(address: Address) -> tuple[int, str]:
    return (KINDS.index(address.kind) if address.kind in KINDS else len(KINDS), address.name)


# Walking blocks -------------------------------------------------------------------------


def _walk(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def _matches(data: Any, pattern: tuple[str, ...]) -> Iterator[tuple[Path_, Any]]:
    if not pattern:
        yield (), data
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(data, list):
            for index, item in enumerate(data):
                for path, value in _matches(item, rest):
                    yield (index, *path), value
    elif isinstance(data, dict) and head in data:
        for path, value in _matches(data[head], rest):
            yield (head, *path), value


def _place(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(block)"


def _find_place(data: Any, value: str) -> str | None:
    for path, item in _walk(data):
        if item == value and path:
            return _place(path)
    return None


def _set(data: Any, path: Path_, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _string_references(data: Any) -> Iterator[tuple[str, Address, str]]:
    """Every ``${kind.name.attr}`` inside the strings of ``data``: place, address, attribute."""
    for path, value in _walk(data):
        if isinstance(value, str):
            for match in REFERENCE.finditer(value):
                kind, name, attr = match.groups()
                yield _place(path), Address(kind, name), attr or "name"


def hash_folder(folder: Path) -> str:
    """The SHA-256 of a folder's files (relative paths and contents), caches skipped."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part in _SKIPPED_FILES for part in p.relative_to(folder).parts)
        and p.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# Resolution -----------------------------------------------------------------------------


@dataclass
class Known:
    """What is known of a block already planned or applied."""

    physical: str
    attributes: dict[str, Any]
    complete: bool
    """True: the resource exists and ``attributes`` are all it has (a missing one is an
    error); False: the others are known only after apply."""


@dataclass
class Resolved:
    form: dict[str, Any]
    """For the fingerprint and the record: references as physical names, folders hashed."""
    spec: dict[str, Any]
    """For the handler: references as values (or ``UNKNOWN`` in a plan), folders as paths."""
    unknown: list[str]
    fingerprint: str
    physical: str


def resolve(node: Node, state: dict[Address, Known], base: Path, attempt: int = 1) -> Resolved:
    """The block with its references resolved from what is known of its upstreams."""
    form = copy.deepcopy(node.data)
    spec = copy.deepcopy(node.data)
    for path, address in node.fields:
        _set(form, path, state[address].physical)
        _set(spec, path, state[address].physical)
    file_field = FILE_FIELDS.get(node.address.kind)
    if file_field and isinstance(node.data.get(file_field), str):
        folder = (base / node.data[file_field]).resolve()
        if not folder.is_dir():
            raise ValidationError(
                f"{node.address}.{file_field}: {folder} is not a folder.",
                hint="Paths in a stack file are relative to the file.",
            )
        form[file_field] = "sha256:" + hash_folder(folder)
        spec[file_field] = str(folder)
    unknown: list[str] = []
    form = _substitute(form, lambda _p, a, attr, _t: f"${{{a.kind}.{state[a].physical}.{attr}}}")

    def value_of(place: str, address: Address, attr: str, text: str) -> Any:
        known = state[address]
        value = known.attributes.get(attr)
        if value is None:
            if known.complete:
                raise ValidationError(
                    f"{node.address}.{place}: {address} has no attribute {attr!r} "
                    f"(it has {', '.join(sorted(known.attributes)) or 'none'}).",
                    hint="See `kennel stack describe STACK` for each resource's attributes.",
                )
            unknown.append(f"{address}.{attr}")
            return UNKNOWN.format(f"{address}.{attr}")
        return value

    spec = _substitute(spec, value_of)
    salt = {"attempt": attempt} if attempt > 1 else {}
    digest = fingerprint({**form, **salt})
    name = physical(node.address, digest)
    if node.address.kind in IMMUTABLE_KINDS:
        spec["name"] = name
    return Resolved(form, spec, unknown, digest, name)


def _substitute(data: Any, value_of: Callable[[str, Address, str, str], Any]) -> Any:
    """``data`` with every ``${...}`` replaced; a string that is one reference and nothing
    else takes the value as it is (a number stays a number)."""

    def one(path: Path_, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: one((*path, k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [one((*path, i), v) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = REFERENCE.fullmatch(value)
        if whole:
            kind, name, attr = whole.groups()
            return value_of(_place(path), Address(kind, name), attr or "name", value)

        def text(match: Any) -> str:
            kind, name, attr = match.groups()
            found = value_of(_place(path), Address(kind, name), attr or "name", value)
            return found if isinstance(found, str) else _json_text(found)

        return REFERENCE.sub(text, value)

    return one((), data)


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


# The record -----------------------------------------------------------------------------


@dataclass
class Record:
    """The server's record of a stack, as this run keeps it and sends it back."""

    name: str
    body: StackRecord
    exists: bool
    owner: str | None = None
    """The token of the stack lock this run holds: the server takes writes naming it."""

    @classmethod
    def load(cls, ctx: StackContext, owner: str | None = None) -> Record:
        try:
            found = ctx.api.get(f"{STACKS}/{path_segment(ctx.stack)}")
        except NotFoundError:
            return cls(ctx.stack, StackRecord(status="UpInProgress"), False, owner)
        fields = {k: found[k] for k in StackRecord.model_fields if k in found}
        return cls(ctx.stack, StackRecord.model_validate(fields), True, owner)

    def _params(self) -> dict[str, str]:
        return {"owner": self.owner} if self.owner else {}

    def save(self, ctx: StackContext) -> None:
        ctx.api.request(
            "PUT",
            f"{STACKS}/{path_segment(self.name)}",
            json_body=self.body.model_dump(mode="json"),
            params=self._params(),
        )
        self.exists = True

    def remove(self, ctx: StackContext) -> None:
        with contextlib.suppress(NotFoundError):
            ctx.api.delete(f"{STACKS}/{path_segment(self.name)}", params=self._params())
        self.exists = False

    def entries(self, address: Address) -> list[StackResource]:
        return [r for r in self.body.resources if r.address == str(address)]

    def entry(self, address: Address, name: str) -> StackResource | None:
        for resource in self.body.resources:
            if resource.address == str(address) and resource.physical == name:
                return resource
        return None

    def drop(self, resource: StackResource) -> None:
        self.body.resources = [r for r in self.body.resources if r is not resource]


# Plan -----------------------------------------------------------------------------------


EventKind = Literal["start", "progress", "done", "failed", "warning"]


@dataclass
class Event:
    """What ``up``/``down`` report while they run (the CLI draws them)."""

    kind: EventKind
    address: Address | None
    step: Step | None = None
    message: str = ""
    seconds: float = 0.0


Reporter = Callable[[Event], None]


def _quiet(_event: Event) -> None:
    return None


@dataclass
class Plan:
    stack: str
    steps: list[Step]

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "steps": [step_to_dict(s) for s in self.steps]}

    @property
    def changes(self) -> int:
        return sum(1 for s in self.steps if s.action != "none")


def step_to_dict(step: Step) -> dict[str, Any]:
    return {
        "address": str(step.address),
        "kind": step.address.kind,
        "name": step.address.name,
        "physical": step.physical,
        "action": step.action,
        "reason": step.reason,
        "fingerprint": step.fingerprint,
    }


class _Planner:
    """Plans one block at a time, keeping what is known of those already planned."""

    def __init__(
        self, ctx: StackContext, graph: Graph, handlers: dict[str, Handler], record: Record
    ) -> None:
        self.ctx = ctx
        self.graph = graph
        self.handlers = handlers
        self.record = record
        self.state: dict[Address, Known] = {}
        self.resolved: dict[Address, Resolved] = {}

    def check_external(self) -> None:
        check_external(self.ctx, self.graph)

    def plan(self, address: Address) -> Step:
        node = self.graph.nodes[address]
        handler = self.handlers[address.kind]
        attempt, dead_reason = 1, ""
        while True:
            resolved = resolve(node, self.state, self.graph.base, attempt)
            step = handler.plan(self.ctx, address, resolved.spec)
            dead = (
                address.kind in IMMUTABLE_KINDS
                and step.action == "replace"
                and step.physical == resolved.physical
            )
            if not dead:
                break
            dead_reason = step.reason
            if attempt >= MAX_ATTEMPTS:
                raise ValidationError(
                    f"{address}: {MAX_ATTEMPTS} attempts at this spec ended unusable; the "
                    f"last: {step.reason}",
                    hint="Fix the cause (see the resource's failure reason), change the block "
                    "and run kennel up again.",
                )
            attempt += 1
        self.resolved[address] = resolved
        step.spec = resolved.spec
        step.fingerprint = resolved.fingerprint
        if address.kind in IMMUTABLE_KINDS:
            step.physical = resolved.physical
        earlier = [r for r in self.record.entries(address) if r.physical != step.physical]
        if step.action == "create" and attempt > 1:
            step.action, step.reason = "replace", f"attempt {attempt}: {dead_reason}"
        elif step.action == "create" and earlier and address.kind in IMMUTABLE_KINDS:
            step.action = "replace"
            step.reason = _changes(earlier[-1].spec, resolved.form) or "its spec changed"
        if resolved.unknown and step.action == "none":
            step.action = "update"
            step.reason = "uses " + ", ".join(sorted(set(resolved.unknown)))
        elif resolved.unknown:
            step.reason += " (uses " + ", ".join(sorted(set(resolved.unknown))) + ")"
        return step

    def learn(self, step: Step, attributes: dict[str, Any] | None) -> None:
        """Keep what ``step`` tells its dependents: the name, and the attributes if known."""
        if attributes is None:
            self.state[step.address] = Known(step.physical, {"name": step.physical}, False)
            return
        known = {k: v for k, v in attributes.items() if v is not None}
        complete = len(known) == len(attributes)
        self.state[step.address] = Known(step.physical, known, complete)


def check_external(ctx: StackContext, graph: Graph) -> None:
    """Data sets named but not declared must be on the server."""
    for node in graph.nodes.values():
        for place, name in node.external.items():
            try:
                ctx.api.get(f"/api/v1/datasets/{path_segment(name)}")
            except NotFoundError:
                raise ValidationError(
                    f"{place}: data set {name!r} is neither in the stack's datasets nor "
                    "on the server.",
                    hint="Declare it under datasets:, or create it first (kennel datasets create).",
                ) from None


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``hyperparameters.lr 0.01 -> 0.02; epochs 1 -> 2``: what differs, for a person."""
    flat_old = dict(_leaves(old))
    flat_new = dict(_leaves(new))
    found: list[str] = []
    for key in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(key, "(unset)"), flat_new.get(key, "(unset)")
        if a != b:
            found.append(f"{key} {_short(a)} -> {_short(b)}")
    if len(found) > 4:
        found = [*found[:4], f"and {len(found) - 4} more"]
    return "; ".join(found)


def _leaves(data: Any) -> Iterator[tuple[str, Any]]:
    for path, value in _walk(data):
        if path and (not isinstance(value, dict | list) or not value):
            yield _place(path), value


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _leftovers(record: Record, planned: dict[Address, str]) -> list[StackResource]:
    """Recorded resources the stack no longer has: a removed block, or a replaced one."""
    return [
        r for r in record.body.resources if planned.get(Address(r.kind, r.logical)) != r.physical
    ]


def plan(
    ctx: StackContext,
    stack: StackFile,
    *,
    handlers: dict[str, Handler] | None = None,
    where: str = "stack",
) -> Plan:
    """What ``up`` would do, block by block; changes nothing."""
    handlers = default_handlers() if handlers is None else handlers
    graph = build_graph(stack, ctx.base, handlers, where=where)
    return plan_graph(ctx, graph, handlers, Record.load(ctx))


def plan_graph(
    ctx: StackContext, graph: Graph, handlers: dict[str, Handler], record: Record
) -> Plan:
    """The plan of a resolved graph against ``record`` (what an earlier ``up`` made)."""
    planner = _Planner(ctx, graph, handlers, record)
    planner.check_external()
    steps: list[Step] = []
    for address in graph.order:
        step = planner.plan(address)
        steps.append(step)
        attributes = None
        if step.action in ("none", "update", "wait"):
            attributes = handlers[address.kind].attributes(ctx, step.physical)
        planner.learn(step, attributes)
    planned = {s.address: s.physical for s in steps}
    for resource in _leftovers(record, planned):
        if resource.owned:
            steps.append(_removal(resource, planned))
    return Plan(graph.stack.name, steps)


def _removal(resource: StackResource, planned: dict[Address, str]) -> Step:
    address = Address(resource.kind, resource.logical)
    if address in planned:
        reason = f"replaced by {planned[address]}"
    else:
        reason = "no longer in the stack file"
    if resource.kind in ("tuning_jobs", "training_jobs"):
        reason += " (stopped if running; the job stays as a record)"
    return Step(address, "delete", resource.physical, reason, fingerprint=resource.fingerprint)


# Up -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What ``up`` or ``down`` did."""

    stack: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_ACTING: dict[str, ResourceStatus] = {
    "create": "Creating",
    "replace": "Creating",
    "update": "Updating",
    "wait": "Waiting",
}


def up(
    ctx: StackContext,
    stack: StackFile,
    *,
    handlers: dict[str, Handler] | None = None,
    report: Reporter = _quiet,
    where: str = "stack",
    file: str = "",
) -> Outcome:
    """Bring the stack up: every block in dependency order, then the leftovers removed.

    The run holds the stack's lock throughout (see ``_lock``): the record is read and
    written under it, so two runs of one stack never both act.

    Raises:
        ValidationError: The stack does not resolve (nothing was changed).
        ConflictError: Another run holds the stack's lock (nothing was changed).
        StackError: A step failed; the message names what exists and what does not, and
            the record says the same (run ``up`` again once the cause is fixed).
    """
    handlers = default_handlers() if handlers is None else handlers
    graph = build_graph(stack, ctx.base, handlers, where=where)
    check_external(ctx, graph)
    with StackLock(ctx, "up") as lock:
        outcome = Outcome(stack.name)
        warning = lock.takeover_warning()
        if warning:
            outcome.warnings.append(warning)
            report(Event("warning", None, message=warning))
        record = Record.load(ctx, owner=lock.owner)
        _up_locked(ctx, stack, graph, handlers, record, outcome, report, file)
    return outcome


def _up_locked(
    ctx: StackContext,
    stack: StackFile,
    graph: Graph,
    handlers: dict[str, Handler],
    record: Record,
    outcome: Outcome,
    report: Reporter,
    file: str,
) -> None:
    planner = _Planner(ctx, graph, handlers, record)
    record.body.status, record.body.status_reason = "UpInProgress", ""
    record.body.description, record.body.file = stack.description, file
    record.save(ctx)
    done: list[Address] = []
    current: Address | None = None
    try:
        for address in graph.order:
            current = address
            step = _apply_one(ctx, planner, handlers[address.kind], address, report)
            outcome.steps.append(step)
            done.append(address)
        current = None
        planned = {a: planner.state[a].physical for a in graph.order}
        for resource in _reverse(_leftovers(record, planned)):
            _clean_up(ctx, record, handlers, resource, planned, outcome, report)
        outcome.outputs = resolve_outputs(stack, planner.state)
        outcome.resources = _resources(record)
        record.body.status, record.body.outputs = "UpComplete", outcome.outputs
        record.save(ctx)
    except KeyboardInterrupt:
        _best_effort_save(ctx, record, "UpInterrupted", "interrupted; run kennel up again")
        raise
    except Exception as error:
        raise _failed(ctx, record, graph, done, current, error) from error


def _apply_one(
    ctx: StackContext,
    planner: _Planner,
    handler: Handler,
    address: Address,
    report: Reporter,
) -> dict[str, Any]:
    started = time.monotonic()
    report(Event("start", address))
    step = planner.plan(address)
    report(Event("start", address, step))
    record = planner.record
    resolved = planner.resolved[address]
    entry = record.entry(address, step.physical)
    node = planner.graph.nodes[address]
    if entry is None:
        entry = StackResource(
            address=str(address),
            physical=step.physical,
            status="Creating",
            # A hashed name comes from this stack's own spec: the stack made it (a job an
            # earlier stack's down left as a record included). Others that exist already
            # were there before the stack, and down leaves them.
            owned=address.kind in IMMUTABLE_KINDS or step.action in ("create", "replace"),
        )
        record.body.resources.append(entry)
    entry.fingerprint = step.fingerprint
    entry.depends_on = sorted(str(a) for a in node.upstream)
    entry.spec = resolved.form
    if step.action == "none":
        attributes = handler.attributes(ctx, step.physical)
    else:
        entry.status, entry.status_reason = _ACTING.get(step.action, "Updating"), step.reason
        record.save(ctx)

        def progress(message: str) -> None:
            report(Event("progress", address, step, message))

        attributes = handler.apply(dataclasses.replace(ctx, progress=progress), step)
    entry.status, entry.status_reason, entry.attributes = "Ready", "", attributes
    record.save(ctx)
    planner.learn(step, attributes)
    seconds = time.monotonic() - started
    report(Event("done", address, step, seconds=seconds))
    return {**step_to_dict(step), "seconds": round(seconds, 1), "attributes": attributes}


def _clean_up(
    ctx: StackContext,
    record: Record,
    handlers: dict[str, Handler],
    resource: StackResource,
    planned: dict[Address, str],
    outcome: Outcome,
    report: Reporter,
) -> None:
    """Remove a leftover the stack made; one that cannot go yet stays recorded, with a
    warning (an old model still used elsewhere must not fail the whole run)."""
    if not resource.owned:
        record.drop(resource)
        return
    step = _removal(resource, planned)
    handler = handlers.get(resource.kind)
    report(Event("start", step.address, step))
    if handler is None:
        outcome.warnings.append(f"{resource.address} ({resource.physical}): no handler")
        return
    resource.status = "Deleting"
    record.save(ctx)
    try:
        handler.delete(ctx, resource.physical)
    except KennelError as error:
        resource.status, resource.status_reason = "Failed", str(error)
        record.save(ctx)
        warning = f"{resource.address} ({resource.physical}) was not removed: {error}"
        outcome.warnings.append(warning)
        report(Event("warning", step.address, step, warning))
        return
    record.drop(resource)
    record.save(ctx)
    outcome.steps.append({**step_to_dict(step), "seconds": 0.0, "attributes": {}})
    report(Event("done", step.address, step))


def resolve_outputs(stack: StackFile, state: dict[Address, Known]) -> dict[str, Any]:
    """The ``outputs`` section with every reference's value."""

    def value_of(place: str, address: Address, attr: str, _text: str) -> Any:
        value = state[address].attributes.get(attr)
        if value is None:
            raise ValidationError(
                f"outputs.{place}: {address} has no attribute {attr!r} "
                f"(it has {', '.join(sorted(state[address].attributes))}).",
                hint="See `kennel stack describe STACK` for each resource's attributes.",
            )
        return value

    return {key: _substitute({key: text}, value_of)[key] for key, text in stack.outputs.items()}


def _resources(record: Record) -> dict[str, dict[str, Any]]:
    return {
        r.address: {"physical": r.physical, "status": r.status, "attributes": r.attributes}
        for r in record.body.resources
    }


def _failed(
    ctx: StackContext,
    record: Record,
    graph: Graph,
    done: list[Address],
    current: Address | None,
    error: BaseException,
) -> StackError:
    reason = str(error) or type(error).__name__
    if current is not None:
        for entry in record.entries(current):
            if entry.status != "Ready":
                entry.status, entry.status_reason = "Failed", reason
    where = f"at {current}" if current is not None else "removing leftovers"
    _best_effort_save(ctx, record, "UpFailed", f"{where}: {reason}")
    rank = {str(a): i for i, a in enumerate(graph.order)}
    ready = sorted(
        (r for r in record.body.resources if r.status == "Ready" and r.address != str(current)),
        key=lambda r: rank.get(r.address, len(rank)),
    )
    made = [f"{r.address} ({r.physical})" for r in ready]
    later = [
        str(a)
        for a in graph.order
        if a not in done and a != current and not any(r.address == str(a) for r in ready)
    ]
    parts = [f"kennel up stopped {where}: {reason}"]
    parts.append("Exists: " + (", ".join(made) if made else "nothing yet") + ".")
    if current is not None:
        physicals = [e.physical for e in record.entries(current)]
        maybe = f" ({', '.join(physicals)}: it may exist, see its status)" if physicals else ""
        parts.append(f"Failed: {current}{maybe}.")
    if later:
        parts.append("Not made: " + ", ".join(later) + ".")
    hint = getattr(error, "hint", None)
    return StackError(
        " ".join(parts),
        hint=(hint + " " if hint else "")
        + "Run kennel up again once the cause is fixed (it resumes); kennel down removes "
        "what was made.",
    )


def _best_effort_save(ctx: StackContext, record: Record, status: Any, reason: str) -> None:
    record.body.status, record.body.status_reason = status, reason
    # The server is what failed: the record keeps what it last heard.
    with contextlib.suppress(KennelError):
        record.save(ctx)


# Down -----------------------------------------------------------------------------------


def _reverse(resources: list[StackResource]) -> list[StackResource]:
    """Dependents before what they depend on (by the recorded dependencies)."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    addresses = {r.address for r in resources}
    for resource in resources:
        sorter.add(resource.address)
        for upstream in resource.depends_on:
            if upstream in addresses:
                sorter.add(upstream, resource.address)
    try:
        sorter.prepare()
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=lambda a: _kind_rank(_address(a)), reverse=True)
            for address in ready:
                order.append(address)
                sorter.done(address)
    except graphlib.CycleError:  # a record edited by hand: fall back on the kinds' order
        order = sorted(addresses, key=lambda a: _kind_rank(_address(a)), reverse=True)
    rank = {a: i for i, a in enumerate(order)}
    return sorted(resources, key=lambda r: rank[r.address])


def _address(text: str) -> Address:
    kind, _, name = text.partition(".")
    return Address(kind, name)


def down(
    ctx: StackContext,
    *,
    handlers: dict[str, Handler] | None = None,
    report: Reporter = _quiet,
) -> Outcome:
    """Remove what the stack made (its record says what), dependents first; then the
    record. Jobs are stopped if running and stay, as on SageMaker.

    Raises:
        StackError: A removal failed: what is gone and what remains (run ``down`` again).
    """
    handlers = default_handlers() if handlers is None else handlers
    outcome = Outcome(ctx.stack)
    if not Record.load(ctx).exists:
        outcome.warnings.append(f"Stack {ctx.stack!r} has no record on the server: nothing to do.")
        return outcome
    with StackLock(ctx, "down") as lock:
        warning = lock.takeover_warning()
        if warning:
            outcome.warnings.append(warning)
            report(Event("warning", None, message=warning))
        # Read under the lock: what the last run left, not what it was doing meanwhile.
        record = Record.load(ctx, owner=lock.owner)
        _down_locked(ctx, handlers, record, outcome, report)
        lock.stop_renewing()  # a renewal after the record is gone must not make it again
        record.remove(ctx)
    return outcome


def _down_locked(
    ctx: StackContext,
    handlers: dict[str, Handler],
    record: Record,
    outcome: Outcome,
    report: Reporter,
) -> None:
    record.body.status, record.body.status_reason = "DownInProgress", ""
    record.save(ctx)
    removed: list[str] = []
    try:
        for resource in _reverse(list(record.body.resources)):
            _remove_one(ctx, record, handlers, resource, outcome, report)
            removed.append(f"{resource.address} ({resource.physical})")
    except KeyboardInterrupt:
        _best_effort_save(ctx, record, "DownInterrupted", "interrupted; run kennel down again")
        raise
    except Exception as error:
        reason = str(error) or type(error).__name__
        _best_effort_save(ctx, record, "DownFailed", reason)
        remaining = [f"{r.address} ({r.physical})" for r in record.body.resources]
        raise StackError(
            f"kennel down stopped: {reason} Removed: {', '.join(removed) or 'nothing'}. "
            f"Remaining: {', '.join(remaining) or 'nothing'}.",
            hint="Fix the cause and run kennel down again (it continues where it stopped).",
        ) from error


def _remove_one(
    ctx: StackContext,
    record: Record,
    handlers: dict[str, Handler],
    resource: StackResource,
    outcome: Outcome,
    report: Reporter,
) -> None:
    address = Address(resource.kind, resource.logical)
    step = Step(address, "delete", resource.physical, "")
    if not resource.owned:
        step.action, step.reason = "none", "left alone: it existed before the stack"
        report(Event("done", address, step))
        outcome.steps.append({**step_to_dict(step), "seconds": 0.0})
        record.drop(resource)
        return
    handler = handlers.get(resource.kind)
    if handler is None:
        raise ValidationError(
            f"{resource.address} ({resource.physical}): this kennel has no handler for "
            f"{resource.kind}."
        )
    started = time.monotonic()
    report(Event("start", address, step))
    resource.status = "Deleting"
    record.save(ctx)

    def progress(message: str) -> None:
        report(Event("progress", address, step, message))

    handler.delete(dataclasses.replace(ctx, progress=progress), resource.physical)
    record.drop(resource)
    record.save(ctx)
    seconds = time.monotonic() - started
    report(Event("done", address, step, seconds=seconds))
    outcome.steps.append({**step_to_dict(step), "seconds": round(seconds, 1)})


def describe(ctx: StackContext) -> dict[str, Any]:
    """The server's record of the stack."""
    found: dict[str, Any] = ctx.api.get(f"{STACKS}/{path_segment(ctx.stack)}")
    return found
