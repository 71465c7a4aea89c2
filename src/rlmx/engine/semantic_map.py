"""``llm_map``: one instruction applied to many pieces by a sub-model, the answers in order.

How the items reach the model was measured, not assumed (``docs/benchmarks.md``): on the
embedded models, 20 items packed into one prompt came back unparseable or as long runs of one
label, while one item per call, with the instruction and the allowed answers in a system
prompt that every call shares, was right far more often and fast, because llama.cpp serves
the shared prefix from its KV cache. So each item is its own call, and the calls run
concurrently under the tree's semaphore.

With ``labels``, a backend that can constrain decoding (llama.cpp's grammars) can only answer
one of them; any other backend's reply is read leniently (:func:`read_label`). An item whose
answer cannot be read is asked once more with sampling (seeded, so runs stay reproducible);
if that fails too, its answer is ``None``, never a guess.

Labels alone leave a small model to its own idea of each label: zero-shot, the 1.5B model
filed every "Who ...?" question under "entity", never under "human being". One example per
label fixes most of that, and writing an example of a label is easier for a model than judging
one: so when the caller gives labels and no examples, and the backend reports no logprobs
(below), the sub-model first writes one item per label, in the style of a few real items
(:func:`primer_messages`), and those are the shared examples. Measured on TREC questions
(``benchmarks/semantic_map.py``): 60-61 % right zero-shot, 67-69 % with these primers, 71 %
with real labelled examples.

Where the backend reports the first token's log-probabilities (llama.cpp, OpenAI), a labelled
item costs one generated token: each label's probability is read from the first token's
alternatives, before the grammar, and divided by the label's probability for an item that
says nothing ("N/A", an empty item: :data:`CONTENT_FREE`), which is how much the model leans
to that label whatever the item (contextual calibration, Zhao et al. 2021, "Calibrate Before
Use"). The lean is what skews an aggregate: counts are sums over hundreds of items, so a
label the model favours by habit gathers a share that no single item deserves. On TREC
questions it halved the error of the counts (``docs/benchmarks.md``), which is what the
primers were for, so a map that can be calibrated writes none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlmx.providers.base import CallOptions
from rlmx.types import Message

# Tokens an answer may use: a label is a few words; a free answer a short phrase.
LABEL_TOKENS = 24
FREE_TOKENS = 120
PRIMER_TOKENS = 64
# Primers cost a call per label; with many labels the map goes without them.
MAX_PRIMED_LABELS = 12
STYLE_SAMPLES = 3
# The second try of an unreadable item samples instead of decoding greedily.
RETRY_TEMPERATURE = 0.7
MAX_LABELS = 64
MAX_LABEL_CHARS = 200
# Alternatives of the first token to read: enough for every label and its spellings.
TOP_LOGPROBS = 20
# Items that say nothing: the model's answer to them is its lean, item aside.
CONTENT_FREE = ("N/A", "", "[MASK]")


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A validated ``llm_map`` request: what to ask of every item."""

    instruction: str
    labels: tuple[str, ...] | None = None
    examples: tuple[tuple[str, str], ...] = ()

    def messages(self, item: str) -> list[Message]:
        """One item's conversation. Everything before the item is the same for every item,
        so a server with a prompt cache reads it once."""
        system = self.instruction.strip()
        if self.labels:
            system += "\nAnswer with exactly one of: " + "; ".join(self.labels) + "."
        else:
            system += "\nAnswer briefly, in a few words."
        messages = [Message("system", system)]
        for example_item, example_answer in self.examples:
            messages += [Message("user", example_item), Message("assistant", example_answer)]
        messages.append(Message("user", item))
        return messages

    def scoring_options(self) -> CallOptions:
        """One token, with its alternatives: enough to tell the labels apart by their start."""
        return {"max_tokens": 1, "choices": list(self.labels or ()), "top_logprobs": TOP_LOGPROBS}

    def options(self, attempt: int, index: int) -> CallOptions:
        options: CallOptions = {
            "max_tokens": LABEL_TOKENS if self.labels else FREE_TOKENS,
        }
        if self.labels:
            options["choices"] = list(self.labels)
        if attempt:
            options["temperature"] = RETRY_TEMPERATURE
            options["seed"] = index * 7919 + attempt
        return options

    def read(self, text: str) -> str | None:
        if self.labels:
            return read_label(text, self.labels)
        answer = text.strip()
        return answer or None


Distribution = Mapping[str, float]


def label_probabilities(
    top_logprobs: Sequence[tuple[str, float]], labels: Sequence[str]
) -> dict[str, float]:
    """Each label's probability as the reply's first token: the summed probability of the
    alternatives that begin that label and no other (case and spaces aside), normalised over
    the labels. Empty when no alternative names exactly one label."""
    keys = {label: _plain(label) for label in labels}
    mass: dict[str, float] = {}
    for token, logprob in top_logprobs:
        piece = " ".join(token.lower().split())
        if not piece:
            continue
        owners = [label for label, key in keys.items() if key.startswith(piece)]
        if len(owners) == 1:
            mass[owners[0]] = mass.get(owners[0], 0.0) + math.exp(logprob)
    total = sum(mass.values())
    return {label: value / total for label, value in mass.items()} if total > 0 else {}


