"""The HTTP API over real HTTP on loopback: contexts, runs, their event streams, cancelling,
and every kind of bad input answered with a clear JSON error."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rlmx.errors import ConfigError
from rlmx.server import check_bind

from .conftest import repl
from .test_server_support import (
    Served,
    follow,
    make_config,
    serve,
    simple_run,
    wait_for_event,
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the tests that change nothing (bad input, unknown ids)."""
    yield from serve(make_config(tmp_path_factory.mktemp("shared")))


OCTET = {"content-type": "application/octet-stream"}
BOOK = b"Chapter 1\nthe vault code is ZETA-42\nThe end.\n"


def upload(client: httpx.Client, data: bytes = BOOK, **params: str) -> str:
    response = client.post("/v1/contexts", content=data, headers=OCTET, params=params)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["id"]
    return context_id


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    message: str = body["error"]["message"]
    return message


def test_uploads_are_content_addressed(served: Served) -> None:
    with served.client() as client:
        first = client.post("/v1/contexts", content=BOOK, headers=OCTET, params={"name": "b.txt"})
        again = client.post("/v1/contexts", content=BOOK, headers=OCTET)
        assert first.status_code == again.status_code == 201
        info = first.json()
        assert info["id"] == again.json()["id"] == hashlib.sha256(BOOK).hexdigest()
        assert (info["bytes"], info["chars"], info["lines"], info["name"]) == (
            len(BOOK),
            len(BOOK),
            3,
            "b.txt",
        )
        assert client.get(f"/v1/contexts/{info['id']}").json()["bytes"] == len(BOOK)
    stored = list((served.config.contexts_dir).iterdir())
    assert [p.name for p in stored] == [info["id"]]  # one file, no temporaries left


def test_a_run_goes_from_upload_to_answer_over_sse(served: Served) -> None:
    with served.client() as client:
        context_id = upload(client)
        response = client.post(
            "/v1/runs",
            json={
                "query": "What is the code?",
                "context_ids": [context_id],
                "model": simple_run(served),
            },
        )
        assert response.status_code == 202, response.text
        created = response.json()
        run_id = created["id"]
        assert created["events_url"] == f"/v1/runs/{run_id}/events"
        messages = follow(client, run_id)
        events = [m.data for m in messages if m.event == "message"]
        assert [m.id for m in messages[:-1]] == list(range(len(events)))
        assert messages[-1].event == "end"
        assert messages[-1].data == {"run_id": run_id, "status": "completed"}
        kinds = [e["type"] for e in events]
        assert kinds[0] == "run_started"
        assert kinds[-1] == "run_finished"
        assert {"root_reply", "cell_executed", "sub_call"} <= set(kinds)
        run = client.get(f"/v1/runs/{run_id}").json()
        assert run["status"] == "completed"
        assert run["answer"] == "ZETA-42"
        assert run["live"] is False
        assert run["source"] == "server"
        assert run["total_tokens"] > 0
        assert run["context"]["chars"] == len(BOOK)
        listed = client.get("/v1/runs").json()["runs"]
        assert [r["id"] for r in listed] == [run_id]
        trace = client.get(f"/v1/runs/{run_id}/trace")
        assert trace.headers["content-type"].startswith("application/x-ndjson")
        assert [json.loads(line) for line in trace.text.splitlines()] == events
        # Replay: after a number, or from a Last-Event-ID.
        assert [m.id for m in follow(client, run_id, after=2)][:2] == [3, 4]
        resumed = follow(client, run_id, headers={"Last-Event-ID": str(len(events) - 2)})
        assert [m.event for m in resumed] == ["message", "end"]
        assert resumed[0].data["type"] == "run_finished"


def test_a_live_stream_delivers_events_while_the_run_goes(served: Served) -> None:
    spec = simple_run(served, latency_s=0.4)
    with served.client() as client:
        run_id = client.post(
            "/v1/runs", json={"query": "q", "text": BOOK.decode(), "model": spec}
        ).json()["id"]
        arrivals: list[tuple[float, str]] = []
        with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            for line in response.iter_lines():
                if line.startswith('data: {"type"'):
                    arrivals.append((time.monotonic(), json.loads(line[6:])["type"]))
    first_reply = next(t for t, kind in arrivals if kind == "root_reply")
    finished = next(t for t, kind in arrivals if kind == "run_finished")
    assert finished - first_reply > 0.5  # the first step arrived well before the end


def test_paths_under_the_allowed_root(served: Served) -> None:
    docs = served.root / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("first document\n")
    (docs / "b.txt").write_text("the vault code is ZETA-42\n")
    spec = served.script("list.json", repl("print(len(context), list_files())\nFINAL('ok')"))
    with served.client() as client:
        run_id = client.post(
            "/v1/runs", json={"query": "q", "paths": ["docs"], "model": spec}
        ).json()["id"]
        events = [m.data for m in follow(client, run_id) if m.event == "message"]
    cell = next(e for e in events if e["type"] == "cell_executed")
    assert cell["output"].strip() == "2 ['a.txt', 'b.txt']"
    assert events[0]["context"]["kind"] == "directory"


