"""The functions the REPL gives model code over its context, the same on every kind of context.

Positions are characters of one document (the only one for a text); lines count from 1. On a
context of several documents or files, ``doc=`` (an index or a name) picks one; the searches
cover all of them by default. Standard library only: the sandbox worker imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from rlmx.context import analytics, pysource
from rlmx.context.corpus import Corpus, Text, iter_blocks, str_lines
from rlmx.context.regex import Compiled, Match

# One line each, for the system prompt.
HELP = {
    "slice": "slice(start, end) -> str: the text between two positions, as context[start:end]",
    "lines": "lines(start, end) -> str: lines start to end (counted from 1)",
    "find": "find(text) -> hits: every position of an exact text",
    "grep": "grep(pattern, around=200) -> hits: each regex match with `around` chars either "
    "side; a hit prints as [line, pos] snippet and has .pos .line .text",
    "count": "count(pattern) -> int: how many times a regex matches",
    "split": "split(separator) -> list of str: the text cut at each separator",
    "chunk": "chunk(size, overlap=0) -> list of str: pieces of at most size chars, cut at "
    "line breaks",
    "list_files": "list_files(glob=None) -> list of paths, e.g. list_files('*.py')",
    "read_file": "read_file(path) -> str: one file's text",
    "file_info": "file_info(path) -> dict: a file's size, lines and modification time",
    "search_files": "search_files(pattern, glob=None) -> hits: each matching line as "
    "path:line: text",
    "functions": "functions(glob='*.py') -> list of every function and method of the Python "
    "files, each with .path .name (Class.method) .line .public .doc (docstring's first line, "
    "'' if none) .text (its source); prints as path:name",
    "imports": "imports(glob='*.py') -> list of every import, each with .path .module .local "
    "(the imported file of this directory, '' if none); prints as path -> module",
    "extract": "extract(pattern) -> list of str: every match of a regex in the whole text "
    "(its first group if it has one); extract(kind='ipv4') for a named kind: "
    + ", ".join(analytics.KINDS),
    "tally": "tally(values, top=None, templates=False) -> list of (value, count), most "
    "common first; templates=True counts log messages alike when only numbers, times or ids "
    "differ",
    "stats": "stats(values) -> dict: count, min, max, mean, p50, p90, p95, p99 of the "
    "numbers (durations such as 01:02:03 in seconds)",
    "top_words": "top_words(top=10) -> list of (word, count): the most frequent words of 3 "
    "letters or more, English stop words left out",
}
COMMON = ("slice", "lines", "find", "grep", "count", "split", "chunk")
# Helpers over values rather than the context; in the namespace of every REPL.
ANALYTICS = ("extract", "tally", "stats", "top_words")
DIRECTORY = ("list_files", "read_file", "file_info", "search_files", "functions", "imports")
LINE_CHARS = 300


class Hit:
    """One match: where it is and the text around it."""

    __slots__ = ("doc", "end", "kind", "line", "path", "pos", "text")

    def __init__(
        self, *, pos: int, end: int, line: int, text: str, doc: int, path: str | None, kind: str
    ) -> None:
        self.pos, self.end, self.line, self.text = pos, end, line, text
        self.doc, self.path, self.kind = doc, path, kind

    def where(self) -> str:
        if self.kind == "directory":
            return f"{self.path}:{self.line}, pos {self.pos:,}"
        if self.kind == "documents":
            name = f" ({self.path})" if self.path else ""
            return f"doc {self.doc}{name}, line {self.line:,}, pos {self.pos:,}"
        return f"line {self.line:,}, pos {self.pos:,}"

    def __str__(self) -> str:
        return f"[{self.where()}] {self.text}"

    __repr__ = __str__

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("doc", "path", "pos", "end", "line", "text")}


class Hits(list[Hit]):
    """A list of hits that prints readably. ``limited`` when more matches were left out;
    ``total``, when the caller counted them, is how many there were in all."""

    limited = False
    total: int | None = None
    separator = "\n---\n"

    def __str__(self) -> str:
        if not self:
            return "no hits"
        head = f"{len(self)} hit{'s' if len(self) != 1 else ''}"
        if self.limited and self.total is not None:
            # The total first: a small model answered "how many" with the number of hits shown.
            head = f"{self.total:,} matches, the first {len(self):,} shown"
        elif self.limited:
            head += " (limit reached: there are more; count() gives the total)"
        head += ":\n"
        return head + self.separator.join(str(h) for h in self)

    __repr__ = __str__


def _matches(
    text: Text, pattern: Compiled, *, lines: bool = False, around: int | None = None
) -> Iterator[Match]:
    if not isinstance(text, str):
        yield from text.matches(pattern, lines=lines, around=around)
        return
    line, cursor = 1, 0
    for m in pattern.str.finditer(text):
        s, e = m.span()
        if lines:
            line += text.count("\n", cursor, s)
            cursor = s
        snippet = None if around is None else text[max(0, s - around) : e + around]
        yield s, e, line, snippet


def _values(text: Text, pattern: Compiled, grouped: bool) -> Iterator[str]:
    """Each match's text, or its first group's: read from the match itself on a str; a lazy
    text gives spans only, so the matched text is matched again for its group."""
    if isinstance(text, str):
        for m in pattern.str.finditer(text):
            yield (m.group(1) or "") if grouped else m.group()
        return
    for s, e, _, _ in _matches(text, pattern):
        value = _slice(text, s, e)
        if grouped:
            match = pattern.str.fullmatch(value) or pattern.str.match(value)
            value = (match.group(1) or "") if match else value
        yield value


def _slice(text: Text, start: int, end: int | None) -> str:
    return text[start:end]


class Helpers:
    """The helper functions of one corpus, as bound methods (so ``help(grep)`` works)."""

    def __init__(self, corpus: Corpus) -> None:
        self._corpus = corpus

    def _hit(self, i: int, s: int, e: int, line: int, text: str) -> Hit:
        corpus = self._corpus
        return Hit(
            pos=s,
            end=e,
            line=line,
            text=text,
            doc=i,
            path=corpus.docs[i].name,
            kind=corpus.kind,
        )

    def slice(self, start: int, end: int | None = None, doc: int | str | None = None) -> str:
        """The text from position ``start`` to ``end`` (exclusive), as ``text[start:end]``."""
        corpus = self._corpus
        return _slice(corpus.text(corpus.one(doc)), start, end)

    def lines(self, start: int, end: int | None = None, doc: int | str | None = None) -> str:
        """Lines ``start`` to ``end`` (both included, counted from 1); one line without end."""
        corpus = self._corpus
        text = corpus.text(corpus.one(doc))
        last = start if end is None else end
        return str_lines(text, start, last) if isinstance(text, str) else text.lines(start, last)

    def find(self, text: str, doc: int | str | None = None, limit: int = 1000) -> Hits:
        """Every position where the exact ``text`` occurs (case-sensitive)."""
        return self._search(Compiled(text, literal=True), doc, None, limit)

    def grep(
        self,
        pattern: Any,
        around: int = 200,
        doc: int | str | None = None,
        limit: int = 100,
        flags: int = 0,
    ) -> Hits:
        """Each match of a regex with ``around`` chars either side, at most ``limit`` of them."""
        if not isinstance(around, int) or around < 0:
            raise ValueError("around must be an int of 0 or more")
        return self._search(Compiled(pattern, flags), doc, around, limit)

    def _search(
        self, pattern: Compiled, doc: int | str | None, around: int | None, limit: int
    ) -> Hits:
        corpus, hits = self._corpus, Hits()
        for i in corpus.indices(doc):
            text = corpus.text(i, scan=True)
            for s, e, line, snippet in _matches(text, pattern, lines=True, around=around):
                if len(hits) >= limit:
                    hits.limited = True
                    return hits
                if around is None:
                    snippet = pattern.source
                elif snippet is None:
                    snippet = _slice(text, max(0, s - around), e + around)
                hits.append(self._hit(i, s, e, line, snippet))
        return hits

    def count(self, pattern: Any, doc: int | str | None = None, flags: int = 0) -> int:
        """How many times a regex matches (non-overlapping, as ``re.findall``)."""
        corpus, compiled, total = self._corpus, Compiled(pattern, flags), 0
        for i in corpus.indices(doc):
            text = corpus.text(i, scan=True)
            if isinstance(text, str) and compiled.literal is not None:
                total += text.count(compiled.literal)  # the same count as re, much faster
            elif isinstance(text, str):
                total += sum(1 for _ in compiled.str.finditer(text))
            else:
                total += text.count_matches(compiled)
        return total

    def extract(
        self,
        pattern: Any = None,
        kind: str | None = None,
        doc: int | str | None = None,
        limit: int | None = None,
        flags: int = 0,
    ) -> list[str]:
        """Every match of a regex (or of a named ``kind``) over the whole text, in order: the
        first group where the pattern has groups, else the whole match."""
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError("limit must be a whole number of 1 or more")
        if isinstance(pattern, str) and pattern.lower() in analytics.KINDS and kind is None:
            pattern, kind = None, pattern.lower()  # extract("IPv4") means the kind
        compiled = Compiled(analytics.pattern_of(pattern, kind), flags)
        grouped = compiled.str.groups > 0
        found: list[str] = []
        for i in self._corpus.indices(doc):
            for value in _values(self._corpus.text(i, scan=True), compiled, grouped):
                found.append(value)
                if limit is not None and len(found) >= limit:
                    return found
        return found

    def top_words(self, top: int = 10, doc: int | str | None = None) -> analytics.Counts:
        """The most frequent words of 3 letters or more, English stop words left out."""
        corpus = self._corpus
        texts = (
            block for i in corpus.indices(doc) for block in _line_blocks(corpus.text(i, scan=True))
        )
        return analytics.top_words(texts, top=top)

    def functions(self, glob: str = pysource.PYTHON_GLOB) -> list[pysource.Function]:
        """Every function and method of the Python files (see :mod:`rlmx.context.pysource`)."""
        return pysource.functions(self._corpus, glob)

    def imports(self, glob: str = pysource.PYTHON_GLOB) -> list[pysource.Import]:
        """Every import of the Python files, resolved to this directory's files where it can."""
        return pysource.imports(self._corpus, glob)

    def split(self, separator: str, doc: int | str | None = None) -> list[str]:
        """The text cut at each ``separator`` (an exact text), as ``str.split``."""
        if not isinstance(separator, str) or not separator:
            raise ValueError("separator must be a non-empty str")
        corpus, pieces = self._corpus, []
        for i in corpus.indices(doc):
            carry = ""
            for block in iter_blocks(corpus.text(i, scan=True)):
                parts = (carry + block).split(separator)
                pieces.extend(parts[:-1])
                carry = parts[-1]
            pieces.append(carry)
        return pieces

    def chunk(self, size: int, overlap: int = 0, doc: int | str | None = None) -> list[str]:
        """Pieces of at most ``size`` chars (``overlap`` chars repeated between neighbours), cut
        at a line break where one is in the second half. Small documents are packed together;
        a file's pieces each start with its ``# file:`` header."""
        if not isinstance(size, int) or size < 1:
            raise ValueError("size must be a positive int")
        if not isinstance(overlap, int) or not 0 <= overlap < size:
            raise ValueError("overlap must be an int from 0 to size - 1")
        corpus, pieces, pack = self._corpus, [], ""
        for i in corpus.indices(doc):
            header = corpus.docs[i].header
            text = corpus.text(i, scan=True)
            if isinstance(text, str) and len(header) + len(text) <= size:
                body = header + text
                if pack and len(pack) + 1 + len(body) > size:
                    pieces.append(pack)
                    pack = ""
                pack = f"{pack}\n{body}" if pack else body
                continue
            if pack:
                pieces.append(pack)
                pack = ""
            room = max(1, size - len(header))
            pieces.extend(header + p for p in cut(iter_blocks(text), room, min(overlap, room - 1)))
        if pack:
            pieces.append(pack)
        return pieces

    # Directories ---------------------------------------------------------------------------

    def list_files(self, glob: str | None = None) -> list[str]:
        """The paths of the files, or of those matching ``glob`` (``*.py``, ``src/*``)."""
        corpus = self._corpus
        return [corpus.docs[i].name or "" for i in corpus.matching(glob)]

    def read_file(self, path: str) -> str:
        """One file's whole text."""
        corpus = self._corpus
        text = corpus.text(corpus.index(path))
        return text if isinstance(text, str) else text[:]

    def file_info(self, path: str) -> dict[str, Any]:
        """A file's path, size in bytes, chars, lines and modification time."""
        corpus = self._corpus
        i = corpus.index(path)
        doc, text = corpus.docs[i], corpus.text(i)
        source = doc.source
        modified = None
        if source is not None and source.mtime_ns is not None:
            stamp = datetime.fromtimestamp(source.mtime_ns / 1e9, tz=UTC)
            modified = stamp.isoformat(timespec="seconds")
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return {
            "path": doc.name,
            "bytes": source.size
            if source is not None
            else len(str(text).encode("utf-8", "replace")),
            "chars": len(text),
            "lines": lines,
            "modified": modified,
        }

    def search_files(
        self, pattern: Any, glob: str | None = None, limit: int = 200, flags: int = 0
    ) -> Hits:
        """Each line that matches a regex, as ``path:line: text`` (at most ``limit``)."""
        corpus, compiled, hits = self._corpus, Compiled(pattern, flags), Hits()
        hits.separator = "\n"
        for i in corpus.matching(glob):
            text = corpus.text(i, scan=True)
            last_line = 0
            for s, _, line, _ in _matches(text, compiled, lines=True):
                if line == last_line:
                    continue
                if len(hits) >= limit:
                    hits.limited = True
                    return hits
                last_line = line
                begin = text.rfind("\n", 0, s) + 1 if isinstance(text, str) else s
                stop = text.find("\n", s) if isinstance(text, str) else s + LINE_CHARS
                body = _slice(text, begin, stop if stop >= 0 else None)[:LINE_CHARS]
                hits.append(self._hit(i, s, s, line, body))
        return hits


