"""Pieces every CLI module uses: settings, the signed client, the --json option."""

from __future__ import annotations

from typing import Annotated

import typer

from kennel._client import KennelClient
from kennel._settings import Settings, load_settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]


def settings() -> Settings:
    return load_settings()


def client() -> KennelClient:
    return KennelClient.from_settings(settings())
