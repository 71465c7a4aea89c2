"""Trajectory events: typed, versioned, and described by a JSON schema the viewer ships."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rlmx.trajectory import events as ev
from rlmx.trajectory.schema import SCHEMA_PATH, event_schema, main, render

STATIC = Path(ev.__file__).resolve().parent.parent / "server" / "static"


def samples() -> list[ev.Event]:
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "calls": 1}
    return [
        ev.RunStarted(
            run_id="r1",
            query="q",
            context={"kind": "str", "chars": 3},
            root_model="scripted:a",
            sub_model="scripted:b",
            limits={"max_iterations": 3},
        ),
        ev.IterationStarted(run_id="r1", iteration=1),
        ev.RootReply(
            run_id="r1",
            iteration=1,
            text="```repl\nx=1\n```",
            usage=usage,
            latency_s=0.1,
            cost_usd=None,
            model="scripted:a",
        ),
        ev.CellStarted(run_id="r1", iteration=1, index=0, code="x=1"),
        ev.CellExecuted(
            run_id="r1",
            iteration=1,
            index=0,
            code="x=1",
            output="",
            error=None,
            final=None,
            duration_s=0.01,
        ),
        ev.SubCall(
            run_id="r1",
            depth=1,
            call_id="r1.1",
            kind="llm",
            model="scripted:b",
            prompt="p",
            response="r",
            usage=usage,
            latency_s=0.2,
            cost_usd=0.001,
        ),
        ev.FinalAnswer(run_id="r1", iteration=1, answer="42"),
        ev.RunError(run_id="r1", status="timeout", error="limit timeout reached"),
        ev.RunFinished(run_id="r1", result={"status": "completed", "answer": "42"}),
    ]


def test_every_event_type_has_a_sample() -> None:
    assert {type(e) for e in samples()} == set(ev.EVENT_TYPES.values())


@pytest.mark.parametrize("event", samples(), ids=lambda e: e.type)
def test_round_trip_through_json(event: ev.Event) -> None:
    data = json.loads(json.dumps(event.to_dict()))
    assert data["type"] == event.type
    assert data["schema_version"] == ev.SCHEMA_VERSION
    assert ev.event_from_dict(data) == event


def test_unknown_fields_from_a_newer_writer_are_ignored() -> None:
    event = samples()[1]
    assert ev.event_from_dict({**event.to_dict(), "added_later": True}) == event


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "nope", "run_id": "r"}, "unknown event type"),
        ({"type": "iteration_started", "run_id": "r"}, "bad iteration_started"),
        (
            {"type": "iteration_started", "run_id": "r", "iteration": 1, "schema_version": 99},
            "newer than this rlmx",
        ),
    ],
)
def test_bad_events_are_refused_clearly(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ev.event_from_dict(data)


def test_the_checked_in_schema_matches_the_types() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "regenerate it: python -m rlmx.trajectory.schema --write"
    )


def test_schema_main_prints_and_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert json.loads(capsys.readouterr().out) == event_schema()
    assert main(["--nope"]) == 2


def _check(schema: dict[str, Any], value: object, where: str) -> None:
    """A validator for the subset of JSON Schema that the generator emits."""
    if "const" in schema:
        assert value == schema["const"], where
    if "anyOf" in schema:
        errors = 0
        for option in schema["anyOf"]:
            try:
                _check(option, value, where)
            except AssertionError:
                errors += 1
        assert errors < len(schema["anyOf"]), where
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        python = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
            "null": type(None),
            "object": dict,
        }
        assert any(isinstance(value, python[k]) for k in kinds), f"{where}: {value!r} not {kinds}"
    if isinstance(value, dict) and "properties" in schema:
        assert set(schema["required"]) <= set(value), where
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), where
        for key, item in value.items():
            _check(schema["properties"].get(key, {}), item, f"{where}.{key}")
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            _check(schema["additionalProperties"], item, f"{where}.{key}")


@pytest.mark.parametrize("event", samples(), ids=lambda e: e.type)
def test_every_event_validates_against_the_schema(event: ev.Event) -> None:
    schema = event_schema()
    _check(schema["$defs"][event.type], event.to_dict(), event.type)


def test_required_fields_are_the_fields_every_writer_sets() -> None:
    for name, cls in ev.EVENT_TYPES.items():
        required = set(event_schema()["$defs"][name]["required"])
        fields = {f.name for f in dataclasses.fields(cls)}
        optional = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and f.name != "depth"
        }
        assert required == {"type", "schema_version"} | (fields - optional), name


def test_the_viewer_renders_every_event_type() -> None:
    """The viewer has one handler per event type: a new event cannot go unseen."""
    source = (STATIC / "run.js").read_text(encoding="utf-8")
    block = source[source.index("const HANDLERS = {") :]
    handled = set(re.findall(r"^  (\w+)\(page, e\)", block, flags=re.MULTILINE))
    assert handled == set(ev.EVENT_TYPES)
