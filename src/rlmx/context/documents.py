"""Documents read as text: PDF (pypdf, one page at a time), DOCX (python-docx), HTML (the
standard library's ``html.parser``). Markdown is text already and is read as such.

The text carries markers a model can cite: a PDF's pages become entries named
``report.pdf [page 12]`` (see :mod:`rlmx.context.converted`); headings of DOCX and HTML become
lines ``[section: Title]``. PDF and DOCX need the ``documents`` extra
(``pip install 'rlmx[documents]'``); without it, opening one is a one-line
:class:`~rlmx.errors.ContextError` naming the extra, and a directory leaves such files out
with a note. Host side only: the sandbox worker never imports a converter (it reads the
converted text from a spool file; see :mod:`rlmx.context.converted`).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from html.parser import HTMLParser
from typing import IO, Any

from rlmx.context.textio import ContextChanged, decode_file
from rlmx.errors import ContextError

FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
# The module each format needs, and the name of the format in messages.
NEEDS = {"pdf": ("pypdf", "PDF"), "docx": ("docx", "DOCX")}
EXTRA_HINT = "pip install 'rlmx[documents]'"
NO_TEXT = "[no text on this page: it holds only images (a scanned page?)]"


def document_format(name: str) -> str | None:
    """``pdf``, ``docx`` or ``html`` for a file read through a converter, else None."""
    return FORMATS.get(os.path.splitext(name)[1].lower())


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_extra(fmt: str) -> str | None:
    """Why ``fmt`` cannot be read here (its converter is not installed), or None."""
    need = NEEDS.get(fmt)
    if need is None or installed(need[0]):
        return None
    return f"reading {need[1]} files needs the documents extra: {EXTRA_HINT}"


def require(fmt: str, label: str) -> None:
    why = missing_extra(fmt)
    if why is not None:
        raise ContextError(f"{label} is a {NEEDS[fmt][1]} file; {why}")


class PdfFile:
    """A PDF whose pages are converted to text one at a time, on demand.

    Opening reads the page tree only (how many pages, which have fonts); the file is read
    again, and checked against the size and time it had, when a page is first converted.
    """

    def __init__(self, path: str, label: str) -> None:
        self.path, self.label = path, label
        self._lock = threading.Lock()
        info = os.stat(path)
        self.size, self.mtime_ns = info.st_size, info.st_mtime_ns
        reader = self._open()
        self.pages = len(reader.pages)
        self.textless = [n + 1 for n, page in enumerate(reader.pages) if not _has_fonts(page)]
        self._reader: Any = None

    def _open(self) -> Any:
        import pypdf  # the documents extra; checked by require() before

        try:
            reader = pypdf.PdfReader(self.path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise ContextError(f"{self.label} is an encrypted PDF; decrypt it first")
            return reader
        except ContextError:
            raise
        except Exception as exc:  # pypdf raises many kinds on a damaged file
            raise ContextError(f"{self.label} is not a readable PDF: {exc}") from None

    def page_text(self, number: int) -> str:
        """The text of page ``number`` (counted from 1)."""
        with self._lock:
            if self._reader is None:
                info = os.stat(self.path)
                if (info.st_size, info.st_mtime_ns) != (self.size, self.mtime_ns):
                    raise ContextChanged(
                        f"{self.label} changed after the context was opened; open it again"
                    )
                self._reader = self._open()
            try:
                text = self._reader.pages[number - 1].extract_text() or ""
            except Exception as exc:  # a damaged page: say so in its place
                return f"[the text of page {number} could not be extracted: {exc}]\n"
        text = text.strip("\n")
        return f"{text}\n" if text.strip() else NO_TEXT + "\n"


def _has_fonts(page: Any) -> bool:
    """Whether a page can hold text: it has fonts, or a form (which may have its own)."""
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    if not resources:
        return False
    if resources.get("/Font"):
        return True
    xobjects = resources.get("/XObject")
    for ref in (xobjects.get_object() or {}).values() if xobjects is not None else ():
        if ref.get_object().get("/Subtype") == "/Form":
            return True
    return False


def read_checked(path: str, size: int, mtime_ns: int, label: str) -> bytes:
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            raise ContextChanged(f"{label} changed after the context was opened; open it again")
        return file.read()


def docx_text(source: str | IO[bytes], label: str) -> str:
    """A DOCX document's paragraphs and tables in order; headings as ``[section: Title]``."""
    import docx  # the documents extra; checked by require() before

    try:
        document = docx.Document(source)
    except Exception as exc:  # python-docx raises zip, XML and key errors on bad files
        raise ContextError(f"{label} is not a readable DOCX file: {exc}") from None
    out: list[str] = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            for row in block.rows:
                out.append(" | ".join(cell.text.strip() for cell in row.cells))
            out.append("")
            continue
        text = block.text.strip()
        style = (block.style.name or "") if block.style is not None else ""
        if text and (style.startswith("Heading") or style == "Title"):
            out.extend(["", f"[section: {text}]"])
        else:
            out.append(text)
    return _tidy("\n".join(out))


BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset"}
    | {"figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol"}
    | {"p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul"}
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False
        self._heading: list[str] | None = None
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in HIDDEN:
            self._hidden += 1
        elif tag in HEADINGS:
            self._heading = []
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append("" if self._at_line_start() else " | ")
        elif tag in BLOCKS:
            self._pre += tag == "pre"
            self._newline()
            if tag == "li":
                self.out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in HEADINGS and self._heading is not None:
            title = " ".join("".join(self._heading).split())
            self._heading = None
            if title:
                self.out.append(f"\n\n[section: {title}]\n")
        elif tag in BLOCKS:
            self._pre -= tag == "pre" and self._pre > 0
            self._newline()

    def _at_line_start(self) -> bool:
        last = next((piece for piece in reversed(self.out) if piece.strip(" ")), "\n")
        return last.endswith("\n")

    def _newline(self) -> None:
        if not self._at_line_start():
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif self._hidden:
            return
        elif self._heading is not None:
            self._heading.append(data)
        elif self._pre:
            self.out.append(data)
        else:
            text = " ".join(data.split())
            starts_line = not self.out or self.out[-1].endswith(("\n", "- "))
            if text and data[:1].isspace() and not starts_line:
                text = " " + text
            if text and data[-1:].isspace():
                text += " "
            self.out.append(text)


def html_text(data: bytes) -> str:
    """An HTML page's visible text: headings as ``[section: Title]``, blocks on their own
    lines, list items as ``- item``, table cells separated by ``|``; scripts and styles out."""
    parser = _HtmlText()
    parser.feed(decode_file(data))
    parser.close()
    title = " ".join("".join(parser.title).split())
    body = _tidy("".join(parser.out))
    return f"[title: {title}]\n{body}" if title else body


def _tidy(text: str) -> str:
    """Lines stripped of trailing blanks, runs of blank lines cut to one, a final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    kept: list[str] = []
    for line in lines:
        if line.strip() or (kept and kept[-1]):
            kept.append(line if line.strip() else "")
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""
