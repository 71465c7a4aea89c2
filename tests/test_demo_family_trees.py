"""The family-trees demo: its gold list against the novel, the check of answers, the trees it
draws, and one run of the intended path (filter the sentences, ``llm_map`` over them) on
scripted models."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rlmx import RLM, Limits
from rlmx.config import Settings
from rlmx.demos.base import Prepared
from rlmx.demos.family_trees import DEMO, QUESTION, canonical, gold, render_svg, render_text
from rlmx.demos.family_trees_gold import (
    RELATIONS,
    Gold,
    NameIndex,
    Relation,
    canonical_relation,
    relation_key,
)
from rlmx.demos.family_trees_parse import parse_relations
from rlmx.providers import FunctionModel, ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.types import Message

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "data" / "war_and_peace" / "2600-0.txt"


@pytest.fixture(scope="module")
def gold_() -> Gold:
    return gold()


@pytest.fixture(scope="module")
def novel() -> str:
    """The novel's text with every run of whitespace as one space (the file is hard-wrapped)."""
    raw = BOOK.read_text(encoding="utf-8-sig")
    body = raw[raw.index("*** START") : raw.index("*** END")]
    return " ".join(body.split())


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    return DEMO.prepare(tmp_path, seed=0)


def records(relations: Sequence[Relation]) -> str:
    return json.dumps([{"a": r.a, "relation": r.relation, "b": r.b} for r in relations])


# The gold file ------------------------------------------------------------------------------


def _chapter_at(novel: str, position: int) -> str:
    book = chapter = ""
    heading = re.compile(
        r"(?:^| )(?:(BOOK [A-Z]+|FIRST EPILOGUE|SECOND EPILOGUE):|CHAPTER ([IVXL]+) )"
    )
    for m in heading.finditer(novel, 0, position):
        if m.group(1):
            book, chapter = m.group(1).title(), ""
        else:
            chapter = m.group(2)
    return f"{book}, Chapter {chapter}"


def test_every_quote_is_in_the_novel_verbatim_in_the_chapter_its_ref_names(
    gold_: Gold, novel: str
) -> None:
    for relation in gold_.relations:
        at = novel.find(relation.quote)
        assert at >= 0, relation.quote
        assert _chapter_at(novel, at) == relation.ref, relation.quote


def test_the_gold_names_its_people_with_aliases_and_holds_no_duplicates(gold_: Gold) -> None:
    names = [person.name for person in gold_.people]
    assert len(names) == len(set(names))
    assert all(person.aliases for person in gold_.people)
    assert {person.family for person in gold_.people} >= {
        "Rostov",
        "Bolkonsky",
        "Bezukhov",
        "Kuragin",
    }
    keys = [relation.key() for relation in gold_.relations]
    assert len(keys) == len(set(keys))
    assert 30 <= len(keys) <= 50
    for relation in gold_.relations:
        assert {relation.a, relation.b} <= set(names)
        assert relation.relation in RELATIONS
        assert relation.a != relation.b
        assert 0 < len(relation.quote) <= 220


def test_every_alias_means_its_person(gold_: Gold) -> None:
    index = NameIndex(gold_.people)
    for person in gold_.people:
        for alias in (person.name, *person.aliases):
            assert person.name in index.candidates(alias), alias


def test_the_question_names_no_one_but_the_four_families() -> None:
    assert QUESTION.level == "code"
    for word in ("Natasha", "Pierre", "Andrew", "Helene", "Vera"):
        assert word not in QUESTION.query


# The check ----------------------------------------------------------------------------------


def test_the_gold_itself_passes_with_a_full_score(prepared: Prepared, gold_: Gold) -> None:
    check = DEMO.check(prepared, QUESTION, records(gold_.relations))
    assert check.passed
    assert check.score == 1.0
    assert "precision 1.00 (33 of 33 right), recall 1.00 (33 of 33" in check.detail


