"""The case file of a generated murder: the world's facts written as an inspector's notes.

Five parts: the facts of the crime, the persons under suspicion, the house, the day before,
and one chapter of evidence per person (their statement, what the servants saw, their keys,
other matters). Each chapter holds everything about its person's whereabouts and keys, so a
reader given the facts and one chapter can judge that person; no sentence anywhere states
guilt. The day before is written last, to make every suspect's surname occur equally often.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from rlmx.demos import mystery_prose as prose
from rlmx.demos.mystery_world import LOCKED_ROOMS, POSTS, Segment, Suspect, World, clock

CHAPTER_MARK = "== The evidence of "
_INDOORS = (
    *LOCKED_ROOMS, "drawing room", "billiard room", "morning room", "conservatory", "card room",
    "long gallery", "smoking room", "chapel", "still room", "servants' hall", "dining room",
    "great hall", "butler's pantry", "nursery", "state bedroom", "gallery landing",
)  # fmt: skip
_HOUSE_ROOMS = 18  # rooms described in part 3, the crime's room among them
_DAY_MENTIONS = 280  # mentions of each suspect added by the day before, at least


def _facts(world: World) -> str:
    v, room = world.victim, world.room
    butler, _ = world.servants[0]
    start, end = clock(world.death[0]), clock(world.death[1])
    return (
        f"{v.full} was found dead in the {room} of {v.surname} Court at {clock(world.found)} "
        f"by {butler}, the butler. He had been struck down from behind. The doctor puts the "
        f"time of death between {start} and {end}, and is sure of it to within a minute or "
        f"two either way.\n\n"
        f"The {room} has one door, and it opens only with a key: {v.short} went in at "
        f"{clock(world.death[0] - 40)}, {butler} locked the door after him at his wish, and he "
        f"was to be disturbed by nobody. The windows were latched on the inside and unbroken, "
        f"and his own key was in his pocket. So whoever killed him came into the {room} with "
        f"a key between {start} and {end}. Every key held that evening is written in the key "
        f"book in the butler's pantry; each person's keys are given in their chapter below.\n\n"
        f"The servants are cleared: none of them held a key to the {room}, and {butler}'s own "
        "key never left his chain."
    )


def _persons(world: World, rng: random.Random) -> str:
    lines = [
        "Seven persons were in the house that evening and could have done it. They are:",
        *(f"- {s.person.full}, {s.person.role}." for s in world.suspects),
        "",
    ]
    for s in world.suspects:
        lines.append(
            f"{s.person.short} arrived at {world.victim.surname} Court three days before the "
            f"murder. {prose.bio(rng, s.person.short)}"
        )
    return "\n".join(lines)


def _house(world: World, rng: random.Random) -> str:
    rooms = [world.room, *rng.sample([r for r in _INDOORS if r != world.room], _HOUSE_ROOMS - 1)]
    parts = []
    for room in rooms:
        paragraphs = prose.room_paragraphs(rng, room, rng.choice((4, 5, 6)))
        parts.append(f"The {room}\n\n" + "\n\n".join(paragraphs))
    return "\n\n".join(parts)


def _where(seg: Segment) -> str:
    if seg.place == "bedroom":
        return "in my bedroom"
    return (
        f"on the {seg.place}" if seg.place in ("terrace", "north walk") else f"in the {seg.place}"
    )


def _statement(suspect: Suspect, room: str, rng: random.Random) -> str:
    filler = prose.statement_filler(rng, 2 + 3 * len(suspect.segments))
    # Everyone speaks of the room, so that a search for it finds every chapter.
    said = [" ".join(filler[:2]), prose.detail(rng.choice(prose.ROOM_CLAIMS), rng, room=room)]
    for i, seg in enumerate(suspect.segments):
        until = ", when the alarm was raised," if i == len(suspect.segments) - 1 else ""
        chat = " ".join(filler[2 + 3 * i : 5 + 3 * i])
        said.append(
            f"From {clock(seg.start)} until {clock(seg.end)}{until} I was {_where(seg)}, "
            f"{seg.activity}. {chat}"
        )
    return " ".join(said)


def _inquiry(suspect: Suspect, seg: Segment) -> str:
    name, span = suspect.person.short, f"from {clock(seg.start)} until {clock(seg.end)}"
    if seg.witness:
        return (
            f"{seg.witness}, was in the {seg.place} {span} and says that {name} was there the "
            "whole time and never left it."
        )
    # One mention of the name per line either way: how densely a chapter names its person
    # must not tell an alibi from none.
    return f"Nobody saw {name} {span}; for that time there is only this person's own word."


def _keys(suspect: Suspect) -> str:
    keys = [f"the {k}" for k in suspect.keys]
    listed = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
    noun = "key" if len(keys) == 1 else "keys"
    return (
        f"The key book shows that {suspect.person.short} held the {noun} of {listed} that evening."
    )


def _chapter(world: World, suspect: Suspect, rng: random.Random) -> str:
    p = suspect.person
    servant = world.servants[1][0]
    slots = {"p": p.short, "place": rng.choice(POSTS), "servant": servant, "room": world.room}
    motive = prose.detail(prose.MOTIVES[suspect.motive % len(prose.MOTIVES)], rng, **slots)
    herrings = [prose.detail(prose.HERRINGS[h % len(prose.HERRINGS)], rng, **slots) for h in
                suspect.herrings]  # fmt: skip
    inquiries = "\n".join(f"- {_inquiry(suspect, seg)}" for seg in suspect.segments)
    taken = clock(world.found + 50)
    return (
        f"{CHAPTER_MARK}{p.full} ==\n\n{p.short} is {p.role}.\n\n"
        f'Statement of {p.short}, taken at {taken}:\n"{_statement(suspect, world.room, rng)}"\n\n'
        f"What the servants saw:\n{inquiries}\n\n"
        f"Keys: {_keys(suspect)}\n\n"
        f"Other matters: {motive} {' '.join(herrings)}"
    )


def mentions(text: str, surnames: list[str]) -> Counter[str]:
    """How often each surname occurs as a word."""
    return Counter({s: len(re.findall(rf"\b{re.escape(s)}\b", text)) for s in surnames})


def _day(world: World, rng: random.Random, counts: Counter[str]) -> str:
    """Sentences about the day before, chosen so that every surname ends with the same count."""
    short = {s.person.surname: s.person.short for s in world.suspects}
    target = max(counts.values()) + _DAY_MENTIONS
    need = {s: target - counts[s] for s in short}
    sentences: list[str] = []
    servants = [name for name, _ in world.servants]
    while any(need.values()):
        p = max(need, key=lambda s: (need[s], rng.random()))
        others = [s for s in need if s != p and need[s] > 0]
        q = rng.choice(others) if others else p
        sentence = prose.day_sentence(
            rng, short[p], short[q], rng.choice(POSTS), rng.choice(servants)
        )
        used = mentions(sentence, list(short))
        if all(used[s] <= need[s] for s in used):
            sentences.append(sentence)
            for s in used:
                need[s] -= used[s]
    paragraphs = [" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs)


def render_case(world: World) -> str:
    """The whole case file. Deterministic in the world (its own seeded random source)."""
    rng = random.Random(f"mystery-text:{world.seed}")
    chapters = [_chapter(world, s, rng) for s in rng.sample(world.suspects, len(world.suspects))]
    head = [
        f"THE {world.victim.surname.upper()} COURT CASE: NOTES OF THE COUNTY POLICE",
        "Contents: 1. The facts of the case. 2. The persons under suspicion. 3. The house. "
        "4. The day before. 5. The evidence of each person, one chapter each.",
        f"1. THE FACTS OF THE CASE\n\n{_facts(world)}",
        f"2. THE PERSONS UNDER SUSPICION\n\n{_persons(world, rng)}",
        f"3. THE HOUSE\n\n{_house(world, rng)}",
    ]
    tail = ["5. THE EVIDENCE OF EACH PERSON", *chapters]
    surnames = [s.person.surname for s in world.suspects]
    counts = mentions("\n\n".join(head + tail), surnames)
    day = f"4. THE DAY BEFORE\n\n{_day(world, rng, counts)}"
    return "\n\n".join([*head, day, *tail]) + "\n"
