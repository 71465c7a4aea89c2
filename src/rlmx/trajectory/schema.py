"""The JSON Schema of trajectory events, generated from the event dataclasses.

The viewer ships a checked-in copy (``rlmx/server/static/events.schema.json``); a test keeps it
equal to what this module generates, so the viewer never drifts from the recorder. Regenerate
it with ``python -m rlmx.trajectory.schema --write``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlmx.trajectory.events import EVENT_TYPES, SCHEMA_VERSION, Event

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "server" / "static" / "events.schema.json"

_SCALARS: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: object) -> dict[str, Any]:
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a) for a in args]
        if all(set(o) == {"type"} for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin is dict:
        value = _type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
    raise TypeError(f"no JSON schema for the type {hint!r}")


def _event_schema(cls: type[Event]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {
        "type": {"const": cls.type},
        "schema_version": {"type": "integer", "minimum": 1, "maximum": SCHEMA_VERSION},
    }
    required = ["type", "schema_version"]
    for f in dataclasses.fields(cls):
        properties[f.name] = _type_schema(hints[f.name])
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        # Every writer sets every field; defaults matter to Python callers only.
        if not has_default or f.name in ("depth", "ts"):
            required.append(f.name)
    doc = (cls.__doc__ or "").strip()
    schema: dict[str, Any] = {
        "title": cls.__name__,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if doc and not doc.startswith(cls.__name__ + "("):
        schema["description"] = " ".join(doc.split())
    return schema


def event_schema() -> dict[str, Any]:
    """One schema for a trajectory line: any of the event types, told apart by ``type``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "rlmx-trajectory-events",
        "title": "rlmx trajectory event",
        "description": "One line of a JSONL trace; one row of the events table.",
        "schema_version": SCHEMA_VERSION,
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in EVENT_TYPES],
        "$defs": {name: _event_schema(cls) for name, cls in EVENT_TYPES.items()},
    }


def render() -> str:
    return json.dumps(event_schema(), indent=2, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write"]:
        SCHEMA_PATH.write_text(render(), encoding="utf-8")
        return 0
    if args:
        sys.stderr.write("usage: python -m rlmx.trajectory.schema [--write]\n")
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
