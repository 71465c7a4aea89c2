"""DSL commands: one JSON command per reply, parsed and checked, never executed as code.

A command is a JSON object naming the command in ``"cmd"`` (``"command"`` and ``"op"`` are
accepted too), or an object with the command as its only key: ``{"grep": "vault"}`` or
``{"grep": {"pattern": "vault", "around": 300}}``. A ``FINAL(...)`` line is read as ``final``.
Anything else gets a :class:`CommandError` whose message tells the model how to fix its reply.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from rlmx.engine.parsing import find_bare_final, lenient_value

# name -> {parameter: (types, required)}; the first parameter is the one a bare value fills.
Spec = dict[str, tuple[tuple[type, ...], bool]]
_INT, _STR, _DOC = (int,), (str,), (int, str)
SCHEMA: dict[str, Spec] = {
    "grep": {
        "pattern": (_STR, True),
        "around": (_INT, False),
        "doc": (_DOC, False),
        "limit": (_INT, False),
        "ignore_case": ((bool,), False),
    },
    "find": {"text": (_STR, True), "doc": (_DOC, False), "limit": (_INT, False)},
    "count": {"pattern": (_STR, True), "doc": (_DOC, False), "ignore_case": ((bool,), False)},
    "slice": {"start": (_INT, True), "end": (_INT, False), "doc": (_DOC, False)},
    "lines": {"start": (_INT, True), "end": (_INT, False), "doc": (_DOC, False)},
    "split": {"separator": (_STR, True), "doc": (_DOC, False)},
    "chunk": {"size": (_INT, True), "overlap": (_INT, False), "doc": (_DOC, False)},
    "llm_query": {"prompt": (_STR, True), "each": (_STR, False), "model": (_STR, False)},
    "map": {
        "instruction": (_STR, True),
        "each": (_STR, True),
        "labels": ((list,), False),
        "keep": (_STR, False),
        "model": (_STR, False),
    },
    "extract": {
        "pattern": (_STR, False),
        "kind": (_STR, False),
        "doc": (_DOC, False),
        "limit": (_INT, False),
        "ignore_case": ((bool,), False),
    },
    "tally": {"name": (_STR, True), "top": (_INT, False), "templates": ((bool,), False)},
    "stats": {"name": (_STR, True)},
    "top_words": {"top": (_INT, False), "doc": (_DOC, False)},
    "set": {"name": (_STR, True), "value": ((object,), True)},
    "get": {"name": (_STR, True)},
    "final": {"answer": ((object,), False), "name": (_STR, False)},
    "list_files": {"glob": (_STR, False)},
    "read_file": {"path": (_STR, True)},
    "file_info": {"path": (_STR, True)},
    "functions": {
        "contains": (_STR, False),
        "public": ((bool,), False),
        "documented": ((bool,), False),
        "glob": (_STR, False),
    },
    "imports": {"local": ((bool,), False), "glob": (_STR, False)},
    "search_files": {
        "pattern": (_STR, True),
        "glob": (_STR, False),
        "limit": (_INT, False),
        "ignore_case": ((bool,), False),
    },
}
DIRECTORY_ONLY = frozenset(
    {"list_files", "read_file", "file_info", "search_files", "functions", "imports"}
)
# The commands that make a list from the context, which another command can read by name:
# a small model asks for stats of numbers it never extracted. (A map reads a list already
# made: held to a maker, the 1.5B root sent a map over the very name it lacked.)
LIST_MAKERS = ("extract", "grep", "split", "chunk")
DIRECTORY_LIST_MAKERS = ("functions", "search_files", "list_files", "imports")
NAME_KEYS = ("cmd", "command", "op", "action")
# A final command begun but never closed: the reply ran into its token limit.
_CUT_FINAL = re.compile(r'"(?:cmd|command|op|action)"\s*:\s*"final"\s*,\s*"answer"\s*:\s*"')
# An object's last string closed by a parenthesis or bracket instead of a brace.
_WRONG_CLOSE = re.compile(r'"(\s*)[)\]](\s*(?:```)?\s*)$')
# The end of a final's answer string: its closing quote, the object's brace, nothing after.
_CLOSED_ANSWER = re.compile(r'"\s*}\s*(?:```)?\s*$')
RESERVED_NAMES = frozenset({"last"})
MAX_CANDIDATES = 20


class CommandError(ValueError):
    """A reply that is not one valid command; the message is what the model is told."""


class MissingValue(CommandError):
    """A command that reads a saved value no command has made yet."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    save_as: str | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"cmd": self.name, **self.args}
        if self.save_as:
            data["as"] = self.save_as
        return json.dumps(data, ensure_ascii=False)


