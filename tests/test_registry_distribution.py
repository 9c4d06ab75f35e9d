"""RegistryClient against real distribution 2.8 processes (tests/fixtures/registries.py).

Plain HTTP, TLS + htpasswd (with REQUESTS_CA_BUNDLE pointing at the system bundle) and bearer
tokens from the fixture token server; images come from relay/sandbox/images.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from relay.registry import (
    AuthenticationError,
    Credential,
    NotFoundError,
    RegistryClient,
    RegistryTLSError,
    RetryPolicy,
)
from relay.registry import mediatypes as mt
from relay.sandbox import images
from relay.sandbox.images import ImageFactory, PushedImage
from tests.fixtures.registries import Registry, RegistryFactory

POLICY = RetryPolicy(attempts=3, backoff=0.01)


def _client(reg: Registry, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("retry", POLICY)
    if reg.credentials and "credentials" not in kwargs:
        kwargs["credentials"] = Credential(*reg.credentials, source="fixture")
    if reg.ca_file and "ca_file" not in kwargs:
        kwargs["ca_file"] = reg.ca_file
    return RegistryClient(reg.host, **kwargs)  # type: ignore[arg-type]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def pushed(plain_registry: Registry, image_factory: ImageFactory) -> dict[str, PushedImage]:
    return {
        kind: image_factory.push(plain_registry, f"relay-registry/{kind}", "v1", kind)
        for kind in images.KINDS
    }


@pytest.fixture
def plain(plain_registry: Registry) -> Iterator[RegistryClient]:
    client = _client(plain_registry)
    yield client
    client.close()


@pytest.mark.parametrize("kind", images.KINDS)
def test_manifest_bytes_type_and_digest_as_pushed(
    plain: RegistryClient, pushed: dict[str, PushedImage], kind: str
) -> None:
    image = pushed[kind]
    manifest = plain.get_manifest(image.repo, "v1")
    assert manifest.content == image.manifest
    assert manifest.digest == image.digest
    assert manifest.media_type == image.media_type
    head = plain.head_manifest(image.repo, "v1")
    assert head is not None and head.digest == image.digest and head.size == len(image.manifest)
    assert plain.get_manifest(image.repo, image.digest).content == image.manifest
    for child in image.children:
        got = plain.get_manifest(image.repo, child.digest)
        assert got.content == child.manifest and got.media_type == child.media_type


def test_oci_manifest_without_media_type(
    plain: RegistryClient, pushed: dict[str, PushedImage]
) -> None:
    image = pushed[images.OCI_NO_MEDIATYPE]
    manifest = plain.get_manifest(image.repo, "v1")
    assert "mediaType" not in manifest.json()
    assert manifest.media_type == mt.OCI_MANIFEST


def test_blobs_stream_verified(plain: RegistryClient, pushed: dict[str, PushedImage]) -> None:
    image = pushed[images.OCI]
    assert image.config_digest is not None
    config = plain.read_blob(image.repo, image.config_digest)
    assert _sha256(config) == image.config_digest
    for digest in image.layer_digests:
        info = plain.head_blob(image.repo, digest)
        assert info is not None and info.size
        with plain.get_blob(image.repo, digest, chunk_size=1024) as stream:
            total = sum(len(chunk) for chunk in stream)
        assert total == info.size
    with pytest.raises(NotFoundError):
        plain.get_blob(image.repo, "sha256:" + "0" * 64)


def test_missing_manifest_and_repository(
    plain: RegistryClient, pushed: dict[str, PushedImage]
) -> None:
    repo = pushed[images.OCI].repo
    assert plain.head_manifest(repo, "no-such-tag") is None
    with pytest.raises(NotFoundError) as info:
        plain.get_manifest(repo, "no-such-tag")
    assert "MANIFEST_UNKNOWN" in str(info.value) and repo in str(info.value)
    with pytest.raises(NotFoundError, match="NAME_UNKNOWN"):
        plain.list_tags("relay-registry/never-pushed")


def test_tags(plain_registry: Registry, image_factory: ImageFactory, plain: RegistryClient) -> None:
    image = image_factory.build(images.OCI, seed="tags")
    tags = [f"t{i}" for i in range(5)]
    for tag in tags:
        image_factory.push(plain_registry, "relay-registry/tags", tag, image)
    # distribution 2.8 ignores ?n= on tags/list (it paginates only _catalog) and returns tags
    # in storage order; Link pagination is covered against the fake in test_registry_client.
    before = plain.stats.count("GET", "tags")
    assert sorted(plain.list_tags("relay-registry/tags", page_size=2)) == tags
    assert plain.stats.count("GET", "tags") - before == 1


def _copy(src: RegistryClient, src_repo: str, ref: str, dst: RegistryClient, dst_repo: str) -> str:
    manifest = src.get_manifest(src_repo, ref)
    doc = manifest.json()
    if manifest.is_index:
        for child in doc["manifests"]:
            _copy(src, src_repo, child["digest"], dst, dst_repo)
    else:
        for desc in [doc["config"], *doc["layers"]]:
            digest = desc["digest"]
            dst.push_blob(
                dst_repo,
                digest,
                lambda d=digest: src.get_blob(src_repo, d),
                size=desc["size"],
                check_exists=True,
            )
    return dst.put_manifest(dst_repo, ref, manifest.content, manifest.media_type)


@pytest.mark.parametrize("kind", images.KINDS)
def test_copy_between_registries_preserves_digests(
    plain: RegistryClient,
    pushed: dict[str, PushedImage],
    registry_factory: RegistryFactory,
    kind: str,
) -> None:
    dest_reg = registry_factory("plain")
    dest = _client(dest_reg)
    image = pushed[kind]
    assert _copy(plain, image.repo, "v1", dest, "copied/app") == image.digest
    head = dest.head_manifest("copied/app", "v1")
    assert head is not None and head.digest == image.digest
    for digest in image.blob_digests:
        assert dest.blob_exists("copied/app", digest)
    # Requests per image are countable for benchmarks.
    assert dest.stats.count("PUT", "manifest") == 1 + len(image.children)
    assert dest.stats.bytes_sent >= sum(
        layer.size for img in [image.image, *image.children] for layer in img.layers
    )
    dest.close()


def test_upload_variants_and_mount(plain: RegistryClient) -> None:
    data = os.urandom(300_000)
    digest = _sha256(data)
    # Chunked PATCH upload.
    assert plain.push_blob("relay-registry/up1", digest, data, chunk_size=100_000).size == len(data)
    # Unknown size: chunked transfer encoding into a monolithic PUT.
    other = os.urandom(50_000)
    plain.push_blob("relay-registry/up2", _sha256(other), iter([other[:1000], other[1000:]]))
    assert plain.read_blob("relay-registry/up2", _sha256(other)) == other
    # Cross-repository mount.
    assert plain.mount_blob("relay-registry/up3", digest, "relay-registry/up1")
    assert plain.head_blob("relay-registry/up3", digest) is not None
    assert not plain.mount_blob("relay-registry/up3", _sha256(b"absent"), "relay-registry/up1")
    result = plain.push_blob("relay-registry/up4", digest, data, mount_from="relay-registry/up1")
    assert result.mounted


# -- TLS + htpasswd ----------------------------------------------------------------------------


def test_tls_with_ca_file_despite_requests_ca_bundle(
    tls_registry: Registry, image_factory: ImageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    image = image_factory.push(tls_registry, "relay-registry/tls", "v1", images.DOCKER)
    # insecure=False: loopback would otherwise be allowed to skip verification.
    client = _client(tls_registry, insecure=False)
    assert client.ping().tls_verified is True and client.ping().auth_scheme == "basic"
    assert client.get_manifest("relay-registry/tls", "v1").digest == image.digest
    # The transport reads the environment itself (see test_registry_transport's proxy tests).
    assert client.transport.proxies_for(tls_registry.url) == {}


def test_tls_without_ca_fails_unless_insecure(tls_registry: Registry) -> None:
    with pytest.raises(RegistryTLSError, match="CERTIFICATE_VERIFY_FAILED"):
        _client(tls_registry, ca_file=None, insecure=False).ping()
    # Loopback counts as insecure by default (as in Docker): unverified TLS, still HTTPS.
    result = _client(tls_registry, ca_file=None).ping()
    assert result.base_url.startswith("https://") and result.tls_verified is False


def test_tls_basic_auth_errors(tls_registry: Registry, image_factory: ImageFactory) -> None:
    image_factory.push(tls_registry, "relay-registry/tls", "v1", images.DOCKER)
    wrong = _client(tls_registry, credentials=Credential("relay", "not-the-password"))
    with pytest.raises(AuthenticationError) as info:
        wrong.get_manifest("relay-registry/tls", "v1")
    assert "as user 'relay'" in str(info.value) and "not-the-password" not in str(info.value)
    with pytest.raises(AuthenticationError, match="anonymously"):
        _client(tls_registry, credentials=None).get_manifest("relay-registry/tls", "v1")


# -- bearer tokens -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_images(token_registry: Registry, image_factory: ImageFactory) -> dict[str, PushedImage]:
    return {
        "private": image_factory.push(token_registry, "team/app", "v1", images.OCI_INDEX_KIND),
        "public": image_factory.push(token_registry, "public/app", "v1", images.OCI),
    }


def test_token_pull_push_and_token_counts(
    token_registry: Registry, token_images: dict[str, PushedImage]
) -> None:
    ts = token_registry.token_server
    assert ts is not None
    ts.reset()
    client = _client(token_registry)
    image = token_images["private"]
    assert client.get_manifest("team/app", "v1").digest == image.digest
    for child in image.children:
        client.get_manifest("team/app", child.digest)
    assert ts.requests == 1
    data = os.urandom(10_000)
    client.push_blob("team/app", _sha256(data), data)
    client.put_manifest("team/app", "v2", image.manifest, image.media_type)
    # One pull token, then one pull+push token reused for every later request.
    assert [rec.scopes for rec in ts.log] == [
        ("repository:team/app:pull",),
        ("repository:team/app:pull,push",),
    ]
    assert client.head_manifest("team/app", "v2") is not None
    assert ts.requests == 2


def test_token_anonymous_public_pull(
    token_registry: Registry, token_images: dict[str, PushedImage]
) -> None:
    anon = _client(token_registry, credentials=None)
    assert anon.get_manifest("public/app", "v1").digest == token_images["public"].digest
    with pytest.raises(AuthenticationError, match="anonymously"):
        anon.get_manifest("team/app", "v1")


def test_token_read_only_user_cannot_push(
    token_registry: Registry, token_images: dict[str, PushedImage]
) -> None:
    ts = token_registry.token_server
    assert ts is not None
    reader = Credential("reader", ts.users["reader"].password, source="fixture")
    client = _client(token_registry, credentials=reader)
    image = token_images["private"]
    assert client.get_manifest("team/app", "v1").digest == image.digest
    with pytest.raises(AuthenticationError) as info:
        client.put_manifest("team/app", "v3", image.manifest, image.media_type)
    message = str(info.value)
    assert "as user 'reader'" in message and "team/app" in message
    assert ts.users["reader"].password not in message


def test_token_wrong_password(
    token_registry: Registry, token_images: dict[str, PushedImage]
) -> None:
    client = _client(token_registry, credentials=Credential("relay", "wrong-password-x"))
    with pytest.raises(AuthenticationError) as info:
        client.get_manifest("team/app", "v1")
    assert "rejected" in str(info.value) and "wrong-password-x" not in str(info.value)


def test_token_thread_pool_fetches_one_token_per_repository(
    token_registry: Registry, token_images: dict[str, PushedImage]
) -> None:
    ts = token_registry.token_server
    assert ts is not None
    ts.reset()
    client = _client(token_registry)
    refs = [("team/app", "v1"), ("public/app", "v1")] * 16
    with ThreadPoolExecutor(max_workers=8) as pool:
        heads = list(pool.map(lambda ref: client.head_manifest(*ref), refs))
    assert all(h is not None for h in heads)
    assert ts.requests == 2
    assert client.stats.count("HEAD", "manifest") == 32
