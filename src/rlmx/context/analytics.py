"""Counting and statistics over values taken from a context: the last step of most questions
about logs, tables and records ("which message is most frequent", "how many distinct IPs",
"the p95 of the response times", "the most frequent words").

Small models get these wrong in predictable ways when they write them by hand: a regex for an
IPv4 address whose octets need two digits, a percentile indexed past the end of its list, an
``import nltk`` that is not installed, a message counted with its timestamp so no two are alike.
These functions do each step one well-defined way, for the REPL (:mod:`rlmx.context.helpers`)
and the DSL alike. Standard library only: the sandbox worker imports this module.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

# Named patterns for ``extract(kind=...)``: the shapes people ask about, written once, with
# the edge cases right (an octet of one digit, a port after an address).
KINDS: dict[str, str] = {
    "ipv4": r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.]*\d)",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "url": r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+",
    "number": r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\d)",
    "duration": r"\b\d+(?::\d{2}){1,2}(?:\.\d+)?\b",
    "date": r"\b\d{4}-\d{2}-\d{2}\b",
    "time": r"\b\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\b",
    "hex": r"\b(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,})\b",
    "uuid": r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    "word": r"\b[A-Za-z][A-Za-z'-]*\b",
}

# The variable parts of a log line or message, masked so that lines of one kind are counted
# together: ids, addresses, times, hexadecimal and decimal numbers (order matters: the longer
# shapes first). Day and month names are part of timestamps.
_MASKS = tuple(
    re.compile(p)
    for p in (
        KINDS["uuid"],
        r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?(?![\d.]*\d)",
        r"\b\d{4}-\d{2}-\d{2}(?:[T _]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?\b",
        KINDS["time"],
        r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b",
        KINDS["hex"],
        r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?",
    )
)
VARIABLE = "<*>"
# A bracketed field standing alone (a level, thread, client or request id) says who logged a
# message, not what it says: Hadoop's "[LeaseRenewer:msrabi@msra-sa-41:9000]" and
# "[RMCommunicator Allocator]" log the same "Address change detected".
_FIELD = re.compile(r"(?<!\S)\[[^\[\]\n]{1,80}\](?!\S)")
# A line's leading timestamp, once masked: brackets, separators and masked values only.
_HEADER = re.compile(r"^(?:[\s\]\[(),.:/-]*<\*>)+[\s\]),.:/-]*")

# A common English stop-word list (NLTK's, the words of three letters or more).
_STOP_TEXT = (
    "about above after again against all and any are aren because been before being below "
    "between both but can cannot could did does doing don down during each few for from "
    "further had has have having her here hers herself him himself his how into isn its "
    "itself just more most myself nor not now off once only other our ours ourselves out "
    "over own same she should some such than that the their theirs them themselves then "
    "there these they this those through too under until very was wasn were weren what when "
    "where which while who whom why will with won would you your yours yourself yourselves"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"\b[a-z]+\b")  # whole words: not the letters inside an id like 54fadb41
PERCENTILES = (50, 90, 95, 99)


def pattern_of(pattern: str | None, kind: str | None) -> str:
    """The regex that ``pattern`` or a named ``kind`` stands for; exactly one must be given."""
    if (pattern is None) == (kind is None):
        raise ValueError("give either a pattern or a kind, e.g. kind='ipv4'")
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; the kinds are: {', '.join(KINDS)}")
        return KINDS[kind]
    assert pattern is not None
    return pattern


def template(text: str) -> str:
    """``text`` with its variable parts and bracketed fields masked as ``<*>`` and a leading
    header of them dropped, so that messages of one kind read alike: ``[Sun Dec 04 04:47:44
    2005] [error] mod_jk child workerEnv in error state 6`` becomes ``mod_jk child workerEnv
    in error state <*>``."""
    text = _FIELD.sub(VARIABLE, text)
    for mask in _MASKS:
        text = mask.sub(VARIABLE, text)
    stripped = _HEADER.sub("", text, count=1)
    return (stripped or text).strip()


class Counts(list[tuple[str, int]]):
    """``(value, count)`` pairs, most common first, that print as a table and remember how
    many values were counted (``total``) and how many distinct ones there were (``distinct``),
    also when only the first ones are kept."""

    total = 0
    distinct = 0

    def __str__(self) -> str:
        head = f"{self.total:,} values, {self.distinct:,} distinct"
        shown = "" if len(self) == self.distinct else f", the first {len(self):,}"
        lines = [f"{head}{shown}, most common first:"]
        lines += [f"{count:>7,}  {value}" for value, count in self]
        return "\n".join(lines)

    __repr__ = __str__


def counts(counter: Counter[str], top: int | None) -> Counts:
    result = Counts(counter.most_common(top))
    result.total, result.distinct = sum(counter.values()), len(counter)
    return result


def tally(values: Iterable[Any], top: int | None = None, templates: bool = False) -> Counts:
    """How often each value occurs, most common first (ties in first-seen order), as
    ``(value, count)`` pairs; ``top`` keeps the first ones. ``templates=True`` counts messages
    by :func:`template`, so lines that differ only in numbers, times or ids count as one."""
    if isinstance(values, str):
        raise TypeError("tally needs a list of values, not one string: split it first")
    _check_top(top)
    keys = (_key(v) for v in values)
    return counts(Counter(template(k) if templates else k for k in keys), top)


def _check_top(top: int | None) -> None:
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError("top must be a whole number of 1 or more")


def _key(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple | list):
        return " ".join(str(v) for v in value)
    return str(value).strip()


def to_number(value: Any) -> float | None:
    """A value as a number: ``12``, ``0.25``, ``1,024``, a duration ``mm:ss`` or ``hh:mm:ss``
    (in seconds), the first number of a text (``230 ms`` is 230, ``lifetime 01:05`` is 65), or
    None when it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    text = str(value).strip().replace(",", "")
    # The first number, a clock-shaped one read whole: "lifetime 02:05" is 125 s, not 2.
    first = re.search(r"(\d+)((?::\d{1,2}){1,2})(\.\d+)?|-?\d+(?:\.\d+)?", text)
    if first is None:
        return None
    if first.group(2) is None:
        return float(first.group())
    seconds = float(first.group(1))
    for part in first.group(2).split(":")[1:]:
        seconds = seconds * 60 + int(part)
    return seconds + float(first.group(3) or 0)


