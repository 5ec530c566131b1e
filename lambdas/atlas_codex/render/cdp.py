"""A Chrome DevTools protocol client over ``--remote-debugging-pipe``.

The browser reads commands on file descriptor 3 and writes replies and events on 4, each a
JSON object ended by a NUL byte. One reader thread routes replies to their callers by id and
events to the session that subscribed to them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

BROWSER_READS: Final = 3
BROWSER_WRITES: Final = 4


class ProtocolError(Exception):
    """The browser answered a command with an error, or went away."""


def _high(fd: int) -> int:
    """``fd`` moved to a descriptor above the ones the child gets (close-on-exec)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """A browser process and its protocol pipe. Thread-safe: commands may come from any
    thread; each waits for its own reply."""

    def __init__(
        self, executable: str, args: Sequence[str], env: Mapping[str, str], log_path: str
    ) -> None:
        to_browser_r, self._to_browser = map(_high, os.pipe())
        self._from_browser, from_browser_w = map(_high, os.pipe())

        def place_pipes() -> None:  # in the child, before exec: 3 and 4 stay open
            os.dup2(to_browser_r, BROWSER_READS)
            os.dup2(from_browser_w, BROWSER_WRITES)

        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own binary and flags
                [executable, "--remote-debugging-pipe", *args],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                close_fds=False,  # our other descriptors are close-on-exec (Python's default)
                preexec_fn=place_pipes,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._events: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self._pipes_closed = False
        threading.Thread(target=self._read, name="cdp-reader", daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    break
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    self._route(json.loads(raw))
        except OSError:
            pass
        finally:
            self.closed.set()
            with self._lock:
                for waiter in self._waiting.values():
                    waiter.put({"error": {"message": "the browser closed its pipe"}})

    def _route(self, message: dict[str, Any]) -> None:
        with self._lock:
            if "id" in message:
                waiter = self._waiting.pop(message["id"], None)
                if waiter is not None:
                    waiter.put(message)
                return
            events = self._events.get(message.get("sessionId", ""))
        if events is not None:
            events.put(message)

    def subscribe(self, session: str) -> queue.Queue[dict[str, Any]]:
        """The queue that receives the events of ``session`` ("" for the browser's)."""
        with self._lock:
            return self._events.setdefault(session, queue.Queue())

    def unsubscribe(self, session: str) -> None:
        with self._lock:
            self._events.pop(session, None)

    def send(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        if self.closed.is_set():
            raise ProtocolError("the browser is not running")
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": dict(params or {})}
        if session:
            message["sessionId"] = session
        waiter: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        with self._lock:
            self._waiting[number] = waiter
        with self._write_lock:
            try:
                os.write(self._to_browser, json.dumps(message).encode() + b"\0")
            except OSError as exc:
                raise ProtocolError(f"the browser's pipe is closed ({exc})") from None
        try:
            reply = waiter.get(timeout=timeout)
        except queue.Empty:
            with self._lock:
                self._waiting.pop(number, None)
            raise ProtocolError(f"{method}: no answer within {timeout:.0f} s") from None
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error'].get('message', reply['error'])}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def kill(self) -> None:
        """Stop the process at once (a browser that no longer answers is not asked)."""
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        # The process is gone: the reader sees the end of its pipe and stops first, so no
        # read ever reaches a descriptor number the process reuses after the close.
        self.closed.wait(timeout=5)
        with self._lock:  # once: a descriptor number closed twice may be another file's
            if self._pipes_closed:
                return
            self._pipes_closed = True
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
