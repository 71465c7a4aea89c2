"""The DSL level (``level="dsl"``): for weak models, or where no model-written code may run.

The root model sends one JSON command per turn (``grep``, ``lines``, ``count``, ``llm_query``,
``final``...); rlmx checks it and runs it with its own helpers. See ``docs/dsl.md``.
"""

from rlmx.dsl.commands import SCHEMA, Command, CommandError, parse_reply

__all__ = ["SCHEMA", "Command", "CommandError", "parse_reply"]
