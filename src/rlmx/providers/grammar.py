"""Grammars that constrain a reply to one of a few strings (llama.cpp's GBNF).

Used by the in-process llama.cpp client and by ``llamacpp:`` servers, whose chat endpoint
takes a ``grammar`` field.
"""

from __future__ import annotations

from collections.abc import Sequence

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def gbnf_literal(text: str) -> str:
    """A GBNF string literal. Only the escapes llama.cpp's grammar parser reads are used:
    quotes, backslashes, \\n \\r \\t, and \\xNN for other control characters."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def choice_grammar(choices: Sequence[str]) -> str:
    """``root ::= "a" | "b"``: the reply is exactly one of ``choices``."""
    options = list(dict.fromkeys(str(c) for c in choices if str(c)))
    if not options:
        raise ValueError("choices must hold at least one non-empty string")
    return "root ::= " + " | ".join(gbnf_literal(option) for option in options)