def test_a_partial_answer_passes_above_the_recall_bar_and_fails_below(
    prepared: Prepared, gold_: Gold
) -> None:
    enough = DEMO.check(prepared, QUESTION, records(gold_.relations[:21]))  # 21/33 = 0.64
    assert enough.passed, enough.detail
    short = DEMO.check(prepared, QUESTION, records(gold_.relations[:19]))  # 0.58
    assert not short.passed
    assert "recall 0.58" in short.detail


def test_wrong_relations_lower_the_precision(prepared: Prepared, gold_: Gold) -> None:
    wrong = [
        Relation("Natasha Rostova", "spouse_of", "Prince Andrew Bolkonsky"),  # engaged only
        Relation("Sonya", "sibling_of", "Nicholas Rostov"),  # a cousin
        Relation("Anatole Kuragin", "parent_of", "Helene Kuragina"),
        Relation("Pierre", "cousin_of", "Natasha"),  # not a relation asked for
        Relation("Prince Vasili", "parent_of", "Prince Vasili"),
        Relation("Countess Rostova", "mother_of", "Sonya"),  # her niece
    ]
    check = DEMO.check(prepared, QUESTION, records([*gold_.relations[:20], *wrong]))
    assert not check.passed  # on precision alone: recall is 20 of 33
    assert "precision 0.77 (20 of 26 right), recall 0.61" in check.detail


@pytest.mark.parametrize("answer", [None, "", "I could not find any relations.", "[{'a': ", "42"])
def test_a_malformed_answer_fails_and_says_so(prepared: Prepared, answer: str | None) -> None:
    check = DEMO.check(prepared, QUESTION, answer)
    assert (check.passed, check.detail, check.score) == (
        False,
        "no relation records could be read",
        0.0,
    )


def test_names_are_matched_through_aliases_without_accents_titles_or_spelling(
    prepared: Prepared,
) -> None:
    answer = [
        ("Natásha", "sibling_of", "Pétya"),
        ("Prince Andrei Bolkonski", "sibling_of", "Princess Marya"),
        ("Hélène", "child_of", "Prince Vasíli"),  # the inverse of parent_of
        ("Count Bezúkhov", "father_of", "Pierre"),
        ("Prince Vasily Kuragin", "husband_of", "Princess Kuragina"),
        ("NICHOLAS ROSTOV", "married_to", "Countess Mary"),
        ("old Prince Bolkonsky", "parent_of", "Andrew"),
    ]
    result = json.dumps([{"a": a, "relation": r, "b": b} for a, r, b in answer])
    check = DEMO.check(prepared, QUESTION, result)
    assert "precision 1.00 (7 of 7 right)" in check.detail


def test_symmetric_relations_are_unordered_and_parent_of_is_not(prepared: Prepared) -> None:
    both_ways = [
        ("Petya Rostov", "sibling_of", "Natasha Rostova"),
        ("Natasha Rostova", "sibling_of", "Petya Rostov"),
        ("Lise Bolkonskaya", "spouse_of", "Prince Andrew Bolkonsky"),
    ]
    check = DEMO.check(prepared, QUESTION, json.dumps([list(t) for t in both_ways]))
    assert "precision 1.00 (2 of 2 right)" in check.detail  # the two siblings count once
    backwards = json.dumps([["Pierre Bezukhov", "parent_of", "Count Cyril Bezukhov"]])
    assert "precision 0.00 (0 of 1 right)" in DEMO.check(prepared, QUESTION, backwards).detail


def test_implied_relations_are_right_but_not_required(prepared: Prepared) -> None:
    implied = json.dumps(
        [
            {"a": "Vera", "relation": "sibling_of", "b": "Petya"},  # children of one count
            {"a": "Princess Kuragina", "relation": "parent_of", "b": "Anatole"},  # Helene's
        ]
    )
    check = DEMO.check(prepared, QUESTION, implied)
    assert "precision 1.00 (2 of 2 right), recall 0.00 (0 of 33" in check.detail


