"""A last look at a small root's final answer in the DSL, before it is accepted.

Mistakes of the 1.5B model that a reader of its results would catch at once, each sent back
once with the fact it missed (never an answer of rlmx's own):

- **an option named, not its letter**: a multiple-choice question asks for a letter
  (:mod:`rlmx.engine.options`); an answer that names one option's text is told its letter.
- **numbers no result showed**: after extracting the word "lifetime" 947 times, it answered
  "p50: 1234 seconds; p95: 5678 seconds"; every number of an answer must be in some result.
- **a value under the wrong label**: shown stats with p90 240 and p95 388.8, it answered
  "p95: 240.0, p99: 388.8", each value one line off; an answer that gives a shown key a value
  other than the one shown for it is told the shown values. Told so, it sent the same answer
  again: where each such key was shown one value, its next reply is held to its own answer
  with those values in their places.
- **a list copied as shown**: shown the first 5 of 111 functions and "... and 106 more", it
  answered with those 5 lines and that one; told to finish with the saved list by name, its
  next reply is held to that command (:attr:`AnswerReview.proposed`).
- **a count read from a sample**: asked which failure messages are most common, it grepped
  them (1,484 matches, the first 20 shown) and answered with three of the 20 lines; a count
  question answered right after a grep cut at its limit is told so, and its next reply is held
  to extracting each match to the end of its line (the message after a log line's marker),
  which :func:`rlmx.dsl.notes.kinds_note` then proposes to tally by kind.
- **items for distinct values**: shown "a list of 1,734 items, 30 distinct", it answered 1,734
  to "how many distinct addresses"; a question about distinct, different or unique values is
  told the distinct count of the list it counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlmx.dsl.commands import Command
from rlmx.engine.options import named_option, option_note

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
_SHOWN_KEY = re.compile(r'"(\w+)": (-?\d+(?:\.\d+)?)\b')
_CUT = re.compile(r"\.\.\. and [\d,]+ more")
_SAVED_AS = re.compile(r"\(saved as (\w+)\)")
_DISTINCT = re.compile(r"\b(distinct|different|unique)\b", re.IGNORECASE)


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)]


def _rounds(number: str, seen: set[float]) -> bool:
    """Whether ``number`` is a shown value written to its own precision: 3 for 3.0, 0.38 for
    0.384379, 389 for 388.8."""
    decimals = len(number.partition(".")[2])
    half = 0.5 * 10**-decimals
    value = float(number)
    return any(abs(value - shown) <= half for shown in seen)


@dataclass(slots=True)
class AnswerReview:
    """What the run's results showed, and the one note each kind of mistake may get."""

    query: str
    # A question of counting (routed "count"): its answer must come from every match.
    counts: bool = False
    shown: list[str] = field(default_factory=list)
    # The one command the last note asks for, when there is exactly one.
    proposed: Command | None = None
    _noted: set[str] = field(default_factory=set)
    # The last result, when it was a grep cut at its limit: (its command, shown, found).
    _sample: tuple[Command, int, int] | None = None

    def saw(self, output: str, command: Command | None = None, result: Any = None) -> None:
        self.shown.append(output)
        self._sample = None
        total = getattr(result, "total", None)
        if command is None or not isinstance(result, list) or not isinstance(total, int):
            return
        if total > len(result):
            self._sample = (command, len(result), total)

    def note(self, answer: str, saved: Mapping[str, Any]) -> str | None:
        """A note to send back instead of accepting ``answer``, or None to accept it; ``saved``
        are the run's saved values (the lists the answer may have counted)."""
        self.proposed = None
        option = named_option(self.query, answer)
        notes = (
            ("option", option_note(*option) if option else None),
            ("cut", self._cut_list(answer)),
            ("sample", self._from_sample()),
            ("distinct", self._distinct(answer, saved)),
            ("labels", self._mislabelled(answer)),
            ("unseen", self._unseen(answer)),
        )
        for kind, note in notes:
            if note is not None and kind not in self._noted:
                self._noted.add(kind)
                return note
        return None

    def _cut_list(self, answer: str) -> str | None:
        cut = _CUT.search(answer)
        if cut is None:
            return None
        for output in reversed(self.shown):
            name = _SAVED_AS.search(output)
            if cut.group() in output and name is not None:
                self.proposed = Command("final", {"name": name.group(1)})
                return (
                    f'Your answer copies a list as it was shown, cut after its first items ("'
                    f'{cut.group()}"). To answer with the whole list, send '
                    f"{self.proposed.to_json()}."
                )
        return None

    def _from_sample(self) -> str | None:
        if not self.counts or self._sample is None:
            return None
        grep, shown, found = self._sample
        pattern = str(grep.args.get("pattern", ""))
        if grep.name != "grep" or not pattern:
            return None
        args: dict[str, Any] = {"pattern": f"(?:{pattern}).*" if "|" in pattern else f"{pattern}.*"}
        args.update({k: v for k, v in grep.args.items() if k in ("ignore_case", "doc")})
        self.proposed = Command("extract", args, "matches")
        return (
            f"Your answer is read from the {shown} matches shown, of the {found:,} the grep "
            "found: a count needs all of them. To keep each match with the rest of its line, "
            f"send {self.proposed.to_json()}; then count them with tally."
        )

    def _unseen(self, answer: str) -> str | None:
        seen = {n for output in self.shown for n in _numbers(output)} | set(_numbers(self.query))
        values = {float(n) for n in seen}
        missing = [n for n in _numbers(answer) if n not in seen and not _rounds(n, values)]
        if not missing:
            return None
        listed = ", ".join(dict.fromkeys(missing))
        return (
            f"Your answer has {listed}, which no result showed. Answer only from the results: "
            "compute the values first (for numbers in the text: extract them with a pattern "
            'whose (group) is the number, then stats), then send "final".'
        )

    def _mislabelled(self, answer: str) -> str | None:
        shown: dict[str, dict[float, str]] = {}
        for output in self.shown:
            for key, value in _SHOWN_KEY.findall(output):
                shown.setdefault(key, {})[float(value)] = value
        wrong, fixes = [], []
        for key, values in shown.items():
            given = re.search(
                rf"\b{re.escape(key)}\b\s*(?:[:=]|is|was|of)?\s*(-?\d[\d,]*(?:\.\d+)?)", answer
            )
            if given is None:
                continue
            number = given.group(1).replace(",", "")
            if not _rounds(number, set(values)):
                # Whose value it was: the model copied the line above or below.
                owners = [k for k, v in shown.items() if k != key and _rounds(number, set(v))]
                whose = f", which is the {owners[0]}" if owners else ""
                shown_as = " or ".join(f"{v:g}" for v in sorted(values))
                wrong.append(f"{key} is {shown_as} (not {number}{whose})")
                if len(values) == 1:
                    fixes.append((given.span(1), next(iter(values.values()))))
        if not wrong:
            return None
        if len(fixes) == len(wrong):
            corrected = answer
            for (start, end), value in sorted(fixes, reverse=True):
                corrected = corrected[:start] + value + corrected[end:]
            self.proposed = Command("final", {"answer": corrected})
            return (
                f"Your answer gives other values than the results show: {'; '.join(wrong)}. "
                f"Send your answer with each value copied from its own label: "
                f"{self.proposed.to_json()}."
            )
        return (
            f"Your answer gives other values than the results show: {'; '.join(wrong)}. "
            "Answer again with each value copied from the line with its own label."
        )

    def _distinct(self, answer: str, saved: Mapping[str, Any]) -> str | None:
        if not _DISTINCT.search(self.query):
            return None
        found = _numbers(answer)
        if not found:
            return None
        # Named lists before ``last``, which holds the same list under its generic name.
        for name in sorted(saved, key=lambda n: n == "last"):
            items = saved[name]
            if not isinstance(items, list) or str(len(items)) != found[0]:
                continue
            if not all(isinstance(i, str | int | float) for i in items):
                continue
            distinct = len(set(items))
            if distinct != len(items):
                return (
                    f"{name} has {len(items)} items, but only {distinct} distinct values, and "
                    "the question asks how many distinct (different, unique) ones there are."
                )
        return None
