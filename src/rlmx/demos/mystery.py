"""The ``mystery`` demo: who killed the lord of the manor, from a long generated case file.

The case file (:mod:`rlmx.demos.mystery_text`, about 150,000 characters, beyond the embedded
root's window) holds seven chapters of evidence, one per suspect. No sentence names the
culprit, every suspect's surname occurs equally often, and each clue alone (an alibi that
covers the time of death; a key to the locked room) leaves several suspects: the answer needs
each chapter read against the facts of the crime and the judgements combined, the work a
root hands to sub-models (``llm_query``, ``llm_map``) or nested runs (``rlm_query``). The
expected culprit is computed by :func:`rlmx.demos.mystery_world.candidates` from the
generator's facts, and the check accepts an answer that names that suspect and no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rlmx.demos.base import Check, DemoQuestion, Prepared
from rlmx.demos.mystery_text import render_case
from rlmx.demos.mystery_world import FIRST_NAMES, SURNAMES, World, build_world, candidates

QUESTION = "who-killed"
CASE_FILE = "case.txt"


def _named(answer: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", answer, re.IGNORECASE) is not None


def judge(answer: str | None, culprit: str) -> tuple[bool, str]:
    """Whether ``answer`` names ``culprit`` (title, first name, surname: the surname must be
    there) and no other suspect, by surname or first name; why, in one line."""
    if not answer or not answer.strip():
        return False, f"expected {culprit}, got no answer"
    first, surname = culprit.split()[-2:]
    others = [w for w in (*SURNAMES, *FIRST_NAMES) if w not in (first, surname)]
    named_others = [w for w in others if _named(answer, w)]
    shown = answer.strip().replace("\n", " ")[:120]
    if not _named(answer, surname):
        return False, f"expected {culprit}, got {shown!r}"
    if named_others:
        return False, f"names {culprit} but also {', '.join(named_others)}: {shown!r}"
    return True, f"{culprit}, as expected"


@dataclass(frozen=True, slots=True)
class MysteryDemo:
    name: str = "mystery"
    summary: str = (
        "a generated country-house murder (~150K chars, seven suspects): who did it, "
        "from alibis and keys judged chapter by chapter"
    )
    source: str = (
        "generated from the seed by rlmx.demos.mystery_world (facts) and mystery_text "
        "(prose); no outside data, no licence needed"
    )

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        world = build_world(seed)
        culprit = _solve(world)
        path = workdir / CASE_FILE
        path.write_text(render_case(world), encoding="utf-8")
        query = f"Who killed {world.victim.short}? Give the name of the culprit."
        question = DemoQuestion(QUESTION, query, level="code", max_depth=2, max_iterations=12)
        notes = (
            f"{path.stat().st_size:,} bytes; seven suspects; {world.victim.short} found dead in "
            f"the {world.room}",
        )
        return Prepared(path, (question,), {QUESTION: culprit}, notes)

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        passed, detail = judge(answer, str(prepared.expected[question.name]))
        return Check(question.name, passed, detail, 1.0 if passed else 0.0)


def _solve(world: World) -> str:
    """The culprit's full name, reasoned from the facts (and held to the generator's pick)."""
    found = candidates(world)
    if found != (world.culprit,):
        raise RuntimeError(f"seed {world.seed}: the clues leave {found}, not {world.culprit}")
    return world.suspect(world.culprit).person.full


DEMO = MysteryDemo()
