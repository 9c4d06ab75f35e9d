"""`relay publish [--shard I/N] [--delivered FILE]`: the copy transport, every pinned tag (of the
shard) to copy.registry/copy.namespace."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import load, write_delivered
from relay.config import lockfile
from relay.config import shard as sharding
from relay.config.pins import Pin, pins
from relay.config.shard import Shard
from relay.errors import InputError, OperationFailed
from relay.output import ghactions
from relay.registry.pool import ClientPool
from relay.stages import publish as stage


def publish(*, repo: Path, shard: Shard | None = None, delivered: Path | None = None) -> int:
    cfg, mirror_list = load(repo)
    if cfg.transport != "copy":
        raise InputError(
            "relay publish is the copy transport; mirrors/relay.yaml says "
            f"transport: {cfg.transport} (ACR builds the Dockerfiles instead)"
        )
    registry, namespace = stage.target(cfg.copy)
    selected = sharding.select(pins(mirror_list, lockfile.read(repo)), _target, shard)
    with ClientPool(cfg.registries, repo=repo) as pool:
        report = stage.publish(
            selected, pool, registry, namespace, concurrency=cfg.copy.concurrency
        )
        requests = pool.stats.total_requests
    table = report.table(requests)
    print(table.text())
    ghactions.summary(table)
    if delivered is not None:
        copied = [o.pin.entry.target for o in report.outcomes if o.status == "copied"]
        write_delivered(delivered, copied)
    failed = sum(1 for o in report.outcomes if o.error)
    if not report.ok:
        raise OperationFailed(f"{failed} of {len(report.outcomes)} images failed to copy")
    return 0


def _target(pin: Pin) -> str:
    return pin.entry.target
