"""Family trees drawn from relation records: indented text for the terminal, SVG for the viewer.

Both draw the same forest. A tree's root is someone with no parent among the records, shown
with their spouses on one line; children hang under the couple. Siblings share the parents
any of them has (the records rarely name both parents of every child), and siblings with no
parent named hang under a "(parents not named)" root so they stay together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from rlmx.demos.family_trees_gold import PARENT, SIBLING, SPOUSE, Relation, canonical_relation

UNNAMED = "(parents not named)"


@dataclass(frozen=True, slots=True)
class Node:
    """One person of a tree, their spouses, and the children under them."""

    name: str
    spouses: tuple[str, ...]
    children: tuple[Node, ...]


class _Graph:
    def __init__(self, relations: Iterable[Relation]) -> None:
        self.order: dict[str, None] = {}  # everyone, in order of first mention
        self.parents: dict[str, dict[str, None]] = {}
        self.spouses: dict[str, dict[str, None]] = {}
        self.groups: dict[str, dict[str, None]] = {}
        for relation in relations:
            self._add(relation)
        for members in {id(g): g for g in self.groups.values()}.values():
            shared = {p: None for m in members for p in self.parents.get(m, {})}
            for member in members:
                self.parents.setdefault(member, {}).update(shared or {UNNAMED: None})
        self.children: dict[str, dict[str, None]] = {}
        for child, ps in self.parents.items():
            for p in ps:
                self.children.setdefault(p, {})[child] = None

    def _add(self, relation: Relation) -> None:
        mapped = canonical_relation(relation.relation)
        if mapped is None or relation.a == relation.b:
            return
        kind, reverse = mapped
        a, b = (relation.b, relation.a) if reverse else (relation.a, relation.b)
        self.order.update({a: None, b: None})
        if kind == PARENT:
            self.parents.setdefault(b, {})[a] = None
        elif kind == SPOUSE:
            self.spouses.setdefault(a, {})[b] = None
            self.spouses.setdefault(b, {})[a] = None
        elif kind == SIBLING:
            merged = {**self.groups.get(a, {a: None}), **self.groups.get(b, {b: None})}
            for member in merged:
                self.groups[member] = merged


def family_forest(relations: Iterable[Relation]) -> tuple[Node, ...]:
    """The trees the records draw, roots in order of first mention."""
    graph = _Graph(relations)
    people = list(graph.order) + ([UNNAMED] if UNNAMED in graph.children else [])
    shown: set[str] = set()
    roots = []
    for person in people:
        if person in shown or graph.parents.get(person):
            continue
        partners = tuple(graph.spouses.get(person, {}))
        if any(graph.parents.get(s) for s in partners):
            continue  # shown beside a spouse who has a place in some tree
        shown.update((person, *partners))
        roots.append(_node(graph, person, partners, frozenset({person})))
    return tuple(roots)


def _node(graph: _Graph, person: str, partners: tuple[str, ...], path: frozenset[str]) -> Node:
    kids = {c: None for p in (person, *partners) for c in graph.children.get(p, {})}
    children = tuple(
        _node(graph, kid, tuple(graph.spouses.get(kid, {})), path | {kid})
        for kid in kids
        if kid not in path  # a cycle in the records ("A parent of B parent of A")
    )
    return Node(person, partners, children)


def _label(node: Node) -> str:
    return f"{node.name} = {', '.join(node.spouses)}" if node.spouses else node.name


def render_text(relations: Iterable[Relation]) -> str:
    """An indented tree per family, spouses joined by ``=``."""
    lines: list[str] = []
    for root in family_forest(relations):
        if lines:
            lines.append("")
        lines.append(_label(root))
        _text_children(root, "", lines)
    return "\n".join(lines) + "\n" if lines else "(no family relations)\n"


def _text_children(node: Node, prefix: str, lines: list[str]) -> None:
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{_label(child)}")
        _text_children(child, prefix + ("    " if last else "│   "), lines)


# SVG ---------------------------------------------------------------------------------------

_BOX_W, _LINE_H, _GAP_X, _LEVEL_H, _TREE_GAP, _MARGIN = 210, 14, 16, 96, 40, 20


@dataclass(frozen=True, slots=True)
class _Placed:
    node: Node
    x: float
    y: float


def _place(node: Node, depth: int, slots: list[float], top: float, out: list[_Placed]) -> float:
    """Lays a subtree out, leaves left to right; returns the node's centre x."""
    if node.children:
        xs = [_place(child, depth + 1, slots, top, out) for child in node.children]
        x = (xs[0] + xs[-1]) / 2
    else:
        x = slots[0] + _BOX_W / 2
        slots[0] += _BOX_W + _GAP_X
    out.append(_Placed(node, x, top + depth * _LEVEL_H))
    return x


def _depth(node: Node) -> int:
    return 1 + max((_depth(child) for child in node.children), default=0)


def render_svg(relations: Iterable[Relation]) -> str:
    """The family trees as one standalone SVG document, trees one under another."""
    placed: list[_Placed] = []
    top, width = float(_MARGIN), float(_BOX_W + 2 * _MARGIN)
    for root in family_forest(relations):
        slots = [float(_MARGIN)]
        _place(root, 0, slots, top, placed)
        width = max(width, slots[0] + _MARGIN)
        top += _depth(root) * _LEVEL_H + _TREE_GAP
    height = max(top, _LEVEL_H + 2 * _MARGIN)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        "<title>Family trees</title>",
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    centres = {id(p.node): p for p in placed}
    for p in placed:
        for child in p.node.children:
            c = centres[id(child)]
            bottom = p.y + _height(p.node)
            mid = (bottom + c.y) / 2
            parts.append(
                f'<path d="M{p.x:.0f},{bottom:.0f} V{mid:.0f} H{c.x:.0f} V{c.y:.0f}" '
                'fill="none" stroke="#888"/>'
            )
    parts.extend(_box(p) for p in placed)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _box_lines(node: Node) -> list[str]:
    # At most three spouses shown: a box must fit between two levels.
    return [node.name, *(f"= {s}" for s in node.spouses[:3])]


def _height(node: Node) -> int:
    return 10 + _LINE_H * len(_box_lines(node))


def _box(p: _Placed) -> str:
    left = p.x - _BOX_W / 2
    text = "".join(
        f'<tspan x="{p.x:.0f}" dy="{0 if i == 0 else _LINE_H}">{escape(_clip(line))}</tspan>'
        for i, line in enumerate(_box_lines(p.node))
    )
    return (
        f'<g><rect x="{left:.0f}" y="{p.y:.0f}" width="{_BOX_W}" height="{_height(p.node)}" rx="6" '
        f'fill="#eef2ff" stroke="#4f46e5"/><text x="{p.x:.0f}" y="{p.y + 17:.0f}" '
        f'text-anchor="middle">{text}</text></g>'
    )


def _clip(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
