"""`relay validate`: check the list, the settings and the lock; print a one-line summary."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import load
from relay.config import lockfile


def validate(*, repo: Path) -> int:
    _, mirror_list = load(repo)
    lockfile.read(repo)
    tags = sum(len(e.tags) for e in mirror_list.entries)
    rules = sum(1 for e in mirror_list.entries if e.select is not None)
    print(
        f"{mirror_list.path}: {len(mirror_list.entries)} images, {tags} explicit tags, "
        f"{rules} with selection rules: ok"
    )
    return 0
