"""Sub-calls from the worker, on the host: validation, answers, and the threads that answer.

Every ``call`` frame is untrusted: :func:`parse_call` checks its shape and types and keeps only
the known arguments. :class:`SubCalls` answers each on a small pool of daemon threads (answering
one blocks until the event loop has made the model call), records the answer for replays, and
during a replay serves the recorded answer instead (:mod:`rlmx.sandbox.replay`).

A ``doc`` frame asks where a converted document's text is (a PDF's page, a DOCX or HTML file:
see :mod:`rlmx.context.converted`). :func:`parse_doc` accepts it only for a context of
documents and an index the host itself marked as converted; the answer (converting the entry
first, once) is two byte offsets into the spool the worker already holds read-only, never the
text, so a request cannot make the host send more than it receives. At most
``MAX_INFLIGHT_READS`` are answered at a time; they are not recorded (a replay reads them again).

A ``scan`` frame asks for ``count``, ``grep`` or ``search_files`` made by the run's executor
(:mod:`rlmx.sandbox.scans`), accepted only from a REPL the host told to send them; its
arguments are checked, and a refused request is an error in the cell. At most
``MAX_INFLIGHT_SCANS`` are answered at a time; they are not recorded either.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import rlmx.sandbox.protocol as protocol
from rlmx.context import ContextInput
from rlmx.context.converted import ConvertedContext
from rlmx.sandbox.base import HostFunctions
from rlmx.sandbox.replay import Replayer, call_key
from rlmx.sandbox.scan_host import ScanRoute
from rlmx.sandbox.scans import one_line
from rlmx.sandbox.supervisor import WorkerProcess

MAX_INFLIGHT_CALLS = 64
MAX_INFLIGHT_READS = 16
MAX_INFLIGHT_SCANS = 4
CONTEXT_REF = {"ref": "context"}


def is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_call(message: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """Validate a ``call`` frame from the worker; raises ValueError/TypeError if malformed."""
    call_id, fn, args = message.get("id"), message.get("fn"), message.get("args")
    if not isinstance(call_id, int) or isinstance(call_id, bool):
        raise TypeError("call id must be an int")
    if fn not in protocol.SUB_CALLS or not isinstance(args, dict):
        raise ValueError(f"unknown sub-call {str(fn)[:40]!r}")
    model = args.get("model")
    if model is not None and not isinstance(model, str):
        raise TypeError("model must be a str")
    if fn == "llm_query_batched":
        if not is_str_list(args.get("prompts")):
            raise TypeError("prompts must be a list of str")
        return call_id, fn, {"prompts": args["prompts"], "model": model}
    if fn == "llm_map":
        return call_id, fn, _parse_map(args, model)
    if not isinstance(args.get("prompt"), str):
        raise TypeError("prompt must be a str")
    if fn == "llm_query":
        return call_id, fn, {"prompt": args["prompt"], "model": model}
    context = args.get("context")
    valid = context is None or isinstance(context, str) or is_str_list(context)
    if not valid and context != CONTEXT_REF:
        raise TypeError("context must be a str, a list of str or the session's context")
    return call_id, fn, {"prompt": args["prompt"], "context": context}


def parse_doc(message: dict[str, Any], context: ContextInput) -> tuple[int, int]:
    """Validate a ``doc`` frame from the worker: its id, and the index of a converted entry of
    this session's context. Raises ValueError/TypeError otherwise (the worker is replaced)."""
    read_id, doc = message.get("id"), message.get("doc")
    if not isinstance(read_id, int) or isinstance(read_id, bool):
        raise TypeError("doc read id must be an int")
    if not isinstance(doc, int) or isinstance(doc, bool):
        raise TypeError("doc must be an int")
    if not isinstance(context, ConvertedContext):
        raise ValueError("a document read, but this context holds no converted documents")
    if not context.is_converted(doc):
        raise ValueError("a document read of an entry that is not a converted document")
    return read_id, doc


def read_doc(context: ConvertedContext, doc: int) -> dict[str, Any]:
    """The reply to a validated ``doc`` frame: the entry's span in the spool, or the failure."""
    try:
        start, end = context.converted_span(doc)
        return {"ok": True, "value": [start, end]}
    except BaseException as exc:  # a changed or unreadable file: the cell sees the error
        return {"ok": False, "etype": type(exc).__name__, "emsg": str(exc)}


def _parse_map(args: dict[str, Any], model: str | None) -> dict[str, Any]:
    labels, examples = args.get("labels"), args.get("examples")
    if not isinstance(args.get("instruction"), str) or not is_str_list(args.get("items")):
        raise TypeError("llm_map needs an instruction (str) and items (a list of str)")
    if labels is not None and not is_str_list(labels):
        raise TypeError("labels must be a list of str")
    valid_pairs = isinstance(examples, list) and all(
        is_str_list(pair) and len(pair) == 2 for pair in examples
    )
    if examples is not None and not valid_pairs:
        raise TypeError("examples must be a list of [item, answer] pairs of str")
    return {
        "instruction": args["instruction"],
        "items": args["items"],
        "labels": labels,
        "model": model,
        "examples": examples,
    }


