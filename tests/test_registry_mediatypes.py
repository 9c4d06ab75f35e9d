"""Media-type detection for served manifest bytes (relay.registry.mediatypes)."""

from __future__ import annotations

import json

import pytest

from relay.registry import mediatypes as mt


def _doc(**fields: object) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


MANIFEST = _doc(config={"digest": "sha256:" + "a" * 64}, layers=[])
INDEX = _doc(manifests=[])


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (mt.DOCKER_MANIFEST, MANIFEST, mt.DOCKER_MANIFEST),
        # Content-Type parameters are ignored.
        (mt.OCI_INDEX + "; charset=utf-8", INDEX, mt.OCI_INDEX),
        # A generic Content-Type falls back to the body's mediaType...
        (
            "application/json",
            _doc(mediaType=mt.DOCKER_MANIFEST_LIST, manifests=[]),
            mt.DOCKER_MANIFEST_LIST,
        ),
        # ...and, when the body has none (umoci), to its shape.
        (None, INDEX, mt.OCI_INDEX),
        ("application/octet-stream", MANIFEST, mt.OCI_MANIFEST),
        # A specific unfamiliar type passes through untouched.
        ("application/vnd.example.thing+json", b"{}", "application/vnd.example.thing+json"),
    ],
)
def test_detect_media_type(content_type: str | None, body: bytes, expected: str) -> None:
    assert mt.detect_media_type(content_type, body) == expected


def test_content_type_wins_over_body() -> None:
    body = _doc(mediaType=mt.OCI_MANIFEST, config={}, layers=[])
    assert mt.detect_media_type(mt.DOCKER_MANIFEST, body) == mt.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (mt.DOCKER_SCHEMA1_SIGNED, b"{}"),
        (mt.DOCKER_SCHEMA1, b"not json"),
        # Some registries serve schema 1 under a generic or even a schema 2 Content-Type.
        ("application/json", json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()),
        (mt.DOCKER_MANIFEST, json.dumps({"schemaVersion": 1, "signatures": []}).encode()),
    ],
)
def test_schema1_is_reported(content_type: str, body: bytes) -> None:
    assert mt.is_schema1(mt.detect_media_type(content_type, body))


def test_undetectable_raises() -> None:
    with pytest.raises(mt.ManifestTypeError):
        mt.detect_media_type("application/json", b'{"schemaVersion": 2}')
    with pytest.raises(mt.ManifestTypeError):
        mt.detect_media_type(None, b"garbage")


def test_accept_header_lists_all_four_types_and_no_schema1() -> None:
    for media_type in mt.MANIFEST_TYPES:
        assert media_type in mt.ACCEPT_HEADER
    assert "distribution.manifest.v1" not in mt.ACCEPT_HEADER
    assert mt.is_index(mt.OCI_INDEX) and mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert not mt.is_index(mt.OCI_MANIFEST)
