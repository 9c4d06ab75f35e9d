"""Servers that attack relay: a scriptable HTTP server whose routes answer whatever a test says
(forged error bodies, endless pages, huge or trickled bodies, bad redirects, realms on other
hosts), a recording CONNECT proxy, and a resolver that makes look-alike host names reach
127.0.0.1. Everything listens on 127.0.0.1 only and records what it was sent.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from relay.sandbox.common.httpserver import FakeServer, server_context


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Send the body this many bytes at a time, sleeping `trickle_every` seconds in between.
    trickle: int = 0
    trickle_every: float = 0.0
    # Announce this Content-Length instead of the body's (None: the body's).
    length: int | None = None
    # Stream the body as `stream_chunks` copies of `body` (a body too large to hold).
    stream_chunks: int = 0
    # Send the body chunked, with no Content-Length (a stream that announces nothing).
    chunked: bool = False

    @staticmethod
    def json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
        return Answer(
            status,
            {"Content-Type": "application/json", **(headers or {})},
            json.dumps(doc).encode(),
        )


Route = Callable[["_Handler", re.Match[str]], Answer | None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        hostile: HostileServer = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hostile.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        path = self.path.split("?", 1)[0]
        for method, pattern, route in hostile.routes:
            if method not in (self.command, "*"):
                continue
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            answer = route(self, match)
            if answer is None:
                return  # the route wrote (or dropped) the answer itself
            self._send(answer)
            return
        self._send(Answer.json({"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]}, 404))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _send(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            size = (
                answer.length
                if answer.length is not None
                else len(answer.body) * max(1, answer.stream_chunks)
            )
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            if answer.chunked:
                for _ in range(max(1, answer.stream_chunks)):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(answer.body), answer.body))
                self.wfile.write(b"0\r\n\r\n")
            elif answer.trickle:
                for i in range(0, len(answer.body), answer.trickle):
                    self.wfile.write(answer.body[i : i + answer.trickle])
                    self.wfile.flush()
                    time.sleep(answer.trickle_every)
            elif answer.stream_chunks:
                for _ in range(answer.stream_chunks):
                    self.wfile.write(answer.body)
            else:
                self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True


class HostileServer:
    """``routes``: (method or "*", path regex, route); the first match answers. A route
    returns an Answer, or None after writing to ``handler.wfile`` itself."""

    def __init__(self, *, tls: tuple[str, str] | None = None) -> None:
        self.routes: list[tuple[str, str, Route]] = []
        self.seen: list[Seen] = []
        ctx = server_context(*tls) if tls is not None else None
        self.scheme = "https" if tls else "http"
        self._server = FakeServer(("127.0.0.1", 0), _Handler, self, ctx)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def route(self, method: str, pattern: str, route: Route | Answer) -> None:
        if isinstance(route, Answer):
            fixed = route
            self.routes.append((method, pattern, lambda handler, match: fixed))
        else:
            self.routes.append((method, pattern, route))

    def registry(self) -> None:
        """Answer /v2/ like an open registry."""
        self.route("GET", "/v2/?", Answer.json({}))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def all_text(self) -> str:
        """Every request line, header and body it was sent, to look for secrets in."""
        parts = []
        for seen in self.seen:
            parts.append(f"{seen.method} {seen.path}")
            parts += [f"{k}: {v}" for k, v in seen.headers.items()]
            parts.append(seen.body.decode("latin-1"))
        return "\n".join(parts)


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileServer]]:
    """A factory of hostile servers, stopped after the test."""
    made: list[HostileServer] = []

    def make(**options: Any) -> HostileServer:
        server = HostileServer(**options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT) and records every byte it is sent before the
    tunnel opens, and every plain request line: what a proxy on the path can read."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            data += chunk
        self.seen.append(data)
        first = data.split(b"\r\n", 1)[0].split()
        if len(first) < 2 or first[0] != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        host, _, port = first[1].decode().rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 5)
                if not readable:
                    break
                for sock in readable:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    (upstream if sock is client else client).sendall(chunk)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def stop(self) -> None:
        self._stop = True
        self._sock.close()


@pytest.fixture
def lookalike_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make host names resolve to 127.0.0.1, as an attacker's look-alike domain would resolve
    to the attacker's server: ``lookalike_dns("registry-cn-hangzhou-aliyuncs.com")``."""
    names: set[str] = set()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host in names:
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names.add
