"""The sandbox worker: a persistent REPL in its own process, confined before it runs any cell.

Started by :class:`~rlmx.sandbox.process.ProcessSandbox` with an empty environment, as
``python -S -s -P -B -c BOOT PACKAGE_DIR IN_FD OUT_FD`` (``BOOT`` puts the package on the path
without running ``rlmx/__init__``), it reads an ``init`` frame, maps the context file
read-only and decodes it once, confines itself (:mod:`rlmx.sandbox.confine`), says ``ready``
and then runs ``exec`` frames one at a time, in the main thread (:mod:`rlmx.sandbox.runtime`).
``llm_query``, ``llm_query_batched`` and ``rlm_query`` become ``call`` frames to the host, from
any thread; a reader thread routes the host's replies back. A converted document (a PDF's page,
a DOCX or HTML file) is read from the host's spool: the first read asks the host where its text
is with a ``doc`` frame (the host converts it then), and the place is kept (:class:`Converted`).
When the host says ``scans`` (its executor spreads them), ``count``, ``grep`` and
``search_files`` over the files are ``scan`` frames (:mod:`rlmx.sandbox.scans`).
"""

from __future__ import annotations

import gc
import itertools
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import rlmx.sandbox.guard as guard
import rlmx.sandbox.protocol as protocol
from rlmx.context import helpers
from rlmx.context.corpus import Corpus, Doc
from rlmx.context.spec import open_spec
from rlmx.sandbox.runtime import Repl, Stream, host_error
from rlmx.sandbox.scans import HostScans
from rlmx.sandbox.timers import Timers

if TYPE_CHECKING:
    from typing import Any


