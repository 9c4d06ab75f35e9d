"""What the client returns: descriptors, manifests, push results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from relay.registry.mediatypes import is_index


@dataclass(frozen=True)
class PingResult:
    base_url: str
    auth_scheme: str | None
    realm: str | None
    service: str | None
    api_version: str | None
    tls_verified: bool | None  # None over plain HTTP


@dataclass(frozen=True)
class ManifestDescriptor:
    digest: str
    media_type: str
    size: int | None


@dataclass(frozen=True)
class Manifest:
    """Manifest bytes exactly as served, with the media type and digest that go with them."""

    content: bytes = field(repr=False)
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def is_index(self) -> bool:
        return is_index(self.media_type)

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.content)
        if not isinstance(doc, dict):
            raise ValueError("manifest is not a JSON object")
        return doc

    @property
    def descriptor(self) -> ManifestDescriptor:
        return ManifestDescriptor(self.digest, self.media_type, self.size)


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int | None


@dataclass(frozen=True)
class PushResult:
    digest: str
    size: int | None
    mounted: bool = False
    existed: bool = False
