"""The framed messages between the host and a sandbox worker, and the context file format.

Both sides import this module, so it uses the standard library only (the worker runs with
``python -S``: no site-packages).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding one
object with a ``"t"`` (type) field. JSON, never pickle: the host treats every frame from the
worker as untrusted input, and decoding JSON cannot run code. Strings may carry lone surrogates
(``surrogatepass``), as Python strings can.

Host to worker: ``init`` (first frame: the configuration), ``exec``, ``reply`` (the answer to a
sub-call or a document read), ``getvar``, ``exit``. Worker to host: ``ready`` or ``fatal``
(answer to ``init``), ``result``, ``call`` (a sub-call: ``llm_query``, ``llm_query_batched``,
``llm_map``, ``rlm_query``), ``doc`` (where a converted document's text is in the spool: the
host converts it on first demand), ``scan`` (``count``, ``grep`` or ``search_files`` made by
the host's executor, when ``init`` says ``scans``: :mod:`rlmx.sandbox.scans`), ``var``.

The context travels as a file, written once by the host and mapped read-only by the worker:
the UTF-8 text (a ``str`` context) or the UTF-8 parts back to back followed by ``parts + 1``
native ``uint64`` byte offsets (a list context). See :func:`write_context`/:func:`read_context`.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import mmap
import os
import struct
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

HEADER = struct.Struct(">I")
MAX_FRAME = (1 << 32) - 1
ENCODING_ERRORS = "surrogatepass"

# Message types.
INIT, EXEC, REPLY, GETVAR, EXIT = "init", "exec", "reply", "getvar", "exit"
READY, FATAL, RESULT, CALL, VAR, DOC = "ready", "fatal", "result", "call", "var", "doc"
SCAN = "scan"

SUB_CALLS = ("llm_query", "llm_query_batched", "llm_map", "rlm_query")


class ProtocolError(Exception):
    """A frame that is too large, not JSON, or not an object with a known type."""


def _json_codec() -> tuple[Callable[[object], str], Callable[[str], Any]]:
    """JSON to text and back through the C accelerators, bound once at import.

    The worker's model code shares the interpreter with these functions: a cell that rebinds
    ``builtins.len``, ``isinstance`` or ``str`` must not change how a frame is built or read
    (``json.dumps`` and ``json.loads`` look builtins up at call time). Every name used below
    is a local or a closure cell, captured before any cell runs."""
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    escape = getattr(json.encoder, "c_encode_basestring", None)
    make_scanner = getattr(json.scanner, "c_make_scanner", None)
    if make_encoder is None or escape is None or make_scanner is None:  # not CPython
        return lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")), json.loads

    def refuse(value: object) -> object:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    make = make_encoder(None, refuse, escape, None, ":", ",", False, False, True)
    scan, join, length = make_scanner(json.JSONDecoder()), "".join, len

    def dumps(value: object) -> str:
        return join(make(value, 0))

    def loads(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except StopIteration:
            raise ValueError("not a JSON value") from None
        if end != length(text):
            raise ValueError("extra data after the JSON value")
        return value

    return dumps, loads


def _frame_functions() -> tuple[
    Callable[[dict[str, Any]], bytes], Callable[[bytes | bytearray | memoryview], dict[str, Any]]
]:
    dumps, loads = _json_codec()
    pack, length, as_bytes, is_a, kind = HEADER.pack, len, bytes, isinstance, type
    object_type, text_type = dict, str

    def encode(message: dict[str, Any]) -> bytes:
        """One frame: header and JSON body."""
        body = dumps(message).encode("utf-8", ENCODING_ERRORS)
        if length(body) > MAX_FRAME:
            raise ProtocolError(f"message of {length(body):,} bytes is too large to send")
        return pack(length(body)) + body

    def decode_body(body: bytes | bytearray | memoryview) -> dict[str, Any]:
        """The message in a frame body; raises :class:`ProtocolError` for anything malformed."""
        try:
            value = loads(as_bytes(body).decode("utf-8", ENCODING_ERRORS))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ProtocolError(f"frame is not valid JSON: {kind(exc).__name__}") from None
        if not is_a(value, object_type) or not is_a(value.get("t"), text_type):
            raise ProtocolError("frame is not an object with a type")
        message: dict[str, Any] = value
        return message

    return encode, decode_body


encode, decode_body = _frame_functions()


class FrameDecoder:
    """Cuts a byte stream into messages, refusing any frame above ``max_bytes``.

    Incremental, so a reader never blocks inside a frame: it feeds what arrived and gets back
    the messages completed so far.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if size > self.max_bytes:
                raise ProtocolError(
                    f"frame of {size:,} bytes is over the limit of {self.max_bytes:,}"
                )
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            messages.append(decode_body(body))
        return messages

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole frame yet."""
        return len(self._buffer)


def _fd_functions() -> tuple[
    Callable[[int, bytes], None],
    Callable[[int, int], bytes | None],
    Callable[[int, int], dict[str, Any] | None],
]:
    """Blocking frame I/O for the worker, with references bound before any cell runs (see
    :func:`_json_codec`): the worker's reader thread reads sub-call replies while a cell runs."""
    write, read, view_of, smallest, length = os.write, os.read, memoryview, min, len
    join, unpack, header_size, decode = b"".join, HEADER.unpack, HEADER.size, decode_body

    def write_all(fd: int, data: bytes) -> None:
        view = view_of(data)
        while view:
            written = write(fd, view)
            view = view[written:]

    def read_exact(fd: int, size: int) -> bytes | None:
        """``size`` bytes from a blocking fd, or None at end of file."""
        chunks = []
        while size > 0:
            chunk = read(fd, smallest(size, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            size -= length(chunk)
        return join(chunks)

    def read_message(fd: int, max_bytes: int) -> dict[str, Any] | None:
        header = read_exact(fd, header_size)
        if header is None:
            return None
        (size,) = unpack(header)
        if size > max_bytes:
            raise ProtocolError(f"frame of {size:,} bytes is over the limit of {max_bytes:,}")
        body = read_exact(fd, size)
        if body is None:
            return None
        return decode(body)

    return write_all, read_exact, read_message


write_all, read_exact, _read_message = _fd_functions()


def read_message(fd: int, max_bytes: int = MAX_FRAME) -> dict[str, Any] | None:
    """One message from a blocking fd (the worker's side), or None at end of file."""
    return _read_message(fd, max_bytes)


# The context file ---------------------------------------------------------------------------

_CHUNK_CHARS = 1 << 18  # small slices reuse freed memory: no fresh pages to fault in


def _write_text(file: IO[bytes], text: str) -> int:
    """Write ``text`` as UTF-8 in slices, so a 100 MB string never needs a 100-400 MB copy."""
    written = 0
    for start in range(0, len(text), _CHUNK_CHARS):
        written += file.write(text[start : start + _CHUNK_CHARS].encode("utf-8", ENCODING_ERRORS))
    return written


def write_context(file: IO[bytes], context: str | Sequence[str]) -> dict[str, Any]:
    """Write a context to ``file``; returns its description for the ``init`` message."""
    if isinstance(context, str):
        size = _write_text(file, context)
        file.flush()
        return {"kind": "str", "data_bytes": size, "parts": 1}
    offsets = array("Q", [0])
    for part in context:
        if not isinstance(part, str):
            raise TypeError(f"a list context holds str, not {type(part).__name__}")
        offsets.append(offsets[-1] + _write_text(file, part))
    file.write(offsets.tobytes())
    file.flush()
    return {"kind": "list", "data_bytes": offsets[-1], "parts": len(offsets) - 1}


def read_context(fd: int, meta: dict[str, Any]) -> str | list[str]:
    """Map the context file read-only and decode it once."""
    kind, data_bytes, parts = meta["kind"], int(meta["data_bytes"]), int(meta["parts"])
    total = os.fstat(fd).st_size
    index_bytes = 8 * (parts + 1) if kind == "list" else 0
    if total != data_bytes + index_bytes:
        raise ValueError(f"context file has {total} bytes, expected {data_bytes + index_bytes}")
    if total == 0:
        return ""
    with mmap.mmap(fd, total, prot=mmap.PROT_READ) as mapped:
        view = memoryview(mapped)
        try:
            if kind == "str":
                return str(view[:data_bytes], "utf-8", ENCODING_ERRORS)
            offsets = array("Q")
            offsets.frombytes(view[data_bytes:total])
            if offsets[0] != 0 or offsets[-1] != data_bytes:
                raise ValueError("context file index does not match its data")
            return [
                str(view[offsets[i] : offsets[i + 1]], "utf-8", ENCODING_ERRORS)
                for i in range(parts)
            ]
        finally:
            view.release()
