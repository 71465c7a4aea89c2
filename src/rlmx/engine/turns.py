"""What the root model is told each turn, and which of its answers are taken: the one seam
where the small-model policy lives, so the loop of :mod:`rlmx.engine.code_level` stays plain:
it asks :class:`Turns` and never branches on the model's size or on an assist.

:class:`Turns` holds one run's view of the conversation (what the outputs showed, which
replies came back, which answer is being checked) and each mechanism of
:class:`~rlmx.config.Assists` is one method or one branch here, switchable alone. A capable
model gets ``Assists.none()``: the full prompt, its replies kept, its first answer taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from rlmx.config import Assists
from rlmx.context import ContextHandle
from rlmx.context.helpers import ANALYTICS, COMMON, DIRECTORY
from rlmx.engine.examples import EXAMPLE_ANSWERS, Kind, copies_example_output
from rlmx.engine.options import named_option, option_note
from rlmx.engine.parsing import cut_invented_output
from rlmx.engine.planning import MapPlan
from rlmx.engine.prompts import PromptStyle, format_cell_output
from rlmx.engine.repeats import RepeatWatch
from rlmx.engine.search_keys import KeyCount, rarest_unused
from rlmx.providers.base import CallOptions
from rlmx.sandbox.capture import truncate
from rlmx.types import CellResult, Message

Action = Literal["answer", "retract"]


# The errors that using a directory's `context` as a text, or opening its files, gives.
_DIRECTORY_MISTAKES = frozenset(
    {"TypeError", "AttributeError", "PermissionError", "FileNotFoundError", "IsADirectoryError"}
)
# What the REPL defines: imported as if they were modules ("from context import context"),
# they fail the same way as a missing library, and need another note.
REPL_NAMES = frozenset(
    {"context", "llm_query", "llm_query_batched", "llm_map", "rlm_query", "FINAL", "FINAL_VAR"}
    | {"SHOW_VARS", *COMMON, *DIRECTORY, *ANALYTICS}
)
_MISSING = re.compile(r"No module named '([^'.]+)")
DEFINED_NOTE = (
    "Note: `{name}` is not a module to import: it is already defined in this REPL. Use it directly."
)
MISSING_MODULE_NOTE = (
    "Note: that module is not installed in this REPL and cannot be. Use the standard library "
    "(re, collections, statistics, json, itertools, ast ...) and write anything else you need "
    "in the code."
)
DIRECTORY_NOTE = (
    "Note: `context` here is a directory of files, read on demand: list_files() gives their "
    "paths, read_file(path) one file's text, search_files(pattern) the matching lines with "
    "their path:line. Files cannot be opened with open()."
)


@dataclass(frozen=True, slots=True)
class Next:
    """How to go on after a reply: keep it and answer with ``text``, or take it back and send
    the turn before it again with ``text`` as a note."""

    action: Action
    text: str


class Shown(NamedTuple):
    """A cell's output as the root model reads it: the ``text`` of its turn, and the part of
    the output that is ``visible`` in it."""

    text: str
    visible: str


@dataclass(slots=True)
class Turns:
    style: PromptStyle
    query: str
    assists: Assists
    kind: Kind = "lookup"
    keys: list[KeyCount] = field(default_factory=list)
    plan: MapPlan | None = None
    context_kind: str = "text"
    _seen: list[str] = field(default_factory=list)  # every output shown, lowercased
    _repeats: RepeatWatch = field(default_factory=RepeatWatch)
    # no output yet, or the last one was an error, empty, an echo of the question, or cut
    _failed_last: bool = True
    _cut_last: bool = False
    _held: str | None = None  # an answer under check
    _outputs: int = 0  # outputs shown so far
    _outputs_at_hold: int = 0
    _checks: int = 0
    _last_run: tuple[str, list[str]] | None = None
    _codes: list[str] = field(default_factory=list)
    _echoes: list[bool] = field(default_factory=list)  # per cell of the current reply
    _option_noted: bool = False

    def __post_init__(self) -> None:
        self._repeats.enabled = self.assists.unstick

    # Before the loop --------------------------------------------------------------------------

    def system(self, info: ContextHandle, *, sub_chars: int, sub_calls: bool) -> str:
        return self.style.system(info, sub_chars=sub_chars, sub_calls=sub_calls)

    def first_turn(self) -> str:
        return self.style.first_turn(
            self.query,
            kind=self.kind,
            keys=self.keys if self.assists.rank_keys else (),
            plan=self.plan,
        )

    def opening_cell(self) -> str | None:
        """Code to run before the first root call and show as the model's own first reply:
        the drafted map, if there is one. Shown the code instead, the 1.5B model wrote an
        output for it, copied from its worked example, rather than sending it to run."""
        return None if self.plan is None else self.plan.code()

    def next_turn(self, output: str) -> str:
        return self.style.next_turn(self.query, output)

    # Each reply -------------------------------------------------------------------------------

    def sampling(self, iteration: int) -> CallOptions:
        """Options for the next root call: greedy, unless the last reply was a repeat."""
        return self._repeats.sampling(iteration)

    def received(self, reply: str) -> str:
        """The reply as the loop takes it: a small model's invented output after its code (and
        whatever it went on to say from it) is cut off."""
        return cut_invented_output(reply) if self.style.name == "small" else reply

    def stalled(self, reply: str) -> bool:
        return self._repeats.stalled(reply)

    def no_code(self, reply: str) -> Next:
        """The turn after a reply with neither code nor an answer; one that repeats the worked
        example's output is taken back."""
        if copies_example_output(reply):
            return Next("retract", self.style.example_output_copied())
        return Next("answer", self.style.no_code(self.query))

    def review(self, answer: str, *, typed: bool) -> Next | None:
        """None to finish with ``answer``; otherwise what to do instead. ``typed`` is true when
        the model wrote the answer out rather than computing it in code."""
        if self._copies_example(answer):
            return Next("retract", self.style.example_copied(self._rarer_hint()))
        option = named_option(self.query, answer) if self.assists.ground else None
        if option is not None and not self._option_noted:
            self._option_noted = True
            return Next("answer", option_note(*option))
        if self.assists.ground and typed and self._failed_last and not self._shows(answer):
            return Next("retract", self.style.not_shown(answer))
        if self.assists.ground and typed and self._cut_last and self._restates_query(answer):
            return Next("retract", self.style.answer_restates(answer, self._rarer_hint()))
        if self.assists.verify and self.kind == "classify":
            return self._check_against_counts(answer)
        if not (self.assists.verify and self.kind == "count") or _not_found(answer):
            return None
        plain = _plain(answer)
        if self._held is None:
            self._held, self._checks, self._outputs_at_hold = plain, 1, self._outputs
            return Next("answer", self.style.check_answer(answer))
        unchecked = typed and self._outputs == self._outputs_at_hold
        if plain == self._held and unchecked and self._checks < 2:
            # The same answer typed again with no code run: that is no check.
            self._checks += 1
            return Next("answer", self.style.check_answer(answer))
        if plain == self._held or self._checks >= 2:
            return None
        self._held, self._checks = plain, self._checks + 1
        return Next("answer", self.style.checks_differ(answer))

    def review_cell(self, answer: str, *, typed: bool, outputs: list[str]) -> Next | None:
        """:meth:`review` of an answer given by a cell, after the reply's earlier cells printed
        ``outputs``: a turn that answers the reply shows them first."""
        verdict = self.review(answer, typed=typed)
        if verdict is not None and verdict.action == "answer" and outputs:
            return Next("answer", "\n\n".join([*outputs, verdict.text]))
        return verdict

    def after_cells(self, code: str, outputs: list[str], printed: bool) -> Next:
        """The turn after a reply whose cells ran and none finished."""
        self._codes.append(code.lower())
        drop = self.assists.drop_fruitless
        echoed, self._echoes = bool(self._echoes) and all(self._echoes), []
        if drop and not printed:
            return Next("retract", self.style.nothing_found(self._rarer_hint()))
        if drop and echoed:
            return Next("retract", self.style.only_echo())
        if drop and (code, outputs) == self._last_run:
            return Next("retract", self.style.ran_again())
        self._last_run = (code, outputs)
        return Next("answer", self.style.next_turn(self.query, "\n\n".join(outputs)))

    def show(self, cell: CellResult, index: int, total: int, *, hint: bool) -> Shown:
        """A cell's output as the root model reads it (its share of the output limit),
        remembered here; with ``hint``, a cut or empty output names a rarer search key."""
        visible, cut = truncate(cell.output, self.style.max_output_chars // total)
        self.shown(visible, failed=cell.error is not None, cut=cut)
        wants_hint = hint and (cut or not visible.strip())
        text = format_cell_output(
            index,
            total,
            visible,
            self._explained(cell),
            style=self.style.name,
            cut=cut,
            hint=self.cut_hint() if wants_hint else "",
        )
        return Shown(text, visible)

    def _explained(self, cell: CellResult) -> str | None:
        """A cell's error, with a note where the bare error left the 1.5B model repeating
        itself: a module that is not installed (it imported ``nltk`` again after the error in
        every word-count question of the logs demo), and, over a directory, what treating
        ``context`` as a text or opening its files gives (``ast.parse(context)``,
        ``open(path)`` in the audit demo)."""
        if cell.error is None or not self.assists.explain_errors:
            return cell.error
        if cell.error_type == "ModuleNotFoundError":
            named = _MISSING.search(cell.error)
            if named is not None and named[1] in REPL_NAMES:
                return f"{cell.error}\n{DEFINED_NOTE.format(name=named[1])}"
            return f"{cell.error}\n{MISSING_MODULE_NOTE}"
        if self.context_kind == "directory" and cell.error_type in _DIRECTORY_MISTAKES:
            return f"{cell.error}\n{DIRECTORY_NOTE}"
        return cell.error

    def shown(self, output: str, *, failed: bool, cut: bool = False) -> None:
        """Remember an output the model saw, to tell a shown answer from an invented one.
        After a cut output too, a typed answer must be in what was shown: the 1.5B model
        answered a number that was nowhere in the 4,000 characters it saw of 200,000."""
        self._outputs += 1
        echo = not failed and self._echoes_query(output)
        self._echoes.append(echo)
        self._failed_last = failed or not output.strip() or echo or cut
        self._cut_last = cut
        if output.strip() and not echo:
            self._seen.append(output.lower())

    def cut_hint(self) -> str:
        return self._rarer_hint()

    # After the loop ---------------------------------------------------------------------------

    def last_chance(self, messages: list[Message]) -> list[Message]:
        """The messages of one last call asking for an answer from what was already seen."""
        ask = self.style.last_chance(self.query)
        if messages[-1].role == "user":  # the small style's turn after a search found nothing
            return [*messages[:-1], Message("user", f"{messages[-1].content}\n\n{ask}")]
        return [*messages, Message("user", ask)]

    # Helpers ----------------------------------------------------------------------------------

    def _rarer_hint(self) -> str:
        """A rarer search key than those already tried: by count in the context when known."""
        if self.assists.rank_keys and self.keys:
            key = rarest_unused(self.keys, self._codes)
            if key is not None:
                return f'search for r"{key.word}" ({key.count:,} matches in the context)'
        return self.style.shorter_hint(self.query)

    def _shows(self, answer: str) -> bool:
        plain = _plain(answer)
        if not plain:
            return True
        seen = "\n".join(self._seen)
        if _whole(plain, seen):
            return True
        words = re.findall(r"[a-z0-9]{2,}", plain)
        return bool(words) and all(_whole(word, seen) for word in words)

    def _echoes_query(self, output: str) -> bool:
        """Whether every line printed is words of the question: a lookup that printed what
        it searched for (``re.search(key, context).group()``) rather than the text around
        it. Such an output shows nothing new, and the small model answered with it."""
        if self.kind not in ("lookup", "explain") or not self.assists.drop_fruitless:
            return False
        query = _plain(self.query)
        lines = [_plain(line.strip("[](){}, ")) for line in output.splitlines() if line.strip()]
        return bool(lines) and all(len(line) >= 3 and line in query for line in lines)

    def _check_against_counts(self, answer: str) -> Next | None:
        """Once, before an answer about labels is final: the counts of the labels it names,
        read from the last printed ``Counter``, set side by side. The 1.5B model answered
        "abbreviation is more common than description" under a Counter of 3 and 81."""
        if self._held is not None:
            return None  # the answer after the check stands
        counts = _last_counter("\n".join(self._seen))
        named = _labels_named(answer, counts)
        if not named:
            return None
        top = max(counts, key=counts.__getitem__)
        shown = named if top in named or len(named) > 1 else [*named, top]
        self._held, self._checks = _plain(answer), 1
        return Next("answer", self.style.check_counts(answer, [(k, counts[k]) for k in shown]))

    def _restates_query(self, answer: str) -> bool:
        """A lookup's answer made only of the question's own words ("Count" for "Which
        combination opens Count Rostov's cellar?"), picked from an output too long to read."""
        if self.kind != "lookup":
            return False
        words = re.findall(r"[a-z0-9]+", _plain(answer))
        query = set(re.findall(r"[a-z0-9]+", self.query.lower()))
        return bool(words) and all(word in query for word in words)

    def _copies_example(self, answer: str) -> bool:
        """A small model's answer copied from a worked example that no output showed."""
        if self.style.name != "small":
            return False
        copied = answer.strip(" '\"") in EXAMPLE_ANSWERS
        return copied and _plain(answer) not in "\n".join(self._seen)


_NOT_FOUND = re.compile(r"\b(not found|unknown|no answer|cannot (be )?(found|determined))\b")


def _not_found(answer: str) -> bool:
    return bool(_NOT_FOUND.search(answer.lower()))


_COUNTED = re.compile(r"'((?:[^'\\]|\\.)+)': (\d+)")


def _last_counter(seen: str) -> dict[str, int]:
    """The label counts of the last ``Counter({...})`` printed (outputs are lowercased)."""
    start = seen.rfind("counter({")
    if start < 0:
        return {}
    end = seen.find("})", start)
    return {k: int(n) for k, n in _COUNTED.findall(seen[start : end if end > 0 else None])}


def _labels_named(answer: str, counts: dict[str, int]) -> list[str]:
    """The counted labels an answer names, longest first so that "human being" is not also
    "being", in the order the answer names them."""
    text, found = answer.lower(), []
    for label in sorted(counts, key=len, reverse=True):
        match = _whole_match(label, text)
        if match:
            found.append((match.start(), label))
            text = text[: match.start()] + " " * len(label) + text[match.end() :]
    return [label for _, label in sorted(found)]


def _whole_match(needle: str, text: str) -> re.Match[str] | None:
    """``needle`` in ``text``, not inside a longer word or number ("5" is not in "1805")."""
    return re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", text)


def _whole(needle: str, text: str) -> bool:
    return _whole_match(needle, text) is not None


def _plain(text: str) -> str:
    return " ".join(text.strip(" '\"`.").lower().split())
