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
- **items counted by eye**: shown an extract of 97 error messages, 8 distinct, it answered
  "A connection request was canceled before the completion. 11 times" (31 in the list); a
  count answer that names values of a list no tally counted, with a number that is not the
  count of any of them, is told the count of the first and held to tallying that list. Said
  again after the tally as "... 97 hits", the list's size, it is held to the tallied counts.
- **counts left out**: shown a tally with 539 beside "mod_jk child workerEnv in error state
  <*>", asked for the top messages with their counts, it answered the message alone; an
  answer that names tallied values without their shown counts is held to those values,
  ranked by the tally, each with its count. A ranking that names none of the tallied values
  and no row's count ("error", or "WARN: 808", the tally's size), or that sends the listed
  texts by name, is held to the tally's head.
- **items for distinct values**: shown "a list of 1,734 items, 30 distinct", it answered 1,734
  to "how many distinct addresses"; a question about distinct, different or unique values is
  told the distinct count of the list it counted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from rlmx.context.analytics import STOP_WORDS
from rlmx.dsl.commands import Command
from rlmx.dsl.notes import kinds_note
from rlmx.dsl.prompts import example_answers
from rlmx.engine.options import named_option, option_note

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
_SHOWN_KEY = re.compile(r'"(\w+)": (-?\d+(?:\.\d+)?)\b')
_CUT = re.compile(r"\.\.\. and [\d,]+ more")
_SAVED_AS = re.compile(r"\(saved as (\w+)\)")
_DISTINCT = re.compile(r"\b(distinct|different|unique)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
# An answer names a value when it holds a run of at least this share of the value's words.
NAMED_SHARE = 0.6
MIN_NAMING_LETTERS = 3
# The words of an answer read for the values it names: a ranking is short, a list sent by
# name is not the model's writing.
MAX_ANSWER_WORDS = 400
# A question that asks for items by how often they occur, rather than for one total.
_RANKING = re.compile(
    r"\b(?:most|least) (?:common|frequent|often)|\btop\b|\brank|\bwith (?:their|its|the) "
    r"counts?\b|\bhow often\b|\bfrequenc",
    re.IGNORECASE,
)
# An answer with this share of the words of a worked example's answer that no result or the
# question showed copied the example.
COPIED_SHARE = 0.5
_TOKEN = re.compile(r"\w+")
# How many items a ranking asks for: "top 3", "the 10 most frequent", "five most common".
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_COUNT = rf"(\d{{1,2}}|{'|'.join(_NUMBER_WORDS)})"
_ROWS_ASKED = re.compile(
    rf"\btop {_COUNT}\b|\b{_COUNT} (?:\w+ )?(?:most|least)\b",
    re.IGNORECASE,
)
DEFAULT_ROWS = 3
MAX_ROWS = 20
# A question that asks for the counts themselves ("with their counts", "how many times").
_ASKS_COUNTS = re.compile(
    r"\bcounts?\b|\bhow (?:many times|often)\b|\bnumber of times\b|\bfrequenc", re.IGNORECASE
)
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)


def rows_asked(query: str) -> int:
    """How many items a ranking question asks for ("the top 3", "the 10 most common"): 3
    when it does not say."""
    found = _ROWS_ASKED.search(query)
    if found is None:
        return DEFAULT_ROWS
    said = next(g for g in found.groups() if g).lower()
    return min(MAX_ROWS, max(1, int(said) if said.isdigit() else _NUMBER_WORDS.index(said) + 1))


def ranks(query: str) -> bool:
    """Whether ``query`` asks for items by how often they occur, rather than for one total."""
    return _RANKING.search(query) is not None


def _words(text: str) -> list[str]:
    # "<*>" (a masked variable of a tallied kind) has no word in it: dropped.
    return [w.lower() for w in _WORD.findall(text)]


def named_values(answer: str, values: Sequence[str]) -> list[int]:
    """The indices of ``values`` that ``answer`` names, in the order it names them. A value
    is named by a run of at least :data:`NAMED_SHARE` of its words (the answer may leave out
    a prefix such as "error : ", or write a masked "<*>" out); where two values share a
    stretch of the answer, the one that matches more of its own words has it. Values with no
    letters (status codes, ports, years) are never named: any count would name them; nor are
    values of only stop words or words of one or two letters, which any sentence holds."""
    said = _words(answer)[:MAX_ANSWER_WORDS]
    vocabulary = set(said)
    found: list[tuple[float, int, int, int]] = []  # (share, start, end, index)
    for index, value in enumerate(values):
        if not _LETTER.search(value):
            continue
        own = _words(value)
        if all(w in STOP_WORDS or len(w) < MIN_NAMING_LETTERS for w in own):
            continue  # "in", "the", "and": any sentence names them
        needed = len(own) if len(own) < 2 else max(2, math.ceil(NAMED_SHARE * len(own)))
        if sum(w in vocabulary for w in own) < needed:  # cheap: most values share too little
            continue
        match = SequenceMatcher(None, said, own, autojunk=False).find_longest_match(
            0, len(said), 0, len(own)
        )
        if match.size >= needed:
            found.append((match.size / len(own), match.a, match.a + match.size, index))
    taken: list[tuple[int, int]] = []
    named: list[tuple[int, int]] = []
    for _share, start, end, index in sorted(found, key=lambda f: (-f[0], f[1])):
        if all(end <= a or start >= b for a, b in taken):
            taken.append((start, end))
            named.append((start, index))
    return [index for _, index in sorted(named)]


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)]