def build(corpus: Corpus) -> dict[str, Callable[..., Any]]:
    """The helpers for a REPL namespace: the common ones, the file ones for a directory, and
    the counting and statistics ones."""
    helpers = Helpers(corpus)
    names = COMMON + (DIRECTORY if corpus.kind == "directory" else ())
    built: dict[str, Callable[..., Any]] = {name: getattr(helpers, name) for name in names}
    built.update(
        extract=helpers.extract,
        top_words=helpers.top_words,
        tally=analytics.tally,
        stats=analytics.stats,
    )
    return built


def describe(kind: str) -> list[str]:
    """The one-line descriptions of the helpers a context of this kind gets."""
    names = COMMON + (DIRECTORY if kind == "directory" else ()) + ANALYTICS
    return [HELP[name] for name in names]


def _line_blocks(text: Text) -> Iterator[str]:
    """The text in blocks that end at line breaks, so no word is cut in two."""
    rest = ""
    for block in iter_blocks(text):
        block = rest + block
        cut = block.rfind("\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest


def cut(blocks: Iterator[str], size: int, overlap: int) -> Iterator[str]:
    """Pieces of at most ``size`` chars from a stream of text, preferring line breaks."""
    buffer, pos = "", 0
    for block in blocks:
        buffer = buffer[pos:] + block
        pos = 0
        while len(buffer) - pos > size:
            newline = buffer.rfind("\n", pos + size // 2, pos + size)
            end = newline + 1 if newline >= 0 else pos + size
            yield buffer[pos:end]
            pos = max(end - overlap, pos + 1)
    if len(buffer) > pos:
        yield buffer[pos:]