def test_relations_outside_the_four_families_are_left_out(prepared: Prepared) -> None:
    answer = json.dumps(
        [
            {"a": "Boris Drubetskoy", "relation": "child_of", "b": "Anna Mikhaylovna"},
            {"a": "Natasha", "relation": "sibling_of", "b": "Nicholas"},
        ]
    )
    detail = DEMO.check(prepared, QUESTION, answer).detail
    assert "precision 1.00 (1 of 1 right)" in detail
    assert "1 about people outside the four families left out" in detail


@pytest.mark.parametrize(
    "answer",
    [
        '```json\n[{"a": "Natasha", "relation": "sibling_of", "b": "Vera"}]\n```',
        "[{'a': 'Natasha', 'relation': 'sibling_of', 'b': 'Vera'}]",
        'Found: {"relations": [{"person1": "Natasha", "type": "sister", "person2": "Vera"}]}',
        '{"a": "Natasha", "relation": "sibling_of", "b": "Vera"}\n{"a": "x", "relation": "y"}',
        "- Natasha Rostova sibling_of Vera Rostova\n- nothing else",
        "Natasha | sibling_of | Vera",
    ],
)
def test_answers_are_read_leniently(answer: str) -> None:
    relations = parse_relations(answer)
    assert len(relations) == 1
    assert canonical_relation(relations[0].relation) == ("sibling_of", False)
    assert (relations[0].a.split()[0], relations[0].b.split()[0]) == ("Natasha", "Vera")


def test_relation_words_map_to_the_three_relations() -> None:
    assert canonical_relation("child_of") == ("parent_of", True)
    assert canonical_relation("Daughter of") == ("parent_of", True)
    assert canonical_relation("is_mother_of") == ("parent_of", False)
    assert canonical_relation("wife") == ("spouse_of", False)
    assert canonical_relation("brother-of") == ("sibling_of", False)
    assert canonical_relation("cousin_of") is None
    assert relation_key("b", "spouse_of", "a") == relation_key("a", "spouse_of", "b")


# The trees ----------------------------------------------------------------------------------


def test_render_text_draws_one_indented_tree_per_family(gold_: Gold) -> None:
    text = render_text(gold_.relations)
    assert text.startswith("Count Ilya Rostov = Countess Natalya Rostova\n")
    assert "├── Natasha Rostova = Pierre Bezukhov\n" in text
    assert "    └── Nikolushka Bolkonsky\n" in text
    assert "Pierre Bezukhov = Natasha Rostova, Helene Kuragina" in text
    assert text.count("\n\n") == 3  # four trees


def test_render_text_keeps_siblings_with_no_parent_together_and_survives_cycles() -> None:
    text = render_text(
        [
            Relation("Ann", "sibling_of", "Bob"),
            Relation("Cy", "parent_of", "Di"),
            Relation("Di", "parent_of", "Cy"),
        ]
    )
    assert "(parents not named)\n├── Ann\n└── Bob\n" in text
    assert render_text([]) == "(no family relations)\n"


def test_render_svg_is_one_well_formed_document_with_a_box_per_person(gold_: Gold) -> None:
    svg = render_svg([*gold_.relations, Relation("Tom & <Jerry>", "sibling_of", "Ann")])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    boxes = root.findall(f"{ns}g/{ns}rect")
    assert len(boxes) == 15 + 3  # a box per tree node (spouses inside), the pair and its root
    text = " ".join("".join(t.itertext()) for t in root.iter(f"{ns}text"))
    assert "Tom & <Jerry>" in text
    assert "Nikolushka Bolkonsky" in text
    assert len(root.findall(f"{ns}path")) == 11 + 2  # a line from each parent to a child


def test_demo_render_writes_the_svgs_beside_the_context(prepared: Prepared) -> None:
    answer = '[{"a": "Natásha", "relation": "sibling_of", "b": "Pétya"}]'
    text = DEMO.render(prepared, QUESTION, answer)
    assert isinstance(prepared.context, Path)
    folder = prepared.context.parent
    assert "Natasha Rostova\n└── Petya Rostov" in text  # canonical names
    assert f"trees drawn in {folder / 'family_trees.svg'}" in text
    ET.fromstring((folder / "family_trees.svg").read_text(encoding="utf-8"))
    ET.fromstring((folder / "family_trees_gold.svg").read_text(encoding="utf-8"))


