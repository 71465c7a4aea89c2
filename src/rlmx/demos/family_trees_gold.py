"""The gold relations of the family-trees demo, and how an answer's names and relations are
matched against them.

The gold file (``data/family_trees/relations.json``) lists the people of the Rostov,
Bolkonsky, Bezukhov and Kuragin families with the names a reader might use for them, and
their parent, spouse and sibling relations, each with a quote from the novel. Names are
compared without accents, case or titles, and with one spelling for the endings the
transliterations disagree on (Bolkonski/Bolkonsky, Vasili/Vasily, Rostova/Rostov), because
the Gutenberg text writes "Natásha" and "Bolkónski" while a reader types "Natasha Bolkonsky".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rlmx.errors import ConfigError

PARENT = "parent_of"
SPOUSE = "spouse_of"
SIBLING = "sibling_of"
RELATIONS = (PARENT, SPOUSE, SIBLING)
SYMMETRIC = frozenset({SPOUSE, SIBLING})

# Words that say someone's rank or age, not who they are: "Prince Andrew" is "Andrew".
_TITLES = frozenset(
    (
        *("the", "old", "young", "little", "count", "countess", "prince", "princess"),
        *("lieutenant", "colonel", "general", "captain", "baron", "baroness"),
        *("mr", "mrs", "madame", "mademoiselle", "sir", "lady", "lord"),
    )
)
# Transliterations and Russian feminine surnames, folded to one form on both sides.
_ENDINGS = (
    ("skaya", "sky"),
    ("skii", "sky"),
    ("skiy", "sky"),
    ("ski", "sky"),
    ("ova", "ov"),
    ("eva", "ev"),
    ("ina", "in"),
    ("ii", "y"),
    ("iy", "y"),
    ("i", "y"),
)
# Every way of naming a relation that a model writes, to (relation, reversed?).
_RELATION_WORDS: dict[str, tuple[str, bool]] = {
    **dict.fromkeys(("parent", "father", "mother", "parents"), (PARENT, False)),
    **dict.fromkeys(("child", "son", "daughter", "children"), (PARENT, True)),
    **dict.fromkeys(("spouse", "husband", "wife", "married", "married_to"), (SPOUSE, False)),
    **dict.fromkeys(("sibling", "brother", "sister", "siblings"), (SIBLING, False)),
}

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    family: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Relation:
    """``a`` is ``relation`` of ``b``: ``parent_of``, ``spouse_of`` or ``sibling_of``."""

    a: str
    relation: str
    b: str
    ref: str = ""
    quote: str = ""

    def key(self) -> Key:
        return relation_key(self.a, self.relation, self.b)


@dataclass(frozen=True, slots=True)
class Gold:
    people: tuple[Person, ...]
    relations: tuple[Relation, ...]

    def keys(self) -> frozenset[Key]:
        return frozenset(relation.key() for relation in self.relations)

    def accepted(self) -> frozenset[Key]:
        """The gold relations and what they imply when siblings share their parents: two
        children of one parent are siblings, and a sibling's parent is a parent. True of
        every family in the gold; such a relation is right in an answer, but not required."""
        return self.keys() | _implied(self.relations)


def relation_key(a: str, relation: str, b: str) -> Key:
    if relation in SYMMETRIC and b < a:
        a, b = b, a
    return (relation, a, b)


def load_gold(path: Path) -> Gold:
    """The gold file; a ConfigError that names the file when it is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        people = tuple(Person(p["name"], p["family"], tuple(p["aliases"])) for p in data["people"])
        relations = tuple(
            Relation(r["a"], r["relation"], r["b"], r["ref"], r["quote"]) for r in data["relations"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"family-trees gold file unreadable: {path} ({exc})") from exc
    return Gold(people, relations)


def canonical_relation(word: str) -> tuple[str, bool] | None:
    """``(relation, reversed)`` for how a model names a relation ("child_of" is a reversed
    ``parent_of``, "wife" a ``spouse_of``); None when it is none of the three."""
    plain = re.sub(r"[^a-z]+", "_", fold(word)).strip("_")
    plain = plain.removeprefix("is_").removesuffix("_of")
    return _RELATION_WORDS.get(plain)


def fold(text: str) -> str:
    """Lower case, without accents, curly apostrophes as plain ones."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.replace("\u2019", "'").lower()


def _stem(token: str) -> str:
    for ending, replacement in _ENDINGS:
        if token.endswith(ending) and len(token) > len(ending) + 2:
            return token[: -len(ending)] + replacement
    return token


def _tokens(name: str) -> list[str]:
    name = re.sub(r"\([^)]*\)", " ", fold(name))  # "Natasha (Natalya) Rostova"
    return [_stem(token) for token in re.findall(r"[a-z0-9]+", name)]


def name_key(name: str) -> str:
    return " ".join(_tokens(name))


def loose_key(name: str) -> str:
    return " ".join(token for token in _tokens(name) if token not in _TITLES)


class NameIndex:
    """Which gold people a name may mean. A name can mean several ("Count Bezukhov" is Pierre's
    father and, later, Pierre), and the scorer takes whichever reading makes the relation
    right: the text itself uses them so."""

    def __init__(self, people: Iterable[Person]) -> None:
        self._exact: dict[str, set[str]] = {}
        self._loose: dict[str, set[str]] = {}
        for person in people:
            for alias in (person.name, *person.aliases):
                self._exact.setdefault(name_key(alias), set()).add(person.name)
                loose = loose_key(alias)
                if loose:
                    self._loose.setdefault(loose, set()).add(person.name)

    def candidates(self, name: str) -> tuple[str, ...]:
        exact = self._exact.get(name_key(name))
        if exact:
            return tuple(sorted(exact))
        return tuple(sorted(self._loose.get(loose_key(name), ())))


@dataclass(frozen=True, slots=True)
class Score:
    """An answer against the gold: the gold keys it found, the relations that are wrong (as
    written), how many named nobody of the four families, and the gold keys it missed."""

    found: tuple[Key, ...]
    extra: tuple[Key, ...]
    wrong: tuple[str, ...]
    ignored: int
    missed: tuple[Key, ...]

    @property
    def precision(self) -> float:
        right = len(self.found) + len(self.extra)
        return right / (right + len(self.wrong)) if right + len(self.wrong) else 0.0

    @property
    def recall(self) -> float:
        total = len(self.found) + len(self.missed)
        return len(self.found) / total if total else 0.0


def resolve(relation: Relation, index: NameIndex, accepted: frozenset[Key]) -> Key | None:
    """The accepted gold key this relation states, under any reading of its names; None when
    no reading is right."""
    mapped = canonical_relation(relation.relation)
    if mapped is None:
        return None
    kind, reverse = mapped
    a, b = (relation.b, relation.a) if reverse else (relation.a, relation.b)
    for x in index.candidates(a):
        for y in index.candidates(b):
            key = relation_key(x, kind, y)
            if x != y and key in accepted:
                return key
    return None


def score(relations: Sequence[Relation], gold: Gold) -> Score:
    index = NameIndex(gold.people)
    accepted, required = gold.accepted(), gold.keys()
    found: dict[Key, None] = {}
    extra: dict[Key, None] = {}
    wrong: dict[str, str] = {}  # one claim however its names are spelt or ordered
    ignored = 0
    for relation in relations:
        key = resolve(relation, index, accepted)
        if key is not None:
            (found if key in required else extra)[key] = None
        elif not index.candidates(relation.a) and not index.candidates(relation.b):
            ignored += 1  # about people outside the four families: not what was asked
        else:
            wrong.setdefault(_claim(relation), f"{relation.a} {relation.relation} {relation.b}")
    missed = tuple(sorted(required - found.keys()))
    return Score(tuple(found), tuple(extra), tuple(wrong.values()), ignored, missed)


def _claim(relation: Relation) -> str:
    mapped = canonical_relation(relation.relation)
    kind, reverse = mapped if mapped is not None else (fold(relation.relation), False)
    a, b = (relation.b, relation.a) if reverse else (relation.a, relation.b)
    return " | ".join(relation_key(name_key(a), kind, name_key(b)))


def _implied(relations: Iterable[Relation]) -> frozenset[Key]:
    parents: dict[str, set[str]] = {}
    group: dict[str, set[str]] = {}  # each person's sibling group, themselves included
    for r in relations:
        if r.relation == PARENT:
            parents.setdefault(r.b, set()).add(r.a)
        elif r.relation == SIBLING:
            merged = group.get(r.a, {r.a}) | group.get(r.b, {r.b})
            for member in merged:
                group[member] = merged
    children: dict[str, set[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, set()).add(child)
    keys: set[Key] = set()
    for kids in children.values():
        everyone = set().union(*(group.get(kid, {kid}) for kid in kids))
        keys |= {relation_key(x, SIBLING, y) for x in everyone for y in everyone if x != y}
    for person, members in group.items():
        for p in set().union(*(parents.get(m, set()) for m in members)):
            keys.add(relation_key(p, PARENT, person))
    return frozenset(keys)
