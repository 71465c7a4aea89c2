"""The pipes between the host and one worker process, and closing them (host side).

The worker gets the read end of its input pipe, the write ends of its message pipe and its
stderr, and, under bubblewrap, the write end of bwrap's info pipe (where bwrap tells the
worker's pid outside its pid namespace). The host keeps the other ends, and a wake-up pipe
that stops its reader thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass


def close_all(fds: Iterable[int | None]) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class WorkerPipes:
    in_r: int
    in_w: int
    out_r: int
    out_w: int
    err_r: int
    err_w: int
    wake_r: int
    wake_w: int
    info_r: int | None = None
    info_w: int | None = None

    @classmethod
    def open(cls, *, bwrap_info: bool) -> WorkerPipes:
        ends: list[int] = []
        try:
            for _ in range(5 if bwrap_info else 4):
                ends += os.pipe()
        except BaseException:
            close_all(ends)
            raise
        return cls(*ends)

    def child_fds(self, extra: Iterable[int]) -> list[int]:
        """What the worker inherits, besides its stderr."""
        info = [self.info_w] if self.info_w is not None else []
        return [self.in_r, self.out_w, *extra, *info]

    def close_child_ends(self) -> None:
        """Once the worker has its ends (or never will)."""
        close_all((self.in_r, self.out_w, self.err_w, self.info_w))

    def close_host_ends(self) -> None:
        """When the worker could not be started."""
        close_all((self.in_w, self.out_r, self.err_r, self.wake_r, self.wake_w, self.info_r))

    def read_ends(self) -> tuple[int, ...]:
        """What the reader thread polls: messages, stderr, the wake-up pipe and bwrap's info."""
        info = (self.info_r,) if self.info_r is not None else ()
        return (self.out_r, self.err_r, self.wake_r, *info)
