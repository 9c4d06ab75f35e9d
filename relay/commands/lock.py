"""`relay lock [--check | --update | --dry-run] [--shard I/N]`: resolve tags to digests into the
lock. With a shard, only the shard's entries are resolved and only their lines of the lock change
(see relay.config.shard)."""

from __future__ import annotations

from pathlib import Path

from relay import reference
from relay.commands.common import config_platforms, load
from relay.config import lockfile, naming
from relay.config import shard as sharding
from relay.config.lockfile import Lock
from relay.config.mirrors import MirrorList
from relay.config.shard import Shard
from relay.errors import CheckFailed, ProblemsFound
from relay.output import ghactions
from relay.registry.pool import ClientPool
from relay.stages import lock as stage


def lock(
    *,
    repo: Path,
    check: bool = False,
    update: bool = False,
    dry_run: bool = False,
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
) -> int:
    cfg, full_list = load(repo)
    sharding.check_only(only, full_list)
    mirror_list = sharding.mirrors(full_list, shard, only)
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
    new = _merge(old, result.lock, full_list, shard, only)
    changes = stage.diff(old, new)
    for change in changes:
        print(change)
    tags = sum(len(t) for t in result.lock.images.values())
    summary = f"{tags} tags resolved with {requests} registry requests"
    if shard is not None or only:
        part = f"{len(mirror_list.entries)} of {len(full_list.entries)} images"
        summary += f" ({f'shard {shard}: ' if shard else ''}{part})"
    if changes:
        ghactions.summary(
            "### relay lock\n\n```\n" + "\n".join(str(c) for c in changes) + "\n```\n"
        )
    if check:
        if changes:
            raise CheckFailed(f"{summary}; the lock differs from upstream in {len(changes)} tag(s)")
        print(f"{summary}; the lock matches upstream")
        return 0
    if dry_run:
        print(f"{summary}; {len(changes)} change(s); dry run: lock not written")
        return 0
    written = lockfile.write(repo, new)
    print(f"{summary}; {len(changes)} change(s); lock {'written' if written else 'unchanged'}")
    return 0


def _merge(
    old: Lock,
    resolved: Lock,
    full_list: MirrorList,
    shard: Shard | None,
    only: tuple[str, ...] = (),
) -> Lock:
    """The lock to write: for the whole list, what was resolved. For part of it (a shard,
    `--only`), the old lock with that part's sources replaced by what was resolved; a source no
    longer listed belongs to the part its derived name falls in, so exactly one shard drops it."""
    if shard is None and not only:
        return resolved
    targets = {e.source.name: e.target for e in full_list.entries}
    merged = Lock({s: dict(t) for s, t in resolved.images.items()})
    for source, tags in old.images.items():
        target = targets.get(source)
        if target is None:
            try:
                target = naming.derive(reference.parse_repository(source))
            except ValueError:
                target = source
        if not sharding.wanted(target, shard, only):
            merged.images[source] = dict(tags)
    return Lock(dict(sorted(merged.images.items())))
