"""``/v1/sessions`` and chat sessions over real HTTP on loopback: questions that share one REPL,
a session that outlives the server, conversations continued by the OpenAI endpoint, and every
refusal answered with a clear JSON error."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import repl
from .test_server_support import Served, follow, make_config, serve, wait_for_event

BOOK = "Chapter 1\n" + "filler line\n" * 200 + "the vault code is ZETA-42\nThe end.\n"
OCTET = {"content-type": "application/octet-stream"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


def scripts(served: Served) -> tuple[str, str]:
    """A root model that answers by question (rules, so that a new process answers the same)
    and a sub-model with one answer only: a second sub-call would exhaust it."""
    root = served.script(
        "root.json",
        rules={
            "GOT:": repl("FINAL(secret)"),
            "Q-TWO": repl("FINAL(secret.lower() + ' in ' + str(len(lines_seen)) + ' lines')"),
            "Q-ONE": repl(
                "lines_seen = context.splitlines()\n"
                "hit = [x for x in lines_seen if 'code' in x][0]\n"
                "secret = llm_query('SUB ' + hit).strip()\n"
                "print('GOT:' + secret)"
            ),
        },
    )
    sub = served.script("sub.json", "ZETA-42")
    return root, sub


def upload(client: httpx.Client, text: str = BOOK) -> str:
    response = client.post("/v1/contexts", content=text.encode(), headers=OCTET)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["id"]
    return context_id


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


def ask(client: httpx.Client, name: str, query: str, **body: Any) -> dict[str, Any]:
    """Ask, follow the run's events to its end, and return the run."""
    response = client.post(f"/v1/sessions/{name}/questions", json={"query": query, **body})
    assert response.status_code == 202, response.text
    asked = response.json()
    assert asked["session"] == name
    assert asked["events_url"] == f"/v1/runs/{asked['id']}/events"
    events = follow(client, asked["id"])
    assert events[-1].event == "end"
    assert events[-2].data["type"] == "run_finished"
    run: dict[str, Any] = client.get(asked["url"]).json()
    return run


