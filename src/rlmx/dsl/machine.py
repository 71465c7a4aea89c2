"""Executing DSL commands over a context: rlmx's own helpers, never code written by the model.

The helpers are those of the REPL (:mod:`rlmx.context.helpers`), run on a thread of this process
over the context's corpus. Results are kept in named variables (``last`` always holds the
latest), and ``{name}`` in an ``llm_query`` prompt inserts one. As no cell timer can stop a
regular expression running here, patterns with nested repetition (``(a+)+``, the shape of
catastrophic backtracking) are refused.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlmx.context import analytics
from rlmx.context.corpus import PICK_DOC, Corpus
from rlmx.context.helpers import Helpers, Hits
from rlmx.context.pysource import Function
from rlmx.dsl.commands import Command, CommandError, MissingValue
from rlmx.dsl.notes import (
    IMPORTS_NOTE,
    Note,
    kinds_note,
    literal_parts,
    no_match_note,
    same_text_note,
    searches_imports,
    without_words,
)
from rlmx.errors import SubCallsDisabled
from rlmx.sandbox.capture import truncate

_sre: Any = importlib.import_module("re._parser")
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
SHOWN_ITEMS = 5
# A tally's rows on show: a ranking's head (the whole is saved, and a final by name sends it).
SHOWN_ROWS = 20
# The hits a grep shows unless it sets its own limit; see Machine.hits_shown.
SHOWN_HITS = 20
ITEM_CHARS = 300

Query = Callable[[str, "str | None"], Awaitable[str]]
BatchQuery = Callable[[Sequence[str], "str | None"], Awaitable[list[str]]]
MapQuery = Callable[
    [str, Sequence[str], "Sequence[str] | None", "str | None"], Awaitable[list["str | None"]]
]


class Entry(str):
    """An item of a listed result, shown by its label (``request.py:Opener.open``) and read
    by a ``map`` or a per-item ``llm_query`` as its whole text (the function's source): the
    helper model judges the code, not its name."""

    body: str

    def __new__(cls, label: str, body: str) -> Entry:
        entry = super().__new__(cls, label)
        entry.body = body
        return entry


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: the text shown to the model, or a final answer."""

    output: str
    final: str | None = None
    # False when the output says what to send next instead of showing data (a filter that
    # left nothing): the turn then asks for that command, not for an answer copied from it.
    answerable: bool = True
    # The commands that note proposes, to hold the model to when it sends its own again.
    proposals: tuple[Command, ...] = ()


def nested_repetition(pattern: str) -> bool:
    """True when a repeated group itself repeats (star height above one)."""
    try:
        tree = _sre.parse(pattern)
    except re.error:
        return False
    return _nested(list(tree), 0)


def _nested(items: list[Any], depth: int) -> bool:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _, high, body = arg
            inner = depth + (1 if high > 1 else 0)
            if inner > 1 or _nested(list(body), inner):
                return True
        elif name == "SUBPATTERN":
            if _nested(list(arg[-1]), depth):
                return True
        elif name == "BRANCH":
            if any(_nested(list(b), depth) for b in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT") and _nested(list(arg[1]), depth):
            return True
    return False


class Machine:
    """The variables of one run and the execution of its commands."""

    def __init__(
        self,
        corpus: Corpus,
        *,
        query: Query,
        query_batched: BatchQuery,
        query_map: MapQuery,
        max_output: int,
    ) -> None:
        self._corpus, self._helpers = corpus, Helpers(corpus)
        # The Python index of a directory, by glob: built once a run (it parses every file),
        # read again by each functions command and by the note on an empty one.
        self._functions: dict[str, list[Function]] = {}
        self._query, self._query_batched = query, query_batched
        self._query_map = query_map
        self.max_output = max_output
        # Fewer for a question of counting, which no sample answers: each hit shown costs
        # the small root time to read (about 40 tokens a second on 2 cores).
        self.hits_shown = SHOWN_HITS
        # A question that ranks kinds of lines ("the most frequent messages"): an extract of
        # a marker word is offered the whole lines first (see same_text_note).
        self.ranks_lines = False
        self.variables: dict[str, Any] = {}

    async def execute(self, command: Command) -> Outcome:
        """Run one command; a problem the model can fix raises :class:`CommandError`."""
        name, args = command.name, dict(command.args)
        if name == "final":
            value = args.get("answer")
            if "name" in args and args["name"] not in self.variables:
                # {"cmd": "final", "name": "A"} meant the answer A: told to make a value named
                # A, the 1.5B root extracted a word under that name and answered with it.
                known = ", ".join(sorted(self.variables)) or "none yet"
                itself = json.dumps({"cmd": "final", "answer": args["name"]})
                raise CommandError(
                    f"No saved value named {args['name']!r} (saved: {known}). To answer with "
                    f"that text itself, send {itself}."
                )
            if "name" in args:
                value = self._get(args["name"])
            return Outcome(output="", final=value if isinstance(value, str) else _plain(value))
        if name == "get":
            return Outcome(self.show(self._get(args["name"]), args["name"]))
        if name == "set":
            self.variables[args["name"]] = args["value"]
            return Outcome(f"{args['name']} = {self.show(args['value'], args['name'])}")
        if name == "llm_query":
            result: Any = await self._llm(args)
        elif name == "map":
            result = await self._map(args)
        elif name == "tally":
            result = _tally(self._get(args["name"]), args.get("top"), args.get("templates", False))
        elif name == "stats":
            result = _stats(self._get(args["name"]))
        else:
            result = await asyncio.to_thread(self._helper, name, args)
        self.variables["last"] = result
        label = command.save_as or "last"
        if command.save_as:
            self.variables[command.save_as] = result
        # A tally's rows asked for with "top" are shown whole (up to the output limit).
        shown = self.show(result, label, rows=args.get("top") or SHOWN_ROWS)
        note: Note = Note()
        proposals: tuple[Command, ...] = ()
        if name == "extract":
            note = same_text_note(result, args.get("pattern"), lines_first=self.ranks_lines)
            if not note.text:
                note = kinds_note(result)
                if note.text:
                    tally = {"name": label, "templates": True}
                    proposals = (Command("tally", tally),)
        if (
            name in ("grep", "count", "extract", "search_files")
            and not result
            and args.get("pattern")
        ):
            note = await asyncio.to_thread(self._no_match_note, args)
        offered = (note.pattern,) if note.pattern is not None else note.alternatives
        if offered:  # the same command with each pattern the note gives
            proposals = tuple(
                Command(name, {**command.args, "pattern": p}, command.save_as) for p in offered
            )
        if name == "functions" and not result:
            text, proposals = await asyncio.to_thread(self._empty_note, args)
            note = Note(text, answerable=not text)
        elif name in ("functions", "search_files") and searches_imports(
            args.get("contains", args.get("pattern"))
        ):
            # An answer sent next is held to these once; the list stays saved, and answers
            # "which functions import inside their body" after. Offered the list itself as a
            # third choice, the 1.5B root chose it.
            note = Note(IMPORTS_NOTE)
            proposals = (Command("imports", {"local": True}), Command("imports", {}))
        if name == "map" and "keep" in args:
            note = Note(f"\n(the items whose answer is {args['keep']!r})")
        return Outcome(shown + note.text, answerable=note.answerable, proposals=proposals)

    def _get(self, name: str) -> Any:
        if name not in self.variables:
            known = ", ".join(sorted(self.variables)) or "none yet"
            raise MissingValue(
                f"No saved value named {name!r} (saved: {known}). Make it first with the "
                f'command that computes it, adding "as": "{name}", e.g. '
                f'{{"cmd": "extract", "pattern": "...", "as": "{name}"}}.',
                name,
            )
        return self.variables[name]

    def _helper(self, name: str, args: dict[str, Any]) -> Any:
        # Every regex a command carries runs here, where no cell timer can stop it.
        for key in ("pattern", "contains"):
            pattern = args.get(key)
            if isinstance(pattern, str) and nested_repetition(pattern):
                raise CommandError(
                    f"The pattern {pattern!r} repeats a repeated group, which can take forever: "
                    "write it without nesting (e.g. (ab)+ instead of (a+b?)+)."
                )
        if args.pop("ignore_case", False):
            args["flags"] = re.IGNORECASE
        if name == "grep":
            args.setdefault("limit", self.hits_shown)
        if name in ("functions", "imports"):
            return self._index(name, args)
        try:
            result = getattr(self._helpers, name)(**args)
            if isinstance(result, Hits) and result.limited:
                counted = {k: v for k, v in args.items() if k in ("pattern", "doc", "flags")}
                result.total = self._helpers.count(**counted)
            return result
        except (ValueError, KeyError, IndexError, TypeError, OSError, RuntimeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise CommandError(f"{name} failed: {self._in_commands(message)}") from None

    def _in_commands(self, message: str) -> str:
        """A helper's message in the words of the commands: the 1.5B root sent the same
        ``slice`` again after being told to pass ``doc=INDEX``, which is Python."""
        first = next((d.name for d in self._corpus.docs if d.name), None)
        example = f', or a name such as "doc": "{first}"' if first else ""
        return message.replace(PICK_DOC, f'add "doc": 0 to the command{example}')

    def _index(self, name: str, args: dict[str, Any]) -> list[str]:
        """``functions`` or ``imports`` filtered as asked, as the lines an answer lists."""
        glob = args.get("glob", "*.py")
        try:
            if name == "imports":
                found = self._helpers.imports(glob)
                return [str(i) for i in found if i.local or not args.get("local", False)]
            tests = _function_tests(args)
            return [
                Entry(str(f), f"{f}\n{f.text}")
                for f in self._all_functions(glob)
                if all(test(f) for test in tests.values())
            ]
        except (ValueError, re.error) as exc:
            raise CommandError(f"{name} failed: {exc}") from None

    def _all_functions(self, glob: str) -> list[Function]:
        if glob not in self._functions:
            self._functions[glob] = self._helpers.functions(glob)
        return self._functions[glob]

    def _empty_note(self, args: dict[str, Any]) -> tuple[str, tuple[Command, ...]]:
        """Why ``functions`` found nothing when it had several filters: what is found with each
        one left out, as the command to send (and those commands). A small model copies every
        filter of the command list, asked for or not, and acts on a command it is shown more
        than on advice."""
        tests = _function_tests(args)
        if len(tests) < 2:
            return "", ()
        found = self._all_functions(args.get("glob", "*.py"))
        ways, proposals = [], []
        # "contains": "public" beside "public": true is that filter's name typed as source text:
        # the one way is to leave it out (held to either way, the 1.5B root kept it).
        named = str(args.get("contains", "")).strip().lower() in tests.keys() - {"contains"}
        for left_out in ["contains"] if named else list(tests):
            kept = [test for key, test in tests.items() if key != left_out]
            passing = sum(1 for f in found if all(test(f) for test in kept))
            if passing:
                proposal = Command("functions", {k: v for k, v in args.items() if k != left_out})
                proposals.append(proposal)
                ways.append(
                    f"without {json.dumps({left_out: args[left_out]})[1:-1]}, {passing} pass: "
                    + proposal.to_json()
                )
        if not ways:
            return "", ()
        note = (
            f"\nNo function passes all {len(tests)} filters together ({len(found)} functions in "
            f"all); {'; '.join(ways)}. Send the one with only the filters the question asks for."
        )
        return note, tuple(proposals)

    def _no_match_note(self, args: dict[str, Any]) -> Note:
        pattern = args["pattern"]
        where = {k: v for k, v in args.items() if k in ("doc", "flags")}
        counts = [(p, self._helpers.count(re.escape(p), **where)) for p in literal_parts(pattern)]
        absent = [
            word
            for part, n in counts
            if n == 0
            for word in dict.fromkeys(re.findall(r"\w+", part))
            if self._helpers.count(rf"\b{re.escape(word)}\b", **where) == 0
        ]
        wider = without_words(pattern, absent)
        if wider is not None and not self._helpers.count(wider, **where):
            wider = None
        return no_match_note(counts, wider)

    async def _llm(self, args: dict[str, Any]) -> Any:
        try:
            return await self._ask(args)
        except SubCallsDisabled as exc:
            raise CommandError(str(exc)) from None

    async def _map(self, args: dict[str, Any]) -> list[Any]:
        """The answers about each item in order; with ``keep``, the items whose answer it is."""
        items = self._get(args["each"])
        if not isinstance(items, list) or not items:
            raise CommandError(
                f'"each" must name a saved non-empty list; {args["each"]!r} is not one'
            )
        texts = [_body(item) for item in items]
        labels = args.get("labels")
        try:
            answers = await self._query_map(args["instruction"], texts, labels, args.get("model"))
        except (SubCallsDisabled, TypeError, ValueError) as exc:
            raise CommandError(f"map failed: {exc}") from None
        if "keep" not in args:
            return answers
        return [item for item, answer in zip(items, answers, strict=True) if answer == args["keep"]]

    async def _ask(self, args: dict[str, Any]) -> Any:
        template, model, each = args["prompt"], args.get("model"), args.get("each")
        if each is None:
            return await self._query(self._fill(template, {}), model)
        items = self._get(each)
        if not isinstance(items, list) or not items:
            raise CommandError(f'"each" must name a saved non-empty list; {each!r} is not one')
        prompts = [self._fill(template, {"item": _body(item)}) for item in items]
        if "{item}" not in template:
            prompts = [f"{p}\n\n{_body(item)}" for p, item in zip(prompts, items, strict=True)]
        return await self._query_batched(prompts, model)

    def _fill(self, template: str, extra: dict[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in extra:
                return extra[key]
            if key not in self.variables:
                known = ", ".join(sorted(self.variables)) or "none yet"
                raise CommandError(
                    f"The prompt uses {{{key}}}, but nothing is saved as {key!r} (saved: {known})."
                )
            return _plain(self.variables[key])

        return _PLACEHOLDER.sub(value, template)

    def show(self, value: Any, label: str, *, rows: int = SHOWN_ROWS) -> str:
        """A result as the model sees it, cut to the output limit (a tally to ``rows``)."""
        if isinstance(value, analytics.Counts) and len(value) > rows:
            head = analytics.Counts(value[:rows])
            head.total, head.distinct = value.total, value.distinct
            text = str(head)
        elif isinstance(value, Hits | analytics.Counts):
            text = str(value)
        elif isinstance(value, list):
            text = _show_list(value, label)
        elif isinstance(value, str):
            text = value if value else "(empty text)"
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False, indent=1)
        else:
            text = _plain(value)
        return truncate(text, self.max_output)[0]


def _tally(items: Any, top: int | None, templates: bool) -> analytics.Counts:
    """How often each value occurs in a saved list, most common first."""
    if isinstance(items, Hits):
        items = [hit.text for hit in items]
    if not isinstance(items, list):
        raise CommandError(
            "tally needs the name of a saved list (from extract, split or a map's answers)"
        )
    try:
        return analytics.tally(
            (None if item is None else _plain(item) for item in items), top, templates
        )
    except ValueError as exc:
        raise CommandError(f"tally failed: {exc}") from None


def _stats(items: Any) -> dict[str, float | int]:
    if not isinstance(items, list):
        raise CommandError("stats needs the name of a saved list of numbers (from extract)")
    try:
        return analytics.stats(items)
    except ValueError as exc:
        raise CommandError(f"stats failed: {exc}") from None


def _show_list(items: list[Any], label: str) -> str:
    distinct = ""
    if items and all(isinstance(item, str | int | float) for item in items):
        # Said at once: "how many different" is the next question asked of most lists.
        distinct = f", {len(set(items)):,} distinct"
    lines = [f"a list of {len(items):,} items{distinct} (saved as {label})"]
    for i, item in enumerate(items[:SHOWN_ITEMS]):
        text = _plain(item)
        more = f" ... ({len(text):,} chars)" if len(text) > ITEM_CHARS else ""
        lines.append(f"[{i}] {text[:ITEM_CHARS]}{more}")
    if len(items) > SHOWN_ITEMS:
        lines.append(f"... and {len(items) - SHOWN_ITEMS:,} more")
    return "\n".join(lines)


def _function_tests(args: dict[str, Any]) -> dict[str, Callable[[Function], bool]]:
    """The filters ``functions`` was given, by argument name."""
    tests: dict[str, Callable[[Function], bool]] = {}
    if args.get("contains"):
        pattern = re.compile(args["contains"])
        tests["contains"] = lambda f: pattern.search(f.text) is not None
    if "public" in args:
        tests["public"] = lambda f: f.public == args["public"]
    if "documented" in args:
        tests["documented"] = lambda f: bool(f.doc) == args["documented"]
    return tests


def _body(item: Any) -> str:
    """What a helper model reads of an item: an :class:`Entry`'s whole text, else the item."""
    return item.body if isinstance(item, Entry) else _plain(item)


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Hits | analytics.Counts):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
