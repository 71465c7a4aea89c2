"""Typed answers: the final answer read as JSON and validated against a shape the caller gave.

A run asked for a typed answer tells the root model the shape after its question, and checks
the answer it finishes with. A valid one is returned parsed (``RunResult.value``); an invalid
one gets one corrective turn that says what failed, and a second invalid answer ends the run
with an error: the caller never receives an unvalidated object.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, Protocol

# How much of the schema the root model is shown.
SCHEMA_CHARS = 1_500


@dataclass(frozen=True, slots=True)
class Checked:
    """An answer checked against a shape: its parsed ``value``, or why it failed."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AnswerShape(Protocol):
    """What a typed answer must look like."""

    def describe(self) -> str:
        """The shape, as the root model is told it (a JSON schema)."""
        ...

    def check(self, answer: str) -> Checked: ...


def parse_answer(answer: str) -> Any:
    """The JSON value of an answer: JSON text, JSON in a fence, or a Python literal (what
    ``FINAL_VAR`` of a dict gives). Raises ValueError when it is none of these."""
    text = answer.strip()
    if text.startswith("```"):
        text = text.strip("`").split("\n", 1)[-1] if "\n" in text else text.strip("`")
        text = text.removeprefix("json").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("the answer is not JSON") from None


class PydanticShape:
    """An answer that validates as a pydantic model (or any type pydantic can validate)."""

    def __init__(self, model: Any) -> None:
        from pydantic import TypeAdapter

        self._adapter: TypeAdapter[Any] = TypeAdapter(model)
        self.name = getattr(model, "__name__", str(model))

    def describe(self) -> str:
        return json.dumps(self._adapter.json_schema(), ensure_ascii=False)

    def check(self, answer: str) -> Checked:
        from pydantic import ValidationError

        try:
            value = parse_answer(answer)
            return Checked(value=self._adapter.validate_python(value))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'the answer'}: {e['msg']}"
                    for e in exc.errors()[:5]
                )
                return Checked(error=problems)
            return Checked(error=str(exc))


class JsonSchemaShape:
    """An answer that validates against a JSON schema (``jsonschema``)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema

        jsonschema.validators.validator_for(schema).check_schema(schema)
        self._schema = schema
        self._validator = jsonschema.validators.validator_for(schema)(schema)

    def describe(self) -> str:
        return json.dumps(self._schema, ensure_ascii=False)

    def check(self, answer: str) -> Checked:
        try:
            value = parse_answer(answer)
        except ValueError as exc:
            return Checked(error=str(exc))
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e.path) or 'the answer'}: {e.message}"
                for e in errors[:5]
            )
            return Checked(error=problems)
        return Checked(value=value)


def shape_of(output: Any) -> AnswerShape:
    """The shape ``output`` names: a JSON schema (a dict), or a type pydantic validates.
    Raises ValueError, in one line, for a schema or type that cannot be used."""
    try:
        return JsonSchemaShape(output) if isinstance(output, dict) else PydanticShape(output)
    except Exception as exc:  # jsonschema's SchemaError, pydantic's error for a non-type
        text = str(exc).strip()
        raise ValueError(text.splitlines()[0] if text else type(exc).__name__) from None


def shape_request(shape: AnswerShape) -> str:
    """What the root model is told after its question."""
    schema = shape.describe()
    if len(schema) > SCHEMA_CHARS:
        schema = schema[: SCHEMA_CHARS - 3] + "..."
    return "Answer with JSON that matches this schema, e.g. FINAL(json.dumps(result)):\n" + schema


def correction(error: str) -> str:
    """The corrective turn after an answer of the wrong shape."""
    return (
        f"Your answer does not match the required schema: {error}. Fix it and answer again "
        "with FINAL(json.dumps(result))."
    )
