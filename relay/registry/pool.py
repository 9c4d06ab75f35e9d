"""One registry client per registry host, configured from settings and the environment.

Clients share one token cache and one request counter, so a whole run reports its requests
and fetches each repository scope's token once.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from relay import untrusted
from relay.errors import InputError, Problem
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig
from relay.registry.auth import TokenCache
from relay.registry.client import RegistryClient
from relay.registry.credentials import (
    CredentialProvider,
    default_credentials,
    normalise_registry,
)
from relay.registry.limits import Limits
from relay.registry.mirrors import ImageSource, Mirror, MirroredSource, parse_mirror


class RegistryOptions(Protocol):
    """What the pool reads from the settings' `registries:` section (relay.config.settings
    RegistrySettings has this shape; the registry layer does not import the config layer)."""

    @property
    def insecure(self) -> Sequence[str]: ...

    @property
    def ca_bundles(self) -> Mapping[str, str]: ...

    @property
    def mirrors(self) -> Mapping[str, Sequence[str]]: ...

    # and optionally `limits` (LimitOptions): registries.limits


class LimitOptions(Protocol):
    """The settings' `registries.limits` (relay.registry.limits.Limits' fields)."""

    @property
    def deadline(self) -> float: ...

    @property
    def manifest_bytes(self) -> int: ...

    @property
    def token_bytes(self) -> int: ...

    @property
    def answer_bytes(self) -> int: ...

    @property
    def tag_pages(self) -> int: ...


def _ca_bundle(repo: Path | None, path: str) -> str:
    """A CA bundle path from the settings: one relative to the repository must stay inside it
    (a pull request may set it), and either must be a regular file or a directory of
    certificates (not /dev/zero, which TLS would read without end)."""
    found = (
        untrusted.repo_path(repo, path)
        if repo is not None and not Path(path).is_absolute()
        else Path(path)
    )
    try:
        mode = os.stat(found).st_mode
    except OSError:
        return str(found)  # missing: the TLS layer says so when it is used
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(Problem(path, None, "CA bundle is not a regular file"))
    return str(found)


class ClientPool:
    def __init__(
        self,
        settings: RegistryOptions | None = None,
        *,
        repo: Path | None = None,
        credentials: CredentialProvider | None = None,
        environ: Mapping[str, str] | None = None,
        pool_size: int = 32,
    ) -> None:
        ca_bundles = settings.ca_bundles if settings is not None else {}
        bundles = {host: _ca_bundle(repo, path) for host, path in ca_bundles.items()}
        insecure = settings.insecure if settings is not None else ()
        self.tls = TLSConfig(ca_bundles=bundles, insecure_registries=insecure)
        given: LimitOptions | None = getattr(settings, "limits", None)
        self.limits = (
            Limits(
                deadline=given.deadline,
                manifest_bytes=given.manifest_bytes,
                token_bytes=given.token_bytes,
                answer_bytes=given.answer_bytes,
                tag_pages=given.tag_pages,
            )
            if given is not None
            else Limits()
        )
        self.credentials = credentials if credentials is not None else default_credentials(environ)
        self.tokens = TokenCache()
        self.stats = RequestStats()
        self.pool_size = pool_size
        self.mirror_urls: dict[str, tuple[str, ...]] = {
            normalise_registry(host): tuple(urls)
            for host, urls in (settings.mirrors if settings is not None else {}).items()
        }
        self._clients: dict[str, RegistryClient] = {}
        self._sources: dict[str, ImageSource] = {}
        self._lock = threading.Lock()

    def source(self, registry: str) -> ImageSource:
        """Where to *read* images of ``registry`` from: its client, or the registry behind the
        mirrors configured for it (registries.mirrors)."""
        key = normalise_registry(registry)
        urls = self.mirror_urls.get(key)
        if not urls:
            return self.get(registry)
        with self._lock:
            found = self._sources.get(key)
        if found is None:
            mirrors = []
            for url in urls:
                base, prefix = parse_mirror(url)
                mirrors.append(Mirror(self.get(base), prefix, url))
            found = MirroredSource(self.get(registry), mirrors)
            with self._lock:
                found = self._sources.setdefault(key, found)
        return found

    def get(self, registry: str) -> RegistryClient:
        with self._lock:
            client = self._clients.get(registry)
            if client is None:
                client = RegistryClient(
                    registry,
                    credentials=self.credentials,
                    tls=self.tls,
                    stats=self.stats,
                    token_cache=self.tokens,
                    pool_size=self.pool_size,
                    limits=self.limits,
                )
                self._clients[registry] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