def test_canonical_names_follow_the_gold_where_a_name_is_ambiguous(gold_: Gold) -> None:
    out = canonical([Relation("Prince Andrew", "parent_of", "Nicholas")], gold_)
    assert out == [Relation("Prince Andrew Bolkonsky", "parent_of", "Nikolushka Bolkonsky")]


# The intended path, on scripted models ------------------------------------------------------

FILTER = r"""import re, json
text = ' '.join(context.split())
sentences = re.split(r'(?<=[.!?])\s+', text)
kin = re.compile(r'\b(wife|husband|son|daughter|father|mother|brother|sister|married)\b', re.I)
names = re.compile(r'Rost[oó]v|Bolk[oó]nsk|Bez[uú]khov|Kur[aá]gin|Nat[aá]sha|P[eé]tya|'
                   r'V[eé]ra\b|Andrew|Princess Mary|Pierre|H[eé]l[eè]ne|Anatole|Hippolyte|'
                   r'Vas[ií]li|Nicholas')
items = [s for s in sentences if kin.search(s) and names.search(s)]
print(len(items), 'sentences')"""

MAP = """ask = ('Which family relation does this sentence state? Reply with JSON {"a": name, '
       '"relation": "parent_of" or "spouse_of" or "sibling_of", "b": name}, or none.')
found = llm_map(ask, items)
relations = []
for answer in found:
    try:
        relations.append(json.loads(answer))
    except (TypeError, ValueError):
        pass
print(len(relations), 'relations')"""


def _reader(gold_: Gold) -> Any:
    """A sub-model that knows the gold quotes: the relation a sentence holds, or none."""

    def read(messages: Sequence[Message], options: Any) -> str:
        sentence = messages[-1].content
        for r in gold_.relations:
            if r.quote in sentence or (len(sentence) > 40 and sentence in r.quote):
                return json.dumps({"a": r.a, "relation": r.relation, "b": r.b})
        return "none"

    return read


def test_filtering_sentences_and_mapping_a_sub_model_over_them_answers_the_question(
    prepared: Prepared, gold_: Gold
) -> None:
    root = ScriptedModel(
        [f"```repl\n{FILTER}\n```", f"```repl\n{MAP}\n```", "```repl\nFINAL_VAR('relations')\n```"]
    )
    sub = FunctionModel(_reader(gold_), name="reader")
    rlm = RLM(
        model=root,
        sub_model=sub,
        limits=Limits(max_iterations=QUESTION.max_iterations, max_depth=QUESTION.max_depth),
        sandbox=InProcessRepl,
        level=QUESTION.level,
    )
    result = rlm.run(QUESTION.query, prepared.context)
    assert result.status == "completed"
    assert "sentences" in root.calls[1][-1].content
    items = len(sub.calls)
    assert 500 < items < 1000  # of the novel's 27,000 sentences
    check = DEMO.check(prepared, QUESTION, result.answer)
    assert check.passed, check.detail


# The acceptance, on the embedded models ------------------------------------------------------


@pytest.mark.local
@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.xfail(
    reason="measured once: the question is routed to 'classify' and the planned llm_map runs "
    "over all 51,861 lines of the novel (about 1.7 h on 2 cores), so no answer in 15 min",
    strict=False,
)
def test_the_embedded_models_answer_within_fifteen_minutes(
    prepared: Prepared, local_settings: Settings
) -> None:
    rlm = RLM(
        model="local:qwen2.5-coder-1.5b",
        sub_model="local:qwen2.5-coder-0.5b",
        settings=local_settings,
        limits=Limits(
            max_iterations=QUESTION.max_iterations, max_depth=QUESTION.max_depth, timeout_s=900
        ),
        level=QUESTION.level,
    )
    result = rlm.run(QUESTION.query, prepared.context)
    check = DEMO.check(prepared, QUESTION, result.answer)
    assert result.status == "completed", result.error
    assert check.passed, check.detail