def mean_distribution(distributions: Sequence[Distribution]) -> dict[str, float]:
    """The average of the distributions that are not empty (each already sums to one)."""
    given = [d for d in distributions if d]
    totals: dict[str, float] = {}
    for distribution in given:
        for label, value in distribution.items():
            totals[label] = totals.get(label, 0.0) + value / len(given)
    return totals


def calibrated_label(probabilities: Distribution, prior: Distribution) -> str | None:
    """The label the item raises most above the model's lean: the largest ratio of its
    probability to its content-free probability, among the labels the item gives any
    probability (a label absent from both would otherwise win on a ratio of nothing)."""
    if not probabilities:
        return None
    # A floor keeps a label the content-free items never named from an infinite ratio.
    floor = 1.0 / (4 * max(len(prior), 1) * 100)
    return max(
        probabilities,
        key=lambda label: math.log(probabilities[label]) - math.log(prior.get(label, 0.0) + floor),
    )


def primer_messages(instruction: str, label: str, samples: Sequence[str]) -> list[Message]:
    """Ask for one made-up item whose answer is ``label``, in the style of ``samples``."""
    shown = "\n".join(sample[:300] for sample in samples)
    return [
        Message(
            "system",
            "You write realistic example items for a labelling task. Reply with the item only, "
            "on one line.",
        ),
        Message(
            "user",
            f"Items look like these:\n{shown}\n\nTask: {instruction.strip()}\n"
            f"Write one new item, in the same style, whose answer is: {label}",
        ),
    ]


def read_primer(text: str, label: str, samples: Sequence[str]) -> str | None:
    """The written item; None when it is no example at all: empty, the label itself, or a
    copy of one of the real items it was shown."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    item = lines[0] if lines else ""
    plain = item.lower().strip(" .'\"")
    if len(plain) < 8 or label.lower() in (plain, plain.split(":", 1)[0].strip()):
        return None
    if any(plain == sample.strip().lower().strip(" .'\"") for sample in samples):
        return None
    return item


def make_spec(instruction: object, labels: object = None, examples: object = None) -> MapSpec:
    """Check what model code passed; a mistake raises TypeError or ValueError saying how to
    call it."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise TypeError("llm_map(instruction, items, labels=None): instruction must be a text")
    label_tuple: tuple[str, ...] | None = None
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, Sequence | set | frozenset):
            raise TypeError('labels must be a list of texts, e.g. ["positive", "negative"]')
        label_tuple = tuple(dict.fromkeys(str(label).strip() for label in labels))
        if len(label_tuple) < 2 or any(not label for label in label_tuple):
            raise ValueError("labels must hold at least two different non-empty texts")
        if len(label_tuple) > MAX_LABELS or max(map(len, label_tuple)) > MAX_LABEL_CHARS:
            raise ValueError(f"at most {MAX_LABELS} labels of at most {MAX_LABEL_CHARS} chars each")
    pairs: list[tuple[str, str]] = []
    given = examples if isinstance(examples, Sequence) else ()
    for example in given:
        if not (isinstance(example, Sequence) and len(example) == 2):
            raise TypeError("examples must be a list of (item, answer) pairs")
        pairs.append((str(example[0]), str(example[1])))
    return MapSpec(instruction, label_tuple, tuple(pairs))


def as_items(items: object) -> list[str]:
    """Model code passes lines, chunks, records or search hits; each becomes its text."""
    if isinstance(items, str):
        raise TypeError("llm_map takes a list of items, not one text: split it first")
    try:
        values = list(items)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError("llm_map takes a list of items (lines, chunks, records)") from None
    texts = [
        value if isinstance(value, str) else str(getattr(value, "text", value)) for value in values
    ]
    if not texts:
        # Always a mistake upstream (a filter that kept nothing); an empty list of answers
        # would be counted as "none of them" without a word.
        raise ValueError("llm_map got no items: print how you split the context and try again")
    return texts


_EDGES = re.compile(r"^[\s\"'`*.:;,()\[\]-]+|[\s\"'`*.:;,()\[\]-]+$")


def _plain(text: str) -> str:
    return " ".join(_EDGES.sub("", text).lower().split())


def read_label(text: str, labels: Sequence[str]) -> str | None:
    """The one label a reply names: exactly, after ``Label:``-style prefixes and quotes; or the
    only label it contains; or the only label that begins with it. None when unclear."""
    plain = _plain(text.split("\n", 1)[0] if text.strip() else text)
    if not plain:
        return None
    by_plain = {_plain(label): label for label in labels}
    if plain in by_plain:
        return by_plain[plain]
    after_colon = _plain(plain.rsplit(":", 1)[-1])
    if after_colon in by_plain:
        return by_plain[after_colon]
    inside = [
        label for key, label in by_plain.items() if re.search(rf"\b{re.escape(key)}\b", plain)
    ]
    if len(inside) == 1:
        return inside[0]
    if len(inside) > 1:  # "human being" and "being": the longest names the answer
        inside.sort(key=len, reverse=True)
        if all(_plain(other) in _plain(inside[0]) for other in inside[1:]):
            return inside[0]
        return None
    starts = [label for key, label in by_plain.items() if key.startswith(plain)]
    return starts[0] if len(starts) == 1 else None
