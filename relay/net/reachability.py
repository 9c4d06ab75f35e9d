"""Which hosts answer, found out once per run and remembered.

Behind the firewall, unreachable upstream is the normal case: a name that does not
resolve, or a connection that is accepted and never answered. Without a memory of it every
image on such a registry waits out the same timeouts and retries again, one after another.
`Reachability` is that memory, shared by every client of a run (relay.registry.pool); the
transport consults it around each logical request (relay.net.transport):

* A host (scheme, name, port) that has not answered yet in this run is probed by one request
  at a time. Requests to it from other threads wait for the outcome instead of each waiting
  out the same timeouts.
* Until the host has answered, a name that does not resolve, a refused connection and a
  timeout get one quick re-check (`ATTEMPTS` tries in all), not the full retry policy made
  for a registry that answers with 5xx: they are not load, and trying five times only
  multiplies the wait. The second try absorbs a lost SYN or a resolver hiccup. A connection
  reset keeps the full policy (a registry restarting drops connections too).
* When the tries fail, the host is down for the run: an `Outage`. Every later request to it
  fails at once, with `HostUnreachable` carrying that same outage (the same cause in the same
  words, for the grouped report), without a connection attempt. A name that does not resolve
  is down on every port; a refused or timed-out TCP connection is down under both schemes.
* A host that has answered once (any HTTP status, a TLS certificate) is up for the run: its
  later failures are transient and get the full retry policy.

`classify()` turns what requests, urllib3 and the socket layer raise into one line a person can
act on ("connect timed out after 5 s"); no library's exception text reaches the user.
"""

from __future__ import annotations

import errno
import http.client
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import requests
import urllib3

from relay import safety
from relay.net import cancel
from relay.net.errors import ConnectionFailed

log = logging.getLogger(__name__)

# Tries for a host that has not answered yet: the first and one re-check.
ATTEMPTS = 2

Kind = Literal[
    "dns",  # the name does not resolve
    "refused",  # nothing listens there (or a firewall rejects)
    "connect-timeout",  # no TCP connection within the connect timeout (SYNs dropped)
    "tls-timeout",  # connected, but the TLS handshake got no answer
    "read-timeout",  # connected, but the request got no answer
    "reset",  # the connection was reset or closed before an answer
    "no-route",  # no route to the host or its network
    "other",
]
# Failures that more tries would not change (once the re-check has failed too).
FINAL_KINDS: frozenset[Kind] = frozenset(
    {"dns", "refused", "connect-timeout", "tls-timeout", "read-timeout", "no-route"}
)
# Failures before any TCP connection: the same host and port fail under either scheme.
_BEFORE_CONNECTION: frozenset[Kind] = frozenset({"refused", "connect-timeout", "no-route"})


@dataclass(frozen=True)
class Failure:
    """One connection failure, classified: ``detail`` is what to print; ``setting`` names
    the timeout that ended it, when one did ("registries.limits.connect_timeout")."""

    kind: Kind
    detail: str
    setting: str = ""

    @property
    def text(self) -> str:
        return f"{self.detail}; {self.setting} sets the wait" if self.setting else self.detail


@dataclass(frozen=True)
class Outage:
    """A host found unreachable in this run: what every request to it fails with."""

    host: str  # host[:port] as relay shows it: quay.io, registry-1.docker.io, 10.0.0.5:5000
    kind: Kind
    detail: str  # "connect timed out after 5 s"
    attempts: int
    seconds: float
    proxy: str = ""  # the proxy the requests went through, when one is set
    setting: str = ""  # the timeout that ended it: "registries.limits.connect_timeout"

    @property
    def cause(self) -> str:
        tries = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        took = f"{self.seconds:.1f} s" if self.seconds < 10 else f"{self.seconds:.0f} s"
        through = f" through the proxy {self.proxy}" if self.proxy else ""
        said = f"{self.detail}; {tries}{through} in {took}"
        return f"{said}; {self.setting} sets the wait" if self.setting else said

    def __str__(self) -> str:
        return f"{self.host} is not reachable from this machine ({self.cause})"


class HostUnreachable(ConnectionFailed):
    """A request to a host found unreachable in this run (maybe by this very request)."""

    def __init__(self, outage: Outage, *, action: str = "") -> None:
        self.outage = outage
        super().__init__(str(outage), action=action)


def outage_of(exc: BaseException | None) -> Outage | None:
    """The outage behind an error, wherever it was wrapped on the way up (registry errors,
    mirror fallbacks and stage errors chain the transport's `HostUnreachable`)."""
    for each in _chain(exc):
        if isinstance(each, HostUnreachable):
            return each.outage
    return None