class Channel:
    """Frames to and from the host. Sends from any thread; the reader thread routes replies."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in = in_fd
        self._out = out_fd
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, list[Any]] = {}
        self._waiting_lock = threading.Lock()
        self.inbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.closed = True  # until the reader thread runs: nobody would route a reply

    def send(self, message: dict[str, Any]) -> None:
        frame = protocol.encode(message)
        with self._write_lock:
            protocol.write_all(self._out, frame)

    def read(self) -> dict[str, Any] | None:
        return protocol.read_message(self._in)

    def start_reader(self) -> None:
        self.closed = False
        threading.Thread(target=self._read_loop, name="rlmx-worker-reader", daemon=True).start()

    def _read_loop(self) -> None:
        try:
            while (message := self.read()) is not None:
                if message["t"] == protocol.REPLY:
                    with self._waiting_lock:
                        slot = self._waiting.pop(message.get("id", -1), None)
                    if slot is not None:
                        slot[1] = message
                        slot[0].release()
                else:
                    self.inbox.put(message)
        except (OSError, protocol.ProtocolError):
            pass
        self.closed = True
        with self._waiting_lock:
            slots, self._waiting = list(self._waiting.values()), {}
        for slot in slots:
            slot[0].release()
        self.inbox.put(None)

    def call(self, fn: str, args: dict[str, Any]) -> Any:
        """Send a sub-call and block until the host replies."""
        return self.request({"t": protocol.CALL, "fn": fn, "args": args})

    def scan(self, fn: str, args: dict[str, Any]) -> Any:
        """Ask the host for a scan (``count``, ``grep``, ``search_files``) and wait for it."""
        return self.request({"t": protocol.SCAN, "fn": fn, "args": args})

    def request(self, message: dict[str, Any]) -> Any:
        """Send a request (a sub-call, a document read) and block until the host replies."""
        call_id = next(self._ids)
        done = threading.Lock()
        done.acquire()
        slot: list[Any] = [done, None]
        with self._waiting_lock:
            if self.closed:
                raise RuntimeError("the host is gone")
            self._waiting[call_id] = slot
        self.send({**message, "id": call_id})
        done.acquire()
        reply = slot[1]
        if reply is None:
            raise RuntimeError("the host is gone")
        if not reply.get("ok"):
            raise host_error(str(reply.get("etype", "")), str(reply.get("emsg", "")))
        return reply.get("value")


def _handle(repl: Repl, message: dict[str, Any]) -> bool:
    kind = message["t"]
    if kind == protocol.EXEC:
        result = repl.run(str(message.get("code", "")))
        repl.reply({"t": protocol.RESULT, "id": message.get("id"), **result})
    elif kind == protocol.GETVAR:
        value = repl.variable(message.get("name"))
        repl.reply({"t": protocol.VAR, "id": message.get("id"), "value": value})
    elif kind == protocol.EXIT:
        return False
    return True


class Converted:
    """Converted documents, read from the host's spool through a read-only descriptor: the
    first read of one asks the host where its text is (the host converts it then)."""

    def __init__(self, channel: Channel, spans: dict[int, tuple[int, int]]) -> None:
        self._channel, self._spans = channel, spans

    def loader(self, doc: int, fd: int) -> Any:
        return lambda: self.text(doc, fd)

    def text(self, doc: int, fd: int) -> str:
        span = self._spans.get(doc)
        if span is None:
            value = self._channel.request({"t": protocol.DOC, "doc": doc})
            if not (isinstance(value, list) and len(value) == 2):
                raise RuntimeError("the host sent no place for the document")
            span = self._spans[doc] = (int(value[0]), int(value[1]))
        start, end = span
        data = bytearray()
        while len(data) < end - start:
            block = os.pread(fd, end - start - len(data), start + len(data))
            if not block:
                raise RuntimeError("the converted text is shorter than the host said")
            data += block
        return data.decode("utf-8", "surrogatepass")


def _open_files(meta: dict[str, Any], channel: Channel) -> tuple[object, Corpus]:
    """Files read as the host describes them; converted documents through :class:`Converted`."""
    docs: list[dict[str, Any]] = meta["docs"]
    marked = [d.get("mode") == "converted" for d in docs]
    if not any(marked):
        return open_spec(meta)
    plain = [d for d, m in zip(docs, marked, strict=True) if not m]
    read = iter(open_spec({**meta, "docs": plain})[1].docs if plain else [])
    spans = {
        int(d["doc"]): (int(d["span"][0]), int(d["span"][1]))
        for d, m in zip(docs, marked, strict=True)
        if m and d["span"]
    }
    converted = Converted(channel, spans)
    built = [
        Doc(
            name=d.get("name"),
            header=str(d.get("header", "")),
            load=converted.loader(int(d["doc"]), int(d["fd"])),
        )
        if m
        else next(read)
        for d, m in zip(docs, marked, strict=True)
    ]
    corpus = Corpus(
        built,
        kind=str(meta["kind"]),
        cache_bytes=int(meta.get("cache_bytes", 32 << 20)),
        max_read_bytes=meta.get("max_read_bytes"),
        root=meta.get("root"),
    )
    return corpus.value(), corpus


def _open_context(meta: dict[str, Any], channel: Channel) -> tuple[object, Corpus]:
    """The context as the REPL sees it: decoded from the host's context file, or files read
    as the host describes them (lazily, for a large text or a directory)."""
    if meta.get("form") == "files":
        return _open_files(meta, channel)
    fd = int(meta["fd"])
    try:
        value = protocol.read_context(fd, meta)
    finally:
        os.close(fd)
    return value, Corpus.from_value(value)


def _start(config: dict[str, Any], channel: Channel) -> Repl:
    began = time.perf_counter()
    context, corpus = _open_context(config["context"], channel)
    decoded = time.perf_counter()
    info: dict[str, Any] = {"pid": os.getpid(), "mode": config["mode"]}
    for entry in config.get("sys_path", []):
        if entry not in sys.path:
            sys.path.append(entry)
    if config["confine"]:
        import rlmx.sandbox.confine as confine  # ctypes: imported only where needed, then forgotten

        pretend = config.get("pretend_missing")
        if pretend:
            raise confine.ConfinementError(f"{pretend} is not available (simulated for a test)")
        info.update(
            confine.apply(
                memory_mb=config.get("memory_mb"),
                max_open_files=int(config.get("max_open_files", 64)),
                read_paths=config.get("read_paths", []),
                read_files=config.get("read_files", []),
                max_tasks=config.get("max_tasks"),
                tasks_fd=config.get("tasks_fd"),
                own_user_namespace=bool(config.get("own_user_namespace")),
            )
        )
        del confine
    random.seed(config.get("seed"))
    timers = Timers(config.get("cpu_s"), config.get("wall_s"))
    capture = int(config.get("capture_chars", 200_000))
    functions = helpers.build(corpus)
    if config.get("scans"):  # the run's executor scans the files: ask the host
        functions.update(HostScans(corpus, channel.scan).functions())
    repl = Repl(context, channel, timers, capture, functions)
    if config["confine"]:
        sys.modules["rlmx.sandbox.confine"].forget_ctypes()
        gc.collect()
        if config.get("guard", True):
            guard.install()
    sys.stdout = sys.stderr = Stream(repl)
    info["decode_s"] = round(decoded - began, 6)
    info["confine_s"] = round(time.perf_counter() - decoded, 6)
    channel.send({"t": protocol.READY, "info": info})
    return repl


def _die_with_host() -> None:
    """Have the kernel SIGKILL this worker when the host dies (PR_SET_PDEATHSIG), so that a
    host killed mid-cell leaves no worker running a cell that ignores its timers. The signal
    follows the host thread that started the worker: the host starts workers from its event
    loop's thread, which outlives them. Survives Landlock and dropping capabilities."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # forgotten with confine's ctypes (confine.forget_ctypes)

    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


