"""``rlm_query`` children as Ray tasks, on a real local Ray (2 CPUs, started once for the
module): the same answers, usage totals and events as the local executor; a budget limit hit
inside a remote child stops it as in one process; a worker killed during a child is survived
with nothing counted twice; a driver killed mid-child leaves its run interrupted in the store.

Scripted models are read from files (a worker rebuilds them from their spec) and answer by
rules, so every worker gives the same answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx import RLM
from rlmx.config import Limits
from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor
from rlmx.providers.function import FunctionModel
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.events import RunError, RunStarted
from rlmx.trajectory.store import RunStore
from rlmx.types import RunResult

from .conftest import ListRecorder, repl

ray = pytest.importorskip("ray")

from rlmx.executors.ray import RayExecutor  # noqa: E402  (after the skip: it needs Ray)

REPO = Path(__file__).resolve().parent.parent

PARENT = """\
from concurrent.futures import ThreadPoolExecutor
a = rlm_query('[[child-a]] what kind is an apple?', 'an apple is a fruit')
b = rlm_query('[[child-b]] count the errors', context)
with ThreadPoolExecutor(2) as pool:
    asks = ['[[child-c]] carrot', '[[child-d]] pear']
    c, d = pool.map(lambda p: rlm_query(p, 'garden notes'), asks)
FINAL('|'.join([a, b, c, d]))"""

CHILDREN = {
    "[[child-a]]": "FINAL(llm_query('apple?'))",
    "[[child-b]]": "FINAL(str(count('ERROR')) + ' ' + llm_query('carrot?'))",
    "[[child-c]]": "x = llm_query('carrot soup')\n"
    "FINAL(x + ' ' + rlm_query('[[grandchild]] pear', 'more'))",
    "[[child-d]]": "FINAL(llm_query_batched(['apple pie', 'pear tart'])[1])",
    "[[grandchild]]": "FINAL(llm_query('pear'))",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray of 2 CPUs for the module's tests; its address, for another driver."""
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def executor(cluster: str) -> Iterator[RayExecutor]:
    executor = RayExecutor()
    yield executor
    asyncio.run(executor.aclose())


def write_script(path: Path, rules: dict[str, str], latency_s: float = 0.0) -> Path:
    items = [{"contains": k, "reply": v} for k, v in rules.items()]
    path.write_text(json.dumps({"rules": items, "latency_s": latency_s}), encoding="utf-8")
    return path


