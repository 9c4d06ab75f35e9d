"""`relay verify`: upstream (the lock), the delivery target and Harbor agree on every pinned tag.

Each side is read through its own client pool, so each has its own credentials and its own
request count: the target (ACR's registry, or `copy.registry`) and upstream with relay's usual
registry credentials; Harbor's registry with HARBOR_USERNAME / HARBOR_PASSWORD, the login Harbor's
registry accepts as its API does (robot accounts too). That login is bound to Harbor's registry
host: no other pool holds it, and a token realm on another host than Harbor's (on any 401, not
only the ping's) is refused before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from relay.commands.access import RegistryOptions
from relay.commands.common import RelaySettings, load
from relay.config import lockfile
from relay.config import shard as sharding
from relay.config.mirrors import Entry
from relay.config.pins import Pin, pins
from relay.config.shard import Shard
from relay.errors import CheckFailed, InputError, OperationFailed, RelayError
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
from relay.registry.mirrors import ImageSource
from relay.registry.pool import ClientPool
from relay.stages import publish
from relay.stages import verify as stage
from relay.stages.harbor.settings import PASSWORD_ENV, USER_ENV, login

Output = document.Format


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
    work = stage.items(selected, lock, _platform_of(cfg))
    history = stage.read_history(repo)

    # One memory of which hosts answer for the three pools: a host is found out once.
    reach = Reachability()
    upstream_pool = ClientPool(cfg.registries, repo=repo, environ=environ, reach=reach)
    target_pool = ClientPool(cfg.registries, repo=repo, environ=environ, reach=reach)
    harbor_pool = None
    harbor_client: RegistryClient | None = None
    try:
        if harbor is not None:
            harbor_pool = _harbor_pool(repo, cfg, environ, reach)
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


def harbor_behind(
    repo: Path,
    cfg: RelaySettings,
    lock: lockfile.Lock,
    selected: Sequence[Pin],
    env: Mapping[str, str],
) -> tuple[list[str], int]:
    """The target names of ``selected`` whose image Harbor's registry lacks or holds another
    of, judged against the lock alone (verify's check with Harbor as the side read); and the
    registry requests it took. Reads nothing but Harbor's registry, with Harbor's login: it
    runs where the Harbor stage runs, which may reach neither upstream nor ACR's registry.

    This is how the Harbor stage learns what a stopped run never handed over (`relay harbor
    replicate --missing`): a delivery killed after its builds started writes no `--delivered`
    file, and the next run finds those tags built and delivers nothing."""
    harbor = _harbor(cfg)
    if harbor is None:
        raise InputError("mirrors/relay.yaml has no harbor: section (url and project at least)")
    work = stage.items(selected, lock, _platform_of(cfg))
    pool = _harbor_pool(repo, cfg, env, Reachability())
    try:
        client = pool.get(harbor.registry)
        observer = stage.Observer(
            transport=cfg.transport,
            target=harbor,
            target_client=client,
            harbor=None,
            harbor_client=None,
            upstream=_no_upstream,
            history=stage.LockHistory(),
        )
        observer.ping()
        if "target" in observer.down:
            raise OperationFailed(f"Harbor's registry {harbor.registry}: {observer.down['target']}")
        # An inline pin under the build transport has no config in the lock: without reading
        # upstream, all that can be said is whether Harbor has the tag.
        judged: list[stage.Item] = []
        present: list[stage.Item] = []
        for item in work:
            (judged if cfg.transport == "copy" or item.config is not None else present).append(item)
        checks = stage.observe(judged, observer, concurrency=cfg.lock.concurrency)
        behind = {c.item.pin.entry.target for c in checks if c.result != "ok"}
        for item in present:
            repository = harbor.repository(item.pin.entry.target)
            try:
                if client.head_manifest(repository, item.pin.tag) is None:
                    behind.add(item.pin.entry.target)
            except (RelayError, ValueError):
                behind.add(item.pin.entry.target)  # unreadable: replicate it, the safe side
        requests = pool.stats.total_requests
    finally:
        pool.close()
    return sorted(behind), requests


def _no_upstream(registry: str) -> ImageSource:
    # Judging Harbor against the lock reads upstream only to explain a mismatch, which is not
    # needed here (the Harbor stage's runner may not reach upstream at all).
    raise OperationFailed(f"{registry} is not read when judging Harbor against the lock")


def _platform_of(cfg: RelaySettings) -> Callable[[Entry], str] | None:
    """Under the build transport, the platform whose image is compared (what ACR builds)."""
    if cfg.transport != "build":
        return None
    from relay.stages.acr.plan import compared_platform

    def platform_of(entry: Entry) -> str:
        return compared_platform(entry, cfg.acr)

    return platform_of


def _harbor_pool(
    repo: Path, cfg: RelaySettings, env: Mapping[str, str], reach: Reachability
) -> ClientPool:
    """The pool that reads Harbor's registry: the `registries:` settings (insecure hosts, CA
    bundles, limits; never read mirrors) with harbor.ca_bundle for Harbor's registry host
    unless registries.ca_bundles names that host:port, Harbor's login, and that login bound
    to Harbor's hosts."""
    registry = cfg.harbor.registry_host
    bundles = dict(cfg.registries.ca_bundles)
    if cfg.harbor.ca_bundle is not None and registry not in bundles:
        bundles[registry] = cfg.harbor.ca_bundle
    options = RegistryOptions(
        insecure=cfg.registries.insecure, ca_bundles=bundles, limits=cfg.registries.limits
    )
    return ClientPool(
        options,
        repo=repo,
        credentials=harbor_credentials(env, registry),
        reach=reach,
        realm_hosts=harbor_hosts(cfg),
    )


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


def harbor_credentials(env: Mapping[str, str], registry: str) -> CredentialProvider:
    """Harbor's login for its registry host alone, then relay's usual registry credentials
    (a `docker login` to Harbor works too)."""
    providers: list[CredentialProvider] = []
    if env.get(USER_ENV) or env.get(PASSWORD_ENV):
        who = login(env)  # both or neither: one alone is a mistake worth naming
        credential = Credential(who.username, who.password, source=f"{USER_ENV}/{PASSWORD_ENV}")
        providers.append(StaticCredentials({registry: credential}))
    providers.append(default_credentials(env))
    return CredentialChain(providers)


def harbor_hosts(cfg: RelaySettings) -> frozenset[str]:
    """The hosts whose token service may receive a login to Harbor's registry: Harbor's
    token service lives on Harbor's own host (`<harbor.url>/service/token`), which is
    harbor.url's host or harbor.registry's (any port). Any other realm is refused, on every
    401, before a credential is sent (relay.registry.auth.fetch_token)."""
    hosts = {urlsplit(f"//{cfg.harbor.registry_host}").hostname or cfg.harbor.registry_host}
    if cfg.harbor.url:
        hosts.add(urlsplit(cfg.harbor.url).hostname or "")
    return frozenset(h.lower() for h in hosts if h)