def example(name: str) -> str:
    spec = SCHEMA[name]
    parts = [f'"cmd": "{name}"'] + [
        f'"{k}": {_placeholder(k)}' for k, (_, required) in spec.items() if required
    ]
    return "{" + ", ".join(parts) + "}"


def _placeholder(key: str) -> str:
    return {"start": "0", "size": "20000", "value": '"..."'}.get(key, f'"{key.upper()}"')


def parse_reply(text: str, *, directory: bool = False) -> Command:
    """The one command in a reply; raises :class:`CommandError` saying what to fix."""
    data = _find_object(text)
    if data is None:
        final = find_bare_final(text)
        if final is not None:
            key = "name" if final.is_var else "answer"
            return Command("final", {key: lenient_value(final.argument)})
        cut = _CUT_FINAL.search(text)
        closed = _CLOSED_ANSWER.search(text, cut.end()) if cut else None
        if cut and closed:
            # "answer": "... __all__ = ["A", "B"]"}: quotes left unescaped inside the answer,
            # which the 1.5B root was then told had been cut off.
            return Command("final", {"answer": text[cut.end() : closed.start()]})
        if cut:
            raise CommandError(
                "Your final answer was cut off: it was too long for one reply. To answer with "
                'a saved value, send {"cmd": "final", "name": "NAME"}, e.g. '
                '{"cmd": "final", "name": "last"}.'
            )
        raise CommandError(
            "Your reply had no JSON command. Reply with exactly one JSON object, for example "
            '{"cmd": "grep", "pattern": "a word from the question"}, or '
            '{"cmd": "final", "answer": "..."} when you know the answer.'
        )
    return check(data, directory=directory)


def check(data: dict[str, Any], *, directory: bool = False) -> Command:
    """A command from a parsed JSON object, with its arguments checked."""
    data = dict(data)
    name = next((data.pop(k) for k in NAME_KEYS if k in data), None)
    if name is None and len(data) == 1:
        (name, value), data = next(iter(data.items())), {}
        if isinstance(value, dict):
            data = value
        elif name in SCHEMA:
            data = {next(iter(SCHEMA[name])): value}
    if not isinstance(name, str) or name.lower() not in SCHEMA:
        known = ", ".join(n for n in SCHEMA if directory or n not in DIRECTORY_ONLY)
        raise CommandError(f"Unknown command {name!r}. The commands are: {known}.")
    name = name.lower()
    if name in DIRECTORY_ONLY and not directory:
        raise CommandError(f"{name} works on a directory context only; use grep or lines.")
    save_as = data.pop("as", None)
    if save_as is not None:
        check_name(save_as, "as")
    spec = SCHEMA[name]
    args = {k: v for k, v in data.items() if k in spec}
    for key, (types, required) in spec.items():
        if key not in args or args[key] is None:
            if required:
                raise CommandError(f"{name} needs {key!r}, e.g. {example(name)}")
            args.pop(key, None)
            continue
        value = args[key]
        if types != (object,) and (isinstance(value, bool) and bool not in types):
            raise CommandError(f"{name}: {key!r} must be {_type_names(types)}")
        if types != (object,) and not isinstance(value, types):
            raise CommandError(f"{name}: {key!r} must be {_type_names(types)}, got {value!r}")
    if name in ("set", "get"):
        check_name(args["name"], "name")
    if name == "extract" and "kind" in args:
        args.pop("pattern", None)  # a named kind is the surer of the two
    if name == "extract" and "pattern" not in args and "kind" not in args:
        raise CommandError(
            'extract needs "pattern" (a regex; its first group is kept) or "kind" (ipv4, '
            "number, email, url, date, time, duration, hex, uuid, word), e.g. "
            '{"cmd": "extract", "kind": "ipv4"}'
        )
    if name == "map" and "keep" in args and args["keep"] not in args.get("labels", []):
        raise CommandError(
            'map: "keep" must be one of its "labels", e.g. "labels": ["yes", "no"], "keep": "yes"'
        )
    if name == "final" and "answer" not in args and "name" not in args:
        raise CommandError('final needs "answer" (the answer) or "name" (a saved value)')
    return Command(name, args, save_as)


