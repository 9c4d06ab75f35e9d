"""`relay publish [--shard I/N] [--only NAME…] [--delivered FILE]`: the copy transport, every
pinned tag (of the shard, of the names) to copy.registry/copy.namespace."""

from __future__ import annotations

import os
from pathlib import Path

from relay.commands.common import load, write_delivered
from relay.config import lockfile
from relay.config import shard as sharding
from relay.config.pins import Pin, pins
from relay.config.shard import Shard
from relay.errors import InputError, OperationFailed
from relay.output import document, ghactions, progress
from relay.registry.credentials import EnvCredentials
from relay.registry.pool import ClientPool
from relay.stages import publish as stage

ENV_USERNAME = "RELAY_COPY_USERNAME"
ENV_PASSWORD = "RELAY_COPY_PASSWORD"


def publish(
    *,
    repo: Path,
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
    delivered: Path | None = None,
    jobs: int | None = None,
    dry_run: bool = False,
    output: document.Format = "text",
) -> int:
    cfg, mirror_list = load(repo)
    if cfg.transport != "copy":
        raise InputError(
            "relay publish is the copy transport; mirrors/relay.yaml says "
            f"transport: {cfg.transport} (ACR builds the Dockerfiles instead)"
        )
    registry, namespace = stage.target(cfg.copy)
    sharding.check_only(only, mirror_list)
    selected = sharding.select(pins(mirror_list, lockfile.read(repo)), _target, shard, only)
    concurrency = jobs or cfg.copy.concurrency
    with (
        ClientPool(cfg.registries, repo=repo, environ=_environ(registry)) as pool,
        progress.session() as bars,
    ):
        report = stage.publish(
            selected,
            pool,
            registry,
            namespace,
            concurrency=concurrency,
            dry_run=dry_run,
            progress=bars,
        )
        requests = pool.stats.total_requests
    table = report.table(requests, dry_run=dry_run)
    failed = sum(1 for o in report.outcomes if o.error)
    if output == "json":
        document.emit(
            "publish",
            report.ok,
            {
                "dryRun": dry_run,
                "target": {"registry": registry, "namespace": namespace},
                "images": [o.json() for o in report.outcomes],
                "counts": {
                    status: sum(1 for o in report.outcomes if o.status == status)
                    for status in ("copied", "unchanged", "would-copy", "failed")
                },
                "requests": requests,
            },
        )
    else:
        print(table.text())
    ghactions.summary(table)
    if delivered is not None and not dry_run:
        copied = [o.pin.entry.target for o in report.outcomes if o.status == "copied"]
        write_delivered(delivered, copied)
    if not report.ok:
        done = len(report.outcomes) - failed
        raise OperationFailed(
            "\n".join(
                [
                    f"{failed} of {len(report.outcomes)} images failed to copy"
                    + (f" ({done} copied or already there)" if done else ""),
                    *report.unreachable(registry),
                ]
            )
        )
    return 0


def _target(pin: Pin) -> str:
    return pin.entry.target


def _environ(registry: str) -> dict[str, str]:
    """The environment, plus RELAY_COPY_USERNAME/RELAY_COPY_PASSWORD (when set) as the copy
    target's credentials: the workflow hands its secrets over in `env:`, without `docker login`
    leaving them on disk and without knowing the registry's host (mirrors/relay.yaml has it)."""
    env = dict(os.environ)
    user, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if user and password:
        # Into the exact host -> credential map: the per-host variable cannot name every host.
        env = EnvCredentials.with_entry(env, registry, f"{user}:{password}")
    return env
