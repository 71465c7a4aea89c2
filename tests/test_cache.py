"""The sub-call cache: keys, the SQLite store, the engine's use of it, the CLI, and Anthropic's
prompt-cache breakpoints (against a loopback server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.config import Settings
from rlmx.engine.cache import MemoryCache, OnlyFor, SubCallCache, request_key
from rlmx.providers.anthropic import MIN_CACHED_CHARS, AnthropicClient
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.cache import SqliteCache
from rlmx.trajectory.events import SubCall
from rlmx.types import Completion, Message, Usage

from .conftest import ListRecorder, repl, scripted
from .conftest_http import FakeServer, Reply, messages_reply, running_server

REPO = Path(__file__).resolve().parent.parent
ASK = Message("user", "What is 2 + 2?")
ANSWER = Completion(
    text="4",
    usage=Usage(prompt_tokens=12, completion_tokens=1, calls=1),
    model="local:m",
    latency_s=0.25,
    finish_reason="stop",
    top_logprobs=(("4", -0.0001234567891234), ("four", -9.87654321e-7), (" 4", float("-inf"))),
)


# Keys -----------------------------------------------------------------------------------------


def test_a_key_names_the_model_the_messages_and_the_options() -> None:
    key = request_key("local:m", [ASK], {"max_tokens": 5})
    assert key is not None
    assert len(key) == 64
    assert request_key("local:m", [ASK], {"max_tokens": 5}) == key
    others = [
        request_key("local:other", [ASK], {"max_tokens": 5}),
        request_key("local:m", [Message("user", "What is 2 + 3?")], {"max_tokens": 5}),
        request_key("local:m", [Message("system", "Be terse."), ASK], {"max_tokens": 5}),
        request_key("local:m", [ASK], {"max_tokens": 6}),
        request_key("local:m", [ASK], {"max_tokens": 5, "top_logprobs": 5}),
        request_key("local:m", [ASK], {"max_tokens": 5, "choices": ["yes", "no"]}),
    ]
    assert None not in others
    assert len({key, *others}) == len(others) + 1


def test_only_greedy_requests_have_a_key() -> None:
    assert request_key("local:m", [ASK], {"temperature": 0.7}) is None
    assert request_key("local:m", [ASK], {"temperature": 0.0}) is not None
    assert request_key("local:m", [ASK], {"temperature": None}) is not None


def test_only_for_keeps_and_gives_the_named_models_answers_only() -> None:
    memory = MemoryCache()
    cache = OnlyFor(memory, {"local:m"})
    cache.put("local:m", "k", ANSWER)
    cache.put("openai:x", "k2", ANSWER)
    assert cache.get("local:m", "k") == ANSWER
    assert len(memory) == 1
    memory.put("openai:x", "k2", ANSWER)
    assert cache.get("openai:x", "k2") is None
    assert isinstance(cache, SubCallCache)


# The SQLite store ------------------------------------------------------------------------------


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_cache(store_path: Path) -> Iterator[SqliteCache]:
    cache = SqliteCache(store_path)
    yield cache
    cache.close()


def test_an_answer_comes_back_exactly_as_the_model_gave_it(sqlite_cache: SqliteCache) -> None:
    assert sqlite_cache.get("local:m", "k") is None
    sqlite_cache.put("local:m", "k", ANSWER)
    again = sqlite_cache.get("local:m", "k")
    assert again is not None
    assert again.text == ANSWER.text
    assert again.top_logprobs == ANSWER.top_logprobs  # floats bit for bit, -inf included
    assert again.finish_reason == "stop"
    assert again.usage == ANSWER.usage
    assert again.model == "local:m"
    assert sqlite_cache.get("local:other", "k") is None  # a key is asked for with its model


def test_the_first_answer_stored_stays(sqlite_cache: SqliteCache) -> None:
    sqlite_cache.put("local:m", "k", ANSWER)
    sqlite_cache.put("local:m", "k", Completion(text="5", usage=Usage(), model="local:m"))
    found = sqlite_cache.get("local:m", "k")
    assert found is not None
    assert found.text == "4"


def test_the_constructor_touches_no_file(store_path: Path) -> None:
    SqliteCache(store_path)
    assert not store_path.exists()


def test_stats_count_entries_bytes_hits_and_savings_and_clear_forgets(
    sqlite_cache: SqliteCache,
) -> None:
    sqlite_cache.put("local:m", "a", ANSWER)
    sqlite_cache.put("local:m", "b", ANSWER)
    sqlite_cache.put("local:n", "c", ANSWER)
    for _ in range(3):
        sqlite_cache.get("local:m", "a")
    stats = sqlite_cache.stats()
    assert (stats.entries, stats.hits) == (3, 3)
    by_model = {m.model: m for m in stats.models}
    assert by_model["local:m"].entries == 2
    assert by_model["local:m"].saved_prompt_tokens == 36
    assert by_model["local:m"].saved_s == pytest.approx(0.75)
    assert stats.bytes > 0
    assert stats.to_dict()["saved_completion_tokens"] == 3
    assert sqlite_cache.clear("local:n") == 1
    assert sqlite_cache.clear() == 2
    assert sqlite_cache.stats().entries == 0


def test_a_store_that_cannot_be_opened_is_a_miss_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = SqliteCache(blocker / "store.db")  # its folder is a file
    cache.put("local:m", "k", ANSWER)
    assert cache.get("local:m", "k") is None
    assert "sub-call cache off" in caplog.text


def test_processes_share_the_store(store_path: Path, sqlite_cache: SqliteCache) -> None:
    code = (
        "import sys\n"
        "from rlmx.trajectory.cache import SqliteCache\n"
        "from rlmx.types import Completion, Usage\n"
        "c = SqliteCache(sys.argv[1])\n"
        "for i in range(20):\n"
        "    c.put('local:m', f'{sys.argv[2]}{i}', Completion(text=str(i), usage=Usage(),"
        " model='local:m'))\n"
        "c.close()\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(store_path), name])
        for name in ("p", "q", "r")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    assert sqlite_cache.stats().entries == 60
    found = sqlite_cache.get("local:m", "q7")
    assert found is not None
    assert found.text == "7"


# The engine ------------------------------------------------------------------------------------

ROOT_CODE = repl(
    "answers = [llm_query(f'SUB item {i}') for i in range(3)]\nFINAL(' '.join(answers))"
)


def sub_model() -> ScriptedModel:
    return ScriptedModel(rules=[Rule("SUB item", "yes")], name="sub")


def run_once(
    cache: SubCallCache | bool | None, sub: ScriptedModel, recorder: ListRecorder | None = None
) -> tuple[str | None, Usage, int]:
    rlm = RLM(
        model=scripted(ROOT_CODE),
        sub_model=sub,
        sandbox=InProcessRepl,
        recorder=recorder,
        cache=cache,
    )
    result = rlm.run("q", "some context")
    assert result.status == "completed", result.error
    return result.answer, result.usage.sub, result.sub_calls


def test_a_repeated_question_costs_no_sub_model_tokens(store_path: Path) -> None:
    first_sub, second_sub = sub_model(), sub_model()
    first = run_once(SqliteCache(store_path), first_sub)
    recorder = ListRecorder()
    second = run_once(SqliteCache(store_path), second_sub, recorder)  # a new RLM and cache
    assert first[0] == second[0] == "yes yes yes"
    assert first[1].prompt_tokens > 0
    assert first[1].calls == 3
    assert first[1].cache_hits == 0
    assert len(first_sub.calls) == 3
    assert second_sub.calls == []
    assert (second[1].prompt_tokens, second[1].total_tokens, second[1].calls) == (0, 0, 0)
    assert second[1].cache_hits == 3
    assert second[2] == 3  # still three sub-calls, answered from the cache
    events = recorder.of(SubCall)
    assert [e.cached for e in events] == [True, True, True]
    assert all(e.usage["cache_hits"] == 1 and e.usage["total_tokens"] == 0 for e in events)
    assert all(e.cost_usd == 0.0 and e.response == "yes" for e in events)


def test_without_the_cache_every_run_calls_the_model() -> None:
    subs = [sub_model(), sub_model()]
    for sub in subs:
        run_once(False, sub)
    assert [len(s.calls) for s in subs] == [3, 3]


def test_by_default_only_embedded_models_answers_are_kept(store_path: Path) -> None:
    """``cache=None`` keeps the answers of ``local:`` models only; a scripted model is not one."""
    subs = [sub_model(), sub_model()]
    for sub in subs:
        run_once(None, sub)
    assert [len(s.calls) for s in subs] == [3, 3]
    assert not Path(os.environ["RLMX_DB"]).exists()  # nothing was opened for it
    rlm = RLM(model=scripted(), settings=Settings(env={"RLMX_DB": str(store_path)}), cache=True)
    assert isinstance(rlm.cache, SqliteCache)
    assert rlm.cache.path == store_path


def test_cache_true_keeps_answers_in_the_default_store(store_path: Path) -> None:
    subs = [sub_model(), sub_model()]
    for sub in subs:
        run_once(True, sub)
    assert [len(s.calls) for s in subs] == [3, 0]
    # the three sub-calls, and the root model's one greedy turn
    assert SqliteCache(Path(os.environ["RLMX_DB"])).stats().entries == 4


def test_a_tree_asks_the_model_once_per_request_even_without_a_cache() -> None:
    sub = sub_model()
    recorder = ListRecorder()
    rlm = RLM(
        model=scripted(
            repl("a = llm_query('SUB item 1')\nb = llm_query('SUB item 1')\nFINAL(a+b)")
        ),
        sub_model=sub,
        sandbox=InProcessRepl,
        recorder=recorder,
        cache=False,
    )
    result = rlm.run("q", "ctx")
    assert result.answer == "yesyes"
    assert len(sub.calls) == 1
    assert result.usage.sub.cache_hits == 1
    assert [e.cached for e in recorder.of(SubCall)] == [False, True]


def test_a_map_gets_the_same_labels_from_cached_logprobs(store_path: Path) -> None:
    code = repl(
        "labels = llm_map('Is it about fruit?', ['apple pie', 'car engine', 'pear tart'],"
        " labels=['fruit', 'other'])\nFINAL(','.join(labels))"
    )
    rules = [
        Rule("apple", "fruit", (("fruit", -0.1), ("other", -2.5))),
        Rule("pear", "fruit", (("fruit", -0.2), ("other", -2.0))),
        Rule("car", "other", (("fruit", -3.0), ("other", -0.05))),
        Rule("", "other", (("fruit", -0.7), ("other", -0.7))),  # the content-free prior
    ]
    answers, calls = [], []
    for _ in range(2):
        sub = ScriptedModel(rules=rules, name="sub")
        rlm = RLM(
            model=scripted(code),
            sub_model=sub,
            sandbox=InProcessRepl,
            cache=SqliteCache(store_path),
        )
        result = rlm.run("q", "ctx")
        answers.append(result.answer)
        calls.append(len(sub.calls))
    assert answers[0] == answers[1] == "fruit,other,fruit"
    assert calls[0] > 0
    assert calls[1] == 0


def test_sampled_calls_are_never_cached(store_path: Path) -> None:
    """An unreadable (blank) map answer is asked again with a temperature: that retry is
    sampled, so the second run makes it again while the greedy first try comes from the cache."""
    code = repl("a = llm_map('Name it.', ['x', 'y'])\nFINAL(str(a))")
    calls = []
    for _ in range(2):
        sub = ScriptedModel(rules=[Rule("", "   ")], name="sub")
        rlm = RLM(
            model=scripted(code),
            sub_model=sub,
            sandbox=InProcessRepl,
            cache=SqliteCache(store_path),
        )
        assert rlm.run("q", "ctx").answer == "[None, None]"
        calls.append([bool(o.get("temperature")) for o in sub.options])
    assert sorted(calls[0]) == [False, False, True, True]
    assert calls[1] == [True, True]


# The CLI ---------------------------------------------------------------------------------------


def script_file(tmp_path: Path, name: str, data: dict[str, object]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return f"scripted:{path}"


@pytest.fixture
def cli_models(tmp_path: Path) -> list[str]:
    root = script_file(tmp_path, "root", {"responses": [ROOT_CODE]})
    sub = script_file(tmp_path, "sub", {"rules": [{"contains": "SUB", "reply": "yes"}]})
    book = tmp_path / "book.txt"
    book.write_text("a small context\n")
    return ["-c", str(book), "-m", root, "--sub-model", sub, "--sandbox", "none", "--json", "-q"]


def cli_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["run", "q", *args]) == 0
    out, _ = capsys.readouterr()
    data: dict[str, object] = json.loads(out)
    return data


def sub_usage(data: dict[str, object]) -> dict[str, int]:
    usage = data["usage"]
    assert isinstance(usage, dict)
    sub: dict[str, int] = usage["sub"]
    return sub


def test_cli_cache_flags_stats_and_clear(
    tmp_path: Path, cli_models: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "cli.db")]
    first = sub_usage(cli_run([*cli_models, *db, "--cache"], capsys))
    second = sub_usage(cli_run([*cli_models, *db, "--cache"], capsys))
    assert first["prompt_tokens"] > 0
    assert first["cache_hits"] == 0
    assert (second["prompt_tokens"], second["calls"], second["cache_hits"]) == (0, 0, 3)
    off = sub_usage(cli_run([*cli_models, *db, "--no-cache"], capsys))
    assert off["prompt_tokens"] == first["prompt_tokens"]
    assert off["cache_hits"] == 0
    default = sub_usage(cli_run([*cli_models, *db], capsys))  # scripted: not an embedded model
    assert default["cache_hits"] == 0

    assert main(["cache", "stats", *db, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    # the three sub-calls and the root model's one greedy turn
    assert (stats["entries"], stats["hits"]) == (4, 4)
    assert stats["saved_prompt_tokens"] > 0
    assert sorted(m["model"] for m in stats["models"]) == [
        f"scripted:{tmp_path / 'root.json'}",
        f"scripted:{tmp_path / 'sub.json'}",
    ]
    assert main(["cache", "stats", *db]) == 0
    assert "4 answers" in capsys.readouterr().out
    assert main(["cache", "clear", *db]) == 0
    assert "forgot 4 cached answers" in capsys.readouterr().err
    assert main(["cache", "stats", *db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0


def test_cli_cache_without_a_store_and_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none.db")
    assert main(["cache", "stats", "--db", missing]) == 0
    assert "empty" in capsys.readouterr().err
    assert main(["cache", "clear", "--db", missing]) == 0
    assert not Path(missing).exists()
    assert main(["cache", "wipe"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    assert "Traceback" not in err
    assert main(["cache", "stats", "--db", str(tmp_path)]) == 2  # a folder, not a store
    err = capsys.readouterr().err
    assert "cannot open the run store" in err
    assert len(err.strip().splitlines()) == 1


def test_the_cache_outlives_the_process(
    tmp_path: Path, cli_models: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "proc.db")
    env = {**os.environ, "RLMX_DB": db}
    done = subprocess.run(
        [sys.executable, "-m", "rlmx", "run", "q", *cli_models, "--cache"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sub_usage(json.loads(done.stdout))["cache_hits"] == 0
    again = sub_usage(cli_run([*cli_models, "--db", db, "--cache"], capsys))
    assert (again["prompt_tokens"], again["cache_hits"]) == (0, 3)


# Anthropic prompt caching ------------------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with running_server() as srv:
        yield srv


EPHEMERAL = {"type": "ephemeral"}


async def test_anthropic_marks_the_system_prompt_and_the_transcript(server: FakeServer) -> None:
    pytest.importorskip("anthropic")
    server.push(Reply(200, messages_reply("ok", cache_read=900, cache_write=0)))
    client = AnthropicClient(
        model="claude-haiku-4-5", api_key="k", base_url=server.url, max_retries=0
    )
    system = "You write Python. " * (MIN_CACHED_CHARS // 10)
    transcript = [
        Message("system", system),
        Message("user", "the question"),
        Message("assistant", "```repl\nprint(len(context))\n```"),
        Message("user", "REPL output: 12345"),
    ]
    try:
        result = await client.complete(transcript)
    finally:
        await client.aclose()
    (seen,) = server.requests
    assert seen.body["system"] == [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    turns = seen.body["messages"]
    marked = [
        block for turn in turns if isinstance(turn["content"], list) for block in turn["content"]
    ]
    assert turns[0]["content"] == [
        {"type": "text", "text": "the question", "cache_control": EPHEMERAL}
    ]
    assert turns[1]["content"] == "```repl\nprint(len(context))\n```"
    assert turns[2]["content"][0]["cache_control"] == EPHEMERAL
    assert len(marked) == 2
    assert result.usage.cached_tokens == 900  # the cache read, reported


async def test_anthropic_sends_short_or_one_shot_requests_unmarked(server: FakeServer) -> None:
    pytest.importorskip("anthropic")
    server.push(Reply(200, messages_reply("ok")))
    server.push(Reply(200, messages_reply("ok")))
    client = AnthropicClient(
        model="claude-haiku-4-5", api_key="k", base_url=server.url, max_retries=0
    )
    long_item = "x" * (2 * MIN_CACHED_CHARS)
    try:
        await client.complete([Message("system", "Be brief."), Message("user", "hi")])
        await client.complete([Message("system", "Be brief."), Message("user", long_item)])
    finally:
        await client.aclose()
    short, one_shot = server.requests
    assert short.body["system"] == "Be brief."
    assert short.body["messages"] == [{"role": "user", "content": "hi"}]
    assert one_shot.body["messages"] == [{"role": "user", "content": long_item}]


class EmbeddedLike(ScriptedModel):
    """A scripted model under an embedded model's spec: what ``cache=None`` looks for."""

    @property
    def spec(self) -> str:
        return "local:fake-0.5b"


