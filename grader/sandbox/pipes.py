"""The child's stdin and stdout, written and read without ever waiting past a deadline: select() on non-blocking
pipes, or on Windows, where select() takes sockets only, a thread for each direction."""
from __future__ import annotations

import os
import queue
import selectors
import threading
from typing import IO

from grader.sandbox.common import WINDOWS

CHUNK = 1 << 20


class _SelectPipes:
    """Non-blocking pipes under one selector: a request that does not fit the pipe is written as the child reads."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._pipes = (stdin, stdout)
        self._in, self._out = stdin.fileno(), stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self._pending = memoryview(b"")
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out, selectors.EVENT_READ)

    def send(self, data: bytes) -> None:
        """Write data (replacing what is still pending): what the pipe takes now, the rest in receive()."""
        self._pending = memoryview(data)
        self._write()

    def _write(self) -> None:
        try:
            self._pending = self._pending[os.write(self._in, self._pending):] if self._pending else self._pending
        except BlockingIOError:
            pass
        except BrokenPipeError:  # the child is gone: EOF on its stdout will say how
            self._pending = self._pending[:0]

    def receive(self, timeout: float) -> bytes | None:
        """The child's next output (b"" at its end), or None when none came within timeout."""
        writing = self._in in self._selector.get_map()
        if bool(self._pending) != writing:
            if writing:
                self._selector.unregister(self._in)
            else:
                self._selector.register(self._in, selectors.EVENT_WRITE)
        for key, _ in self._selector.select(timeout):
            if key.fd == self._in:
                self._write()
            else:
                return os.read(self._out, CHUNK)
        return None

    def close(self) -> None:
        self._selector.close()
        for pipe in self._pipes:
            pipe.close()


class _ThreadPipes:
    """Windows: a thread reads the child's stdout into a queue, and each request is written by a thread of its own.
    The reader closes both pipes once the child and whatever inherited its stdout are gone: closing them sooner,
    under a thread blocked on one, could block, or hand the thread a reused descriptor."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._stdin = stdin
        self._chunks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        try:
            while chunk := os.read(stdout.fileno(), CHUNK):
                self._chunks.put(chunk)
        except OSError:
            pass
        self._chunks.put(b"")
        stdout.close()
        try:
            self._stdin.close()
        except OSError:  # a request left unwritten: nobody reads it any more
            pass

    def send(self, data: bytes) -> None:
        if data:
            threading.Thread(target=self._write, args=(data,), daemon=True).start()

    def _write(self, data: bytes) -> None:
        try:
            self._stdin.write(data)
            self._stdin.flush()
        except (OSError, ValueError):  # the child is gone: EOF on its stdout will say how
            pass

    def receive(self, timeout: float) -> bytes | None:
        try:
            return self._chunks.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing: the reader closes the pipes when they end (the child is killed before this is called)."""


def child_pipes(stdin: IO[bytes], stdout: IO[bytes]) -> _SelectPipes | _ThreadPipes:
    return _ThreadPipes(stdin, stdout) if WINDOWS else _SelectPipes(stdin, stdout)