def open_session(client: httpx.Client, root: str, sub: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/sessions", json={"model": root, "sub_model": sub, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_session_answers_questions_that_share_its_variables(served: Served) -> None:
    root, sub = scripts(served)
    with served.client() as client:
        context_id = upload(client)
        created = open_session(client, root, sub, context_ids=[context_id], name="book")
        assert created["name"] == "book"
        assert created["context_id"] == hashlib.sha256(BOOK.encode()).hexdigest()
        assert created["url"] == "/v1/sessions/book"
        first = ask(client, "book", "Q-ONE: what is the vault code?")
        second = ask(client, "book", "Q-TWO: the code in lower case, and the line count?")
        assert (first["status"], first["answer"], first["sub_calls"]) == (
            "completed",
            "ZETA-42",
            1,
        )
        assert second["answer"] == f"zeta-42 in {len(BOOK.splitlines())} lines"
        assert second["sub_calls"] == 0  # the variables of the first question were still there
        assert second["source"] == "server"

        listed = client.get("/v1/sessions").json()["sessions"]
        assert [(s["name"], s["questions"], s["live"]) for s in listed] == [("book", 2, True)]
        assert listed[0]["context_id"] == created["context_id"]
        assert listed[0]["bytes"] > 0
        assert listed[0]["used_at"] >= listed[0]["created_at"]

        got = client.get("/v1/sessions/book").json()
        assert [(h["question"][:5], h["answer"], h["run_id"]) for h in got["history"]] == [
            ("Q-ONE", "ZETA-42", first["id"]),
            ("Q-TWO", second["answer"], second["id"]),
        ]
        assert got["origin"]["context_ids"] == [context_id]
        assert got["cells"] == 3
        assert got["worker_running"] is True

        assert client.delete("/v1/sessions/book").json() == {"name": "book", "deleted": True}
        assert client.get("/v1/sessions").json()["sessions"] == []
        error_of(client.get("/v1/sessions/book"), 404)
    assert not (served.config.sessions_dir / "book.json").exists()


def test_a_restarted_server_continues_a_session_without_asking_the_sub_model_again(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    (config.allowed_roots[0] / "book.txt").write_text(BOOK, encoding="utf-8")
    first_server = serve(config)
    served = next(first_server)
    root, sub = scripts(served)
    with served.client() as client:
        name = open_session(client, root, sub, paths=["book.txt"])["name"]
        assert ask(client, name, "Q-ONE: what is the vault code?")["answer"] == "ZETA-42"
    next(first_server, None)  # the server stops: its worker goes with it

    again = serve(config)  # a new app over the same store
    served = next(again)
    try:
        with served.client() as client:
            assert client.get(f"/v1/sessions/{name}").json()["live"] is False
            second = ask(client, name, "Q-TWO: the code in lower case, and the line count?")
            assert second["status"] == "completed", second
            assert second["answer"] == f"zeta-42 in {len(BOOK.splitlines())} lines"
            assert second["sub_calls"] == 0
            history = client.get(f"/v1/sessions/{name}").json()["history"]
            assert [h["answer"] for h in history] == ["ZETA-42", second["answer"]]
    finally:
        next(again, None)


def test_questions_of_one_session_go_one_at_a_time(served: Served) -> None:
    root = served.script(
        "slow.json",
        rules={"DOUBLE": repl("n = n * 2\nFINAL(str(n))"), "SET": repl("n = 20\nFINAL('set')")},
        latency_s=0.3,
    )
    with served.client() as client:
        name = open_session(client, root, root, context_ids=[upload(client)])["name"]
        ids = [
            client.post(f"/v1/sessions/{name}/questions", json={"query": q}).json()["id"]
            for q in ("SET n", "DOUBLE n", "DOUBLE n")
        ]
        runs = []
        for run_id in ids:
            follow(client, run_id)
            runs.append(client.get(f"/v1/runs/{run_id}").json())
    assert [r["answer"] for r in runs] == ["set", "40", "80"]
    for earlier, later in itertools.pairwise(runs):
        assert later["started_at"] >= earlier["finished_at"]


def test_an_idle_session_lets_its_worker_go(tmp_path: Path) -> None:
    server = serve(make_config(tmp_path, session_idle_s=0.2))
    served = next(server)
    try:
        root = served.script(
            "n.json", rules={"USE": repl("FINAL(str(n * 7))"), "SET": repl("n = 6\nFINAL('set')")}
        )
        with served.client() as client:
            name = open_session(client, root, root, context_ids=[upload(client)])["name"]
            ask(client, name, "SET n")
            deadline = time.monotonic() + 10
            while client.get(f"/v1/sessions/{name}").json()["worker_running"]:
                assert time.monotonic() < deadline, "the idle worker was never let go"
                time.sleep(0.05)
            assert ask(client, name, "USE n")["answer"] == "42"  # restored by replay
    finally:
        next(server, None)


def chat(client: httpx.Client, model: str, messages: list[dict[str, str]], **rlm: Any) -> Any:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if rlm:
        body["rlm"] = rlm
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def test_the_openai_endpoint_continues_a_conversation_over_the_same_context(
    served: Served,
) -> None:
    root, sub = scripts(served)
    model = "rlm:" + root
    document = {"role": "user", "content": BOOK}
    opening = [document, {"role": "user", "content": "Q-ONE: what is the vault code?"}]
    with served.client() as client:
        first = chat(client, model, opening, sub_model=sub)
        session = first.headers["x-rlmx-session"]
        answer = first.json()["choices"][0]["message"]["content"]
        assert answer == "ZETA-42"

        followup = [
            *opening,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "Q-TWO: lower case, and the line count?"},
        ]
        second = chat(client, model, followup, sub_model=sub)
        assert second.headers["x-rlmx-session"] == session
        lines = len(BOOK.splitlines())
        assert second.json()["choices"][0]["message"]["content"] == f"zeta-42 in {lines} lines"
        run = client.get(f"/v1/runs/{second.headers['x-rlmx-run-id']}").json()
        assert run["sub_calls"] == 0
        assert run["query"] == "Q-TWO: lower case, and the line count?"  # only the new message

        # The same context in a new conversation: a session of its own, which knows no secret.
        fresh = [*opening, {"role": "assistant", "content": "I do not know."}, followup[-1]]
        third = client.post("/v1/chat/completions", json={"model": model, "messages": fresh})
        other = third.headers["x-rlmx-session"]
        assert other != session
        assert "zeta-42" not in third.text  # no `secret` in that REPL
        assert len(client.get(f"/v1/sessions/{other}").json()["history"]) == 1

        one_off = chat(client, model, opening, sub_model=sub, session=False)
        assert "x-rlmx-session" not in one_off.headers
        history = client.get(f"/v1/sessions/{session}").json()["history"]
    assert [h["answer"] for h in history] == ["ZETA-42", f"zeta-42 in {lines} lines"]


def test_a_named_chat_session_is_opened_then_continued(served: Served) -> None:
    root = served.script(
        "named.json",
        rules={"USE": repl("FINAL(str(n * 7))"), "SET": repl("n = 6\nFINAL('set')")},
    )
    document = {"role": "user", "content": BOOK}
    with served.client() as client:
        first = chat(
            client, "rlm:" + root, [document, {"role": "user", "content": "SET n"}], session="notes"
        )
        assert first.headers["x-rlmx-session"] == "notes"
        second = chat(
            client, "rlm:" + root, [document, {"role": "user", "content": "USE n"}], session="notes"
        )
        assert second.json()["choices"][0]["message"]["content"] == "42"
        other = {"role": "user", "content": BOOK + "another text"}
        refused = client.post(
            "/v1/chat/completions",
            json={"model": "rlm:" + root, "messages": [other], "rlm": {"session": "notes"}},
        )
        assert "was opened over another context" in error_of(refused, 409)


def test_bad_session_requests_get_clear_errors(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text(BOOK, encoding="utf-8")
    server = serve(config)
    served = next(server)
    try:
        root, sub = scripts(served)
        with served.client() as client:
            assert "no session 'nope'" in error_of(
                client.post("/v1/sessions/nope/questions", json={"query": "hi"}), 404
            )
            error_of(client.get("/v1/sessions/nope"), 404)
            error_of(client.delete("/v1/sessions/nope"), 404)
            refused = client.post("/v1/sessions", json={"paths": [str(outside)]})
            assert "outside the allowed roots" in error_of(refused, 403)
            assert "outside the allowed roots" in error_of(
                client.post("/v1/sessions", json={"paths": ["../outside.txt"]}), 403
            )
            assert "no context given" in error_of(client.post("/v1/sessions", json={}), 422)
            assert "unknown field 'text'" in error_of(
                client.post("/v1/sessions", json={"text": "hello"}), 422
            )
            missing = "0" * 64
            assert "upload it with POST /v1/contexts" in error_of(
                client.post("/v1/sessions", json={"context_ids": [missing]}), 422
            )
            context_id = upload(client)
            bad_name = client.post(
                "/v1/sessions", json={"context_ids": [context_id], "name": "../x"}
            )
            assert "is not a session name" in error_of(bad_name, 422)
            name = open_session(client, root, sub, context_ids=[context_id], name="kept")["name"]
            taken = client.post("/v1/sessions", json={"context_ids": [context_id], "name": name})
            assert "a session named 'kept' exists" in error_of(taken, 409)
            bad_limits = client.post(
                f"/v1/sessions/{name}/questions",
                json={"query": "hi", "limits": {"max_iterations": 0}},
            )
            error_of(bad_limits, 422)
    finally:
        next(server, None)

    # After a restart, the session's upload is gone: asking it says so.
    (config.contexts_dir / context_id).unlink()
    server = serve(config)
    served = next(server)
    try:
        with served.client() as client:
            gone = client.post("/v1/sessions/kept/questions", json={"query": "Q-ONE"})
            message = error_of(gone, 409)
            assert "session 'kept' cannot be reopened: its context is gone" in message
            assert "upload it with POST /v1/contexts" in message
            assert client.get("/v1/sessions/kept").status_code == 200  # still listed
    finally:
        next(server, None)


def test_paths_are_checked_again_when_a_session_is_reopened(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    book = config.allowed_roots[0] / "book.txt"
    book.write_text(BOOK, encoding="utf-8")
    server = serve(config)
    served = next(server)
    root, sub = scripts(served)
    with served.client() as client:
        relative = open_session(client, root, sub, paths=["book.txt"])["name"]
        absolute = open_session(client, root, sub, paths=[str(book)])["name"]
    next(server, None)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "book.txt").write_text("another book\n", encoding="utf-8")
    for roots, name, status, says in [
        ((elsewhere,), absolute, 403, "is outside the allowed roots"),
        ((elsewhere,), relative, 409, "was opened over another context"),
        ((), relative, 403, "server-side paths are disabled"),
    ]:
        server = serve(replace(config, allowed_roots=roots))
        served = next(server)
        try:
            with served.client() as client:
                asked = client.post(f"/v1/sessions/{name}/questions", json={"query": "Q-ONE"})
                assert says in error_of(asked, status)
        finally:
            next(server, None)


def test_start_up_expires_old_sessions(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    server = serve(config)
    served = next(server)
    with served.client() as client:
        root, sub = scripts(served)
        open_session(client, root, sub, context_ids=[upload(client)], name="old")
    next(server, None)
    time.sleep(0.05)
    server = serve(replace(config, session_expire_s=0.01))
    served = next(server)
    try:
        with served.client() as client:
            assert client.get("/v1/sessions").json()["sessions"] == []
        assert not (config.sessions_dir / "old.json").exists()
    finally:
        next(server, None)


def test_a_cancelled_question_leaves_the_session_as_its_last_answer_left_it(
    served: Served,
) -> None:
    root = served.script(
        "cancel.json",
        rules={
            "USE": repl("FINAL(str(n * 7))"),
            "SLOW": repl("n = 1000\nimport time\ntime.sleep(30)\nFINAL('slept')"),
            "SET": repl("n = 6\nFINAL('set')"),
        },
    )
    with served.client() as client:
        name = open_session(client, root, root, context_ids=[upload(client)])["name"]
        ask(client, name, "SET n")
        slow = client.post(f"/v1/sessions/{name}/questions", json={"query": "SLOW"}).json()
        wait_for_event(client, slow["id"], "cell_started")
        cancelled = client.delete(f"/v1/runs/{slow['id']}").json()
        assert cancelled["status"] == "cancelled"
        assert ask(client, name, "USE n")["answer"] == "42"  # n as SET left it
        assert [h["status"] for h in client.get(f"/v1/sessions/{name}").json()["history"]] == [
            "completed",
            "completed",
        ]


def test_sessions_beyond_the_live_limit_are_let_go_and_reopened(tmp_path: Path) -> None:
    server = serve(make_config(tmp_path, max_live_sessions=1))
    served = next(server)
    try:
        root = served.script(
            "n.json", rules={"USE": repl("FINAL(str(n * 7))"), "SET": repl("n = 6\nFINAL('set')")}
        )
        with served.client() as client:
            context_id = upload(client)
            first = open_session(client, root, root, context_ids=[context_id])["name"]
            ask(client, first, "SET n")
            second = open_session(client, root, root, context_ids=[context_id])["name"]
            live = {s["name"]: s["live"] for s in client.get("/v1/sessions").json()["sessions"]}
            assert live == {first: False, second: True}
            assert ask(client, first, "USE n")["answer"] == "42"
    finally:
        next(server, None)
