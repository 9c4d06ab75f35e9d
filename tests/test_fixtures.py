"""Proof that the registry / token-server / image / skopeo fixtures do what they promise.

These run real ``docker-registry`` processes and ``skopeo`` on 127.0.0.1; a missing tool is a
failure, never a skip.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from relay.sandbox import images
from relay.sandbox.images import ImageFactory, OracleClient
from relay.sandbox.tokens import TokenServer, port_is_free
from tests.fixtures.registries import Registry, RegistryFactory, http_session, require_tool
from tests.fixtures.skopeo import Skopeo, SkopeoError

REGISTRY_FIXTURES = ("plain_registry", "tls_registry", "token_registry")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = http_session()
    yield session
    session.close()


def _challenge_params(header: str) -> dict[str, str]:
    return dict(images._CHALLENGE_PARAM.findall(header.partition(" ")[2]))


# -- /v2/ of each flavour ------------------------------------------------------------------------


def test_plain_registry_answers_200(plain_registry: Registry, http: requests.Session) -> None:
    assert plain_registry.url == f"http://{plain_registry.host}"
    assert plain_registry.host.startswith("127.0.0.1:")
    assert plain_registry.auth == "none" and plain_registry.ca_file is None
    resp = http.get(plain_registry.url + "/v2/", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_tls_registry_basic_challenge(tls_registry: Registry, http: requests.Session) -> None:
    reg = tls_registry
    assert reg.url.startswith("https://127.0.0.1:") and reg.auth == "basic"
    assert reg.ca_file and Path(reg.ca_file).is_file()
    assert reg.username == "relay" and reg.password

    resp = http.get(reg.url + "/v2/", verify=reg.ca_file, timeout=5)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    assert _challenge_params(resp.headers["WWW-Authenticate"])["realm"]

    ok = http.get(reg.url + "/v2/", verify=reg.ca_file, auth=reg.credentials, timeout=5)
    assert ok.status_code == 200
    bad = http.get(reg.url + "/v2/", verify=reg.ca_file, auth=("relay", "wrong"), timeout=5)
    assert bad.status_code == 401

    # The system trust store must not trust the test CA: clients have to be given ca_file.
    with pytest.raises(requests.exceptions.SSLError):
        http.get(reg.url + "/v2/", verify=True, timeout=5)


def test_token_registry_bearer_challenge(token_registry: Registry, http: requests.Session) -> None:
    reg = token_registry
    ts = reg.token_server
    assert isinstance(ts, TokenServer) and reg.auth == "token"
    resp = http.get(reg.url + "/v2/", verify=reg.ca_file, timeout=5)
    assert resp.status_code == 401
    header = resp.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    params = _challenge_params(header)
    assert params["realm"] == ts.realm and params["realm"].startswith("https://127.0.0.1:")
    assert params["service"] == ts.service

    scoped = http.get(reg.url + "/v2/some/repo/tags/list", verify=reg.ca_file, timeout=5)
    assert _challenge_params(scoped.headers["WWW-Authenticate"])["scope"] == (
        "repository:some/repo:pull"
    )


# -- token server -----------------------------------------------------------------------------


def _token(
    http: requests.Session, reg: Registry, scope: str, auth: tuple[str, str] | None
) -> requests.Response:
    assert reg.token_server is not None
    return http.get(
        reg.token_server.realm,
        params={"service": reg.token_server.service, "scope": scope},
        auth=auth,
        verify=reg.ca_file,
        timeout=5,
    )


def test_token_server_checks_credentials_and_counts(
    token_registry: Registry, http: requests.Session
) -> None:
    reg = token_registry
    ts = reg.token_server
    assert ts is not None
    ts.reset()

    good = _token(http, reg, "repository:team/app:pull,push", reg.credentials)
    assert good.status_code == 200
    body = good.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == ts.ttl
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "RS256" and header["x5c"]
    claims = jwt.decode(
        body["token"],
        jwt.PyJWK.from_dict(_jwk_from_x5c(header["x5c"][0])).key,
        algorithms=["RS256"],
        audience=ts.service,
        issuer=ts.issuer,
    )
    assert claims["sub"] == "relay"
    assert claims["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]

    assert _token(http, reg, "repository:team/app:pull", ("relay", "nope")).status_code == 401
    assert _token(http, reg, "repository:team/app:pull", ("mallory", "x")).status_code == 401

    anon_public = _token(http, reg, "repository:public/app:pull,push", None)
    assert anon_public.status_code == 200
    access = jwt.decode(anon_public.json()["token"], options={"verify_signature": False})
    assert access["access"] == [{"type": "repository", "name": "public/app", "actions": ["pull"]}]

    anon_private = _token(http, reg, "repository:team/app:pull", None)
    assert anon_private.status_code == 200  # issued, but without access
    assert (
        jwt.decode(anon_private.json()["token"], options={"verify_signature": False})["access"]
        == []
    )

    assert (ts.requests, ts.issued, ts.denied) == (5, 3, 2)
    assert [r.account for r in ts.log] == ["relay", "relay", "mallory", None, None]
    ts.reset()
    assert (ts.requests, ts.issued, ts.denied, ts.log) == (0, 0, 0, [])


def _jwk_from_x5c(cert_b64: str) -> dict[str, str]:
    # Verify with the key from the certificate the registry would check, not with our own copy.
    from cryptography import x509

    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


def test_registry_accepts_tokens_and_enforces_scope(
    token_registry: Registry, http: requests.Session
) -> None:
    reg = token_registry
    token = _token(http, reg, "repository:team/app:pull", reg.credentials).json()["token"]
    resp = http.get(
        reg.url + "/v2/team/app/tags/list",
        headers={"Authorization": f"Bearer {token}"},
        verify=reg.ca_file,
        timeout=5,
    )
    assert resp.status_code == 404  # authorised; the repository just does not exist yet

    anon = _token(http, reg, "repository:team/app:pull", None).json()["token"]
    denied = http.get(
        reg.url + "/v2/team/app/tags/list",
        headers={"Authorization": f"Bearer {anon}"},
        verify=reg.ca_file,
        timeout=5,
    )
    assert denied.status_code == 401
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]


def test_pull_only_user_cannot_push(token_registry: Registry, image_factory: ImageFactory) -> None:
    ts = token_registry.token_server
    assert ts is not None
    # Same registry, other account: process=None so this copy can never stop the real one.
    reader = dataclasses.replace(
        token_registry, username="reader", password=ts.users["reader"].password, process=None
    )
    with pytest.raises(images.OracleError, match="401"):
        image_factory.push(reader, "team/denied", "1", images.OCI)


# -- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", images.KINDS)
@pytest.mark.parametrize("registry_fixture", REGISTRY_FIXTURES)
def test_each_image_kind_pushes_and_skopeo_agrees(
    kind: str,
    registry_fixture: str,
    request: pytest.FixtureRequest,
    image_factory: ImageFactory,
    skopeo: Skopeo,
) -> None:
    reg: Registry = request.getfixturevalue(registry_fixture)
    pushed = image_factory.push(reg, f"kinds/{kind}", "v1", kind)

    assert pushed.digest == "sha256:" + hashlib.sha256(pushed.manifest).hexdigest()
    assert skopeo.digest(pushed.ref, reg) == pushed.digest
    assert skopeo.digest(pushed.digest_ref, reg) == pushed.digest

    with OracleClient(reg) as client:
        raw, content_type, header_digest = client.get_manifest(pushed.repo, "v1")
    assert raw == pushed.manifest
    assert content_type == pushed.media_type
    assert header_digest == pushed.digest

    doc = json.loads(pushed.manifest)
    if kind in images.MULTI_PLATFORM_KINDS:
        assert pushed.platforms == ["linux/amd64", "linux/arm64/v8"]
        assert [m["digest"] for m in doc["manifests"]] == [c.digest for c in pushed.children]
        assert len(pushed.layer_digests) == 4  # 2 layers per platform
        for child in pushed.children:
            assert skopeo.digest(f"{pushed.repo}@{child.digest}", reg) == child.digest
    else:
        assert pushed.platforms == ["linux/amd64"]
        assert [layer["digest"] for layer in doc["layers"]] == pushed.layer_digests
        # skopeo's own digest computation agrees for single manifests (for indexes it reports
        # the host platform's child, so it is only checked here).
        assert skopeo.inspect_digest(pushed.ref, reg) == pushed.digest


def test_oci_manifest_without_mediatype(plain_registry: Registry, image_factory: ImageFactory):
    pushed = image_factory.push(plain_registry, "kinds/nomt", "1", images.OCI_NO_MEDIATYPE)
    doc = json.loads(pushed.manifest)
    assert "mediaType" not in doc
    assert doc["config"]["mediaType"] == images.OCI_CONFIG
    assert pushed.media_type == images.OCI_MANIFEST


def test_media_types_per_kind(image_factory: ImageFactory) -> None:
    docker = image_factory.build(images.DOCKER, seed="mt")
    oci = image_factory.build(images.OCI, seed="mt")
    index = image_factory.build(images.OCI_INDEX_KIND, seed="mt")
    mlist = image_factory.build(images.DOCKER_LIST_KIND, seed="mt")
    assert json.loads(docker.manifest)["mediaType"] == images.DOCKER_MANIFEST
    assert json.loads(docker.manifest)["config"]["mediaType"] == images.DOCKER_CONFIG
    assert {layer.media_type for layer in docker.layers} == {images.DOCKER_LAYER_GZIP}
    assert json.loads(oci.manifest)["config"]["mediaType"] == images.OCI_CONFIG
    assert {layer.media_type for layer in oci.layers} == {images.OCI_LAYER_GZIP}
    assert {c.media_type for c in index.children} == {images.OCI_MANIFEST}
    assert {c.media_type for c in mlist.children} == {images.DOCKER_MANIFEST}
    arm = json.loads(index.manifest)["manifests"][1]["platform"]
    assert arm == {"architecture": "arm64", "os": "linux", "variant": "v8"}


def test_config_diff_ids_match_pulled_layers(
    plain_registry: Registry, image_factory: ImageFactory
) -> None:
    pushed = image_factory.push(plain_registry, "layers/diffids", "1", images.DOCKER)
    with OracleClient(plain_registry) as client:
        assert pushed.config_digest is not None
        config = b"".join(client.iter_blob(pushed.repo, pushed.config_digest))
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        assert json.loads(config)["rootfs"]["type"] == "layers"
        assert len(diff_ids) == len(pushed.layer_digests) == 2
        for layer_digest, diff_id in zip(pushed.layer_digests, diff_ids, strict=True):
            compressed = b"".join(client.iter_blob(pushed.repo, layer_digest))
            assert "sha256:" + hashlib.sha256(compressed).hexdigest() == layer_digest
            tar = gzip.decompress(compressed)
            assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id


def test_layers_are_deterministic_per_seed(tmp_path: Path) -> None:
    one = ImageFactory(tmp_path / "a").build(images.OCI, seed="s1", layer_size=10_000)
    two = ImageFactory(tmp_path / "b").build(images.OCI, seed="s1", layer_size=10_000)
    other = ImageFactory(tmp_path / "c").build(images.OCI, seed="s2", layer_size=10_000)
    assert one.digest == two.digest and one.layer_digests == two.layer_digests
    assert one.layer_digests[0] != one.layer_digests[1]
    assert set(one.layer_digests).isdisjoint(other.layer_digests)
    assert one.digest != other.digest


def test_size_knob_streams_from_disk(plain_registry: Registry, image_factory: ImageFactory) -> None:
    size = 3 * 1024 * 1024 + 17  # not a multiple of any chunk size
    pushed = image_factory.push(
        plain_registry, "layers/sized", "1", images.OCI, layer_count=2, layer_size=size
    )
    for layer in pushed.image.layers:
        assert layer.path.stat().st_size == layer.size
        assert layer.size > size  # random payload does not compress
        assert images.file_digest(layer.path) == layer.digest
    with OracleClient(plain_registry) as client:
        for digest in pushed.layer_digests:
            assert client.blob_digest(pushed.repo, digest) == digest


# -- skopeo -----------------------------------------------------------------------------------


def test_skopeo_copy_all_preserves_index_digest(
    plain_registry: Registry,
    registry_factory: RegistryFactory,
    image_factory: ImageFactory,
    skopeo: Skopeo,
) -> None:
    src = image_factory.push(plain_registry, "copy/multi", "1", images.OCI_INDEX_KIND)
    dst = registry_factory("tls")  # a fresh, empty destination
    skopeo.copy("copy/multi:1", plain_registry, "mirror/multi:1", dst)
    assert skopeo.digest("mirror/multi:1", dst) == src.digest
    with OracleClient(dst) as client:
        assert client.manifest_digest("mirror/multi", "1") == src.digest
        for digest in src.blob_digests:
            assert client.blob_exists("mirror/multi", digest)
    assert skopeo.list_tags("mirror/multi", dst) == ["1"]
    # The copy went through this instance's private blob-info-cache, not /var/lib/containers.
    assert skopeo.blob_info_cache.is_file()


def test_skopeo_token_requests_are_counted(
    token_registry: Registry, image_factory: ImageFactory, skopeo: Skopeo
) -> None:
    pushed = image_factory.push(token_registry, "team/counted", "1", images.DOCKER)
    ts = token_registry.token_server
    assert ts is not None
    ts.reset()
    assert skopeo.digest(pushed.ref, token_registry) == pushed.digest
    assert ts.requests >= 1 and ts.issued == ts.requests
    assert {r.account for r in ts.log} == {"relay"}
    assert any("repository:team/counted:pull" in r.scopes for r in ts.log)


def test_anonymous_pull_only_under_public(
    token_registry: Registry, image_factory: ImageFactory, skopeo: Skopeo
) -> None:
    public = image_factory.push(token_registry, "public/app", "1", images.OCI)
    private = image_factory.push(token_registry, "team/secret", "1", images.OCI)
    assert skopeo.digest(public.ref, token_registry, creds=False) == public.digest
    with pytest.raises(SkopeoError, match="(?i)unauthorized|denied|authentication required"):
        skopeo.digest(private.ref, token_registry, creds=False)
    with pytest.raises(SkopeoError):
        skopeo.digest(private.ref, token_registry, creds="relay:wrong-password")


def test_skopeo_wrong_basic_creds_fail(tls_registry: Registry, skopeo: Skopeo) -> None:
    with pytest.raises(SkopeoError, match="(?i)unauthorized|authentication required"):
        skopeo.digest("nothing/here:1", tls_registry, creds="relay:wrong")


def _stat_or_none(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def test_skopeo_is_hermetic(
    plain_registry: Registry, image_factory: ImageFactory, skopeo: Skopeo
) -> None:
    env = skopeo.env()
    for key in ("HOME", "XDG_DATA_HOME", "TMPDIR", "CONTAINERS_REGISTRIES_CONF"):
        assert env[key].startswith(str(skopeo.home))
    assert not any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in env)

    # A copy must use this instance's blob-info-cache and leave the system one as it was
    # (absent on a clean machine).
    system_cache = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
    before = _stat_or_none(system_cache)
    skopeo.clear_blob_info_cache()
    image_factory.push(plain_registry, "hermetic/src", "1", images.DOCKER)
    skopeo.copy("hermetic/src:1", plain_registry, "hermetic/dst:1", plain_registry)
    assert skopeo.blob_info_cache.is_file()
    assert _stat_or_none(system_cache) == before, "skopeo touched the system blob-info-cache"


# -- factory and tools ------------------------------------------------------------------------


def test_registry_factory_starts_isolated_registries_and_stops_them(
    registry_factory: RegistryFactory, http: requests.Session
) -> None:
    a = registry_factory("plain")
    b = registry_factory("token", anonymous_pull=())
    c = registry_factory("tls", tls=False)  # Basic auth over plain HTTP
    assert len({a.host, b.host, c.host}) == 3
    assert len({a.data_dir, b.data_dir, c.data_dir}) == 3
    assert c.url.startswith("http://") and c.auth == "basic" and c.ca_file is None
    assert http.get(c.url + "/v2/", auth=c.credentials, timeout=5).status_code == 200
    assert b.token_server is not None and b.token_server.anonymous_pull == ()

    port = int(a.host.rsplit(":", 1)[1])
    token_port = b.token_server.port
    a.stop()
    b.stop()
    assert not a.is_running() and port_is_free(port)
    assert port_is_free(token_port)


def test_missing_tool_is_a_failure_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y apache2-utils"):
        require_tool("htpasswd")
