"""Read what is really in the stand-in registry, for GetRepoTags / ListRepoTag.

ACR answers tag queries from its registry, so the emulator does too: a tag exists when the
stand-in registry serves it, whoever pushed it (a build, or a test pushing directly).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from tests.fixtures.images import MANIFEST_ACCEPT, OracleClient, sha256_digest


class RegistryTarget(Protocol):
    """What the emulator needs to know about a registry (tests.fixtures Registry fits)."""

    host: str
    url: str
    username: str | None
    password: str | None
    ca_file: str | None
    cert_dir: str | None


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
    """Lists tags and describes images with plain HTTP (OracleClient handles Basic/Bearer)."""

    def __init__(self, registry: RegistryTarget) -> None:
        self.registry = registry

    def _client(self) -> OracleClient:
        return OracleClient(self.registry)

    def tags(self, repo_path: str) -> list[str]:
        with self._client() as cli:
            resp = cli.request(
                "GET", f"/v2/{repo_path}/tags/list", scope=f"repository:{repo_path}:pull"
            )
            if resp.status_code == 404:  # NAME_UNKNOWN: nothing pushed yet
                return []
            resp.raise_for_status()
            return sorted(resp.json().get("tags") or [])

    def describe(self, repo_path: str, tag: str) -> TagInfo | None:
        with self._client() as cli:
            scope = f"repository:{repo_path}:pull"
            resp = cli.request(
                "GET",
                f"/v2/{repo_path}/manifests/{tag}",
                scope=scope,
                headers={"Accept": MANIFEST_ACCEPT},
            )
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            raw = resp.content
            media_type = resp.headers.get("Content-Type", "")
            doc = json.loads(raw)
            manifest = doc
            if "manifests" in doc:  # an index / manifest list: describe the amd64 child
                child = _pick_child(doc)
                if child is None:
                    return TagInfo(tag, sha256_digest(raw), "", 0, media_type)
                cresp = cli.request(
                    "GET",
                    f"/v2/{repo_path}/manifests/{child['digest']}",
                    scope=scope,
                    headers={"Accept": MANIFEST_ACCEPT},
                )
                cresp.raise_for_status()
                manifest = json.loads(cresp.content)
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
