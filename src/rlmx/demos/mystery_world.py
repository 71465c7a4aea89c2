"""The facts of a generated country-house murder, and the reasoning that solves it.

A seeded world: a victim found in a room that only a key opens, a window of time in which he
died, seven persons under suspicion, each with an evening of whereabouts (some seen by a
servant, some alone) and the keys the key book says they held. The culprit is the one person
with no witnessed alibi for the whole window *and* a key to the room; the generator draws the
others so that each clue alone leaves several suspects. :func:`candidates` reasons over these
facts only, never over the rendered text, so the tests can prove the puzzle sound.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

ClueType = Literal["alibi", "access"]
CLUE_TYPES: tuple[ClueType, ...] = ("alibi", "access")

# First names by title, so that a title always fits its name; the pools are disjoint, and no
# surname is an English word, so an answer names a person only when it means to.
_MEN = ("Hugh", "Arthur", "Lionel", "Rupert", "Edgar", "Percival", "Gerald", "Ambrose", "Cedric")
_WOMEN = ("Cecily", "Beatrice", "Harriet", "Millicent", "Clara", "Theodora", "Lydia", "Winifred")
_MEN_TITLES = ("Major", "Captain", "Mr", "Dr", "Colonel", "Reverend")
_WOMEN_TITLES = ("Mrs", "Miss", "Lady", "Dr")
SURNAMES = (
    "Fenwick", "Marlowe", "Ingram", "Lockhart", "Selwyn", "Vickery", "Garrick", "Danvers",
    "Northcote", "Radley", "Whitlock", "Yardley", "Kendrick", "Ellery", "Carrow", "Osgood",
)  # fmt: skip
FIRST_NAMES = _MEN + _WOMEN
_VICTIMS = (("Edmund", "Ashcombe"), ("Roderick", "Pemberton"), ("Aldous", "Ravensworth"))
_BUTLER = ("Dunmore", "the butler")  # finds the body; never a witness
_SERVANTS = (
    ("Pruett", "the footman"), ("Tolley", "the second footman"),
    ("Mabey", "the head housemaid"), ("Haskett", "the valet"), ("Figgis", "the chauffeur"),
    ("Brannock", "the lady's maid"), ("Crouch", "the under-gardener"),
)  # fmt: skip
_ROLES = (
    "the late lord's relation by marriage", "his private secretary", "the family solicitor",
    "his physician of many years", "a neighbour from across the valley", "his business partner",
    "a guest from London, lately returned from abroad", "his late wife's cousin",
    "the vicar's warden and an old friend", "a painter engaged to paint the house",
)  # fmt: skip
# Rooms that lock with a key: the crime's room is one of them, and everyone's keys come
# from them, so that holding keys at all says nothing.
LOCKED_ROOMS = ("library", "study", "gun room", "muniment room", "music room")
_OTHER_KEYS = ("wine cellar", "east tower", "boathouse", "linen room", "estate office")
# Each servant who saw anyone spent the whole evening at one post, so no two chapters can put
# a servant in two rooms at once; a suspect alone claims a place where no servant was.
POSTS = (
    "drawing room", "billiard room", "morning room", "card room", "smoking room", "conservatory",
)  # fmt: skip
ALONE = ("terrace", "rose garden", "long gallery", "bedroom", "north walk")
_ACTIVITIES = (
    "playing patience", "reading the evening papers", "listening to the gramophone",
    "writing letters", "smoking and talking of the harvest", "looking over old photographs",
    "walking up and down", "mending a fishing reel", "at cards",
)  # fmt: skip
EVENING_START = 20 * 60 + 30  # the end of dinner: nobody's whereabouts matter before it


@dataclass(frozen=True, slots=True)
class Person:
    title: str
    first: str
    surname: str
    role: str = ""

    @property
    def full(self) -> str:
        return f"{self.title} {self.first} {self.surname}"

    @property
    def short(self) -> str:
        return f"{self.title} {self.surname}"


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a suspect's evening: where they say they were, and who (if anyone) saw them."""

    start: int  # minutes after midnight
    end: int
    place: str
    activity: str
    witness: str | None  # "Pruett, the footman", or None: nobody saw them


@dataclass(frozen=True, slots=True)
class Suspect:
    person: Person
    segments: tuple[Segment, ...]
    keys: tuple[str, ...]
    motive: int  # index into the prose's motives
    herrings: tuple[int, ...]  # indexes of suspicious but irrelevant details


@dataclass(frozen=True, slots=True)
class World:
    seed: int
    victim: Person
    room: str
    death: tuple[int, int]
    found: int
    suspects: tuple[Suspect, ...]
    culprit: str  # surname of the person the generator made guilty
    servants: tuple[tuple[str, str], ...]
    posts: tuple[tuple[str, str], ...]  # (witness, the room they were in all evening)

    def suspect(self, surname: str) -> Suspect:
        return next(s for s in self.suspects if s.person.surname == surname)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def has_alibi(suspect: Suspect, room: str, death: tuple[int, int]) -> bool:
    """Whether witnessed segments away from ``room`` cover the whole window, without a gap."""
    covered = death[0]
    for seg in sorted(suspect.segments, key=lambda s: s.start):
        if seg.witness and seg.place != room and seg.start <= covered < seg.end:
            covered = seg.end
    return covered >= death[1]


