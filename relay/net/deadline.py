"""An overall deadline per request, which socket timeouts cannot give.

requests' timeouts bound each socket operation: a server that sends one byte every two seconds
never trips a 120-second read timeout, and holds a run for as long as it likes (headers and
body alike). A `Watch` is armed around a request; the connections the request uses are
attached to it as urllib3 hands them out (the pool classes below); when the watch expires, a
single watchdog thread shuts those sockets down, which makes the blocked read return at once,
and the transport reports `DeadlineExceeded` instead of the resulting connection error.

A streamed body (a blob) has no fixed end time: `guard(response, seconds)` arms a watch
around each read of it, so each chunk must arrive within the deadline instead.

Every watch armed is also listed while it lasts, deadline or not: `abort_all()` (Ctrl-C, see
relay.net.cancel) shuts down the sockets of every request in flight the same way.
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

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "relay_deadline_watch", default=None
)


class Watch:
    """One request's deadline (None: none) and the connections it is using. ``label`` names
    the request's host, for what an interrupted run says it abandoned."""

    def __init__(self, seconds: float | None, label: str = "") -> None:
        self.seconds = seconds
        self.label = label
        self.expires = time.monotonic() + (seconds or 0.0)
        self.fired = False  # the deadline passed
        self.aborted = False  # the run was interrupted (abort_all)
        self.done = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, connection: Any) -> None:
        with self._lock:
            if self.fired or self.aborted:
                _shutdown(connection)
            else:
                self._connections.append(connection)

    def fire(self, *, abort: bool = False) -> None:
        with self._lock:
            if self.done or self.fired or self.aborted:
                return
            if abort:
                self.aborted = True
            else:
                self.fired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            _shutdown(connection)

    def cancel(self) -> None:
        with self._lock:
            self.done = True
            self._connections = []


class _Descriptor:
    """A connection's socket by its file descriptor. TLS wraps the socket urllib3 connected in
    a new socket object on the same descriptor, and the connection holds the old, detached one
    until the handshake is done: during the handshake only the descriptor reaches it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd


def _shutdown(connection: Any) -> None:
    if isinstance(connection, _Descriptor):
        try:
            raw = socket.socket(fileno=connection.fd)
        except OSError:
            return
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            raw.detach()  # the descriptor stays the connection's to close
        return
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
                if watch.done or watch.fired or watch.aborted:
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
_live: set[Watch] = set()
_live_lock = threading.Lock()
_aborting = False


def _arm(watch: Watch) -> None:
    with _live_lock:
        _live.add(watch)
        aborting = _aborting
    if aborting:
        watch.fire(abort=True)
    elif watch.seconds:
        _WATCHDOG.add(watch)


def _disarm(watch: Watch) -> None:
    watch.cancel()
    with _live_lock:
        _live.discard(watch)


def abort_all() -> list[str]:
    """Shut down the sockets of every request in flight, and of every request armed from now
    on; returns their labels (one per request), sorted."""
    global _aborting
    with _live_lock:
        _aborting = True
        watches = list(_live)
    for watch in watches:
        watch.fire(abort=True)
    return sorted(w.label for w in watches if w.label)


def reset_abort() -> None:
    """Tests only: requests may run again after `abort_all`."""
    global _aborting
    with _live_lock:
        _aborting = False


@contextmanager
def watching(seconds: float | None, label: str = "") -> Iterator[Watch]:
    """Arm a watch for the requests made in this block (``seconds`` None: no deadline, but an
    interrupted run still shuts them down)."""
    watch = Watch(seconds, label)
    token = _current.set(watch)
    _arm(watch)
    try:
        yield watch
    finally:
        _current.reset(token)
        _disarm(watch)


@contextmanager
def guard(response: Any, seconds: float | None, label: str = "") -> Iterator[Watch | None]:
    """A watch over the connection a streamed ``requests.Response`` is reading from."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    if connection is None:
        yield None
        return
    watch = Watch(seconds, label)
    watch.attach(connection)
    _arm(watch)
    try:
        yield watch
    finally:
        _disarm(watch)


def _to_current_watch(target: Any) -> None:
    """Attach a socket or connection to the watch of the request being made, if any."""
    watch = _current.get()
    if watch is not None:
        watch.attach(target)


class WatchedHTTPConnection(HTTPConnection):
    """Attaches its new socket to the current request's watch as soon as it is connected, so
    a TLS handshake or a proxy CONNECT can be cut short too."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _to_current_watch(_Descriptor(sock.fileno()))
        return sock


class WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _to_current_watch(_Descriptor(sock.fileno()))
        return sock


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    """Attaches each connection it hands out to the current request's watch."""

    ConnectionCls = WatchedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        _to_current_watch(connection)
        return connection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        _to_current_watch(connection)
        return connection


POOL_CLASSES = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
