"""An overall deadline per request, which socket timeouts cannot give.

requests' timeouts bound each socket operation: a server that sends one byte every two seconds
never trips a 120-second read timeout, and holds a run for as long as it likes (headers and
body alike). A `Watch` is armed around a request; the connections the request uses are
attached to it as urllib3 hands them out (the pool classes below); when the watch expires, a
single watchdog thread shuts those sockets down, which makes the blocked read return at once,
and the transport reports `DeadlineExceeded` instead of the resulting connection error.

A streamed body (a blob) has no fixed end time: `guard(response, seconds)` arms a watch
around each read of it, so each chunk must arrive within the deadline instead.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "relay_deadline_watch", default=None
)


class Watch:
    """One request's deadline and the connections it is using."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.fired = False
        self.done = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, connection: Any) -> None:
        with self._lock:
            if self.fired:
                _shutdown(connection)
            else:
                self._connections.append(connection)

    def fire(self) -> None:
        with self._lock:
            if self.done or self.fired:
                return
            self.fired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            _shutdown(connection)

    def cancel(self) -> None:
        with self._lock:
            self.done = True
            self._connections = []


def _shutdown(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One daemon thread that fires expired watches, started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            heapq.heappush(self._heap, (watch.expires, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="relay-deadline", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                expires, _, watch = self._heap[0]
                if watch.done or watch.fired:
                    heapq.heappop(self._heap)
                    continue
                delay = expires - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if watch.expires > time.monotonic():  # extended meanwhile: look again later
                self.add(watch)
            else:
                watch.fire()


_WATCHDOG = _Watchdog()


@contextmanager
def watching(seconds: float | None) -> Iterator[Watch | None]:
    """Arm a watch for the requests made in this block (None: no deadline)."""
    if not seconds:
        yield None
        return
    watch = Watch(seconds)
    token = _current.set(watch)
    _WATCHDOG.add(watch)
    try:
        yield watch
    finally:
        _current.reset(token)
        watch.cancel()


@contextmanager
def guard(response: Any, seconds: float | None) -> Iterator[Watch | None]:
    """A watch over the connection a streamed ``requests.Response`` is reading from."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    if not seconds or connection is None:
        yield None
        return
    watch = Watch(seconds)
    watch.attach(connection)
    _WATCHDOG.add(watch)
    try:
        yield watch
    finally:
        watch.cancel()


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    """Attaches each connection it hands out to the current request's watch."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        watch = _current.get()
        if watch is not None:
            watch.attach(connection)
        return connection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        watch = _current.get()
        if watch is not None:
            watch.attach(connection)
        return connection


POOL_CLASSES = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
