"""The family-trees demo: the family relations of four families across all of War and Peace.

The context is the whole novel (3.2 M characters). A run that works filters the sentences
that state a relation (a regex over kinship words and names), asks a sub-model about each of
them (``llm_map``), and gathers the records in code. The answer is checked against a gold
list of 33 relations located in the text, each with its quote (``data/family_trees``):
precision and recall over the relations, names matched through each person's aliases.

``render_text`` and ``render_svg`` draw relations as family trees; ``DEMO.render`` draws a
run's answer in the terminal and writes its SVG (and the gold's) into the working folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from rlmx.bench.book_needle import gutenberg_body
from rlmx.bench.datafiles import data_dir
from rlmx.demos.base import Check, DemoQuestion, Prepared
from rlmx.demos.family_trees_gold import (
    Gold,
    NameIndex,
    Relation,
    Score,
    load_gold,
    resolve,
    score,
)
from rlmx.demos.family_trees_parse import parse_relations
from rlmx.demos.family_trees_render import render_svg, render_text

BOOK = "war_and_peace/2600-0.txt"
GOLD = "family_trees/relations.json"
CONTEXT_FILE = "war_and_peace.txt"
ANSWER_SVG = "family_trees.svg"
GOLD_SVG = "family_trees_gold.svg"
MIN_PRECISION = 0.8
MIN_RECALL = 0.6

QUESTION = DemoQuestion(
    name="relations",
    query=(
        "List the family relations (parent, child, spouse, sibling) among the Rostov, "
        "Bolkonsky, Bezukhov and Kuragin families as JSON records {a, relation, b}, with "
        "relation one of parent_of, spouse_of, sibling_of."
    ),
    level="code",
    # llm_map's sub-calls are not nested runs: depth 1 is all the intended path needs.
    max_depth=1,
    max_iterations=12,
)


@lru_cache(maxsize=2)
def _gold(path: Path) -> Gold:
    return load_gold(path)


def gold() -> Gold:
    """The gold relations shipped in the data folder."""
    return _gold(data_dir() / GOLD)


def canonical(relations: Sequence[Relation], gold_: Gold) -> list[Relation]:
    """The relations with gold names where they can be told: a relation the gold accepts
    takes its people's names; otherwise a name that means one gold person takes theirs."""
    index, accepted = NameIndex(gold_.people), gold_.accepted()
    out = []
    for relation in relations:
        key = resolve(relation, index, accepted)
        if key is not None:
            out.append(Relation(key[1], key[0], key[2]))
            continue
        a, b = (index.candidates(name) for name in (relation.a, relation.b))
        out.append(
            Relation(
                a[0] if len(a) == 1 else relation.a,
                relation.relation,
                b[0] if len(b) == 1 else relation.b,
            )
        )
    return out


def describe(result: Score) -> str:
    right = len(result.found) + len(result.extra)
    detail = (
        f"precision {result.precision:.2f} ({right} of {right + len(result.wrong)} right), "
        f"recall {result.recall:.2f} ({len(result.found)} of "
        f"{len(result.found) + len(result.missed)} gold relations)"
    )
    if result.ignored:
        detail += f"; {result.ignored} about people outside the four families left out"
    return detail


class FamilyTreesDemo:
    """Parents, children, spouses and siblings of four families, from the whole novel."""

    name: str = "family-trees"
    summary: str = (
        "the family relations of the Rostovs, Bolkonskys, Bezukhovs and Kuragins across all of "
        "War and Peace, drawn as trees"
    )
    source: str = (
        "War and Peace by Leo Tolstoy, translated by Louise and Aylmer Maude: Project Gutenberg "
        "eBook #2600, public domain in the USA (data/war_and_peace/SOURCE.txt); gold relations "
        "with their quotes: data/family_trees/SOURCE.txt"
    )
    # Said here so that listing the demos need not copy the novel.
    levels: tuple[str, ...] = (QUESTION.level,)

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        """The novel without the Gutenberg header and licence; ``seed`` is unused (the text
        and the gold are fixed)."""
        root = data_dir()
        text = gutenberg_body((root / BOOK).read_text(encoding="utf-8-sig"))
        path = workdir / CONTEXT_FILE
        path.write_text(text, encoding="utf-8")
        gold_ = _gold(root / GOLD)
        return Prepared(
            context=path,
            questions=(QUESTION,),
            expected={QUESTION.name: _expected(gold_)},
            notes=(
                f"{len(text):,} characters, the whole novel",
                f"pass: precision >= {MIN_PRECISION} and recall >= {MIN_RECALL} against "
                f"{len(gold_.relations)} gold relations",
            ),
        )

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        relations = parse_relations(answer)
        if not relations:
            return Check(question.name, False, "no relation records could be read", 0.0)
        result = score(relations, gold())
        passed = result.precision >= MIN_PRECISION and result.recall >= MIN_RECALL
        p, r = result.precision, result.recall
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return Check(question.name, passed, describe(result), round(f1, 3))

    def render(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> str:
        """The answer's trees as text; writes them as SVG, and the gold's, beside the context
        in the working folder, and says where."""
        gold_ = gold()
        relations = canonical(parse_relations(answer), gold_)
        folder = prepared.context.parent if isinstance(prepared.context, Path) else Path.cwd()
        answer_svg, gold_svg = folder / ANSWER_SVG, folder / GOLD_SVG
        answer_svg.write_text(render_svg(relations), encoding="utf-8")
        gold_svg.write_text(render_svg(gold_.relations), encoding="utf-8")
        return f"{render_text(relations)}\ntrees drawn in {answer_svg} (gold: {gold_svg})\n"


def _expected(gold_: Gold) -> str:
    first = gold_.relations[0]
    return (
        f"{len(gold_.relations)} relations among {len(gold_.people)} people, "
        f"e.g. {first.a} {first.relation} {first.b}"
    )


DEMO = FamilyTreesDemo()

__all__ = ["DEMO", "QUESTION", "FamilyTreesDemo", "render_svg", "render_text"]
