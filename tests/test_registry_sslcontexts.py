"""Shared TLS contexts (relay.registry.sslcontexts), against a local TLS fake registry."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests
import urllib3.connection

from relay.net import sslcontexts
from relay.net.errors import TLSFailed
from relay.net.retry import RetryPolicy
from relay.net.tls import TLSConfig
from relay.net.transport import Transport
from tests.fakes.registry import FakeRegistry
from tests.fixtures.registries import TestPKI

WHAT = "fake/a/b: test request"


class Counter:
    def __init__(self, wrapped: object) -> None:
        self.wrapped = wrapped
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.wrapped(*args, **kwargs)  # type: ignore[operator]


def _transport(tls: TLSConfig) -> Transport:
    policy = RetryPolicy(attempts=1, backoff=0.01, rng=lambda: 0.0)
    return Transport(retry=policy, tls=tls, sleep=lambda _: None)


def _new_connection_each_time(transport: Transport, url: str, times: int) -> None:
    for _ in range(times):
        # Connection: close makes urllib3 open a fresh connection (and TLS handshake) each time.
        response = transport.request(
            "GET", url, what=WHAT, kind="ping", headers={"Connection": "close"}
        )
        assert response.status_code == 200
        response.close()


def test_connections_share_one_context_per_trust_setting(
    tls_fake: FakeRegistry, test_pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sslcontexts, "CONTEXTS", sslcontexts.ContextCache())
    builds = Counter(sslcontexts.build_context)
    per_connection = Counter(urllib3.connection.create_urllib3_context)
    monkeypatch.setattr(sslcontexts, "build_context", builds)
    monkeypatch.setattr(urllib3.connection, "create_urllib3_context", per_connection)
    tls = TLSConfig(ca_bundles={tls_fake.host: test_pki.ca_file}, insecure_loopback=False)
    # Two clients, as a copy has (one per registry), each with its own session.
    for transport in (_transport(tls), _transport(tls)):
        _new_connection_each_time(transport, tls_fake.url + "/v2/", 2)
        assert transport.stats.count("GET", "ping") == 2
    # Four handshakes, one context built (and one CA bundle read); urllib3 built none.
    assert builds.calls == 1
    assert per_connection.calls == 0


def test_shared_context_still_verifies(
    tls_fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's bundle does not hold the test CA: the handshake must fail, every time,
    # even though the context is reused.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    transport = _transport(TLSConfig(insecure_loopback=False))
    for _ in range(2):
        with pytest.raises(TLSFailed, match="CERTIFICATE_VERIFY_FAILED"):
            transport.request("GET", tls_fake.url + "/v2/", what=WHAT, kind="ping")


def test_verified_contexts_check_host_names(test_pki: TestPKI) -> None:
    for verify in (True, test_pki.ca_file, str(Path(test_pki.ca_file).parent)):
        context = sslcontexts.build_context(verify)
        assert context is not None
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    unverified = sslcontexts.build_context(False)
    assert unverified is not None and unverified.verify_mode == ssl.CERT_NONE


def test_missing_ca_file_is_still_reported_by_requests(
    tls_fake: FakeRegistry, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere.pem")
    assert sslcontexts.build_context(missing) is None
    transport = _transport(TLSConfig(ca_bundles={tls_fake.host: missing}))
    with pytest.raises(TLSFailed, match="TLS CA certificate bundle"):
        transport.request("GET", tls_fake.url + "/v2/", what=WHAT, kind="ping")


def test_env_bundle_gets_its_own_context(
    tls_fake: FakeRegistry, test_pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REQUESTS_CA_BUNDLE replaces verify=True inside requests; the context follows it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", test_pki.ca_file)
    transport = _transport(TLSConfig(insecure_loopback=False))
    _new_connection_each_time(transport, tls_fake.url + "/v2/", 2)
    adapter = transport.session.get_adapter("https://x")
    assert isinstance(adapter, sslcontexts.SharedContextAdapter)
    assert adapter.context_for(test_pki.ca_file) is adapter.context_for(test_pki.ca_file)
    assert requests.certs.where() != test_pki.ca_file
