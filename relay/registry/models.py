"""What the client returns: descriptors, manifests, push results.

A manifest is untrusted JSON from a registry. Callers read it through the typed accessors here
(`children()`, `child_for()`, `platforms()`, `config_digest()`, `layers()`), which check shapes
and digests with the one grammar, so no caller picks JSON apart or meets a KeyError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay import platforms as platform_rules
from relay.reference import is_valid_digest
from relay.registry.errors import ProtocolError
from relay.registry.mediatypes import is_index
from relay.untrusted import load_json


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
class Descriptor:
    """An entry of a manifest: a child manifest of an index, a config, or a layer."""

    digest: str
    media_type: str
    size: int | None
    platform: dict[str, Any] | None = None  # index children only: os, architecture, variant…
    urls: tuple[str, ...] = ()  # non-distributable layers live elsewhere

    @property
    def platform_name(self) -> str | None:
        """``os/arch[/variant]``, or None when the entry states no platform."""
        return platform_rules.platform_string(self.platform) if self.platform else None

    @property
    def is_attestation(self) -> bool:
        """buildx attaches attestation manifests as platform unknown/unknown: not platforms."""
        return self.platform is not None and self.platform.get("os") in (None, "unknown")


def _descriptor(item: object, where: str, *, platform: bool = False) -> Descriptor:
    if not isinstance(item, dict):
        raise ProtocolError(f"{where} is not a JSON object")
    digest = item.get("digest")
    if not is_valid_digest(digest):
        raise ProtocolError(f"{where} has no valid digest ({str(digest)[:80]!r})")
    size = item.get("size")
    plat = item.get("platform") if platform else None
    if plat is not None and not isinstance(plat, dict):
        raise ProtocolError(f"{where}.platform is not a JSON object")
    urls = item.get("urls") or ()
    return Descriptor(
        digest=str(digest),
        media_type=str(item.get("mediaType") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        platform=plat,
        urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
    )


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
        """The document; a ProtocolError when it is not a JSON object."""
        try:
            doc = load_json(self.content)
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError(f"manifest {self.digest} is not JSON") from None
        if not isinstance(doc, dict):
            raise ProtocolError(f"manifest {self.digest} is not a JSON object")
        return doc

    @property
    def descriptor(self) -> ManifestDescriptor:
        return ManifestDescriptor(self.digest, self.media_type, self.size)

    def children(self) -> tuple[Descriptor, ...]:
        """An index's entries, attestations included; () for an image manifest."""
        if not self.is_index:
            return ()
        items = self.json().get("manifests")
        if items is None:
            return ()
        if not isinstance(items, list):
            raise ProtocolError(f"index {self.digest}: manifests is not a list")
        return tuple(
            _descriptor(item, f"index {self.digest}: manifests[{i}]", platform=True)
            for i, item in enumerate(items)
        )

    def platforms(self) -> tuple[str, ...]:
        """The platforms an index offers, sorted, without attestations. An image manifest does
        not state its platform (its config does: see relay.ops.inspectimage)."""
        return tuple(
            sorted(
                {
                    c.platform_name
                    for c in self.children()
                    if c.platform_name is not None and not c.is_attestation
                }
            )
        )

    def child_for(self, platform: str) -> Descriptor | None:
        """The index entry for ``platform`` by relay's one matching rule; None if absent."""
        return next(
            (
                c
                for c in self.children()
                if c.platform is not None and platform_rules.matches(platform, c.platform)
            ),
            None,
        )

    def config(self) -> Descriptor | None:
        """An image manifest's config descriptor; None for an index or a manifest without one."""
        if self.is_index:
            return None
        config = self.json().get("config")
        return None if config is None else _descriptor(config, f"manifest {self.digest}: config")

    def config_digest(self) -> str | None:
        config = self.config()
        return config.digest if config is not None else None

    def layers(self) -> tuple[Descriptor, ...]:
        """An image manifest's layers; () for an index."""
        if self.is_index:
            return ()
        items = self.json().get("layers")
        if items is None:
            return ()
        if not isinstance(items, list):
            raise ProtocolError(f"manifest {self.digest}: layers is not a list")
        return tuple(
            _descriptor(item, f"manifest {self.digest}: layers[{i}]")
            for i, item in enumerate(items)
        )


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
