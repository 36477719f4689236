"""What the stack engine and the resource kinds share: addresses, steps, the handler
protocol each kind implements, and the context handlers act through.

The engine (``_engine``) orders the blocks by their references, asks each kind's handler
what it would do (``plan``), does it (``apply``) and undoes it (``delete``). Handlers talk
to the server only through ``StackContext``: the signed kennel API (``ctx.api``) and plain
boto3 clients pointed at the server (``ctx.aws("iam")``), as a user's code would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from kennel._client import KennelClient

Action = Literal["create", "update", "replace", "none", "delete", "wait"]
"""What a step does: ``none`` leaves a resource as it is; ``replace`` makes a new one of an
immutable kind (a new physical name) whose dependents then move to it; ``wait`` follows a
resource an earlier, interrupted ``kennel up`` started (a training job still running)."""

UNKNOWN = "(known after apply: {})"
"""In a plan's spec, a reference whose upstream is not applied yet, formatted with
``kind.name.attribute``; a handler's plan must take it (it cannot check what it stands for)."""

IMMUTABLE_KINDS = frozenset({"tuning_jobs", "training_jobs", "models"})
"""Kinds whose resources cannot change once made; their physical names carry a hash of
the spec, so a changed spec makes a new one (and the old one stays, as a record)."""


@dataclass(frozen=True, order=True)
class Address:
    """A block of the stack: its section (kind) and logical name."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.name}"


@dataclass
class Step:
    """What ``plan`` found for one block, and what ``apply`` will do."""

    address: Address
    action: Action
    physical: str
    """The resource's name on the server."""
    reason: str
    """Why, for a person: ``does not exist``, ``instance_count 1 -> 2``, ``unchanged``."""
    spec: dict[str, Any] = field(default_factory=dict)
    """The block with every reference resolved, as the handler will send it."""
    fingerprint: str = ""


@dataclass
class StackContext:
    """What a handler acts through."""

    api: KennelClient
    base: Path
    """The stack file's folder: relative paths in blocks are relative to it."""
    stack: str
    aws: Callable[[str], Any]
    """``aws("iam")``: a boto3 client for that service, signed, pointed at the server."""
    progress: Callable[[str], None] = lambda message: None
    """Reports what a long step is doing (the CLI shows it with rich)."""
    timeout_seconds: float = 3600.0
    """The longest a step waits for a resource to be ready."""
    lock_seconds: float = 60.0
    """The lease of the stack's lock ``up``/``down`` hold (``KENNEL_STACK_LOCK_SECONDS``):
    renewed every third of it; another run may take it over once it runs out."""


class Handler(Protocol):
    """One kind of resource in a stack."""

    kind: ClassVar[str]
    """Its section in the stack file (``training_jobs``)."""

    def references(self, block: Any) -> set[Address]:
        """The blocks this one names in its reference fields (``dataset: digits``); the
        engine adds those named by ``${...}`` in its strings."""
        ...

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        """Compare the resolved block with what the server has; never changes anything."""
        ...

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        """Do ``step`` and wait until the resource is usable; returns its attributes
        (``name`` always; ``arn``, ``url``, ``uri``... as the kind has them)."""
        ...

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        """The attributes of a resource that exists (for a step whose action is none)."""
        ...

    def delete(self, ctx: StackContext, physical: str) -> None:
        """Remove it (and wait until it is gone); a resource already gone is fine."""
        ...


def fingerprint(spec: dict[str, Any]) -> str:
    """A stable hash of a resolved block (sorted keys; files hashed by content upstream)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def physical(address: Address, spec_fingerprint: str) -> str:
    """The server-side name: the logical name, plus 8 hex digits of the spec for the
    immutable kinds (so a changed spec is a new resource, as CloudFormation replaces)."""
    if address.kind in IMMUTABLE_KINDS:
        return f"{address.name}-{spec_fingerprint[:8]}"
    return address.name
