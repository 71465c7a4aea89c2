"""Listing a directory's text files: ``.gitignore`` and ``.git/info/exclude``, include/exclude
globs, binaries, symlinks.

Only the listing is made here (paths, sizes, modification times, and the first 8 KiB of each
file to tell text from binary); file contents are read later, on demand. As git and ripgrep
do: version-control directories, hidden files and paths ignored by ``.gitignore`` files or a
repository's ``.git/info/exclude`` are left out, symlinked directories are not followed (so a
symlink loop cannot trap the walk), and a symlinked file is kept only when it resolves to a
file inside the directory.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from rlmx.context.base import ContextOptions
from rlmx.context.documents import document_format, missing_extra
from rlmx.context.scan import SNIFF_BYTES, looks_binary
from rlmx.errors import ContextError

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})
SKIP_DIRS = frozenset({"__pycache__", "node_modules", ".venv", ".tox", ".mypy_cache"})
# A repository's own ignore list, kept out of version control.
GIT_EXCLUDE = ".git/info/exclude"


@dataclass(frozen=True, slots=True)
class FileEntry:
    rel: str
    real: str
    size: int
    mtime_ns: int
    # pdf, docx or html: read through a converter (see rlmx.context.documents)
    format: str | None = None


@dataclass(slots=True)
class Listing:
    root: str
    files: list[FileEntry] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def notes(self) -> list[str]:
        reasons = {
            "binary": "binary",
            "large": "larger than the per-file limit",
            "unreadable": "unreadable",
            "ignored": "ignored by .gitignore or .git/info/exclude",
            "hidden": "hidden",
            "excluded": "excluded by --include/--exclude",
            "symlink": "symlinked directories or links leaving the directory",
            "broken": "broken or looping symlinks",
            "documents": "PDF or DOCX files (install the documents extra to read them: "
            "pip install 'rlmx[documents]')",
        }
        parts = [f"{n:,} {reasons[k]}" for k, n in sorted(self.skipped.items()) if n]
        return [f"{self.root}: skipped {', '.join(parts)}"] if parts else []


class _Ignores:
    """The ignore files met on the way down, deepest first."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []

    def push(self, rel_dir: str, directory: Path) -> int:
        """Add ``directory``'s ignore files; returns how many there were. A repository's
        ``.git/info/exclude`` goes in first: git lets ``.gitignore`` files override it."""
        return self._add(rel_dir, directory / GIT_EXCLUDE) + self._add(
            rel_dir, directory / ".gitignore"
        )

    def _add(self, rel_dir: str, path: Path) -> int:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return 0
        self._specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines)))
        return 1

    def pop(self, count: int) -> None:
        del self._specs[len(self._specs) - count :]

    def ignored(self, rel: str, is_dir: bool) -> bool:
        for base, spec in reversed(self._specs):
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1 :] if base else rel
            result = spec.check_file(sub + "/" if is_dir else sub)
            if result.include is not None:
                return bool(result.include)
        return False


def walk_directory(root: Path, options: ContextOptions) -> Listing:
    """The text files under ``root``, sorted by path. Raises ContextError if there are none."""
    real_root = os.path.realpath(root)
    listing = Listing(root=str(root))
    include = pathspec.GitIgnoreSpec.from_lines(options.include) if options.include else None
    exclude = pathspec.GitIgnoreSpec.from_lines(options.exclude) if options.exclude else None
    ignores = _Ignores()

    def visit(directory: Path, rel_dir: str, top: bool) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError:
            if top:
                raise ContextError(f"cannot read directory {root}: permission denied") from None
            listing.skipped["unreadable"] += 1
            return
        except OSError as exc:
            if top:
                raise ContextError(f"cannot read directory {root}: {exc.strerror}") from None
            listing.skipped["unreadable"] += 1
            return
        pushed = ignores.push(rel_dir, directory) if options.gitignore else 0
        try:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                _visit_entry(entry, rel)
        finally:
            ignores.pop(pushed)

    def _visit_entry(entry: os.DirEntry[str], rel: str) -> None:
        name = entry.name
        if name in VCS_DIRS:
            return
        if name.startswith(".") and not options.hidden:
            listing.skipped["hidden"] += 1
            return
        try:
            info = entry.stat(follow_symlinks=True)
        except OSError:
            listing.skipped["broken"] += 1
            return
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            inside = target.startswith(real_root + os.sep)
            if stat.S_ISDIR(info.st_mode) or not inside:
                listing.skipped["symlink"] += 1
                return
        is_dir = stat.S_ISDIR(info.st_mode)
        if ignores.ignored(rel, is_dir):
            listing.skipped["ignored"] += 1
            return
        if is_dir:
            if name in SKIP_DIRS or (exclude is not None and exclude.match_file(rel + "/")):
                listing.skipped["excluded" if name not in SKIP_DIRS else "ignored"] += 1
                return
            visit(Path(entry.path), rel, False)
            return
        if not stat.S_ISREG(info.st_mode):
            return
        if (include is not None and not include.match_file(rel)) or (
            exclude is not None and exclude.match_file(rel)
        ):
            listing.skipped["excluded"] += 1
            return
        if info.st_size > options.max_file_bytes:
            listing.skipped["large"] += 1
            return
        fmt = document_format(name)
        if fmt is not None and missing_extra(fmt):
            listing.skipped["documents"] += 1
            return
        kind = "" if fmt is not None else _sniff(entry.path)
        if kind:
            listing.skipped[kind] += 1
            return
        real = os.path.realpath(entry.path)
        listing.files.append(FileEntry(rel, real, info.st_size, info.st_mtime_ns, fmt))

    visit(root, "", True)
    if not listing.files:
        why = "; ".join(listing.notes()) or f"{root} is empty"
        raise ContextError(f"directory {root} has no text files to read ({why})")
    return listing


def _sniff(path: str) -> str:
    """'' for a readable text file, else why it is left out."""
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF_BYTES)
    except OSError as exc:
        return "broken" if exc.errno == errno.ELOOP else "unreadable"
    return "binary" if looks_binary(head) else ""
