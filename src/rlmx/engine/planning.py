"""A plan for a question that needs meaning judged item by item (the ``classify`` kind).

A 1.5B root model copies a worked example nearly verbatim: given the example of reviews
labelled delivery / price / quality, it called ``llm_map`` on a real list of questions with
those very labels and that very filter, twice, and found no items. It copies well; it adapts
badly. So before the first turn one root call drafts the three things the map needs for *this*
question and *this* data, from the question and a sample of lines (the head and the middle):
what marks an item line, what to ask about each item, and the possible answers. The engine
checks the draft against the context (a marker that no line holds is dropped) and the first
turn shows it as ready code, which the model then runs or adapts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rlmx.providers.base import CallOptions
from rlmx.types import Message

SAMPLE_LINES = 3
# A header that names the categories can be long; the sample must show it whole.
SAMPLE_CHARS = 600
MAX_LABELS = 12
HEADER_CHARS = 500
MAX_HEADER_LINES = 5
FEW_LABELS = 3
_OTHERISH = frozenset({"other", "others", "something else", "else", "none", "neither", "unknown"})

_SYSTEM = """\
You plan how to answer a question about a long list of items by asking a helper model about \
each item. From the question and a sample of the data, reply with JSON:
"marker": a short text that every item line contains and header lines do not ("" if every \
line is an item),
"instruction": a short question about ONE item that makes sense for that item alone (like \
"Which tag fits this item?"), whose answer is one of the labels; never the question you \
were asked,
"labels": ALL the possible answers for an item: every category the data names, not only the \
ones the question mentions (add "other" when they may not cover every item)."""

_SHOT_QUESTION = "How many of the support tickets are about billing?"
_SHOT_SAMPLE = """\
Support tickets, one a line; each is about billing, login, a bug or something else.
T-1 | 2024-03-01 | I was charged twice this month
--- middle of the data ---
T-207 | 2024-05-19 | The export button does nothing
T-208 | 2024-05-19 | Cannot reset my password"""
_SHOT_PLAN = {
    "marker": " | ",
    "instruction": "What is this item about?",
    "labels": ["billing", "login", "bug", "other"],
}

# A comparison names two categories; the plan must still ask for all of them, or every item
# would be forced into one of the two.
_SHOT2_QUESTION = "Is tag 'praise' more frequent than tag 'complaint' in these e-mails?"
_SHOT2_SAMPLE = """\
Customer e-mails below. Each has one tag: 'question', 'praise', 'complaint', 'order', 'spam'.
2023-01-04 ## anna@example.org ## Where is my parcel?
--- middle of the data ---
2023-06-11 ## li@example.org ## Thank you, the chair is perfect
2023-06-12 ## bo@example.org ## WIN A FREE CRUISE NOW"""
_SHOT2_PLAN = {
    "marker": " ## ",
    "instruction": "Which tag fits this item?",
    "labels": ["question", "praise", "complaint", "order", "spam"],
}

PLAN_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "marker": {"type": "string", "maxLength": 40},
        "instruction": {"type": "string", "maxLength": 300},
        "labels": {
            "type": "array",
            "items": {"type": "string", "maxLength": 80},
            "minItems": 2,
            "maxItems": MAX_LABELS,
        },
    },
    "required": ["marker", "instruction", "labels"],
}
PLAN_OPTIONS: CallOptions = {"max_tokens": 400, "json_schema": PLAN_SCHEMA}


@dataclass(frozen=True, slots=True)
class MapPlan:
    marker: str
    instruction: str
    labels: tuple[str, ...]
    items: int  # how many lines the marker selects

    def code(self) -> str:
        """The plan as a cell the model can run as it is."""
        select = f" if {self.marker!r} in line" if self.marker else " if line.strip()"
        return (
            "from collections import Counter\n"
            f"items = [line for line in context.splitlines(){select}]\n"
            f"kinds = llm_map({self.instruction!r}, items, labels={list(self.labels)!r})\n"
            "print(len(items), Counter(kinds))"
        )


