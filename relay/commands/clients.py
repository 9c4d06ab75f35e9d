"""`relay clients [--format F | --out DIR]`: what nodes and manifests need to pull from Harbor.

Reads the list, the lock and the settings; talks to no registry. `--format` prints one output
on stdout (what a person must still do goes to stderr); `--out` writes them all into a
directory, touching only files whose content changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from relay import untrusted
from relay.commands.common import RelaySettings, load
from relay.commands.harbor import source_for
from relay.config import lockfile
from relay.errors import CheckFailed, InputError, Problem
from relay.net.tls import TLSConfig
from relay.stages import clients as stage
from relay.stages import publish
from relay.stages.acr.plan import built_platforms
from relay.stages.harbor.settings import SETTINGS_PATH

log = logging.getLogger(__name__)

# A CA bundle is a few certificates; a system-wide one (Debian's) is ~200 KiB.
CA_LIMIT = 4 << 20


def clients(
    *,
    repo: Path,
    fmt: stage.Format = "mapping-md",
    out: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    cfg, mirror_list = load(repo)
    environ = os.environ if env is None else env
    model = stage.build(
        mirror_list,
        lockfile.read(repo),
        harbor_of(cfg, repo),
        via_of(cfg, environ),
        cfg.transport,
        built=lambda entry: built_platforms(entry, cfg.acr),
    )
    if out is not None:
        return _write(model, out)
    try:
        output = stage.render(model, fmt)
    except stage.Unavailable as exc:
        for reason in exc.reasons:
            log.error("%s", reason)
        raise CheckFailed(
            f"no {fmt} output for this list ({len(exc.reasons)} reason(s) above)"
        ) from None
    print(output.text, end="")
    for note in output.notes:
        log.info("%s", note)
    return 0


def _write(model: stage.Clients, out: Path) -> int:
    want, notes = stage.desired(model)
    have, _ = stage.scan(out)
    changes = stage.plan(want, have, out)
    stage.apply(out, changes, want)
    for change in changes:
        print(change)
    for note in notes:
        log.info("%s", note)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
    print(
        f"{len(want)} files in {out}: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted, {len(want) - counts['create'] - counts['update']} unchanged"
    )
    return 0


def harbor_of(cfg: RelaySettings, repo: Path) -> stage.Harbor:
    h = cfg.harbor
    if not h.configured or h.project is None or h.url is None:
        raise InputError(
            Problem(
                SETTINGS_PATH,
                None,
                "relay clients needs the harbor: section (url and project at least): it says "
                "where nodes pull from",
            )
        )
    host = stage.check_host(h.registry_host, "harbor.registry (or the host of harbor.url)")
    scheme: stage.Scheme = "http" if urlsplit(h.url).scheme == "http" else "https"
    # registries.ca_bundles keys mean what they mean for every registry client: host:port,
    # or a bare host for any port (relay.net.tls.TLSConfig.ca_bundle_for).
    ca_file = h.ca_bundle or TLSConfig(ca_bundles=cfg.registries.ca_bundles).ca_bundle_for(host)
    ca_pem = None
    if ca_file is not None:
        ca_pem = stage.certificates(_read_ca(repo, ca_file), ca_file)
    return stage.Harbor(host, h.project, scheme, h.project_public, ca_file, ca_pem)


def _read_ca(repo: Path, ca_file: str) -> str:
    """The CA bundle's text. A pull request may set its path, and its content is copied to
    every node: a relative path must be a regular file inside the repository, an absolute one
    a regular file; either is capped (not /dev/zero, not a directory)."""
    if Path(ca_file).is_absolute():
        return untrusted.read_text(ca_file, limit=CA_LIMIT)
    text = untrusted.read_repo_text(repo, ca_file, limit=CA_LIMIT)
    if text is None:
        raise InputError(Problem(ca_file, None, "cannot read the CA bundle: no such file"))
    return text


def via_of(cfg: RelaySettings, env: Mapping[str, str]) -> stage.Via | None:
    """The registry between upstream and Harbor, when the settings name it: where relay
    publish copies to (copy transport: copy:, or RELAY_COPY_REGISTRY / RELAY_COPY_NAMESPACE),
    or what the Harbor stage pulls from (build transport: harbor.source_url, else ACR's
    registry). Each is decided in one place; this reads it from there."""
    if cfg.transport == "copy":
        try:
            registry, namespace = publish.target(cfg.copy, dict(env))
        except InputError:
            return None
        return stage.Via(stage.check_host(registry, "copy.registry"), namespace)
    try:
        source = source_for(cfg)
    except InputError:
        return None
    setting = "harbor.source_url" if cfg.harbor.source_url else "acr.registry_domain"
    return stage.Via(stage.check_host(urlsplit(source.url).netloc, setting), source.namespace)
