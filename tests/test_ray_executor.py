"""The Ray executor on a real local Ray cluster (2 CPUs, started once for the module): the same
answers, usage and events as the local executor on scripted models; a model actor killed
during a map survived, nothing counted twice; count and search_files over shards equal to one
process. Without Ray, ``--executor ray`` says in one line how to install it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.config import Limits
from rlmx.context.helpers import Helpers
from rlmx.context.sources import from_directory
from rlmx.context.spec import open_spec
from rlmx.executors.base import Executor
from rlmx.executors.corpus import merge_hits, search_docs, shard
from rlmx.executors.local import LocalExecutor
from rlmx.providers.function import FunctionModel
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.events import SubCall
from rlmx.types import Completion, Message, RunResult, Usage

from .conftest import ListRecorder, repl, scripted

ray = pytest.importorskip("ray")

from rlmx.executors.ray import RayExecutor  # noqa: E402  (after the skip: it needs Ray)

LABELS = ["fruit", "vegetable"]
ITEMS = [f"item {i}: {'apple' if i % 3 else 'carrot'} number {i}" for i in range(24)]
CODE = (
    "a = llm_query_batched(['apple tart', 'carrot soup', 'a stone'])\n"
    f"b = llm_map('Which kind of food?', {ITEMS!r}, labels={LABELS!r})\n"
    "c = llm_map('Name the food', ['apple pie', 'carrot cake'])\n"
    "FINAL('|'.join(a + b + c))"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray of 2 CPUs for the module's tests."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A sub-model script of rules only (the same answer in every worker that reads it), each
    call taking 50 ms."""
    path = tmp_path / "sub.json"
    rules = [
        {"contains": "apple", "reply": "fruit"},
        {"contains": "carrot", "reply": "vegetable"},
        {"contains": "", "reply": "neither"},
    ]
    path.write_text(json.dumps({"rules": rules, "latency_s": 0.05}), encoding="utf-8")
    return path


def run_with(executor: Executor, sub_script: Path) -> tuple[RunResult, ListRecorder]:
    recorder = ListRecorder()
    rlm = RLM(
        model=scripted(repl(CODE)),
        sub_model=ScriptedModel.from_file(sub_script),
        sandbox=InProcessRepl,
        recorder=recorder,
        executor=executor,
        cache=False,
        limits=Limits(concurrency=8),
    )
    return rlm.run("classify", "unused"), recorder


def outcome(result: RunResult, recorder: ListRecorder) -> tuple[Any, ...]:
    calls = recorder.of(SubCall)
    return (
        result.status,
        result.answer,
        result.sub_calls,
        result.usage.to_dict(),
        len(calls),
        sorted((c.kind, c.prompt, c.response, json.dumps(c.usage)) for c in calls),
    )


@pytest.mark.usefixtures("cluster")
@pytest.mark.parametrize("actors", [False, True], ids=["tasks", "actors"])
def test_same_answers_and_usage_as_the_local_executor(script: Path, actors: bool) -> None:
    local, local_events = run_with(LocalExecutor(), script)
    assert local.status == "completed"
    assert local.answer is not None
    assert local.answer.split("|")[:3] == ["fruit", "vegetable", "neither"]
    prefixes = ("scripted:",) if actors else ("local:",)
    executor = RayExecutor(actor_prefixes=prefixes, actors=2)
    remote, remote_events = run_with(executor, script)
    asyncio.run(executor.aclose())
    assert outcome(remote, remote_events) == outcome(local, local_events)
    # 3 batched, the labelled map's 3 content-free calls, 2 primers and 24 items, 2 free items
    assert remote.usage.sub.calls == remote.sub_calls == 3 + 3 + 2 + len(ITEMS) + 2


@pytest.mark.usefixtures("cluster")
def test_a_model_actor_killed_during_a_map_is_survived(script: Path) -> None:
    local, local_events = run_with(LocalExecutor(), script)
    executor = RayExecutor(actor_prefixes=("scripted:",), actors=2)
    spec = f"scripted:{script}"

    async def killing() -> tuple[RunResult, ListRecorder, int, int]:
        recorder = ListRecorder()
        rlm = RLM(
            model=scripted(repl(CODE)),
            sub_model=ScriptedModel.from_file(script),
            sandbox=InProcessRepl,
            recorder=recorder,
            executor=executor,
            cache=False,
            limits=Limits(concurrency=4),
        )
        running = asyncio.ensure_future(rlm.arun("classify", "unused"))
        while len([e for e in recorder.of(SubCall) if e.kind == "map"]) < 4:
            await asyncio.sleep(0.02)
        victim = executor.actors(spec)[0]
        pid = await victim.pid.remote()
        os.kill(pid, signal.SIGKILL)  # the worker process dies with calls in hand
        result = await running
        return result, recorder, pid, await victim.pid.remote()

    result, recorder, killed, restarted = asyncio.run(killing())
    asyncio.run(executor.aclose())
    assert restarted != killed  # the actor was restarted in a new process
    assert outcome(result, recorder) == outcome(local, local_events)


