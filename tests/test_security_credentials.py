"""A credential goes only to the host it was configured for.

Attacked from every side a credential can leave by: a look-alike host that folds to the same
environment variable, a token realm on plain HTTP, a token cached for another registry, a 401
from a host the registry redirected to, a read mirror, a proxy on the path.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay import cli
from relay.errors import InputError
from relay.net.retry import RetryPolicy
from relay.registry.auth import TokenCache
from relay.registry.client import RegistryClient
from relay.registry.credentials import (
    AmbiguousCredentials,
    Credential,
    EnvCredentials,
    StaticCredentials,
)
from relay.registry.errors import AuthenticationError, RegistryError
from relay.registry.pool import ClientPool
from tests.fakes.hostile import ConnectProxy
from tests.fakes.registry import OCI_MANIFEST, FakeRegistry

SECRET = "push-secret-value-7f3a"
FAST = RetryPolicy(attempts=1, backoff=0.001)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _leaked(text: str) -> bool:
    return SECRET in text or _b64(f"push:{SECRET}") in text


def _sent(reg: FakeRegistry) -> str:
    return "\n".join(f"{r.path} {r.query} {r.headers}" for r in reg.requests)


# --- the host → credential mapping is injective --------------------------------------------------

LOOKALIKES = [
    ("registry.cn-hangzhou.aliyuncs.com", "registry-cn-hangzhou-aliyuncs.com"),
    ("harbor.lan:5000", "harbor-lan-5000"),
    ("harbor.lan:5000", "harbor.lan-5000"),
    ("a.b.c", "a-b.c"),
]


@pytest.mark.parametrize(("host", "lookalike"), LOOKALIKES)
def test_per_host_variable_never_reaches_a_lookalike(host: str, lookalike: str) -> None:
    assert EnvCredentials.variable_name(host) == EnvCredentials.variable_name(lookalike)
    env = {EnvCredentials.variable_name(host): f"push:{SECRET}"}
    creds = EnvCredentials(env)
    for asked in (host, lookalike):
        if EnvCredentials.unambiguous(asked):
            continue
        with pytest.raises(AmbiguousCredentials) as info:
            creds.get(asked)
        assert SECRET not in str(info.value)
        assert "RELAY_REGISTRY_AUTH=" in str(info.value)
    # The look-alike is never handed the secret.
    try:
        got = creds.get(lookalike)
    except AmbiguousCredentials:
        got = None
    assert got is None


@pytest.mark.parametrize(("host", "lookalike"), LOOKALIKES)
def test_map_is_exact(host: str, lookalike: str) -> None:
    creds = EnvCredentials(EnvCredentials.environment({host: f"push:{SECRET}"}))
    assert creds.get(host) == Credential("push", SECRET, source=creds.get(host).source)  # type: ignore[union-attr]
    assert creds.get(lookalike) is None


def test_map_wins_over_the_per_host_variable_and_keeps_namespaces() -> None:
    env = {
        **EnvCredentials.environment(
            {"harbor.lan:5000": "a:1111", "ghcr.io/org": "b:2222", "docker.io": "c:3333"}
        ),
        "RELAY_REGISTRY_AUTH_HARBOR_LAN_5000": "x:9999",
    }
    creds = EnvCredentials(env)
    assert creds.get("harbor.lan:5000").username == "a"  # type: ignore[union-attr]
    assert creds.get("ghcr.io", "org/app").username == "b"  # type: ignore[union-attr]
    assert creds.get("ghcr.io", "other/app") is None
    assert creds.get("index.docker.io").username == "c"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    ["not json", "[1, 2]", '{"h.io": 5}', '{"h.io": "no-colon"}', '{"": "u:p"}', "[" * 5000],
)
def test_malformed_map_is_an_input_error_that_never_shows_the_value(value: str) -> None:
    with pytest.raises(InputError) as info:
        EnvCredentials({"RELAY_REGISTRY_AUTH": value.replace("u:p", f"u:{SECRET}")})
    assert SECRET not in str(info.value) and "RELAY_REGISTRY_AUTH" in str(info.value)


_label = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?\Z")
_hosts = st.builds(
    lambda labels, port: ".".join(labels) + (f":{port}" if port else ""),
    st.lists(_label, min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(1, 65535)),
)


@given(_hosts, _hosts)
def test_no_two_hosts_share_a_readable_variable(a: str, b: str) -> None:
    """The per-host form is read only where the folding is injective."""
    if a != b and EnvCredentials.variable_name(a) == EnvCredentials.variable_name(b):
        assert not (EnvCredentials.unambiguous(a) and EnvCredentials.unambiguous(b))
    env = {EnvCredentials.variable_name(a): f"push:{SECRET}"}
    if a != b:
        try:
            got = EnvCredentials(env).get(b)
        except AmbiguousCredentials:
            got = None
        assert got is None or not EnvCredentials.unambiguous(a) or got.password != SECRET


def test_relay_lock_never_sends_the_password_to_a_lookalike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookalike_dns, capsys
) -> None:
    """End to end: a pull request adds a source on a look-alike of the push registry."""
    attacker = FakeRegistry(auth="basic", users={"push": SECRET})
    try:
        attacker.put_manifest("team/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
        port = attacker.host.rsplit(":", 1)[1]
        lookalike = f"registry-cn-hangzhou-aliyuncs.com:{port}"
        lookalike_dns("registry-cn-hangzhou-aliyuncs.com")
        victim = f"registry.cn-hangzhou.aliyuncs.com:{port}"
        monkeypatch.setenv(EnvCredentials.variable_name(victim), f"push:{SECRET}")
        (tmp_path / "mirrors").mkdir()
        (tmp_path / "mirrors/images.yaml").write_text(
            f"images:\n  - source: {lookalike}/team/app\n    tags: ['1.0']\n"
        )
        (tmp_path / "mirrors/relay.yaml").write_text(
            f"naming:\n  max_length: 64\nregistries:\n  insecure: ['{lookalike}']\n"
        )
        code = cli.main(["lock", "--repo", str(tmp_path)])
        out = capsys.readouterr()
        assert not _leaked(_sent(attacker))
        assert code == 2
        assert "RELAY_REGISTRY_AUTH=" in out.err and SECRET not in out.err + out.out
    finally:
        attacker.stop()


# --- realms, token caches, redirects ---------------------------------------------------------------


def test_https_registry_naming_a_plain_http_realm_gets_no_credentials(test_pki) -> None:
    realm = FakeRegistry(auth="token", users={"push": SECRET})  # plain HTTP token server
    registry = FakeRegistry(auth="token", tls=(test_pki.cert_file, test_pki.key_file))
    registry.put_manifest("lib/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
    registry.bearer_challenge = lambda scope, insufficient: {  # type: ignore[method-assign]
        "WWW-Authenticate": f'Bearer realm="{realm.url}/token",service="fake-registry"'
    }
    try:
        client = RegistryClient(
            registry.host,
            credentials=Credential("push", SECRET),
            ca_file=test_pki.ca_file,
            retry=FAST,
        )
        with pytest.raises(AuthenticationError, match="plain-HTTP token realm"):
            client.get_manifest("lib/app", "1.0")
        assert not _leaked(_sent(realm))
    finally:
        realm.stop()
        registry.stop()


def test_plain_http_registry_may_use_its_plain_http_realm() -> None:
    registry = FakeRegistry(auth="token", users={"push": SECRET})
    registry.put_manifest("lib/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
    try:
        client = RegistryClient(registry.host, credentials=Credential("push", SECRET), retry=FAST)
        assert client.get_manifest("lib/app", "1.0").media_type == OCI_MANIFEST
    finally:
        registry.stop()


def test_a_token_obtained_for_one_registry_is_never_sent_to_another() -> None:
    """Registry B names A's realm and service; the same user name is configured for both."""
    a = FakeRegistry(auth="token", users={"ci": "password-of-a"})
    b = FakeRegistry(auth="token", users={"ci": "password-of-b"})
    for reg in (a, b):
        reg.put_manifest("lib/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
    b.bearer_challenge = lambda scope, insufficient: {  # type: ignore[method-assign]
        "WWW-Authenticate": f'Bearer realm="{a.url}/token",service="fake-registry"'
        + (f',scope="{scope}"' if scope else "")
    }
    creds = StaticCredentials(
        {a.host: Credential("ci", "password-of-a"), b.host: Credential("ci", "password-of-b")}
    )
    cache = TokenCache()
    try:
        client_a = RegistryClient(a.host, credentials=creds, token_cache=cache, retry=FAST)
        client_a.get_manifest("lib/app", "1.0")
        tokens_of_a = {t.value for t in cache._tokens.values()}
        assert tokens_of_a
        client_b = RegistryClient(b.host, credentials=creds, token_cache=cache, retry=FAST)
        with pytest.raises(RegistryError):
            client_b.get_manifest("lib/app", "1.0")
        sent_to_b = _sent(b)
        assert not any(token in sent_to_b for token in tokens_of_a)
    finally:
        a.stop()
        b.stop()


def test_a_401_from_a_redirect_target_does_not_get_the_registrys_credentials() -> None:
    """The registry redirects a manifest GET to another origin, which answers 401 with a
    challenge of its own: relay must not fetch a token there with the registry's password."""
    registry = FakeRegistry(auth="none")
    other = FakeRegistry(auth="token", users={})
    # localhost is another origin than 127.0.0.1.
    target = other.url.replace("127.0.0.1", "localhost") + "/v2/lib/app/manifests/1.0"
    registry.add_fault("GET", "/manifests/", status=307, headers={"Location": target}, times=5)
    try:
        client = RegistryClient(registry.host, credentials=Credential("push", SECRET), retry=FAST)
        with pytest.raises(RegistryError):
            client.get_manifest("lib/app", "1.0")
        assert not _leaked(_sent(other))
        assert other.token_requests == 0
    finally:
        registry.stop()
        other.stop()


# --- mirrors and proxies ---------------------------------------------------------------------------


class _Options:
    insecure: tuple[str, ...] = ()
    ca_bundles: dict[str, str] = {}

    def __init__(self, mirrors: dict[str, tuple[str, ...]]) -> None:
        self.mirrors = mirrors


def test_credentials_for_a_registry_never_go_to_its_mirror() -> None:
    upstream = FakeRegistry(auth="basic", users={"push": SECRET})
    mirror = FakeRegistry(auth="basic", users={"someone": "else-entirely"})
    upstream.put_manifest("lib/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
    try:
        env = EnvCredentials.environment({upstream.host: f"push:{SECRET}"})
        pool = ClientPool(
            _Options({upstream.host: (mirror.url,)}),  # type: ignore[arg-type]
            credentials=EnvCredentials(env),
        )
        with pool:
            found = pool.source(upstream.host).get_manifest("lib/app", "1.0")
        assert found.media_type == OCI_MANIFEST  # read from upstream after the mirror said 401
        assert mirror.requests and not _leaked(_sent(mirror))
    finally:
        upstream.stop()
        mirror.stop()


def test_a_proxy_on_the_path_sees_no_credentials(
    tls_fake: FakeRegistry, test_pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through HTTPS_PROXY an HTTPS registry is reached by CONNECT: the proxy sees the host,
    never the Authorization header."""
    tls_fake.auth = "basic"
    tls_fake.users = {"push": SECRET}
    tls_fake.put_manifest("lib/app", "1.0", b'{"schemaVersion":2}', OCI_MANIFEST)
    proxy = ConnectProxy()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        client = RegistryClient(
            tls_fake.host, credentials=Credential("push", SECRET), ca_file=test_pki.ca_file
        )
        assert client.get_manifest("lib/app", "1.0").media_type == OCI_MANIFEST
        seen = b"".join(proxy.seen).decode("latin-1")
        assert seen.startswith("CONNECT 127.0.0.1:")
        assert "Authorization" not in seen and not _leaked(seen)
        assert any("Basic" in r.headers.get("Authorization", "") for r in tls_fake.requests)
    finally:
        proxy.stop()


def test_harbor_credentials_never_follow_a_page_link_to_another_host(hostile) -> None:
    from relay.stages.harbor.api import HarborClient, HarborError
    from relay.stages.harbor.settings import Login
    from tests.fakes.hostile import Answer

    harbor, other = hostile(), hostile()
    elsewhere = other.url.replace("127.0.0.1", "localhost") + "/api/v2.0/projects?page=2"
    harbor.route(
        "GET",
        "/api/v2.0/projects",
        Answer.json([{"name": "a"}], headers={"Link": f'<{elsewhere}>; rel="next"'}),
    )
    client = HarborClient(harbor.url, Login("robot$relay", SECRET), retry=FAST)
    with pytest.raises(HarborError, match="another host"):
        list(client.paged("/projects", "list projects"))
    assert other.seen == [] and not _leaked(other.all_text())
    assert any("Basic" in s.headers.get("Authorization", "") for s in harbor.seen)


def test_harbor_login_never_goes_to_a_realm_named_after_the_ping(tmp_path: Path) -> None:
    """Harbor's registry (or a proxy before it) names Harbor's own token service on /v2/ and
    another host on a manifest's 401: the Harbor login is refused there before it is sent,
    on every challenge, not only the ping's."""
    from relay.commands.common import load
    from relay.commands.verify import harbor_behind
    from relay.config.lockfile import Lock
    from relay.config.pins import pins
    from tests.helpers import DIGEST_A, write_repo

    harbor = FakeRegistry(auth="token", users={"robot$relay": SECRET})
    evil = FakeRegistry(auth="token", users={})
    # localhost is another host than 127.0.0.1, where Harbor's url and registry are.
    evil_realm = evil.url.replace("127.0.0.1", "localhost") + "/token"

    evil_challenge = {"WWW-Authenticate": f'Bearer realm="{evil_realm}",service="harbor-registry"'}
    for method in ("HEAD", "GET"):
        harbor.add_fault(method, "/manifests/", status=401, headers=evil_challenge, times=20)
    repo = write_repo(
        tmp_path,
        f"images:\n  - source: docker.io/library/app\n    name: app\n    tags: ['1.0@{DIGEST_A}']\n",
        f"""\
        transport: copy
        copy: {{registry: registry.example.com, namespace: ns}}
        harbor:
          url: {harbor.url}
          project: mirror
          registry: "{harbor.host}"
        """,
    )
    env = {"HARBOR_USERNAME": "robot$relay", "HARBOR_PASSWORD": SECRET}
    try:
        cfg, listed = load(repo)
        behind, _ = harbor_behind(repo, cfg, Lock(), pins(listed, Lock()), env)
        assert behind == ["app"]  # unreadable: the safe side
        assert harbor.requests  # the ping went to Harbor
        assert evil.token_requests == 0 and not evil.requests
        assert not _leaked(_sent(evil))

        client = RegistryClient(
            harbor.host,
            credentials=Credential("robot$relay", SECRET, source="HARBOR_USERNAME/PASSWORD"),
            realm_hosts=frozenset({"127.0.0.1"}),
            retry=FAST,
        )
        with pytest.raises(AuthenticationError, match="on none of the hosts 127.0.0.1") as e:
            client.get_manifest("mirror/app", "1.0")
        assert "localhost" in str(e.value) and SECRET not in str(e.value)
        assert not evil.requests
    finally:
        harbor.stop()
        evil.stop()
