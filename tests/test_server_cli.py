"""``rlmx serve`` and ``rlmx view`` as a user starts them: real processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rlmx.cli.main import main
from rlmx.trajectory import RunStore

from .test_trajectory_store import nested_run

URL = re.compile(r"rlmx serving (http://127\.0\.0\.1:\d+)(\S*)")


@contextmanager
def rlmx(args: list[str], home: Path, **env: str) -> Iterator[tuple[str, str]]:
    """Start ``rlmx ARGS``; yields the URL it serves and the path it points at."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RLMX_API_TOKEN", "RLMX_DB")}
    environment.update(RLMX_HOME=str(home), **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmx", *args],
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
            pytest.fail("rlmx printed no URL:\n" + "".join(seen))
        yield match.group(1), match.group(2)
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


def test_serve_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with rlmx(["serve", "--port", "0", "--allow-path", str(tmp_path)], tmp_path) as (url, path):
        assert path == "/"
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
        assert httpx.get(url + "/v1/runs").json()["runs"] == []
    assert (tmp_path / "rlmx.db").exists()  # the default store, in $RLMX_HOME


def test_serve_beyond_loopback_needs_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RLMX_API_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "RLMX_API_TOKEN" in capsys.readouterr().err


def test_serve_refuses_a_missing_allowed_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--allow-path", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_view_opens_a_trace(tmp_path: Path) -> None:
    with RunStore(tmp_path / "src.db") as store:
        run_id = nested_run(store)
        trace = tmp_path / "trace.jsonl"
        trace.write_text("".join(line + "\n" for _, line in store.iter_events(run_id)))
    with rlmx(["view", str(trace), "--no-open"], tmp_path / "home") as (url, path):
        assert path == f"/#/runs/{run_id}"
        run = httpx.get(f"{url}/v1/runs/{run_id}").json()
        assert run["status"] == "completed"
        assert run["source"] == "import"
    assert not (tmp_path / "home" / "rlmx.db").exists()  # a trace is viewed, not imported


def test_view_refuses_a_missing_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(tmp_path / "nope.jsonl"), "--no-open"]) == 2
    assert "trace file not found" in capsys.readouterr().err


def test_serve_takes_the_session_settings(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from rlmx.cli.serve import add_server_options, build_config
    from rlmx.config import Settings

    parser = argparse.ArgumentParser()
    add_server_options(parser)
    args = parser.parse_args(
        [
            *("--session-idle", "60", "--session-expire-days", "0.5"),
            *("--max-live-sessions", "3", "--no-chat-sessions", "--sandbox", "none"),
        ]
    )
    config = build_config(args, Settings(env={}))
    assert (config.session_idle_s, config.session_expire_s) == (60, 12 * 3600)
    assert (config.max_live_sessions, config.chat_sessions) == (3, False)
    assert main(["serve", "--port", "0", "--sandbox", "none", "--max-live-sessions", "0"]) == 2
    err = capsys.readouterr().err
    assert "max_live_sessions must be positive" in err
    assert "Traceback" not in err