_VALUE = r"-?\d[\d,]*(?:\.\d+)?"
_AND = r"\s*(?:,\s*(?:and\s+)?|\band\s+)"


def _given_values(answer: str, keys: Sequence[str]) -> list[tuple[str, tuple[int, int]]]:
    """The value ``answer`` gives each shown key, as (key, the number's span): beside the key
    ("p95: 388.8", "p95 is 388.8"), or listed in the keys' order after a list of them ("the
    p50, p95 and p99 are 11, 388.8 and 1286.7")."""
    given: dict[str, tuple[int, int]] = {}
    for key in keys:
        beside = re.search(rf"\b{re.escape(key)}\b\s*(?:[:=]|is|was|of)?\s*({_VALUE})", answer)
        if beside is not None:
            given[key] = beside.span(1)
    if keys:
        key = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
        listed = re.compile(
            rf"\b({key})\b((?:{_AND}(?:the\s+)?(?:{key})\b)+)[^\d\n]{{0,60}}?"
            rf"\b(?:are|were|is|was|[:=])\s*({_VALUE}(?:{_AND}{_VALUE})+)"
        )
        for found in listed.finditer(answer):
            named = [found.group(1), *re.findall(rf"\b(?:{key})\b", found.group(2))]
            spans = [
                (found.start(3) + m.start(), found.start(3) + m.end())
                for m in re.finditer(_VALUE, found.group(3))
            ]
            if len(named) == len(spans):
                for name, span in zip(named, spans, strict=True):
                    given.setdefault(name, span)
    return sorted(given.items(), key=lambda pair: pair[1])


def _filter_answers(values: Iterable[Any]) -> bool:
    """Whether ``values`` are a yes/no map's answers: a filter's, never the items a ranking
    names (the 1.5B root asked "Is it about FATAL?" of 347 lines, and its answer was held to
    the count of "no")."""
    said = {str(v).strip().lower() for v in values}
    return bool(said) and said <= {"yes", "no"}


def _tally_of(name: str, texts: list[str]) -> Command:
    """The tally of a saved list of texts, by kind where the kinds note would propose it."""
    args: dict[str, Any] = {"name": name}
    if kinds_note(texts).text:
        args["templates"] = True
    return Command("tally", args)


