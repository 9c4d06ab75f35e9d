"""Typed manifest accessors (relay.registry.models) and the one inspect operation
(relay.ops.inspectimage) that `relay lock`, the ACR stage and `relay verify` share."""

from __future__ import annotations

import json

import pytest

from relay.ops.inspectimage import inspect_image
from relay.reference import parse
from relay.registry.client import RegistryClient
from relay.registry.errors import ProtocolError
from relay.registry.models import Manifest
from relay.stages.acr.upstream import from_registry
from relay.stages.lock import describe
from tests.fakes.registry import OCI_INDEX, OCI_MANIFEST, FakeRegistry, sha256

DIGEST = "sha256:" + "a" * 64


def _image(fake: FakeRegistry, repo: str, os: str, arch: str, variant: str = "") -> str:
    """Push a config, a layer and an image manifest; returns the manifest digest."""
    config: dict[str, object] = {
        "os": os,
        "architecture": arch,
        "rootfs": {"type": "layers", "diff_ids": [sha256(f"{arch}{variant}".encode())]},
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config).encode()
    config_digest = fake.add_blob(repo, config_bytes)
    layer = fake.add_blob(repo, f"layer-{arch}{variant}".encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),  # a config is read no further than this
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 1}
        ],
    }
    return fake.put_manifest(repo, f"{arch}{variant}", json.dumps(manifest).encode())


def _index(fake: FakeRegistry, repo: str, tag: str, children: list[tuple[str, dict]]) -> str:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": p} for d, p in children
        ],
    }
    return fake.put_manifest(repo, tag, json.dumps(doc).encode(), content_type=OCI_INDEX)


# -- accessors on untrusted JSON ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "media_type", "call"),
    [
        (b"[1, 2]", OCI_MANIFEST, "config_digest"),
        (b'"a string"', OCI_INDEX, "children"),
        (b"not json", OCI_MANIFEST, "layers"),
        (b'{"manifests": {"a": 1}}', OCI_INDEX, "platforms"),
        (b'{"manifests": [{"size": 1}]}', OCI_INDEX, "children"),
        (b'{"manifests": [{"digest": "sha256:short"}]}', OCI_INDEX, "children"),
        (
            b'{"manifests": [{"digest": "' + DIGEST.encode() + b'", "platform": "linux"}]}',
            OCI_INDEX,
            "children",
        ),
        (b'{"config": "sha256:x"}', OCI_MANIFEST, "config_digest"),
        (b'{"config": {"digest": "sha256:' + b"a" * 64 + b'\\n"}}', OCI_MANIFEST, "config"),
        (b'{"layers": [null]}', OCI_MANIFEST, "layers"),
    ],
)
def test_malformed_manifests_are_protocol_errors_not_tracebacks(
    content: bytes, media_type: str, call: str
) -> None:
    manifest = Manifest(content, media_type, DIGEST)
    with pytest.raises(ProtocolError):
        getattr(manifest, call)()


def test_index_accessors() -> None:
    doc = {
        "manifests": [
            {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "digest": "sha256:" + "2" * 64,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "digest": "sha256:" + "3" * 64,
                "platform": {"os": "unknown", "architecture": "unknown"},
            },
        ]
    }
    index = Manifest(json.dumps(doc).encode(), OCI_INDEX, DIGEST)
    assert index.platforms() == ("linux/amd64", "linux/arm64/v8")  # the attestation is not one
    child = index.child_for("linux/arm64")
    assert child is not None and child.digest == "sha256:" + "2" * 64
    assert index.child_for("linux/s390x") is None
    assert index.config_digest() is None and index.layers() == ()


# -- one answer for lock, ACR and verify ------------------------------------------------------------


def test_lock_and_acr_agree_on_a_single_platform_image_asked_for_another_platform(
    fake: FakeRegistry,
) -> None:
    """Before, the ACR stage's upstream lookup returned an amd64-only image's config for
    linux/arm64, while `relay lock` said the image had no arm64 config."""
    _image(fake, "team/app", "linux", "amd64")
    client = RegistryClient(fake.host)
    manifest = client.get_manifest("team/app", "amd64")

    platforms, configs = describe(client, "team/app", manifest, ("linux/arm64", "linux/amd64"))
    assert platforms == ("linux/amd64",)
    assert [p for p, _ in configs] == ["linux/amd64"]

    upstream = from_registry(lambda _domain: client)
    source = parse(f"{fake.host}/team/app")
    assert upstream(source, "amd64", manifest.digest, "linux/arm64") is None
    assert upstream(source, "amd64", manifest.digest, "linux/amd64") == dict(configs)["linux/amd64"]


def test_index_inspection_reads_one_manifest_per_platform_and_diff_ids_on_request(
    fake: FakeRegistry,
) -> None:
    amd = _image(fake, "team/multi", "linux", "amd64")
    arm = _image(fake, "team/multi", "linux", "arm64", "v8")
    _index(
        fake,
        "team/multi",
        "1.0",
        [
            (amd, {"os": "linux", "architecture": "amd64"}),
            (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ],
    )
    client = RegistryClient(fake.host)
    top = client.get_manifest("team/multi", "1.0")
    before = fake.count("GET")
    found = inspect_image(client, "team/multi", top, ["linux/arm64"])
    assert fake.count("GET") - before == 1  # the arm64 manifest, no blob
    assert found.platforms == ("linux/amd64", "linux/arm64/v8")
    image = found.images["linux/arm64"]
    assert image.manifest_digest == arm and image.diff_ids is None

    detailed = inspect_image(client, "team/multi", top, ["linux/arm64"], read_config=True)
    assert detailed.images["linux/arm64"].diff_ids == (sha256(b"arm64v8"),)
    assert detailed.images["linux/arm64"].config_digest == image.config_digest


def test_a_config_that_is_not_an_object_is_a_protocol_error(fake: FakeRegistry) -> None:
    config = fake.add_blob("team/bad", b"[]")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"digest": config, "size": 2},
        "layers": [],
    }
    fake.put_manifest("team/bad", "1", json.dumps(doc).encode())
    client = RegistryClient(fake.host)
    with pytest.raises(ProtocolError, match="not a JSON object"):
        inspect_image(client, "team/bad", client.get_manifest("team/bad", "1"), ["linux/amd64"])


def test_a_known_config_names_its_platform_without_reading_it(fake: FakeRegistry) -> None:
    digest = _image(fake, "team/one", "linux", "amd64")
    client = RegistryClient(fake.host)
    manifest = client.get_manifest("team/one", digest)
    config = manifest.config_digest()
    assert config is not None
    before = fake.count("GET", "/blobs/")
    found = inspect_image(
        client, "team/one", manifest, ["linux/amd64"], known_configs={"linux/amd64": config}
    )
    assert fake.count("GET", "/blobs/") == before  # `relay verify`'s no-op case: no blob read
    assert found.images["linux/amd64"].config_digest == config
    # Another config, or diff_ids asked for, still reads the config.
    other = inspect_image(
        client, "team/one", manifest, ["linux/amd64"], known_configs={"linux/amd64": DIGEST}
    )
    assert other.images["linux/amd64"].config_digest == config
    assert fake.count("GET", "/blobs/") == before + 1
    detailed = inspect_image(
        client,
        "team/one",
        manifest,
        ["linux/amd64"],
        read_config=True,
        known_configs={"linux/amd64": config},
    )
    assert detailed.images["linux/amd64"].diff_ids == (sha256(b"amd64"),)
