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
from relay.output import document, ghactions, progress
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
    output: document.Format = "text",
) -> int:
    cfg, full_list = load(repo)
    sharding.check_only(only, full_list)
    mirror_list = sharding.mirrors(full_list, shard, only)
    old = lockfile.read(repo)
    with ClientPool(cfg.registries, repo=repo) as pool, progress.session() as bars:
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
            progress=bars,
        )
        requests = pool.stats.total_requests
    ghactions.warn(result.warnings)
    if result.problems:
        raise ProblemsFound(result.problems)
    new = _merge(old, result.lock, full_list, shard, only)
    changes = stage.diff(old, new)
    tags = sum(len(t) for t in result.lock.images.values())
    mode = "check" if check else "update" if update else "dryRun" if dry_run else "lock"

    def emit(ok: bool, written: bool | None) -> None:
        document.emit(
            "lock",
            ok,
            {
                "mode": mode,
                "written": written,
                "changes": [change_json(c) for c in changes],
                "tags": tags,
                "images": len(mirror_list.entries),
                "requests": requests,
                "shard": str(shard) if shard is not None else None,
                "only": list(only),
                "warnings": document.problems(result.warnings),
            },
        )

    if output == "text":
        for change in changes:
            print(change)
    summary = f"{tags} tags resolved with {requests} registry requests"
    if shard is not None or only:
        part = f"{len(mirror_list.entries)} of {len(full_list.entries)} images"
        summary += f" ({f'shard {shard}: ' if shard else ''}{part})"
    if changes:
        ghactions.summary(
            "### relay lock\n\n```\n" + "\n".join(str(c) for c in changes) + "\n```\n"
        )
    if check:
        if output == "json":
            emit(not changes, None)
        if changes:
            raise CheckFailed(f"{summary}; the lock differs from upstream in {len(changes)} tag(s)")
        if output == "text":
            print(f"{summary}; the lock matches upstream")
        return 0
    if dry_run:
        if output == "json":
            emit(True, None)
        else:
            print(f"{summary}; {len(changes)} change(s); dry run: lock not written")
        return 0
    written = lockfile.write(repo, new)
    if output == "json":
        emit(True, written)
    else:
        print(f"{summary}; {len(changes)} change(s); lock {'written' if written else 'unchanged'}")
    return 0


def change_json(change: stage.LockChange) -> dict[str, str | list[str] | None]:
    """A lock change as `lock` and `plan` documents show it; a "change" names its fields."""
    doc: dict[str, str | list[str] | None] = {
        "kind": change.kind,
        "source": change.source,
        "tag": change.tag,
        "old": change.old,
        "new": change.new,
    }
    if change.kind == "change":
        doc["fields"] = list(change.fields)
    return doc


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
