"""Built-in rules (see _base)."""

from __future__ import annotations
