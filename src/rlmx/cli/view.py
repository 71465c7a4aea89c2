"""The `rlmx view` command (not wired yet)."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    return None
