"""The mystery demo: the generator is seeded, the puzzle is sound and needs both clues, the
case file hides the answer from word counts and keyword searches, the check accepts only the
culprit, and a root that hands each suspect's chapter to a sub-model solves it end to end."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from rlmx import RLM
from rlmx.config import Limits, Settings
from rlmx.demos.base import DemoQuestion, Prepared
from rlmx.demos.mystery import DEMO, QUESTION, judge
from rlmx.demos.mystery_text import CHAPTER_MARK, mentions, render_case
from rlmx.demos.mystery_world import CLUE_TYPES, World, build_world, candidates, clock
from rlmx.demos.registry import load_demo
from rlmx.providers import FunctionModel
from rlmx.providers.base import CallOptions
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.types import Message

from .conftest import repl, scripted

SEEDS = range(50)


def _case(seed: int) -> tuple[World, str]:
    world = build_world(seed)
    return world, render_case(world)


def _chapters(text: str) -> dict[str, str]:
    """Each suspect's chapter by surname."""
    parts = text.split(CHAPTER_MARK)[1:]
    return {part.split(" ==")[0].split()[-1]: part for part in parts}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def could_have_done_it(facts: str, chapter: str) -> bool:
    """A careful reader's verdict from the facts and one chapter, nothing else: a key to the
    room, and no run of witnessed time that covers the whole window."""
    room = re.search(r"found dead in the (.+?) of ", facts)
    window = re.search(r"time of death between (\d\d:\d\d) and (\d\d:\d\d)", facts)
    assert room
    assert window
    start, end = _minutes(window.group(1)), _minutes(window.group(2))
    keys = re.search(r"held the keys? of (.+?) that evening", chapter)
    assert keys
    if f"the {room.group(1)}" not in re.split(r", | and ", keys.group(1)):
        return False
    seen = [
        (_minutes(a), _minutes(b))
        for a, b in re.findall(r"from (\d\d:\d\d) until (\d\d:\d\d) and says that", chapter)
    ]
    covered = start
    for a, b in sorted(seen):
        if a <= covered < b:
            covered = b
    return covered < end


# The generator -----------------------------------------------------------------------------


def test_the_same_seed_writes_the_same_case_and_another_seed_another() -> None:
    assert _case(7)[1] == _case(7)[1]
    assert build_world(7) == build_world(7)
    assert _case(7)[1] != _case(8)[1]


def test_the_case_is_longer_than_the_root_models_window() -> None:
    # 32,768 tokens at about four characters a token.
    assert all(len(_case(seed)[1]) > 150_000 for seed in range(10))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_clues_together_name_the_culprit_and_each_alone_leaves_several(seed: int) -> None:
    world = build_world(seed)
    assert candidates(world) == (world.culprit,)
    for clue in CLUE_TYPES:
        assert len(candidates(world, (clue,))) >= 2, clue
    # Without one clue type only the other is left: it alone must not decide either.
    assert len(candidates(world, ())) == 7


@pytest.mark.parametrize("seed", SEEDS)
def test_no_servant_is_in_two_places_and_nobody_alone_is_where_a_servant_was(seed: int) -> None:
    world = build_world(seed)
    posts = dict(world.posts)
    for suspect in world.suspects:
        for seg in suspect.segments:
            if seg.witness:
                assert seg.place == posts[seg.witness]
            else:
                assert seg.place not in posts.values()


@pytest.mark.parametrize("seed", range(0, 50, 5))
def test_every_suspect_is_named_equally_often(seed: int) -> None:
    world, text = _case(seed)
    counts = mentions(text, [s.person.surname for s in world.suspects])
    assert max(counts.values()) - min(counts.values()) <= 2, counts


@pytest.mark.parametrize("seed", range(0, 50, 5))
def test_no_sentence_states_guilt(seed: int) -> None:
    world, text = _case(seed)
    guilt = re.compile(r"\b(killed|murderer|guilty|culprit|did it|confess\w*)\b", re.I)
    for sentence in re.split(r"(?<=[.!?\"])\s+", text):
        if guilt.search(sentence):
            assert not any(s.person.surname in sentence for s in world.suspects), sentence


@pytest.mark.parametrize("seed", range(20))
def test_each_chapter_alone_with_the_facts_judges_its_suspect(seed: int) -> None:
    """The intended decomposition works on the text itself: the facts plus one chapter decide
    each suspect, and the chapter names nobody else."""
    world, text = _case(seed)
    facts = text.split("2. THE PERSONS")[0]
    chapters = _chapters(text)
    verdicts = {name: could_have_done_it(facts, ch) for name, ch in chapters.items()}
    assert [n for n, v in verdicts.items() if v] == [world.culprit]
    for name, chapter in chapters.items():
        others = [s.person.surname for s in world.suspects if s.person.surname != name]
        assert not any(o in chapter for o in others)
        suspect = world.suspect(name)
        for seg in suspect.segments:
            assert f"From {clock(seg.start)} until {clock(seg.end)}" in chapter


def _nearest_name(text: str, world: World, pattern: str, around: int = 400) -> str:
    """The suspect named most often within ``around`` characters of a pattern's matches."""
    counts = dict.fromkeys((s.person.surname for s in world.suspects), 0)
    for m in re.finditer(pattern, text, re.I):
        window = text[max(0, m.start() - around) : m.end() + around]
        for name in counts:
            counts[name] += window.count(name)
    return max(counts, key=lambda n: counts[n])


