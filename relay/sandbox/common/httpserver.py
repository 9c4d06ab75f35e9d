"""The threaded HTTP(S) server under every emulator, stand-in and test fake.

One place wraps TLS (in each connection's thread, so a client stuck in a handshake cannot stall
the accept loop) and swallows the errors of clients that drop keep-alive connections.
"""

from __future__ import annotations

import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class FakeServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on ``address`` that speaks TLS when given a context. ``owner`` is
    what the handlers serve (``self.server.owner``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: Any,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.owner = owner
        self.ssl_context = ssl_context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls_sock = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client rejected our certificate or hung up: nothing to serve
        try:
            super().finish_request(tls_sock, client_address)
        finally:
            try:
                tls_sock.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Resets from clients dropping keep-alive connections are normal; anything else still
        # surfaces as a failing status in the test that caused it.
        pass