@pytest.fixture
def sub_script(tmp_path: Path) -> Path:
    rules = {"apple": "fruit", "carrot": "vegetable", "pear": "fruit", "": "neither"}
    return write_script(tmp_path / "sub.json", rules)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A directory context: the parent passes it to a child, which reads it by path."""
    root = tmp_path / "logs"
    root.mkdir()
    for i in range(3):
        lines = [f"line {j} {'ERROR' if (i + j) % 4 == 0 else 'ok'}" for j in range(10)]
        (root / f"app{i}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_rlm(
    root: Path, sub: Path, executor: Executor, recorder: Any, limits: Limits | None = None
) -> RLM:
    return RLM(
        model=ScriptedModel.from_file(root),
        sub_model=ScriptedModel.from_file(sub),
        sandbox=InProcessRepl,
        recorder=recorder,
        executor=executor,
        cache=False,
        limits=limits or Limits(concurrency=4, max_depth=2),
    )


def runs_of(recorder: ListRecorder) -> dict[str, Any]:
    """Each run's event kinds in order, and its parent, by the run's question (run ids are
    new in every run, questions are not)."""
    query = {e.run_id: e.query for e in recorder.of(RunStarted)}
    parent = {e.run_id: query.get(e.parent_run_id or "") for e in recorder.of(RunStarted)}
    kinds: dict[str, list[str]] = defaultdict(list)
    for event in recorder.events:
        kinds[query[event.run_id]].append(event.type)
    return {q: (parent[r], kinds[q]) for r, q in query.items()}


def outcome(result: RunResult) -> tuple[Any, ...]:
    return result.status, result.answer, result.sub_calls, result.usage.to_dict()


@pytest.mark.parametrize("run", [0, 1], ids=["first", "again"])
def test_children_as_tasks_give_what_the_local_executor_gives(
    executor: RayExecutor, tmp_path: Path, sub_script: Path, logs: Path, run: int
) -> None:
    rules = {marker: repl(code) for marker, code in CHILDREN.items()}
    root = write_script(tmp_path / "root.json", {**rules, "[[parent]]": repl(PARENT)})
    local_events, remote_events = ListRecorder(), ListRecorder()
    local = make_rlm(root, sub_script, LocalExecutor(), local_events)
    remote = make_rlm(root, sub_script, executor, remote_events)
    expected = local.run("[[parent]] sort these", logs)
    got = remote.run("[[parent]] sort these", logs)
    assert expected.status == "completed"
    assert expected.answer == "fruit|7 vegetable|vegetable fruit|fruit"
    assert outcome(got) == outcome(expected)
    assert runs_of(remote_events) == runs_of(local_events)
    assert len(runs_of(remote_events)) == 6  # the parent, 4 children, a grandchild
    # The children's root calls were made in Ray's workers: here only the parent's one.
    assert len(remote.models.root.calls) == 1  # type: ignore[attr-defined]
    assert len(local.models.root.calls) == 6  # type: ignore[attr-defined]


def test_a_child_runs_in_a_worker_process_of_its_own(
    executor: RayExecutor, tmp_path: Path, sub_script: Path
) -> None:
    rules = {
        "[[pid]]": repl("import os\nFINAL(str(os.getpid()))"),
        "[[parent]]": repl("FINAL(rlm_query('[[pid]] where?', 'x'))"),
    }
    root = write_script(tmp_path / "root.json", rules)
    result = make_rlm(root, sub_script, executor, ListRecorder()).run("[[parent]]", "c")
    assert result.status == "completed"
    assert result.answer is not None
    assert result.answer.isdigit()
    assert int(result.answer) != os.getpid()


def test_a_child_whose_sub_model_has_no_spec_stays_here(
    executor: RayExecutor, tmp_path: Path
) -> None:
    rules = {
        "[[child]]": repl("import os\nFINAL(llm_query('x') + str(os.getpid()))"),
        "[[parent]]": repl("FINAL(rlm_query('[[child]] go', 'x'))"),
    }
    root = write_script(tmp_path / "root.json", rules)
    rlm = RLM(
        model=ScriptedModel.from_file(root),
        sub_model=FunctionModel(lambda messages, options: "ok"),
        sandbox=InProcessRepl,
        executor=executor,
        cache=False,
    )
    result = rlm.run("[[parent]]", "c")
    assert (result.status, result.answer) == ("completed", f"ok{os.getpid()}")


LOOP = (
    "out = []\nfor i in range(40):\n    out.append(llm_query(f'apple {i} ' + 'x' * 200))\n"
    "FINAL(str(len(out)))"
)


@pytest.mark.parametrize(
    "limits",
    [
        Limits(max_tokens=2_000, concurrency=4),
        Limits(max_sub_calls=12, concurrency=4),
        Limits(max_tokens=100_000, max_sub_calls=41, concurrency=4),
    ],
    ids=["tokens", "sub-calls", "enough"],
)
def test_a_limit_hit_inside_a_remote_child_stops_it_as_locally(
    executor: RayExecutor, tmp_path: Path, sub_script: Path, limits: Limits
) -> None:
    rules = {
        "[[loop]]": repl(LOOP),
        "[[parent]]": repl("a = rlm_query('[[loop]] go', 'x')\nFINAL('child said: ' + a)"),
    }
    root = write_script(tmp_path / "root.json", rules)
    local_events, remote_events = ListRecorder(), ListRecorder()
    expected = make_rlm(root, sub_script, LocalExecutor(), local_events, limits).run(
        "[[parent]]", "c"
    )
    got = make_rlm(root, sub_script, executor, remote_events, limits).run("[[parent]]", "c")
    assert outcome(got) == outcome(expected)
    assert runs_of(remote_events) == runs_of(local_events)
    errors = [(e.status, e.error) for e in remote_events.of(RunError)]
    assert errors == [(e.status, e.error) for e in local_events.of(RunError)]
    if limits.max_sub_calls == 41:  # the rlm_query and the child's 40: all there is
        assert errors == []
        assert got.answer == "child said: 40"
        assert got.sub_calls == 41
    else:
        assert errors
        assert errors[0][0] == "budget_exceeded"


def test_a_worker_killed_during_a_child_is_survived(executor: RayExecutor, tmp_path: Path) -> None:
    sub = write_script(tmp_path / "slow.json", {"apple": "fruit"}, latency_s=0.25)
    pidfile = tmp_path / "pid"
    child = (
        f"import os, pathlib\npathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()))\n"
        "FINAL(' '.join(llm_query('apple ' + str(i)) for i in range(4)))"
    )
    rules = {"[[child]]": repl(child), "[[parent]]": repl("FINAL(rlm_query('[[child]] go', 'x'))")}
    root = write_script(tmp_path / "root.json", rules)
    local_events = ListRecorder()
    expected = make_rlm(root, sub, LocalExecutor(), local_events).run("[[parent]]", "c")
    pidfile.unlink()

    async def killing() -> tuple[RunResult, ListRecorder, int]:
        recorder = ListRecorder()
        running = asyncio.ensure_future(
            make_rlm(root, sub, executor, recorder).arun("[[parent]]", "c")
        )
        while not pidfile.exists() or not any(e.type == "sub_call" for e in recorder.events):
            await asyncio.sleep(0.02)
        victim = int(pidfile.read_text())
        os.kill(victim, signal.SIGKILL)  # the worker dies with the child half done
        return await running, recorder, victim

    got, recorder, victim = asyncio.run(killing())
    assert victim != os.getpid()
    assert outcome(got) == outcome(expected)
    assert got.answer == "fruit fruit fruit fruit"
    # The lost attempt's run is in the trace, ended as lost; the one that returned is whole.
    lost = [e for e in recorder.of(RunError) if "worker was lost" in e.error]
    assert len(lost) == 1
    started = recorder.of(RunStarted)
    assert len(started) == 3  # the parent, the lost attempt, the one that returned
    last = [e for e in recorder.events if e.run_id == started[-1].run_id]
    assert [e.type for e in last] == runs_of(local_events)["[[child]] go"][1]


DRIVER = """
import sys, ray
from rlmx import RLM
from rlmx.config import Limits
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.sqlite import SqliteRecorder
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
rlm = RLM(model=ScriptedModel.from_file(sys.argv[2]),
          sub_model=ScriptedModel.from_file(sys.argv[3]), sandbox=InProcessRepl,
          recorder=SqliteRecorder(sys.argv[4]), executor="ray", cache=False)
