"""Manifest media types, the Accept header we send, and media-type detection for served bytes."""

from __future__ import annotations

from relay.untrusted import load_json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

IMAGE_MANIFEST_TYPES: frozenset[str] = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: frozenset[str] = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES: frozenset[str] = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES: frozenset[str] = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# Order matters to a few registries that pick the first acceptable type; distribution 2.8 answers
# 404 "OCI manifest found, but accept header does not support OCI manifests" unless OCI types are
# listed, so all four are always sent. Schema 1 is deliberately absent.
ACCEPT_MANIFESTS: tuple[str, ...] = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
ACCEPT_HEADER = ", ".join(ACCEPT_MANIFESTS)

# Content-Types that say nothing about which manifest this is.
_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


class ManifestTypeError(ValueError):
    """The bytes are not a manifest we can classify (the client wraps this with context)."""


def normalise_content_type(value: str | None) -> str:
    """``"application/json; charset=utf-8"`` → ``"application/json"``."""
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_schema1(media_type: str) -> bool:
    return media_type in SCHEMA1_TYPES


def _load(body: bytes) -> dict[str, object] | None:
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def infer_from_document(doc: dict[str, object]) -> str | None:
    """Classify a manifest lacking ``mediaType`` (umoci writes none; that is valid OCI)."""
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    return None


def detect_media_type(content_type: str | None, body: bytes) -> str:
    """The media type of served manifest bytes.

    Content-Type wins when it names a manifest type; otherwise the body's ``mediaType``; otherwise
    the shape of the document. Schema 1 is reported (by type) from either source so the caller can
    refuse it, because some registries serve schema 1 bodies under a generic Content-Type.
    """
    header = normalise_content_type(content_type)
    doc = _load(body)
    if header in SCHEMA1_TYPES:
        return header
    if doc is not None and doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
    if header in MANIFEST_TYPES:
        return header
    if doc is not None:
        inferred = infer_from_document(doc)
        if inferred:
            return inferred
    if header not in _GENERIC_TYPES:
        # An unfamiliar but specific type (e.g. a vendor artifact); pass it through untouched.
        return header
    raise ManifestTypeError(
        f"cannot tell the media type: Content-Type {content_type!r} and the body has no mediaType"
    )
