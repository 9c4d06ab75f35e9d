"""Retries, redirects, TLS and counters of relay.registry.transport, against local fakes."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from relay.net.errors import ConnectionFailed, TLSFailed
from relay.net.retry import RetryPolicy, http_date
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig
from relay.net.transport import Transport, origin
from tests.fakes.registry import FakeRegistry
from tests.fixtures.registries import TestPKI

WHAT = "fake/a/b: test request"


class Sleeps:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def _transport(sleeps: Sleeps, attempts: int = 4, **kwargs: object) -> Transport:
    policy = RetryPolicy(attempts=attempts, backoff=0.01, max_retry_after=60, rng=lambda: 0.0)
    return Transport(retry=policy, sleep=sleeps, **kwargs)  # type: ignore[arg-type]


def test_retries_5xx_with_backoff_then_succeeds(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/$", status=503, times=2)
    fake.add_fault("GET", r"^/v2/$", status=502, times=1)
    transport = _transport(sleeps)
    resp = transport.request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert resp.status_code == 200
    assert sleeps.calls == [0.005, 0.01, 0.02]  # exponential, jitter pinned to its minimum
    snap = transport.stats.snapshot()
    assert snap.requests == {"GET ping": 4} and snap.retries == 3


def test_gives_up_after_attempts_and_returns_last_response(
    fake: FakeRegistry, sleeps: Sleeps
) -> None:
    fake.add_fault("GET", r"^/v2/$", status=500, times=10)
    transport = _transport(sleeps, attempts=3)
    assert transport.request("GET", fake.url + "/v2/", what=WHAT, kind="ping").status_code == 500
    assert fake.count("GET", r"^/v2/$") == 3 and len(sleeps.calls) == 2


def test_501_is_not_retried(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/$", status=501, times=10)
    assert (
        _transport(sleeps).request("GET", fake.url + "/v2/", what=WHAT, kind="ping").status_code
        == 501
    )
    assert fake.count("GET", r"^/v2/$") == 1


@pytest.mark.parametrize("as_date", [False, True])
def test_429_honours_retry_after(fake: FakeRegistry, sleeps: Sleeps, as_date: bool) -> None:
    value = http_date(time.time() + 20) if as_date else "7"
    fake.add_fault("GET", r"^/v2/$", status=429, headers={"Retry-After": value})
    resp = _transport(sleeps).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert resp.status_code == 200
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] == (pytest.approx(20, abs=2) if as_date else 7.0)


def test_429_without_retry_after_uses_backoff(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/$", status=429)
    _transport(sleeps).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert sleeps.calls == [0.005]


def test_retry_after_beyond_limit_gives_up_at_once(
    fake: FakeRegistry, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_fault("GET", r"^/v2/$", status=429, headers={"Retry-After": "21600"}, times=5)
    resp = _transport(sleeps).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert resp.status_code == 429 and sleeps.calls == []
    assert "21600" in caplog.text


def test_non_replayable_body_is_never_resent(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("PUT", r"/uploads/", status=503, times=5)
    sent: list[bytes] = []

    def body() -> Iterator[bytes]:
        for chunk in (b"a", b"b"):
            sent.append(chunk)
            yield chunk

    resp = _transport(sleeps).request(
        "PUT",
        fake.url + "/v2/a/blobs/uploads/x",
        what=WHAT,
        kind="upload",
        body=body(),
        replayable=False,
    )
    assert resp.status_code == 503
    assert fake.count("PUT") == 1 and sleeps.calls == []


def test_replayable_body_factory_is_called_per_attempt(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("PUT", r"/manifests/", status=500, times=1)
    made: list[int] = []

    def factory() -> bytes:
        made.append(1)
        return b'{"schemaVersion":2,"manifests":[]}'

    resp = _transport(sleeps).request(
        "PUT", fake.url + "/v2/a/manifests/t", what=WHAT, kind="manifest", body=factory
    )
    assert resp.status_code == 201 and len(made) == 2


def test_dropped_connection_is_retried(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/$", drop=True, times=2)
    resp = _transport(sleeps).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert resp.status_code == 200 and len(sleeps.calls) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_by_a_new_host_is_rechecked_once(sleeps: Sleeps) -> None:
    # A host that has not answered in this run and refuses: one quick re-check, not the
    # policy's attempts (refused is not load), then it is down for the run.
    port = _closed_port()
    transport = _transport(sleeps, attempts=3)
    with pytest.raises(ConnectionFailed) as info:
        transport.request(
            "GET", f"http://127.0.0.1:{port}/v2/a/blobs/x?sig=SECRET", what=WHAT, kind="blob"
        )
    message = str(info.value)
    assert f"127.0.0.1:{port} is not reachable from this machine (connection refused" in message
    assert "2 attempts" in message and "Errno" not in message and "Connection(" not in message
    assert "fake/a/b: test request failed" in message
    assert "SECRET" not in message
    assert len(sleeps.calls) == 1
    # Remembered: the next request fails with the same cause, without a connection or a wait.
    with pytest.raises(ConnectionFailed) as again:
        transport.request("GET", f"http://127.0.0.1:{port}/v2/", what=WHAT, kind="ping")
    assert str(again.value).endswith(message.split(" failed: ", 1)[1])
    assert transport.stats.snapshot().requests == {"GET blob": 2}
    assert len(sleeps.calls) == 1


def test_connection_refused_by_a_host_that_answered_gets_the_policy(sleeps: Sleeps) -> None:
    reg = FakeRegistry()
    transport = _transport(sleeps, attempts=3)
    url = reg.url + "/v2/"
    assert transport.request("GET", url, what=WHAT, kind="ping").status_code == 200
    reg.stop()
    transport.session.close()  # no kept-alive connection to the stopped server
    with pytest.raises(ConnectionFailed) as info:
        transport.request("GET", url, what=WHAT, kind="ping")
    message = str(info.value)
    assert "after 3 attempts: connection refused" in message and "not reachable" not in message
    assert len(sleeps.calls) == 2


def test_redirect_to_other_host_drops_authorization(fake: FakeRegistry, sleeps: Sleeps) -> None:
    storage = fake.with_storage()
    digest = fake.add_blob("a/b", b"layer-bytes")
    transport = _transport(sleeps)
    resp = transport.request(
        "GET",
        f"{fake.url}/v2/a/b/blobs/{digest}",
        what=WHAT,
        kind="blob",
        headers={"Authorization": "Bearer registry-token"},
        follow_redirects=True,
        auth_origin=origin(fake.url),
    )
    assert resp.status_code == 200 and resp.content == b"layer-bytes"
    registry_req = [r for r in fake.requests if "/blobs/" in r.path][-1]
    assert registry_req.headers["Authorization"] == "Bearer registry-token"
    [storage_req] = storage.requests
    assert "Authorization" not in storage_req.headers
    assert storage_req.query == "X-Signature=s3cr3t"
    assert transport.stats.count("GET", "blob") == 2


def test_redirect_on_same_origin_keeps_authorization(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/old$", status=307, headers={"Location": "/v2/"})
    _transport(sleeps).request(
        "GET",
        fake.url + "/v2/old",
        what=WHAT,
        kind="ping",
        headers={"Authorization": "Basic abc"},
        follow_redirects=True,
        auth_origin=origin(fake.url),
    )
    assert fake.requests[-1].path == "/v2/"
    assert fake.requests[-1].headers["Authorization"] == "Basic abc"


def test_redirects_not_followed_unless_asked(fake: FakeRegistry, sleeps: Sleeps) -> None:
    fake.add_fault("GET", r"^/v2/old$", status=307, headers={"Location": "/v2/"})
    resp = _transport(sleeps).request("GET", fake.url + "/v2/old", what=WHAT, kind="ping")
    assert resp.status_code == 307


def test_stats_can_be_shared(fake: FakeRegistry, sleeps: Sleeps) -> None:
    stats = RequestStats()
    _transport(sleeps, stats=stats).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    _transport(sleeps, stats=stats).request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
    assert stats.count("GET", "ping") == 2


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def system_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproduce the machine's environment: REQUESTS_CA_BUNDLE names the system bundle."""
    bundle = requests.certs.where()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)


