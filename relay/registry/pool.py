"""One registry client per registry host, configured from settings and the environment.

Clients share one token cache, one request counter and one memory of which hosts answer
(relay.net.reachability), so a whole run reports its requests, fetches each repository scope's
token once and finds an unreachable registry out once. `probe()` pings the registries a run
needs side by side before the work starts, so that a registry out of reach costs its timeouts
once, in parallel with the others, instead of holding the workers of the registries behind it.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from relay import untrusted
from relay.errors import InputError, Problem, RelayError
from relay.net.reachability import Outage, Reachability
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

log = logging.getLogger(__name__)

# Registries pinged at once by probe(): a run names a handful; each ping mostly waits.
PROBE_WORKERS = 8


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

    @property
    def connect_timeout(self) -> float: ...

    @property
    def read_timeout(self) -> float: ...


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
        reach: Reachability | None = None,
        realm_hosts: frozenset[str] | None = None,
    ) -> None:
        # The token-service hosts this pool's credentials may go to (None: any the registry
        # names). relay verify binds the Harbor login to Harbor's hosts this way.
        self.realm_hosts = realm_hosts
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
                connect_timeout=given.connect_timeout,
                read_timeout=given.read_timeout,
            )
            if given is not None
            else Limits()
        )
        self.credentials = credentials if credentials is not None else default_credentials(environ)
        self.tokens = TokenCache()
        self.stats = RequestStats()
        # Pools of one run (relay verify has three, for three sets of credentials) share it.
        self.reach = reach if reach is not None else Reachability()
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
                    reach=self.reach,
                    realm_hosts=self.realm_hosts,
                )
                self._clients[registry] = client
            return client

    def probe(
        self,
        registries: Iterable[str],
        *,
        upstream: Iterable[str] = (),
        workers: int = PROBE_WORKERS,
    ) -> None:
        """Ping each of ``registries`` (for reads through mirrors: the mirrors) and each of
        ``upstream`` (the registry itself, mirrors or not: tag lists) side by side, at most
        ``workers`` at once. Failures are not raised: an unreachable registry is now
        remembered (its requests fail at once, with the cause), and any other error surfaces
        again where the work meets it."""
        clients: dict[str, RegistryClient] = {}
        for registry in dict.fromkeys(registries):
            source = self.source(registry)
            found = [m.client for m in source.mirrors] if isinstance(source, MirroredSource) else []
            for client in found or [self.get(registry)]:
                clients.setdefault(client.registry, client)
        for registry in dict.fromkeys(upstream):
            clients.setdefault(self.get(registry).registry, self.get(registry))
        if not clients:
            return

        def ping(client: RegistryClient) -> None:
            try:
                client.ping()
            except (RelayError, ValueError) as exc:
                log.debug("%s: ping failed: %s", client.registry, exc)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(clients)))) as executor:
            list(executor.map(ping, clients.values()))

    def outages(self) -> list[Outage]:
        """The hosts found unreachable so far in this run, by host."""
        return self.reach.outages()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
