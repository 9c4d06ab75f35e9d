"""The one answer to "which config, and which diff_ids, does this image have for platform P?".

`relay lock` records upstream's config digest per platform, the ACR stage compares ACR's
config with upstream's, and `relay verify` compares config and diff_ids across upstream, ACR and
Harbor: all three ask here, so they cannot disagree.

Request cost: for an index, one manifest GET per platform asked for (plus one config blob GET
each with ``read_config``). A single-platform image states its platform only in its config, so
its config blob is read once (one GET), whatever is asked — unless the caller already knows
that config: a config digest in ``known_configs`` names its platform (the config holds `os` and
`architecture`), so `relay verify` checks a FROM-only build against the lock with the manifest
alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relay import platforms as platform_rules
from relay.reference import is_valid_digest
from relay.registry.errors import NotFoundError, ProtocolError
from relay.registry.mirrors import ImageSource
from relay.registry.models import Descriptor, Manifest
from relay.untrusted import load_json


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image: its manifest digest, its config digest and, when read, the
    config's ``rootfs.diff_ids`` (the uncompressed layer digests, which a FROM-only rebuild
    keeps even when it recompresses the layers)."""

    platform: str  # as asked for, e.g. "linux/arm64"
    manifest_digest: str
    config_digest: str
    diff_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Inspection:
    digest: str  # the top manifest's digest
    media_type: str
    platforms: tuple[str, ...]  # what the image offers (attestations excluded); () if unknown
    images: dict[str, PlatformImage] = field(default_factory=dict)  # per platform asked for


def inspect_image(
    client: ImageSource,
    repository: str,
    manifest: Manifest,
    want: Sequence[str] = (),
    *,
    read_config: bool = False,
    known_configs: Mapping[str, str] | None = None,
) -> Inspection:
    """What ``manifest`` (fetched from ``repository``) offers, and the image of each platform
    in ``want`` that it has; platforms it lacks are missing from ``images``.

    ``known_configs`` maps a platform to a config digest known to be that platform's (upstream's,
    from the lock): a single-platform manifest with that config is taken for that platform
    without reading the config, unless ``read_config`` asks for its diff_ids."""
    images: dict[str, PlatformImage] = {}
    if manifest.is_index:
        for platform in want:
            child = manifest.child_for(platform)
            if child is None:
                continue
            image = child_manifest(client, repository, manifest, child)
            images[platform] = _image(client, repository, image, platform, read_config)
        return Inspection(manifest.digest, manifest.media_type, manifest.platforms(), images)
    descriptor = manifest.config()
    if descriptor is None:
        return Inspection(manifest.digest, manifest.media_type, ())
    config_digest = descriptor.digest
    known = [p for p in want if (known_configs or {}).get(p) == config_digest]
    if known and not read_config:
        # Equal config digests mean equal configs, platform fields included.
        images = {p: PlatformImage(p, manifest.digest, config_digest) for p in known}
        return Inspection(manifest.digest, manifest.media_type, (known[0],), images)
    config = _read_config(client, repository, config_digest, descriptor.size)
    if not config.get("os"):
        return Inspection(manifest.digest, manifest.media_type, ())
    for platform in want:
        # A single-platform image answers for a wanted platform it matches (linux/arm64 ~ v8).
        if platform_rules.matches(platform, config):
            images[platform] = PlatformImage(
                platform,
                manifest.digest,
                config_digest,
                _diff_ids(config, config_digest) if read_config else None,
            )
    own = platform_rules.platform_string(config)
    return Inspection(manifest.digest, manifest.media_type, (own,), images)


class MissingChild(NotFoundError):
    """An index lists a child manifest the registry does not have: the tag exists, but this
    platform of it cannot be read (an index pushed before its children, or a child deleted)."""

    def __init__(self, exc: NotFoundError, index: str, child: Descriptor) -> None:
        self.child = child
        self.platform = child.platform_name or "an entry without a platform"
        super().__init__(
            f"index {index} lists {child.digest} for {self.platform}, but the registry has no "
            "such manifest",
            registry=exc.registry,
            repository=exc.repository,
            action=exc.action,
            status=exc.status,
        )


def child_manifest(
    client: ImageSource, repository: str, index: Manifest, child: Descriptor
) -> Manifest:
    """The child ``child`` of ``index``; a 404 raises MissingChild, which names the platform
    and the child's digest rather than reading as "the tag is not there"."""
    try:
        return client.get_manifest(repository, child.digest)
    except NotFoundError as exc:
        raise MissingChild(exc, index.digest, child) from exc


def _image(
    client: ImageSource, repository: str, image: Manifest, platform: str, read_config: bool
) -> PlatformImage:
    descriptor = image.config()
    if descriptor is None:
        raise ProtocolError(f"manifest {image.digest} for {platform} has no config")
    config_digest = descriptor.digest
    diff_ids = None
    if read_config:
        config = _read_config(client, repository, config_digest, descriptor.size)
        diff_ids = _diff_ids(config, config_digest)
    return PlatformImage(platform, image.digest, config_digest, diff_ids)


def _read_config(
    client: ImageSource, repository: str, digest: str, size: int | None
) -> dict[str, Any]:
    """The config, read no further than its descriptor's size (and the client's limit)."""
    try:
        doc = load_json(client.read_blob(repository, digest, size=size))
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"image config {digest} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"image config {digest} is not a JSON object")
    return doc


def _diff_ids(config: dict[str, Any], digest: str) -> tuple[str, ...]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list) or not all(is_valid_digest(i) for i in ids):
        raise ProtocolError(f"image config {digest} has no valid rootfs.diff_ids")
    return tuple(ids)
