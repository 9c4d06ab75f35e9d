"""Challenges, scopes, token fetching and the token cache (relay.registry.auth)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from relay.net.retry import RetryPolicy
from relay.net.transport import Transport
from relay.registry.auth import (
    Challenge,
    Token,
    TokenCache,
    fetch_token,
    merge_scopes,
    parse_www_authenticate,
    repository_scope,
    scopes_cover,
    select_challenge,
)
from relay.registry.context import RequestContext
from relay.registry.credentials import Credential
from relay.registry.errors import AuthenticationError, ProtocolError
from relay.safety import redact
from tests.fakes.registry import FakeRegistry

CTX = RequestContext("fake", "a/b", "test")


# -- WWW-Authenticate ---------------------------------------------------------------------------


def test_parse_docker_hub_challenge() -> None:
    value = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    [ch] = parse_www_authenticate(value)
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.docker.io/token"
    assert ch.service == "registry.docker.io"
    assert ch.scopes == ("repository:library/nginx:pull",)
    assert ch.error is None


def test_parse_insufficient_scope_with_several_scopes_and_spaces() -> None:
    value = (
        'Bearer realm="https://r/token", service="svc" , '
        'scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"'
    )
    [ch] = parse_www_authenticate(value)
    assert ch.scopes == ("repository:a:pull,push", "repository:b:pull")
    assert ch.error == "insufficient_scope"
    assert ch.without_scope().params == {"realm": "https://r/token", "service": "svc"}


def test_parse_basic_quoted_escapes_and_unquoted_values() -> None:
    [ch] = parse_www_authenticate('Basic realm="say \\"hi\\", ok"')
    assert ch.scheme == "basic" and ch.realm == 'say "hi", ok'
    [ch] = parse_www_authenticate("Bearer realm=https://r/token,service=svc")
    assert ch.realm == "https://r/token" and ch.service == "svc"


def test_parse_several_challenges_prefers_bearer() -> None:
    challenges = parse_www_authenticate('Basic realm="x", Bearer realm="y",service="s"')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert select_challenge(challenges).realm == "y"  # type: ignore[union-attr]
    assert select_challenge(parse_www_authenticate('Negotiate, Basic realm="b"')).scheme == "basic"  # type: ignore[union-attr]
    assert select_challenge(parse_www_authenticate("Negotiate")) is None
    assert parse_www_authenticate(None) == [] and parse_www_authenticate("") == []


# -- scopes ---------------------------------------------------------------------------------


def test_merge_scopes() -> None:
    merged = merge_scopes(
        ["repository:a:pull"], ["repository:a:push", "repository:b:pull"], ["registry:catalog:*"]
    )
    assert merged == ("registry:catalog:*", "repository:a:pull,push", "repository:b:pull")
    assert merge_scopes(["repository:a:push,pull"]) == merge_scopes(["repository:a:pull,push"])
    assert repository_scope("x/y", "pull", "push") == "repository:x/y:pull,push"


def test_scopes_cover() -> None:
    push = ["repository:a:pull,push"]
    assert scopes_cover(push, ["repository:a:pull"])
    assert not scopes_cover(["repository:a:pull"], push)
    assert not scopes_cover(push, ["repository:b:pull"])
    assert scopes_cover(["repository:a:*"], push)
    assert scopes_cover(["registry:catalog:*"], ["registry:catalog:*"])
    assert scopes_cover(push, [])


# -- token cache ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fetcher(clock: Clock, calls: list[tuple[str, ...]], lifetime: float = 300, delay: float = 0):
    def fetch(scopes: tuple[str, ...]) -> Token:
        calls.append(scopes)
        value = f"t{len(calls)}"
        if delay:
            time.sleep(delay)
        return Token(value, clock() + lifetime, scopes, lifetime)

    return fetch


def test_cache_reuses_and_expires() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    calls: list[tuple[str, ...]] = []
    fetch = _fetcher(clock, calls, lifetime=60)
    ident = ("realm", "svc", "", "anonymous")
    assert cache.get(ident, ["repository:a:pull"], fetch).value == "t1"
    assert cache.get(ident, ["repository:a:pull"], fetch).value == "t1"
    # A different identity never shares tokens.
    assert cache.get(("realm", "svc", "bob", "basic"), ["repository:a:pull"], fetch).value == "t2"
    # Refreshed a little before expiry (10% of the lifetime).
    clock.now += 55
    assert cache.get(ident, ["repository:a:pull"], fetch).value == "t3"
    assert len(calls) == 3 and cache.fetches == 3


def test_cache_superset_token_serves_narrower_scope() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    calls: list[tuple[str, ...]] = []
    fetch = _fetcher(clock, calls)
    ident = ("r", "s", "u", "basic")
    assert cache.get(ident, ["repository:a:pull", "repository:a:push"], fetch).value == "t1"
    assert calls == [("repository:a:pull,push",)]
    assert cache.get(ident, ["repository:a:pull"], fetch).value == "t1"
    assert cache.get(ident, ["repository:b:pull"], fetch).value == "t2"


def test_cache_stale_token_is_replaced_once() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    calls: list[tuple[str, ...]] = []
    fetch = _fetcher(clock, calls)
    ident = ("r", "s", "", "anonymous")
    first = cache.get(ident, ["repository:a:pull"], fetch)
    second = cache.get(ident, ["repository:a:pull"], fetch, stale=first.value)
    assert second.value == "t2"
    # Another thread that also saw the first token fail gets the replacement, no new fetch.
    assert cache.get(ident, ["repository:a:pull"], fetch, stale=first.value).value == "t2"
    assert len(calls) == 2


def test_cache_single_flight_under_concurrency() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    calls: list[tuple[str, ...]] = []
    fetch = _fetcher(clock, calls, delay=0.05)
    ident = ("r", "s", "", "anonymous")
    results: list[str] = []
    barrier = threading.Barrier(16)

    def worker(i: int) -> None:
        barrier.wait()
        repo = f"repo{i % 2}"  # two scope sets, eight threads each
        results.append(cache.get(ident, [f"repository:{repo}:pull"], fetch).value)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2
    assert len(set(results)) == 2 and len(results) == 16


# -- fetch_token against a live fake token endpoint ------------------------------------------


@pytest.fixture
def token_fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry(auth="token")
    yield reg
    reg.stop()


def _transport() -> Transport:
    return Transport(retry=RetryPolicy(attempts=2, backoff=0.001))


# The fake registry and its realm are plain HTTP: credentials may go there (as to any
# plain-HTTP registry's realm). tests/test_security_credentials.py covers the refusal.
PLAIN = {"plain_http_ok": True}


def _challenge(reg: FakeRegistry) -> Challenge:
    return Challenge("bearer", {"realm": reg.url + "/token", "service": "fake-registry"})


@pytest.mark.parametrize("field", ["token", "access_token", "both"])
def test_fetch_token_fields_and_expiry(token_fake: FakeRegistry, field: str) -> None:
    token_fake.token_field = field
    token_fake.token_ttl = 120
    clock = Clock()
    token = fetch_token(
        _transport(),
        _challenge(token_fake),
        ("repository:public/x:pull",),
        None,
        CTX,
        clock=clock,
    )
    assert token.value.startswith("tok-")
    assert token.expires_at == clock.now + 120 and token.lifetime == 120
    assert redact(f"x {token.value}") == "x ***"
    req = [r for r in token_fake.requests if r.path == "/token"][-1]
    assert "Authorization" not in req.headers
    assert (
        "service=fake-registry" in req.query and "scope=repository%3Apublic%2Fx%3Apull" in req.query
    )


def test_fetch_token_with_basic_credentials(token_fake: FakeRegistry) -> None:
    cred = Credential("relay", "s3cret-pass", source="test")
    fetch_token(
        _transport(), _challenge(token_fake), ("repository:a:pull,push",), cred, CTX, **PLAIN
    )
    req = [r for r in token_fake.requests if r.path == "/token"][-1]
    assert req.headers["Authorization"].startswith("Basic ")
    assert "account=relay" in req.query


def test_fetch_token_bad_password_names_user_not_password(token_fake: FakeRegistry) -> None:
    cred = Credential("relay", "wrong-password", source="docker config")
    with pytest.raises(AuthenticationError) as info:
        fetch_token(
            _transport(), _challenge(token_fake), ("repository:a:pull",), cred, CTX, **PLAIN
        )
    message = str(info.value)
    assert "'relay'" in message and "rejected" in message
    assert "incorrect username or password" in message
    assert "wrong-password" not in message


def test_fetch_token_identity_token_uses_refresh_grant(token_fake: FakeRegistry) -> None:
    cred = Credential("", "", identity_token=token_fake.identity_token)
    token = fetch_token(
        _transport(), _challenge(token_fake), ("repository:a:pull",), cred, CTX, **PLAIN
    )
    assert token.value.startswith("tok-")
    assert [r.method for r in token_fake.requests if r.path == "/token"] == ["POST"]


def test_fetch_token_missing_realm_or_token(token_fake: FakeRegistry) -> None:
    with pytest.raises(ProtocolError):
        fetch_token(_transport(), Challenge("bearer", {}), (), None, CTX)
    token_fake.token_field = "neither"
    with pytest.raises(ProtocolError, match="no token"):
        fetch_token(_transport(), _challenge(token_fake), ("repository:a:pull",), None, CTX)


def test_default_lifetime_is_60s(token_fake: FakeRegistry) -> None:
    token_fake.token_ttl = None  # type: ignore[assignment]
    clock = Clock()
    token = fetch_token(
        _transport(), _challenge(token_fake), ("repository:a:pull",), None, CTX, clock=clock
    )
    assert token.expires_at == clock.now + 60