def test_cancel_stops_a_run(served: Served) -> None:
    spec = served.script("slow.json", repl("print(1)"), repl("FINAL('x')"), latency_s=20)
    with served.client() as client:
        run_id = client.post("/v1/runs", json={"query": "q", "text": "t", "model": spec}).json()[
            "id"
        ]
        wait_for_event(client, run_id)  # it holds a slot and waits on the model
        started = time.monotonic()
        response = client.delete(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 5
        run = response.json()
        assert run["status"] == "cancelled"
        assert run["live"] is False
        assert "DELETE" in run["error"]
        messages = follow(client, run_id)
        kinds = [m.data["type"] for m in messages if m.event == "message"]
        assert kinds[-2:] == ["run_error", "run_finished"]
        assert messages[-1].data["status"] == "cancelled"
        message = error_of(client.delete(f"/v1/runs/{run_id}"), 409)
        assert "already ended (cancelled)" in message


def test_runs_beyond_the_queue_are_refused(tmp_path: Path) -> None:
    for served_ in serve(make_config(tmp_path, max_active_runs=1, max_queued_runs=1)):
        spec = served_.script("slow.json", repl("print(1)"), latency_s=20)
        with served_.client() as client:
            body = {"query": "q", "text": "t", "model": spec}
            first = client.post("/v1/runs", json=body).json()["id"]
            second = client.post("/v1/runs", json=body).json()["id"]
            wait_for_event(client, first)  # the one slot is taken
            assert client.get(f"/v1/runs/{second}").json()["status"] == "queued"
            assert "try again later" in error_of(client.post("/v1/runs", json=body), 429)
            client.delete(f"/v1/runs/{second}")
            client.delete(f"/v1/runs/{first}")
            assert client.get(f"/v1/runs/{second}").json()["status"] == "cancelled"


BAD_RUNS = [
    ({"query": "q", "text": "t", "unknown": 1}, 422, "unknown field 'unknown'"),
    ({"query": "q", "text": "t", "limits": {"max_depht": 2}}, 422, "unknown field 'max_depht'"),
    ({"text": "t"}, 422, "missing required field 'query'"),
    ({"query": "", "text": "t"}, 422, "query"),
    ({"query": "q", "text": "t", "limits": {"max_depth": -1}}, 422, "limits.max_depth"),
    ({"query": "q", "text": "t", "limits": {"max_iterations": "many"}}, 422, "max_iterations"),
    ({"query": "q"}, 422, "no context given"),
    ({"query": "q", "context_ids": ["abc"]}, 422, "not a context id"),
    ({"query": "q", "context_ids": ["0" * 64]}, 422, "upload it with POST /v1/contexts"),
    ({"query": "q", "text": "t", "model": "nope:x"}, 422, "unknown provider 'nope'"),
    ({"query": "q", "text": "t", "model": "gpt"}, 422, "provider:model"),
    ({"query": "q", "paths": ["../outside.txt"]}, 403, "outside the allowed roots"),
    ({"query": "q", "paths": ["/etc/passwd"]}, 403, "outside the allowed roots"),
    ({"query": "q", "paths": ["link/passwd"]}, 403, "outside the allowed roots"),
    ({"query": "q", "paths": ["missing.txt"]}, 422, "no file or folder"),
    ({"query": "q", "paths": ["bad\u0000name"]}, 422, "NUL"),
    ({"query": "q", "text": "t", "model": "scripted:/etc/hosts"}, 403, "outside the allowed"),
    ([1, 2], 422, "must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_RUNS)
def test_bad_run_requests_get_clear_errors(
    shared: Served, body: object, status: int, message: str
) -> None:
    if not (shared.root / "link").is_symlink():
        (shared.root / "link").symlink_to("/etc")
        (shared.root.parent / "outside.txt").write_text("secret")
    with shared.client() as client:
        assert message in error_of(client.post("/v1/runs", json=body), status)
        assert client.get("/v1/runs").json()["runs"] == []  # nothing half-created


def test_malformed_bodies_and_wrong_types(shared: Served) -> None:
    with shared.client() as client:
        json_header = {"content-type": "application/json"}
        message = error_of(client.post("/v1/runs", content=b'{"query": ', headers=json_header), 400)
        assert message.startswith("malformed JSON")
        message = error_of(
            client.post(
                "/v1/runs",
                content=b"query=q",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            415,
        )
        assert "application/json" in message
        assert "a JSON object body is required" in error_of(
            client.post("/v1/runs", headers=json_header), 422
        )
        message = error_of(
            client.post("/v1/contexts", content=b"x", headers={"content-type": "text/plain"}), 415
        )
        assert "--data-binary" in message
        assert "empty" in error_of(client.post("/v1/contexts", content=b"", headers=OCTET), 422)
        assert "binary" in error_of(
            client.post("/v1/contexts", content=b"a\x00b", headers=OCTET), 422
        )


def test_oversize_uploads_are_refused_and_leave_nothing(served: Served) -> None:
    big = b"x" * (served.config.max_upload_bytes + 1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    with served.client() as client:
        assert "--max-upload-mb" in error_of(
            client.post("/v1/contexts", content=big, headers=OCTET), 413
        )
        assert "upload limit" in error_of(
            client.post("/v1/contexts", content=chunks(), headers=OCTET), 413
        )
        huge = {"query": "q", "text": "x" * (served.config.max_upload_bytes + 1024 * 1024)}
        assert "limit" in error_of(client.post("/v1/runs", json=huge), 413)
        encoded = json.dumps(huge).encode()
        chunked = client.post(
            "/v1/runs",
            content=(encoded[i : i + 65536] for i in range(0, len(encoded), 65536)),
            headers={"content-type": "application/json"},
        )
        assert "limit" in error_of(chunked, 413)
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/v1/runs").json()["runs"] == []
    folder = served.config.contexts_dir
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/runs/nope"),
        ("GET", "/v1/runs/nope/events"),
        ("GET", "/v1/runs/nope/trace"),
        ("DELETE", "/v1/runs/nope"),
        ("GET", "/v1/runs/" + "x" * 300),
        ("GET", "/v1/contexts/nope"),
        ("GET", "/v1/nothing"),
    ],
)
def test_unknown_ids_and_endpoints_are_404(shared: Served, method: str, path: str) -> None:
    with shared.client() as client:
        error_of(client.request(method, path), 404)


def test_bad_query_parameters_and_methods(shared: Served) -> None:
    with shared.client() as client:
        assert "limit" in error_of(client.get("/v1/runs", params={"limit": 0}), 422)
        assert "after" in error_of(client.get("/v1/runs/x/events", params={"after": "z"}), 422)
        assert "not allowed" in error_of(client.put("/v1/runs"), 405)


def test_server_paths_are_off_without_allowed_roots(tmp_path: Path) -> None:
    for served_ in serve(make_config(tmp_path, allowed_roots=())):
        with served_.client() as client:
            body = {"query": "q", "paths": ["a.txt"]}
            assert "--allow-path" in error_of(client.post("/v1/runs", json=body), 403)


def test_a_token_guards_the_api(tmp_path: Path) -> None:
    for served_ in serve(make_config(tmp_path, token="s3cret")):
        with served_.client() as client:
            assert "Bearer" in error_of(client.get("/v1/runs"), 401)
            assert "wrong token" in error_of(
                client.get("/v1/runs", headers={"Authorization": "Bearer nope"}), 401
            )
            assert client.get("/v1/runs", headers={"Authorization": "Bearer s3cret"}).is_success
            # The viewer's files and the schema are public; they hold no data.
            assert client.get("/").is_success
            assert client.get("/openapi.json").is_success


def test_foreign_host_headers_are_refused_without_a_token(shared: Served) -> None:
    """A web page cannot reach the loopback service through DNS rebinding."""
    with shared.client() as client:
        assert "loopback only" in error_of(
            client.get("/v1/runs", headers={"Host": "evil.example"}), 403
        )
        for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
            assert client.get("/v1/runs", headers={"Host": host}).is_success


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    with pytest.raises(ConfigError, match="RLMX_API_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError, match="RLMX_API_TOKEN"):
        check_bind("example.com", "")
    check_bind("0.0.0.0", "token")


def test_openapi_schema_and_viewer_files(shared: Served) -> None:
    with shared.client() as client:
        schema = client.get("/openapi.json").json()
        paths = set(schema["paths"])
        assert {
            "/v1/runs",
            "/v1/runs/{run_id}",
            "/v1/runs/{run_id}/events",
            "/v1/contexts",
            "/v1/chat/completions",
            "/v1/models",
        } <= paths
        assert "RunRequest" in schema["components"]["schemas"]
        index = client.get("/")
        assert "text/html" in index.headers["content-type"]
        for name in ("app.js", "run.js", "tree.js", "api.js", "app.css", "events.schema.json"):
            assert client.get(f"/static/{name}").is_success, name
        assert client.get("/docs").status_code == 404  # no page that loads a CDN


def test_static_files_ship_inside_the_package() -> None:
    import rlmx.server

    static = Path(rlmx.server.__file__).parent / "static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "app.js", "app.css", "events.schema.json"} <= names
    for path in static.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org", ""), path.name
        assert "https://" not in text.replace("https://json-schema.org", ""), path.name
    assert os.path.getsize(static / "app.js") > 0
