"""Contexts in the confined worker, in every sandbox mode: the helpers read the user's files
directly (no copy), a directory's files one Landlock rule each, and nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rlmx.context import ContextOptions
from rlmx.context.sources import from_directory, from_file, from_files, from_stream

from .sandbox_support import ALL_MODES, CONFINED_MODES, session

LOG = "".join(
    f"2024-01-01T00:00:{i % 60:02d} {'ERROR' if i % 7 == 0 else 'INFO'} req={i}\n"
    for i in range(3000)
)


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_large_file_is_a_lazy_text_in_the_worker(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(LOG)
    context = from_file(path, ContextOptions(max_str_bytes=10_000))
    context.describe()
    async with session(mode, context) as sandbox:  # type: ignore[arg-type]
        cell = await sandbox.execute(
            "print(type(context).__name__, len(context))\n"
            "print(count(r'ERROR'), context.count('ERROR'))\n"
            "print(lines(3, 3))\n"
            "print(grep(r'req=2999', around=0)[0].line)\n"
            "print(''.join(chunk(20_000)) == context[:], slice(0, 19))"
        )
        assert cell.error is None, cell.error
        assert cell.output.splitlines() == [
            f"LazyText {len(LOG)}",
            f"{LOG.count('ERROR')} {LOG.count('ERROR')}",
            LOG.splitlines()[2],
            "3000",
            "True 2024-01-01T00:00:00",
        ]


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_small_file_is_a_str_decoded_once(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_bytes(b"\xef\xbb\xbfThe vault code is ZETA-42.\n")
    context = from_file(path)
    async with session(mode, context) as sandbox:  # type: ignore[arg-type]
        cell = await sandbox.execute("print(type(context).__name__, repr(context[:9]))")
        assert cell.output == "str 'The vault'\n"


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_documents_and_a_spooled_stream(mode: str, tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"d{i}.txt"
        path.write_text(f"doc {i} says {'yes' if i == 1 else 'no'}\n")
        paths.append(str(path))
    async with session(mode, from_files(paths)) as sandbox:  # type: ignore[arg-type]
        cell = await sandbox.execute("print(type(context).__name__, grep('yes')[0].doc)")
        assert cell.output == "list 1\n"
    stream = from_stream(io.BytesIO(b"piped 123\n"), "<stdin>")
    async with session(mode, stream) as sandbox:  # type: ignore[arg-type]
        cell = await sandbox.execute("print(context.split()[-1])")
        assert cell.output == "123\n"


def make_repo(root: Path, files: int = 80) -> Path:
    (root / "src").mkdir(parents=True)
    for i in range(files):
        (root / "src" / f"mod{i:03d}.py").write_text(f"def handler_{i}(x):\n    return x + {i}\n")
    (root / ".env").write_text("API_KEY=sk-secret\n")
    (root / "notes.txt").write_text("excluded notes\n")
    (root / ".gitignore").write_text("*.tmp\n")
    (root / "cache.tmp").write_text("ignored\n")
    return root


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_directory_is_read_on_demand(mode: str, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    context = from_directory(repo, ContextOptions(exclude=("notes.txt",)))
    async with session(mode, context) as sandbox:  # type: ignore[arg-type]
        cell = await sandbox.execute(
            "print(len(list_files()), len(context))\n"  # more files than open-file slots
            "print(search_files(r'def handler_7\\b')[0])\n"
            "print(count(r'return x'))\n"
            "print(read_file('src/mod042.py').splitlines()[1])\n"
            "print(file_info('src/mod001.py')['lines'])"
        )
        assert cell.error is None, cell.error
        assert cell.output.splitlines() == [
            "80 80",
            "[src/mod007.py:1, pos 0] def handler_7(x):",
            "80",
            "    return x + 42",
            "2",
        ]


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_confined_code_reaches_only_the_files_of_the_context(
    mode: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", files=3)
    context = from_directory(repo, ContextOptions(exclude=("notes.txt",)))
    async with session(mode, context) as sandbox:  # type: ignore[arg-type]
        for name in (".env", "notes.txt", "cache.tmp"):
            cell = await sandbox.execute(f"print(open({str(repo / name)!r}).read())")
            assert "sk-secret" not in cell.output
            assert "notes" not in cell.output
            assert cell.error is not None
            assert "PermissionError" in cell.error or "FileNotFoundError" in cell.error
        cell = await sandbox.execute(f"print(open({str(repo / 'src' / 'mod001.py')!r}).read())")
        assert "handler_1" in cell.output  # a context file: readable, read-only


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_file_that_changes_under_the_worker_is_a_clear_error(
    mode: str, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    path.write_text(LOG)
    context = from_file(path, ContextOptions(max_str_bytes=10_000))
    async with session(mode, context) as sandbox:  # type: ignore[arg-type]
        path.write_text(LOG + "one more line\n")
        cell = await sandbox.execute("count('ERROR')")
        assert cell.error is not None
        assert "changed after the context was opened" in cell.error
        assert "ContextChanged" in cell.error


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_helper_names_stay_free_for_the_models_variables(mode: str) -> None:
    async with session(mode, "some text") as sandbox:
        assert await sandbox.get_variable("grep") is None
        cell = await sandbox.execute("SHOW_VARS()")
        assert cell.output == "No variables yet.\n"
        await sandbox.execute("count = 3")
        assert await sandbox.get_variable("count") == "3"
        cell = await sandbox.execute("SHOW_VARS()")
        assert cell.output == "count: int\n"
