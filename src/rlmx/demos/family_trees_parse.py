"""Reading relation records out of an answer, leniently.

A run's answer is text: a JSON list, a Python list of dicts (the repr a model's ``FINAL(x)``
of a list gives), an object holding the list, one object a line, or plain lines such as
``Natasha Rostova sibling_of Petya Rostov``. Each record becomes a :class:`Relation` as
written; matching names to people is the scorer's job.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rlmx.demos.family_trees_gold import Relation

# Field names models use for the two people and the relation, in order of preference.
_A_FIELDS = ("a", "person1", "person_a", "from", "subject", "source", "name1", "x", "person")
_B_FIELDS = ("b", "person2", "person_b", "to", "object", "target", "name2", "y", "relative")
_REL_FIELDS = ("relation", "relationship", "rel", "type", "kind", "predicate")

_FENCE = re.compile(r"```[a-zA-Z]*\n?|```")
_OBJECT = re.compile(r"\{[^{}]*\}")
_LINE = re.compile(
    r"^\W*(?P<a>[^\W\d][^|,;:>]*?)\s*[|,;:>\-–]*\s*"
    r"\b(?P<rel>(?:is_)?(?:parent|child|son|daughter|father|mother|spouse|husband|wife|"
    r"sibling|brother|sister)_of|married_to)\b\s*[|,;:>\-–]*\s*(?P<b>[^|,;]+?)\W*$",
    re.IGNORECASE,
)


def parse_relations(answer: str | None) -> list[Relation]:
    """Every relation record the answer holds, in order; [] when none can be read."""
    if not answer or not answer.strip():
        return []
    text = _FENCE.sub("", answer).strip()
    for candidate in _candidates(text):
        value = _literal(candidate)
        if value is not None:
            records = _records(value)
            if records:
                return records
    objects = [_literal(match.group()) for match in _OBJECT.finditer(text)]
    records = _records([value for value in objects if value is not None])
    if records:
        return records
    return _from_lines(text.splitlines())


def _candidates(text: str) -> Iterable[str]:
    yield text
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        yield text[start : end + 1]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        yield text[start : end + 1]


def _literal(text: str) -> Any:
    """JSON, else a Python literal (single quotes, True/None); None when neither parses."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _records(value: Any) -> list[Relation]:
    if isinstance(value, Mapping):
        lists = [v for v in value.values() if isinstance(v, list | tuple)]
        if lists and _field(value, _REL_FIELDS) is None:
            return [r for v in lists for r in _records(v)]  # {"relations": [...]}
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    out = []
    for item in value:
        relation = _record(item)
        if relation is not None:
            out.append(relation)
    return out


def _record(item: Any) -> Relation | None:
    if isinstance(item, Mapping):
        a, rel, b = _field(item, _A_FIELDS), _field(item, _REL_FIELDS), _field(item, _B_FIELDS)
    elif isinstance(item, list | tuple) and len(item) == 3:
        a, rel, b = (str(part) if part is not None else None for part in item)
    elif isinstance(item, str):
        found = _from_lines([item])
        return found[0] if found else None
    else:
        return None
    if not (a and rel and b):
        return None
    return Relation(a.strip(), rel.strip(), b.strip())


def _field(item: Mapping[Any, Any], names: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _from_lines(lines: Iterable[str]) -> list[Relation]:
    out = []
    for line in lines:
        match = _LINE.match(line.strip())
        if match:
            out.append(Relation(match["a"].strip(), match["rel"], match["b"].strip()))
    return out
