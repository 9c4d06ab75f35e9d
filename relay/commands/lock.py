"""`relay lock [--check | --update | --dry-run]`: resolve tags to digests into the lock."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import config_platforms, load
from relay.config import lockfile
from relay.errors import CheckFailed, ProblemsFound
from relay.output import ghactions
from relay.registry.pool import ClientPool
from relay.stages import lock as stage


def lock(*, repo: Path, check: bool = False, update: bool = False, dry_run: bool = False) -> int:
    cfg, mirror_list = load(repo)
    old = lockfile.read(repo)
    with ClientPool(cfg.registries, repo=repo) as pool:
        result = stage.resolve(
            mirror_list,
            old,
            pool,
            recheck=check or update,
            concurrency=cfg.lock.concurrency,
            config_platforms=config_platforms(cfg),
            # A check is the place to learn that a pin is wrong or has moved upstream.
            verify_pins=check or update,
            warn_tags=cfg.lock.warn_tags,
        )
        requests = pool.stats.total_requests
    ghactions.warn(result.warnings)
    if result.problems:
        raise ProblemsFound(result.problems)
    changes = stage.diff(old, result.lock)
    for change in changes:
        print(change)
    tags = sum(len(t) for t in result.lock.images.values())
    summary = f"{tags} tags resolved with {requests} registry requests"
    if check:
        if changes:
            raise CheckFailed(f"{summary}; the lock differs from upstream in {len(changes)} tag(s)")
        print(f"{summary}; the lock matches upstream")
        return 0
    if dry_run:
        print(f"{summary}; {len(changes)} change(s); dry run: lock not written")
        return 0
    written = lockfile.write(repo, result.lock)
    print(f"{summary}; {len(changes)} change(s); lock {'written' if written else 'unchanged'}")
    return 0
