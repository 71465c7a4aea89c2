"""The Ray executor on a real local Ray cluster (2 CPUs, started once for the module): the same
answers, usage and events as the local executor on scripted models; a model actor killed
during a map survived, nothing counted twice; count and search_files over shards equal to one
process. Without Ray, ``--executor ray`` says in one line how to install it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.config import Limits
from rlmx.context.helpers import Helpers, Hits
from rlmx.context.sources import from_directory, from_files
from rlmx.context.spec import open_spec
from rlmx.executors.base import Executor
from rlmx.executors.corpus import grep_docs, merge_hits, search_docs, shard
from rlmx.executors.local import LocalExecutor
from rlmx.providers.function import FunctionModel
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sandbox.process import sandbox_factory
from rlmx.server import ServerHandle, create_app
from rlmx.trajectory.events import CellExecuted, SubCall
from rlmx.types import Completion, Message, RunResult, Usage

from .conftest import ListRecorder, repl, scripted
from .sandbox_support import ALL_MODES
from .test_server_support import Served, follow, make_config

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
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 log files of uneven sizes, some with no match at all."""
    root = tmp_path_factory.mktemp("logs")
    for f in range(60):
        status = ["ERROR disk full" if (f * i) % 7 == 3 else "ok" for i in range(f * 13 % 200)]
        lines = [f"2024-01-{f % 28 + 1:02d} host{f} {s} {i}" for i, s in enumerate(status)]
        (root / f"app{f:02d}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def corpus(logs: Path) -> list[dict[str, Any]]:
    """The log files' docs as a directory context describes them."""
    docs: list[dict[str, Any]] = from_directory(logs).docs
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

    async def both() -> tuple[int, Any, Any, Any, Any]:
        count = await executor.count(corpus, pattern)
        found = await executor.search_files(corpus, pattern, limit=10_000)
        few = await executor.search_files(corpus, pattern, limit=7)
        grepped = await executor.grep(corpus, pattern, around=30, limit=10_000)
        some = await executor.grep(corpus, pattern, around=5, limit=9)
        return count, found, few, grepped, some

    count, found, few, grepped, some = asyncio.run(both())
    assert len(executor._shards(corpus)) > 1
    assert count == whole.count(pattern)
    assert hits_of(found) == hits_of(whole.search_files(pattern, limit=10_000))
    assert hits_of(few) == hits_of(whole.search_files(pattern, limit=7))
    assert str(found) == str(whole.search_files(pattern, limit=10_000))
    assert hits_of(grepped) == hits_of(whole.grep(pattern, around=30, limit=10_000))
    assert hits_of(some) == hits_of(whole.grep(pattern, around=5, limit=9))
    assert str(some) == str(whole.grep(pattern, around=5, limit=9))


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
    grepped = merge_hits(
        [(start, *grep_docs(part, "disk", 9, limit)) for start, part in pieces],
        limit,
        separator=Hits.separator,
    )
    whole = one_process(corpus).grep("disk", around=9, limit=limit)
    assert (hits_of(grepped), str(grepped)) == (hits_of(whole), str(whole))


def test_the_local_executor_is_the_helpers_in_one_process(corpus: list[dict[str, Any]]) -> None:
    executor = LocalExecutor()
    assert asyncio.run(executor.count(corpus, "ERROR")) == one_process(corpus).count("ERROR")
    found = asyncio.run(executor.search_files(corpus, "disk", limit=9))
    assert hits_of(found) == hits_of(one_process(corpus).search_files("disk", limit=9))
    grepped = asyncio.run(executor.grep(corpus, "disk", around=4, limit=9))
    assert hits_of(grepped) == hits_of(one_process(corpus).grep("disk", around=4, limit=9))


async def test_the_local_executor_calls_the_client_itself() -> None:
    class Counting(ScriptedModel):
        async def complete(self, messages: Any, **options: Any) -> Completion:
            return Completion(text="x", usage=Usage(calls=1), model=self.spec)

    reply = await LocalExecutor().complete(Counting(), [Message("user", "hi")], {})
    assert reply.text == "x"


# Model code's helpers through the executor ---------------------------------------------------

SCAN_CODE = (
    "n = count('ERROR'); m = count(r'DISK \\w+', flags=re.I)\n"
    "k = count(re.compile('error', re.I))\n"
    "one = count('ERROR', doc=8)\n"
    "g = grep('disk', around=12, limit=9)\n"
    "everything = grep('ERROR', around=0, limit=100_000)\n"
    "none = grep('ERROR', limit=0)\n"
    "print(type(count.__self__).__name__)\n"
    "print(n, m, k, one, len(everything), everything.limited, none.limited)\n"
    "print(g)\n"
    "print([(h.doc, h.path, h.pos, h.end, h.line, h.text) for h in g + everything[-5:]])\n"
)
DIRECTORY_CODE = (
    "s = search_files(r'host\\d+ ok 1\\d\\b', limit=15)\n"
    "t = search_files('ERROR', glob='app1*')\n"
    "u = search_files('ERROR', glob='nothing*')\n"
    "print(s)\nprint(t)\nprint(u)\n"
    "print([(h.doc, h.path, h.pos, h.line, h.text) for h in s + t])\n"
)
FINISH = (
    "kinds = llm_map('Which kind of food?', ['apple pie', 'carrot cake'], labels=['fruit', "
    "'vegetable'])\n"
    "FINAL(f'{n}|{len(g)}|{kinds}')"
)


class CountingRay(RayExecutor):
    """The Ray executor, noting what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def complete(self, client: Any, messages: Any, options: Any) -> Completion:
        self.asked.append("complete")
        return await super().complete(client, messages, options)

    async def count(self, docs: Any, pattern: str, flags: int = 0) -> int:
        self.asked.append("count")
        return await super().count(docs, pattern, flags)

    async def grep(self, docs: Any, pattern: str, **options: Any) -> Any:
        self.asked.append("grep")
        return await super().grep(docs, pattern, **options)

    async def search_files(self, docs: Any, pattern: str, **options: Any) -> Any:
        self.asked.append("search_files")
        return await super().search_files(docs, pattern, **options)


def scanning(
    executor: Executor, sandbox: Any, context: Any, code: str, sub_script: Path
) -> tuple[RunResult, ListRecorder]:
    recorder = ListRecorder()
    rlm = RLM(
        model=scripted(repl(code)),
        sub_model=ScriptedModel.from_file(sub_script),
        sandbox=sandbox,
        recorder=recorder,
        executor=executor,
        cache=False,
    )
    return rlm.run("scan", context), recorder


def cells(recorder: ListRecorder) -> list[tuple[str, str | None]]:
    """Each cell's output (without its first line: the helper's class) and error."""
    return [(c.output.split("\n", 1)[1], c.error) for c in recorder.of(CellExecuted)]


@pytest.mark.usefixtures("cluster")
@pytest.mark.parametrize("mode", ["inprocess", *ALL_MODES])
def test_model_codes_scans_through_ray_equal_the_local_ones(
    logs: Path, script: Path, mode: str
) -> None:
    sandbox = InProcessRepl if mode == "inprocess" else sandbox_factory(mode)
    code = SCAN_CODE + DIRECTORY_CODE + FINISH
    local, local_events = scanning(LocalExecutor(), sandbox, logs, code, script)
    executor = CountingRay()
    remote, remote_events = scanning(executor, sandbox, logs, code, script)
    assert local.status == "completed", local.error
    assert local_events.of(CellExecuted)[0].output.startswith("Helpers\n")
    assert remote_events.of(CellExecuted)[0].output.startswith("HostScans\n")
    assert cells(remote_events) == cells(local_events)
    assert outcome(remote, remote_events) == outcome(local, local_events)
    # one doc= count stays in the REPL; the map's 2 items and 3 calls of its labels go to Ray
    scans = ["count"] * 3 + ["grep"] * 3 + ["search_files"] * 2
    assert sorted(a for a in executor.asked if a != "complete") == sorted(scans)
    assert executor.asked.count("complete") == remote.sub_calls == 2 + 2 + 3


@pytest.mark.usefixtures("cluster")
def test_a_set_of_files_greps_through_ray_as_in_one_process(logs: Path, script: Path) -> None:
    files = [str(p) for p in sorted(logs.glob("app[0-3]*.log"))]
    local, local_events = scanning(
        LocalExecutor(), InProcessRepl, from_files(files), SCAN_CODE + FINISH, script
    )
    remote, remote_events = scanning(
        RayExecutor(), InProcessRepl, from_files(files), SCAN_CODE + FINISH, script
    )
    assert local.status == remote.status == "completed", (local.error, remote.error)
    assert "[doc 1 (" in local_events.of(CellExecuted)[0].output  # how a document's hit reads
    assert cells(remote_events) == cells(local_events)
    assert outcome(remote, remote_events) == outcome(local, local_events)


@pytest.mark.usefixtures("cluster")
@pytest.mark.parametrize("mode", ["inprocess", "default"])
@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("grep('x', around=10**9)", "ValueError: around must be from 0 to 100,000 here"),
        ("count('x', flags=re.DEBUG)", "ValueError: flags must be made of re.I"),
        ("count.__self__._ask('count', {'pattern': 5})", "TypeError: a pattern must be a str"),
        (
            "count.__self__._ask('grep', {'pattern': 'x', 'flags': 0, 'docs': [3, 1]})",
            "ValueError: docs must be indices of this context, in increasing order",
        ),
        ("count.__self__._ask('rm', {})", "ValueError: unknown scan 'rm'"),
    ],
)
def test_the_host_refuses_a_bad_scan_in_one_line(
    logs: Path, mode: str, call: str, message: str
) -> None:
    sandbox = InProcessRepl if mode == "inprocess" else sandbox_factory(mode)
    recorder = ListRecorder()
    rlm = RLM(
        model=scripted(repl(call), repl("FINAL(str(count('ERROR')))")),
        sandbox=sandbox,
        recorder=recorder,
        executor=RayExecutor(),
        cache=False,
    )
    result = rlm.run("q", logs)
    refused, after = recorder.of(CellExecuted)
    assert refused.error is not None
    assert refused.error.strip().splitlines()[-1].startswith(message)
    assert "rlmx/" not in refused.error  # nothing of the host's own stack
    assert after.error is None  # the REPL goes on
    assert result.answer == str(one_process(from_directory(logs).docs).count("ERROR"))


@pytest.mark.usefixtures("cluster")
def test_a_session_over_a_directory_scans_through_ray(logs: Path, script: Path) -> None:
    code = "print(type(count.__self__).__name__)\nFINAL(str(count('ERROR')))"
    answers = []
    for executor in (LocalExecutor(), CountingRay()):
        rlm = RLM(
            model=scripted(repl(code), repl(code)),
            sandbox=sandbox_factory("default"),
            executor=executor,
            cache=False,
        )
        session = rlm.session(logs)
        try:
            answers.append([session.ask("q").answer, session.ask("again").answer])
        finally:
            session.close()
    assert answers[0] == answers[1]
    assert answers[0][0] == str(one_process(from_directory(logs).docs).count("ERROR"))
    assert executor.asked == ["count", "count"]


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


def test_without_ray_serve_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["serve", "--executor", "ray", "--port", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "pip install 'rlmx[ray]'" in err


# The server ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("cluster")
def test_serve_runs_sub_calls_and_scans_through_its_ray_executor(
    tmp_path: Path, logs: Path
) -> None:
    config = make_config(tmp_path, executor="ray")
    shutil.copytree(logs, config.allowed_roots[0] / "logs")
    app = create_app(config)
    executor = app.state.services.runs.executor
    assert isinstance(executor, RayExecutor)
    handle = ServerHandle(app)
    served = Served(handle.start(), config.allowed_roots[0], config, handle)
    code = (
        "print(type(count.__self__).__name__)\n"
        "FINAL(f\"{count('ERROR')}|{len(search_files('disk', limit=3))}|{llm_query('SUB x')}\")"
    )
    try:
        spec = served.script("root.json", repl(code), rules={"SUB": "from a task"})
        with served.client() as client:
            assert client.get("/v1/info").json()["executor"] == "ray"
            body = {"query": "q", "paths": ["logs"], "model": spec}
            run_id = client.post("/v1/runs", json=body).json()["id"]
            follow(client, run_id)
            run = client.get(f"/v1/runs/{run_id}").json()
            trace = [
                json.loads(line)
                for line in client.get(f"/v1/runs/{run_id}/trace").text.splitlines()
            ]
    finally:
        handle.stop()
    expected = one_process(from_directory(logs).docs).count("ERROR")
    assert (run["status"], run["answer"]) == ("completed", f"{expected}|3|from a task")
    cells = [e for e in trace if e["type"] == "cell_executed"]
    assert cells[0]["output"].startswith("HostScans\n")
    assert ray.is_initialized()  # the server leaves alone a Ray it did not start


def test_the_cli_starts_its_own_ray_for_model_code_scans(tmp_path: Path) -> None:
    """As a user runs it: ``rlmx run --executor ray`` in a fresh process, whose Ray is started
    by the first scan of model code, off the main thread. Started from a pool thread, Ray's
    processes died with that thread and the run waited 60 s for them, then exited 1."""
    import subprocess

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"app{i}.log").write_text(f"INFO ok\nERROR disk full on host{i}\nINFO ok\n")
    root = tmp_path / "root.json"
    code = "print(grep('ERROR', around=0))\nFINAL(str(count('ERROR')))"
    root.write_text(json.dumps({"responses": [f"```repl\n{code}\n```"]}))
    argv = [sys.executable, "-m", "rlmx", "run", "How many ERROR lines?", "-c", str(corpus)]
    argv += ["-m", f"scripted:{root}", "--executor", "ray", "--no-db", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3"