@pytest.mark.usefixtures("cluster")
def test_a_client_without_a_spec_to_rebuild_runs_in_this_process() -> None:
    seen: list[int] = []

    def reply(messages: list[Message], options: Any) -> str:
        seen.append(os.getpid())
        return "ok"

    rlm = RLM(
        model=scripted(repl("FINAL('|'.join(llm_query_batched(['a', 'b'])))")),
        sub_model=FunctionModel(reply),
        sandbox=InProcessRepl,
        executor=RayExecutor(),
        cache=False,
    )
    result = rlm.run("q", "c")
    assert (result.status, result.answer) == ("completed", "ok|ok")
    assert seen == [os.getpid()] * 2


@pytest.mark.usefixtures("cluster")
def test_a_remote_models_error_comes_back_as_it_was_raised(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"responses": []}), encoding="utf-8")
    rlm = RLM(
        model=scripted(repl("FINAL(llm_query_batched(['x'])[0])")),
        sub_model=ScriptedModel.from_file(path),
        sandbox=InProcessRepl,
        executor=RayExecutor(),
        cache=False,
    )
    result = rlm.run("q", "c")
    assert result.status == "completed"
    assert result.answer is not None
    assert result.answer.startswith("ERROR: scripted model")
    assert "no response left" in result.answer
    assert "Traceback" not in result.answer


# Corpus helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """60 log files of uneven sizes, some with no match at all; their docs as a directory
    context describes them."""
    root = tmp_path_factory.mktemp("logs")
    for f in range(60):
        status = ["ERROR disk full" if (f * i) % 7 == 3 else "ok" for i in range(f * 13 % 200)]
        lines = [f"2024-01-{f % 28 + 1:02d} host{f} {s} {i}" for i, s in enumerate(status)]
        (root / f"app{f:02d}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs: list[dict[str, Any]] = from_directory(root).docs
    return docs


def one_process(docs: list[dict[str, Any]]) -> Helpers:
    return Helpers(open_spec({"kind": "directory", "docs": docs})[1])


def hits_of(hits: Any) -> tuple[list[dict[str, Any]], bool]:
    return [h.as_dict() for h in hits], hits.limited


@pytest.mark.usefixtures("cluster")
@pytest.mark.parametrize("pattern", ["ERROR", r"host\d+ ok 1\d\b", "nothing matches this"])
def test_count_and_search_files_over_shards_equal_one_process(
    corpus: list[dict[str, Any]], pattern: str
) -> None:
    whole = one_process(corpus)
    executor = RayExecutor()

    async def both() -> tuple[int, Any, Any]:
        count = await executor.count(corpus, pattern)
        found = await executor.search_files(corpus, pattern, limit=10_000)
        few = await executor.search_files(corpus, pattern, limit=7)
        return count, found, few

    count, found, few = asyncio.run(both())
    assert len(executor._shards(corpus)) > 1
    assert count == whole.count(pattern)
    assert hits_of(found) == hits_of(whole.search_files(pattern, limit=10_000))
    assert hits_of(few) == hits_of(whole.search_files(pattern, limit=7))
    assert str(found) == str(whole.search_files(pattern, limit=10_000))


@pytest.mark.parametrize("limit", [1, 5, 40, 10_000])
@pytest.mark.parametrize("parts", [1, 3, 8, 60])
def test_shards_merge_to_the_one_process_answer(
    corpus: list[dict[str, Any]], limit: int, parts: int
) -> None:
    pieces = shard(corpus, parts)
    assert [d for _, part in pieces for d in part] == corpus
    assert 1 <= len(pieces) <= parts
    assert len(pieces) > 1 or parts == 1
    merged = merge_hits(
        [(start, *search_docs(part, "ERROR", limit)) for start, part in pieces], limit
    )
    assert hits_of(merged) == hits_of(one_process(corpus).search_files("ERROR", limit=limit))


def test_the_local_executor_is_the_helpers_in_one_process(corpus: list[dict[str, Any]]) -> None:
    executor = LocalExecutor()
    assert asyncio.run(executor.count(corpus, "ERROR")) == one_process(corpus).count("ERROR")
    found = asyncio.run(executor.search_files(corpus, "disk", limit=9))
    assert hits_of(found) == hits_of(one_process(corpus).search_files("disk", limit=9))


async def test_the_local_executor_calls_the_client_itself() -> None:
    class Counting(ScriptedModel):
        async def complete(self, messages: Any, **options: Any) -> Completion:
            return Completion(text="x", usage=Usage(calls=1), model=self.spec)

    reply = await LocalExecutor().complete(Counting(), [Message("user", "hi")], {})
    assert reply.text == "x"


# Without Ray --------------------------------------------------------------------------------


def test_without_ray_the_cli_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    root = tmp_path / "root.json"
    root.write_text(json.dumps({"responses": [repl("FINAL('x')")]}), encoding="utf-8")
    context = tmp_path / "c.txt"
    context.write_text("text", encoding="utf-8")
    args = ["run", "q", "-c", str(context), "-m", f"scripted:{root}", "--no-db", "-q"]
    assert main([*args, "--executor", "local"]) == 0
    capsys.readouterr()
    code = main([*args, "--executor", "ray"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1
    assert "pip install 'rlmx[ray]'" in err
    assert "Traceback" not in err