def stats(values: Iterable[Any]) -> dict[str, float | int]:
    """Count, min, max, mean and the p50, p90, p95 and p99 of the numbers among ``values``
    (each read by :func:`to_number`; values without a number are counted as ``skipped``).
    Percentiles interpolate between the two nearest ranks, as numpy's default does."""
    numbers, skipped = [], 0
    for value in values:
        number = to_number(value)
        if number is None:
            skipped += 1
        else:
            numbers.append(number)
    if not numbers:
        raise ValueError(f"none of the {skipped:,} values is a number")
    numbers.sort()
    result: dict[str, float | int] = {
        "count": len(numbers),
        "min": numbers[0],
        "max": numbers[-1],
        "mean": round(sum(numbers) / len(numbers), 6),
    }
    for p in PERCENTILES:
        result[f"p{p}"] = round(percentile(numbers, p), 6)
    if skipped:
        result["skipped"] = skipped
    return result


def percentile(ordered: list[float], p: float) -> float:
    """The ``p``-th percentile of a sorted list, interpolated linearly between ranks."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def top_words(
    texts: Iterable[str],
    top: int = 10,
    min_length: int = 3,
    stop_words: Iterable[str] = STOP_WORDS,
) -> Counts:
    """The most frequent lowercase words of ``min_length`` letters or more, stop words left
    out, as ``(word, count)`` pairs."""
    _check_top(top)
    skip = frozenset(stop_words)
    counter: Counter[str] = Counter()
    for text in texts:
        counter.update(
            w for w in _WORD.findall(text.lower()) if len(w) >= min_length and w not in skip
        )
    return counts(counter, top)
