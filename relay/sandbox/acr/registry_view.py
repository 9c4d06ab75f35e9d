"""Read what is really in the stand-in registry, for GetRepoTags / ListRepoTag.

ACR answers tag queries from its registry, so the emulator does too: a tag exists when the
stand-in registry serves it, whoever pushed it (a build, or a test pushing directly).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from relay.sandbox.common.registry import RegistryReader, RegistryTarget, sha256_digest

__all__ = ["RegistryTarget", "RegistryView", "TagInfo"]


@dataclass(frozen=True)
class TagInfo:
    tag: str
    digest: str  # "sha256:..." of the manifest bytes as served
    image_id: str  # "sha256:..." of the image config (of the linux/amd64 child for an index)
    size: int  # compressed layer bytes + config bytes (ACR's exact imageSize is UNCONFIRMED)
    media_type: str


def _pick_child(index: dict[str, Any]) -> dict[str, Any] | None:
    manifests = index.get("manifests") or []
    for desc in manifests:
        plat = desc.get("platform") or {}
        if plat.get("os") == "linux" and plat.get("architecture") == "amd64":
            return desc
    return manifests[0] if manifests else None


class RegistryView:
    """Lists tags and describes images with plain HTTP (the reader handles Basic/Bearer)."""

    def __init__(self, registry: RegistryTarget) -> None:
        self.registry = registry

    def _client(self) -> RegistryReader:
        return RegistryReader.for_target(self.registry)

    def tags(self, repo_path: str) -> list[str]:
        with self._client() as cli:
            return cli.tags(repo_path)

    def describe(self, repo_path: str, tag: str) -> TagInfo | None:
        with self._client() as cli:
            found = cli.manifest(repo_path, tag)
            if found is None:
                return None
            raw, media_type = found
            doc = json.loads(raw)
            manifest = doc
            if "manifests" in doc:  # an index / manifest list: describe the amd64 child
                child = _pick_child(doc)
                if child is None:
                    return TagInfo(tag, sha256_digest(raw), "", 0, media_type)
                found_child = cli.manifest(repo_path, child["digest"])
                if found_child is None:
                    return None
                manifest = json.loads(found_child[0])
            config = manifest.get("config") or {}
            size = int(config.get("size", 0)) + sum(
                int(layer.get("size", 0)) for layer in manifest.get("layers") or []
            )
            return TagInfo(
                tag=tag,
                digest=sha256_digest(raw),
                image_id=str(config.get("digest", "")),
                size=size,
                media_type=media_type,
            )
