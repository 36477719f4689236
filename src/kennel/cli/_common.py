"""Pieces every CLI module uses: settings, the signed client, the --json option."""

from __future__ import annotations

from typing import Annotated

import typer

from kennel._client import KennelClient
from kennel._errors import ValidationError
from kennel._settings import Settings, load_settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]


def settings() -> Settings:
    return load_settings()


def client() -> KennelClient:
    return KennelClient.from_settings(settings())


def pairs(values: list[str] | None, what: str) -> dict[str, str]:
    """Repeated ``NAME=value`` options as a dict; a malformed one is refused by name."""
    found: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"{what} {item!r} must look like name=value.")
        found[key] = value
    return found
