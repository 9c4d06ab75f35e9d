"""`relay generate [--check]`: render the Dockerfiles from the list and the lock."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import load
from relay.config import lockfile
from relay.errors import CheckFailed
from relay.stages import generate as stage


def generate(*, repo: Path, check: bool) -> int:
    _, mirror_list = load(repo)
    want = stage.desired(mirror_list, lockfile.read(repo))
    changes = stage.plan(want, stage.scan(repo))
    if check:
        if changes:
            raise CheckFailed(
                f"{len(changes)} Dockerfile(s) out of date; run `relay generate` and commit",
                [str(c) for c in changes],
            )
        print(f"{len(want)} Dockerfiles up to date")
        return 0
    stage.apply(repo, changes)
    for change in changes:
        print(change)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
    print(
        f"{len(want)} Dockerfiles: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted, {len(want) - counts['create'] - counts['update']} unchanged"
    )
    return 0
