"""Placeholder replaced by the embedded-models command."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    return None