# --- classifying what the libraries raise ---------------------------------------------------------


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, and the exception requests and urllib3 keep
    in their first argument or ``reason`` (MaxRetryError)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        inner = current.args[0] if current.args else None
        for nxt in (reason, inner, current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


_RESET = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN}
# What is left of a library's message once its class names and repr()s are dropped.
_NOISE = re.compile(
    r"(?:HTTPS?Connection(?:Pool)?\([^)]*\)|<[\w.]+ object at 0x[0-9a-f]+>|\[Errno -?\d+\]"
    r"|Max retries exceeded with url: \S+|\(Caused by \w+\()",
)


def classify(
    exc: BaseException,
    *,
    connect: float | None = None,
    read: float | None = None,
    hint: str = "",
) -> Failure:
    """What went wrong with a connection, in one plain line. ``connect``/``read`` are the
    timeouts in force; ``hint`` names where they are set ("registries.limits")."""
    chain = list(_chain(exc))

    def setting(name: str) -> str:
        return f"{hint}.{name}" if hint else ""

    for each in chain:
        if isinstance(each, socket.gaierror):
            said = each.args[1] if len(each.args) > 1 else str(each)
            return Failure("dns", f"its name does not resolve: {said}")
    for each in chain:
        if isinstance(each, ConnectionRefusedError):
            return Failure("refused", "connection refused")
    for each in chain:
        if isinstance(each, (urllib3.exceptions.ConnectTimeoutError, requests.ConnectTimeout)):
            return Failure(
                "connect-timeout",
                f"connect timed out after {_secs(connect)}",
                setting("connect_timeout"),
            )
    if any(isinstance(e, (TimeoutError, urllib3.exceptions.ReadTimeoutError)) for e in chain):
        if any("handshake" in str(e).lower() for e in chain):
            return Failure(
                "tls-timeout",
                f"no answer to the TLS handshake within {_secs(connect)}",
                setting("connect_timeout"),
            )
        return Failure(
            "read-timeout",
            f"connected, but no answer within {_secs(read)}",
            setting("read_timeout"),
        )
    for each in chain:
        if isinstance(each, _RESET):
            return Failure("reset", "the connection was closed or reset without an answer")
    for each in chain:
        if isinstance(each, OSError) and each.errno in _NO_ROUTE:
            return Failure("no-route", (each.strerror or "no route to host").lower())
    for each in chain:
        if isinstance(each, urllib3.exceptions.ProtocolError) and "aborted" in str(each).lower():
            return Failure("reset", "the connection was closed or reset without an answer")
    return Failure("other", f"connection failed: {_plain(chain[-1] if chain else exc)}")


def _secs(value: float | None) -> str:
    return f"{value:g} s" if value is not None else "the timeout"