def test_keyword_searches_do_not_find_the_culprit() -> None:
    """Searches a root might try (the room, the times of death, keys, the victim) pick the
    culprit about as often as chance, not reliably."""
    for pattern in ("room", "death", "key", "victim"):
        hits = 0
        for seed in SEEDS:
            world, text = _case(seed)
            key = {
                "room": re.escape(world.room),
                "death": "|".join(clock(t) for t in world.death),
                "key": rf"key\w* of [^.]*{re.escape(world.room)}",
                "victim": world.victim.surname,
            }[pattern]
            hits += _nearest_name(text, world, key) == world.culprit
        assert hits / len(SEEDS) <= 0.45, (pattern, hits)


# The check ---------------------------------------------------------------------------------


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    return DEMO.prepare(tmp_path, seed=3)


def _ask(prepared: Prepared, answer: str | None) -> bool:
    (question,) = prepared.questions
    return DEMO.check(prepared, question, answer).passed


def test_the_registry_loads_the_demo() -> None:
    assert load_demo("mystery") is DEMO
    assert DEMO.name == "mystery"


def test_prepare_writes_the_case_and_asks_with_nested_runs(prepared: Prepared) -> None:
    world = build_world(3)
    (question,) = prepared.questions
    assert question == DemoQuestion(
        QUESTION,
        f"Who killed {world.victim.short}? Give the name of the culprit.",
        level="code",
        max_depth=2,
        max_iterations=12,
    )
    assert isinstance(prepared.context, Path)
    assert prepared.context.read_text(encoding="utf-8") == render_case(world)
    assert prepared.expected[QUESTION] == world.suspect(world.culprit).person.full


def test_the_check_accepts_the_culprit_and_nothing_else(prepared: Prepared) -> None:
    world = build_world(3)
    culprit = world.suspect(world.culprit).person
    other = next(s.person for s in world.suspects if s.person.surname != culprit.surname)
    assert _ask(prepared, culprit.full)
    assert _ask(prepared, f"It was {culprit.short.lower()}.")
    assert _ask(prepared, f"{culprit.short} killed {world.victim.short}.")
    assert not _ask(prepared, other.full)
    assert not _ask(prepared, f"{culprit.short} or {other.short}")
    assert not _ask(prepared, f"{culprit.first} {other.surname}")
    assert not _ask(prepared, culprit.first)  # a first name alone is not a name to convict
    assert not _ask(prepared, "")
    assert not _ask(prepared, None)


def test_the_check_says_why() -> None:
    assert judge("Dr Fenwick", "Major Hugh Marlowe") == (
        False,
        "expected Major Hugh Marlowe, got 'Dr Fenwick'",
    )
    passed, detail = judge("Marlowe or Fenwick", "Major Hugh Marlowe")
    assert not passed
    assert "also Fenwick" in detail


# The intended path, end to end ------------------------------------------------------------

_ROOT_CODE = """\
facts = context[:context.index("2. THE PERSONS")]
chapters = context.split("== The evidence of ")[1:]
ask = "\\n\\nCould this person have killed him? Answer yes or no."
verdicts = [llm_query(facts + "\\n\\nThe evidence of " + ch + ask) for ch in chapters]
could = [ch.split(" ==")[0] for ch, v in zip(chapters, verdicts) if v.startswith("yes")]
print(len(chapters), could)"""


def _reader(messages: Sequence[Message], options: CallOptions) -> str:
    """A sub-model that reads the facts and one chapter as a careful reader would."""
    prompt = messages[-1].content
    facts, chapter = prompt.rsplit("The evidence of ", 1)
    return "yes" if could_have_done_it(facts, chapter) else "no"


def test_a_root_that_asks_a_sub_model_about_each_suspect_finds_the_culprit(
    prepared: Prepared,
) -> None:
    root = scripted(repl(_ROOT_CODE), repl("FINAL(could[0])"))
    sub = FunctionModel(_reader)
    rlm = RLM(model=root, sub_model=sub, limits=Limits(max_depth=2), sandbox=InProcessRepl)
    (question,) = prepared.questions
    assert isinstance(prepared.context, Path)
    result = rlm.run(question.query, prepared.context)
    assert result.status == "completed"
    assert len(sub.calls) == 7
    assert "7 [" in root.calls[1][-1].content
    assert DEMO.check(prepared, question, result.answer).passed, result.answer


@pytest.mark.slow
@pytest.mark.xfail(
    reason="measured on seeds 0-4: 0 of 5 (the 1.5B root searches 'killed', reads the facts "
    "paragraph and answers the one name in it, the butler; it never reads a chapter or calls a "
    "sub-model); each run under 20 s. Handed one chapter each by a scripted root, the 0.5B "
    "sub-model gave one answer for all seven (llm_map yes/no: all yes; llm_query: all no)",
    strict=False,
)
def test_embedded_models_name_the_culprit(local_settings: Settings, tmp_path: Path) -> None:
    """Acceptance: the right culprit on at least 7 of 10 seeds, each under 10 minutes, on the
    embedded default models (1.5B root, 0.5B sub)."""
    from rlmx.demos.runner import DemoModels, run_demo
    from rlmx.providers.registry import resolve_model
    from rlmx.sandbox.process import sandbox_factory

    right = 0
    for seed in range(10):
        models = DemoModels(
            root=resolve_model("local:qwen2.5-coder-1.5b", settings=local_settings),
            sub=resolve_model("local:qwen2.5-coder-0.5b", settings=local_settings),
            sandbox=sandbox_factory("default"),
            settings=local_settings,
        )
        report = run_demo(DEMO, models, workdir=tmp_path / str(seed), seed=seed)
        (result,) = report.results
        assert result.wall_s < 600, (seed, result.wall_s)
        right += result.check.passed
    assert right >= 7, right