def sample_lines(lines: Sequence[str]) -> str:
    """The head and the middle of the data: headers come first, items fill the middle."""
    kept = [line for line in lines if line.strip()]
    middle = len(kept) // 2
    head = [line[:SAMPLE_CHARS] for line in kept[:SAMPLE_LINES]]
    body = [line[:SAMPLE_CHARS] for line in kept[middle : middle + SAMPLE_LINES]]
    return "\n".join([*head, "--- middle of the data ---", *body])


def plan_messages(query: str, sample: str) -> list[Message]:
    return [
        Message("system", _SYSTEM),
        Message("user", f"Question: {_SHOT_QUESTION}\nSample:\n{_SHOT_SAMPLE}"),
        Message("assistant", json.dumps(_SHOT_PLAN)),
        Message("user", f"Question: {_SHOT2_QUESTION}\nSample:\n{_SHOT2_SAMPLE}"),
        Message("assistant", json.dumps(_SHOT2_PLAN)),
        Message("user", f"Question: {query}\nSample:\n{sample}"),
    ]


def _restates(instruction: str, query: str) -> bool:
    """Whether a drafted instruction is the user's question again rather than one about an
    item: the 1.5B model often copies the question."""
    words = set(re.findall(r"[a-z]{4,}", instruction.lower()))
    asked = set(re.findall(r"[a-z]{4,}", query.lower()))
    return bool(words) and len(words & asked) / len(words) > 0.6


# How many non-empty lines an item marker may leave out (headers, footers): at most half, and
# no more than a tenth or 5.
UNMARKED_SHARE = 0.1
UNMARKED_LINES = 5


def read_plan(text: str, lines: Sequence[str], query: str = "") -> MapPlan | None:
    """The drafted plan, checked against the data; None when it is unusable."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        data = json.loads(match.group(0) if match else text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    instruction = data.get("instruction")
    raw_labels = data.get("labels")
    if not isinstance(instruction, str) or not instruction.strip():
        return None
    if not isinstance(raw_labels, list):
        return None
    labels = tuple(dict.fromkeys(str(label).strip() for label in raw_labels if str(label).strip()))
    if not 2 <= len(labels) <= MAX_LABELS:
        return None
    if all(len(label) <= 2 for label in labels):
        # "A", "B", "C", "D": the options of a multiple-choice question, not kinds of item;
        # a map under them labelled 3,000 log lines "A" until the run's clock ran out.
        return None
    if _restates(instruction, query):
        instruction = "Which of these fits this item best: " + ", ".join(labels) + "?"
    if len(labels) <= FEW_LABELS and not any(label.lower() in _OTHERISH for label in labels):
        # The two kinds a question compares rarely cover every item; without a way out the
        # sub-model must file each item under one of them.
        labels = (*labels, "other")
    marker = data.get("marker") if isinstance(data.get("marker"), str) else ""
    assert isinstance(marker, str)
    if not marker.strip():
        marker = ""  # a space is in every line: it marks nothing
    filled = sum(1 for line in lines if line.strip())
    selected = sum(1 for line in lines if marker in line) if marker else 0
    left_out = filled - selected
    if marker and (
        selected < filled / 2 or left_out > max(filled * UNMARKED_SHARE, UNMARKED_LINES)
    ):
        # Items are nearly all the lines; headers are few. A marker that leaves out more is
        # a feature of some items (" ?" kept 348 of 600 questions), and the map would skip
        # the rest without a word.
        marker = ""
    items = selected if marker else filled
    header = _header(lines, marker) if marker else ""
    instruction = f"{header}\n{instruction.strip()}" if header else instruction.strip()
    return MapPlan(marker, instruction, labels, items)


def _header(lines: Sequence[str], marker: str) -> str:
    """The data's own description of its items (the lines before the first item), which
    tells the sub-model what the labels mean: "an answer that can be described as one of
    6 categories" is not the same question as "which category is this line"."""
    head: list[str] = []
    for line in lines:
        if marker in line:
            break
        if line.strip():
            head.append(line.strip())
        if len(head) > MAX_HEADER_LINES:
            return ""  # not a header: items without the marker
    return " ".join(head)[:HEADER_CHARS]
