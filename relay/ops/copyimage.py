"""Copying an image between registries, keeping its digest and every platform.

An operation in go-containerregistry's sense: it composes the registry client (transport, auth,
retries) with copy policy (what to skip, what to mount, what to verify) and knows nothing of the
mirrors list. Manifests are copied as the exact bytes upstream served, so digests survive;
blobs stream from source to destination without touching the disk, several at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from relay import platforms as platform_rules
from relay.errors import OperationFailed
from relay.ops.inspectimage import MissingChild, child_manifest, inspect_image
from relay.reference import Reference
from relay.registry.client import RegistryClient
from relay.registry.mirrors import ImageSource
from relay.registry.models import Descriptor, Manifest
from relay.registry.pool import ClientPool

log = logging.getLogger(__name__)


@dataclass
class CopyResult:
    source: str
    destination: str
    digest: str = ""
    unchanged: bool = False  # the destination already had this digest: nothing was sent
    digest_changed: bool = False  # --platform narrowed an index, so the digest is new
    platforms: list[str] = field(default_factory=list)
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0


class Meter(Protocol):
    """Where a copy counts its bytes (relay.output.progress's Task has this shape)."""

    def grow(self, amount: float) -> None: ...

    def advance(self, amount: float = 1) -> None: ...


@dataclass(frozen=True)
class CopyPlan:
    """What a copy would do, from one HEAD on each side (`--dry-run`)."""

    source: str
    destination: str
    digest: str  # the source's manifest digest
    there: str | None  # the destination's, None when it has no such tag

    @property
    def unchanged(self) -> bool:
        return self.there == self.digest


def _refs(src: Reference, dst: Reference) -> tuple[str, str, str]:
    src_ref = src.digest or src.tag or "latest"
    dst_ref = dst.tag or src.tag or src.digest or "latest"
    shown = f"{dst.name}:{dst_ref}" if ":" not in dst_ref else f"{dst.name}@{dst_ref}"
    return src_ref, dst_ref, shown


def plan_copy(pool: ClientPool, src: Reference, dst: Reference) -> CopyPlan:
    """One HEAD on each side: the digest upstream has and the one the destination holds. The
    two registries' pings and HEADs overlap."""
    source = pool.source(src.domain)
    target = pool.get(dst.domain)
    src_ref, dst_ref, shown = _refs(src, dst)
    with ThreadPoolExecutor(max_workers=1) as ahead:
        there_later = ahead.submit(target.head_manifest, dst.path, dst_ref)
        head = source.head_manifest(src.path, src_ref)
        if head is None:
            raise OperationFailed(f"{src}: not found")
        there = there_later.result()
    return CopyPlan(str(src), shown, head.digest, there.digest if there is not None else None)


def copy_image(
    pool: ClientPool,
    src: Reference,
    dst: Reference,
    *,
    platforms: Sequence[str] | None = None,
    workers: int = 4,
    meter: Meter | None = None,
) -> CopyResult:
    """Copy `src` (tag or digest) to `dst` (tag, or none: the source's tag or digest).
    ``meter`` learns the bytes to move and counts them as they go (progress on a terminal)."""
    source = pool.source(src.domain)
    target = pool.get(dst.domain)
    src_ref, dst_ref, shown = _refs(src, dst)
    result = CopyResult(str(src), shown)

    if not platforms:
        # One HEAD on each side decides whether anything needs doing.
        planned = plan_copy(pool, src, dst)
        if planned.unchanged:
            result.digest, result.unchanged = planned.digest, True
            return result
        top = source.get_manifest(src.path, planned.digest)
    else:
        top = source.get_manifest(src.path, src_ref)

    children: list[Manifest] = []
    if top.is_index:
        entries = top.children()
        wanted = list(entries)
        if platforms:
            # relay's one platform rule: linux/arm64 takes an entry published as linux/arm64/v8.
            def asked(c: Descriptor) -> bool:
                return c.platform is not None and any(
                    platform_rules.matches(p, c.platform) for p in platforms
                )

            wanted = [c for c in entries if asked(c)]
            missing = [
                p
                for p in platforms
                if not any(c.platform and platform_rules.matches(p, c.platform) for c in wanted)
            ]
            if missing:
                offered = ", ".join(top.platforms()) or "none"
                raise OperationFailed(
                    f"{src}: no {', '.join(missing)} in the source index (it has {offered})"
                )
        direct = [_child(source, src, top, c) for c in wanted]
        # Every manifest below the top, each after its own children (a nested index is
        # pushed with what it lists, or the registry refuses it or serves it broken).
        children = [m for child in direct for m in _below(source, src, child)]
        result.platforms = [c.platform_name or "" for c in wanted]
        if platforms and len(direct) == 1:
            top = direct[0]
            children = children[:-1]  # what lies below it (nothing for an image)
            result.digest_changed = True
        elif platforms and len(wanted) != len(entries):
            top = _narrowed_index(top, [entries.index(c) for c in wanted])
            result.digest_changed = True
    elif platforms:
        # A single-platform image states its platform only in its config: read it (the one
        # inspection relay has) and refuse a copy that would not be what was asked for.
        found = inspect_image(source, src.path, top, platforms)
        missing = [p for p in platforms if p not in found.images]
        if missing:
            own = found.platforms[0] if found.platforms else "a platform its config does not state"
            raise OperationFailed(
                f"{src}: a single-platform image for {own}, not {', '.join(missing)}; "
                "nothing copied (drop --platform, or name the platform it has)"
            )
        result.platforms = list(found.platforms)

    if result.digest_changed and not (dst.tag or src.tag):
        # Nothing names a tag, so the destination reference was the source's digest, which
        # the narrowed manifest no longer has: push it by its own digest (decided before any
        # upload, so a refused PUT cannot strand the blobs).
        dst_ref = top.digest
        result.destination = f"{dst.name}@{dst_ref}"

    blobs: dict[str, int | None] = {}
    for manifest in children if top.is_index else [top]:
        for descriptor in _blob_descriptors(manifest):
            blobs[descriptor.digest] = descriptor.size
    if meter is not None:
        meter.grow(sum(size or 0 for size in blobs.values()))
    _copy_blobs(source, src.path, target, dst.path, blobs, result, workers, meter)

    # One write per digest and repository at a time, and none once written: another copy of
    # the same image into this repository may be verifying a manifest against these links
    # (relay.registry.writes says why that fails on distribution's registry).
    gate = target.writes
    for child in children:
        with gate.hold(dst.path, child.digest):
            if not gate.written(dst.path, child.digest):
                target.put_manifest(dst.path, child.digest, child.content, child.media_type)
                gate.mark(dst.path, child.digest)
    with gate.hold(dst.path, top.digest):
        target.put_manifest(dst.path, dst_ref, top.content, top.media_type)
        gate.mark(dst.path, top.digest)
        landed = target.head_manifest(dst.path, dst_ref)
    result.digest = top.digest
    if landed is None or landed.digest != top.digest:
        got = landed.digest if landed else "nothing"
        raise OperationFailed(
            f"{result.destination}: expected {top.digest} after the copy, found {got}"
        )
    if result.digest_changed:
        log.warning(
            "%s: --platform narrowed the image, so its digest is now %s",
            result.destination,
            top.digest,
        )
    return result


# Index levels followed below the top: real images have one (an index of images); a nested
# index is rare, and a chain longer than this is a loop or a hostile registry.
MAX_DEPTH = 4


def _child(
    source: ImageSource,
    src: Reference,
    index: Manifest,
    child: Descriptor,
) -> Manifest:
    """A child of the source index; a missing one fails naming its platform and digest, and
    the --platform that copies the others."""
    try:
        return child_manifest(source, src.path, index, child)
    except MissingChild as exc:
        # The platforms the index offers (attestations excluded), but the missing one.
        others = [p for p in index.platforms() if p != child.platform_name]
        hint = (
            f"; copy the other platforms with {' '.join(f'--platform {p}' for p in others)}"
            if others
            else ""
        )
        raise OperationFailed(f"{src}: {exc.reason}{hint}") from exc


def _below(
    source: ImageSource, src: Reference, manifest: Manifest, depth: int = 1
) -> list[Manifest]:
    """``manifest`` after every manifest below it, deepest first: the order to push them."""
    if not manifest.is_index:
        return [manifest]
    if depth > MAX_DEPTH:
        raise OperationFailed(f"{src}: indexes nested more than {MAX_DEPTH} deep; not copied")
    found: list[Manifest] = []
    for entry in manifest.children():
        child = _child(source, src, manifest, entry)
        found.extend(_below(source, src, child, depth + 1))
    return [*found, manifest]


def _narrowed_index(top: Manifest, keep: list[int]) -> Manifest:
    """The index with only the entries at positions ``keep``, each entry as served."""
    doc = top.json()
    doc["manifests"] = [doc["manifests"][i] for i in keep]
    content = json.dumps(doc, indent=2).encode()
    return Manifest(content, top.media_type, "sha256:" + hashlib.sha256(content).hexdigest())


def _blob_descriptors(manifest: Manifest) -> list[Descriptor]:
    config = manifest.config()
    # Non-distributable layers (Windows base images) live elsewhere; registries refuse them.
    layers = [layer for layer in manifest.layers() if not layer.urls]
    return ([config] if config is not None else []) + layers


def _copy_blobs(
    source: ImageSource,
    src_path: str,
    target: RegistryClient,
    dst_path: str,
    blobs: dict[str, int | None],
    result: CopyResult,
    workers: int,
    meter: Meter | None = None,
) -> None:
    same_registry = source is target

    def one(item: tuple[str, int | None]) -> tuple[str, int]:
        digest, size = item
        sent = 0

        def stream() -> Iterator[bytes]:
            # A factory, not an iterator: the client can restart an upload that failed midway.
            # No hashing on the way through: the destination checks the digest of what it
            # receives and refuses a mismatch, and the CPU is better left to the registries.
            nonlocal sent
            if meter is not None and sent:
                meter.advance(-sent)  # a restarted upload sends the blob again
                sent = 0
            with source.get_blob(src_path, digest, verify=False) as blob:
                for chunk in blob:
                    if meter is not None:
                        sent += len(chunk)
                        meter.advance(len(chunk))
                    yield chunk

        with target.writes.hold(dst_path, digest):
            if target.writes.written(dst_path, digest):
                if meter is not None and size:
                    meter.advance(size)
                return "present", 0
            pushed = target.push_blob(
                dst_path,
                digest,
                stream,
                size=size,
                mount_from=src_path if same_registry else None,
                check_exists=True,
                verify=False,
            )
            target.writes.mark(dst_path, digest)
        if meter is not None and size and not sent:
            meter.advance(size)  # there already, or mounted: nothing to stream, but done
        if pushed.existed:
            return "present", 0
        if pushed.mounted:
            return "mounted", 0
        return "copied", pushed.size or size or 0

    # Largest first: the classic way to finish a batch of jobs soonest. Configs and other small
    # blobs go last, once a layer's worker frees up, so they stay off the critical start-up path
    # (each request there waits for the interpreter while the first layers stream).
    order = sorted(blobs.items(), key=lambda item: (-(item[1] or 0), item[0]))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for outcome, size in pool.map(one, order):
            if outcome == "present":
                result.blobs_present += 1
            elif outcome == "mounted":
                result.blobs_mounted += 1
            else:
                result.blobs_copied += 1
                result.bytes_copied += size
