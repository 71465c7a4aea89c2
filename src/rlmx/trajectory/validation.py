"""Checks of events from outside (an imported trace) before they reach the store.

A trace file is untrusted input: any field may hold any JSON. The store and its readers
(``rlmx runs show``, the viewer) rely on the types the recorder writes, so an imported event is
held to its dataclass's field types, with numbers bounded: SQLite keeps integers in 64 bits
(``prompt_tokens`` of 2**70 raised ``OverflowError``), a reader formats a depth or a token
count as a number (``"depth": "deep"`` raised ``TypeError``), and a NaN time cannot be stored.
Event types this version does not know are kept, their common fields checked, since readers
skip them (a newer writer's trace stays importable).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from rlmx.trajectory.events import EVENT_TYPES, SCHEMA_VERSION, Event

# Far above any real count, and inside both SQLite's 64-bit integers and a double's exact range.
MAX_INT = 2**53
# Seconds, dollars: far above any real value (a timestamp is about 1.7e9).
MAX_NUMBER = 1e15
MAX_DEPTH = 64
MAX_RUN_ID_CHARS = 200
# JSON objects and arrays within one event: the recorder writes three levels.
MAX_NESTING = 16
# A lone surrogate (JSON allows "\ud800") cannot be encoded as UTF-8 for SQLite.
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Bad(Exception):
    """Why an event is refused."""


def event_problem(data: object) -> str | None:
    """Why ``data`` may not be imported, or None when it may."""
    try:
        _check(data)
    except _Bad as exc:
        return str(exc)
    return None


def _check(data: object) -> None:
    if not isinstance(data, Mapping):
        raise _Bad("not a JSON object")
    _check_plain(data, 0)
    kind, run_id = data.get("type"), data.get("run_id")
    if not isinstance(kind, str) or not kind:
        raise _Bad("no event type")
    if not isinstance(run_id, str) or not run_id or len(run_id) > MAX_RUN_ID_CHARS:
        raise _Bad("run_id must be a non-empty string")
    version = data.get("schema_version", SCHEMA_VERSION)
    if not _is_int(version) or not 1 <= version <= SCHEMA_VERSION:
        raise _Bad(f"schema_version {version!r} is not one this rlmx reads")
    cls = EVENT_TYPES.get(kind, Event)
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            required = spec.default is dataclasses.MISSING
            if required and spec.default_factory is dataclasses.MISSING:
                raise _Bad(f"{kind} has no {spec.name}")
        elif not _fits(data[spec.name], hints[spec.name]):
            raise _Bad(f"{kind}.{spec.name} is not a {hints[spec.name]}")
    if data.get("depth", 0) > MAX_DEPTH:
        raise _Bad(f"depth above {MAX_DEPTH}")
    if kind == "run_started":
        _check_context(data["context"])
    elif kind == "run_finished":
        _check_result(data["result"])


def _check_plain(value: object, level: int) -> None:
    """JSON of bounded nesting, finite bounded numbers and strings SQLite can store."""
    if level > MAX_NESTING:
        raise _Bad(f"nested deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _Bad("a string holds a lone surrogate")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise _Bad(f"the integer {value:.3g} is out of range")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise _Bad(f"the number {value!r} is out of range")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_plain(key, level + 1)
            _check_plain(item, level + 1)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, level + 1)
    else:
        raise _Bad(f"a {type(value).__name__} is not JSON")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: object, hint: object) -> bool:
    """Whether ``value`` has the type ``hint`` of an event field (numbers not negative)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is str:
        return isinstance(value, str)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int or hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return value >= 0 and (hint is float or isinstance(value, int))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(v, args[1]) for v in value.values())
    return False


def _check_context(context: dict[str, Any]) -> None:
    """The shape readers print: a kind, and sizes that are counts."""
    if not isinstance(context.get("kind"), str):
        raise _Bad("run_started.context has no kind")
    sizes = {name: context.get(name) for name in ("chars", "lines", "parts", "bytes")}
    if not all(v is None or _fits(v, int) for v in sizes.values()):
        raise _Bad("run_started.context sizes must be counts")
    if sizes["chars"] is not None and sizes["lines"] is None:
        raise _Bad("run_started.context has chars but no lines")
    for name in ("form", "name", "head", "tail", "sha256"):
        if not _fits(context.get(name), str | None):
            raise _Bad(f"run_started.context.{name} must be a string")


def _check_result(result: dict[str, Any]) -> None:
    """The fields of a ``RunResult.to_dict()`` that the store and readers use."""
    if not isinstance(result.get("status"), str):
        raise _Bad("run_finished.result has no status")
    fields: dict[str, object] = {
        "answer": str | None,
        "error": str | None,
        "iterations": int | None,
        "sub_calls": int | None,
        "wall_s": float | None,
        "cost_usd": float | None,
        "usage": dict[str, Any] | None,
    }
    for name, hint in fields.items():
        if not _fits(result.get(name), hint):
            raise _Bad(f"run_finished.result.{name} is not a {hint}")