def test_by_default_embedded_models_answers_are_kept_in_the_run_store() -> None:
    subs = [EmbeddedLike(rules=[Rule("SUB item", "yes")]) for _ in range(2)]
    for sub in subs:
        run_once(None, sub)
    assert [len(s.calls) for s in subs] == [3, 0]
    stats = SqliteCache(Path(os.environ["RLMX_DB"])).stats()
    assert [(m.model, m.entries, m.hits) for m in stats.models] == [("local:fake-0.5b", 3, 3)]


def test_the_root_model_s_greedy_turns_are_answered_from_the_cache_too(store_path: Path) -> None:
    first_root = scripted(ROOT_CODE)
    rlm = RLM(
        model=first_root,
        sub_model=sub_model(),
        sandbox=InProcessRepl,
        cache=SqliteCache(store_path),
    )
    first = rlm.run("q", "some context")
    second_root, second_sub = scripted(), sub_model()  # either would fail if it were asked
    again = RLM(
        model=second_root,
        sub_model=second_sub,
        sandbox=InProcessRepl,
        cache=SqliteCache(store_path),
    ).run("q", "some context")
    assert again.answer == first.answer == "yes yes yes"
    assert (second_root.calls, second_sub.calls) == ([], [])
    assert again.usage.root.cache_hits == 1
    assert again.usage.root.total_tokens == 0
    assert first.usage.root.total_tokens > 0
    other = RLM(
        model=scripted(repl("FINAL('other')")),
        sub_model=sub_model(),
        sandbox=InProcessRepl,
        cache=SqliteCache(store_path),
    ).run("q2", "some context")
    assert other.answer == "other"  # another question is another conversation: asked anew