def _plain(exc: BaseException) -> str:
    """A library exception's words without its class names, object reprs or URLs."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = _NOISE.sub(" ", str(text))
    text = " ".join(text.replace("'", " ").replace('"', " ").split()).strip(" :,()")
    # Redacted before it is cut: a secret straddling the cut would leave its prefix behind.
    return safety.redact(text)[:200] or type(exc).__name__


_HOST_IN_TEXT = re.compile(r"host='([^']+)'")
_SECONDS_IN_TEXT = re.compile(r"(connect|read) timeout=([0-9.]+)")
_TEXT_KINDS: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (
        re.compile(
            r"Failed to resolve|Name or service not known|nodename nor servname|"
            r"Temporary failure in name resolution|getaddrinfo failed|NameResolutionError",
            re.I,
        ),
        "dns",
    ),
    (re.compile(r"Connection refused", re.I), "refused"),
    (
        re.compile(r"ConnectTimeout|Connection to \S+ timed out|connect timeout=", re.I),
        "connect-timeout",
    ),
    (re.compile(r"handshake operation timed out", re.I), "tls-timeout"),
    (re.compile(r"Read timed out|ReadTimeout", re.I), "read-timeout"),
    (
        re.compile(r"Connection reset|Connection aborted|RemoteDisconnected|EOF occurred", re.I),
        "reset",
    ),
    (re.compile(r"No route to host|Network is unreachable", re.I), "no-route"),
)


def condense(text: str) -> str | None:
    """A library's connection error that reached relay only as text (an SDK's message, say)
    said as one cause: ``cannot reach cr.cn-hangzhou.aliyuncs.com: connection refused``.
    None when the text is not a connection error relay recognises."""
    kind = next((k for pattern, k in _TEXT_KINDS if pattern.search(text)), None)
    if kind is None:
        return None
    seconds = dict(_SECONDS_IN_TEXT.findall(text))
    connect = f"{float(seconds['connect']):g} s" if "connect" in seconds else "the timeout"
    read = f"{float(seconds['read']):g} s" if "read" in seconds else "the timeout"
    detail = {
        "dns": "its name does not resolve",
        "refused": "connection refused",
        "connect-timeout": f"connect timed out after {connect}",
        "tls-timeout": f"no answer to the TLS handshake within {read}",
        "read-timeout": f"connected, but no answer within {read}",
        "reset": "the connection was closed or reset without an answer",
        "no-route": "no route to the host",
    }[kind]
    host = _HOST_IN_TEXT.search(text)
    return f"cannot reach {host.group(1)}: {detail}" if host else f"cannot connect: {detail}"


# --- the memory -----------------------------------------------------------------------------------


class Contact:
    """One logical request's dealings with the memory (see `Reachability.enter`)."""

    def __init__(self, reach: Reachability, keys: tuple[str, str, str], probing: bool) -> None:
        self._reach = reach
        self._keys = keys
        self.probing = probing
        self.answered = False
        self._settled = not probing

    @property
    def unknown(self) -> bool:
        """The host has not answered in this run (only a probing request sees this)."""
        return self.probing and not self.answered

    def heard(self) -> None:
        """The host answered (headers, a TLS certificate): it is up for the run."""
        if self.answered:
            return
        self.answered = True
        if not self._settled:
            self._settled = True
            self._reach.mark_answered(self._keys)

    def down(self, outage: Outage) -> None:
        if not self._settled:
            self._settled = True
            self._reach.mark_down(self._keys, outage)

    def close(self) -> None:
        """Let another request probe when this one ended neither way (interrupted, say)."""
        if not self._settled:
            self._settled = True
            self._reach.mark_released(self._keys)


class Reachability:
    """The run's memory of which hosts answer. Thread-safe; share one across the clients of a
    run (relay.registry.pool.ClientPool does)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._answered: set[str] = set()
        self._probing: set[str] = set()
        self._down: dict[str, Outage] = {}

    @staticmethod
    def _key(scheme: str, host: str, port: int) -> tuple[str, str, str]:
        """(origin, endpoint, name): what an outage of each kind covers."""
        host = host.lower()
        return f"{scheme.lower()}://{host}:{port}", f"{host}:{port}", host

    def outage(self, scheme: str, host: str, port: int) -> Outage | None:
        origin, endpoint, name = self._key(scheme, host, port)
        with self._cond:
            return self._down.get(origin) or self._down.get(endpoint) or self._down.get(name)

    def outages(self) -> list[Outage]:
        """Every outage of the run, once each, by host."""
        with self._cond:
            found = {o.host: o for o in self._down.values()}
        return [found[h] for h in sorted(found)]

    def enter(self, scheme: str, host: str, port: int, *, action: str = "") -> Contact:
        """Before a request to ``scheme://host:port``: `HostUnreachable` if the host is down for
        the run; otherwise a Contact, probing when the host has not answered yet (after waiting
        for another thread's probe of it to end)."""
        keys = self._key(scheme, host, port)
        origin, endpoint, name = keys
        with self._cond:
            while True:
                found = self._down.get(origin) or self._down.get(endpoint) or self._down.get(name)
                if found is not None:
                    raise HostUnreachable(found, action=action)
                if origin in self._answered:
                    return Contact(self, keys, probing=False)
                if origin not in self._probing:
                    self._probing.add(origin)
                    return Contact(self, keys, probing=True)
                self._cond.wait(0.1)
                cancel.check()

    def mark_answered(self, keys: tuple[str, str, str]) -> None:
        with self._cond:
            self._answered.add(keys[0])
            self._probing.discard(keys[0])
            self._cond.notify_all()

    def mark_down(self, keys: tuple[str, str, str], outage: Outage) -> None:
        origin, endpoint, name = keys
        covers = name if outage.kind == "dns" else endpoint
        if outage.kind not in _BEFORE_CONNECTION and outage.kind != "dns":
            covers = origin
        with self._cond:
            first = not any(o.host == outage.host for o in self._down.values())
            self._down.setdefault(covers, outage)
            self._probing.discard(origin)
            self._cond.notify_all()
        if first:
            log.warning("%s; not trying it again in this run", outage)

    def mark_released(self, keys: tuple[str, str, str]) -> None:
        with self._cond:
            self._probing.discard(keys[0])
            self._cond.notify_all()