def _ranking(rows: Sequence[tuple[str, int]]) -> Command:
    """The final answer of ranked ``(value, count)`` rows, each "N. value: count"."""
    lines = (f"{i}. {value.strip()}: {count}" for i, (value, count) in enumerate(rows, 1))
    return Command("final", {"answer": "\n".join(lines)})


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
    # The answers notes composed (the model's answer with shown values in place, a tally's
    # head): sent as offered, they are accepted without another check.
    _offered: set[str] = field(default_factory=set)
    # The last result, when it was a grep cut at its limit: (its command, shown, found).
    _sample: tuple[Command, int, int] | None = None
    # The last list of texts with repeats that no tally has counted since, and how many
    # results had been shown when it was (what came after may hold its counts).
    _untallied: tuple[list[str], int] | None = None
    # The last tally shown: (value, count) pairs, most common first.
    _tallied: list[tuple[str, int]] = field(default_factory=list)
    # Its sizes (values counted, distinct values): numbers of the tally that count no row.
    _tally_sizes: set[float] = field(default_factory=set)

    def saw(self, output: str, command: Command | None = None, result: Any = None) -> None:
        self.shown.append(output)
        self._sample = None
        total = getattr(result, "total", None)
        if command is None or not isinstance(result, list):
            return
        if command.name == "tally":
            rows = [(str(v), c) for v, c in result if isinstance(c, int)]
            if _filter_answers(v for v, _ in rows):
                return
            self._untallied, self._tallied = None, rows
            sizes = (getattr(result, "total", None), getattr(result, "distinct", None))
            self._tally_sizes = {float(n) for n in sizes if isinstance(n, int)}
            return
        if _filter_answers(result):
            return
        if all(isinstance(item, str) for item in result) and 1 < len(set(result)) < len(result):
            # A new list: the tally before it counted something else.
            self._untallied, self._tallied = (result, len(self.shown)), []
        if isinstance(total, int) and total > len(result):
            self._sample = (command, len(result), total)

    def note(
        self, answer: str, saved: Mapping[str, Any], *, by_name: str | None = None
    ) -> str | None:
        """A note to send back instead of accepting ``answer``, or None to accept it; ``saved``
        are the run's saved values (the lists the answer may have counted). ``by_name``: the
        name of the saved value the answer is, computed rather than written, so its numbers
        and counts are not the model's to check (only whether it has counts at all)."""
        if answer in self._offered:
            return None  # an answer a note composed from the results: nothing to check
        self.proposed = None
        checks: list[tuple[str, Callable[[], str | None]]] = [
            ("example", lambda: self._copies_example(answer)),
            ("option", lambda: self._option(answer)),
            ("cut", lambda: self._cut_list(answer)),
            ("sample", lambda: self._from_sample(answer)),
            ("distinct", lambda: self._distinct(answer, saved)),
            ("labels", lambda: self._mislabelled(answer)),
        ]
        if by_name:
            # Noted once before a tally of the list and once after it.
            listed = "listed, tallied" if self._tallied else "listed"
            checks.append((listed, lambda: self._list_without_counts(by_name, saved)))
        else:
            checks += [
                ("untallied", lambda: self._counted_by_eye(answer, saved)),
                ("unnamed", lambda: self._names_no_tallied(answer)),
                ("uncounted", lambda: self._counts_left_out(answer)),
                ("unseen", lambda: self._unseen(answer)),
            ]
        # One note at a time, each kind once: a check runs only while no note is chosen, so
        # the command proposed is always the one the note returned asks for.
        for kind, check in checks:
            if kind in self._noted:
                continue
            note = check()
            if note is not None:
                self._noted.add(kind)
                if self.proposed is not None and self.proposed.name == "final":
                    self._offered.add(str(self.proposed.args.get("answer", "")))
                return note
            self.proposed = None
        return None

    def _copies_example(self, answer: str) -> str | None:
        """An answer made of a worked example's answer: the 1.5B root answered an audit
        question with "fetch/download.py:12: MAX_RETRIES = 5", from the directory example.
        Words a result or the question showed are the run's own, not copied."""
        said = set(_TOKEN.findall(answer.lower()))
        seen = set(_TOKEN.findall(" ".join([self.query, *self.shown]).lower()))
        for example in example_answers():
            unseen = set(_TOKEN.findall(example.lower())) - seen
            copied = unseen & said
            if len(copied) >= 2 and len(copied) >= COPIED_SHARE * len(unseen):
                return (
                    f"Your answer is the worked example's ({example!r}), about made-up data, "
                    "not this question's. Answer only from the results of your commands: send "
                    "a command that finds the answer here."
                )
        return None

    def _option(self, answer: str) -> str | None:
        option = named_option(self.query, answer)
        return option_note(*option) if option else None

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

    def _from_sample(self, answer: str) -> str | None:
        if not self.counts or self._sample is None:
            return None
        grep, shown, found = self._sample
        pattern = str(grep.args.get("pattern", ""))
        if grep.name != "grep" or not pattern or str(found) in _numbers(answer):
            return None  # the grep's own total is not read from the sample
        args: dict[str, Any] = {"pattern": f"(?:{pattern}).*" if "|" in pattern else f"{pattern}.*"}
        args.update({k: v for k, v in grep.args.items() if k in ("ignore_case", "doc")})
        self.proposed = Command("extract", args, "matches")
        return (
            f"Your answer is read from the {shown} matches shown, of the {found:,} the grep "
            "found: a count needs all of them. To keep each match with the rest of its line, "
            f"send {self.proposed.to_json()}; then count them with tally."
        )

    def _ranks(self) -> bool:
        """A question of counting that asks for items by how often they occur."""
        return self.counts and ranks(self.query)

    def _asks_for_counts(self) -> bool:
        """A ranking question that asks for the counts themselves ("with their counts")."""
        return self._ranks() and _ASKS_COUNTS.search(self.query) is not None

    def _counted_by_eye(self, answer: str, saved: Mapping[str, Any]) -> str | None:
        """A count in ``answer`` that is not the count of the listed values it names."""
        if not self._ranks() or self._untallied is None:
            return None
        texts, seen_before = self._untallied
        # Its name now: "last" moves on with every command.
        names = sorted((n for n, v in saved.items() if v is texts), key=lambda n: n == "last")
        if not names:
            return None
        distinct = list(dict.fromkeys(texts))
        named = [distinct[i] for i in named_values(answer, distinct)]
        own = {m for text in (*named, self.query) for m in _numbers(text)}
        given = [n for n in _numbers(_LIST_MARKER.sub(" ", answer)) if n not in own]
        if not named or not given:
            return None
        counted = Counter(texts)
        allowed = {float(counted[v]) for v in named}
        if any(float(n) in allowed for n in given):
            return None
        # Numbers shown after the list was made (a count of one value), and the list's sizes
        # said of more than one value ("2 kinds of 60"); of one value, its size is a count by
        # eye ("97 hits").
        later = {float(n) for output in self.shown[seen_before:] for n in _numbers(output)}
        if len(named) > 1:
            later |= {float(len(texts)), float(len(distinct))}
        if all(float(n) in later for n in given):
            return None
        self.proposed = _tally_of(names[0], texts)
        first = named[0] if len(named[0]) <= 80 else named[0][:77] + "..."
        return (
            f"Your answer counts by eye: {names[0]} has {len(texts):,} items, and {first!r} is "
            f"{counted[named[0]]:,} of them. To count each value, send "
            f"{self.proposed.to_json()}."
        )

    def _list_without_counts(self, name: str, saved: Mapping[str, Any]) -> str | None:
        """A list of texts with repeats sent by name for a ranking that asks for counts: the
        1.5B root sent its 595 extracted messages after a tally of them had shown 539 of one
        kind."""
        value = saved.get(name)
        if not self._asks_for_counts() or not isinstance(value, list):
            return None
        if not all(isinstance(v, str) for v in value) or len(set(value)) == len(value):
            return None
        said = "Your answer is the list itself, without counts, and the question asks for counts."
        if self._tallied:
            self.proposed = self._ranking_of_tally()
            return (
                f"{said} Answer from the tally's rows, each value as it shows it with its "
                f"count: {self.proposed.to_json()}."
            )
        self.proposed = _tally_of(name, value)
        return f"{said} To count each value, send {self.proposed.to_json()}."

    def _ranking_of_tally(self) -> Command:
        """The final answer the last tally's head gives: the question's number of rows."""
        return _ranking(self._tallied[: rows_asked(self.query)])

    def _names_no_tallied(self, answer: str) -> str | None:
        """A ranking that names none of the values a tally counted and no count of a row:
        the 1.5B root answered "error" under a tally whose first row was 539 "mod_jk child
        workerEnv in error state <*>", and "WARN: 808" (the tally's size) under one whose
        first row was 475 "WARN <*> ...: Address change detected"."""
        if not self._asks_for_counts() or not self._tallied:
            return None
        if any(float(n) not in self._tally_sizes for n in _numbers(answer)):
            return None
        if named_values(answer, [value for value, _ in self._tallied]):
            return None
        self.proposed = self._ranking_of_tally()
        return (
            "Your answer names none of the values the tally counted, and no count of one "
            "(the tally's size counts them all). Answer from the tally's rows, each value as it "
            f"shows it with its count: {self.proposed.to_json()}."
        )

    def _counts_left_out(self, answer: str) -> str | None:
        """Values of the last tally that ``answer`` names without the count shown for them."""
        if not self._asks_for_counts() or not self._tallied:
            return None
        values = [value for value, _ in self._tallied]
        named = [self._tallied[i] for i in named_values(answer, values)]
        given = {float(n) for n in _numbers(answer)}
        if not named or all(float(count) in given for _, count in named):
            return None
        # Ranked by the tally's counts, whatever order the answer named them in.
        self.proposed = _ranking(sorted(named, key=lambda pair: -pair[1]))
        return (
            "The question asks for counts, and your answer leaves out the counts the tally "
            "showed for what it names. Send your answer with each one's count: "
            f"{self.proposed.to_json()}."
        )

    def _unseen(self, answer: str) -> str | None:
        seen = {n for output in self.shown for n in _numbers(output)} | set(_numbers(self.query))
        values = {float(n) for n in seen}
        given = _numbers(_LIST_MARKER.sub(" ", answer))  # "5." numbers an item, not a value
        missing = [n for n in given if n not in seen and not _rounds(n, values)]
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
        for key, span in _given_values(answer, list(shown)):
            values = shown[key]
            number = answer[span[0] : span[1]].replace(",", "")
            if not _rounds(number, set(values)):
                # Whose value it was: the model copied the line above or below.
                owners = [k for k, v in shown.items() if k != key and _rounds(number, set(v))]
                whose = f", which is the {owners[0]}" if owners else ""
                shown_as = " or ".join(f"{v:g}" for v in sorted(values))
                wrong.append(f"{key} is {shown_as} (not {number}{whose})")
                if len(values) == 1:
                    fixes.append((span, next(iter(values.values()))))
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