def invoke(
    host: HostFunctions | None, context: ContextInput, fn: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Answer a validated sub-call through the host's functions; failures become replies."""
    try:
        if host is None:
            raise RuntimeError("the sandbox was closed")
        value: str | list[str] | list[str | None]
        if fn == "llm_query":
            value = host.llm_query(args["prompt"], args["model"])
        elif fn == "llm_query_batched":
            value = list(host.llm_query_batched(args["prompts"], args["model"]))
        elif fn == "llm_map":
            value = host.llm_map(
                args["instruction"],
                args["items"],
                args["labels"],
                args["model"],
                [(a, b) for a, b in args["examples"] or ()],
            )
        else:
            sub_context = context if args["context"] == CONTEXT_REF else args["context"]
            value = host.rlm_query(args["prompt"], sub_context)
        answers = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) or (fn == "llm_map" and v is None) for v in answers):
            raise TypeError(f"{fn} returned {type(value).__name__}, not text")
        return {"ok": True, "value": value}
    except BaseException as exc:  # the model sees the failure, as in the in-process REPL
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return {"ok": False, "etype": type(exc).__name__, "emsg": str(text)}


class CallPool:
    """Daemon threads that run blocking sub-calls; grows up to ``limit`` threads."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and self._threads < self._limit:
                self._threads += 1
                threading.Thread(target=self._run, name="rlmx-subcall", daemon=True).start()
            self._jobs.put(job)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            with contextlib.suppress(Exception):  # a job reports its own failures
                job()

    def shutdown(self) -> None:
        with self._lock:
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)


class SubCalls:
    """The answers to one session's ``call`` frames, given on the worker's reader thread."""

    def __init__(self, replayer: Replayer) -> None:
        self._replayer = replayer
        self._pool = CallPool(MAX_INFLIGHT_CALLS)
        self._host: HostFunctions | None = None
        self._context: ContextInput = ""
        self._reads = 0
        self._reads_lock = threading.Lock()
        self._route: ScanRoute | None = None
        self._scans = 0

    def bind(self, host: HostFunctions, context: ContextInput) -> None:
        self._host, self._context = host, context

    def route_scans(self, route: ScanRoute | None) -> None:
        """Answer the worker's ``scan`` requests through ``route`` (refused without one)."""
        self._route = route

    def on_message(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        if message["t"] == protocol.DOC:
            self._read_doc(worker, message)
            return
        if message["t"] == protocol.SCAN:
            self._scan(worker, message)
            return
        if message["t"] != protocol.CALL:
            raise ValueError(f"unknown message type {message['t'][:40]!r}")
        call_id, fn, args = parse_call(message)
        key = call_key(fn, args)
        book = self._replayer.book
        if book is not None:
            worker.send({"t": protocol.REPLY, "id": call_id, **book.answer(key)})
            return
        if worker.inflight >= MAX_INFLIGHT_CALLS:
            error = {"ok": False, "etype": "RuntimeError", "emsg": "too many concurrent sub-calls"}
            worker.send({"t": protocol.REPLY, "id": call_id, **error})
            return
        recording = self._replayer.recording
        worker.call_started()

        def job() -> None:
            try:
                reply = invoke(self._host, self._context, fn, args)
            finally:
                worker.call_ended()
            if recording is not None:
                self._replayer.add_reply(recording, key, reply)
            worker.send({"t": protocol.REPLY, "id": call_id, **reply})

        self._pool.submit(job)

    def _read_doc(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        read_id, doc = parse_doc(message, self._context)
        context = self._context
        assert isinstance(context, ConvertedContext)
        with self._reads_lock:
            busy = self._reads >= MAX_INFLIGHT_READS
            self._reads += not busy
        if busy:
            error = {"ok": False, "etype": "RuntimeError", "emsg": "too many concurrent reads"}
            worker.send({"t": protocol.REPLY, "id": read_id, **error})
            return

        def job() -> None:
            try:
                reply = read_doc(context, doc)
            finally:
                with self._reads_lock:
                    self._reads -= 1
            worker.send({"t": protocol.REPLY, "id": read_id, **reply})

        self._pool.submit(job)

    def _scan(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        """A ``scan`` request: its arguments are checked on a pool thread, and a refused one is
        an error in the cell; a frame without a valid id, or with no route, replaces the worker.
        Not recorded: a replay scans again, as it reads documents again."""
        scan_id, route = message.get("id"), self._route
        if not isinstance(scan_id, int) or isinstance(scan_id, bool):
            raise TypeError("scan id must be an int")
        if route is None:
            raise ValueError("a scan request, but this REPL makes its own scans")
        with self._reads_lock:
            busy = self._scans >= MAX_INFLIGHT_SCANS
            self._scans += not busy
        if busy:
            error = {"ok": False, "etype": "RuntimeError", "emsg": "too many concurrent scans"}
            worker.send({"t": protocol.REPLY, "id": scan_id, **error})
            return
        fn, args = message.get("fn"), message.get("args")

        def job() -> None:
            try:
                reply: dict[str, Any] = {"ok": True, "value": route.answer(str(fn), args)}
            except BaseException as exc:  # refused, or failed: the cell sees it, in one line
                reply = {"ok": False, "etype": type(exc).__name__, "emsg": one_line(exc)}
            finally:
                with self._reads_lock:
                    self._scans -= 1
            worker.send({"t": protocol.REPLY, "id": scan_id, **reply})

        self._pool.submit(job)

    def shutdown(self) -> None:
        self._pool.shutdown()
