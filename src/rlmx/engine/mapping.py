"""One ``llm_map`` run: the primers, the labels' content-free prior, then every item.

What each step is for, and the measurements behind it, are in :mod:`rlmx.engine.semantic_map`.
Every call goes through ``call``, which reserves a sub-call of the tree's budget and records
it; this module only decides what to ask and how to read the answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from rlmx.engine.pool import bounded_map
from rlmx.engine.semantic_map import (
    CONTENT_FREE,
    PRIMER_TOKENS,
    STYLE_SAMPLES,
    Distribution,
    MapSpec,
    calibrated_label,
    label_probabilities,
    mean_distribution,
    primer_messages,
    read_primer,
)
from rlmx.errors import RlmxError
from rlmx.providers.base import CallOptions
from rlmx.types import Completion, Message

log = logging.getLogger(__name__)

# A sub-call: (what the trace shows, the messages, the options) -> the reply.
MapCall = Callable[[str, list[Message], CallOptions], Awaitable[Completion]]

# Off only to measure what calibration adds (benchmarks/semantic_map.py).
CALIBRATE = True
# Fewer items than this say too little to judge whether calibration collapsed them.
MIN_ITEMS_TO_JUDGE_CALIBRATION = 5


def extra_calls(spec: MapSpec, *, primed: bool) -> int:
    """The most sub-calls a map makes besides one per item: primers are written only when
    the content-free calls show no logprobs, but the budget is checked before either."""
    labels = len(spec.labels or ())
    return (labels if primed else 0) + (len(CONTENT_FREE) if labels and CALIBRATE else 0)


async def run_map(
    call: MapCall, spec: MapSpec, texts: list[str], *, width: int, primed: bool
) -> list[str | None]:
    """The answer of every item, in order; None for an item whose answer could not be read.

    Primers only where the backend reports no logprobs: calibrated, the primed and unprimed
    maps were about as right on TREC questions, and on an OOLONG window the primers written
    from its header ("Country: United Kingdom" for an abbreviation) pulled 109 of 188
    questions to one label."""
    prior = await _prior(call, spec) if spec.labels and CALIBRATE else None
    if primed and prior is None:
        spec = await _primed(call, spec, texts)
    scored: dict[int, Distribution] = {}  # the items read from their first token

    async def one(index: int) -> str | None:
        text = texts[index]
        if prior is not None:
            try:
                reply = await call(_shown(spec, text), spec.messages(text), spec.scoring_options())
            except (RlmxError, ValueError) as exc:
                log.debug("llm_map item %d failed: %s", index, exc)
            else:
                probabilities = label_probabilities(reply.top_logprobs, spec.labels or ())
                label = calibrated_label(probabilities, prior)
                if label is not None:
                    scored[index] = probabilities
                    return label
        # No usable first token (labels that begin alike) or no logprobs: the whole answer.
        for attempt in range(2):
            try:
                reply = await call(
                    _shown(spec, text), spec.messages(text), spec.options(attempt, index)
                )
            except (RlmxError, ValueError) as exc:
                log.debug("llm_map item %d failed: %s", index, exc)
                continue
            answer = spec.read(reply.text)
            if answer is not None:
                return answer
        return None

    return _uncollapsed(await bounded_map(one, range(len(texts)), width), scored)


def _uncollapsed(answers: list[str | None], scored: dict[int, Distribution]) -> list[str | None]:
    """The answers, unless calibration put every scored item under one label while the
    sub-model's own first choices told them apart: then it overcorrected (on a yes/no
    question the model leans hard to "no" for an item that says nothing, and divided by
    that lean every chapter of a case came out "yes"), and the model's choices stand."""
    if len(scored) < MIN_ITEMS_TO_JUDGE_CALIBRATION:
        return answers
    own = {index: max(p, key=lambda label: p[label]) for index, p in scored.items()}
    if len({answers[index] for index in scored}) == 1 and len(set(own.values())) > 1:
        log.debug("llm_map: calibration put all %d items under one label; not used", len(own))
        return [own.get(index, answer) for index, answer in enumerate(answers)]
    return answers


async def _prior(call: MapCall, spec: MapSpec) -> Distribution | None:
    """The labels' probabilities for items that say nothing; None when the backend reports no
    first-token alternatives (the map then reads whole answers)."""
    distributions = []
    for item in CONTENT_FREE:  # in turn: the first call puts the shared prefix in the cache
        try:
            reply = await call(_shown(spec, item), spec.messages(item), spec.scoring_options())
        except RlmxError as exc:
            log.debug("llm_map prior call failed: %s", exc)
            return None
        distributions.append(label_probabilities(reply.top_logprobs, spec.labels or ()))
    prior = mean_distribution(distributions)
    return prior or None


async def _primed(call: MapCall, spec: MapSpec, texts: list[str]) -> MapSpec:
    """The spec with one example per label, written by the sub-model; a label it could not
    write one for goes without."""
    samples = texts[:: max(1, len(texts) // STYLE_SAMPLES)][:STYLE_SAMPLES]

    async def one(label: str) -> tuple[str, str] | None:
        messages = primer_messages(spec.instruction, label, samples)
        try:
            reply = await call(messages[-1].content, messages, {"max_tokens": PRIMER_TOKENS})
        except RlmxError as exc:
            log.debug("llm_map primer for %r failed: %s", label, exc)
            return None
        item = read_primer(reply.text, label, samples)
        return None if item is None else (item, label)

    pairs = await asyncio.gather(*(one(label) for label in spec.labels or ()))
    return dataclasses.replace(spec, examples=tuple(p for p in pairs if p is not None))


def _shown(spec: MapSpec, item: str) -> str:
    return f"{spec.instruction}\n\n{item}"
