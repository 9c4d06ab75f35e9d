"""`relay publish`: the copy transport, every pinned tag to copy.registry/copy.namespace."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import load
from relay.config import lockfile
from relay.config.pins import pins
from relay.errors import InputError, OperationFailed
from relay.output import ghactions
from relay.registry.pool import ClientPool
from relay.stages import publish as stage


def publish(*, repo: Path) -> int:
    cfg, mirror_list = load(repo)
    if cfg.transport != "copy":
        raise InputError(
            "relay publish is the copy transport; mirrors/relay.yaml says "
            f"transport: {cfg.transport} (ACR builds the Dockerfiles instead)"
        )
    registry, namespace = stage.target(cfg.copy)
    selected = pins(mirror_list, lockfile.read(repo))
    with ClientPool(cfg.registries, repo=repo) as pool:
        report = stage.publish(
            selected, pool, registry, namespace, concurrency=cfg.copy.concurrency
        )
        requests = pool.stats.total_requests
    table = report.table(requests)
    print(table.text())
    ghactions.summary(table)
    failed = sum(1 for o in report.outcomes if o.error)
    if not report.ok:
        raise OperationFailed(f"{failed} of {len(report.outcomes)} images failed to copy")
    return 0
