"""The index of a directory's Python files: functions with their facts, imports resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmx.context.corpus import Corpus
from rlmx.context.helpers import Helpers, build
from rlmx.context.sources import from_directory
from rlmx.dsl.commands import Command, CommandError

from .test_dsl import machine_without_sub_calls

APP = '''\
"""The app."""
import os
from . import util
from .pkg import helpers as h
from .pkg.helpers import check


def handle(user):
    """Handle one user."""
    def inner():
        return 1
    try:
        return check(user)
    except:
        return None


class Door:
    def open(self):
        return open(os.devnull)

    def _lock(self):
        """Locked."""


if os.name == "nt":
    def windows_only():
        pass
'''
UTIL = "def _private():\n    pass\n\n\ndef public():\n    '''Yes.'''\n"
HELPERS = "from .. import util\nimport json\n\n\ndef check(user):\n    return user\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "util.py").write_text(UTIL)
    (tmp_path / "pkg" / "helpers.py").write_text(HELPERS)
    (tmp_path / "pkg" / "broken.py").write_text("def (:\n")
    (tmp_path / "README.md").write_text("def not_python(): pass\n")
    return tmp_path


def namespace(root: Path) -> dict[str, object]:
    return build(from_directory(root).open_local()[1])


def test_functions_are_qualified_and_carry_their_facts(tree: Path) -> None:
    found = namespace(tree)["functions"]()  # type: ignore[operator]
    assert [str(f) for f in found] == [
        "app.py:handle",
        "app.py:handle.inner",
        "app.py:Door.open",
        "app.py:Door._lock",
        "app.py:windows_only",
        "pkg/helpers.py:check",
        "util.py:_private",
        "util.py:public",
    ]
    by_name = {str(f): f for f in found}
    assert by_name["app.py:handle"].doc == "Handle one user."
    assert "except:" in by_name["app.py:handle"].text
    assert (by_name["app.py:handle"].line, by_name["app.py:handle"].end) == (8, 15)
    public = {str(f) for f in found if f.public}
    # A nested function and a name starting with _ are nobody's API.
    assert public == {
        "app.py:handle",
        "app.py:Door.open",
        "app.py:windows_only",
        "pkg/helpers.py:check",
        "util.py:public",
    }
    undocumented = [str(f) for f in found if f.public and not f.doc]
    assert undocumented == ["app.py:Door.open", "app.py:windows_only", "pkg/helpers.py:check"]


def test_imports_are_resolved_to_the_directory_files(tree: Path) -> None:
    found = namespace(tree)["imports"]()  # type: ignore[operator]
    assert [(i.path, i.module, i.local) for i in found] == [
        ("app.py", "os", ""),
        ("app.py", "util", "util.py"),
        ("app.py", "pkg.helpers", "pkg/helpers.py"),
        ("app.py", "pkg.helpers", "pkg/helpers.py"),
        ("pkg/helpers.py", "util", "util.py"),
        ("pkg/helpers.py", "json", ""),
    ]
    assert str(found[1]) == "app.py -> util.py"


def test_on_a_text_the_index_says_what_it_needs() -> None:
    assert "functions" not in build(Corpus.from_value("def f(): pass"))
    with pytest.raises(ValueError, match="Python files of a directory"):
        Helpers(Corpus.from_value("def f(): pass")).functions()


async def test_the_command_language_filters_the_index(tree: Path) -> None:
    machine = machine_without_sub_calls(from_directory(tree).open_local()[1], max_output=2000)
    await machine.execute(Command("functions", {"public": True, "documented": False}))
    assert machine.variables["last"] == [
        "app.py:Door.open",
        "app.py:windows_only",
        "pkg/helpers.py:check",
    ]
    await machine.execute(Command("functions", {"contains": r"except\s*:"}))
    assert machine.variables["last"] == ["app.py:handle"]
    out = await machine.execute(Command("imports", {"local": True}))
    assert machine.variables["last"] == [
        "app.py -> util.py",
        "app.py -> pkg/helpers.py",
        "app.py -> pkg/helpers.py",
        "pkg/helpers.py -> util.py",
    ]
    assert "a list of 4 items, 3 distinct" in out.output


async def test_a_contains_filter_with_nested_repetition_is_refused(tree: Path) -> None:
    """``contains`` is a regex run in the host process, like a pattern: the same refusal."""
    machine = machine_without_sub_calls(from_directory(tree).open_local()[1])
    with pytest.raises(CommandError, match="repeats a repeated group"):
        await machine.execute(Command("functions", {"contains": "(a+)+$"}))