rlm.run("[[parent]]", "c", run_id="killed-driver")
"""


def test_a_driver_killed_mid_child_leaves_its_run_interrupted(cluster: str, tmp_path: Path) -> None:
    sub = write_script(tmp_path / "slow.json", {"apple": "fruit"}, latency_s=30.0)
    pidfile = tmp_path / "pid"
    child = f"import os, pathlib\npathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()))\n"
    rules = {
        "[[child]]": repl(child + "FINAL(llm_query('apple'))"),
        "[[parent]]": repl("FINAL(rlm_query('[[child]] go', 'x'))"),
    }
    root = write_script(tmp_path / "root.json", rules)
    db = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-c", DRIVER, cluster, str(root), str(sub), str(db)]
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (_child_started(db) and pidfile.exists()):
            assert driver.poll() is None, "the driver ended early"
            time.sleep(0.1)
        assert _child_started(db)
    finally:
        driver.kill()
        driver.wait()
    with RunStore(db) as store:
        assert store.reap() == ["killed-driver"]
        run = store.get_run("killed-driver")
    assert run is not None
    assert run.status == "interrupted"
    # The child's worker went with the driver that owned its task.
    worker = int(pidfile.read_text())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _child_started(db: Path) -> bool:
    if not db.exists():
        return False
    with RunStore(db) as store:
        events = [json.loads(line) for _, line in store.iter_events("killed-driver")]
    return any(e["type"] == "run_started" and e.get("parent_run_id") for e in events)


def test_a_childs_confined_worker_is_started_where_the_child_runs(
    executor: RayExecutor, tmp_path: Path, sub_script: Path
) -> None:
    rules = {
        "[[ppid]]": repl("import os\nFINAL(str(os.getppid()))"),
        "[[parent]]": repl(
            "import os\nFINAL(rlm_query('[[ppid]] who', 'x') + ' ' + str(os.getppid()))"
        ),
    }
    root = write_script(tmp_path / "root.json", rules)
    rlm = RLM(  # the default sandbox: each run's code in a confined worker process
        model=ScriptedModel.from_file(root),
        sub_model=ScriptedModel.from_file(sub_script),
        executor=executor,
        cache=False,
    )
    result = rlm.run("[[parent]]", "c")
    assert result.status == "completed"
    assert result.answer is not None
    child_host, parent_host = result.answer.split()
    assert parent_host == str(os.getpid())  # the parent's worker: started by this process
    assert child_host != parent_host  # the child's: started by the Ray worker running it
