"""Reading the root model's replies: code blocks, and a bare ``FINAL(...)`` outside code.

``FINAL`` inside code is a real function in the REPL; the parsing here exists only for weak
models that write ``FINAL(answer)`` as prose, often without quotes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# ```repl is the documented fence; small models often write ```python or a bare fence instead.
_FENCE = re.compile(
    r"```[ \t]*(?P<lang>repl|python3?|py)?[ \t]*\n(?P<code>.*?)(?:\n[ \t]*```|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_BARE_FINAL = re.compile(
    r"^[ \t>*`]*(?P<fn>FINAL_VAR|FINAL)\((?P<arg>.*)\)[ \t`*.]*$", re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class FinalCall:
    """A ``FINAL(...)`` or ``FINAL_VAR(...)`` written outside a code block."""

    is_var: bool
    argument: str


def extract_code_blocks(text: str) -> list[str]:
    """The code blocks of a reply, in order; empty blocks are dropped."""
    blocks = []
    for match in _FENCE.finditer(text):
        code = match.group("code").strip("\n")
        if code.strip():
            blocks.append(code)
    return blocks


_INVENTED_OUTPUT = re.compile(r"^[ \t]*Output( of block \d+)?[ \t]*:", re.MULTILINE | re.IGNORECASE)


def cut_invented_output(text: str) -> str:
    """The reply up to an ``Output:`` the model wrote itself after its code. Small models
    imitate the transcript they were shown: they invent the output of the code they just
    wrote, then answer from it in the same reply. Nothing after that line was seen by them."""
    first = _FENCE.search(text)
    if first is None:
        return text
    invented = _INVENTED_OUTPUT.search(text, first.end())
    return text if invented is None else text[: invented.start()].rstrip()


def strip_code_blocks(text: str) -> str:
    return _FENCE.sub("", text).strip()


def find_bare_final(text: str) -> FinalCall | None:
    """The last ``FINAL(...)`` line of a reply's prose; its argument parsed leniently."""
    prose = strip_code_blocks(text)
    matches = list(_BARE_FINAL.finditer(prose))
    if not matches:
        return None
    match = matches[-1]
    return FinalCall(is_var=match.group("fn") == "FINAL_VAR", argument=match.group("arg").strip())


def lenient_value(argument: str) -> str:
    """``"x"`` -> ``x``; ``42`` -> ``42``; an unquoted ``AUSTERLITZ-1805`` stays as written."""
    argument = argument.strip()
    if not argument:
        return ""
    try:
        value = ast.literal_eval(argument)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return argument.strip("'\"` ")
    return value if isinstance(value, str) else str(value)


_ANSWER_LINE = re.compile(r"(?:final\s+)?answer\s*:\s*\S.*", re.IGNORECASE)


def answer_line(text: str) -> str | None:
    """A reply (or a code cell) that is one line ``Answer: ...``: the answer in the form a
    question asked for, written without ``FINAL``; small models do this, in code too."""
    stripped = text.strip().strip("`").strip()
    if "\n" in stripped or not _ANSWER_LINE.fullmatch(stripped):
        return None
    return stripped


def single_line_final(code: str) -> FinalCall | None:
    """A code cell that is nothing but ``FINAL(...)``: retried leniently when it fails to run."""
    stripped = code.strip()
    if "\n" in stripped:
        return None
    match = _BARE_FINAL.fullmatch(stripped)
    if match is None:
        return None
    return FinalCall(is_var=match.group("fn") == "FINAL_VAR", argument=match.group("arg").strip())
