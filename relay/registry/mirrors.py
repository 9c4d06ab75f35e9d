"""Registry mirrors for reads, the way docker's `registry-mirrors` and containerd's
`hosts.toml` use them: try each mirror of a registry in turn, then the registry itself.

`registries.mirrors: {docker.io: ["https://docker.m.example.cn"]}` lets `relay lock`, copies
and verification read through a pull-through mirror a team already has (in the mainland,
upstream is often out of reach). A mirror URL may carry a path prefix
(`https://m.example.cn/docker.io` serves `docker.io/library/nginx` as
`m.example.cn/docker.io/library/nginx`, as prefix-style mirrors do).

Tag lists are not read through mirrors: an ImageSource has no `list_tags`, so a caller lists
tags with the registry's own client (ClientPool.get). A pull-through cache answers a tag list
with only what it has cached: distribution's proxy serves its local tags when the remote fails
(docs/vendors/registries.md, "Pull-through cache"), and Harbor's proxy cache project lists only
images pulled through it (goharbor.io/docs, "Configure proxy cache"). A selection rule such as
`latest: 3` fed such a list would lock old tags and say nothing.

Content is digest-verified whichever host serves it: manifests fetched by digest and blobs are
hashed as they arrive (a copy leaves the blob check to the receiving registry, as always). A
mirror that cannot be reached is not asked again in the same run; a mirror that lacks an image
(404) or fails (5xx) hands the read to the next. Writes never go to mirrors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from relay.net.reachability import outage_of
from relay.registry.blobstream import BlobStream
from relay.registry.client import RegistryClient
from relay.registry.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryConnectionError,
    RegistryError,
)
from relay.registry.mediatypes import ACCEPT_MANIFESTS
from relay.registry.models import BlobInfo, Manifest, ManifestDescriptor

log = logging.getLogger(__name__)

T = TypeVar("T")


class ImageSource(Protocol):
    """What reading an image needs: a registry client, or a registry behind its mirrors."""

    registry: str

    def head_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ...
    ) -> ManifestDescriptor | None: ...

    def get_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ...
    ) -> Manifest: ...

    def head_blob(self, repository: str, digest: str) -> BlobInfo | None: ...

    def get_blob(
        self, repository: str, digest: str, *, chunk_size: int | None = None, verify: bool = True
    ) -> BlobStream: ...

    def read_blob(self, repository: str, digest: str, *, size: int | None = None) -> bytes: ...


@dataclass(frozen=True)
class Mirror:
    client: RegistryClient
    prefix: str  # repository path prefix on the mirror ("" for host-style mirrors)
    url: str

    def path(self, repository: str) -> str:
        return f"{self.prefix}/{repository}" if self.prefix else repository


def parse_mirror(url: str) -> tuple[str, str]:
    """``https://m.example.cn/docker.io/`` → (``https://m.example.cn``, ``docker.io``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"a mirror must be an http(s) URL, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.path.strip("/")


class MirroredSource:
    """An ImageSource that reads ``registry`` through ``mirrors`` first."""

    def __init__(self, upstream: RegistryClient, mirrors: Sequence[Mirror]) -> None:
        self.upstream = upstream
        self.registry = upstream.registry
        self.mirrors = list(mirrors)
        self._down: set[str] = set()
        self._lock = threading.Lock()

    def _try(self, what: str, repository: str, read: Callable[[RegistryClient, str], T]) -> T:
        failures: list[str] = []
        for mirror in self.mirrors:
            with self._lock:
                if mirror.url in self._down:
                    continue
            try:
                return read(mirror.client, mirror.path(repository))
            except RegistryConnectionError as exc:
                with self._lock:
                    self._down.add(mirror.url)
                # An unreachable host was said once already, by the run's memory of it
                # (relay.net.reachability); a TLS failure was not.
                log.log(
                    logging.INFO if outage_of(exc) is not None else logging.WARNING,
                    "mirror %s of %s cannot be reached (%s); not asking it again this run",
                    mirror.url,
                    self.registry,
                    exc.reason,
                )
                failures.append(f"{mirror.url}: {exc.reason}")
            except DigestMismatchError as exc:
                # A mirror that serves other bytes than asked for is broken or lying: say so.
                log.warning(
                    "mirror %s of %s served content that does not match its digest (%s); "
                    "using the next source",
                    mirror.url,
                    self.registry,
                    exc.reason,
                )
                failures.append(f"{mirror.url}: digest mismatch")
            except NotFoundError:
                log.debug(
                    "mirror %s has no %s/%s (%s)", mirror.url, self.registry, repository, what
                )
                failures.append(f"{mirror.url}: not found")
            except RegistryError as exc:
                log.info(
                    "mirror %s of %s failed: %s; trying the next", mirror.url, self.registry, exc
                )
                failures.append(f"{mirror.url}: {exc.reason or exc}")
        try:
            return read(self.upstream, repository)
        except RegistryError as exc:
            if not failures:
                raise
            # Upstream failed too: the error says what the mirrors said first.
            raise type(exc)(
                f"{exc.reason}; mirrors tried first: {'; '.join(failures)}",
                registry=exc.registry,
                repository=exc.repository,
                action=exc.action,
                status=exc.status,
                errors=exc.errors,
            ) from exc

    def head_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ACCEPT_MANIFESTS
    ) -> ManifestDescriptor | None:
        def read(client: RegistryClient, path: str) -> ManifestDescriptor | None:
            found = client.head_manifest(path, reference, accept=accept)
            if found is None and client is not self.upstream:
                raise NotFoundError(f"{path}:{reference} not on the mirror")
            return found

        return self._try("head manifest", repository, read)

    def get_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ACCEPT_MANIFESTS
    ) -> Manifest:
        return self._try(
            "get manifest",
            repository,
            lambda client, path: client.get_manifest(path, reference, accept=accept),
        )

    def head_blob(self, repository: str, digest: str) -> BlobInfo | None:
        def read(client: RegistryClient, path: str) -> BlobInfo | None:
            found = client.head_blob(path, digest)
            if found is None and client is not self.upstream:
                raise NotFoundError(f"{path}@{digest} not on the mirror")
            return found

        return self._try("head blob", repository, read)

    def get_blob(
        self, repository: str, digest: str, *, chunk_size: int | None = None, verify: bool = True
    ) -> BlobStream:
        return self._try(
            "get blob",
            repository,
            lambda client, path: client.get_blob(
                path, digest, chunk_size=chunk_size, verify=verify
            ),
        )

    def read_blob(self, repository: str, digest: str, *, size: int | None = None) -> bytes:
        # The one bounded reader (RegistryClient.read_blob), on each host in turn.
        return self._try(
            "read blob", repository, lambda client, path: client.read_blob(path, digest, size=size)
        )
