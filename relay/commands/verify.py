"""`relay verify`: upstream (the lock), the delivery target and Harbor agree on every pinned tag.

Each side is read through its own client pool, so each has its own credentials and its own
request count: the target (ACR's registry, or `copy.registry`) and upstream with relay's usual
registry credentials; Harbor's registry with HARBOR_USERNAME / HARBOR_PASSWORD, the login Harbor's
registry accepts as its API does (robot accounts too). That login is bound to Harbor's registry
host: no other pool holds it, and a token realm on another host is refused before it is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from relay.commands.common import RelaySettings, load
from relay.config import lockfile
from relay.config import shard as sharding
from relay.config.mirrors import Entry
from relay.config.pins import pins
from relay.config.shard import Shard
from relay.errors import CheckFailed, InputError, OperationFailed
from relay.net.reachability import Reachability
from relay.net.tls import normalise_netloc
from relay.output import document, ghactions, outages
from relay.registry.client import RegistryClient
from relay.registry.credentials import (
    Credential,
    CredentialChain,
    CredentialProvider,
    StaticCredentials,
    default_credentials,
)
from relay.registry.pool import ClientPool
from relay.stages import publish
from relay.stages import verify as stage
from relay.stages.harbor.settings import PASSWORD_ENV, USER_ENV, login

Output = document.Format


@dataclass(frozen=True)
class _RegistryOptions:
    """The `registries:` settings for the Harbor pool: Harbor's CA bundle added for its
    registry host unless `registries.ca_bundles` names one."""

    insecure: Sequence[str] = ()
    ca_bundles: Mapping[str, str] = field(default_factory=dict)
    mirrors: Mapping[str, Sequence[str]] = field(default_factory=dict)  # never for Harbor


def verify(
    *,
    repo: Path,
    output: Output = "text",
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> int:
    """Verify every pinned tag (of the shard, of the names `only` matches)."""
    environ = os.environ if env is None else env
    cfg, mirror_list = load(repo)
    lock = lockfile.read(repo)
    sharding.check_only(only, mirror_list)
    selected = sharding.select(pins(mirror_list, lock), lambda p: p.entry.target, shard, only)
    target = _target(cfg, environ)
    harbor = _harbor(cfg)
    platform_of: Callable[[Entry], str] | None = None
    if cfg.transport == "build":
        from relay.stages.acr.plan import compared_platform

        def platform_of(entry: Entry) -> str:
            return compared_platform(entry, cfg.acr)

    work = stage.items(selected, lock, platform_of)
    history = stage.read_history(repo)

    # One memory of which hosts answer for the three pools: a host is found out once.
    reach = Reachability()
    upstream_pool = ClientPool(cfg.registries, repo=repo, environ=environ, reach=reach)
    target_pool = ClientPool(cfg.registries, repo=repo, environ=environ, reach=reach)
    harbor_pool = None
    harbor_client: RegistryClient | None = None
    bound_login = False
    try:
        if harbor is not None:
            ca_bundle = cfg.harbor.ca_bundle
            bundles = dict(cfg.registries.ca_bundles)
            if ca_bundle is not None and harbor.registry not in bundles:
                bundles[harbor.registry] = ca_bundle
            credentials, bound_login = harbor_credentials(environ, harbor.registry)
            harbor_pool = ClientPool(
                _RegistryOptions(cfg.registries.insecure, bundles),
                repo=repo,
                credentials=credentials,
                reach=reach,
            )
            harbor_client = harbor_pool.get(harbor.registry)
        observer = stage.Observer(
            transport=cfg.transport,
            target=target,
            target_client=target_pool.get(target.registry),
            harbor=harbor,
            harbor_client=harbor_client,
            upstream=upstream_pool.source,
            history=history,
        )
        observer.ping()
        if harbor_client is not None and bound_login and "harbor" not in observer.down:
            check_realm(harbor_client, _harbor_hosts(cfg, cfg.harbor.registry_host))
        report = stage.run(work, observer, concurrency=cfg.lock.concurrency)
        pools = [p for p in (upstream_pool, target_pool, harbor_pool) if p is not None]
        report.requests = stage.Requests(
            upstream=upstream_pool.stats.total_requests,
            target=target_pool.stats.total_requests,
            harbor=harbor_pool.stats.total_requests if harbor_pool is not None else 0,
            manifest=sum(p.stats.count(kind="manifest") for p in pools),
        )
    finally:
        upstream_pool.close()
        target_pool.close()
        if harbor_pool is not None:
            harbor_pool.close()

    table = report.table()
    if output == "json":
        body = report.json()
        del body["ok"]  # every document's envelope has it
        document.emit("verify", report.ok, body)
    else:
        print(table.text())
    ghactions.summary(table)
    if not report.ok:
        counts = report.counts()
        bad = counts["tags"] - counts["ok"]
        own = {normalise_netloc(observer.target_client.netloc): _target_setting(cfg)}
        if harbor_client is not None:
            own[normalise_netloc(harbor_client.netloc)] = "harbor.url"
        unreachable = outages.explain(reach.outages(), command="relay verify", own=own)
        # With JSON on stdout the details stay out of it: the document names them already.
        raise CheckFailed(
            "\n".join(
                [
                    f"{bad} of {counts['tags']} tags do not agree across upstream, "
                    f"{'ACR' if target.kind == 'acr' else 'the target'}"
                    f"{' and Harbor' if harbor is not None else ''}",
                    *unreachable,
                ]
            ),
            details=report.problems() if output == "text" else [],
        )
    return 0


def _target_setting(cfg: RelaySettings) -> str:
    """Where the target's registry address comes from, for "check the address (…)"."""
    if cfg.transport == "copy":
        return "copy.registry"
    return "acr.registry_domain" if cfg.acr.edition == "enterprise" else "acr.region"


