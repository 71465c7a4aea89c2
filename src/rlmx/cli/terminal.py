"""Text from a model or a store, made safe to print on a terminal.

A model's answer, a cell's output, a stored query or an imported trace may carry control
characters: ``ESC ] 52`` writes the clipboard, ``ESC ] 0`` sets the window title, ``ESC [ 2J``
clears the screen, a carriage return overwrites what was printed. Every place the CLI prints
such text shows those characters as escapes instead (``\\x1b``), except newline and tab.
``--json`` output stays exact: JSON escapes the C0 controls itself, and :func:`json_line`
escapes the C1 ones, which some terminals also obey.
"""

from __future__ import annotations

import json
import re

from rich.markup import escape

# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F, e.g. U+009B CSI).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """``text`` with each control character but newline and tab written as ``\\xNN``."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def markup(value: object) -> str:
    """``value`` as rich markup that prints it as it is, controls made visible."""
    return escape(shown(str(value)))


def json_line(value: object, *, indent: int | None = None) -> str:
    """``value`` as JSON for stdout: exact, UTF-8 kept, and no raw control character."""
    return json_text(json.dumps(value, ensure_ascii=False, indent=indent))


def json_text(text: str) -> str:
    """A JSON text (as ``json.dumps`` writes it, or a stored trace line) with every raw
    control character written as a ``\\u`` escape: the same JSON value, safe on a terminal."""
    # Only string contents can hold these, so a \\u escape keeps the JSON and its value.
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
