"""The HTTP front every emulator sits behind: a threaded server on 127.0.0.1, HTTP or HTTPS.

It reads the request (bounded), hands a :class:`Request` to the emulator and writes back the
:class:`Reply`. It knows nothing about any vendor: error bodies for a too-large request or an
emulator bug come from the emulator's ``on_error`` hook, so they keep the vendor's shape.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relay.sandbox.common.httpserver import FakeServer, server_context

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1 << 20  # control-plane bodies are tiny; refuse anything silly


class BodyTooLarge(Exception):
    pass


class ResetConnection(Exception):
    """Raised by an emulator to drop the connection with a TCP reset instead of answering."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request target as sent: "/path?query"
    headers: dict[str, str]  # lower-case names; the first value of a repeated header
    body: bytes
    header_items: tuple[tuple[str, str], ...] = ()  # every header as sent (repeats kept)
    client: str = ""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_pairs)

    def header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.header_items if k.lower() == lname]


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


App = Callable[[Request], Reply]
ErrorHook = Callable[[int, str], Reply]


class HttpFront:
    """``HttpFront(app, on_error=...).start()``; ``url``/``endpoint`` once bound; ``stop()``."""

    def __init__(
        self,
        app: App,
        *,
        on_error: ErrorHook,
        name: str = "emulator",
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        ctx: ssl.SSLContext | None = None
        if tls_cert is not None and tls_key is not None:
            ctx = server_context(tls_cert, tls_key)
        self.name = name
        self.max_body = max_body
        self._httpd = _Server((host, port), _Handler, app=app, on_error=on_error, front=self)
        self._httpd.ssl_context = ctx
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self._httpd.ssl_context is not None

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"{name}:{port}"

    @property
    def url(self) -> str:
        return ("https://" if self.tls else "http://") + self.endpoint

    def start(self) -> HttpFront:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=self.name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class _Server(FakeServer):
    def __init__(
        self,
        addr: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        app: App,
        on_error: ErrorHook,
        front: HttpFront,
    ) -> None:
        self.app = app
        self.on_error = on_error
        self.front = front
        super().__init__(addr, handler, front)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping keep-alive connections (and injected resets) are normal here.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the vendors' servers and SDK sessions use
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on every call.
    disable_nagle_algorithm = True
    server: _Server

    def _read_body(self) -> bytes:
        limit = self.server.front.max_body
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > limit:
                    raise BodyTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (BodyTooLarge, ValueError):
            self._write(self.server.on_error(413, "request body too large"))
            self.close_connection = True
            return
        items = tuple((k, v) for k, v in self.headers.items())
        headers: dict[str, str] = {}
        for name, value in items:
            headers.setdefault(name.lower(), value)
        request = Request(
            method=self.command,
            target=self.path,
            headers=headers,
            body=body,
            header_items=items,
            client=self.address_string(),
        )
        try:
            reply = self.server.app(request)
        except ResetConnection:
            self._reset()
            return
        except Exception:  # an emulator bug: answer the vendor's 500, and log it
            log.exception("%s failed on %s %s", self.server.front.name, self.command, request.path)
            reply = self.server.on_error(500, "emulator internal error")
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        # A HEAD answer may name the length of the body a GET would send (a proxy passing a
        # registry's HEAD on); otherwise the length is the body's.
        if not any(name.lower() == "content-length" for name, _ in reply.headers):
            self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only go to debug logging; Authorization headers are never logged.
        log.debug("%s %s", self.address_string(), format % args)