def test_session_verify_is_overridden_by_env_but_per_request_verify_wins(
    tls_fake: FakeRegistry, test_pki: TestPKI, system_bundle_env: None, sleeps: Sleeps
) -> None:
    # The gotcha itself: Session.verify loses to REQUESTS_CA_BUNDLE when trust_env is on.
    session = requests.Session()
    session.verify = test_pki.ca_file
    with pytest.raises(requests.exceptions.SSLError):
        session.get(tls_fake.url + "/v2/", timeout=5)
    session.close()
    # Our transport passes verify= per request: a registry's own CA file wins over the variable.
    tls = TLSConfig(ca_bundles={tls_fake.host: test_pki.ca_file}, insecure_loopback=False)
    transport = _transport(sleeps, tls=tls)
    assert (
        transport.request("GET", tls_fake.url + "/v2/", what=WHAT, kind="ping").status_code == 200
    )


class ForwardProxy:
    """A plain-HTTP forward proxy that records the absolute URLs it was asked for."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                seen.append(self.path)
                direct = requests.Session()
                direct.trust_env = False  # the proxy itself must not follow HTTP_PROXY
                upstream = direct.get(self.path, timeout=5)
                direct.close()
                self.send_response(upstream.status_code)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = ForwardProxy()
    yield server
    server.stop()


def test_http_proxy_from_the_environment_is_used(
    fake: FakeRegistry, proxy: ForwardProxy, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    transport = _transport(sleeps)
    for _ in range(2):
        response = transport.request("GET", fake.url + "/v2/", what=WHAT, kind="ping")
        assert response.status_code == 200
    assert proxy.seen == [fake.url + "/v2/"] * 2


def test_no_proxy_is_honoured(
    fake: FakeRegistry, proxy: ForwardProxy, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    transport = _transport(sleeps)
    assert transport.request("GET", fake.url + "/v2/", what=WHAT, kind="ping").status_code == 200
    assert proxy.seen == []
    assert fake.count("GET", r"^/v2/$") == 1


def test_netrc_passwords_are_not_sent(
    fake: FakeRegistry, sleeps: Sleeps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests would add ~/.netrc credentials to any request without an Authorization header;
    # registry credentials come only from relay's providers.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    transport = _transport(sleeps)
    assert transport.request("GET", fake.url + "/v2/", what=WHAT, kind="ping").status_code == 200
    assert all("authorization" not in {k.lower() for k in r.headers} for r in fake.requests)


def test_untrusted_certificate_fails_for_secure_registry(
    tls_fake: FakeRegistry, system_bundle_env: None, sleeps: Sleeps
) -> None:
    transport = _transport(sleeps, tls=TLSConfig(insecure_loopback=False))
    with pytest.raises(TLSFailed) as info:
        transport.request("GET", tls_fake.url + "/v2/", what=WHAT, kind="ping")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert sleeps.calls == []  # certificate problems are not retried


def test_insecure_registry_falls_back_to_unverified_tls(
    tls_fake: FakeRegistry,
    system_bundle_env: None,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _transport(sleeps, tls=TLSConfig())  # 127.0.0.1 is insecure by default
    with caplog.at_level(logging.WARNING, logger="relay.net"):
        for _ in range(2):
            resp = transport.request("GET", tls_fake.url + "/v2/", what=WHAT, kind="ping")
            assert resp.status_code == 200
    assert caplog.text.count("WITHOUT verification") == 1
    assert transport.verify_for(tls_fake.host) is False
    # One failed verified handshake, then two unverified requests.
    assert transport.stats.count("GET", "ping") == 3


def test_deadline_on_a_body_ending_at_close_is_an_error_not_a_truncated_answer(
    sleeps: Sleeps,
) -> None:
    # No Content-Length: the body ends when the connection closes, so the watchdog's shutdown
    # of the socket at the deadline looks like that end. It must not return a truncated body.
    from relay.net.errors import DeadlineExceeded

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"tags": ["a"')
            while not stop.wait(0.2):
                try:
                    conn.sendall(b', "b"')
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v2/x/tags/list"
    transport = _transport(sleeps, attempts=1, deadline=1.0)
    try:
        with pytest.raises(DeadlineExceeded):
            response = transport.request("GET", url, what=WHAT, kind="tags")
            pytest.fail(f"returned {response.status_code} {response.content!r}")
    finally:
        stop.set()
        server.close()
        thread.join(5)
