"""Small document files made in the test run, no network: PDFs (pages of text written as
content streams, or of an image only, like a scan), DOCX files and HTML pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
)


def _name(value: str) -> NameObject:
    return NameObject(value)


def write_pdf(path: Path, pages: Sequence[Sequence[str] | None]) -> Path:
    """A PDF with one page per item: its lines of text in Helvetica, or (None) a page that
    holds only an image, as a scanner makes."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                _name("/Type"): _name("/Font"),
                _name("/Subtype"): _name("/Type1"),
                _name("/BaseFont"): _name("/Helvetica"),
            }
        )
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        stream = DecodedStreamObject()
        if lines is None:
            image = DecodedStreamObject()
            image.set_data(b"\x80" * 64)
            image.update(
                {
                    _name("/Type"): _name("/XObject"),
                    _name("/Subtype"): _name("/Image"),
                    _name("/Width"): NumberObject(8),
                    _name("/Height"): NumberObject(8),
                    _name("/ColorSpace"): _name("/DeviceGray"),
                    _name("/BitsPerComponent"): NumberObject(8),
                }
            )
            stream.set_data(b"q 500 0 0 700 50 50 cm /Im0 Do Q")
            resources = {
                _name("/XObject"): DictionaryObject({_name("/Im0"): writer._add_object(image)})
            }
        else:
            ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
            for line in lines:
                text = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"({text}) Tj T*")
            ops.append("ET")
            stream.set_data("\n".join(ops).encode("latin-1"))
            resources = {_name("/Font"): DictionaryObject({_name("/F1"): font})}
        page[_name("/Contents")] = writer._add_object(stream)
        page[_name("/Resources")] = DictionaryObject(resources)
    with open(path, "wb") as file:
        writer.write(file)
    return path


def report_pages(count: int = 300, secret_page: int = 250) -> list[list[str]]:
    """The lines of a long report; page ``secret_page`` alone holds a phrase to find."""
    pages = []
    for n in range(1, count + 1):
        lines = [f"Quarterly report, chapter {1 + n // 20}.", f"Figures for section {n}."]
        lines.append("Revenue in the north region grew by a small margin.")
        if n == secret_page:
            lines.append("The launch code word is amber falcon.")
        pages.append(lines)
    return pages


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Service agreement", level=0)
    document.add_paragraph("This agreement is made between Acme and Globex.")
    document.add_heading("Payment terms", level=1)
    document.add_paragraph("Invoices are due within 45 days of receipt.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Item", "Price"), ("Support", "1200 EUR")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Termination", level=1)
    document.add_paragraph("Either party may end this agreement with 90 days notice.")
    document.save(str(path))
    return path


HTML = """<!doctype html><html><head><title>Release notes</title>
<style>body { color: red }</style><script>var secret = "not text";</script></head>
<body><h1>Version 2.0</h1><p>The   parser is <b>twice</b> as fast.</p>
<h2>Breaking changes</h2><ul><li>Python 3.8 is no longer supported.</li><li>The flag
<code>--legacy</code> is gone.</li></ul>
<table><tr><th>Module</th><th>Status</th></tr><tr><td>core</td><td>stable</td></tr></table>
<pre>def main():
    return 1</pre></body></html>
"""


def write_html(path: Path) -> Path:
    path.write_text(HTML, encoding="utf-8")
    return path
