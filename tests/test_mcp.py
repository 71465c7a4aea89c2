"""``rlmx mcp``: the tools as a coding agent calls them, through the MCP SDK's own client.

The server runs as a user starts it (``python -m rlmx mcp`` over stdio, and ``--http`` on a
loopback port) with a scripted model, and in memory for the finer points."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp")

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from rlmx.cli.main import main
from rlmx.config import Settings
from rlmx.mcp.config import McpConfig
from rlmx.mcp.service import McpService
from rlmx.mcp.serving import Running
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.trajectory.store import RunStore

from .conftest import repl

# The root model's replies, chosen by what the question says.
RULES = {
    "SECOND": repl("FINAL(f'count={count}')"),
    "FIRST": repl("count = context.count('ERROR')\nFINAL(f'counted {count}')"),
    "LONG": repl("FINAL('x' * 30000)"),
    "LINES": repl("FINAL(f'lines={len(str(context).splitlines())}')"),
}
URL = re.compile(r"rlmx mcp serving (http://127\.0\.0\.1:\d+/mcp)")
TOOLS = {
    "ask",
    "list_runs",
    "get_run",
    "run_events",
    "session_open",
    "session_ask",
    "session_execute",
    "session_close",
    "session_list",
}


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    (root / "logs").mkdir(parents=True)
    (root / "app.log").write_text("INFO start\nERROR disk\nINFO ok\nERROR net\n", encoding="utf-8")
    (root / "logs" / "a.log").write_text("ERROR one\n", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside\n", encoding="utf-8")
    return root


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    rules = [{"contains": k, "reply": v} for k, v in RULES.items()]
    path.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    return path


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def refusal(result: CallToolResult) -> str:
    assert result.is_error
    text = result.content[0]
    assert text.type == "text"
    return text.text


# Real processes: stdio and HTTP -------------------------------------------------------------


def _args(script: Path, allowed: Path, tmp_path: Path) -> list[str]:
    return ["-m", "rlmx", "mcp", "--model", f"scripted:{script}", "--allow-path", str(allowed),
            "--db", str(tmp_path / "rlmx.db")]  # fmt: skip


async def test_stdio_end_to_end(script: Path, allowed: Path, tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=_args(script, allowed, tmp_path),
        env={"RLMX_HOME": str(tmp_path)},
    )
    async with Client(server) as client:
        listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        answer = data(await client.call_tool("ask", {"question": "FIRST?", "path": "app.log"}))
        assert answer["answer"] == "counted 2"
        assert answer["status"] == "completed"
        assert answer["usage"]["root_tokens"] > 0
        run = data(await client.call_tool("get_run", {"run_id": answer["run_id"][:6]}))
        assert run["run_id"] == answer["run_id"]
        assert run["answer"]["text"] == "counted 2"
        assert run["source"] == "mcp"
        events = data(await client.call_tool("run_events", {"run_id": answer["run_id"]}))
        kinds = [e["type"] for e in events["events"]]
        assert kinds[0] == "run_started"
        assert kinds[-1] == "run_finished"
        assert "cell_executed" in kinds
        outside = str(tmp_path / "secret.txt")
        message = refusal(await client.call_tool("ask", {"question": "FIRST", "path": outside}))
        assert "outside the allowed roots" in message
        assert str(allowed) in message
    with RunStore(tmp_path / "rlmx.db") as store:  # recorded where --db said
        assert [r.id for r in store.list_runs()] == [answer["run_id"]]


@contextmanager
def http_server(args: list[str], home: Path, **env: str) -> Iterator[str]:
    """``python -m rlmx mcp --http ...`` on a free loopback port; yields the endpoint URL."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RLMX_API_TOKEN", "RLMX_DB")}
    environment.update(RLMX_HOME=str(home), **env)
    process = subprocess.Popen(
        [sys.executable, *args, "--http", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            match = URL.search(line)
            if match:
                break
        else:
            pytest.fail("rlmx mcp printed no URL:\n" + "".join(seen))
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()
            if process.stderr is not None:
                process.stderr.close()
        assert code == 0, code


async def test_http_serves_20_concurrent_calls(script: Path, allowed: Path, tmp_path: Path) -> None:
    with http_server(_args(script, allowed, tmp_path), tmp_path) as url:
        async with Client(url) as client:
            calls = [
                client.call_tool("ask", {"question": "LINES?", "text": "x\n" * n})
                for n in range(1, 21)
            ]
            results = [data(r) for r in await asyncio.gather(*calls)]
            assert [r["answer"] for r in results] == [f"lines={n}" for n in range(1, 21)]
            assert {r["status"] for r in results} == {"completed"}
            assert len({r["run_id"] for r in results}) == 20
            listed = data(await client.call_tool("list_runs", {"limit": 100}))
            assert listed["count"] == 20
            message = refusal(await client.call_tool("ask", {"question": "x", "path": "../"}))
            assert "outside the allowed roots" in message


async def test_http_with_a_token_needs_it(script: Path, allowed: Path, tmp_path: Path) -> None:
    args = _args(script, allowed, tmp_path)
    with http_server(args, tmp_path, RLMX_API_TOKEN="s3cret") as url:
        refused = httpx.post(url, json={}, headers={"Accept": "application/json"})
        assert refused.status_code == 401
        headers = {"Authorization": "Bearer s3cret"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            answer = data(await client.call_tool("ask", {"question": "LINES", "text": "a\nb"}))
            assert answer["answer"] == "lines=2"


# In memory: the tools' finer points ---------------------------------------------------------


@asynccontextmanager
async def connected(tmp_path: Path, allowed: Path, **overrides: Any) -> AsyncIterator[Client]:
    model = ScriptedModel(rules=[Rule(k, v) for k, v in RULES.items()])
    config = McpConfig(
        allowed_roots=(allowed,) if allowed else (),
        db_path=tmp_path / "mem.db",
        settings=Settings(env={}),
        **overrides,
    )
    running = Running(McpService(config, store=RunStore(config.database), root=model, sub=model))
    await running.start()
    try:
        async with Client(running.server) as client:
            yield client
    finally:
        await running.aclose()


async def test_a_long_answer_is_cut_with_a_marker_and_read_in_windows(
    tmp_path: Path, allowed: Path
) -> None:
    async with connected(tmp_path, allowed, result_chars=1000) as client:
        answer = data(await client.call_tool("ask", {"question": "LONG", "text": "t"}))
        assert answer["answer"].startswith("x" * 1000 + "\n[... truncated: 29,000 more characters")
        assert "get_run" in answer["answer"]
        run_id = answer["run_id"]
        first = data(await client.call_tool("get_run", {"run_id": run_id}))["answer"]
        assert first["chars"] == 30000
        assert first["next_offset"] == 1000
        last = data(await client.call_tool("get_run", {"run_id": run_id, "offset": 29500}))
        assert last["answer"] == {"text": "x" * 500, "chars": 30000, "next_offset": None}
        page = data(await client.call_tool("run_events", {"run_id": run_id, "limit": 2}))
        assert [e["idx"] for e in page["events"]] == [0, 1]
        events, after = page["events"], page["next_after"]
        while after is not None:  # the budget of a reply cuts the pages short: read on
            more = data(await client.call_tool("run_events", {"run_id": run_id, "after": after}))
            events, after = events + more["events"], more["next_after"]
        assert [e["idx"] for e in events] == list(range(len(events)))
        finished = events[-1]
        assert finished["type"] == "run_finished"
        assert "[... truncated:" in finished["result"]["answer"]


async def test_contexts_a_folder_text_and_refusals(tmp_path: Path, allowed: Path) -> None:
    (allowed / "out").symlink_to(tmp_path / "secret.txt")
    async with connected(tmp_path, allowed, max_iterations=5, timeout_s=60) as client:
        folder = data(await client.call_tool("ask", {"question": "LINES", "path": "logs"}))
        assert folder["status"] == "completed"
        absolute = str(allowed / "app.log")
        whole = data(await client.call_tool("ask", {"question": "FIRST", "path": absolute}))
        assert whole["answer"] == "counted 2"

        async def refused(**arguments: Any) -> str:
            return refusal(await client.call_tool("ask", {"question": "FIRST", **arguments}))

        assert "outside the allowed roots" in await refused(path="out")
        assert "no file or folder 'nope.txt'" in await refused(path="nope.txt")
        assert "no context given" in await refused()
        assert "cap of 5" in await refused(text="t", max_iterations=6)
        assert "cap of 60 s" in await refused(text="t", timeout_s=61)
        assert "the question is empty" in refusal(
            await client.call_tool("ask", {"question": " ", "text": "t"})
        )
        assert "no run 'zzz'" in refusal(await client.call_tool("get_run", {"run_id": "zzz"}))
        limit = refusal(await client.call_tool("list_runs", {"limit": 0}))
        assert "between 1 and 100" in limit


async def test_without_allowed_roots_only_text(tmp_path: Path) -> None:
    async with connected(tmp_path, None, max_text_chars=10) as client:  # type: ignore[arg-type]
        message = refusal(await client.call_tool("ask", {"question": "Q", "path": "app.log"}))
        assert "reads no files" in message
        assert "--allow-path" in message
        too_long = refusal(await client.call_tool("ask", {"question": "Q", "text": "x" * 11}))
        assert "above this server's limit of 10" in too_long


async def test_session_keeps_variables_between_questions(tmp_path: Path, allowed: Path) -> None:
    async with connected(tmp_path, allowed, max_sessions=1) as client:
        opened = data(await client.call_tool("session_open", {"path": "app.log"}))
        sid = opened["session_id"]
        assert opened["context"]["lines"] == 4
        first = data(
            await client.call_tool("session_ask", {"session_id": sid, "question": "FIRST"})
        )
        second = data(
            await client.call_tool("session_ask", {"session_id": sid, "question": "SECOND"})
        )
        assert (first["answer"], second["answer"]) == ("counted 2", "count=2")
        assert second["question"] == 2
        cell = data(
            await client.call_tool(
                "session_execute", {"session_id": sid, "code": "print(count*10)"}
            )
        )
        assert cell["output"].strip() == "20"
        assert cell["error"] is None
        broken = data(await client.call_tool("session_execute", {"session_id": sid, "code": "1/0"}))
        assert broken["error_type"] == "ZeroDivisionError"
        full = refusal(await client.call_tool("session_open", {"text": "more"}))
        assert "session_close one first" in full
        listed = data(await client.call_tool("session_list", {}))
        assert [s["session_id"] for s in listed["sessions"]] == [sid]
        closed = data(await client.call_tool("session_close", {"session_id": sid}))
        assert closed["closed"] is True
        gone = refusal(await client.call_tool("session_ask", {"session_id": sid, "question": "Q"}))
        assert "no open session" in gone
        runs = data(await client.call_tool("list_runs", {}))
        assert runs["count"] == 2  # each question a recorded run


async def test_a_named_session_continues_in_a_new_server(tmp_path: Path, allowed: Path) -> None:
    async with connected(tmp_path, allowed) as client:
        opened = data(await client.call_tool("session_open", {"path": "app.log", "name": "logs"}))
        assert opened["session_id"] == "logs"
        data(await client.call_tool("session_ask", {"session_id": "logs", "question": "FIRST"}))
        closed = data(await client.call_tool("session_close", {"session_id": "logs"}))
        assert closed["kept_in_store"] is True
    async with connected(tmp_path, allowed) as client:  # the same store, a new process's state
        again = data(await client.call_tool("session_open", {"path": "app.log", "name": "logs"}))
        assert again["earlier_questions"] == 1
        second = data(
            await client.call_tool("session_ask", {"session_id": "logs", "question": "SECOND"})
        )
        assert second["answer"] == "count=2"  # the variable rebuilt by replaying the first cell
        twice = refusal(await client.call_tool("session_open", {"path": "app.log", "name": "logs"}))
        assert "already open" in twice


# The command line ---------------------------------------------------------------------------


def test_cli_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RLMX_API_TOKEN", raising=False)
    assert main(["mcp", "--allow-path", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["mcp", "--http", "--host", "0.0.0.0"]) == 2
    assert "RLMX_API_TOKEN" in capsys.readouterr().err
    assert main(["mcp", "--model", f"scripted:{tmp_path / 'none.json'}"]) == 2
    err = capsys.readouterr().err
    assert "scripted model file not found" in err
    assert "Traceback" not in err
    assert main(["mcp", "--max-iterations", "0", "--model", "scripted:x"]) == 2
    assert "max_iterations must be positive" in capsys.readouterr().err


# The embedded models, once (not in make test: pytest -m slow, under flock) ------------------


@pytest.mark.slow
@pytest.mark.local
async def test_embedded_models_over_stdio(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    home = os.environ.get("RLMX_HOME", str(Path.home() / ".rlmx-home"))
    root = tmp_path / "repo"
    root.mkdir()
    lines = [f"2024-05-0{d % 9 + 1} INFO request {d} served in {d % 97} ms" for d in range(400)]
    lines.insert(271, "2024-05-03 WARN the deployment password is BLUE-HERON-42, rotate it")
    (root / "service.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["-m", "rlmx", "mcp", "--allow-path", str(root), "--db", str(tmp_path / "rlmx.db")]
    server = StdioServerParameters(
        command=sys.executable,
        args=[*args, "--max-iterations", "8"],
        env={"RLMX_HOME": home},
    )
    async with Client(server) as client:
        question = "What is the deployment password?"
        answer = data(await client.call_tool("ask", {"question": question, "path": "service.log"}))
        print(json.dumps(answer, indent=1))
        assert answer["status"] == "completed"
        assert "BLUE-HERON-42" in (answer["answer"] or "")
