"""RegistryClient behaviour against the in-process fake (tests/fakes/registry.py).

Real distribution 2.8 round trips are in test_registry_distribution.py.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relay.net import sslcontexts
from relay.reference import InvalidReference
from relay.registry import (
    AuthenticationError,
    Credential,
    DigestMismatchError,
    ImageSyncerAuth,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    UnsupportedManifestError,
)
from relay.registry import mediatypes as mt
from tests.fakes.registry import OCI_INDEX, OCI_MANIFEST, FakeRegistry, sha256
from tests.fixtures.registries import Registry

POLICY = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.01)
PASSWORD = "s3cret-pass"


def _manifest(**extra: object) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 2},
        "layers": [],
        **extra,
    }
    # Indented on purpose: the digest must be of the served bytes, not a re-serialisation.
    return json.dumps(doc, indent=3).encode()


@pytest.fixture
def token_fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry(auth="token")
    yield reg
    reg.stop()


def client_for(reg: FakeRegistry, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("retry", POLICY)
    return RegistryClient(reg.host, **kwargs)  # type: ignore[arg-type]


# -- construction and ping -------------------------------------------------------------------


def test_docker_hub_name_maps_to_api_host() -> None:
    client = RegistryClient("index.docker.io")
    assert client.registry == "docker.io" and client.netloc == "registry-1.docker.io"
    assert repr(client) == "RegistryClient('docker.io')"


def test_invalid_names_fail_before_any_request(fake: FakeRegistry) -> None:
    client = client_for(fake)
    with pytest.raises(InvalidReference):
        client.get_manifest("Upper/Case", "v1")
    with pytest.raises(InvalidReference):
        client.get_manifest("ok/name", "bad tag")
    with pytest.raises(InvalidReference):
        client.list_tags("../etc")
    with pytest.raises(ValueError):
        client.head_blob("ok", "sha256:short")
    with pytest.raises(InvalidReference):
        RegistryClient("ftp://x")
    # One grammar with relay.reference: `$` would let a trailing newline through.
    with pytest.raises(InvalidReference):
        client.get_manifest("ok/name", "v1\n")
    with pytest.raises(InvalidReference):
        client.head_blob("ok", "sha256:" + "0" * 64 + "\n")
    with pytest.raises(InvalidReference):
        client.list_tags("ok/name\n")
    assert fake.requests == []


def test_loopback_plain_http_is_found_by_fallback(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[object] = []
    monkeypatch.setattr(sslcontexts, "CONTEXTS", sslcontexts.ContextCache())
    real_build = sslcontexts.build_context
    monkeypatch.setattr(sslcontexts, "build_context", lambda v: builds.append(v) or real_build(v))
    client = client_for(fake)
    result = client.ping()
    assert result.base_url == fake.url and result.tls_verified is None
    assert result.auth_scheme is None and result.api_version == "registry/2.0"
    assert client.ping() is result  # cached
    # A bare handshake found no TLS, so no HTTPS request and no CA bundle loaded; one HTTP GET.
    assert client.stats.count("GET", "ping") == 1
    assert fake.count("GET", r"^/v2/$") == 1
    assert builds == [False]


def test_tls_probe_steps_aside_for_a_proxy(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a proxy only the proxy can say whether the registry speaks TLS.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert client_for(fake).transport.tls_refusal(fake.host) is None


def test_tls_probe_leaves_tls_servers_and_dead_ports_to_the_request(
    tls_registry: Registry,
) -> None:
    client = RegistryClient(tls_registry.host, retry=POLICY)
    assert client.transport.tls_refusal(tls_registry.host) is None
    assert client.transport.tls_refusal("127.0.0.1:1") is None


def test_explicit_scheme_skips_negotiation(fake: FakeRegistry) -> None:
    client = RegistryClient(fake.url, retry=POLICY)
    assert client.ping().base_url == fake.url
    assert client.stats.count("GET", "ping") == 1


def test_insecure_flag_from_credentials_provider() -> None:
    creds = ImageSyncerAuth({"10.9.8.7:5000": {"insecure": True}})
    assert RegistryClient("10.9.8.7:5000", credentials=creds).transport.tls.is_insecure(
        "10.9.8.7:5000"
    )
    assert not RegistryClient("10.9.8.7:5000").transport.tls.is_insecure("10.9.8.7:5000")
    assert RegistryClient("10.9.8.7:5000", insecure=True).transport.tls.is_insecure("10.9.8.7:5000")
    assert not RegistryClient("127.0.0.1:1", insecure=False).transport.tls.is_insecure(
        "127.0.0.1:1"
    )


def test_ping_404_is_a_clear_error(fake: FakeRegistry) -> None:
    fake.add_fault("GET", r"^/v2/$", status=404, times=5)
    with pytest.raises(NotFoundError, match="no registry API at /v2/"):
        RegistryClient(fake.url, retry=POLICY).ping()


# -- manifests -------------------------------------------------------------------------------


def test_get_manifest_returns_exact_bytes_type_and_digest(fake: FakeRegistry) -> None:
    content = _manifest()
    digest = fake.put_manifest("team/app", "v1", content, content_type=mt.DOCKER_MANIFEST)
    client = client_for(fake)
    manifest = client.get_manifest("team/app", "v1")
    assert manifest.content == content
    assert manifest.digest == digest and manifest.media_type == mt.DOCKER_MANIFEST
    assert manifest.size == len(content) and not manifest.is_index
    assert manifest.json()["schemaVersion"] == 2
    accept = [r for r in fake.requests if "/manifests/" in r.path][-1].headers["Accept"]
    assert all(t in accept for t in mt.ACCEPT_MANIFESTS)
    assert client.get_manifest("team/app", digest).content == content
    assert client.stats.bytes_received == 2 * len(content)


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (_manifest(), "application/json", OCI_MANIFEST),
        (_manifest(), None, OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "manifests": []}).encode(), None, OCI_INDEX),
        (
            json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode(),
            "text/plain",
            OCI_MANIFEST,
        ),
    ],
)
def test_media_type_fallbacks(
    fake: FakeRegistry, content: bytes, content_type: str | None, expected: str
) -> None:
    fake.put_manifest("a", "t", content, content_type=content_type)
    assert client_for(fake).get_manifest("a", "t").media_type == expected


def test_digest_header_mismatch_is_refused(fake: FakeRegistry) -> None:
    fake.put_manifest("a", "t", _manifest(), digest_header="sha256:" + "f" * 64)
    with pytest.raises(DigestMismatchError, match="Docker-Content-Digest"):
        client_for(fake).get_manifest("a", "t")


def test_requested_digest_mismatch_is_refused(fake: FakeRegistry) -> None:
    fake.put_manifest("a", "t", _manifest())
    wrong = "sha256:" + "e" * 64
    fake.manifests[("a", wrong)] = fake.manifests[("a", "t")]
    fake.manifests[("a", wrong)].digest_header = None  # type: ignore[misc]
    with pytest.raises(DigestMismatchError, match="requested"):
        client_for(fake).get_manifest("a", wrong)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"schemaVersion": 1, "signatures": []}', mt.DOCKER_SCHEMA1_SIGNED),
        (b'{"schemaVersion": 1, "fsLayers": []}', "application/json"),
    ],
)
def test_schema1_is_refused_clearly(fake: FakeRegistry, content: bytes, content_type: str) -> None:
    fake.put_manifest("old/image", "v0", content, content_type=content_type)
    client = client_for(fake)
    with pytest.raises(UnsupportedManifestError) as info:
        client.get_manifest("old/image", "v0")
    assert "schema 1" in str(info.value) and "old/image" in str(info.value)
    with pytest.raises(UnsupportedManifestError):
        client.put_manifest("x", "t", content, mt.DOCKER_SCHEMA1)


def test_head_manifest(fake: FakeRegistry) -> None:
    content = _manifest()
    digest = fake.put_manifest("a", "t", content)
    client = client_for(fake)
    desc = client.head_manifest("a", "t")
    assert desc is not None and (desc.digest, desc.media_type, desc.size) == (
        digest,
        OCI_MANIFEST,
        len(content),
    )
    assert client.head_manifest("a", "missing") is None
    assert client.stats.count("GET", "manifest") == 0


def test_head_manifest_without_digest_falls_back_to_get(fake: FakeRegistry) -> None:
    content = _manifest()
    digest = fake.put_manifest("a", "t", content, digest_header=None)
    client = client_for(fake)
    desc = client.head_manifest("a", "t")
    assert desc is not None and desc.digest == digest
    assert client.stats.count("GET", "manifest") == 1


def test_put_manifest(fake: FakeRegistry) -> None:
    content = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    client = client_for(fake)
    digest = client.put_manifest("a", "v1", content, mt.DOCKER_MANIFEST_LIST)
    assert digest == sha256(content)
    put = [r for r in fake.requests if r.method == "PUT"][-1]
    assert put.headers["Content-Type"] == mt.DOCKER_MANIFEST_LIST
    assert fake.manifests[("a", "v1")].content == content
    # Without a media type it is inferred from the bytes.
    client.put_manifest("a", "v2", content)
    assert fake.manifests[("a", "v2")].content_type == OCI_INDEX
    with pytest.raises(DigestMismatchError):
        client.put_manifest("a", "sha256:" + "0" * 64, content)


def test_errors_name_registry_repository_action_and_codes(fake: FakeRegistry) -> None:
    fake.put_manifest("a", "t", _manifest())
    with pytest.raises(NotFoundError) as info:
        client_for(fake).get_manifest("a", "nope")
    assert str(info.value) == (
        f"{fake.host}/a: get manifest nope failed: HTTP 404: MANIFEST_UNKNOWN: manifest unknown"
    )


def test_429_after_retries_is_rate_limited_error(fake: FakeRegistry) -> None:
    fake.add_fault(
        "GET",
        "/manifests/",
        status=429,
        headers={"Retry-After": "0"},
        times=10,
        body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
    )
    with pytest.raises(RateLimitedError) as info:
        client_for(fake).get_manifest("a", "t")
    assert info.value.retry_after == 0 and "TOOMANYREQUESTS" in str(info.value)
    assert fake.count("GET", "/manifests/") == POLICY.attempts


# -- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("absolute", [False, True])
def test_tags_follow_link_pagination(fake: FakeRegistry, absolute: bool) -> None:
    fake.absolute_links = absolute
    for tag in ["v1", "v2", "v3", "v4", "v5"]:
        fake.put_manifest("lib/app", tag, _manifest(annotations={"t": tag}))
    client = client_for(fake)
    assert client.list_tags("lib/app", page_size=2) == ["v1", "v2", "v3", "v4", "v5"]
    assert client.stats.count("GET", "tags") == 3
    queries = [r.query for r in fake.requests if r.path.endswith("/tags/list")]
    assert queries == ["n=2", "n=2&last=v2", "n=2&last=v4"]


def test_tags_default_page_size_from_server(fake: FakeRegistry) -> None:
    fake.default_page_size = 1
    for tag in ["a", "b"]:
        fake.put_manifest("x", tag, _manifest(annotations={"t": tag}))
    assert client_for(fake).list_tags("x") == ["a", "b"]


def test_tags_unknown_repository(fake: FakeRegistry) -> None:
    with pytest.raises(NotFoundError, match="NAME_UNKNOWN"):
        client_for(fake).list_tags("nothing/here")


def test_tags_null_is_empty(fake: FakeRegistry) -> None:
    fake.add_fault("GET", "/tags/list", status=200, body=b'{"name":"x","tags":null}')
    assert client_for(fake).list_tags("x") == []


# -- blob reads ------------------------------------------------------------------------------


def test_get_blob_streams_and_verifies(fake: FakeRegistry) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    digest = fake.add_blob("a", data)
    client = client_for(fake)
    with client.get_blob("a", digest, chunk_size=65536) as stream:
        assert stream.size == len(data)
        chunks = list(stream)
    assert b"".join(chunks) == data and max(len(c) for c in chunks) <= 65536
    assert client.read_blob("a", digest) == data
    assert client.stats.bytes_received == 2 * len(data)
    get = [r for r in fake.requests if "/blobs/" in r.path][-1]
    assert get.headers["Accept-Encoding"] == "identity"


def test_corrupt_blob_raises_at_the_end(fake: FakeRegistry) -> None:
    digest = fake.add_blob("a", b"good bytes")
    fake.blobs[digest] = b"evil bytes"
    stream = client_for(fake).get_blob("a", digest)
    with pytest.raises(DigestMismatchError, match="hashes to"):
        b"".join(stream)


def test_missing_blob_raises_on_open(fake: FakeRegistry) -> None:
    client = client_for(fake)
    with pytest.raises(NotFoundError, match="BLOB_UNKNOWN"):
        client.get_blob("a", "sha256:" + "0" * 64)
    assert client.head_blob("a", "sha256:" + "0" * 64) is None


def test_head_blob(fake: FakeRegistry) -> None:
    digest = fake.add_blob("a", b"12345")
    info = client_for(fake).head_blob("a", digest)
    assert info is not None and info.size == 5
    assert client_for(fake).blob_exists("a", digest)


@pytest.mark.parametrize("honour_range", [True, False])
def test_broken_download_resumes(fake: FakeRegistry, honour_range: bool) -> None:
    fake.honour_range = honour_range
    data = b"0123456789" * 100_000
    digest = fake.add_blob("a", data)
    fake.add_fault("GET", "/blobs/", truncate=300_000)
    client = client_for(fake)
    assert client.read_blob("a", digest) == data
    gets = [r for r in fake.requests if r.method == "GET" and "/blobs/" in r.path]
    assert len(gets) == 2
    assert gets[1].headers["Range"].startswith("bytes=") and gets[1].headers["Range"].endswith("-")


def test_content_encoding_is_not_decoded(fake: FakeRegistry) -> None:
    import gzip

    data = gzip.compress(b"a layer")
    digest = fake.add_blob("a", data)
    fake.serve_gzip_encoding = True
    assert client_for(fake).read_blob("a", digest) == data


def test_blob_redirect_has_no_authorization(token_fake: FakeRegistry) -> None:
    storage = token_fake.with_storage()
    digest = token_fake.add_blob("private/app", b"layer")
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    assert client.read_blob("private/app", digest) == b"layer"
    registry_get = [r for r in token_fake.requests if r.path.endswith(digest)][-1]
    assert registry_get.headers["Authorization"].startswith("Bearer ")
    assert storage.requests and "Authorization" not in storage.requests[0].headers


# -- uploads -------------------------------------------------------------------------------


def _upload_requests(reg: FakeRegistry) -> list[str]:
    return [r.method for r in reg.requests if "/uploads" in r.path]


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_monolithic_upload_keeps_location_query(style: str) -> None:
    reg = FakeRegistry(location_style=style)
    try:
        data = b"x" * 5000
        result = client_for(reg).push_blob("a", sha256(data), data)
        assert result.digest == sha256(data) and result.size == 5000 and not result.mounted
        assert reg.blobs[sha256(data)] == data
        assert _upload_requests(reg) == ["POST", "PUT"]
        put = [r for r in reg.requests if r.method == "PUT"][-1]
        assert "_state=" in put.query and put.query.endswith(
            "digest=" + sha256(data).replace(":", "%3A")
        )
        assert put.headers["Content-Length"] == "5000"
    finally:
        reg.stop()


def test_upload_sources(fake: FakeRegistry, tmp_path: Path) -> None:
    data = b"blob-data" * 1000
    digest = sha256(data)
    path = tmp_path / "blob"
    path.write_bytes(data)
    client = client_for(fake)
    client.push_blob("a", digest, str(path))
    client.push_blob("b", digest, io.BytesIO(data))
    client.push_blob("c", digest, lambda: iter([data[:10], data[10:]]))
    # Unknown size: streamed with chunked transfer encoding.
    client.push_blob("d", digest, iter([data[:100], data[100:]]))
    put = [r for r in fake.requests if r.method == "PUT"][-1]
    assert put.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in put.headers
    # No digest given: computed from a re-readable source first.
    assert client.push_blob("e", None, data).digest == digest
    with pytest.raises(ValueError):
        client.push_blob("e", None, iter([data]))
    for repo in "abcde":
        assert digest in fake.repo_blobs[repo]
    assert client.stats.bytes_sent == 5 * len(data)


def test_empty_blob(fake: FakeRegistry) -> None:
    assert client_for(fake).push_blob("a", sha256(b""), b"").size == 0
    assert fake.blobs[sha256(b"")] == b""


def test_chunked_upload_uses_content_range(fake: FakeRegistry) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    result = client_for(fake).push_blob("a", sha256(data), iter([data]), chunk_size=4096)
    assert result.size == len(data)
    assert fake.patch_sizes == [4096, 4096, 2048]
    ranges = [r.headers["Content-Range"] for r in fake.requests if r.method == "PATCH"]
    assert ranges == ["0-4095", "4096-8191", "8192-10239"]
    assert _upload_requests(fake) == ["POST", "PATCH", "PATCH", "PATCH", "PUT"]


def test_wrong_digest_is_reported_with_local_hash(fake: FakeRegistry) -> None:
    wrong = "sha256:" + "a" * 64
    with pytest.raises(DigestMismatchError) as info:
        client_for(fake).push_blob("a", wrong, b"data")
    assert sha256(b"data") in str(info.value)


def test_failed_put_restarts_a_restartable_source(fake: FakeRegistry) -> None:
    fake.add_fault("PUT", "/uploads/", status=503, times=1)
    data = b"payload" * 100
    client_for(fake).push_blob("a", sha256(data), data)
    assert _upload_requests(fake) == ["POST", "PUT", "POST", "PUT"]
    assert fake.blobs[sha256(data)] == data


def test_failed_put_of_one_shot_iterator_is_not_resent(fake: FakeRegistry) -> None:
    fake.add_fault("PUT", "/uploads/", status=503, times=1)
    data = b"payload" * 100
    with pytest.raises(RegistryError, match="cannot be re-read"):
        client_for(fake).push_blob("a", sha256(data), iter([data]), size=len(data))
    assert _upload_requests(fake) == ["POST", "PUT"]


def test_dropped_patch_restarts_upload(fake: FakeRegistry) -> None:
    fake.add_fault("PATCH", "/uploads/", drop=True, times=1)
    data = b"z" * 9000
    client_for(fake).push_blob("a", sha256(data), data, chunk_size=4000)
    assert _upload_requests(fake).count("POST") == 2
    assert fake.blobs[sha256(data)] == data


def test_upload_that_landed_despite_an_error_counts_as_done(fake: FakeRegistry) -> None:
    data = b"already there"
    fake.add_blob("a", data)
    fake.add_fault("PUT", "/uploads/", status=500, times=10)
    result = client_for(fake).push_blob("a", sha256(data), iter([data]))
    assert result.digest == sha256(data)


def test_check_exists_skips_upload(fake: FakeRegistry) -> None:
    data = b"exists"
    fake.add_blob("a", data)
    result = client_for(fake).push_blob("a", sha256(data), data, check_exists=True)
    assert result.existed and result.size == len(data)
    assert _upload_requests(fake) == []


def test_mount(fake: FakeRegistry) -> None:
    data = b"shared layer"
    digest = fake.add_blob("src/app", data)
    client = client_for(fake)
    assert client.mount_blob("dst/app", digest, "src/app")
    assert digest in fake.repo_blobs["dst/app"]
    post = [r for r in fake.requests if r.method == "POST"][-1]
    assert "mount=sha256%3A" in post.query and "from=src%2Fapp" in post.query
    assert client.stats.count("POST", "mount") == 1
    # Not available in the source repository: the registry opens an upload instead (202).
    assert not client.mount_blob("dst/app", sha256(b"other"), "src/app")
    assert fake.cancelled == 1


def test_push_with_mount_falls_back_to_upload_in_the_same_session(fake: FakeRegistry) -> None:
    data = b"new layer"
    result = client_for(fake).push_blob("dst", sha256(data), data, mount_from="src")
    assert not result.mounted and fake.blobs[sha256(data)] == data
    assert _upload_requests(fake) == ["POST", "PUT"]
    fake.add_blob("src", b"old layer")
    result = client_for(fake).push_blob("dst", sha256(b"old layer"), b"old layer", mount_from="src")
    assert result.mounted


# -- authentication ---------------------------------------------------------------------------


def test_anonymous_bearer_pull(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("public/app", "v1", _manifest())
    client = client_for(token_fake)
    assert client.ping().auth_scheme == "bearer"
    client.get_manifest("public/app", "v1")
    client.head_manifest("public/app", "v1")
    assert token_fake.token_log == [("repository:public/app:pull",)]
    token_req = [r for r in token_fake.requests if r.path == "/token"][0]
    assert "Authorization" not in token_req.headers


def test_anonymous_denied_says_so(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    with pytest.raises(AuthenticationError) as info:
        client_for(token_fake).get_manifest("private/app", "v1")
    assert "anonymously (no credentials found" in str(info.value)
    assert "UNAUTHORIZED" in str(info.value)


def test_pull_token_then_push_refreshes_scope_once(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    client.head_manifest("private/app", "v1")
    client.put_manifest("private/app", "v2", _manifest(annotations={"v": "2"}))
    data = b"layer"
    client.push_blob("private/app", sha256(data), data)
    assert token_fake.token_log == [
        ("repository:private/app:pull",),
        ("repository:private/app:pull,push",),
    ]
    # A later pull reuses the push token.
    client.get_manifest("private/app", "v2")
    assert token_fake.token_requests == 2


def test_push_with_pull_token_refreshes_from_the_401_challenge(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    client.head_manifest("private/app", "v1")
    ctx = client.ctx("private/app", "open upload")
    # Ask for the upload with only the pull scope, as a client that reuses its pull token would:
    # the registry answers 401 insufficient_scope naming pull,push; the client fetches that
    # token and retries once.
    resp = client.send(
        "POST",
        f"{client.base_url}/v2/private/app/blobs/uploads/",
        ctx=ctx,
        kind="upload",
        scopes=["repository:private/app:pull"],
    )
    assert resp.status_code == 202
    assert token_fake.token_log == [
        ("repository:private/app:pull",),
        ("repository:private/app:pull,push",),
    ]
    posts = [r for r in token_fake.requests if r.method == "POST" and "/uploads" in r.path]
    assert len(posts) == 2
    assert posts[0].headers["Authorization"] != posts[1].headers["Authorization"]


def test_revoked_token_is_refreshed(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    client.get_manifest("private/app", "v1")
    token_fake.revoke_all_tokens()
    client.get_manifest("private/app", "v1")
    assert token_fake.token_requests == 2
    assert client.stats.count("GET", "manifest") == 3  # one 401, one retry


def test_wrong_password_message(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    client = client_for(token_fake, credentials=Credential("relay", "wrong-pass-123", source="env"))
    with pytest.raises(AuthenticationError) as info:
        client.get_manifest("private/app", "v1")
    message = str(info.value)
    assert "'relay'" in message and "wrong-pass-123" not in message
    assert token_fake.host in message and "private/app" in message


def test_identity_token_credential(token_fake: FakeRegistry) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    cred = Credential("", "", identity_token=token_fake.identity_token)
    client_for(token_fake, credentials=cred).get_manifest("private/app", "v1")
    assert [r.method for r in token_fake.requests if r.path == "/token"] == ["POST"]


def test_tokens_never_logged(token_fake: FakeRegistry, caplog: pytest.LogCaptureFixture) -> None:
    token_fake.put_manifest("private/app", "v1", _manifest())
    token_fake.add_fault("GET", "/manifests/", status=503, times=1)
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    with caplog.at_level(logging.DEBUG):
        client.get_manifest("private/app", "v1")
    assert "tok-" not in caplog.text and PASSWORD not in caplog.text


def test_concurrent_requests_fetch_one_token_per_scope(token_fake: FakeRegistry) -> None:
    token_fake.token_delay = 0.05  # widen the race window
    repos = [f"private/app{i}" for i in range(4)]
    for repo in repos:
        token_fake.put_manifest(repo, "v1", _manifest())
    client = client_for(token_fake, credentials=Credential("relay", PASSWORD))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: client.head_manifest(repos[i % 4], "v1"), range(32)))
    assert all(r is not None for r in results)
    assert sorted(s[0] for s in token_fake.token_log if s) == sorted(
        f"repository:{r}:pull" for r in repos
    )


def test_concurrent_first_use_pings_once(fake: FakeRegistry) -> None:
    client = client_for(fake)
    barrier = threading.Barrier(8)

    def work(_: int) -> None:
        barrier.wait()
        client.ping()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    assert fake.count("GET", r"^/v2/$") == 1


def test_basic_auth(fake: FakeRegistry) -> None:
    reg = FakeRegistry(auth="basic")
    try:
        reg.put_manifest("a", "t", _manifest())
        client = client_for(reg, credentials=Credential("relay", PASSWORD))
        assert client.ping().auth_scheme == "basic"
        client.get_manifest("a", "t")
        got = [r for r in reg.requests if "/manifests/" in r.path][-1]
        assert got.headers["Authorization"].startswith("Basic ")
        with pytest.raises(AuthenticationError, match="as user 'relay'"):
            client_for(reg, credentials=Credential("relay", "nope")).get_manifest("a", "t")
        with pytest.raises(AuthenticationError, match="anonymously"):
            client_for(reg).get_manifest("a", "t")
    finally:
        reg.stop()


def test_manifest_protocol_error_for_unknown_bytes(fake: FakeRegistry) -> None:
    fake.put_manifest("a", "t", b'{"hello": 1}', content_type="application/json")
    with pytest.raises(ProtocolError, match="media type"):
        client_for(fake).get_manifest("a", "t")


@pytest.mark.parametrize("declared", [10, 1000])
def test_declared_size_mismatch_fails_fast(fake: FakeRegistry, declared: int) -> None:
    data = b"y" * 100
    client = client_for(fake, timeout=(2.0, 5.0))
    with pytest.raises(RegistryError, match="size was given as"):
        client.push_blob("a", sha256(data), iter([data[:50], data[50:]]), size=declared)
    assert sha256(data) not in fake.blobs


def test_rate_limit_headers_are_exposed_and_logged(
    fake: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_fault(
        "GET",
        r"^/v2/$",
        status=200,
        headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"},
    )
    client = client_for(fake)
    with caplog.at_level(logging.WARNING, logger="relay.registry"):
        client.ping()
    assert client.rate_limit is not None and client.rate_limit.remaining == 0
    assert client.rate_limit.limit == 100 and "quota exhausted" in caplog.text
