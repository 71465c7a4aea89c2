"""``rlmx demo run logs``: the four log analyses of the RLM paper's demos, on real Loghub logs.

Five systems (Apache, OpenSSH, OpenStack, Proxifier, Hadoop: 2,000 real lines each,
``data/loghub``) and four analyses: the most frequent kinds of error, the number of distinct IP
addresses, percentiles of durations (only OpenStack's request times, Proxifier's connection
lifetimes and how long Hadoop's client failed to renew its lease carry any), and the most
frequent words. The model reads the raw log; every expected figure
comes from the structured CSV that Loghub ships beside it (parsed fields and hand-labelled event
templates), never from a regex over the raw text such as a model would write.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rlmx.bench.datafiles import data_dir, need
from rlmx.context.analytics import STOP_WORDS
from rlmx.demos.answers import first_integer, items, numbers, words
from rlmx.demos.base import Check, DemoQuestion, Level, Prepared
from rlmx.demos.scoped import ScopedQuestion

Row = dict[str, str]
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_WORD = re.compile(r"\b[a-z]{3,}\b")
# The parser's own columns: the rest of a row is the raw line, split into fields.
_NOT_LOGGED = frozenset({"LineId", "EventId", "EventTemplate"})
# Words of the question's own vocabulary that an answer uses around the items it lists.
_ANSWER_TEXT = (
    "top most frequent words word count counts kind kinds lines line times occurrences "
    "message messages rank ranked"
)
_ANSWER_WORDS = frozenset(_ANSWER_TEXT.split())
PERCENTILES = (50, 95, 99)
WORDS_NEEDED = 6  # of the 10 most frequent: stop-word lists differ, so overlap, not equality
LEVELS: tuple[Level, ...] = ("code", "dsl")
NEAR_TIE = 0.95  # a kind within 5 % of the top count is as good an answer as the top one


@dataclass(frozen=True, slots=True)
class System:
    """One Loghub sample and what its questions ask; ``is_error`` defines its errors from the
    parsed row, ``duration`` reads a duration in seconds from a message (None: it has none)."""

    name: str
    is_error: Callable[[Row], bool]
    errors: str
    duration: Callable[[str], float | None] | None = None
    durations: str = ""

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def log(self) -> str:
        return f"{self.name}/{self.name}_2k.log"


def _openstack_time(content: str) -> float | None:
    match = re.search(r"\btime: (\d+(?:\.\d+)?)", content)
    return float(match.group(1)) if match else None


def _proxifier_lifetime(content: str) -> float | None:
    match = re.search(r"\blifetime (<1 sec|\d+(?::\d+)+)", content)
    if match is None:
        return None
    if match.group(1).startswith("<"):
        return 0.0
    seconds = 0
    for part in match.group(1).split(":"):
        seconds = seconds * 60 + int(part)
    return float(seconds)


def _hadoop_lease_wait(content: str) -> float | None:
    match = re.search(r"\bFailed to renew lease\b.* for (\d+) seconds\b", content)
    return float(match.group(1)) if match else None


_FAILURE = re.compile(r"fail|invalid|error|break-in", re.I)

SYSTEMS = (
    System(
        "Apache",
        lambda row: row["Level"] == "error",
        "Which messages are most frequent among the [error] lines of this Apache log? "
        "Rank the top 3 messages with their counts.",
    ),
    System(
        "OpenSSH",
        lambda row: _FAILURE.search(row["EventTemplate"]) is not None,
        "Which failure messages are most common in this OpenSSH log? Count the messages of "
        "the lines with 'fail' or 'invalid' in them (any case), and give the top 3 with "
        "their counts.",
    ),
    System(
        "OpenStack",
        lambda row: row["Level"] in ("WARNING", "ERROR"),
        "Grep the WARNING and ERROR lines of this OpenStack log: which message do they repeat "
        "most? Give the top 3 messages with their counts.",
        duration=_openstack_time,
        durations="Request lines of this OpenStack log end with 'time: <seconds>', a decimal "
        "number such as 0.2477829. What are the p50, p95 and p99 of these request times?",
    ),
    System(
        "Proxifier",
        lambda row: " error : " in row["Content"],
        "Which error messages are most common in this Proxifier log? Count the text after "
        "'error : ' on each line and give the top 3 with their counts.",
        duration=_proxifier_lifetime,
        durations="Each 'close' line of this Proxifier log ends with 'lifetime' and a duration: "
        "mm:ss, hh:mm:ss, or '<1 sec' (count it as 0). Convert them to seconds: what are the "
        "p50, p95 and p99 of the lifetimes?",
    ),
    System(
        "Hadoop",
        lambda row: row["Level"] in ("WARN", "ERROR"),
        "Which messages are most frequent among the WARN and ERROR lines of this Hadoop log? "
        "Give the top 3 messages with their counts.",
        duration=_hadoop_lease_wait,
        durations="When this Hadoop log's client fails to renew its lease, the line says for "
        "how long: 'for <N> seconds'. What are the p50, p95 and p99 of these durations?",
    ),
)
_BY_KEY = {s.key: s for s in SYSTEMS}


@lru_cache(maxsize=16)
def read_rows(path: Path) -> tuple[Row, ...]:
    """The rows of a Loghub ``*_structured.csv`` file."""
    with need(path).open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle))


def _logged(row: Row) -> str:
    return " ".join(v for k, v in row.items() if k not in _NOT_LOGGED)


def error_ranking(rows: Iterable[Row], is_error: Callable[[Row], bool]) -> list[tuple[str, int]]:
    """The error kinds (Loghub's event templates) by number of lines, most frequent first."""
    counts = Counter(row["EventTemplate"] for row in rows if is_error(row))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def distinct_ips(rows: Iterable[Row]) -> int:
    return len({ip for row in rows for ip in _IPV4.findall(_logged(row))})


def durations(rows: Iterable[Row], read: Callable[[str], float | None]) -> list[float]:
    return sorted(d for row in rows if (d := read(row["Content"])) is not None)


def top_words(rows: Iterable[Row], n: int = 10) -> list[tuple[str, int]]:
    """The ``n`` most frequent words (lowercase letters alone, 3 or more) but stop words."""
    counts = Counter(
        w for row in rows for w in _WORD.findall(_logged(row).lower()) if w not in STOP_WORDS
    )
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def percentile_range(values: list[float], p: int) -> tuple[float, float]:
    """The ``p``-th percentile of sorted ``values`` as the common methods give it (nearest
    rank, the lower and higher rank, linear, and :mod:`statistics`' two), lowest to highest."""
    position = (len(values) - 1) * p / 100
    found = [
        nearest_rank(values, p),
        values[math.floor(position)],
        values[math.ceil(position)],
        *(statistics.quantiles(values, n=100, method=m)[p - 1] for m in ("exclusive", "inclusive")),
    ]
    return min(found), max(found)


def nearest_rank(values: list[float], p: int) -> float:
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def _questions(root: Path) -> tuple[ScopedQuestion, ...]:
    """Every question at the code level, then every one again at the command level (its name
    ending in ``-dsl``): the same words, so the two levels can be compared."""
    asked: list[tuple[str, str]] = []
    for system in SYSTEMS:
        name = system.name
        asked.append((f"{system.key}-errors", system.errors))
        asked.append(
            (
                f"{system.key}-ips",
                f"How many distinct IPv4 addresses (four numbers joined by dots) appear anywhere "
                f"in this {name} log?",
            )
        )
        if system.duration is not None:
            asked.append((f"{system.key}-latency", system.durations))
        asked.append(
            (
                f"{system.key}-words",
                f"What are the 10 most frequent words in this {name} log? Count the lowercase "
                "words of 3 or more letters, leaving out English stop words.",
            )
        )
    return tuple(
        ScopedQuestion(
            key if level == "code" else f"{key}-{level}",
            query,
            level,
            context=root / _system_of(key).log,
        )
        for level in LEVELS
        for key, query in asked
    )


def _parts(name: str) -> tuple[str, str]:
    """A question's system and analysis, from its name (``openssh-ips-dsl``)."""
    system, analysis = name.split("-")[:2]
    return system, analysis


def _system_of(name: str) -> System:
    return _BY_KEY[_parts(name)[0]]


def _rows_of(root: Path, system: System) -> tuple[Row, ...]:
    return read_rows(root / f"{system.log}_structured.csv")


def expected_for(root: Path, question: DemoQuestion) -> object:
    """What ``question`` should find, computed from the structured CSV under ``root``."""
    system = _system_of(question.name)
    rows = _rows_of(root, system)
    analysis = _parts(question.name)[1]
    if analysis == "errors":
        return [list(kv) for kv in error_ranking(rows, system.is_error)]
    if analysis == "ips":
        return distinct_ips(rows)
    if analysis == "latency" and system.duration is not None:
        values = durations(rows, system.duration)
        return {f"p{p}": nearest_rank(values, p) for p in PERCENTILES}
    return [list(kv) for kv in top_words(rows)]


def check_errors(ranking: list[tuple[str, int]], answer: str) -> tuple[bool, str]:
    """Judged by the answer's first kind and its count: the top kind, or one within 5 % of its
    count, given with its count. A coarser kind is right with its own count: "Failed password:
    518" sums the kinds whose words it shares (383 for root and users, 135 for invalid ones)."""
    top, top_count = ranking[0]
    ignore = STOP_WORDS | _ANSWER_WORDS
    kinds = [(set(words(t, ignore=ignore)), t, c) for t, c in ranking]
    parts = [(part, set(words(part, ignore=ignore))) for part in items(answer)]
    named = [(i, _kind_named(said, kinds)) for i, (_, said) in enumerate(parts)]
    first = next(((i, kind) for i, kind in named if kind is not None), None)
    if first is None:
        return (
            False,
            f"top kind {top!r} ({top_count}); the answer names none of the {len(ranking)} kinds",
        )
    start, (template, count) = first
    # The kind's count may follow in the next items (a template with ";" in it is cut there),
    # up to the next kind the answer names.
    end = next((i for i, kind in named[start + 1 :] if kind and kind[0] != template), len(parts))
    coarser = sum(c for k, _, c in kinds if parts[start][1] <= k)
    low, high = NEAR_TIE * count, max(count, coarser) / NEAR_TIE
    given = [n for part, _ in parts[start:end] for n in numbers(part)]
    counted = any(low <= n <= high for n in given)
    ranked = max(count, coarser) >= NEAR_TIE * top_count
    shown = f"top kind {top!r} ({top_count}); the answer's first: {template!r} ({count})"
    return ranked and counted, shown if counted else f"{shown}, without its count"


def _kind_named(said: set[str], kinds: list[tuple[set[str], str, int]]) -> tuple[str, int] | None:
    """The kind whose words an answer's item shares most, if it shares enough of them."""
    scored = [
        (len(said & k) / min(len(said), len(k)), c, t, len(said & k), len(k))
        for k, t, c in kinds
        if said and k
    ]
    if not scored:
        return None
    score, count, template, shared, size = max(scored)
    return (template, count) if score >= 0.5 and shared >= min(2, size) else None


def check_percentiles(values: list[float], answer: str) -> tuple[bool, str]:
    """Each of p50, p95, p99 within the spread of the usual methods, plus 1 %."""
    found = numbers(answer)[: len(PERCENTILES)]
    ranges = [percentile_range(values, p) for p in PERCENTILES]
    shown = ", ".join(
        f"p{p} {lo:g}-{hi:g}" for p, (lo, hi) in zip(PERCENTILES, ranges, strict=True)
    )
    if len(found) < len(PERCENTILES):
        return False, f"expected {shown}; the answer has {len(found)} number(s)"
    wrong = [
        f"p{p} {v:g}"
        for p, v, (lo, hi) in zip(PERCENTILES, found, ranges, strict=True)
        if not lo * 0.99 <= v <= hi * 1.01
    ]
    return not wrong, f"expected {shown}; " + (
        f"off: {', '.join(wrong)}" if wrong else "all within"
    )


def check_words(gold: list[tuple[str, int]], answer: str) -> tuple[bool, str, float]:
    said = words(answer, ignore=_ANSWER_WORDS)[:15]
    top = [w for w, _ in gold]
    shared = [w for w in top if w in said]
    detail = f"{len(shared)} of the top {len(top)} words named ({', '.join(shared) or 'none'})"
    return len(shared) >= WORDS_NEEDED, detail, len(shared) / len(top)


class LogsDemo:
    """The four analyses over five Loghub systems; see the module docstring."""

    name = "logs"
    summary = "errors, distinct IPs, duration percentiles, word counts over 5 real Loghub logs"
    source = (
        "Loghub 2k samples (logpai/loghub, Zhu et al., ISSRE 2023): Apache, OpenSSH, OpenStack, "
        "Proxifier, Hadoop; free for research or academic work, see data/loghub/LICENSE.loghub.txt"
    )
    levels = ("code", "dsl")

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        # Real logs: the seed changes nothing.
        source = data_dir() / "loghub"
        for name in ("SOURCE.txt", "LICENSE.loghub.txt", "CITATION.txt"):
            shutil.copyfile(source / name, workdir / name)
        for system in SYSTEMS:
            (workdir / system.name).mkdir(exist_ok=True)
            for suffix in ("", "_structured.csv"):
                shutil.copyfile(source / f"{system.log}{suffix}", workdir / f"{system.log}{suffix}")
            shutil.copyfile(source / system.name / "README.md", workdir / system.name / "README.md")
        questions = _questions(workdir)
        expected = {q.name: expected_for(workdir, q) for q in questions}
        note = f"{len(SYSTEMS)} Loghub logs of 2,000 lines in {workdir}"
        return Prepared(context=workdir, questions=questions, expected=expected, notes=(note,))

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        if not answer or not answer.strip():
            return Check(question.name, False, "no answer", 0.0)
        root = Path(str(prepared.context))
        system = _system_of(question.name)
        rows = _rows_of(root, system)
        analysis = _parts(question.name)[1]
        if analysis == "errors":
            passed, detail = check_errors(error_ranking(rows, system.is_error), answer)
        elif analysis == "ips":
            gold, got = distinct_ips(rows), first_integer(answer)
            passed, detail = got == gold, f"expected {gold}, got {got}"
        elif analysis == "latency" and system.duration is not None:
            passed, detail = check_percentiles(durations(rows, system.duration), answer)
        else:
            passed, detail, score = check_words(top_words(rows), answer)
            return Check(question.name, passed, detail, score)
        return Check(question.name, passed, detail, 1.0 if passed else 0.0)


DEMO = LogsDemo()
