"""Observing ACR for the plan, shaped for the no-op case, which is most runs: one page-through
of the namespace's repositories (the marker in each summary says "relay's" and "bound as
wanted"), then one tag read per relay repository. Rules and recent builds are read only for
repositories with something to build (or everything, with prune)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from relay.reference import Reference
from relay.stages.acr.api import AcrClient
from relay.stages.acr.plan import WantedRepo, WantedTag, is_managed, needs_rules
from relay.stages.acr.settings import AcrSettings
from relay.stages.acr.state import Observed, RepoState

log = logging.getLogger(__name__)

# upstream_config(source, tag, digest, platform) -> upstream's config digest for that platform
# of the image `source@digest`, or None when unknown (then: build if missing).
UpstreamConfig = Callable[[Reference, str, str, str], "str | None"]


def observe(
    client: AcrClient,
    settings: AcrSettings,
    wanted: list[WantedRepo],
    *,
    upstream_config: UpstreamConfig | None = None,
    prune: bool = False,
) -> Observed:
    assert settings.namespace is not None
    namespace = settings.namespace
    namespaces = client.list_namespaces()
    exists = namespace in namespaces
    repos = {info.name: RepoState(info) for info in client.list_repos(namespace)} if exists else {}
    observed = Observed(namespace, exists, len(namespaces), repos)
    if any(w.name not in repos for w in wanted):
        # Only a run that creates repositories can cross the quota; only then count the rest.
        observed.other_repo_count = sum(client.count_repos(n) for n in namespaces if n != namespace)
    ours = [w for w in wanted if w.name in repos and is_managed(repos[w.name].info)]

    def read_images(want: WantedRepo) -> None:
        state = repos[want.name]
        state.images = client.list_images(state.info)

    def read_rules(state: RepoState) -> None:
        state.rules = client.list_rules(state.info)
        state.builds = client.list_builds(state.info)

    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        list(pool.map(read_images, ours))
        if upstream_config is not None:
            present = [
                (w, wt) for w in ours for wt in w.tags if wt.tag in (repos[w.name].images or {})
            ]
            configs = pool.map(lambda item: upstream_of(upstream_config, *item), present)
            for (w, wt), config in zip(present, configs, strict=True):
                observed.upstream[(w.source.name, wt.tag)] = config
        if prune:
            work = [repos[w.name] for w in ours]
        else:
            work = [repos[w.name] for w in ours if needs_rules(w, observed)]
        list(pool.map(read_rules, work))
    return observed


def upstream_of(upstream_config: UpstreamConfig, want: WantedRepo, wt: WantedTag) -> str | None:
    """Upstream's config of `wt` for the compared platform; None (build if missing) when it
    cannot be read."""
    try:
        return upstream_config(want.source, wt.tag, wt.digest, want.platform)
    except Exception as exc:  # any failure means "unknown": build if missing
        log.warning(
            "%s:%s: cannot read upstream's config (%s); building only if missing",
            want.source.name,
            wt.tag,
            exc,
        )
        return None