def check_name(value: object, key: str) -> str:
    if (
        not isinstance(value, str)
        or not value.isidentifier()
        or keyword.iskeyword(value)
        or value.startswith("_")
        or value in RESERVED_NAMES
    ):
        raise CommandError(
            f"{key!r} must be a simple name like notes or hits2 (letters, digits, _), not {value!r}"
        )
    return value


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "a whole number", str: "a string", bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in types)


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.DOTALL)


# A backslash that JSON does not allow (``\d``, ``\s``, ``\.``): models write regexes into
# JSON strings unescaped, and mean the backslash itself.
_ESCAPE = re.compile(r'\\(?:["\\/bfnrtu]|(.))', re.DOTALL)
# JSON reads ``\b`` as a backspace; in a regex, it was always meant as a word boundary.
_REGEX_KEYS = ("pattern", "contains")


def _find_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply (inside a code fence if there is one)."""
    found = _first_object(text)
    if found is None and "\\" in text:
        found = _first_object(_ESCAPE.sub(_double_lone, text))
    if found is None and _WRONG_CLOSE.search(text):
        # {"cmd": "final", "answer": "A"): the 1.5B root closed an object with a parenthesis,
        # as a FINAL(...) call would be, and was told its answer had been cut off.
        found = _first_object(_WRONG_CLOSE.sub(r'"\1}\2', text))
    if found is not None:
        for key in _REGEX_KEYS:
            if isinstance(found.get(key), str):
                found[key] = found[key].replace("\b", "\\b")
    return found


def _double_lone(match: re.Match[str]) -> str:
    return match.group(0) if match.group(1) is None else "\\" + match.group(0)


def _first_object(text: str) -> dict[str, Any] | None:
    # strict=False: a line break inside a string (a multi-line answer) is read as one.
    decoder = json.JSONDecoder(strict=False)
    for body in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        start = body.find("{")
        tries = 0
        while start >= 0 and tries < MAX_CANDIDATES:
            tries += 1
            try:
                value, _ = decoder.raw_decode(body, start)
            except ValueError:
                start = body.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = body.find("{", start + 1)
    return None


# A constrained maker must say what to take: extract's "kind" is the other way, but a reply
# held to a schema closed the object right after "as" whenever a parameter was optional.
_MAKER_NEEDS = {"extract": ("pattern",)}
_JSON_TYPES = {int: "integer", str: "string", bool: "boolean", list: "array"}


def maker_schema(name: str, *, directory: bool = False) -> dict[str, Any]:
    """A JSON schema for a reply that makes the saved value ``name``: a command that returns a
    list, with the parameters it needs, saved ``"as": name``."""
    makers = LIST_MAKERS + (DIRECTORY_LIST_MAKERS if directory else ())
    shapes = []
    for maker in makers:
        spec = SCHEMA[maker]
        needs = _MAKER_NEEDS.get(maker) or tuple(k for k, (_, required) in spec.items() if required)
        properties: dict[str, Any] = {"cmd": {"const": maker}}
        for key in needs:
            properties[key] = {"type": _JSON_TYPES.get(spec[key][0][0], "string")}
        properties["as"] = {"const": name}
        shapes.append({"type": "object", "properties": properties, "required": list(properties)})
    return {"anyOf": shapes}
