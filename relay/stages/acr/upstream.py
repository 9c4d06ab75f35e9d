"""Upstream's image config digest, from the lock or read with relay's registry client.

The ACR stage compares the config digest ACR reports for a tag with upstream's config for the
same platform (a FROM-only build keeps the config). This adapts relay.ops.inspectimage to the
`upstream_config(source, tag, digest, platform)` callable that the ACR apply step takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from relay.config.lockfile import Lock
from relay.ops.inspectimage import inspect_image
from relay.reference import Reference
from relay.registry.mirrors import ImageSource
from relay.stages.acr.observe import UpstreamConfig


def from_registry(get_client: Callable[[str], ImageSource]) -> UpstreamConfig:
    """An UpstreamConfig over `get_client(registry_host)`, e.g. `ClientPool(...).source`.

    Answers are cached per (source, digest, platform): a digest's content never changes.
    """
    cache: dict[tuple[str, str, str], str | None] = {}
    lock = threading.Lock()

    def config(source: Reference, tag: str, digest: str, platform: str) -> str | None:
        key = (source.name, digest, platform)
        with lock:
            if key in cache:
                return cache[key]
        client = get_client(source.domain)
        found = inspect_image(
            client, source.path, client.get_manifest(source.path, digest), [platform]
        )
        image = found.images.get(platform)
        answer = image.config_digest if image is not None else None
        with lock:
            cache[key] = answer
        return answer

    return config


def from_lock(lock: Lock, fallback: UpstreamConfig | None = None) -> UpstreamConfig:
    """Upstream's config digest as `relay lock` recorded it; `fallback` asks a registry for
    digests the lock has no config for (a lock written before configs were recorded)."""

    def config(source: Reference, tag: str, digest: str, platform: str) -> str | None:
        locked = lock.get(source.name, tag)
        if locked is not None and locked.digest == digest:
            found = locked.config(platform)
            if found is not None:
                return found
        return fallback(source, tag, digest, platform) if fallback is not None else None

    return config
