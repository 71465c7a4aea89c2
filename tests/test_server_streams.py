"""Event streams under load and abuse: two hundred at once, clients that vanish mid-stream,
runs recorded by another process, idle connections kept open."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rlmx.trajectory import IterationStarted, RunFinished, RunStarted, RunStore, SqliteRecorder

from .conftest import repl
from .test_server_support import Served, follow, make_config, parse_sse, serve, simple_run
from .test_trajectory_store import abandoned_run

STREAMS = 200


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


async def _collect(
    client: httpx.AsyncClient, run_id: str, opened: asyncio.Queue[None]
) -> list[tuple[int | None, str]]:
    async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        opened.put_nowait(None)
        lines = [line async for line in response.aiter_lines()]
    return [(m.id, m.event if m.event == "end" else m.data["type"]) for m in parse_sse(lines)]


async def test_two_hundred_streams_of_a_live_run_all_see_every_event(served: Served) -> None:
    spec = simple_run(served, latency_s=1.0)
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=served.url, timeout=60, limits=limits) as client:
        created = await client.post(
            "/v1/runs", json={"query": "q", "text": "the code is Z", "model": spec}
        )
        run_id = created.json()["id"]
        opened: asyncio.Queue[None] = asyncio.Queue()
        streams = [asyncio.create_task(_collect(client, run_id, opened)) for _ in range(STREAMS)]
        for _ in range(STREAMS):
            await asyncio.wait_for(opened.get(), 30)
        health = await client.get("/healthz")  # still answering with every stream open
        assert health.json()["live_runs"] == 1
        results = await asyncio.gather(*streams)
        stored = (await client.get(f"/v1/runs/{run_id}")).json()
    expected = results[0]
    assert expected[-1] == (None, "end")
    assert len(expected) == stored["event_count"] + 1
    assert all(r == expected for r in results)
    assert stored["status"] == "completed"


def test_clients_that_disconnect_mid_stream_lose_nothing(served: Served) -> None:
    spec = simple_run(served, latency_s=0.3)
    with served.client() as client:
        run_id = client.post(
            "/v1/runs", json={"query": "q", "text": "the code is Z", "model": spec}
        ).json()["id"]
        for _ in range(20):
            with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        break  # hang up after the first event
        messages = follow(client, run_id)
        assert messages[-1].data["status"] == "completed"
        run = client.get(f"/v1/runs/{run_id}").json()
        assert len(messages) - 1 == run["event_count"]
        assert client.get("/healthz").json() == {
            "status": "ok",
            "version": client.get("/healthz").json()["version"],
            "live_runs": 0,
        }


def test_a_run_recorded_by_another_process_streams_live(served: Served) -> None:
    """``rlmx run`` in another terminal writes to the same store; the viewer follows it."""
    seen: list[str] = []
    arrived = threading.Condition()

    def watch() -> None:
        with served.client() as client, client.stream("GET", "/v1/runs/ext/events") as response:
            for message in parse_sse(response.iter_lines()):
                with arrived:
                    seen.append(message.event if message.event == "end" else message.data["type"])
                    arrived.notify_all()

    def shown(count: int) -> Callable[[], bool]:
        return lambda: len(seen) == count

    with RunStore(served.config.database) as store:  # a connection of its own, as a process has
        recorder = SqliteRecorder(store, source="cli")
        started = RunStarted(
            run_id="ext", query="q", context={}, root_model="m", sub_model="m", limits={}
        )
        recorder.on_event(started)
        watcher = threading.Thread(target=watch)
        watcher.start()
        for i in range(1, 4):
            # Each event is written once the stream has shown the one before: live, not replayed.
            with arrived:
                assert arrived.wait_for(shown(i), timeout=10), seen
            recorder.on_event(IterationStarted(run_id="ext", iteration=i))
        recorder.on_event(RunFinished(run_id="ext", result={"status": "completed"}))
        watcher.join(10)
    assert seen == ["run_started", *["iteration_started"] * 3, "run_finished", "end"]


def test_the_stream_of_a_run_whose_process_died_ends_interrupted(served: Served) -> None:
    """Nothing reads a run as ended by itself: the server's reaper marks it, and the stream
    that was waiting on it ends."""
    abandoned_run(served.config.database)  # after start-up: found by the periodic reaper
    with served.client() as client:
        messages = follow(client, "gone")
    assert [m.event for m in messages] == ["message", "end"]
    assert messages[-1].data == {"run_id": "gone", "status": "interrupted"}


def test_idle_streams_get_heartbeats(served: Served) -> None:
    spec = served.script("slow.json", repl("print(1)"), latency_s=30)
    with served.client() as client:
        run_id = client.post("/v1/runs", json={"query": "q", "text": "t", "model": spec}).json()[
            "id"
        ]
        pings = 0
        started = time.monotonic()
        with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            for line in response.iter_lines():
                pings += line == ": ping"
                if pings == 2:
                    break
        assert time.monotonic() - started < 5
        assert client.delete(f"/v1/runs/{run_id}").json()["status"] == "cancelled"


def test_replay_of_a_long_run_pages_through_the_store(served: Served) -> None:
    with RunStore(served.config.database) as store:
        recorder = SqliteRecorder(store)
        recorder.on_event(
            RunStarted(
                run_id="long", query="q", context={}, root_model="m", sub_model="m", limits={}
            )
        )
        for i in range(1, 1500):
            recorder.on_event(IterationStarted(run_id="long", iteration=i))
        recorder.on_event(RunFinished(run_id="long", result={"status": "completed"}))
    with served.client() as client:
        messages = follow(client, "long")
    assert [m.id for m in messages[:-1]] == list(range(1501))
    assert json.dumps(messages[-1].data) == '{"run_id": "long", "status": "completed"}'


def test_the_live_buffer_hands_over_to_the_store_when_it_lacks_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rlmx.server import hub
    from rlmx.trajectory.store import Appended

    monkeypatch.setattr(hub, "BUFFER_EVENTS", 3)
    live = hub.LiveRun("r")
    for i in range(5):
        live.publish(Appended("r", i, f"line{i}", finished=False))
    assert live.since(4) == []
    assert live.since(2) == [(3, "line3"), (4, "line4")]
    assert live.since(0) is None  # event 1 left the buffer: read it from the store
    live.publish(Appended("r", 7, "line7", finished=True))  # a gap
    assert live.since(4) is None
    assert live.finished