def consistent(world: World, suspect: Suspect, clues: tuple[ClueType, ...]) -> bool:
    if "alibi" in clues and has_alibi(suspect, world.room, world.death):
        return False
    return not ("access" in clues and world.room not in suspect.keys)


def candidates(world: World, clues: tuple[ClueType, ...] = CLUE_TYPES) -> tuple[str, ...]:
    """The surnames of the suspects that the given clue types do not clear."""
    return tuple(s.person.surname for s in world.suspects if consistent(world, s, clues))


def _people(rng: random.Random, n: int) -> list[Person]:
    surnames = rng.sample(SURNAMES, n)
    men = rng.sample(_MEN, len(_MEN))
    women = rng.sample(_WOMEN, len(_WOMEN))
    roles = rng.sample(_ROLES, n)
    people = []
    for surname, role in zip(surnames, roles, strict=True):
        pool, titles = (men, _MEN_TITLES) if rng.random() < 0.55 and men else (women, _WOMEN_TITLES)
        people.append(Person(rng.choice(titles), pool.pop(), surname, role))
    return people


def _segment(
    rng: random.Random, start: int, end: int, witness: str | None, posts: dict[str, str]
) -> Segment:
    place = posts[witness] if witness else rng.choice(ALONE)
    return Segment(start, end, place, rng.choice(_ACTIVITIES), witness)


def _evening(
    rng: random.Random, death: tuple[int, int], found: int, alibi: bool, posts: dict[str, str]
) -> tuple[Segment, ...]:
    """Contiguous segments over the evening. With ``alibi``, one witnessed segment spans the
    window with a margin; without, an unwitnessed one overlaps at least ten minutes of it (a
    suspect may be seen before and after: the gap is what matters)."""
    witnesses = list(posts)
    if alibi:
        a = death[0] - rng.choice((5, 10, 15, 20, 30))
        b = death[1] + rng.choice((5, 10, 15, 25))
        middle_witness: str | None = rng.choice(witnesses)
    else:
        while True:
            a = death[0] + rng.choice((-25, -15, -10, -5, 0, 5))
            b = a + rng.choice((20, 25, 30, 40, 50))
            if min(b, death[1]) - max(a, death[0]) >= 10:
                break
        middle_witness = None
    a, b = max(a, EVENING_START + 10), min(b, found - 10)
    # Outside the window a suspect is sometimes alone: being alone is no clue by itself.
    before = rng.choice(witnesses) if (not alibi or rng.random() < 0.6) else None
    after = rng.choice(witnesses) if rng.random() < 0.6 else None
    return (
        _segment(rng, EVENING_START, a, before, posts),
        _segment(rng, a, b, middle_witness, posts),
        _segment(rng, b, found, after, posts),
    )


def build_world(seed: int) -> World:
    """One case: the culprit lacks an alibi and holds the key; 2-4 suspects lack an alibi and
    2-4 hold the key, so neither clue alone names anyone."""
    rng = random.Random(f"mystery:{seed}")
    people = _people(rng, 7)
    first, surname = rng.choice(_VICTIMS)
    victim = Person("Lord", first, surname, "master of the house")
    room = rng.choice(LOCKED_ROOMS)
    start = rng.choice(range(21 * 60 + 20, 21 * 60 + 55, 5))
    death = (start, start + rng.choice((15, 20, 25)))
    servants = (_BUTLER, *rng.sample(_SERVANTS, 5))
    witnesses = [f"{name}, {job}" for name, job in servants[1:]]  # the butler finds the body
    posts = dict(zip(witnesses, rng.sample(POSTS, len(witnesses)), strict=True))
    while True:
        no_alibi, with_key = rng.choice((2, 3, 4)), rng.choice((2, 3, 4))
        if no_alibi + with_key - 1 <= 6:
            break
    order = list(range(7))
    rng.shuffle(order)
    culprit_i = order[0]
    alibi_less = set(order[:no_alibi])
    keyed = {culprit_i, *order[no_alibi : no_alibi + with_key - 1]}
    found = death[1] + rng.choice((35, 40, 45))
    spare_keys = [r for r in LOCKED_ROOMS if r != room] + list(_OTHER_KEYS)
    suspects = []
    for i, person in enumerate(people):
        keys = rng.sample(spare_keys, rng.choice((1, 2)))
        if i in keyed:
            keys.insert(rng.randrange(len(keys) + 1), room)
        suspects.append(
            Suspect(
                person,
                _evening(rng, death, found, i not in alibi_less, posts),
                tuple(keys),
                motive=rng.randrange(1000),
                herrings=tuple(rng.sample(range(1000), rng.choice((1, 2)))),
            )
        )
    return World(
        seed,
        victim,
        room,
        death,
        found,
        tuple(suspects),
        people[culprit_i].surname,
        servants,
        tuple(posts.items()),
    )