def _target(cfg: RelaySettings, env: Mapping[str, str]) -> stage.Location:
    if cfg.transport == "copy":
        registry, namespace = publish.target(cfg.copy, dict(env))
        return stage.Location(registry, namespace, "copy")
    acr = cfg.acr
    if not acr.namespace:
        raise InputError(
            "relay verify reads ACR's images (transport: build): set acr.namespace in "
            "mirrors/relay.yaml"
        )
    if acr.edition == "enterprise" and not acr.registry_domain:
        raise InputError(
            "for the enterprise edition set acr.registry_domain to the instance's registry, "
            "<instance>-registry.<region>.cr.aliyuncs.com"
        )
    return stage.Location(acr.registry, acr.namespace, "acr")


def _harbor(cfg: RelaySettings) -> stage.Location | None:
    settings = cfg.harbor
    if not settings.configured or not settings.project:
        return None
    return stage.Location(settings.registry_host, settings.project, "harbor")


def harbor_credentials(env: Mapping[str, str], registry: str) -> tuple[CredentialProvider, bool]:
    """Harbor's login for its registry host alone, then relay's usual registry credentials
    (a `docker login` to Harbor works too). Returns whether the Harbor login is in use."""
    providers: list[CredentialProvider] = []
    bound = bool(env.get(USER_ENV) or env.get(PASSWORD_ENV))
    if bound:
        who = login(env)  # both or neither: one alone is a mistake worth naming
        credential = Credential(who.username, who.password, source=f"{USER_ENV}/{PASSWORD_ENV}")
        providers.append(StaticCredentials({registry: credential}))
    providers.append(default_credentials(env))
    return CredentialChain(providers), bound


def _harbor_hosts(cfg: RelaySettings, registry: str) -> set[str]:
    hosts = {urlsplit(f"//{registry}").hostname or registry}
    if cfg.harbor.url:
        hosts.add(urlsplit(cfg.harbor.url).hostname or "")
    return {h.lower() for h in hosts if h}


def realm_allowed(realm: str | None, hosts: set[str]) -> bool:
    """Whether a Bearer realm may receive the Harbor login: Harbor's token service lives on
    Harbor's own host (`<harbor>/service/token`), so any other host is refused."""
    if not realm:
        return True
    parts = urlsplit(realm)
    return parts.scheme in ("https", "http") and (parts.hostname or "").lower() in hosts


def check_realm(client: RegistryClient, hosts: set[str]) -> None:
    """After the ping (which carries no credentials), refuse a token realm on another host
    before the login could be sent there."""
    ping = client.ping()
    if ping.auth_scheme == "bearer" and not realm_allowed(ping.realm, hosts):
        realm_host = urlsplit(ping.realm or "").netloc
        raise OperationFailed(
            f"Harbor's registry {client.registry} sends logins to {realm_host!r}, not to "
            f"Harbor's host ({', '.join(sorted(hosts))}); relay sends HARBOR_USERNAME's "
            "password only to Harbor. Check harbor.registry in mirrors/relay.yaml"
        )