def _host_gone(config: dict[str, Any]) -> bool:
    """The host died before the parent-death signal was set: this worker is already orphaned.
    (Under bubblewrap the parent is bwrap, outside the pid namespace: --die-with-parent.)"""
    host = config.get("host_pid")
    return isinstance(host, int) and config.get("mode") != "strict" and os.getppid() != host


def main(argv: Sequence[str]) -> None:
    _die_with_host()
    in_fd, out_fd = int(argv[0]), int(argv[1])
    channel = Channel(in_fd, out_fd)
    config = channel.read()
    if config is None or config.get("t") != protocol.INIT or _host_gone(config):
        os._exit(2)
    try:
        repl = _start(config, channel)
    except BaseException as exc:  # refuse to run, and say why
        message = str(exc) or type(exc).__name__
        channel.send({"t": protocol.FATAL, "message": message})
        os._exit(3)
    channel.start_reader()
    while (request := channel.inbox.get()) is not None:
        try:
            if not _handle(repl, request):
                break
        except BaseException as exc:  # e.g. a timer signal that slipped past a cell's end
            if request.get("t") == protocol.EXEC:
                error = f"the REPL worker failed to send the cell's result: {exc!r}"
                try:
                    repl.reply(
                        {
                            "t": protocol.RESULT,
                            "id": request.get("id"),
                            "output": "",
                            "error": error,
                            "final": None,
                            "truncated": False,
                        }
                    )
                except BaseException:
                    os._exit(4)
    os._exit(0)  # not sys.exit: threads the model started must not keep the worker alive


BOOT = (
    "import sys,types\n"
    "d=sys.argv[1]\n"
    "for n,p in (('rlmx',d),('rlmx.sandbox',d+'/sandbox'),('rlmx.context',d+'/context')):\n"
    "    m=types.ModuleType(n);m.__path__=[p];sys.modules[n]=m\n"
    "from rlmx.sandbox.worker import main\n"
    "main(sys.argv[2:])\n"
)
"""The ``-c`` program that starts a worker without importing ``rlmx/__init__`` (and with it
the providers and their dependencies): the package and subpackage are stand-in modules whose
``__path__`` points at the source directories."""

if __name__ == "__main__":
    main(sys.argv[1:])
