"""Documents as contexts: a PDF read page by page on demand with citable page names, DOCX and
HTML with section markers, scanned PDFs, a missing extra, directories holding documents, the
confined worker, and runs whose answers cite the page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("pypdf")
pytest.importorskip("docx")

from rlmx import RLM, Assists, Limits
from rlmx.cli.main import main
from rlmx.context import documents
from rlmx.context.converted import ConvertedContext
from rlmx.context.helpers import Helpers
from rlmx.context.sources import from_directory, from_files, from_path
from rlmx.errors import ContextError
from rlmx.sandbox.inprocess import InProcessRepl

from .conftest import repl, scripted
from .document_fixtures import (
    HTML,
    report_pages,
    write_docx,
    write_html,
    write_pdf,
)
from .sandbox_support import ALL_MODES, session
from .test_cli import script

PAGES = 300


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf", report_pages(PAGES, 250))


def opened(path: Path) -> ConvertedContext:
    context = from_path(path)
    assert isinstance(context, ConvertedContext)
    return context


# A PDF, lazily --------------------------------------------------------------------------------


def test_a_300_page_pdf_opens_and_describes_without_converting_its_pages(report: Path) -> None:
    started = time.perf_counter()
    context = opened(report)
    assert context.conversions == 0  # opening reads the page tree only
    handle = context.describe()
    took = time.perf_counter() - started
    assert context.conversions == 1  # the first page, for the preview
    assert (handle.kind, handle.form, handle.parts) == ("directory", "directory", PAGES)
    assert handle.files[:2] == ("report.pdf [page 1]", "report.pdf [page 2]")
    assert "a PDF of 300 pages" in handle.head
    assert "Figures for section 1." in handle.head
    assert handle.chars is None  # unknown until every page is read
    assert any("300 pages, read page by page" in note for note in context.notes)
    assert took < 2.0


def test_reading_page_250_converts_that_page_only(report: Path) -> None:
    context = opened(report)
    value, corpus = context.open_local()
    helpers = Helpers(corpus)
    page = helpers.read_file("report.pdf [page 250]")
    assert "The launch code word is amber falcon." in page
    assert str(value[249]).startswith("# file: report.pdf [page 250]\nQuarterly report")  # type: ignore[index]
    assert helpers.lines(4, 4, doc="report.pdf [page 250]") == page.splitlines()[3]
    assert context.conversions == 2  # page 1 for the handle's preview, and page 250
    assert len(helpers.list_files("report.pdf*")) == PAGES


def test_grep_finds_a_phrase_on_page_250_and_names_the_page(report: Path) -> None:
    context = opened(report)
    _, corpus = context.open_local()
    helpers = Helpers(corpus)
    hits = helpers.grep("amber falcon", around=30)
    assert [h.path for h in hits] == ["report.pdf [page 250]"]
    assert "[report.pdf [page 250]:4," in str(hits)
    first_pass = context.conversions
    assert first_pass == PAGES  # a search reads every page, each converted once
    assert str(helpers.search_files("amber")).startswith("1 hit:\n[report.pdf [page 250]:4,")
    assert helpers.count("north region") == PAGES
    assert context.conversions == first_pass  # later searches read the converted text again


def test_a_search_that_stops_early_converts_only_the_pages_it_read(report: Path) -> None:
    context = opened(report)
    _, corpus = context.open_local()
    hits = Helpers(corpus).grep(r"section 1[0-9]\.", limit=3)
    assert [h.path for h in hits] == [f"report.pdf [page {n}]" for n in (10, 11, 12)]
    assert hits.limited
    assert context.conversions == 13  # the preview's page 1, then pages 2 to 13 (the 4th match)


def test_chunks_of_pages_start_with_their_page(report: Path) -> None:
    context = opened(report)
    _, corpus = context.open_local()
    pieces = Helpers(corpus).chunk(2_000)
    assert pieces[0].startswith("# file: report.pdf [page 1]\n")
    assert sum(p.count("# file: report.pdf [page") for p in pieces) == PAGES


# The scripted model over the PDF --------------------------------------------------------------


def ask(model: object, context: object, sandbox: object = InProcessRepl) -> object:
    rlm = RLM(
        model=model,  # type: ignore[arg-type]
        limits=Limits(max_iterations=4),
        sandbox=sandbox,  # type: ignore[arg-type]
        assists=Assists(route=False),
    )
    return rlm.run("What is the launch code word, and on which page?", context)  # type: ignore[arg-type]


CITE = repl(
    "hit = search_files(r'code word is (\\w+ \\w+)')[0]\n"
    "print(hit)\n"
    "word = hit.text.split('is ')[1].rstrip('.')\n"
    "page = hit.path.split('[page ')[1].rstrip(']')\n"
    "FINAL(f'{word} (page {page})')"
)


def test_a_run_over_the_pdf_answers_with_the_page(report: Path) -> None:
    context = opened(report)
    root = scripted(repl("print(grep('amber falcon', around=20))"), CITE)
    result = ask(root, context)
    assert result.status == "completed", result.error  # type: ignore[attr-defined]
    assert result.answer == "amber falcon (page 250)"  # type: ignore[attr-defined]
    system = root.calls[0][0].content
    assert "report.pdf [page 1]" in system
    assert "a PDF of 300 pages" in system
    assert "[report.pdf [page 250]:4, pos 131] launch code word is amber falcon." in (
        root.calls[1][-1].content
    )


def test_the_first_answer_needs_only_the_pages_it_read(report: Path) -> None:
    context = opened(report)
    root = scripted(repl("FINAL(read_file('report.pdf [page 250]').splitlines()[-1])"))
    result = ask(root, context)
    assert result.answer == "The launch code word is amber falcon."  # type: ignore[attr-defined]
    assert context.conversions == 2  # the preview's first page and page 250


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_the_confined_worker_reads_the_host_converted_pages(mode: str, report: Path) -> None:
    context = opened(report)
    context.describe()
    async with session(mode, context) as sandbox:
        assert context.conversions == 1  # starting the worker converts nothing more
        cell = await sandbox.execute(
            "print(len(list_files()), list_files()[249])\n"
            "print(search_files('amber falcon'))\n"
            "print(read_file('report.pdf [page 3]').splitlines()[1])\n"
            "import os\n"
            f"try:\n    open({str(report)!r}, 'rb')\nexcept OSError as e:\n    print('refused')"
        )
    assert cell.error is None, cell.error
    lines = cell.output.splitlines()
    assert lines[0] == "300 report.pdf [page 250]"
    assert lines[2].startswith("[report.pdf [page 250]:4,")
    assert lines[3] == "Figures for section 3."
    if mode != "none":
        assert lines[4] == "refused"  # the worker reads the spool, never the PDF itself
    assert context.conversions == PAGES  # once each, in the host, as the search asked


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_sandboxed_first_answer_converts_only_the_pages_it_read(mode: str, report: Path) -> None:
    from rlmx.sandbox.process import sandbox_factory

    context = opened(report)
    root = scripted(repl("FINAL(read_file('report.pdf [page 250]').splitlines()[-1])"))
    result = ask(root, context, sandbox_factory(mode))  # type: ignore[arg-type]
    assert result.answer == "The launch code word is amber falcon.", result.error  # type: ignore[attr-defined]
    assert context.conversions == 2  # the preview's first page and page 250, in the host


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_workers_ask_for_a_page_once_and_share_what_was_converted(
    mode: str, report: Path
) -> None:
    context = opened(report)
    async with session(mode, context) as sandbox:
        cell = await sandbox.execute(
            "a = read_file('report.pdf [page 250]')\n"
            "b = context[249]\n"
            "print(a.splitlines()[-1], b.splitlines()[0], len(list_files()))"
        )
        page_250 = "# file: report.pdf [page 250]"
        assert cell.output == f"The launch code word is amber falcon. {page_250} 300\n"
        assert context.conversions == 2
        restarted = await sandbox.execute("import os\nos._exit(7)")
        assert restarted.error is not None
        assert "restored by replaying" in restarted.error
        again = await sandbox.execute("print(read_file('report.pdf [page 250]') == a)")
        assert again.output == "True\n"
        assert context.conversions == 2  # the new worker read the page already converted
    async with session(mode, context) as nested:  # as a nested run over the same context
        cell = await nested.execute("print(read_file('report.pdf [page 7]').splitlines()[1])")
        assert cell.output == "Figures for section 7.\n"
        assert context.conversions == 3


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_forged_document_reads_get_the_worker_replaced(
    mode: str, report: Path, tmp_path: Path
) -> None:
    forge = (
        "import sys, os, json, time\nfd = int(sys.argv[3])\n"
        "body = json.dumps({{'t': 'doc', 'id': 99, 'doc': {doc}}}).encode()\n"
        "os.write(fd, len(body).to_bytes(4, 'big') + body)\ntime.sleep(1)"
    )
    context = opened(report)
    async with session(mode, context) as sandbox:
        await sandbox.execute("kept = 'yes'")
        for doc in ("300", "-1", "True", "'1'", "10 ** 30"):
            cell = await sandbox.execute(forge.format(doc=doc))
            assert cell.error is not None, doc
            assert "invalid message" in cell.error, doc
        assert (await sandbox.execute("print(kept)")).output == "yes\n"
    assert context.conversions == 1  # nothing converted for the forged frames
    text = tmp_path / "notes.txt"
    text.write_text("plain text\n")
    async with session(mode, from_path(text)) as sandbox:  # no documents: no document reads
        cell = await sandbox.execute(forge.format(doc="0"))
        assert cell.error is not None
        assert "invalid message" in cell.error


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_many_document_reads_at_once_are_bounded(mode: str, report: Path) -> None:
    context = opened(report)
    async with session(mode, context) as sandbox:
        cell = await sandbox.execute(
            "import sys, os, json, time\nfd = int(sys.argv[3])\n"
            "frames = b''\n"
            "for n in range(200):\n"
            "    body = json.dumps({'t': 'doc', 'id': 10_000 + n, 'doc': n % 3}).encode()\n"
            "    frames += len(body).to_bytes(4, 'big') + body\n"
            "os.write(fd, frames)\ntime.sleep(0.5)\n"
            "print(read_file('report.pdf [page 250]').splitlines()[-1])"
        )
        assert cell.error is None, cell.error
        assert cell.output == "The launch code word is amber falcon.\n"
    assert context.conversions == 4  # pages 1 to 3 (however often asked) and page 250


def test_a_converted_text_is_cut_at_max_file_bytes(report: Path) -> None:
    from rlmx.context.base import ContextOptions
    from rlmx.context.converted import cap_text

    assert cap_text("abc", 3) == "abc"
    assert cap_text("h\u00e9llo", 2).startswith("h\n[... cut here: the text is 6 bytes")
    context = from_path(report, ContextOptions(max_file_bytes=40))
    _, corpus = context.open_local()
    page = Helpers(corpus).read_file("report.pdf [page 250]")
    assert page.startswith("Quarterly report, chapter 13.\nFigures")
    assert page.endswith("over the limit of 40]\n")


def test_converted_reads_count_against_the_read_budget(report: Path) -> None:
    from rlmx.context.base import ContextOptions
    from rlmx.context.corpus import ReadLimitReached

    context = from_path(report, ContextOptions(max_read_bytes=2_000))
    _, corpus = context.open_local()
    helpers = Helpers(corpus)
    assert "amber falcon" in helpers.read_file("report.pdf [page 250]")
    with pytest.raises(ReadLimitReached, match="read budget of 2,000 bytes"):
        helpers.grep("amber falcon")


def test_document_reads_are_validated_on_the_host(report: Path, tmp_path: Path) -> None:
    from rlmx.sandbox.calls import parse_doc

    context = opened(report)
    assert parse_doc({"t": "doc", "id": 3, "doc": 249}, context) == (3, 249)
    bad: list[dict[str, object]] = [
        {"id": True, "doc": 1},
        {"id": 1, "doc": "1"},
        {"id": 1, "doc": False},
        {"id": 1},
    ]
    for message in bad:
        with pytest.raises(TypeError):
            parse_doc({"t": "doc", **message}, context)
    for doc in (-1, PAGES, 10**40):
        with pytest.raises(ValueError, match="not a converted document"):
            parse_doc({"t": "doc", "id": 1, "doc": doc}, context)
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    (folder / "report.pdf").write_bytes(report.read_bytes())
    mixed = from_directory(folder)
    assert mixed.docs[0]["name"] == "a.txt"
    with pytest.raises(ValueError, match="not a converted document"):
        parse_doc({"t": "doc", "id": 1, "doc": 0}, mixed)  # a text file: the worker reads it
    assert parse_doc({"t": "doc", "id": 1, "doc": 1}, mixed) == (1, 1)
    (tmp_path / "t.txt").write_text("x\n")
    with pytest.raises(ValueError, match="no converted documents"):
        parse_doc({"t": "doc", "id": 1, "doc": 0}, from_path(tmp_path / "t.txt"))
    assert context.conversions == 0


def test_a_run_in_the_default_sandbox_cites_the_page(report: Path) -> None:
    from rlmx.sandbox.process import sandbox_factory

    from .sandbox_support import HAS_KERNEL

    if not HAS_KERNEL:
        pytest.skip("no Landlock or seccomp here")
    result = ask(scripted(CITE), opened(report), sandbox_factory("default"))
    assert result.answer == "amber falcon (page 250)", result.error  # type: ignore[attr-defined]


# Scanned PDFs ----------------------------------------------------------------------------------


def test_a_scanned_pdf_is_a_clear_error_not_an_empty_context(tmp_path: Path) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", [None, None, None])
    with pytest.raises(ContextError, match=r"scan.pdf has no text layer: none of its 3 pages"):
        from_path(scan)


def test_scanned_pages_among_text_pages_get_a_note_and_say_so(tmp_path: Path) -> None:
    mixed = write_pdf(tmp_path / "mixed.pdf", [["Page one text."], None, ["Page three."]])
    context = opened(mixed)
    assert any("1 of 3 pages have no text layer" in n and "pages 2;" in n for n in context.notes)
    _, corpus = context.open_local()
    assert "no text on this page" in Helpers(corpus).read_file("mixed.pdf [page 2]")
    assert Helpers(corpus).read_file("mixed.pdf [page 3]") == "Page three.\n"


def test_a_damaged_pdf_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nthis is not a pdf at all\n")
    with pytest.raises(ContextError, match=r"bad.pdf is not a readable PDF"):
        from_path(bad)


# DOCX and HTML --------------------------------------------------------------------------------


def test_a_docx_file_is_text_with_section_markers(tmp_path: Path) -> None:
    context = opened(write_docx(tmp_path / "contract.docx"))
    handle = context.describe()
    assert (handle.kind, handle.form) == ("text", "str")
    value, corpus = context.open_local()
    assert isinstance(value, str)
    assert value.splitlines()[:5] == [
        "[section: Service agreement]",
        "This agreement is made between Acme and Globex.",
        "",
        "[section: Payment terms]",
        "Invoices are due within 45 days of receipt.",
    ]
    assert "Support | 1200 EUR" in value
    hit = Helpers(corpus).grep("90 days", around=0)[0]
    assert hit.line == value.splitlines().index("[section: Termination]") + 2
    assert context.conversions == 1


def test_an_html_file_is_its_visible_text_with_section_markers(tmp_path: Path) -> None:
    context = opened(write_html(tmp_path / "notes.html"))
    value, _ = context.open_local()
    assert value == (
        "[title: Release notes]\n[section: Version 2.0]\nThe parser is twice as fast.\n\n"
        "[section: Breaking changes]\n- Python 3.8 is no longer supported.\n"
        "- The flag --legacy is gone.\nModule | Status\ncore | stable\n"
        "def main():\n    return 1\n"
    )
    assert "secret" not in str(value)
    assert "color" not in str(value)
    assert "<script>" in HTML


def test_markdown_is_read_as_the_text_it_is(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# Title\n\nSome *text*.\n")
    context = from_path(path)
    assert not isinstance(context, ConvertedContext)
    assert context.open_local()[0] == "# Title\n\nSome *text*.\n"


# Without the extra ---------------------------------------------------------------------------


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "installed", lambda module: False)


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_a_pdf_is_one_line_naming_it(report: Path) -> None:
    with pytest.raises(ContextError) as caught:
        from_path(report)
    assert str(caught.value) == (
        f"{report} is a PDF file; reading PDF files needs the documents extra: "
        "pip install 'rlmx[documents]'"
    )


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_the_cli_says_so_in_one_line(
    report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = script(tmp_path, repl("FINAL('x')"))
    assert main(["run", "q", "-c", str(report), "-m", model]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rlmx[documents]'" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_a_directory_skips_pdfs_with_a_note(report: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(report.read_bytes())
    write_html(folder / "notes.html")  # the standard library converts HTML
    (folder / "a.txt").write_text("plain\n")
    context = from_directory(folder)
    assert [d["name"] for d in context.docs] == ["a.txt", "notes.html"]
    assert any("1 PDF or DOCX files" in n and "rlmx[documents]" in n for n in context.notes)


# Directories ---------------------------------------------------------------------------------


def test_a_directory_mixes_text_files_pages_and_documents(report: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "report.pdf").write_bytes(report.read_bytes())
    write_docx(folder / "contract.docx")
    write_html(folder / "notes.html")
    write_pdf(folder / "scan.pdf", [None])
    (folder / "todo.md").write_text("# Todo\n- ship it\n")
    context = from_directory(folder)
    assert isinstance(context, ConvertedContext)
    handle = context.describe()
    assert handle.parts == 3 + PAGES
    assert "sub/report.pdf [page 1] to [page 300]" in handle.head
    assert any(n.startswith("scan.pdf: left out: no text layer") for n in context.notes)
    assert context.conversions == 0
    _, corpus = context.open_local()
    helpers = Helpers(corpus)
    hits = helpers.search_files(r"45 days|amber falcon|ship it")
    assert [h.path for h in hits] == ["contract.docx", "sub/report.pdf [page 250]", "todo.md"]
    assert helpers.list_files("*.docx") == ["contract.docx"]
    assert helpers.read_file("notes.html").startswith("[title: Release notes]")
    assert context.conversions == PAGES + 2


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_directory_with_documents_in_the_worker(
    mode: str, report: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(report.read_bytes())
    write_docx(folder / "contract.docx")
    (folder / "a.txt").write_text("alpha\n")
    context = from_directory(folder)
    async with session(mode, context) as sandbox:
        cell = await sandbox.execute(
            "print(search_files(r'alpha|45 days|amber'))\nprint(read_file('a.txt'), end='')"
        )
    assert cell.error is None, cell.error
    assert cell.output.splitlines() == [
        "3 hits:",
        "[a.txt:1, pos 0] alpha",
        "[contract.docx:5, pos 127] Invoices are due within 45 days of receipt.",
        "[report.pdf [page 250]:4, pos 131] The launch code word is amber falcon.",
        "alpha",
    ]


def test_several_contexts_refuse_a_document_clearly(report: Path, tmp_path: Path) -> None:
    other = tmp_path / "a.txt"
    other.write_text("x\n")
    with pytest.raises(ContextError, match=r"report.pdf is a document \(PDF, DOCX or HTML\)"):
        from_files([str(other), str(report)])
